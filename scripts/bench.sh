#!/usr/bin/env bash
# The benchmark suite: every criterion benchmark of the workspace and the HTTP scenarios (stitched playlists,
# durable beacon ingestion, the decision herd), each HTTP figure paired with a baseline measured in the same run
# against the same server. Writes bench/results.json and bench/results.md.
#
#   scripts/bench.sh            # full run (about 30 minutes on 2 cores, a third of it memory and restarts)
#   QUICK=1 scripts/bench.sh    # shorter measurements, for a smoke run
#
# Numbers are only comparable between runs on the same machine; the ratios are what travel.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*" >&2; }

out=bench
mkdir -p "$out"
# Absolute: cargo bench runs each benchmark in its crate's directory.
raw="$PWD/$out/raw"
rm -rf "$raw"
mkdir -p "$raw"

if [ "${QUICK:-0}" = 1 ]; then
  criterion_args=(--warm-up-time 0.5 --measurement-time 1)
  http_secs=2
  sessions=1000
  memory_args=(--sessions 10000 --beacons 50000 --observe-secs 30)
  restart_args=(--store-mb 100 --runs 2)
else
  criterion_args=(--warm-up-time 1 --measurement-time 4)
  http_secs=8
  sessions=10000
  memory_args=(--sessions 100000 --beacons 500000 --observe-secs 60)
  restart_args=(--store-mb 1000 --runs 5)
fi

target_dir=${CARGO_TARGET_DIR:-target}
log "cargo build --release (first without the jemalloc feature: the system allocator, for bench memory)"
cargo build --release --locked -p interlude --no-default-features
cp "$target_dir/release/interlude" "$target_dir/release/interlude-system-alloc"
cargo build --release --locked
bin=$target_dir/release/interlude

# Criterion benchmarks, in the bencher format (one "test NAME ... bench: N ns/iter (+/- M)" line each). Some
# benchmarks also print their own figures (the decision herd); those lines are kept in the raw logs.
for target in \
  interlude-scte35:codec \
  interlude-hls:playlist \
  interlude-vast:vast \
  interlude-events:pipeline \
  interlude-decision:targeting \
  interlude-decision:decide; do
  crate=${target%%:*}
  bench=${target##*:}
  log "cargo bench -p $crate --bench $bench"
  cargo bench --locked -p "$crate" --bench "$bench" -- "${criterion_args[@]}" --output-format bencher \
    | tee "$raw/criterion-$crate-$bench.txt" >&2
done

log "interlude bench stitcher"
"$bin" bench stitcher --json --secs "$http_secs" --sessions "$sessions" >"$raw/http-stitcher.json"
log "interlude bench ingest"
"$bin" bench ingest --json --secs "$http_secs" >"$raw/http-ingest.json"
# Steady state: the durable store already holds keys, as one that keeps a dedup window does.
if [ "${QUICK:-0}" = 1 ]; then prefill=200000; else prefill=2000000; fi
log "interlude bench ingest --prefill $prefill"
"$bin" bench ingest --json --secs "$http_secs" --prefill "$prefill" >"$raw/http-ingest-steady.json"
log "interlude bench decisions"
"$bin" bench decisions --json --secs "$http_secs" >"$raw/http-decisions.json"
log "interlude bench decisions --realistic-catalog 10000 (the same herd against a large event's catalog)"
"$bin" bench decisions --json --secs "$http_secs" --realistic-catalog 10000 --viewers 100000 \
  >"$raw/http-decisions-realistic.json"
log "interlude bench break-start (100,000 viewers, 10,000 line items, in the engine, A/B against per-line-item counters)"
if [ "${QUICK:-0}" = 1 ]; then break_rounds=1; else break_rounds=3; fi
"$bin" bench break-start --json --rounds "$break_rounds" >"$raw/break-start.json"
log "cargo bench -p interlude-server --bench demand (pods with a VAST tag, a fast and a timing-out DSP, A/B)"
DEMAND_BENCH_SECS=$((http_secs * 2)) DEMAND_BENCH_OUT="$raw/demand.json" \
  cargo bench --locked -p interlude-server --bench demand >&2

log "interlude bench pipeline (embedded vs Kafka + PostgreSQL; starts the servers if needed)"
eval "$(scripts/services.sh)"
if [ "${QUICK:-0}" = 1 ]; then pipeline_events=50000; else pipeline_events=200000; fi
"$bin" bench pipeline --json --events "$pipeline_events" >"$raw/http-pipeline.json"

log "interlude bench edge (playlists under beacon storms, A/B; session floods from one client)"
if [ "${QUICK:-0}" = 1 ]; then
  "$bin" bench edge --json --secs 3 --rounds 1 --storms 512,2048 --session-attempts 100000 >"$raw/http-edge.json"
else
  "$bin" bench edge --json >"$raw/http-edge.json"
fi
log "interlude bench edge --beacon-listener (the same storms at the server's own beacon listener, niced threads)"
if [ "${QUICK:-0}" = 1 ]; then
  "$bin" bench edge --beacon-listener --json --secs 3 --rounds 1 --storms 512,2048 --session-attempts 1000 \
    >"$raw/http-edge-beacons.json"
else
  "$bin" bench edge --beacon-listener --json --session-attempts 1000 >"$raw/http-edge-beacons.json"
fi
log "interlude bench edge --beacon-cpus (beacon threads and store writer on the last CPU, the rest off it)"
last_cpu=$(($(nproc) - 1))
if [ "$last_cpu" -ge 1 ]; then
  edge_cpus=(--server-cpus "0-$last_cpu" --client-cpus 0 --beacon-cpus "$last_cpu" --storm-cpus "$last_cpu")
  if [ "${QUICK:-0}" = 1 ]; then
    "$bin" bench edge --beacon-listener "${edge_cpus[@]}" --json --secs 3 --rounds 1 --storms 512,2048 \
      --session-attempts 1000 >"$raw/http-edge-beacon-cpus.json"
  else
    "$bin" bench edge --beacon-listener "${edge_cpus[@]}" --json --session-attempts 1000 \
      >"$raw/http-edge-beacon-cpus.json"
  fi
fi
log "interlude bench memory (RSS after a burst: jemalloc, this build, against the system allocator)"
"$bin" bench memory --json "${memory_args[@]}" --vs "$target_dir/release/interlude-system-alloc" \
  --origin-listen 127.0.0.1:18185 >"$raw/memory.json"
log "interlude bench restart (time to ready on a large event store after SIGTERM and SIGKILL)"
"$bin" bench restart --json "${restart_args[@]}" >"$raw/restart.json"

log "bench/results.json, bench/results.md"
python3 scripts/bench_report.py "$raw" "$out"
