#!/usr/bin/env bash
# Regenerates the test media under assets/: a content loop, two ad creatives (15 s and 30 s) and a slate, each in
# the same two H.264/AAC renditions, cut into 2 s MPEG-TS segments with a VOD playlist per rendition.
# Deterministic (-bitexact, fixed sources, one thread). Needs ffmpeg (Debian's package) and fonts-dejavu-core.
#
#   scripts/make-assets.sh            # writes assets/{content,ads/ad15,ads/ad30,slate}/{r0,r1}/...
set -euo pipefail
cd "$(dirname "$0")/.."
FONT=/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf
[ -f "$FONT" ] || { echo "missing $FONT: apt-get install fonts-dejavu-core" >&2; exit 1; }

# name          width height video-kbit/s
RENDITIONS=("r0 320 180 120" "r1 640 360 300")

# make NAME DURATION LABEL COLOUR TONE_HZ [AUDIO_DURATION] [EXTRA_X264_OPTS]
# The content loop's audio is cut a little short (AUDIO_DURATION): AAC frames (1024 samples) plus the encoder's
# priming frame make 12 s of audio last 12.03 s, which would overlap the next loop when the origin replays it.
make() {
  local name=$1 duration=$2 label=$3 colour=$4 tone=$5 audio_duration=${6:-$2} extra=${7:-}
  for r in "${RENDITIONS[@]}"; do
    read -r rn w h kbps <<<"$r"
    local dir="assets/$name/$rn"
    rm -rf "$dir" && mkdir -p "$dir"
    ffmpeg -hide_banner -loglevel error -y \
      -f lavfi -i "testsrc2=size=${w}x${h}:rate=25:duration=${duration}" \
      -f lavfi -i "sine=frequency=${tone}:sample_rate=48000:duration=${audio_duration}" \
      -vf "drawbox=x=0:y=0:w=iw:h=ih/5:color=${colour}@0.8:t=fill,drawtext=fontfile=${FONT}:text='${label}  %{pts\\:hms}':fontcolor=white:fontsize=h/12:x=(w-tw)/2:y=h/20" \
      -c:v libx264 -profile:v main -level 3.0 -preset medium -threads 1 -pix_fmt yuv420p \
      -b:v "${kbps}k" -maxrate "${kbps}k" -bufsize "$((kbps * 2))k" \
      -g 50 -keyint_min 50 -sc_threshold 0 -force_key_frames "expr:gte(t,n_forced*2)" $extra \
      -c:a aac -ac 1 -b:a 32k \
      -bitexact -fflags +bitexact -flags:v +bitexact -flags:a +bitexact -map_metadata -1 \
      -f hls -hls_time 2 -hls_playlist_type vod -hls_segment_type mpegts \
      -hls_segment_filename "$dir/%03d.ts" "$dir/index.m3u8"
  done
}

make content 12 "CONTENT" 0x1f4e79 440 11.96
make ads/ad15 15 "AD 15s" 0xb03a2e 660
make ads/ad30 30 "AD 30s" 0x2e7d32 880
# Slate has no B-frames: decode order is display order, so the stitcher can cut it after any frame to fill the
# last fraction of a break (crates/mpegts `truncate`).
make slate 2 "SLATE" 0x555555 220 2 "-bf 0"

# The same media as fragmented MP4 (CMAF) HLS: a lossless remux of each TS rendition (no re-encode, so both
# variants carry identical frames), one init segment per rendition (EXT-X-MAP, RFC 8216bis §4.4.4.5) and 2 s
# media segments with one moof/mdat each. Audio and video stay muxed in one file, like the TS variant.
make_cmaf() {
  local name=$1
  for r in "${RENDITIONS[@]}"; do
    read -r rn _ <<<"$r"
    local dir="assets/cmaf/$name/$rn"
    rm -rf "$dir" && mkdir -p "$dir"
    ffmpeg -hide_banner -loglevel error -y -i "assets/$name/$rn/index.m3u8" -map 0 -c copy -bsf:a aac_adtstoasc \
      -bitexact -fflags +bitexact -flags +bitexact -map_metadata -1 \
      -f hls -hls_time 2 -hls_playlist_type vod -hls_segment_type fmp4 -hls_fmp4_init_filename init.mp4 \
      -hls_segment_filename "$dir/%03d.m4s" "$dir/index.m3u8"
  done
}
for name in content ads/ad15 ads/ad30 slate; do make_cmaf "$name"; done

# The content loop once more as separate CMAF tracks for DASH (DASH-IF IOP: one media component per
# AdaptationSet; dash.js plays no muxed Representation): the video of each rendition (v0, v1) and one audio
# track (a; both renditions carry the same audio).
rm -rf assets/cmaf/content/dash
for track in "v0 r0 v" "v1 r1 v" "a r0 a"; do
  read -r name rn stream <<<"$track"
  dir="assets/cmaf/content/dash/$name"
  mkdir -p "$dir"
  ffmpeg -hide_banner -loglevel error -y -i "assets/content/$rn/index.m3u8" -map "0:$stream" -c copy \
    -bsf:a aac_adtstoasc -bitexact -fflags +bitexact -flags +bitexact -map_metadata -1 \
    -f hls -hls_time 2 -hls_playlist_type vod -hls_segment_type fmp4 -hls_fmp4_init_filename init.mp4 \
    -hls_segment_filename "$dir/%03d.m4s" "$dir/index.m3u8"
done

# Every file must decode (an fMP4 segment with its rendition's init segment in front).
# A third-party creative as ad servers deliver it: one progressive MP4 at another size (4:3), frame rate
# (30 fps) and loudness (about -14 LUFS, 9 dB over EBU R128) than the channel, with stereo audio. The stitcher
# conditions it before it can play (crates/condition; the demo's "loud-mp4" tag).
mkdir -p assets/thirdparty
ffmpeg -hide_banner -loglevel error -y \
  -f lavfi -i "testsrc2=size=640x480:rate=30:duration=10" \
  -f lavfi -i "sine=frequency=1000:sample_rate=44100:duration=10,volume=7dB" \
  -vf "drawbox=x=0:y=0:w=iw:h=ih/5:color=0x6a1b9a@0.8:t=fill,drawtext=fontfile=${FONT}:text='MP4 AD 10s  %{pts\\:hms}':fontcolor=white:fontsize=h/12:x=(w-tw)/2:y=h/20" \
  -c:v libx264 -profile:v high -preset medium -threads 1 -pix_fmt yuv420p -b:v 250k -maxrate 300k -bufsize 600k \
  -c:a aac -ac 2 -b:a 96k \
  -bitexact -fflags +bitexact -flags:v +bitexact -flags:a +bitexact -map_metadata -1 -movflags +faststart \
  assets/thirdparty/loud-10s.mp4

for f in assets/*/r*/*.ts assets/ads/*/r*/*.ts assets/thirdparty/*.mp4; do
  ffmpeg -hide_banner -v error -i "$f" -f null - || { echo "does not decode: $f" >&2; exit 1; }
done
for f in assets/cmaf/*/r*/*.m4s assets/cmaf/ads/*/r*/*.m4s assets/cmaf/content/dash/*/*.m4s; do
  out=$(cat "$(dirname "$f")/init.mp4" "$f" | ffmpeg -hide_banner -v error -i - -f null - 2>&1)
  [ -z "$out" ] || { echo "does not decode: $f: $out" >&2; exit 1; }
done
du -sh assets
