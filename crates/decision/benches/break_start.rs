//! A break start at real scale: 100,000 viewers of one live break decided against a realistic catalog of
//! 10,000 line items (`interlude_decision::testing`), the old path (the engine at f694881: targeting index,
//! then per-candidate counter reads) against the new one (one break plan, one history read per viewer), in
//! the same run and interleaved chunk by chunk. Per-decision times go into a histogram outside criterion and
//! are printed with the CPU time each path used (a shared machine makes wall time wait for a core);
//! criterion then times single decisions.
//!
//! `cargo bench -p interlude-decision --bench break_start -- --warm-up-time 1 --measurement-time 5`

use std::hint::black_box;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use criterion::{Criterion, criterion_main};
use interlude_decision::PodRequest;
use interlude_decision::engine::Engine;
use interlude_decision::testing::{herd, realistic_catalog};

#[path = "support/baseline_engine.rs"]
#[allow(dead_code, unreachable_pub, missing_docs, clippy::all)]
mod baseline;

const LINE_ITEMS: usize = 10_000;
const CHUNK: usize = 10_000;

/// The herd's size: 100,000, or `BREAK_START_VIEWERS` for a quick run (profiling, iterating).
fn viewers() -> usize {
    std::env::var("BREAK_START_VIEWERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

/// Per-decision times: exact percentiles from the sorted samples, and a log-scale histogram.
struct Latencies(Vec<Duration>);

impl Latencies {
    fn pct(&self, p: f64) -> Duration {
        let mut v = self.0.clone();
        v.sort_unstable();
        v.get(((v.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or_default()
    }

    fn print(&self, name: &str, wall: Duration, cpu: Duration) {
        println!(
            "{name}: {} decisions in {:.2} s wall = {:.0}/s; {:.1} µs CPU per decision = {:.0}/s per core; p50 {:?} p90 {:?} p99 {:?} p99.9 {:?} max {:?}",
            self.0.len(),
            wall.as_secs_f64(),
            self.0.len() as f64 / wall.as_secs_f64(),
            cpu.as_secs_f64() * 1e6 / self.0.len().max(1) as f64,
            self.0.len() as f64 / cpu.as_secs_f64().max(1e-9),
            self.pct(0.5),
            self.pct(0.9),
            self.pct(0.99),
            self.pct(0.999),
            self.pct(1.0),
        );
        let edges_us = [5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, u64::MAX];
        let mut counts = vec![0usize; edges_us.len()];
        for d in &self.0 {
            let us = d.as_micros() as u64;
            let k = edges_us.iter().position(|&e| us < e).unwrap_or(0);
            counts[k] += 1;
        }
        let mut lower = 0;
        let row: Vec<String> = edges_us
            .iter()
            .zip(&counts)
            .filter(|(_, n)| **n > 0)
            .map(|(&e, n)| {
                let label = if e == u64::MAX {
                    format!("≥{lower}µs")
                } else {
                    format!("<{e}µs")
                };
                lower = e;
                format!("{label}: {n}")
            })
            .collect();
        println!("  histogram {}", row.join(", "));
    }
}

/// CPU time this thread has run, from Linux's schedstat (0 elsewhere): on a shared machine, wall time
/// includes waiting for a core, CPU time does not.
fn thread_cpu() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(Duration::ZERO, Duration::from_nanos)
}

fn timed(requests: &[PodRequest], mut decide: impl FnMut(&PodRequest) -> usize) -> Vec<Duration> {
    requests
        .iter()
        .map(|r| {
            let t = Instant::now();
            black_box(decide(r));
            t.elapsed()
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let now: DateTime<Utc> = "2026-11-23T20:00:00Z".parse().unwrap_or_default();
    let catalog = realistic_catalog(now, LINE_ITEMS, 7);
    catalog.validate().unwrap_or_else(|e| panic!("{e}"));
    let viewers = viewers();
    let herd = herd(&catalog, viewers, now, 11);
    if std::env::var("BREAK_START_PROFILE").is_ok() {
        // Only the new path, three times over the herd: for `perf record` or callgrind.
        let engine = Engine::with_history(catalog.clone(), herd.history.clone(), 6, 500);
        let plan = engine.plan_break("ch0", "final-b7", Some(120.0), now);
        let c = thread_cpu();
        for _ in 0..3 {
            for r in &herd.requests {
                black_box(engine.decide_in(&plan, r));
            }
        }
        println!(
            "{:.1} µs CPU per decision",
            (thread_cpu() - c).as_secs_f64() * 1e6 / (3 * herd.requests.len()) as f64
        );
        return;
    }
    if std::env::var("BREAK_START_DIGEST").is_ok() {
        // What the new path decides, as one number: the same before and after a change that must not
        // change decisions.
        let engine = Engine::with_history(catalog.clone(), herd.history.clone(), 6, 500);
        let plan = engine.plan_break("ch0", "final-b7", Some(120.0), now);
        let mut digest = String::new();
        for r in &herd.requests {
            let d = engine.decide_in(&plan, r);
            for ad in &d.pod.ads {
                digest.push_str(&ad.creative_id);
                digest.push(',');
            }
            digest.push_str(&d.unfilled_ms.to_string());
            digest.push(';');
        }
        println!(
            "digest of {} decisions: {:016x}",
            herd.requests.len(),
            interlude_decision::engine::stable_hash(&[&digest])
        );
        return;
    }
    let old = baseline::Engine::new(catalog.clone(), herd.counters.clone(), 6, 500);
    let new = Engine::with_history(catalog.clone(), herd.history.clone(), 6, 500);
    // The same engine over the older per-line-item counters: the restructured walk without the history seam.
    let compat = Engine::new(catalog, herd.counters.clone(), 6, 500);

    // The new path chooses differently on purpose (the knapsack, creative rotation, more cap scopes), so the
    // pods are compared by what they deliver, not ad by ad.
    let (mut old_fill, mut new_fill) = (0u64, 0u64);
    for r in herd.requests.iter().step_by(97) {
        old_fill += u64::from(120_000 - old.decide(r, now, false).unfilled_ms.min(120_000));
        new_fill += u64::from(120_000 - new.decide(r, now, false).unfilled_ms.min(120_000));
    }
    println!(
        "sampled fill of the 120 s break: old {:.1} %, new {:.1} %",
        old_fill as f64 / (viewers.div_ceil(97) as f64 * 1200.0),
        new_fill as f64 / (viewers.div_ceil(97) as f64 * 1200.0)
    );

    // Interleaved, one core: chunk k through the old path, then the same chunk through the new ones.
    let (mut t_old, mut t_compat, mut t_new, mut t_many) = (vec![], vec![], vec![], vec![]);
    let (mut w_old, mut w_compat, mut w_new, mut w_many) = (
        Duration::ZERO,
        Duration::ZERO,
        Duration::ZERO,
        Duration::ZERO,
    );
    let mut filled = (0usize, 0usize);
    let (mut c_old, mut c_compat, mut c_new, mut c_many) = (
        Duration::ZERO,
        Duration::ZERO,
        Duration::ZERO,
        Duration::ZERO,
    );
    // The old path is slow: it runs on every fifth chunk (20,000 viewers), interleaved with the new ones.
    for (k, chunk) in herd.requests.chunks(CHUNK).enumerate() {
        if k % 5 == 0 {
            let (t, c) = (Instant::now(), thread_cpu());
            t_old.extend(timed(chunk, |r| old.decide(r, now, false).pod.ads.len()));
            (w_old, c_old) = (w_old + t.elapsed(), c_old + (thread_cpu() - c));
            let (t, c) = (Instant::now(), thread_cpu());
            t_compat.extend(timed(chunk, |r| compat.decide(r, now, false).pod.ads.len()));
            (w_compat, c_compat) = (w_compat + t.elapsed(), c_compat + (thread_cpu() - c));
        }
        let (t, c) = (Instant::now(), thread_cpu());
        t_new.extend(timed(chunk, |r| {
            let d = new.decide(r, now, false);
            filled.0 += d.pod.ads.len();
            d.pod.ads.len()
        }));
        (w_new, c_new) = (w_new + t.elapsed(), c_new + (thread_cpu() - c));
        let (t, c) = (Instant::now(), thread_cpu());
        let plan = new.plan_break("ch0", "final-b7", Some(120.0), now);
        t_many.extend(timed(chunk, |r| {
            let d = new.decide_in(&plan, r);
            filled.1 += d.pod.ads.len();
            d.pod.ads.len()
        }));
        (w_many, c_many) = (w_many + t.elapsed(), c_many + (thread_cpu() - c));
    }
    println!(
        "catalog: {LINE_ITEMS} line items; herd: {viewers} viewers at one 120 s break; {:.2} ads per pod",
        filled.0 as f64 / viewers as f64
    );
    let old_n = t_old.len().max(1) as f64;
    let old_l = Latencies(t_old);
    old_l.print(
        "old path (f694881 engine, per-line-item counters), 1 core",
        w_old,
        c_old,
    );
    Latencies(t_compat).print(
        "restructured engine over the same per-line-item counters, 1 core",
        w_compat,
        c_compat,
    );
    let new_l = Latencies(t_new);
    new_l.print(
        "new path: Engine::decide (plan cached per break, one history read), 1 core",
        w_new,
        c_new,
    );
    Latencies(t_many).print(
        "new path: plan_break once + decide_in, 1 core",
        w_many,
        c_many,
    );

    // Two cores: one plan, the herd split across two threads.
    let plan = new.plan_break("ch0", "final-b7-2", Some(120.0), now);
    let started = Instant::now();
    let halves: Vec<(Vec<Duration>, Duration)> = std::thread::scope(|s| {
        let handles: Vec<_> = herd
            .requests
            .chunks(viewers.div_ceil(2))
            .map(|part| {
                let (new, plan) = (&new, &plan);
                s.spawn(move || {
                    let c = thread_cpu();
                    let t = timed(part, |r| new.decide_in(plan, r).pod.ads.len());
                    (t, thread_cpu() - c)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let two = started.elapsed();
    let cpu: Duration = halves.iter().map(|h| h.1).sum();
    let times: Vec<Duration> = halves.into_iter().flat_map(|h| h.0).collect();
    Latencies(times).print("new path: plan_break once + decide_in, 2 threads", two, cpu);
    // The herd through `decide_many`: planned once, split across the cores.
    let engine = Engine::with_history(new.catalog().clone(), herd.history.clone(), 6, 500);
    let (t, c0) = (Instant::now(), thread_cpu());
    let decided = engine.decide_many(&herd.requests, now);
    let (wall, caller_cpu) = (t.elapsed(), thread_cpu() - c0);
    black_box(&decided);
    println!(
        "decide_many on {} threads: {} viewers in {:.2} s wall = {:.0} decisions/s (the calling thread used {:.2} s CPU)",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        decided.len(),
        wall.as_secs_f64(),
        decided.len() as f64 / wall.as_secs_f64(),
        caller_cpu.as_secs_f64(),
    );
    println!(
        "ratio new/old, CPU per decision: {:.1}x; wall, 1 core: {:.1}x; p50 old {:?} new {:?}; p99 old {:?} new {:?}",
        (c_old.as_secs_f64() / old_n) / (c_many.as_secs_f64() / viewers as f64),
        (w_old.as_secs_f64() / old_n) / (w_many.as_secs_f64() / viewers as f64),
        old_l.pct(0.5),
        new_l.pct(0.5),
        old_l.pct(0.99),
        new_l.pct(0.99)
    );

    let mut g = c.benchmark_group("break_start");
    let mut k = 0;
    let mut next = || {
        k = (k + 7919) % viewers;
        &herd.requests[k]
    };
    g.bench_function("old_decide_one_viewer", |b| {
        b.iter(|| old.decide(black_box(next()), now, false))
    });
    g.bench_function("new_decide_one_viewer", |b| {
        b.iter(|| new.decide(black_box(next()), now, false))
    });
    g.finish();
}

/// criterion's macro generates an undocumented `pub fn`.
mod group {
    #![allow(missing_docs, unreachable_pub)]
    criterion::criterion_group!(benches, super::bench);
}
criterion_main!(group::benches);
