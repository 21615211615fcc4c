#!/usr/bin/env bash
# Headless-Chromium checks (issue 10): the dashboard shows live numbers that update while the load generator
# runs (screenshot in target/dashboard.png), and hls.js plays a stitched stream across a break whose ad beacons
# are then counted, on the TS channel and on its CMAF twin (tests/browser/cmaf.mjs). Installs Debian's chromium
# and the npm packages in tests/browser when missing.
# Shaka Player plays a stitched DASH session through a break too (tests/browser/dash.mjs); BROWSER_TEST_DASH names the
# players (default "shaka"; "" for none; "shaka dashjs" adds dash.js, which needs the CMAF origin). On the CMAF channel
# (live1-cmaf: fMP4 ads and slate as separate video and audio tracks) BROWSER_TEST_DASH_CMAF names them (default
# "dashjs shaka").
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*" >&2; }

if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing chromium: install Debian's chromium package" >&2
    exit 1
  fi
  log "apt-get install chromium"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
if [ ! -d tests/browser/node_modules/playwright-core ] || [ ! -d tests/browser/node_modules/hls.js ] ||
  [ ! -d tests/browser/node_modules/dashjs ] || [ ! -d tests/browser/node_modules/shaka-player ]; then
  log "npm ci (tests/browser)"
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi

log "cargo build -p interlude"
cargo build --locked -p interlude
bin="${CARGO_TARGET_DIR:-target}/debug/interlude"
port="${BROWSER_TEST_PORT:-18400}"
base="http://127.0.0.1:$port"
workdir=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$workdir"
}
trap cleanup EXIT

log "interlude demo (no built-in viewers) on $base"
INTERLUDE_EVENTS__DATA_DIR="$workdir/events" "$bin" demo --viewers 0 --duration-secs 0 --speed 2 \
  --listen "127.0.0.1:$port" --origin-listen "127.0.0.1:$((port + 1))" >"$workdir/demo.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  curl -fsS "$base/readyz" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fsS "$base/readyz" >/dev/null || { cat "$workdir/demo.log" >&2; exit 1; }

# Interstitials are played by the player in real time against a live edge: a second demo at 1x speed, so the
# live window does not outrun hls.js while it plays the ads. Its 36 s breaks take two 15 s ads (or one 30 s
# promo) and slate for the rest, so the slate asset is played too.
sgai_port=$((port + 2))
sgai_base="http://127.0.0.1:$sgai_port"
# This one has a read token (edge.read_token): the checks read its per-ad event counts with it.
# It delivers ads by proxy (retimed onto the content's timestamps): over MPEG-TS DASH, Chromium's MSE reads
# the 33-bit PTS relative to the previous segment, so when an ad's own PTS (about 1.4 s) and the content's
# (anywhere in its 26.5 h cycle) are more than 2^32 ticks apart, it takes the jump for a wrap and places the
# content after the break 26.5 h away: Shaka Player then stalls after every break for half of each cycle.
# Proxy delivery keeps one timeline, as it does for decoders that ignore HLS discontinuities.
INTERLUDE_READ_TOKEN=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
export INTERLUDE_READ_TOKEN
log "interlude demo at 1x (no built-in viewers) on $sgai_base, for HLS Interstitials and DASH"
INTERLUDE_STITCHER__AD_DELIVERY=proxy INTERLUDE_EDGE__READ_TOKEN="$INTERLUDE_READ_TOKEN" INTERLUDE_EVENTS__DATA_DIR="$workdir/events-sgai" "$bin" demo --viewers 0 --duration-secs 0 \
  --break-interval-secs 60 --break-duration-secs 36 --listen "127.0.0.1:$sgai_port" --origin-listen "127.0.0.1:$((sgai_port + 1))" >"$workdir/demo-sgai.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  curl -fsS "$sgai_base/readyz" >/dev/null 2>&1 && break
  sleep 0.2
done

log "interlude loadgen --viewers 20 (background)"
"$bin" loadgen --viewers 20 --base "$base" --speed 2 --refresh-ms 1000 -d 240 >"$workdir/loadgen.log" 2>&1 &
pids+=($!)

log "node tests/browser/run.mjs"
mkdir -p target
if ! node tests/browser/run.mjs "$base" target/dashboard.png "$sgai_base"; then
  echo "--- demo log (tail)" >&2
  tail -n 40 "$workdir/demo.log" >&2
  exit 1
fi

# hls.js on the demo's CMAF (fragmented MP4) channel: through a break into the fMP4 ad (its EXT-X-MAP) and
# back, the ad's beacons counted; then dash.js on the origin's CMAF MPD (tests/browser/cmaf.mjs).
log "node tests/browser/cmaf.mjs $base"
if ! node tests/browser/cmaf.mjs "$base" live1-cmaf "http://127.0.0.1:$((port + 1))"; then
  echo "--- demo log (tail)" >&2
  tail -n 40 "$workdir/demo.log" >&2
  exit 1
fi

# The DASH players run on the 1x demo alone: the 2x demo and its load generator are done with, and on a
# two-core machine their work would starve the player and the server it plays from (a starved server sheds
# requests with 503, and the player stalls on segments that come late).
for p in "${pids[@]:0:1}" "${pids[@]:2}"; do kill "$p" 2>/dev/null || true; done

# DASH players on a stitched DASH session of the 1x demo, through a break, the ad's beacons read back with the
# read token (tests/browser/dash.mjs). Shaka Player by default. dash.js is opt-in (BROWSER_TEST_DASH="shaka dashjs"):
# it asks every Representation for an initialization segment, which the MPEG-TS origin does not have (the CMAF
# channel below has them).
for player in ${BROWSER_TEST_DASH-shaka}; do
  log "node tests/browser/dash.mjs $sgai_base $player"
  if ! node tests/browser/dash.mjs "$sgai_base" "$player"; then
    echo "--- demo log (tail)" >&2
    tail -n 40 "$workdir/demo-sgai.log" >&2
    exit 1
  fi
done

# The same over the CMAF origin (live1-cmaf): fMP4 content with separate video and audio AdaptationSets, the ads
# and slate served one track at a time. dash.js and Shaka Player both, the ad's six beacons counted.
for player in ${BROWSER_TEST_DASH_CMAF-dashjs shaka}; do
  log "node tests/browser/dash.mjs $sgai_base $player live1-cmaf"
  if ! node tests/browser/dash.mjs "$sgai_base" "$player" live1-cmaf; then
    echo "--- demo log (tail)" >&2
    tail -n 40 "$workdir/demo-sgai.log" >&2
    exit 1
  fi
done
