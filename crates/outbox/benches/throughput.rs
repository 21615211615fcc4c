//! Pixels per second the outbox sustains against a local fast server (HTTP/1.1 on 127.0.0.1, answering 204 at
//! once), against two baselines with the same guarded client in the same run, interleaved round by round:
//! a plain loop of GETs one after the other, and the same GETs with as many in flight as the outbox allows
//! (no queue, no durability). The outbox is measured with one producer and with [`PRODUCERS`] producers
//! enqueueing at once (a server with many sessions reporting), from the first enqueue until every pixel is
//! delivered and recorded.
//!
//! Run: `cargo bench -p interlude-outbox --bench throughput` (`OUTBOX_BENCH_PIXELS`, `OUTBOX_BENCH_ROUNDS`
//! change the size). Results are in `crates/outbox/BENCHMARKS.md`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{PixelServer, Reply, client};
use interlude_outbound::GuardedClient;
use interlude_outbox::{Outbox, OutboxConfig, OutboxStore, Pixel, PixelEvent, RedbStore};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

const IN_FLIGHT: usize = 64;
/// Pixels per enqueue: one ad event fires a handful of URLs (impression, a few trackers).
const PER_ENQUEUE: usize = 4;
/// Concurrent producers of the second outbox variant.
const PRODUCERS: usize = 16;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn urls(server: &PixelServer, tag: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| server.url(&format!("/{tag}/{i}?cb=[CACHEBUSTING]")))
        .collect()
}

fn outbox_config(path: std::path::PathBuf) -> OutboxConfig {
    OutboxConfig {
        path,
        max_in_flight: IN_FLIGHT,
        per_host_concurrency: IN_FLIGHT,
        per_host_rate_per_sec: 1e9,
        per_host_burst: 1_000_000,
        max_waiting_per_host: IN_FLIGHT,
        poll_ms: 20,
        ..OutboxConfig::default()
    }
}

/// `producers` tasks enqueue `urls` in groups of [`PER_ENQUEUE`] while the dispatcher fires; the time until
/// every pixel is delivered and recorded (queue empty).
async fn outbox_round(client: &GuardedClient, urls: Vec<String>, producers: usize) -> Duration {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = outbox_config(dir.path().join("bench.redb"));
    let store = Arc::new(RedbStore::open(&config.path).expect("open"));
    let outbox =
        Arc::new(Outbox::start(config, Arc::clone(&store), client.clone()).expect("start"));
    let groups: Vec<Vec<Pixel>> = urls
        .chunks(PER_ENQUEUE)
        .enumerate()
        .map(|(g, group)| {
            group
                .iter()
                .map(|u| Pixel::new(format!("ai-{g}"), PixelEvent::Impression, u.clone()))
                .collect()
        })
        .collect();
    let per_producer = groups.len().div_ceil(producers);
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for share in groups.chunks(per_producer) {
        let outbox = Arc::clone(&outbox);
        let share = share.to_vec();
        tasks.spawn(async move {
            for pixels in share {
                outbox.enqueue(pixels).await.expect("enqueue");
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    while store.depth().await.expect("depth") > 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let took = started.elapsed();
    if let Ok(outbox) = Arc::try_unwrap(outbox) {
        outbox.shutdown().await;
    }
    took
}

async fn sequential_round(client: &GuardedClient, urls: Vec<String>) -> Duration {
    let started = Instant::now();
    for url in urls {
        let url = url.replace(
            "[CACHEBUSTING]",
            &format!("{:08}", fastrand::u32(..100_000_000)),
        );
        client.ping(&url).await.expect("GET");
    }
    started.elapsed()
}

async fn concurrent_round(client: &GuardedClient, urls: Vec<String>) -> Duration {
    let started = Instant::now();
    let room = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut tasks = JoinSet::new();
    for url in urls {
        let permit = Arc::clone(&room).acquire_owned().await.expect("permit");
        let client = client.clone();
        tasks.spawn(async move {
            let url = url.replace(
                "[CACHEBUSTING]",
                &format!("{:08}", fastrand::u32(..100_000_000)),
            );
            client.ping(&url).await.expect("GET");
            drop(permit);
        });
    }
    while tasks.join_next().await.is_some() {}
    started.elapsed()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; this harness has no options.
    let n = env("OUTBOX_BENCH_PIXELS", 2_000);
    let rounds = env("OUTBOX_BENCH_ROUNDS", 5);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let server = PixelServer::start(|_, _| Reply::ok()).await;
        let client = client(None);
        // Warm-up: connections open, code paths hot.
        concurrent_round(&client, urls(&server, "warm", 200)).await;
        let mut rates: [Vec<f64>; 4] = Default::default();
        let names = [
            "outbox, 1 producer".to_owned(),
            format!("outbox, {PRODUCERS} producers"),
            "sequential loop".to_owned(),
            format!("concurrent GETs ({IN_FLIGHT} in flight)"),
        ];
        for r in 0..rounds {
            let rate = |d: Duration| n as f64 / d.as_secs_f64();
            let round = [
                rate(outbox_round(&client, urls(&server, &format!("o{r}"), n), 1).await),
                rate(outbox_round(&client, urls(&server, &format!("m{r}"), n), PRODUCERS).await),
                rate(sequential_round(&client, urls(&server, &format!("s{r}"), n)).await),
                rate(concurrent_round(&client, urls(&server, &format!("c{r}"), n)).await),
            ];
            let line: Vec<String> = names
                .iter()
                .zip(round)
                .map(|(name, v)| format!("{name} {v:.0}/s"))
                .collect();
            println!("round {r}: {}", line.join(", "));
            for (all, v) in rates.iter_mut().zip(round) {
                all.push(v);
            }
        }
        let medians: Vec<f64> = rates.iter().map(|v| median(v.clone())).collect();
        println!("median over {rounds} rounds of {n} pixels:");
        for (name, m) in names.iter().zip(&medians) {
            println!(
                "  {name:<32} {m:>8.0}/s  {:>5.2}x sequential  {:>5.2}x concurrent",
                m / medians[2],
                m / medians[3]
            );
        }
        assert_eq!(
            server.total(),
            200 + 4 * rounds * n,
            "every GET and every pixel reached the server once"
        );
    });
}
