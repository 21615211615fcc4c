//! Connection settings for tests against the real servers `scripts/services.sh` starts (Redis, PostgreSQL, the
//! Kafka-protocol broker): read from `INTERLUDE_REDIS_URL`, `INTERLUDE_PG_URL` and `INTERLUDE_KAFKA_BROKERS`,
//! with that script's defaults. Every call isolates its caller: a fresh PostgreSQL schema, fresh topic, group
//! and key-prefix names, so tests run in parallel against the same servers.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::Error as StoreError;
use crate::KafkaConfig;

fn unique(tag: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{tag}_{}_{}_{}",
        std::process::id(),
        nanos % 1_000_000_000,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The Redis URL.
pub fn redis_url() -> String {
    std::env::var("INTERLUDE_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into())
}

/// A Redis key prefix no other test uses.
pub fn redis_prefix() -> String {
    format!("{}:", unique("itest"))
}

/// The PostgreSQL connection string of the test database.
pub fn pg_base_url() -> String {
    std::env::var("INTERLUDE_PG_URL")
        .unwrap_or_else(|_| "host=127.0.0.1 port=5432 user=postgres dbname=interlude_test".into())
}

/// Creates a fresh schema and returns a connection string whose `search_path` is that schema.
pub async fn pg_fresh_schema() -> Result<String, StoreError> {
    let schema = unique("t");
    let client = crate::pg::connect_client(&pg_base_url()).await?;
    client
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await?;
    Ok(format!(
        "{} options='-c search_path={schema}'",
        pg_base_url()
    ))
}

/// A Kafka configuration with a topic and group no other test uses.
pub fn kafka_config(partitions: i32) -> KafkaConfig {
    let name = unique("itest");
    KafkaConfig {
        brokers: std::env::var("INTERLUDE_KAFKA_BROKERS")
            .unwrap_or_else(|_| "127.0.0.1:19092".into()),
        topic: format!("{name}.events"),
        partitions,
        group: format!("{name}.processors"),
        batch_wait_ms: 10,
        // The test broker is a single node.
        replication: 1,
        min_insync_replicas: 1,
        ..KafkaConfig::default()
    }
}
