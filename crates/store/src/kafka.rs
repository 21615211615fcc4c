//! The distributed event log on a Kafka-protocol broker (rdkafka).
//!
//! Topic layout (values are JSON; the data contract in `docs/events.schema.json` is the message format):
//!
//! | topic (default name)          | key              | value                                           | written by  |
//! |-------------------------------|------------------|-------------------------------------------------|-------------|
//! | `interlude.events`            | `ad_instance_id` | [`LogRecord`]: the event and the edge verdict   | collectors  |
//! | `interlude.events.counted`    | `ad_instance_id` | the counted [`AdEvent`] (enriched output)        | processors  |
//! | `interlude.events.quarantine` | `ad_instance_id` | `{"reason": …, "detail": …, "event": …}`         | processors  |
//!
//! Keying by ad instance puts every report of one ad in one partition, so the billing dedup of an instance is
//! owned by exactly one processor. Processors are one consumer group; exactly-once comes from
//! [`PgStore::apply`] committing each partition's offsets in the same PostgreSQL transaction as the state they
//! produced (no Kafka transactions: Tansu, the test broker, does not implement them, and the pattern works the
//! same on Apache Kafka). Offsets are also committed to the group afterwards, only so that a restarted
//! consumer starts near where it was; records below the stored offset are skipped. The output topics are
//! at-least-once (a processor killed between the database commit and the produce sends them again on
//! restart): their consumers deduplicate on `event_id`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use interlude_events::{Envelope, Outcome, Policy, check_event, edge_check};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

use crate::StoreError;
use crate::committer::SubmitError;
use crate::log::{BoxFuture, EventLog, LogRecord, Logged};
use crate::pg::PgStore;
use crate::redis_counters::RedisCounters;

/// The `[kafka]` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// The event topic.
    pub topic: String,
    /// Partitions of the event topic when this process creates it (the unit of processor parallelism).
    pub partitions: i32,
    /// Replication factor when this process creates topics (3 on a real cluster).
    pub replication: i32,
    /// The processors' consumer group.
    pub group: String,
    /// Events per processing batch at most.
    pub batch_events: usize,
    /// Milliseconds a processor waits to fill a batch.
    pub batch_wait_ms: u64,
    /// Extra librdkafka properties for producers and consumers (e.g. `security.protocol`).
    pub properties: BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: "127.0.0.1:9092".into(),
            topic: "interlude.events".into(),
            partitions: 8,
            replication: 1,
            group: "interlude-processors".into(),
            batch_events: 5_000,
            batch_wait_ms: 20,
            properties: BTreeMap::new(),
        }
    }
}

impl KafkaConfig {
    /// The enriched (counted) output topic.
    pub fn counted_topic(&self) -> String {
        format!("{}.counted", self.topic)
    }

    /// The quarantine output topic.
    pub fn quarantine_topic(&self) -> String {
        format!("{}.quarantine", self.topic)
    }

    fn client(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers);
        for (k, v) in &self.properties {
            c.set(k, v);
        }
        c
    }

    fn producer(&self) -> Result<FutureProducer, StoreError> {
        self.client()
            // No loss or duplication from producer retries: idempotent, every in-sync replica acknowledges.
            .set("enable.idempotence", "true")
            .set("acks", "all")
            // Throughput: a few milliseconds of batching and lz4 (beacons are small and repetitive JSON).
            .set("linger.ms", "5")
            .set("compression.type", "lz4")
            .set("batch.num.messages", "10000")
            .set("queue.buffering.max.messages", "1000000")
            .set("message.timeout.ms", "30000")
            .create()
            .map_err(kafka_error)
    }

    /// Creates the event and output topics if they do not exist.
    pub async fn ensure_topics(&self) -> Result<(), StoreError> {
        let admin: AdminClient<_> = self.client().create().map_err(kafka_error)?;
        let (counted, quarantine) = (self.counted_topic(), self.quarantine_topic());
        let replication = || TopicReplication::Fixed(self.replication);
        let topics = [
            NewTopic::new(&self.topic, self.partitions, replication()),
            NewTopic::new(&counted, self.partitions, replication()),
            NewTopic::new(&quarantine, 1, replication()),
        ];
        let results = admin
            .create_topics(
                &topics,
                &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
            )
            .await
            .map_err(kafka_error)?;
        for r in results {
            match r {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => {
                    return Err(StoreError::Db(format!(
                        "kafka: creating topic {topic}: {code}"
                    )));
                }
            }
        }
        Ok(())
    }
}

