//! The distributed pipeline state in PostgreSQL: dedup state, one-minute windows, the billing ledger, the
//! quarantine, frequency counts and the consumed log offsets, in one schema (migrations in `migrations/`).
//!
//! Exactly-once without Kafka transactions: [`PgStore::apply`] processes a batch of one log partition in a
//! single transaction that first locks the partition's offset row, drops records below the stored offset
//! (already applied by whoever held the partition before), reads the dedup state the batch touches, runs the
//! pure pipeline over it in memory, writes the changes and advances the offset. A processor killed at any point
//! either committed the batch and its offset together or neither; a zombie that lost its partition in a
//! rebalance blocks on the row lock and then finds the offset moved past its records.
//!
//! The batch's pacing and frequency deltas are recorded in the same transaction ([`outbox`]), so the Redis step
//! that follows can be replayed after a crash.
//!
//! Rows shared between partitions (windows, ledger hours, session rates) are written with additive upserts in
//! key order, so concurrent processors neither lose increments nor deadlock.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use interlude_events::{Counts, Policy, Prices, process_logged};
use tokio::sync::Mutex;
use tokio_postgres::{Client, NoTls};

use crate::Applied;
use crate::Error as StoreError;
use crate::log::Logged;

mod catalog;
pub mod outbox;
mod overlay;
mod reports;

pub use catalog::PgCatalog;
pub use outbox::PendingDeltas;
use overlay::Overlay;

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// The PostgreSQL store.
pub struct PgStore {
    client: Mutex<Client>,
    policy: Policy,
    prices: std::sync::RwLock<std::sync::Arc<dyn Prices>>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// Connects with a `tokio-postgres` connection string (`host=… user=… dbname=…` or a `postgres://` URL).
pub async fn connect_client(url: &str) -> Result<Client, StoreError> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "PostgreSQL connection closed.");
        }
    });
    Ok(client)
}

impl PgStore {
    /// Connects and brings the schema up to date (migrations are idempotent and serialised by refinery).
    pub async fn connect(url: &str, policy: Policy) -> Result<Self, StoreError> {
        let mut client = connect_client(url).await?;
        migrate(&mut client).await?;
        let prices: std::sync::Arc<dyn Prices> =
            std::sync::Arc::new(BTreeMap::<String, u64>::new());
        Ok(PgStore {
            client: Mutex::new(client),
            policy,
            prices: std::sync::RwLock::new(prices),
        })
    }

    /// Sets the prices used for spend in reports and the ledger.
    pub fn set_prices(&self, prices: std::sync::Arc<dyn Prices>) {
        if let Ok(mut p) = self.prices.write() {
            *p = prices;
        }
    }

