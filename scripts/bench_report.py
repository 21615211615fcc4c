#!/usr/bin/env python3
"""Turns the raw outputs of scripts/bench.sh (bench/raw) into bench/results.json and bench/results.md."""
import json, os, platform, re, subprocess, sys, datetime

raw, out = sys.argv[1], sys.argv[2]
line = re.compile(r"^test (.+?) \.\.\. bench:\s+([\d,]+) ns/iter \(\+/- ([\d,]+)\)")
criterion = []
for name in sorted(os.listdir(raw)):
    if not name.startswith("criterion-"):
        continue
    source = name[len("criterion-"):-len(".txt")]
    for l in open(os.path.join(raw, name)):
        m = line.match(l.strip())
        if m:
            criterion.append({
                "bench": source,
                "name": m.group(1),
                "ns_per_iter": int(m.group(2).replace(",", "")),
                "spread_ns": int(m.group(3).replace(",", "")),
            })
http = {k: json.load(open(os.path.join(raw, f"http-{k}.json"))) for k in ("stitcher", "ingest", "decisions", "pipeline", "edge")}
# Memory after a burst and restart times (bench memory, bench restart), when the run measured them.
extra = {k: json.load(open(os.path.join(raw, f"{k}.json"))) for k in ("memory", "restart", "demand", "break-start")
         if os.path.exists(os.path.join(raw, f"{k}.json"))}

def cpu():
    try:
        for l in open("/proc/cpuinfo"):
            if l.startswith("model name"):
                return l.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()

commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
results = {
    "when": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    "commit": commit,
    "machine": {"cpu": cpu(), "cores": os.cpu_count(), "os": platform.platform()},
    "criterion": criterion,
    "http": http,
    **extra,
}
json.dump(results, open(os.path.join(out, "results.json"), "w"), indent=2)

def rate(r):
    return r["requests_per_sec"]

rows = []
s, i, d = http["stitcher"], http["ingest"], http["decisions"]
rows.append(("stitched media playlists", f"{rate(s['stitched']):,.0f} req/s",
             f"origin playlist from memory {rate(s['passthrough']):,.0f} req/s", f"{s['ratio']:.2f}×"))
rows.append(("durable event ingestion", f"{i['durable_events_per_sec']:,.0f} events/s",
             f"same server, not persisting {i['not_persisting_events_per_sec']:,.0f} events/s", f"{i['ratio']:.2f}×"))
if os.path.exists(os.path.join(raw, "http-ingest-steady.json")):
    st = json.load(open(os.path.join(raw, "http-ingest-steady.json")))
    rows.append((f"durable event ingestion, {st['prefill']:,} events already stored",
                 f"{st['durable_events_per_sec']:,.0f} events/s",
                 f"same server, not persisting {st['not_persisting_events_per_sec']:,.0f} events/s",
                 f"{st['ratio']:.2f}×"))
rows.append(("decision herd (GET /v1/vast, distinct viewers)", f"{rate(d['decisions']):,.0f} pods/s",
             f"static bytes from the same server {rate(d['static']):,.0f} req/s", f"{d['ratio']:.2f}×"))
if os.path.exists(os.path.join(raw, "http-decisions-realistic.json")):
    r = json.load(open(os.path.join(raw, "http-decisions-realistic.json")))
    rows.append(("decision herd, 10,000 line items with caps (GET /v1/vast, 100,000 viewers)",
                 f"{rate(r['decisions']):,.0f} pods/s, p99 {r['decisions']['latency']['p99_us'] / 1000:.0f} ms",
                 f"static bytes from the same server {rate(r['static']):,.0f} req/s", f"{r['ratio']:.2f}×"))
if "break-start" in extra:
    b = extra["break-start"]
    h, c = b["history"], b["counters_baseline"]
    rows.append((f"break start in the engine: {b['viewers']:,} viewers, {b['line_items']:,} line items "
                 f"({b['line_items_with_caps']:,} capped), {b['threads']} threads",
                 f"{h['wall_secs']:.2f} s = {h['decisions_per_sec']:,.0f} decisions/s, "
                 f"p99 {h['p99_us']:.0f} µs, {h['cpu_us_per_decision']:.1f} µs CPU each",
                 f"caps per line item {c['decisions_per_sec']:,.0f} decisions/s", f"{b['ratio']:.2f}×"))
if "demand" in extra:
    t = extra["demand"]
    rows.append((f"pods with third-party demand (VAST tag, fast DSP, DSP past tmax {t['tmax_ms']} ms)",
                 f"{t['with_demand']['decisions_per_sec']:,.0f} pods/s, p99 {t['with_demand']['p99_us'] / 1000:.0f} ms",
                 f"direct-sold only {t['direct_only']['decisions_per_sec']:,.0f} pods/s, "
                 f"p99 {t['direct_only']['p99_us'] / 1000:.0f} ms",
                 f"{t['ratio']:.2f}×"))
