//! The ffmpeg recipe: for each rendition, the argument vectors that turn a source file into segments a
//! stitcher can splice between the content's, and a hash that names the recipe's outputs.
//!
//! Per rendition, four runs:
//! 1. **encode** the source once into an intermediate MP4: deinterlace if needed, convert the frame rate
//!    (`fps`, nearest frame), scale to fit and pad to the rendition's frame (never stretch; see [`geometry`]),
//!    H.264/H.265 at the content's profile and level with the rendition's bitrate as target and `maxrate`
//!    (one second of VBV buffer), keyframes forced exactly at every segment boundary
//!    (`-force_key_frames expr:gte(t,n_forced*SEG)`), a GOP of one segment, closed GOPs and no scene-cut
//!    keyframes (`-sc_threshold 0`) so every segment starts with an IDR frame and decodes alone; audio
//!    downmixed/upmixed to the rendition's channels, resampled, and loudness-normalised with the measured
//!    values of pass 1 ([`loudness`]); the duration kept to the frame (`-frames:v`, audio padded and
//!    trimmed to the same length);
//! 2. **remux to HLS with MPEG-TS segments** (`-c copy`, cut at the forced keyframes);
//! 3. **remux to HLS with fragmented MP4 segments**, audio and video muxed (for CMAF channels' variants);
//! 4. **remux to CMAF** with ffmpeg's DASH muxer: one track per fragmented MP4 (ISO/IEC 23000-19), a DASH
//!    MPD and HLS playlists over the same segments.
//!
//! Encoding once and remuxing three times means every output holds the very same frames.

pub mod geometry;
pub mod loudness;

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::probe::SourceInfo;
use crate::variant::{RenditionSpec, VariantSet, digest16};
use loudness::LoudnessTarget;

/// Bumped whenever the argument vectors change in a way that changes the outputs, so old outputs are not
/// taken for new ones.
pub const RECIPE_VERSION: u32 = 2;

/// The TS HLS media playlist, relative to a rendition's directory.
pub const TS_PLAYLIST: &str = "ts/index.m3u8";
/// The fragmented MP4 HLS media playlist (audio and video muxed), relative to a rendition's directory.
pub const FMP4_PLAYLIST: &str = "fmp4/index.m3u8";
/// The CMAF HLS master playlist, relative to a rendition's directory.
pub const CMAF_PLAYLIST: &str = "cmaf/index.m3u8";
/// The DASH MPD, relative to a rendition's directory.
pub const DASH_MANIFEST: &str = "cmaf/manifest.mpd";

/// Encoder settings that change the pictures (and so the recipe hash).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EncoderSettings {
    /// x264/x265 `-preset` (`veryfast`, `medium`, …).
    pub preset: String,
}

impl Default for EncoderSettings {
    fn default() -> EncoderSettings {
        EncoderSettings {
            preset: "veryfast".into(),
        }
    }
}

/// Everything that decides the outputs of conditioning one source for one channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recipe {
    /// The channel's renditions.
    pub variant_set: VariantSet,
    /// The loudness target.
    pub loudness: LoudnessTarget,
    /// Encoder settings.
    pub encoder: EncoderSettings,
}

impl Recipe {
    /// A short digest of the recipe version, the renditions, the loudness target and the encoder settings.
    pub fn hash(&self) -> String {
        let canonical = serde_json::json!({
            "version": RECIPE_VERSION,
            "renditions": self.variant_set.keyed_renditions(),
            "loudness": [self.loudness.integrated, self.loudness.true_peak, self.loudness.lra],
            "encoder": self.encoder,
        });
        digest16(canonical.to_string().as_bytes())
    }
}

/// How many frames the output has and how long it lasts: the source's duration rounded to the nearest
/// frame of the rendition's rate.
pub fn output_length(info: &SourceInfo, r: &RenditionSpec) -> Result<(u64, f64)> {
    let fps = r.video.frame_rate.as_f64();
    let frames = (info.duration * fps).round();
    if !(1.0..=10_000_000.0).contains(&frames) {
        return Err(Error::ToolOutput {
            tool: "ffprobe",
            reason: format!("duration {} s gives no frame at {fps} fps", info.duration),
        });
    }
    Ok((frames as u64, frames / fps))
}

fn channel_layout(channels: u8) -> String {
    match channels {
        1 => "mono".into(),
        2 => "stereo".into(),
        6 => "5.1".into(),
        n => format!("{n}c"),
    }
}

