//! `interlude bench ingest`: end-to-end event ingestion over HTTP, durable (validation, dedup, aggregation and
//! one fsync per group commit) side by side with the same server answering without persisting, in one run.
//!
//! Both servers run in this process on loopback ports with the same routes and the same committer thread; only
//! the sink differs. The clients (in this process too) post batches of unique impressions for a fixed time
//! and count acknowledged events, to each server in turn in `--rounds` slices. Their ids are random, as
//! players and the stitcher make them (see `--ordered-ids`). The durable store starts empty, or holding
//! `--prefill` events already (steady state: a store keeps a dedup window of keys, 48 hours by default).
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use interlude_server::InterludeConfig;
use interlude_server::collector::{Collector, router};
use interlude_server::edge::auth::{Producers, Scope};

use super::bench::IngestBenchArgs;

/// Serves `collector` on a loopback port; its base URL.
async fn serve(collector: &Collector) -> anyhow::Result<String> {
    // Both collectors take anonymous posts, as a development node does: authentication is not what is measured.
    let collector = collector
        .clone()
        .with_access(Producers::insecure_dev(), Scope::open());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding")?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, router(collector)).await });
    Ok(base)
}

/// Events acknowledged by the collector at `base` under `secs` of load, and the seconds it took.
async fn measure(
    base: &str,
    args: &IngestBenchArgs,
    secs: f64,
    run: &str,
) -> anyhow::Result<(u64, f64)> {
    let http = reqwest::Client::new();
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut clients = Vec::new();
    for _ in 0..args.clients {
        let (http, base, stop, acked, next, batch, run) = (
            http.clone(),
            base.to_owned(),
            stop.clone(),
            acked.clone(),
            next.clone(),
            args.batch,
            run.to_owned(),
        );
        let ordered = args.ordered_ids;
        clients.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let first = next.fetch_add(batch as u64, Ordering::Relaxed);
                let now = chrono::Utc::now();
                // Ids as players and the stitcher make them: a random UUID per event and per session, an
                // instance id under its session. Each event is another viewer's, as in a break's herd, where a
                // group commit holds one beacon of many viewers. Ordered ids would put every dedup insert on
                // the last page of its B-tree, and flatter the durable path by three times.
                let mut session = String::new();
                let events: Vec<_> = (first..first + batch as u64)
                    .map(|n| {
                        let (event_id, instance) = if ordered {
                            session = format!("{run}-s{n}");
                            (format!("{run}-{n}"), format!("{run}-ai{n}"))
                        } else {
                            session = format!("{run}-{}", uuid::Uuid::new_v4().simple());
                            (uuid::Uuid::new_v4().to_string(), format!("{session}-b1-{}", n % 4))
                        };
                        serde_json::json!({
                            "schema_version": "1.0", "event_id": event_id, "ad_instance_id": instance,
                            "event_type": "impression", "source": "client_side", "occurred_at": now, "received_at": now,
                            "session_id": session, "channel": "live1", "line_item_id": format!("li{}", n % 20),
                            "creative_id": format!("cr{}", n % 7), "device": "tv", "country": "FR"
                        })
                    })
                    .collect();
                let response = http
                    .post(format!("{base}/v1/events"))
                    .header("user-agent", "AppleCoreMedia/1.0")
                    .json(&events)
                    .send()
                    .await;
                if response.is_ok_and(|r| r.status().is_success()) {
                    acked.fetch_add(batch as u64, Ordering::Relaxed);
                }
            }
        }));
    }
    tokio::time::sleep(Duration::try_from_secs_f64(secs).context("--secs must be positive")?).await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        let _ = c.await;
    }
    Ok((
        acked.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64(),
    ))
}

/// Acknowledged events, seconds and the process's CPU ticks (`USER_HZ`) of one side's slices.
#[derive(Default)]
struct Tally {
    events: u64,
    secs: f64,
    ticks: u64,
}

impl Tally {
    fn add(&mut self, (events, secs): (u64, f64), ticks: u64) {
        self.events += events;
        self.secs += secs;
        self.ticks += ticks;
    }

    fn rate(&self) -> f64 {
        self.events as f64 / self.secs.max(f64::MIN_POSITIVE)
    }

    /// Microseconds of CPU per acknowledged event, the clients' share included (they run in this process).
    fn cpu_us_per_event(&self) -> f64 {
        // `USER_HZ` is 100 on every Linux (proc(5)).
        self.ticks as f64 * 10_000.0 / (self.events.max(1) as f64)
    }
}

/// The process's CPU ticks so far.
fn ticks() -> u64 {
    super::cpu_split::sample(Some(&[]), std::process::id()).process()
}

/// Bytes of the files under `dir`, recursively.
fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .flatten()
            .map(|e| match e.file_type() {
                Ok(t) if t.is_dir() => dir_bytes(&e.path()),
                _ => e.metadata().map_or(0, |m| m.len()),
            })
            .sum()
    })
}

