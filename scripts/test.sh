#!/usr/bin/env bash
# Runs every check CI runs: formatting, lints, and all tests. Installs and starts what the tests need when it is
# missing (Debian packages; later Redis, PostgreSQL and a Kafka-protocol broker), so it passes on a fresh machine.
#
#   scripts/test.sh            # everything
#   SKIP_LINT=1 scripts/test.sh  # tests only (quicker while iterating)
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*" >&2; }

apt_updated=0
need_apt() { # need_apt COMMAND PACKAGE
  if ! command -v "$1" >/dev/null 2>&1; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
      echo "missing $1: install the Debian package $2 (needs root and apt-get)" >&2
      exit 1
    fi
    if [ "$apt_updated" = 0 ]; then
      log "apt-get update"
      apt-get update -qq
      apt_updated=1
    fi
    log "Installing $2 (for $1)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
  fi
}

log "Checking test dependencies"
need_apt ffmpeg ffmpeg          # decodes the simulator's and the stitcher's streams in end-to-end tests
need_apt redis-server redis-server  # shared state of distributed mode and operator controls (real servers)
need_apt pg_isready postgresql-client
log "Redis, PostgreSQL and the Kafka-protocol broker (scripts/services.sh)"
eval "$(scripts/services.sh)"
need_apt ffprobe ffmpeg
need_apt xmllint libxml2-utils  # validates written VAST against the IAB XSD

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
if [ "${CI:-}" = "true" ]; then
  export CARGO_INCREMENTAL=0
fi

if [ -z "${SKIP_LINT:-}" ]; then
  log "cargo fmt --check"
  cargo fmt --all -- --check
  log "cargo clippy"
  cargo clippy --workspace --all-targets --locked -- -D warnings
fi

log "Tests"
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
  # nextest does not run doctests.
  cargo test --workspace --locked --doc
else
  cargo test --workspace --locked --no-fail-fast
fi

log "Prometheus rules and the Grafana dashboard (promtool)"
scripts/check-deploy.sh
log "Browser: dashboard and hls.js across a break (headless Chromium)"
scripts/browser-test.sh
log "All checks passed"