p = http["pipeline"]
rows.append((f"event pipeline, distributed (Kafka, {p['processors']} processors, PostgreSQL)",
             f"{p['distributed_events_per_sec']:,.0f} events/s",
             f"embedded (redb group commit) {p['embedded_events_per_sec']:,.0f} events/s",
             f"{p['ratio_distributed_vs_embedded']:.2f}×"))
e = http["edge"]
beacons_apart = json.load(open(os.path.join(raw, "http-edge-beacons.json")))
edge_runs = [("one listener", e), ("beacon listener", beacons_apart)]
beacon_cpus_file = os.path.join(raw, "http-edge-beacon-cpus.json")
if os.path.exists(beacon_cpus_file):  # only on machines with two CPUs or more
    edge_runs.append(("beacon listener on CPUs of its own", json.load(open(beacon_cpus_file))))
for label, run in edge_runs:
    for storm in run["storms"]:
        rows.append((f"playlist p99 during a beacon storm of {storm['connections']:,} connections ({label})",
                     f"{storm['playlist_p99_us_median'] / 1000:.1f} ms",
                     f"no storm, alternating slices {run['unloaded_playlist_p99_us_median'] / 1000:.1f} ms",
                     f"{storm['ratio_to_unloaded']:.2f}×"))
if "memory" in extra:
    m = extra["memory"]
    a, b = m["a"], m["b"]
    run = m["runs"][0][0]
    mib = lambda v: f"{v / 1048576:,.0f} MiB"
    rows.append((f"RSS {len(run['samples_rss_bytes'])} s after a burst ({run['sessions']:,} sessions, "
                 f"{run['beacons_acknowledged']:,} beacons), {a['allocator']}",
                 f"{mib(a['median_end_rss_bytes'])} = {a['median_ratio_to_baseline']:.2f}× its baseline "
                 f"(peak {mib(a['median_peak_rss_bytes'])})",
                 f"{b['allocator']} allocator {mib(b['median_end_rss_bytes'])} = "
                 f"{b['median_ratio_to_baseline']:.2f}× its baseline (peak {mib(b['median_peak_rss_bytes'])})",
                 f"{m['median_end_rss_ratio_a_to_b']:.2f}×"))
if "restart" in extra:
    r = extra["restart"]
    for kind, name in (("after_sigterm", "SIGTERM"), ("after_sigkill", "SIGKILL")):
        large, empty = r["large"][kind], r["empty"][kind]
        rows.append((f"restart to ready after {name}, {r['store_bytes'] / 1e9:.2f} GB event store "
                     f"(repaired {large['repaired']}/{len(large['starts'])})",
                     f"{large['ready_secs']['median']:.2f} s (min {large['ready_secs']['min']:.2f}, "
                     f"max {large['ready_secs']['max']:.2f})",
                     f"empty store {empty['ready_secs']['median']:.2f} s",
                     f"{r['median_ratios'][kind + '_large_to_empty']:.2f}×"))
md = [f"# Benchmark results", "",
      f"{results['when']}, commit {commit}, {results['machine']['cpu']} ({results['machine']['cores']} cores); "
      "the load generator shares the machine with the server.", "",
      "| HTTP scenario | measured | baseline (same run) | ratio |", "|---|---|---|---|"]
md += [f"| {a} | {b} | {c} | {r} |" for a, b, c, r in rows]
md += ["", "| criterion benchmark | time per iteration |", "|---|---|"]
for c in criterion:
    ns = c["ns_per_iter"]
    shown = f"{ns / 1e6:.2f} ms" if ns >= 1e6 else (f"{ns / 1e3:.2f} µs" if ns >= 1e3 else f"{ns} ns")
    md.append(f"| {c['bench']} / {c['name']} | {shown} |")
one = e["sessions_one_client"]
flood = e["session_flood"]
mib = lambda b: f"{b / 1048576:,.0f} MiB" if b else "?"
md += ["", "| edge under hostile load | figure |", "|---|---|",
       f"| sessions one client creates before its first 429 | {one['created_before_first_429']:,} |",
       f"| sessions one client creates per second, sustained | {one['created_per_sec_over_the_window']:.1f} |",
       f"| server RSS before / after {flood['attempts']:,} session attempts from one client | "
       f"{mib(flood['server_rss_before_bytes'])} / {mib(flood['server_rss_after_bytes'])} |"]
open(os.path.join(out, "results.md"), "w").write("\n".join(md) + "\n")
print("\n".join(md))