fn kafka_error(e: rdkafka::error::KafkaError) -> StoreError {
    StoreError::Db(format!("kafka: {e}"))
}

/// The collectors' side: appends events to the event topic.
pub struct KafkaLog {
    producer: FutureProducer,
    topic: String,
    policy: Policy,
}

impl std::fmt::Debug for KafkaLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaLog")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl KafkaLog {
    /// A producer for `config`'s event topic; `policy` gives the edge checks.
    pub fn new(config: &KafkaConfig, policy: Policy) -> Result<Self, StoreError> {
        Ok(KafkaLog {
            producer: config.producer()?,
            topic: config.topic.clone(),
            policy,
        })
    }

    async fn send(&self, batch: Vec<Envelope>) -> Result<Vec<Outcome>, SubmitError> {
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut deliveries = Vec::with_capacity(batch.len());
        for envelope in batch {
            // The processor repeats the stateless checks deterministically (it validates at `received_at`);
            // the collector answers them now so a sender learns at once that an event is malformed.
            let edge = edge_check(&envelope, &self.policy);
            outcomes.push(
                match check_event(&envelope.event, &self.policy, envelope.event.received_at)
                    .and_then(|()| edge.clone().map_or(Ok(()), Err))
                {
                    Ok(()) => Outcome::Logged,
                    Err(reason) => Outcome::Quarantined(reason),
                },
            );
            let record = LogRecord {
                event: envelope.event,
                edge,
            };
            let payload = serde_json::to_vec(&record)
                .map_err(|e| SubmitError::Store(StoreError::Db(format!("encoding event: {e}"))))?;
            let key = record.event.ad_instance_id.as_bytes();
            match self
                .producer
                .send_result(FutureRecord::to(&self.topic).key(key).payload(&payload))
            {
                Ok(delivery) => deliveries.push(delivery),
                Err((
                    rdkafka::error::KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull),
                    _,
                )) => {
                    return Err(SubmitError::Busy);
                }
                Err((e, _)) => return Err(SubmitError::Store(kafka_error(e))),
            }
        }
        for delivery in futures::future::join_all(deliveries).await {
            match delivery {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => return Err(SubmitError::Store(kafka_error(e))),
                Err(_) => return Err(SubmitError::Stopped),
            }
        }
        metrics::counter!("events_logged_total").increment(outcomes.len() as u64);
        Ok(outcomes)
    }
}

impl EventLog for KafkaLog {
    fn append(&self, batch: Vec<Envelope>) -> BoxFuture<'_, Result<Vec<Outcome>, SubmitError>> {
        Box::pin(self.send(batch))
    }
}

/// One event processor: a member of the consumer group that applies what it consumes to PostgreSQL (and the
/// shared pacing/frequency counters in Redis) exactly once.
pub struct Processor {
    consumer: StreamConsumer,
    producer: FutureProducer,
    store: Arc<PgStore>,
    counters: Option<Arc<RedisCounters>>,
    config: KafkaConfig,
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
        })
    }

    /// Consumes until `stop` resolves (or the consumer fails).
    pub async fn run(
        &self,
        stop: impl std::future::Future<Output = ()>,
        mut on_batch: impl FnMut(&ProcessorStats),
    ) -> Result<ProcessorStats, StoreError> {
        let mut stats = ProcessorStats::default();
        tokio::pin!(stop);
        loop {
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
                if let Err(e) = counters
                    .apply(&self.config.topic, partition, &applied)
                    .await
                {
                    metrics::counter!("events_counter_sync_failures_total").increment(1);
                    tracing::warn!(error = %e, partition, "Shared counters not updated (pacing reads less until the next batch).");
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

    async fn apply_with_retry(
        &self,
        partition: i32,
        records: &[Logged],
    ) -> Result<crate::pg::Applied, StoreError> {
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

    async fn publish(&self, records: &[Logged], applied: &crate::pg::Applied) {
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
fn record_metrics(records: &[Logged], applied: &crate::pg::Applied) {
    let (mut duplicates, mut retries) = (0u64, 0u64);
    for (_, outcome) in &applied.outcomes {
        match outcome {
            Outcome::Counted { .. } => {}
            Outcome::Duplicate => duplicates += 1,
            Outcome::Retry => retries += 1,
            Outcome::Quarantined(q) => {
                let kind = serde_json::to_value(q)
                    .ok()
                    .and_then(|v| v["reason"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| "unknown".into());
                metrics::counter!("events_quarantined_total", "reason" => kind).increment(1);
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
