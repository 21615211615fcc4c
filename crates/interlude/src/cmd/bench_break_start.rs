//! `interlude bench break-start`: the whole audience of a live break decided at once, in the engine.
//!
//! A generated catalog shaped like a large live event's (`interlude_decision::testing::realistic_catalog`:
//! 10,000 line items in tiers and flights, targeting on geo, device, daypart, key-values and segments, about
//! 80% with per-viewer caps at line item and campaign level, pacing goals, competitive categories) and a herd
//! of 100,000 viewers of one 120 s break with varied contexts and cap histories (up to 40 past impressions
//! each). The cue arrives; every viewer's pod is decided on all cores (one break plan, the herd split across
//! threads, as [`Engine::decide_many`] does), and this command reports the wall time until the last pod,
//! decisions/s, per-decision p50/p99/max, the process's CPU time and its RSS.
//!
//! The baseline, in the same run and alternated round by round so drift cannot fake the ratio, is the same
//! herd through the older seam that the server used until now: caps read from per-line-item counters (one
//! read per capped candidate, memoised per decision) instead of one read of the viewer's history. Both read
//! memory, so the ratio is the engine's own cost; a store adds its read per decision (embedded) or per viewer
//! prefetch (Redis) on top.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use interlude_decision::PodRequest;
use interlude_decision::engine::Engine;
use interlude_decision::testing::{Herd, herd, realistic_catalog};

/// Flags for `interlude bench break-start`.
#[derive(Debug, clap::Args)]
pub(crate) struct BreakStartBenchArgs {
    /// Line items in the generated catalog.
    #[arg(long, default_value_t = 10_000)]
    line_items: usize,
    /// Viewers at the break.
    #[arg(long, default_value_t = 100_000)]
    viewers: usize,
    /// Rounds of each path, alternated (history, counters, history, …).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Threads deciding (default: the machine's cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// One round: the herd decided on `threads` threads.
#[derive(Debug, Clone, serde::Serialize)]
struct Round {
    wall_secs: f64,
    decisions_per_sec: f64,
    cpu_secs: f64,
    cpu_us_per_decision: f64,
    p50_us: f64,
    p99_us: f64,
    max_us: f64,
    ads_per_pod: f64,
}

/// CPU time of this process so far (user + system), from `/proc/self/stat` (zero elsewhere).
fn process_cpu() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return Duration::ZERO;
    };
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return Duration::ZERO;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the command name.
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
        .sum();
    // USER_HZ is 100 on every Linux this runs on.
    Duration::from_millis(ticks * 10)
}

fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    sorted
        .get(((sorted.len().saturating_sub(1)) as f64 * p) as usize)
        .map_or(0.0, |d| d.as_secs_f64() * 1e6)
}