/// Stores `n` impressions with random ids (one viewer each, as the clients send them) in the store in `dir`,
/// in commits of 20,000.
fn prefill(dir: &std::path::Path, n: u64, config: &InterludeConfig) -> anyhow::Result<()> {
    use interlude_events::contract::{EventSource, EventType};
    const PER_COMMIT: u64 = 20_000;
    let started = Instant::now();
    let store = interlude_store::EventStore::open_with(
        dir,
        config.events.policy.clone(),
        &config.events.store,
    )
    .with_context(|| format!("opening the store in {}", dir.display()))?;
    let mut done = 0;
    while done < n {
        let now = chrono::Utc::now();
        let batch: Vec<interlude_events::Envelope> = (done..n.min(done + PER_COMMIT))
            .map(|i| {
                let session = uuid::Uuid::new_v4().simple().to_string();
                let mut e = interlude_events::testing::event(
                    uuid::Uuid::new_v4().to_string(),
                    &format!("{session}-b1-{}", i % 4),
                    EventType::Impression,
                    EventSource::ClientSide,
                    now,
                    (i % 20) as usize,
                );
                e.session_id = session;
                interlude_events::Envelope {
                    event: e,
                    user_agent: None,
                    ip: None,
                }
            })
            .collect();
        store.ingest(&batch, now).context("prefilling the store")?;
        done += batch.len() as u64;
    }
    store.close().context("closing the prefilled store")?;
    eprintln!(
        "bench ingest: prefilled {n} events in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

pub(crate) async fn run(args: IngestBenchArgs, config: InterludeConfig) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("interlude-bench-ingest-{}", std::process::id()));
    let mut events = config.events.clone();
    events.data_dir = dir.join("durable");
    if args.prefill > 0 {
        let (dir, n, config) = (events.data_dir.clone(), args.prefill, config.clone());
        tokio::task::spawn_blocking(move || prefill(&dir, n, &config))
            .await
            .context("prefill task")??;
    }
    let durable_dir = events.data_dir.clone();
    events.data_dir = dir.join("discard");
    let discard_collector = Collector::discarding(&events, Arc::new(chrono::Utc::now))?;
    let discard = serve(&discard_collector).await?;

    // Measured once its start-up work is done (its dedup filters built from a prefilled store's keys), as a
    // node serves a herd long after it started; the baseline waits too, so that the work is not in it.
    events.data_dir = durable_dir;
    let durable_collector = Collector::open(&events, Arc::new(chrono::Utc::now))?;
    let store = durable_collector.embedded();
    if let Some(store) = &store {
        let deadline = Instant::now() + Duration::from_secs(300);
        while !store.dedup_settled()? && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let durable = serve(&durable_collector).await?;

    // The two in turn, in slices: the machine's speed drifts (other tenants), and measured one after the
    // other the two saw different machines (the same build's baselines 0.6–1.1× of each other). Each durable
    // slice ends once the dedup keys it wrote are in fjall's segments and fjall's compactions are done: the
    // spill, flush and merges that follow a burst are its cost, which would otherwise fall in the next
    // baseline slice (fjall's compactor takes a quarter of a core once the store has grown).
    let slice = args.secs / f64::from(args.rounds);
    let (mut base_tally, mut durable_tally) = (Tally::default(), Tally::default());
    let mut round_ratios = Vec::new();
    for round in 0..args.rounds {
        let t0 = ticks();
        let b = measure(&discard, &args, slice, &format!("discard{round}")).await?;
        let t1 = ticks();
        let (events, mut secs) =
            measure(&durable, &args, slice, &format!("durable{round}")).await?;
        if let Some(store) = store.clone() {
            let started = Instant::now();
            tokio::task::spawn_blocking(move || store.settle_dedup())
                .await
                .context("settling the dedup state")??;
            secs += started.elapsed().as_secs_f64();
        }
        base_tally.add(b, t1.saturating_sub(t0));
        durable_tally.add((events, secs), ticks().saturating_sub(t1));
        round_ratios.push((events as f64 / secs) / (b.0 as f64 / b.1).max(f64::MIN_POSITIVE));
    }
    let (baseline, stored) = (base_tally.rate(), durable_tally.rate());
    let ratio = stored / baseline.max(f64::MIN_POSITIVE);
    // CPU per event drifts less than throughput on a shared machine; their ratio is the throughput ratio
    // where the CPU is what runs out.
    let (base_cpu, durable_cpu) = (
        base_tally.cpu_us_per_event(),
        durable_tally.cpu_us_per_event(),
    );
    let cpu_ratio = base_cpu / durable_cpu.max(f64::MIN_POSITIVE);
    // Closed before their directory goes (the dedup state's background threads still write to it).
    durable_collector.shutdown().await?;
    discard_collector.shutdown().await?;
    // The redb file and the dedup state beside it.
    let size = dir_bytes(&dir.join("durable"));
    let _ = std::fs::remove_dir_all(&dir);
    if args.json {
        println!(
            "{}",
            serde_json::json!({ "clients": args.clients, "batch": args.batch, "seconds_each": args.secs,
                "rounds": args.rounds, "round_ratios": round_ratios,
                "not_persisting_cpu_us_per_event": base_cpu, "durable_cpu_us_per_event": durable_cpu,
                "cpu_ratio": cpu_ratio, "ordered_ids": args.ordered_ids, "prefill": args.prefill, "not_persisting_events_per_sec": baseline, "durable_events_per_sec": stored, "ratio": ratio,
                "store_bytes": size })
        );
        return Ok(());
    }
    println!(
        "Event ingestion over HTTP: {} clients, {} events per request, {} s each in {} slices, {} ids",
        args.clients,
        args.batch,
        args.secs,
        args.rounds,
        if args.ordered_ids {
            "ordered"
        } else {
            "random"
        }
    );
    println!("  answering without persisting  {baseline:>10.0} events/s");
    println!("  durable (group commit, fsync) {stored:>10.0} events/s");
    println!("  ratio durable/not persisting  {ratio:.2}");
    let rounds: Vec<String> = round_ratios.iter().map(|r| format!("{r:.2}")).collect();
    println!("  ratio in each slice pair      {}", rounds.join(" "));
    println!(
        "  CPU per event                 {base_cpu:.1} µs not persisting, {durable_cpu:.1} µs durable (ratio {cpu_ratio:.2})"
    );
    println!(
        "  store size after the run      {:.1} MB",
        size as f64 / 1e6
    );
    Ok(())
}
