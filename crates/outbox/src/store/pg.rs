//! The outbox in PostgreSQL, for several server processes sharing one queue: a lease is one `UPDATE … WHERE id
//! IN (SELECT … FOR UPDATE SKIP LOCKED)`, so concurrent leasers skip each other's rows instead of waiting or
//! taking the same pixel; deduplication is the primary key of `outbox_seen`.

use std::time::{Duration, SystemTime};

use tokio::sync::Mutex;
use tokio_postgres::{Client, NoTls};

use super::{
    DeadLetter, Enqueued, Leased, OutboxStore, Outcome, Pruned, Record, from_millis, millis,
};
use crate::error::{Error, Result};
use crate::pixel::Pixel;

/// The advisory lock serialising schema creation (the event store's migrations use 727274).
const SCHEMA_LOCK: i64 = 727_275;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS outbox_items (
    id BIGSERIAL PRIMARY KEY,
    record TEXT NOT NULL,
    attempts INT NOT NULL DEFAULT 0,
    due_ms BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_items_due ON outbox_items (due_ms, id);
CREATE TABLE IF NOT EXISTS outbox_seen (
    dedup_key BYTEA PRIMARY KEY,
    seen_ms BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_seen_ms ON outbox_seen (seen_ms);
CREATE TABLE IF NOT EXISTS outbox_dead (
    id BIGINT PRIMARY KEY,
    letter TEXT NOT NULL,
    at_ms BIGINT NOT NULL
);
";

/// The outbox in PostgreSQL (one connection; share the store behind an `Arc`).
pub struct PgStore {
    client: Mutex<Client>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").finish_non_exhaustive()
    }
}

fn pg(op: &'static str) -> impl FnOnce(tokio_postgres::Error) -> Error {
    move |source| Error::Postgres { op, source }
}

fn ms(t: SystemTime) -> i64 {
    i64::try_from(millis(t)).unwrap_or(i64::MAX)
}

fn id_of(id: u64) -> i64 {
    i64::try_from(id).unwrap_or(i64::MAX)
}

fn attempts_of(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

impl PgStore {
    /// Connects (`host=… user=… dbname=…` or a `postgres://` URL) and creates the tables if absent.
    pub async fn connect(url: &str) -> Result<PgStore> {
        let (client, connection) = tokio_postgres::connect(url, NoTls)
            .await
            .map_err(pg("connect"))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "Outbox PostgreSQL connection closed.");
            }
        });
        // Several nodes may start at once: `CREATE TABLE IF NOT EXISTS` is not safe against a concurrent
        // creation of the same table (the loser fails on the catalog's unique index), so the schema is
        // created under a transaction-scoped advisory lock.
        client
            .batch_execute(&format!(
                "BEGIN; SELECT pg_advisory_xact_lock({SCHEMA_LOCK}); {SCHEMA} COMMIT;"
            ))
            .await
            .map_err(pg("schema"))?;
        Ok(PgStore {
            client: Mutex::new(client),
        })
    }
}

fn decode<T: serde::de::DeserializeOwned>(id: i64, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| Error::Corrupt {
        id: u64::try_from(id).unwrap_or(0),
        reason: e.to_string(),
    })
}

fn encode<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::store("encode", e))
}