    fn prices(&self) -> std::sync::Arc<dyn Prices> {
        self.prices
            .read()
            .map(|p| p.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Applies `records` (offset, record) of one partition exactly once; see the module docs.
    pub async fn apply(
        &self,
        group: &str,
        topic: &str,
        partition: i32,
        records: &[Logged],
    ) -> Result<Applied, StoreError> {
        let mut client = self.client.lock().await;
        let txn = client.transaction().await?;
        txn.execute(
            "INSERT INTO log_offsets (consumer_group, topic, partition, next_offset) VALUES ($1, $2, $3, 0) \
             ON CONFLICT DO NOTHING",
            &[&group, &topic, &partition],
        )
        .await?;
        let row = txn
            .query_one(
                "SELECT next_offset, max_event_time FROM log_offsets \
                 WHERE consumer_group = $1 AND topic = $2 AND partition = $3 FOR UPDATE",
                &[&group, &topic, &partition],
            )
            .await?;
        let next_offset: i64 = row.get(0);
        let mut state = Overlay {
            max_event_time: row.get(1),
            ..Overlay::default()
        };
        let fresh: Vec<&Logged> = records.iter().filter(|(o, _)| *o >= next_offset).collect();
        let mut applied = Applied {
            skipped: records.len() - fresh.len(),
            ..Applied::default()
        };
        let Some(last) = fresh.iter().map(|(o, _)| *o).max() else {
            txn.commit().await?;
            return Ok(applied);
        };
        state
            .prefetch(
                &txn,
                fresh
                    .iter()
                    .filter_map(|(_, r)| r.as_ref().ok().map(|r| &r.event)),
            )
            .await?;
        for (offset, record) in &fresh {
            match record {
                Ok(record) => {
                    let outcome = process_logged(
                        &mut state,
                        &record.event,
                        record.edge.clone(),
                        &self.policy,
                    );
                    applied.outcomes.push((*offset, outcome));
                }
                // Not an event of the contract: kept in the quarantine with the decoder's reason.
                Err(why) => state.undecodable.push((*offset, why.clone())),
            }
        }
        state.write(&txn).await?;
        for ((li, hour), n) in &state.ledger {
            if n.0.impressions > 0 {
                *applied.delivered.entry((li.clone(), *hour)).or_default() += n.0.impressions;
            }
        }
        for (key, c) in &state.corrections {
            if c.impressions > 0 {
                *applied.delivered.entry(key.clone()).or_default() += c.impressions;
            }
        }
        applied.viewer_impressions = std::mem::take(&mut state.frequency).into_iter().collect();
        // The counter deltas commit with the batch: the Redis step can be replayed from here.
        outbox::record(&txn, group, topic, partition, &applied).await?;
        txn.execute(
            "UPDATE log_offsets SET next_offset = $4, max_event_time = $5 \
             WHERE consumer_group = $1 AND topic = $2 AND partition = $3",
            &[
                &group,
                &topic,
                &partition,
                &(last + 1),
                &state.max_event_time,
            ],
        )
        .await?;
        txn.commit().await?;
        Ok(applied)
    }

    /// The next offset to consume per partition of `topic` for `group`, as committed with the state.
    pub async fn offsets(
        &self,
        group: &str,
        topic: &str,
    ) -> Result<BTreeMap<i32, i64>, StoreError> {
        let client = self.client.lock().await;
        Ok(client
            .query(
                "SELECT partition, next_offset FROM log_offsets WHERE consumer_group = $1 AND topic = $2",
                &[&group, &topic],
            )
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
    }

    /// Impressions of `line_item_id` from the hour of `since` on (ledger originals and corrections).
    pub async fn delivered(
        &self,
        line_item_id: &str,
        since: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let hour = since.timestamp().div_euclid(3600) * 3600;
        let client = self.client.lock().await;
        let row = client
            .query_one(
                "SELECT ((SELECT coalesce(sum(impressions), 0) FROM ledger WHERE line_item_id = $1 AND hour >= $2) \
                 + (SELECT coalesce(sum(impressions), 0) FROM ledger_corrections WHERE line_item_id = $1 AND hour >= $2))::int8",
                &[&line_item_id, &hour],
            )
            .await?;
        Ok(row.get::<_, i64>(0).max(0) as u64)
    }
}

async fn migrate(client: &mut Client) -> Result<(), StoreError> {
    // Several processes may start at once: serialise migrations with an advisory lock.
    client
        .execute("SELECT pg_advisory_lock(727274)", &[])
        .await?;
    let result = embedded::migrations::runner()
        .run_async(client)
        .await
        .map_err(StoreError::from);
    client
        .execute("SELECT pg_advisory_unlock(727274)", &[])
        .await?;
    result.map(|_| ())
}

fn counts_at(row: &tokio_postgres::Row, first: usize) -> Counts {
    let n = |i: usize| row.get::<_, i64>(first + i).max(0) as u64;
    Counts {
        impressions: n(0),
        starts: n(1),
        first_quartiles: n(2),
        midpoints: n(3),
        third_quartiles: n(4),
        completes: n(5),
        clicks: n(6),
        errors: n(7),
    }
}
