//! Durable ingestion against not persisting, in the same run: the known stream (retries, client and server
//! reports, late and invalid events; `interlude_events::testing`) submitted by 16 concurrent producers through
//! the group committer, once into the embedded store (every acknowledgement after the fsync) and once into the
//! `Discard` sink (validated and answered, nothing stored). Producers send batches of 50 events (a player's
//! or collector's request) and of 500 (the stitcher's beacon batches). The store is reused across iterations,
//! so it grows as a serving store does; ids are unique per iteration.
//!
//! `cargo bench -p interlude-store --bench ingest -- --warm-up-time 1 --measurement-time 10`

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_main};
use interlude_events::testing::known_stream;
use interlude_events::{Envelope, Policy};
use interlude_store::{Committer, EventStore, Sink};

const PRODUCERS: usize = 16;

/// The stream with every id made unique to iteration `iter`.
fn iteration(reports: &[Envelope], iter: u64) -> Vec<Envelope> {
    reports
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r.event.event_id = format!("{iter}-{}", r.event.event_id);
            r.event.ad_instance_id = format!("{iter}-{}", r.event.ad_instance_id);
            r.event.session_id = format!("{iter}-{}", r.event.session_id);
            r
        })
        .collect()
}

/// Submits `reports` in batches of `batch` from [`PRODUCERS`] concurrent producers; the time it took.
fn run(
    rt: &tokio::runtime::Runtime,
    committer: &Committer,
    reports: Vec<Envelope>,
    batch: usize,
) -> Duration {
    let mut shares: Vec<Vec<Vec<Envelope>>> = vec![Vec::new(); PRODUCERS];
    for (i, chunk) in reports.chunks(batch).enumerate() {
        shares[i % PRODUCERS].push(chunk.to_vec());
    }
    let started = Instant::now();
    rt.block_on(async {
        let tasks: Vec<_> = shares
            .into_iter()
            .map(|share| {
                let committer = committer.clone();
                tokio::spawn(async move {
                    let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
                    for b in share {
                        black_box(committer.submit_wait(b, deadline).await.ok());
                    }
                })
            })
            .collect();
        for t in tasks {
            let _ = t.await;
        }
    });
    started.elapsed()
}

fn bench(c: &mut Criterion) {
    let stream = known_stream(3, 4_000);
    let now = stream.now;
    let clock: interlude_events::Clock = Arc::new(move || now);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let mut group = c.benchmark_group(format!("ingest_{}_reports", stream.reports.len()));
    group.throughput(Throughput::Elements(stream.reports.len() as u64));
    group.sample_size(10);
    for batch in [50, 500] {
        let discard = Committer::start_sink(Sink::Discard(Policy::default()), clock.clone(), 4096);
        group.bench_function(format!("discard_batch_{batch}"), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|i| run(&rt, &discard, iteration(&stream.reports, i), batch))
                    .sum()
            })
        });
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let store = Arc::new(
            EventStore::open(dir.path(), Policy::default()).unwrap_or_else(|e| panic!("open: {e}")),
        );
        let durable = Committer::start(store, clock.clone());
        let mut round = 0u64;
        group.bench_function(format!("durable_batch_{batch}"), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        round += 1;
                        run(&rt, &durable, iteration(&stream.reports, round), batch)
                    })
                    .sum()
            })
        });
        rt.block_on(durable.shutdown())
            .unwrap_or_else(|e| panic!("shutdown: {e}"));
    }
    group.finish();
}

/// criterion's macro generates an undocumented `pub fn`.
mod group {
    #![allow(missing_docs, unreachable_pub)]
    criterion::criterion_group!(benches, super::bench);
}
criterion_main!(group::benches);
