//! The counter outbox: the pacing and frequency deltas of each applied batch, recorded in PostgreSQL in the
//! batch's own transaction (`counter_outbox`, migration V2), so the Redis step can be replayed from PostgreSQL
//! state. A processor applies the row to Redis (idempotently: the Redis marker is keyed by the same partition
//! and first offset) and deletes it; whatever a killed processor left is re-driven by the next one to start
//! ([`redrive`]).

use std::collections::BTreeMap;

use tokio_postgres::Transaction;

use super::PgStore;
use crate::Applied;
use crate::Error as StoreError;

/// A batch's counter deltas not yet known to be in Redis.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingDeltas {
    /// The log partition.
    pub partition: i32,
    /// The batch's first applied offset (the Redis marker's key).
    pub first_offset: i64,
    /// The deltas (`outcomes` empty).
    pub applied: Applied,
}

type Delivered = Vec<(String, i64, u64)>;
type Viewers = Vec<(String, String, i64, u64)>;

/// Records `applied`'s deltas in the batch's transaction (nothing when the batch changed no counter).
pub(super) async fn record(
    txn: &Transaction<'_>,
    group: &str,
    topic: &str,
    partition: i32,
    applied: &Applied,
) -> Result<(), StoreError> {
    let Some(first) = applied.first_offset() else {
        return Ok(());
    };
    if applied.delivered.is_empty() && applied.viewer_impressions.is_empty() {
        return Ok(());
    }
    let delivered: Delivered = applied
        .delivered
        .iter()
        .map(|((li, hour), n)| (li.clone(), *hour, *n))
        .collect();
    let viewers: Viewers = applied
        .viewer_impressions
        .iter()
        .map(|((v, li, hour), n)| (v.clone(), li.clone(), *hour, *n))
        .collect();
    let encode = |what, v: serde_json::Result<serde_json::Value>| {
        v.map_err(|source| StoreError::Encode { what, source })
    };
    let delivered = encode("counter outbox", serde_json::to_value(delivered))?;
    let viewers = encode("counter outbox", serde_json::to_value(viewers))?;
    txn.execute(
        "INSERT INTO counter_outbox (consumer_group, topic, partition, first_offset, delivered, viewer_impressions) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        &[&group, &topic, &partition, &first, &delivered, &viewers],
    )
    .await?;
    Ok(())
}

impl PgStore {
    /// The counter deltas of `group` on `topic` not yet confirmed applied to Redis, oldest first.
    pub async fn pending_counter_deltas(
        &self,
        group: &str,
        topic: &str,
    ) -> Result<Vec<PendingDeltas>, StoreError> {
        let client = self.client.lock().await;
        let rows = client
            .query(
                "SELECT partition, first_offset, delivered, viewer_impressions FROM counter_outbox \
                 WHERE consumer_group = $1 AND topic = $2 ORDER BY partition, first_offset",
                &[&group, &topic],
            )
            .await?;
        let corrupt = |e: serde_json::Error| StoreError::Corrupt {
            table: "counter_outbox",
            reason: e.to_string(),
        };
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let delivered: Delivered = serde_json::from_value(row.get(2)).map_err(corrupt)?;
            let viewers: Viewers = serde_json::from_value(row.get(3)).map_err(corrupt)?;
            let first_offset: i64 = row.get(1);
            out.push(PendingDeltas {
                partition: row.get(0),
                first_offset,
                applied: Applied {
                    delivered: delivered
                        .into_iter()
                        .map(|(li, hour, n)| ((li, hour), n))
                        .collect::<BTreeMap<_, _>>(),
                    viewer_impressions: viewers
                        .into_iter()
                        .map(|(v, li, hour, n)| ((v, li, hour), n))
                        .collect(),
                    ..Applied::default()
                },
            });
        }
        Ok(out)
    }

    /// Forgets a batch's deltas once Redis has them.
    pub async fn counter_deltas_applied(
        &self,
        group: &str,
        topic: &str,
        partition: i32,
        first_offset: i64,
    ) -> Result<(), StoreError> {
        let client = self.client.lock().await;
        client
            .execute(
                "DELETE FROM counter_outbox WHERE consumer_group = $1 AND topic = $2 AND partition = $3 \
                 AND first_offset = $4",
                &[&group, &topic, &partition, &first_offset],
            )
            .await?;
        Ok(())
    }
}

/// Applies every pending outbox row of `group` on `topic` to Redis and deletes it; how many rows. Run by a
/// processor when it starts and after a failed Redis step. Safe to run concurrently and repeatedly: Redis
/// takes each batch once (its marker), and deleting a row twice is harmless.
#[cfg(feature = "redis")]
pub async fn redrive(
    pg: &PgStore,
    counters: &crate::redis::RedisCounters,
    group: &str,
    topic: &str,
) -> Result<u64, StoreError> {
    let pending = pg.pending_counter_deltas(group, topic).await?;
    let mut done = 0;
    for p in pending {
        counters
            .apply_deltas(topic, p.partition, p.first_offset, &p.applied)
            .await?;
        pg.counter_deltas_applied(group, topic, p.partition, p.first_offset)
            .await?;
        done += 1;
    }
    if done > 0 {
        metrics::counter!(crate::metrics::COUNTER_OUTBOX_REDRIVEN).increment(done);
        tracing::info!(rows = done, %topic, "Re-drove pending counter deltas to Redis.");
    }
    Ok(done)
}
