//! The store's configuration: the `[distributed]` section and its Kafka settings. Plain data, compiled in
//! every build (a node without the distributed backends still parses, and refuses, a distributed config).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The embedded store's settings (the server's `[events.store]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmbeddedConfig {
    /// Memory redb may use to cache pages, in MiB (its own default is 1 GiB: too much beside the stitcher).
    pub cache_mb: usize,
    /// Memory the dedup state's LSM tree may use to cache blocks, in MiB (beside its write buffers, at most
    /// 32 MiB).
    pub dedup_cache_mb: usize,
}

impl Default for EmbeddedConfig {
    fn default() -> Self {
        EmbeddedConfig {
            cache_mb: default_cache_mb(),
            dedup_cache_mb: default_dedup_cache_mb(),
        }
    }
}

/// 32 MiB: the filters and index blocks of a few million keys, and the recent keys retries look up.
pub fn default_dedup_cache_mb() -> usize {
    32
}

/// 64 MiB: enough for the hot dedup and aggregate pages of a busy store; the log is written, rarely read.
pub fn default_cache_mb() -> usize {
    64
}

/// The `[distributed]` section. Off by default: one process with embedded storage. On, the same binary runs
/// as many stateless nodes (`interlude serve`) and event processors (`interlude process`) over engines the
/// operator already runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DistributedConfig {
    /// Whether distributed mode is on.
    pub enabled: bool,
    /// The event log.
    pub kafka: KafkaConfig,
    /// Redis: sessions and their break decisions, pacing and frequency counters, operator controls.
    pub redis_url: String,
    /// PostgreSQL (`host=… user=… dbname=…` or `postgres://…`): pipeline state, reports, the billing ledger.
    pub postgres_url: String,
    /// Prefix of every Redis key (several deployments can share one Redis).
    pub key_prefix: String,
}

impl Default for DistributedConfig {
    fn default() -> Self {
        DistributedConfig {
            enabled: false,
            kafka: KafkaConfig::default(),
            redis_url: "redis://127.0.0.1:6379/".into(),
            postgres_url: "host=127.0.0.1 port=5432 user=postgres dbname=interlude".into(),
            key_prefix: "interlude:".into(),
        }
    }
}

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
    /// Replication factor when this process creates topics. 3 by default (a production cluster); a single
    /// test broker needs 1.
    pub replication: i32,
    /// `min.insync.replicas` of the topics this process creates: with the producers' `acks=all`, an append is
    /// acknowledged once this many replicas have it. 2 by default; capped at `replication` (1 on a single
    /// broker).
    pub min_insync_replicas: i32,
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
            replication: 3,
            min_insync_replicas: 2,
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
}
