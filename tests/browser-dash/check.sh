#!/usr/bin/env bash
# Other players' manifest parsers read the dash crate's stitched session MPDs: video.js's mpd-parser, Shaka
# Player's DashParser and dash.js's MediaPlayer, in Node (no browser). The MPDs are a TS and an fMP4 live channel
# before, during and after an ad break and once it left the window (crates/dash/examples/session_mpds.rs); each
# must parse without error into one track per content rendition across the Periods. Installs the npm packages
# (package-lock.json) when missing. Ends with "N passed, N failed".
#
#   tests/browser-dash/check.sh          # honours CARGO_TARGET_DIR
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "missing node/npm: install Debian's nodejs and npm packages" >&2
  exit 1
fi
for pkg in mpd-parser shaka-player dashjs; do
  if [ ! -d "$here/node_modules/$pkg" ]; then
    echo "== npm ci (tests/browser-dash)" >&2
    (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
    break
  fi
done

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
echo "== session MPDs (cargo run -p interlude-dash --example session_mpds)" >&2
(cd "$root" && cargo run --quiet --locked -p interlude-dash --example session_mpds -- "$out")
node "$here/check.mjs" "$out"
