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

use std::time::Duration;

use interlude_events::{Envelope, Outcome, Policy, check_event, edge_check};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;

use interlude_events::BoxFuture;

use crate::Error as StoreError;
use crate::KafkaConfig;
use crate::log::{EventLog, LogRecord, SubmitError};
#[cfg(all(feature = "postgres", feature = "redis"))]
mod processor;
mod snapshot;

#[cfg(all(feature = "postgres", feature = "redis"))]
pub use processor::{Processor, ProcessorStats};
pub use snapshot::TopicSnapshot;

impl KafkaConfig {
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
        let min_insync = self.min_insync_replicas.clamp(1, self.replication.max(1));
        if min_insync != self.min_insync_replicas {
            tracing::warn!(
                min_insync_replicas = self.min_insync_replicas,
                replication = self.replication,
                "min_insync_replicas capped at the replication factor."
            );
        }
        let min_insync = min_insync.to_string();
        let topic = |name, partitions| {
            NewTopic::new(name, partitions, TopicReplication::Fixed(self.replication))
                .set("min.insync.replicas", &min_insync)
        };
        let topics = [
            topic(&self.topic, self.partitions),
            topic(&counted, self.partitions),
            topic(&quarantine, 1),
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
                    return Err(StoreError::Refused(format!(
                        "kafka: creating topic {topic}: {code}"
                    )));
                }
            }
        }
        Ok(())
    }
}

pub(crate) fn kafka_error(e: rdkafka::error::KafkaError) -> StoreError {
    StoreError::Kafka(e)
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
            let payload = serde_json::to_vec(&record).map_err(|source| {
                SubmitError::Store(StoreError::Encode {
                    what: "log record",
                    source,
                })
            })?;
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