fn path(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// Pass 1: measure the source's loudness after the same downmix and resampling pass 2 applies, so the
/// measurement is of the signal that gets normalised.
pub fn measure_args(
    source: &Path,
    r: &RenditionSpec,
    target: &LoudnessTarget,
) -> Option<Vec<String>> {
    let audio = r.audio.as_ref()?;
    let mut a = args(&["-hide_banner", "-nostdin", "-nostats", "-i"]);
    a.push(path(source));
    a.extend(args(&["-map", "0:a:0", "-vn", "-af"]));
    a.push(format!(
        "aformat=channel_layouts={},aresample={},{}",
        channel_layout(audio.channels),
        audio.sample_rate,
        loudness::measure_filter(target)
    ));
    a.extend(args(&["-f", "null", "-"]));
    Some(a)
}

/// Pass 2: the encode of one rendition into `out` (an MP4). `loudnorm` is pass 2's filter from
/// [`loudness::apply_filter`] (`None` for a silent source); `threads` bounds the encoder's threads.
pub fn encode_args(
    source: &Path,
    info: &SourceInfo,
    r: &RenditionSpec,
    loudnorm: Option<&str>,
    encoder: &EncoderSettings,
    threads: u32,
    out: &Path,
) -> Result<Vec<String>> {
    let (frames, duration) = output_length(info, r)?;
    let v = &r.video;
    let seg = r.segment_seconds();
    let gop = ((seg * v.frame_rate.as_f64()).round() as u64).max(1);
    let mut graph = Vec::new();
    match &info.video {
        Some(src) => {
            let fit = geometry::fit(src.width, src.height, src.sar, v.width, v.height);
            let deinterlace = if src.interlaced {
                "yadif=mode=send_frame:deint=interlaced,"
            } else {
                ""
            };
            // tpad guards against a video stream a little shorter than the container: -frames:v then cuts
            // at exactly the frame count.
            graph.push(format!(
                "[0:v:0]{deinterlace}fps={}:round=near,scale={}:{}:flags=bicubic,setsar=1,\
                 pad={}:{}:{}:{}:color=black,format=yuv420p,tpad=stop_mode=clone:stop_duration={seg}[v]",
                v.frame_rate.ffmpeg(),
                fit.width,
                fit.height,
                v.width,
                v.height,
                fit.x,
                fit.y
            ));
        }
        // An audio-only ad still needs pictures to splice into a video variant: black.
        None => graph.push(format!(
            "color=c=black:s={}x{}:r={},format=yuv420p[v]",
            v.width,
            v.height,
            v.frame_rate.ffmpeg()
        )),
    }
    if let Some(a) = &r.audio {
        let layout = channel_layout(a.channels);
        let tail = format!("apad=whole_dur={duration:.6},atrim=end={duration:.6}");
        graph.push(if info.has_audio {
            let norm = loudnorm
                .map(|f| format!("{f},aresample={},", a.sample_rate))
                .unwrap_or_default();
            format!(
                "[0:a:0]aformat=channel_layouts={layout},aresample={},{norm}{tail}[a]",
                a.sample_rate
            )
        } else {
            format!("anullsrc=r={}:cl={layout},{tail}[a]", a.sample_rate)
        });
    }
    let mut cmd = args(&[
        "-hide_banner",
        "-nostdin",
        "-nostats",
        "-v",
        "error",
        "-y",
        "-i",
    ]);
    cmd.push(path(source));
    cmd.push("-filter_complex".into());
    cmd.push(graph.join(";"));
    cmd.extend(args(&["-map", "[v]"]));
    cmd.push("-frames:v".into());
    cmd.push(frames.to_string());
    cmd.extend(v.codec.encoder_args());
    cmd.extend(["-preset".into(), encoder.preset.clone()]);
    let rate = v.bitrate.to_string();
    cmd.extend([
        "-b:v".into(),
        rate.clone(),
        "-maxrate".into(),
        rate.clone(),
        "-bufsize".into(),
        rate,
    ]);
    cmd.extend([
        "-g".into(),
        gop.to_string(),
        "-keyint_min".into(),
        gop.to_string(),
        "-sc_threshold".into(),
        "0".into(),
        "-flags".into(),
        "+cgop".into(),
        "-force_key_frames".into(),
        format!("expr:gte(t,n_forced*{seg})"),
    ]);
    // Parameter sets in band at every keyframe as well as in the sample entry: an ad spliced into a CMAF
    // stream after its own init segment still decodes in a reader that keeps the content's init (FFmpeg's
    // HLS demuxer does), as the TS form always does (DASH-IF IOP §6.2.5 recommends in-band parameter sets
    // where they change at Period boundaries).
    if matches!(v.codec, crate::codec::VideoCodec::Hevc { .. }) {
        cmd.push("-x265-params".into());
        cmd.push(format!(
            "keyint={gop}:min-keyint={gop}:scenecut=0:open-gop=0:repeat-headers=1"
        ));
    } else {
        cmd.extend(args(&["-x264-params", "repeat-headers=1"]));
    }
    cmd.extend(args(&[
        "-color_primaries",
        "bt709",
        "-color_trc",
        "bt709",
        "-colorspace",
        "bt709",
    ]));
    if let Some(a) = &r.audio {
        cmd.extend(args(&["-map", "[a]", "-c:a", a.codec.encoder()]));
        cmd.extend([
            "-b:a".into(),
            a.bitrate.to_string(),
            "-ar".into(),
            a.sample_rate.to_string(),
            "-ac".into(),
            a.channels.to_string(),
        ]);
    }
    cmd.extend(["-threads".into(), threads.max(1).to_string()]);
    cmd.extend(args(&[
        "-map_metadata",
        "-1",
        "-movflags",
        "+faststart",
        "-f",
        "mp4",
    ]));
    cmd.push(path(out));
    Ok(cmd)
}

/// Remux of the encoded MP4 into HLS with MPEG-TS segments `000.ts`, `001.ts`, … and `index.m3u8` in `dir`.
pub fn ts_args(encoded: &Path, dir: &Path, r: &RenditionSpec) -> Vec<String> {
    hls_remux_args(encoded, dir, r, &["-hls_segment_type", "mpegts"], "%03d.ts")
}

/// Remux of the encoded MP4 into HLS with fragmented MP4 segments `000.m4s`, … after one init segment
/// `init.mp4` (`EXT-X-MAP`, RFC 8216bis §4.4.4.5), and `index.m3u8` in `dir`: audio and video muxed in each
/// segment, as a CMAF channel's variant stream carries them, so the ad splices into such a variant as the TS
/// form splices into a TS one. (The `cmaf/` form keeps one track per file, for DASH and audio renditions.)
pub fn fmp4_args(encoded: &Path, dir: &Path, r: &RenditionSpec) -> Vec<String> {
    hls_remux_args(
        encoded,
        dir,
        r,
        &[
            "-hls_segment_type",
            "fmp4",
            "-hls_fmp4_init_filename",
            "init.mp4",
        ],
        "%03d.m4s",
    )
}

/// `-c copy` into a VOD HLS media playlist `index.m3u8` in `dir`, segments named by `pattern`: the encode put
/// a keyframe at every segment boundary, so every form cuts at the same frames.
fn hls_remux_args(
    encoded: &Path,
    dir: &Path,
    r: &RenditionSpec,
    segment_type: &[&str],
    pattern: &str,
) -> Vec<String> {
    let mut a = args(&[
        "-hide_banner",
        "-nostdin",
        "-nostats",
        "-v",
        "error",
        "-y",
        "-i",
    ]);
    a.push(path(encoded));
    a.extend(args(&["-map", "0", "-c", "copy", "-f", "hls", "-hls_time"]));
    a.push(r.segment_seconds().to_string());
    a.extend(args(&["-hls_playlist_type", "vod"]));
    a.extend(args(segment_type));
    a.extend(args(&[
        "-hls_flags",
        "independent_segments",
        "-hls_segment_filename",
    ]));
    a.push(path(&dir.join(pattern)));
    a.push(path(&dir.join("index.m3u8")));
    a
}

/// Remux of the encoded MP4 into CMAF segments with a DASH MPD (`manifest.mpd`) and HLS playlists
/// (`index.m3u8`, `media_N.m3u8`) over the same segments, in `dir`.
pub fn cmaf_args(encoded: &Path, dir: &Path, r: &RenditionSpec) -> Vec<String> {
    let mut a = args(&[
        "-hide_banner",
        "-nostdin",
        "-nostats",
        "-v",
        "error",
        "-y",
        "-i",
    ]);
    a.push(path(encoded));
    a.extend(args(&["-map", "0:v:0"]));
    if r.audio.is_some() {
        a.extend(args(&["-map", "0:a:0"]));
    }
    a.extend(args(&["-c", "copy", "-f", "dash", "-seg_duration"]));
    a.push(r.segment_seconds().to_string());
    a.extend(args(&[
        "-use_template",
        "1",
        "-use_timeline",
        "1",
        "-hls_playlist",
        "1",
        "-hls_master_name",
        "index.m3u8",
        "-write_prft",
        "0",
        "-format_options",
        "movflags=+cmaf",
        "-init_seg_name",
        "init-$RepresentationID$.m4s",
        "-media_seg_name",
        "seg-$RepresentationID$-$Number%03d$.m4s",
        "-adaptation_sets",
    ]));
    a.push(
        if r.audio.is_some() {
            "id=0,streams=v id=1,streams=a"
        } else {
            "id=0,streams=v"
        }
        .into(),
    );
    a.push(path(&dir.join("manifest.mpd")));
    a
}

#[cfg(test)]
mod tests;
