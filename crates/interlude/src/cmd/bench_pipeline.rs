//! `interlude bench pipeline`: events per second through the whole event pipeline, embedded and distributed,
//! in one run on one machine.
//!
//! - Embedded: the group committer over the redb store (validation, dedup, aggregation, one fsync per commit);
//!   an event is done when its append is acknowledged, which happens after it is processed.
//! - Distributed: the Kafka log (idempotent producer, acks=all) and two processors in one consumer group
//!   applying to PostgreSQL exactly once; an event is done when the processors' committed offsets cover it.
//!
//! Both get the same events from the same concurrent appenders (batches as a collector makes them). The
//! distributed run uses the servers `scripts/services.sh` starts (its `INTERLUDE_*` variables), in a fresh
//! PostgreSQL schema and fresh topics.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use interlude_events::contract::{EventSource, EventType};
use interlude_events::testing::event;
use interlude_events::{Envelope, Policy};
use interlude_store::Committer;
use interlude_store::EventLog;
use interlude_store::kafka::{KafkaLog, Processor};
use interlude_store::pg::PgStore;
use interlude_store::{EventStore, testing};

/// Flags for `interlude bench pipeline`.
#[derive(Debug, clap::Args)]
pub(crate) struct PipelineBenchArgs {
    /// Events (unique impressions) per run.
    #[arg(long, default_value_t = 200_000)]
    events: u64,
    /// Concurrent appenders.
    #[arg(long, default_value_t = 16)]
    appenders: usize,
    /// Events per append.
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Partitions of the event topic.
    #[arg(long, default_value_t = 4)]
    partitions: i32,
    /// Processors in the consumer group.
    #[arg(long, default_value_t = 2)]
    processors: usize,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

fn batches(args: &PipelineBenchArgs) -> Vec<Vec<Envelope>> {
    let now = chrono::Utc::now();
    let all: Vec<Envelope> = (0..args.events)
        .map(|n| {
            let li = (n % 20) as usize;
            let mut e = event(
                format!("e{n}"),
                &format!("ai{n}"),
                EventType::Impression,
                EventSource::ServerSide,
                now,
                li,
            );
            e.session_id = format!("s{n}");
            Envelope {
                event: e,
                user_agent: None,
                ip: None,
            }
        })
        .collect();
    all.chunks(args.batch.max(1))
        .map(<[Envelope]>::to_vec)
        .collect()
}

/// Appends every batch with `appenders` concurrent tasks; returns when all are acknowledged.
async fn append(
    log: Arc<dyn EventLog>,
    batches: Vec<Vec<Envelope>>,
    appenders: usize,
) -> anyhow::Result<()> {
    let queue = Arc::new(std::sync::Mutex::new(batches));
    let mut tasks = Vec::new();
    for _ in 0..appenders.max(1) {
        let (log, queue) = (log.clone(), queue.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let next = queue.lock().ok().and_then(|mut q| q.pop());
                let Some(batch) = next else {
                    return Ok::<(), anyhow::Error>(());
                };
                let mut delay = Duration::from_millis(5);
                loop {
                    match log.append(batch.clone()).await {
                        Ok(_) => break,
                        Err(interlude_store::SubmitError::Busy) => {
                            tokio::time::sleep(delay).await;
                            delay = (delay * 2).min(Duration::from_millis(200));
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

pub(crate) async fn run(args: PipelineBenchArgs) -> anyhow::Result<()> {
    let n = args.events as f64;
    // Embedded.
    let dir = tempfile::tempdir().context("temporary directory")?;
    let store = Arc::new(EventStore::open(dir.path(), Policy::default())?);
    let committer: Arc<dyn EventLog> =
        Arc::new(Committer::start(store, Arc::new(chrono::Utc::now)));
    let work = batches(&args);
    let started = Instant::now();
    append(committer, work, args.appenders).await?;
    let embedded_secs = started.elapsed().as_secs_f64();
    eprintln!("embedded: {} events in {embedded_secs:.2} s", args.events);

    // Distributed.
    let mut kafka = testing::kafka_config(args.partitions);
    kafka.batch_wait_ms = 20;
    kafka
        .ensure_topics()
        .await
        .context("creating topics (is the broker up? scripts/services.sh)")?;
    let url = testing::pg_fresh_schema()
        .await
        .context("PostgreSQL (scripts/services.sh)")?;
    let log: Arc<dyn EventLog> = Arc::new(KafkaLog::new(&kafka, Policy::default())?);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut processors = Vec::new();
    for _ in 0..args.processors.max(1) {
        let store = Arc::new(PgStore::connect(&url, Policy::default()).await?);
        let processor = Processor::new(&kafka, store, None)?;
        let mut stop = stop_rx.clone();
        processors.push(tokio::spawn(async move {
            processor
                .run(
                    async move { while stop.changed().await.is_ok() && !*stop.borrow() {} },
                    |_| {},
                )
                .await
        }));
    }
    let reader = PgStore::connect(&url, Policy::default()).await?;
    let work = batches(&args);
    let started = Instant::now();
    append(log, work, args.appenders).await?;
    let produced_secs = started.elapsed().as_secs_f64();
    let target = i64::try_from(args.events).unwrap_or(i64::MAX);
    loop {
        let done: i64 = reader
            .offsets(&kafka.group, &kafka.topic)
            .await?
            .values()
            .sum();
        if done >= target {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "processors stalled at {done} events"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let distributed_secs = started.elapsed().as_secs_f64();
    let _ = stop_tx.send(true);
    for p in processors {
        p.await??;
    }
    let (embedded, produced, distributed) =
        (n / embedded_secs, n / produced_secs, n / distributed_secs);
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "events": args.events, "partitions": args.partitions, "processors": args.processors,
                "embedded_events_per_sec": embedded.round(),
                "kafka_produce_events_per_sec": produced.round(),
                "distributed_events_per_sec": distributed.round(),
                "ratio_distributed_vs_embedded": distributed / embedded,
            })
        );
    } else {
        println!(
            "Event pipeline, {} unique impressions, {} appenders x {} events:",
            args.events, args.appenders, args.batch
        );
        println!("  embedded (redb, group commit)                     {embedded:>10.0} events/s");
        println!("  distributed: appended to Kafka (acks=all)         {produced:>10.0} events/s");
        println!(
            "  distributed: through {} processors into PostgreSQL  {distributed:>10.0} events/s  ({:.2}x embedded)",
            args.processors,
            distributed / embedded
        );
    }
    Ok(())
}