impl OutboxStore for PgStore {
    async fn enqueue(&self, pixels: Vec<Pixel>, now: SystemTime) -> Result<Vec<Enqueued>> {
        let now_ms = ms(now);
        let mut client = self.client.lock().await;
        let txn = client.transaction().await.map_err(pg("enqueue"))?;
        let seen = txn
            .prepare(
                "INSERT INTO outbox_seen (dedup_key, seen_ms) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .await
            .map_err(pg("enqueue"))?;
        let insert = txn
            .prepare("INSERT INTO outbox_items (record, due_ms) VALUES ($1, $2) RETURNING id")
            .await
            .map_err(pg("enqueue"))?;
        let mut out = Vec::with_capacity(pixels.len());
        for pixel in pixels {
            let key = pixel.dedup_key().0;
            let fresh = txn
                .execute(&seen, &[&key.as_slice(), &now_ms])
                .await
                .map_err(pg("enqueue"))?;
            if fresh == 0 {
                out.push(Enqueued::Duplicate);
                continue;
            }
            let record = encode(&Record {
                pixel: pixel.minimised(),
                attempts: 0,
                enqueued_ms: millis(now),
                last_error: None,
            })?;
            let row = txn
                .query_one(&insert, &[&record, &now_ms])
                .await
                .map_err(pg("enqueue"))?;
            let id: i64 = row.get(0);
            out.push(Enqueued::Queued(u64::try_from(id).unwrap_or(0)));
        }
        txn.commit().await.map_err(pg("enqueue"))?;
        Ok(out)
    }

    async fn lease(&self, now: SystemTime, limit: usize, lease: Duration) -> Result<Vec<Leased>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let client = self.client.lock().await;
        let rows = client
            .query(
                "WITH picked AS (
                     SELECT id, due_ms FROM outbox_items WHERE due_ms <= $1
                     ORDER BY due_ms, id LIMIT $3 FOR UPDATE SKIP LOCKED),
                 taken AS (
                     UPDATE outbox_items o SET due_ms = $2 FROM picked p WHERE o.id = p.id
                     RETURNING o.id, o.record, o.attempts, p.due_ms AS was)
                 SELECT id, record, attempts FROM taken ORDER BY was, id",
                &[&ms(now), &ms(now + lease), &limit],
            )
            .await
            .map_err(pg("lease"))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let id: i64 = row.get(0);
            let record: Record = decode(id, row.get(1))?;
            let attempts: i32 = row.get(2);
            out.push(Leased {
                id: u64::try_from(id).unwrap_or(0),
                pixel: record.pixel,
                attempts: u32::try_from(attempts).unwrap_or(0),
            });
        }
        Ok(out)
    }

    async fn complete(&self, outcomes: Vec<Outcome>, now: SystemTime) -> Result<()> {
        let mut client = self.client.lock().await;
        let txn = client.transaction().await.map_err(pg("complete"))?;
        for outcome in outcomes {
            match outcome {
                Outcome::Delivered { id } => {
                    txn.execute("DELETE FROM outbox_items WHERE id = $1", &[&id_of(id)])
                        .await
                        .map_err(pg("complete"))?;
                }
                Outcome::Retry {
                    id,
                    attempts,
                    due,
                    error,
                } => {
                    let Some(row) = txn
                        .query_opt(
                            "SELECT record FROM outbox_items WHERE id = $1",
                            &[&id_of(id)],
                        )
                        .await
                        .map_err(pg("complete"))?
                    else {
                        continue;
                    };
                    let mut record: Record = decode(id_of(id), row.get(0))?;
                    record.attempts = attempts;
                    record.last_error = Some(error);
                    txn.execute(
                        "UPDATE outbox_items SET record = $2, attempts = $3, due_ms = $4 WHERE id = $1",
                        &[&id_of(id), &encode(&record)?, &attempts_of(attempts), &ms(due)],
                    )
                    .await
                    .map_err(pg("complete"))?;
                }
                Outcome::Defer { id, due } => {
                    txn.execute(
                        "UPDATE outbox_items SET due_ms = $2 WHERE id = $1",
                        &[&id_of(id), &ms(due)],
                    )
                    .await
                    .map_err(pg("complete"))?;
                }
                Outcome::Dead {
                    id,
                    pixel,
                    attempts,
                    reason,
                } => {
                    let gone = txn
                        .execute("DELETE FROM outbox_items WHERE id = $1", &[&id_of(id)])
                        .await
                        .map_err(pg("complete"))?;
                    if gone == 0 {
                        continue;
                    }
                    let letter = encode(&DeadLetter {
                        id,
                        pixel: (*pixel).without_device(),
                        attempts,
                        reason,
                        at_ms: millis(now),
                    })?;
                    txn.execute(
                        "INSERT INTO outbox_dead (id, letter, at_ms) VALUES ($1, $2, $3)
                         ON CONFLICT (id) DO NOTHING",
                        &[&id_of(id), &letter, &ms(now)],
                    )
                    .await
                    .map_err(pg("complete"))?;
                }
            }
        }
        txn.commit().await.map_err(pg("complete"))
    }

    async fn next_due(&self) -> Result<Option<SystemTime>> {
        let client = self.client.lock().await;
        let row = client
            .query_one("SELECT MIN(due_ms) FROM outbox_items", &[])
            .await
            .map_err(pg("next_due"))?;
        let due: Option<i64> = row.get(0);
        Ok(due.map(|d| from_millis(u64::try_from(d).unwrap_or(0))))
    }

    async fn depth(&self) -> Result<u64> {
        let client = self.client.lock().await;
        let row = client
            .query_one("SELECT COUNT(*) FROM outbox_items", &[])
            .await
            .map_err(pg("depth"))?;
        let n: i64 = row.get(0);
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let client = self.client.lock().await;
        let rows = client
            .query(
                "SELECT id, letter FROM outbox_dead ORDER BY id LIMIT $1",
                &[&limit],
            )
            .await
            .map_err(pg("dead_letters"))?;
        rows.iter()
            .map(|row| decode(row.get(0), row.get(1)))
            .collect()
    }

    async fn prune(&self, keys_before: SystemTime, dead_before: SystemTime) -> Result<Pruned> {
        let client = self.client.lock().await;
        let keys = client
            .execute(
                "DELETE FROM outbox_seen WHERE seen_ms < $1",
                &[&ms(keys_before)],
            )
            .await
            .map_err(pg("prune"))?;
        let dead = client
            .execute(
                "DELETE FROM outbox_dead WHERE at_ms < $1",
                &[&ms(dead_before)],
            )
            .await
            .map_err(pg("prune"))?;
        Ok(Pruned { keys, dead })
    }
}
