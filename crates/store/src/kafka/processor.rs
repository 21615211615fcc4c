//! One event processor of distributed mode (needs the `kafka`, `postgres` and `redis` features): a member of
//! the processors' consumer group that applies what it consumes to PostgreSQL exactly once (the batch's counter
//! deltas recorded in the same transaction), then adds those deltas to the shared Redis counters — replayed
//! from PostgreSQL if this step is interrupted — and publishes the counted and quarantined events.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use interlude_events::Outcome;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

use super::kafka_error;
use crate::Error as StoreError;
use crate::KafkaConfig;
use crate::log::{LogRecord, Logged};
use crate::pg::PgStore;
use crate::redis::RedisCounters;

/// One event processor: a member of the consumer group that applies what it consumes to PostgreSQL (and the
/// shared pacing/frequency counters in Redis) exactly once.
pub struct Processor {
    consumer: StreamConsumer,
    producer: FutureProducer,
    store: Arc<PgStore>,
    counters: Option<Arc<RedisCounters>>,
    config: KafkaConfig,
    /// Whether a Redis step failed since the outbox was last re-driven.
    outbox_pending: AtomicBool,
    /// Told of each batch's counted impressions once its counters are synced.
    on_counted: Option<crate::OnCounted>,
}

impl std::fmt::Debug for Processor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Processor")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// What a processor has done so far.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ProcessorStats {
    /// Records applied (any outcome).
    pub applied: u64,
    /// Records skipped as already applied.
    pub skipped: u64,
    /// Batches committed.
    pub batches: u64,
}

impl Processor {
    /// Joins the consumer group of `config`.
    pub fn new(
        config: &KafkaConfig,
        store: Arc<PgStore>,
        counters: Option<Arc<RedisCounters>>,
    ) -> Result<Self, StoreError> {
        let consumer: StreamConsumer = config
            .client()
            .set("group.id", &config.group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            // A killed processor's partitions move to the others within seconds.
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "1000")
            .set("enable.partition.eof", "false")
            .create()
            .map_err(kafka_error)?;
        consumer
            .subscribe(&[config.topic.as_str()])
            .map_err(kafka_error)?;
        Ok(Processor {
            consumer,
            producer: config.producer()?,
            store,
            counters,
            config: config.clone(),
            outbox_pending: AtomicBool::new(false),
            on_counted: None,
        })
    }

    /// Tells `f` of the impressions each batch counts, after the shared counters have them (see
    /// [`crate::OnCounted`]).
    #[must_use]
    pub fn with_on_counted(mut self, f: crate::OnCounted) -> Self {
        self.on_counted = Some(f);
        self
    }

