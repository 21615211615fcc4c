//! `interlude process`: one event processor of distributed mode. Joins the consumer group of the event topic
//! and applies what it consumes to PostgreSQL exactly once (offsets committed in the same transaction as the
//! state), then adds the batch's counts to the shared pacing and frequency counters in Redis. Run as many as
//! the topic has partitions; kill any of them at any time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use interlude_server::InterludeConfig;
use interlude_store::kafka::Processor;
use interlude_store::pg::PgStore;
use interlude_store::redis::RedisCounters;
use interlude_store::redis::RedisReservations;

/// Flags for `interlude process`.
#[derive(Debug, clap::Args)]
pub(crate) struct ProcessArgs {
    /// Seconds between progress lines in the log.
    #[arg(long, default_value_t = 10)]
    pub(crate) report_secs: u64,
    /// Where `/metrics`, `/healthz` and `/readyz` are served (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub(crate) metrics_listen: std::net::SocketAddr,
}

pub(crate) async fn run(args: ProcessArgs, config: InterludeConfig) -> anyhow::Result<()> {
    let d = &config.distributed;
    if !d.enabled {
        anyhow::bail!(
            "`interlude process` consumes the distributed event log: set distributed.enabled = true (and its \
             kafka, postgres_url and redis_url)"
        );
    }
    let store = Arc::new(
        PgStore::connect(&d.postgres_url, config.events.policy.clone())
            .await
            .with_context(|| format!("connecting to PostgreSQL {:?}", d.postgres_url))?,
    );
    let counters = RedisCounters::connect(
        &d.redis_url,
        &d.key_prefix,
        config.events.policy.frequency_window_days,
    )
    .await
    .with_context(|| format!("connecting to Redis {}", d.redis_url))?;
    d.kafka
        .ensure_topics()
        .await
        .with_context(|| format!("creating the event topics on {}", d.kafka.brokers))?;
    // Counted impressions confirm the decisions' reservations, once the shared counters have them.
    let reservations = RedisReservations::connect(&d.redis_url, &d.key_prefix)
        .with_context(|| format!("connecting to Redis {} for reservations", d.redis_url))?;
    let processor = Processor::new(&d.kafka, store.clone(), Some(counters))
        .with_context(|| format!("joining consumer group {}", d.kafka.group))?
        .with_on_counted(interlude_server::decisioning::deliveries::confirming(
            reservations,
            Arc::new(chrono::Utc::now),
        ));
    let readiness = interlude_server::Readiness::new();
    let ops = interlude_server::ops::endpoints::router(
        interlude_server::telemetry::metrics_handle()?,
        readiness.clone(),
    );
    let listener = tokio::net::TcpListener::bind(args.metrics_listen)
        .await
        .with_context(|| format!("binding {}", args.metrics_listen))?;
    let metrics_addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, ops).await });
    readiness.set(true);
    tracing::info!(topic = %d.kafka.topic, group = %d.kafka.group, metrics = %metrics_addr, "Processing events.");
    // Dedup keys older than the dedup window are forgotten in the background.
    let expiry = store.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            if let Err(e) = expiry.expire(chrono::Utc::now()).await {
                tracing::warn!(error = %e, "Dedup state expiry failed; retried later.");
            }
        }
    });
    let mut last = Instant::now();
    let every = Duration::from_secs(args.report_secs.max(1));
    let stats = processor
        .run(
            async {
                let _ = tokio::signal::ctrl_c().await;
            },
            |s| {
                if last.elapsed() >= every {
                    last = Instant::now();
                    tracing::info!(
                        applied = s.applied,
                        skipped = s.skipped,
                        batches = s.batches,
                        "Progress."
                    );
                }
            },
        )
        .await?;
    tracing::info!(applied = stats.applied, skipped = stats.skipped, "Stopped.");
    Ok(())
}