/// Decides every viewer of `requests` on `threads` threads from one break plan, timing each decision.
fn decide_herd(
    engine: &Engine,
    requests: &[PodRequest],
    now: DateTime<Utc>,
    threads: usize,
) -> Round {
    let (cpu0, started) = (process_cpu(), Instant::now());
    let plan = engine.plan_break("ch0", "final-b7", Some(120.0), now);
    let chunk = requests.len().div_ceil(threads.max(1)).max(1);
    let parts: Vec<(Vec<Duration>, usize)> = std::thread::scope(|s| {
        let handles: Vec<_> = requests
            .chunks(chunk)
            .map(|part| {
                let plan = &plan;
                s.spawn(move || {
                    let mut times = Vec::with_capacity(part.len());
                    let mut ads = 0;
                    for r in part {
                        let t = Instant::now();
                        ads += engine.decide_in(plan, r).pod.ads.len();
                        times.push(t.elapsed());
                    }
                    (times, ads)
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    let wall = started.elapsed();
    let cpu = process_cpu().saturating_sub(cpu0);
    let ads: usize = parts.iter().map(|p| p.1).sum();
    let mut times: Vec<Duration> = parts.into_iter().flat_map(|p| p.0).collect();
    times.sort_unstable();
    let n = times.len().max(1) as f64;
    Round {
        wall_secs: wall.as_secs_f64(),
        decisions_per_sec: n / wall.as_secs_f64().max(1e-9),
        cpu_secs: cpu.as_secs_f64(),
        cpu_us_per_decision: cpu.as_secs_f64() * 1e6 / n,
        p50_us: percentile(&times, 0.5),
        p99_us: percentile(&times, 0.99),
        max_us: percentile(&times, 1.0),
        ads_per_pod: ads as f64 / n,
    }
}

fn median(rounds: &[Round], f: impl Fn(&Round) -> f64) -> f64 {
    let mut v: Vec<f64> = rounds.iter().map(f).collect();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn engines(catalog: &interlude_decision::catalog::Catalog, herd: &Herd) -> (Engine, Engine) {
    (
        Engine::with_history(catalog.clone(), herd.history.clone(), 6, 500),
        Engine::new(catalog.clone(), herd.counters.clone(), 6, 500),
    )
}

pub(crate) async fn run(args: BreakStartBenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.viewers > 0, "--viewers must be positive");
    anyhow::ensure!(args.line_items > 0, "--line-items must be positive");
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let result = tokio::task::spawn_blocking(move || measure(&args, threads)).await??;
    if result.1 {
        println!("{}", serde_json::to_string_pretty(&result.0)?);
    }
    Ok(())
}

fn measure(
    args: &BreakStartBenchArgs,
    threads: usize,
) -> anyhow::Result<(serde_json::Value, bool)> {
    let now: DateTime<Utc> = "2026-11-23T20:00:00Z".parse()?;
    let rss_start = rss_bytes();
    let built = Instant::now();
    let catalog = realistic_catalog(now, args.line_items, 7);
    catalog.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
    let herd = herd(&catalog, args.viewers, now, 11);
    let build_secs = built.elapsed().as_secs_f64();
    let rss_built = rss_bytes();
    let capped = catalog
        .line_items
        .iter()
        .filter(|l| !l.frequency_caps.is_empty())
        .count();
    let history_entries: usize = herd
        .history
        .viewers
        .values()
        .map(|h| h.impressions.len())
        .sum();
    if !args.json {
        println!(
            "Break start: {} line items ({capped} with caps), {} viewers ({history_entries} past impressions), {threads} threads; built in {build_secs:.1} s",
            catalog.line_items.len(),
            herd.requests.len(),
        );
    }
    let (mut history_rounds, mut counter_rounds) = (Vec::new(), Vec::new());
    let mut rss_peak = rss_built;
    for round in 0..args.rounds.max(1) {
        // Fresh engines each round: a break's allowances and reservations start from zero, as at a cue.
        let (with_history, with_counters) = engines(&catalog, &herd);
        let h = decide_herd(&with_history, &herd.requests, now, threads);
        rss_peak = rss_peak.max(rss_bytes());
        let c = decide_herd(&with_counters, &herd.requests, now, threads);
        if !args.json {
            println!(
                "  round {}: one history read per viewer {:.2} s ({:.0}/s, p99 {:.0} µs); per-line-item counters {:.2} s ({:.0}/s, p99 {:.0} µs)",
                round + 1,
                h.wall_secs,
                h.decisions_per_sec,
                h.p99_us,
                c.wall_secs,
                c.decisions_per_sec,
                c.p99_us
            );
        }
        history_rounds.push(h);
        counter_rounds.push(c);
    }
    let ratios: Vec<f64> = history_rounds
        .iter()
        .zip(&counter_rounds)
        .map(|(h, c)| h.decisions_per_sec / c.decisions_per_sec.max(1e-9))
        .collect();
    let mut sorted = ratios.clone();
    sorted.sort_by(f64::total_cmp);
    let ratio = sorted.get(sorted.len() / 2).copied().unwrap_or(0.0);
    let mib = |b: Option<u64>| b.map(|b| b as f64 / (1 << 20) as f64);
    let summary = |rounds: &[Round]| {
        serde_json::json!({
            "wall_secs": median(rounds, |r| r.wall_secs),
            "decisions_per_sec": median(rounds, |r| r.decisions_per_sec),
            "cpu_us_per_decision": median(rounds, |r| r.cpu_us_per_decision),
            "p50_us": median(rounds, |r| r.p50_us),
            "p99_us": median(rounds, |r| r.p99_us),
            "max_us": median(rounds, |r| r.max_us),
            "ads_per_pod": median(rounds, |r| r.ads_per_pod),
            "rounds": rounds,
        })
    };
    let result = serde_json::json!({
        "line_items": catalog.line_items.len(),
        "line_items_with_caps": capped,
        "viewers": herd.requests.len(),
        "past_impressions": history_entries,
        "threads": threads,
        "history": summary(&history_rounds),
        "counters_baseline": summary(&counter_rounds),
        "ratio_pairs": ratios,
        "ratio": ratio,
        "rss_mib": { "start": mib(rss_start), "catalog_and_herd": mib(rss_built), "peak": mib(rss_peak) },
    });
    if !args.json {
        let h = &result["history"];
        println!(
            "All {} viewers decided in {:.2} s (median of {} rounds) = {:.0} decisions/s on {threads} threads; {:.1} µs CPU per decision; per decision p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs; {:.2} ads per pod",
            herd.requests.len(),
            h["wall_secs"].as_f64().unwrap_or(0.0),
            history_rounds.len(),
            h["decisions_per_sec"].as_f64().unwrap_or(0.0),
            h["cpu_us_per_decision"].as_f64().unwrap_or(0.0),
            h["p50_us"].as_f64().unwrap_or(0.0),
            h["p99_us"].as_f64().unwrap_or(0.0),
            h["max_us"].as_f64().unwrap_or(0.0),
            h["ads_per_pod"].as_f64().unwrap_or(0.0),
        );
        println!(
            "Baseline, same run: per-line-item counters {:.0} decisions/s; ratio (median of the pairs) {ratio:.2}x",
            result["counters_baseline"]["decisions_per_sec"]
                .as_f64()
                .unwrap_or(0.0)
        );
        println!(
            "RSS: {:.0} MiB at start, {:.0} MiB with the catalog and herd, {:.0} MiB peak",
            mib(rss_start).unwrap_or(0.0),
            mib(rss_built).unwrap_or(0.0),
            mib(rss_peak).unwrap_or(0.0)
        );
    }
    Ok((result, args.json))
}