    /// Consumes until `stop` resolves (or the consumer fails).
    pub async fn run(
        &self,
        stop: impl std::future::Future<Output = ()>,
        mut on_batch: impl FnMut(&ProcessorStats),
    ) -> Result<ProcessorStats, StoreError> {
        let mut stats = ProcessorStats::default();
        if let Err(e) = self.redrive_counters().await {
            self.outbox_pending.store(true, Ordering::Relaxed);
            tracing::warn!(error = %e, "Pending counter deltas not re-driven yet.");
        }
        tokio::pin!(stop);
        loop {
            if self.outbox_pending.load(Ordering::Relaxed) {
                if let Err(e) = self.redrive_counters().await {
                    tracing::warn!(error = %e, "Pending counter deltas not re-driven yet.");
                }
            }
            let first = tokio::select! {
                () = &mut stop => return Ok(stats),
                m = self.consumer.recv() => m.map_err(kafka_error)?.detach(),
            };
            let mut batch = vec![first];
            let deadline =
                tokio::time::Instant::now() + Duration::from_millis(self.config.batch_wait_ms);
            while batch.len() < self.config.batch_events {
                match tokio::time::timeout_at(deadline, self.consumer.recv()).await {
                    Ok(Ok(m)) => batch.push(m.detach()),
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "Kafka consume error.");
                        break;
                    }
                    Err(_) => break,
                }
            }
            self.process(batch, &mut stats).await?;
            on_batch(&stats);
        }
    }

    async fn process(
        &self,
        batch: Vec<rdkafka::message::OwnedMessage>,
        stats: &mut ProcessorStats,
    ) -> Result<(), StoreError> {
        let mut partitions: BTreeMap<i32, Vec<Logged>> = BTreeMap::new();
        for m in &batch {
            let decoded = match m.payload() {
                Some(p) => serde_json::from_slice::<LogRecord>(p).map_err(|e| {
                    format!("{e}: {}", String::from_utf8_lossy(&p[..p.len().min(512)]))
                }),
                None => Err("empty message".into()),
            };
            partitions
                .entry(m.partition())
                .or_default()
                .push((m.offset(), decoded));
        }
        let mut commit = TopicPartitionList::new();
        for (partition, records) in partitions {
            let applied = self.apply_with_retry(partition, &records).await?;
            record_metrics(&records, &applied);
            stats.applied += applied.outcomes.len() as u64;
            stats.skipped += applied.skipped as u64;
            if let Some(counters) = &self.counters {
                self.sync_counters(counters, partition, &applied).await;
            }
            if let Some(on_counted) = &self.on_counted {
                let events: BTreeMap<i64, &interlude_events::AdEvent> = records
                    .iter()
                    .filter_map(|(o, r)| Some((*o, &r.as_ref().ok()?.event)))
                    .collect();
                let counted = crate::applied::counted_impressions(
                    applied
                        .outcomes
                        .iter()
                        .filter_map(|(o, outcome)| Some((*events.get(o)?, outcome))),
                );
                if !counted.is_empty() {
                    // Confirming is blocking I/O (Redis): off the runtime's async workers.
                    tokio::task::block_in_place(|| on_counted(&counted));
                }
            }
            self.publish(&records, &applied).await;
            if let Some(last) = records.iter().map(|(o, _)| *o).max() {
                commit
                    .add_partition_offset(&self.config.topic, partition, Offset::Offset(last + 1))
                    .map_err(kafka_error)?;
            }
        }
        stats.batches += 1;
        metrics::counter!("events_processed_total").increment(batch.len() as u64);
        // Only a hint for where a restarted consumer starts; the truth is in PostgreSQL.
        if let Err(e) = self.consumer.commit(&commit, CommitMode::Async) {
            tracing::debug!(error = %e, "Offset commit to the group failed (harmless).");
        }
        Ok(())
    }

    /// Adds a committed batch's deltas to Redis, then deletes them from the PostgreSQL outbox. A failure
    /// leaves the outbox row: it is re-driven before the next batch (and by the next processor to start).
    async fn sync_counters(
        &self,
        counters: &RedisCounters,
        partition: i32,
        applied: &crate::Applied,
    ) {
        let Some(first) = applied.first_offset() else {
            return;
        };
        if applied.delivered.is_empty() && applied.viewer_impressions.is_empty() {
            return;
        }
        let topic = &self.config.topic;
        let synced = match counters
            .apply_deltas(topic, partition, first, applied)
            .await
        {
            Ok(_) => {
                self.store
                    .counter_deltas_applied(&self.config.group, topic, partition, first)
                    .await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = synced {
            self.outbox_pending.store(true, Ordering::Relaxed);
            metrics::counter!("events_counter_sync_failures_total").increment(1);
            tracing::warn!(error = %e, partition, "Shared counters not updated yet; re-driven from the outbox.");
        }
    }

    /// Applies what the counter outbox holds for this group and topic to Redis (see [`crate::pg::outbox`]);
    /// how many batches. [`Self::run`] calls it first, so a processor killed between its commit and the Redis
    /// step loses nothing.
    pub async fn redrive_counters(&self) -> Result<u64, StoreError> {
        let Some(counters) = &self.counters else {
            return Ok(0);
        };
        let n = crate::pg::outbox::redrive(
            &self.store,
            counters,
            &self.config.group,
            &self.config.topic,
        )
        .await?;
        self.outbox_pending.store(false, Ordering::Relaxed);
        Ok(n)
    }

    async fn apply_with_retry(
        &self,
        partition: i32,
        records: &[Logged],
    ) -> Result<crate::Applied, StoreError> {
        let mut delay = Duration::from_millis(50);
        loop {
            match self
                .store
                .apply(&self.config.group, &self.config.topic, partition, records)
                .await
            {
                Ok(a) => return Ok(a),
                // A deadlock or serialisation failure between processors, or a dropped connection: nothing
                // was committed, so applying again is safe.
                Err(e) if delay < Duration::from_secs(10) => {
                    tracing::warn!(error = %e, partition, "Applying a batch failed; retrying.");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn publish(&self, records: &[Logged], applied: &crate::Applied) {
        let by_offset: BTreeMap<i64, &Outcome> =
            applied.outcomes.iter().map(|(o, x)| (*o, x)).collect();
        let (counted, quarantine) = (self.config.counted_topic(), self.config.quarantine_topic());
        let mut sends = Vec::new();
        for (offset, record) in records {
            let Some(outcome) = by_offset.get(offset) else {
                continue;
            };
            let Ok(record) = record else {
                continue;
            };
            let (topic, value) = match outcome {
                Outcome::Counted { .. } => (&counted, serde_json::to_vec(&record.event)),
                Outcome::Quarantined(reason) => (
                    &quarantine,
                    serde_json::to_vec(&serde_json::json!({
                        "reason": reason, "detail": reason.to_string(), "event": record.event,
                    })),
                ),
                _ => continue,
            };
            let Ok(value) = value else { continue };
            let key = record.event.ad_instance_id.clone();
            sends.push(async move {
                self.producer
                    .send(
                        FutureRecord::to(topic).key(&key).payload(&value),
                        Duration::from_secs(5),
                    )
                    .await
            });
        }
        let failed = futures::future::join_all(sends)
            .await
            .into_iter()
            .filter(Result::is_err)
            .count();
        if failed > 0 {
            metrics::counter!("events_output_failures_total").increment(failed as u64);
            tracing::warn!(failed, "Output records not published.");
        }
    }
}

/// The same outcome metrics the embedded committer records (the dashboard and alerts read them), plus the lag
/// between receipt and processing.
fn record_metrics(records: &[Logged], applied: &crate::Applied) {
    let (mut duplicates, mut retries) = (0u64, 0u64);
    for (_, outcome) in &applied.outcomes {
        match outcome {
            Outcome::Counted { .. } => {}
            Outcome::Duplicate => duplicates += 1,
            Outcome::Retry => retries += 1,
            Outcome::Quarantined(q) => {
                metrics::counter!("events_quarantined_total", "reason" => q.kind()).increment(1);
            }
            Outcome::Logged => {}
        }
    }
    metrics::counter!("events_committed_total").increment(applied.outcomes.len() as u64);
    metrics::counter!("events_duplicates_total").increment(duplicates);
    metrics::counter!("events_retries_total").increment(retries);
    if let Some(newest) = records
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok().map(|r| r.event.received_at))
        .max()
    {
        let lag = (chrono::Utc::now() - newest).num_milliseconds().max(0) as f64 / 1000.0;
        metrics::gauge!("events_lag_seconds").set(lag);
    }
}
