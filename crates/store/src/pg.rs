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
//! Rows shared between partitions (windows, ledger hours, session rates) are written with additive upserts in
//! key order, so concurrent processors neither lose increments nor deadlock.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use interlude_events::contract::{AdEvent, EventType};
use interlude_events::{
    Counts, LedgerKey, Outcome, PipelineState, Policy, Prices, Quarantine, WindowKey,
    process_logged,
};
use tokio::sync::Mutex;
use tokio_postgres::{Client, NoTls};

use crate::log::Logged;
use crate::{GroupBy, LedgerRow, ReportRow, StoreError, build_ledger, build_report};

mod embedded {
    refinery::embed_migrations!("migrations");
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        StoreError::Db(format!("postgres: {e}"))
    }
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

/// What applying a batch did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Applied {
    /// Records already applied before (below the stored offset): skipped.
    pub skipped: usize,
    /// The outcome of each applied record, with its offset.
    pub outcomes: Vec<(i64, Outcome)>,
    /// Impressions counted per (line item, hour): for the shared pacing counters.
    pub delivered: BTreeMap<(String, i64), u64>,
    /// Impressions counted per (viewer, line item, hour): for the shared frequency counters.
    pub viewer_impressions: BTreeMap<(String, String, i64), u64>,
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
        applied.viewer_impressions = state.frequency.into_iter().collect();
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

    /// Counts per `group_by` value over event time `[from, to)`.
    pub async fn report(
        &self,
        group_by: GroupBy,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<ReportRow>, StoreError> {
        let rows = {
            let client = self.client.lock().await;
            client
                .query(
                    "SELECT minute, campaign_id, line_item_id, creative_id, channel, live_event_id, \
                     impressions, starts, first_quartiles, midpoints, third_quartiles, completes, clicks, errors \
                     FROM windows WHERE minute >= $1 AND minute < $2",
                    &[&from.timestamp(), &to.timestamp()],
                )
                .await?
        };
        let cells = rows.iter().map(|r| {
            (
                WindowKey {
                    minute: r.get(0),
                    campaign_id: r.get(1),
                    line_item_id: r.get(2),
                    creative_id: r.get(3),
                    channel: r.get(4),
                    live_event_id: r.get(5),
                },
                counts_at(r, 6),
            )
        });
        Ok(build_report(cells, group_by, self.prices().as_ref()))
    }

    /// The billing ledger with its corrections.
    pub async fn ledger(&self) -> Result<Vec<LedgerRow>, StoreError> {
        let client = self.client.lock().await;
        let originals = client
            .query(
                "SELECT line_item_id, hour, impressions, starts, first_quartiles, midpoints, third_quartiles, \
                 completes, clicks, errors FROM ledger",
                &[],
            )
            .await?;
        let corrections = client
            .query(
                "SELECT line_item_id, hour, impressions, starts, first_quartiles, midpoints, third_quartiles, \
                 completes, clicks, errors FROM ledger_corrections ORDER BY id",
                &[],
            )
            .await?;
        let read = |r: &tokio_postgres::Row| {
            ((r.get::<_, String>(0), r.get::<_, i64>(1)), counts_at(r, 2))
        };
        Ok(build_ledger(
            originals.iter().map(read),
            corrections.iter().map(read),
            self.prices().as_ref(),
        ))
    }

    /// Quarantined events by reason.
    pub async fn quarantine_counts(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        let client = self.client.lock().await;
        Ok(client
            .query(
                "SELECT reason, count(*) FROM quarantine GROUP BY reason",
                &[],
            )
            .await?
            .iter()
            .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1).max(0) as u64))
            .collect())
    }

    /// The event types counted for one ad instance.
    pub async fn counted_events(&self, ad_instance_id: &str) -> Result<Vec<EventType>, StoreError> {
        let client = self.client.lock().await;
        Ok(client
            .query(
                "SELECT event_type FROM counted WHERE ad_instance_id = $1 ORDER BY event_type",
                &[&ad_instance_id],
            )
            .await?
            .iter()
            .filter_map(|r| {
                u8::try_from(r.get::<_, i16>(0))
                    .ok()
                    .and_then(EventType::from_code)
            })
            .collect())
    }

    /// Forgets dedup keys of events older than the dedup window (they are quarantined as too old from then on,
    /// so forgetting cannot recount them) and session rates older than a day. Returns rows deleted.
    pub async fn expire(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let cutoff = now - chrono::TimeDelta::hours(self.policy.dedup_window_hours);
        let client = self.client.lock().await;
        let a = client
            .execute("DELETE FROM event_ids WHERE occurred_at < $1", &[&cutoff])
            .await?;
        let b = client
            .execute("DELETE FROM counted WHERE occurred_at < $1", &[&cutoff])
            .await?;
        let c = client
            .execute(
                "DELETE FROM session_rate WHERE minute < $1",
                &[&(now.timestamp() - 86_400)],
            )
            .await?;
        Ok(a + b + c)
    }

    /// Irreversibly removes the viewer ids `ids` (pseudonyms): frequency rows deleted, stripped from
    /// quarantined events. Aggregates hold no viewer ids. (The raw log is Kafka's: it ages out by retention.)
    pub async fn forget_viewers(&self, ids: &[String]) -> Result<crate::Forgotten, StoreError> {
        let mut client = self.client.lock().await;
        let txn = client.transaction().await?;
        let frequency = txn
            .execute(
                "DELETE FROM viewer_frequency WHERE viewer_id = ANY($1)",
                &[&ids],
            )
            .await?;
        let quarantine = txn
            .execute(
                "UPDATE quarantine SET event = event - 'viewer_id' WHERE event->>'viewer_id' = ANY($1)",
                &[&ids],
            )
            .await?;
        txn.commit().await?;
        Ok(crate::Forgotten {
            log_events_anonymised: 0,
            quarantine_anonymised: quarantine,
            frequency_rows_deleted: frequency,
        })
    }

    /// Retention: deletes quarantined events older than `before` and frequency rows older than the frequency
    /// window. Returns rows deleted.
    pub async fn compact(
        &self,
        quarantine_before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let client = self.client.lock().await;
        let q = client
            .execute(
                "DELETE FROM quarantine WHERE quarantined_at < $1",
                &[&quarantine_before],
            )
            .await?;
        let horizon = now.timestamp() - self.policy.frequency_window_days * 86_400;
        let f = client
            .execute("DELETE FROM viewer_frequency WHERE hour < $1", &[&horizon])
            .await?;
        Ok(q + f)
    }

    /// The pipeline tables in which any row's text mentions `needle` (the deletion test's check).
    pub async fn tables_mentioning(&self, needle: &str) -> Result<Vec<String>, StoreError> {
        let client = self.client.lock().await;
        let mut out = Vec::new();
        for table in [
            "event_ids",
            "counted",
            "session_rate",
            "windows",
            "ledger",
            "ledger_corrections",
            "viewer_frequency",
            "quarantine",
            "log_offsets",
        ] {
            let sql =
                format!("SELECT EXISTS (SELECT 1 FROM {table} t WHERE strpos(t::text, $1) > 0)");
            if client.query_one(&sql, &[&needle]).await?.get::<_, bool>(0) {
                out.push(table.to_owned());
            }
        }
        Ok(out)
    }

    /// Empties every pipeline table (tests and `interlude demo --fresh`); the catalog is kept.
    pub async fn truncate(&self) -> Result<(), StoreError> {
        let client = self.client.lock().await;
        client
            .batch_execute(
                "TRUNCATE log_offsets, event_ids, counted, session_rate, windows, ledger, ledger_corrections, \
                 viewer_frequency, quarantine",
            )
            .await?;
        Ok(())
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
        .map_err(|e| StoreError::Db(format!("postgres migration: {e}")));
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

/// The state a batch reads (prefetched) and the changes it makes, for one transaction.
#[derive(Default)]
struct Overlay {
    known_ids: HashSet<String>,
    new_ids: BTreeMap<String, DateTime<Utc>>,
    counted: HashMap<(String, EventType), DateTime<Utc>>,
    new_counted: BTreeMap<(String, i16), DateTime<Utc>>,
    session_base: HashMap<(String, i64), u64>,
    session_delta: BTreeMap<(String, i64), u64>,
    windows: BTreeMap<WindowKey, Counts>,
    ledger: BTreeMap<(String, i64), (Counts, ())>,
    corrections: Vec<((String, i64), Counts)>,
    frequency: BTreeMap<(String, String, i64), u64>,
    quarantined: Vec<(AdEvent, Quarantine)>,
    undecodable: Vec<(i64, String)>,
    max_event_time: Option<DateTime<Utc>>,
}

impl Overlay {
    async fn prefetch<'a>(
        &mut self,
        txn: &tokio_postgres::Transaction<'_>,
        events: impl Iterator<Item = &'a AdEvent>,
    ) -> Result<(), StoreError> {
        let (mut ids, mut instances, mut sessions) = (Vec::new(), Vec::new(), Vec::new());
        for e in events {
            ids.push(e.event_id.as_str());
            instances.push(e.ad_instance_id.as_str());
            sessions.push(e.session_id.as_str());
        }
        for r in txn
            .query(
                "SELECT event_id FROM event_ids WHERE event_id = ANY($1)",
                &[&ids],
            )
            .await?
        {
            self.known_ids.insert(r.get(0));
        }
        for r in txn
            .query(
                "SELECT ad_instance_id, event_type, occurred_at FROM counted WHERE ad_instance_id = ANY($1)",
                &[&instances],
            )
            .await?
        {
            let code: i16 = r.get(1);
            if let Some(t) = u8::try_from(code).ok().and_then(EventType::from_code) {
                self.counted.insert((r.get(0), t), r.get(2));
            }
        }
        for r in txn
            .query(
                "SELECT session_id, minute, impressions FROM session_rate WHERE session_id = ANY($1)",
                &[&sessions],
            )
            .await?
        {
            self.session_base
                .insert((r.get(0), r.get(1)), r.get::<_, i64>(2).max(0) as u64);
        }
        Ok(())
    }

    /// Writes the changes; every upsert's rows are in key order (consistent lock order across processors).
    async fn write(&self, txn: &tokio_postgres::Transaction<'_>) -> Result<(), StoreError> {
        if !self.new_ids.is_empty() {
            let (ids, at): (Vec<&str>, Vec<DateTime<Utc>>) =
                self.new_ids.iter().map(|(k, v)| (k.as_str(), *v)).unzip();
            txn.execute(
                "INSERT INTO event_ids SELECT * FROM unnest($1::text[], $2::timestamptz[])",
                &[&ids, &at],
            )
            .await?;
        }
        if !self.new_counted.is_empty() {
            let mut instances = Vec::new();
            let mut types = Vec::new();
            let mut at = Vec::new();
            for ((i, t), o) in &self.new_counted {
                instances.push(i.as_str());
                types.push(*t);
                at.push(*o);
            }
            txn.execute(
                "INSERT INTO counted SELECT * FROM unnest($1::text[], $2::int2[], $3::timestamptz[])",
                &[&instances, &types, &at],
            )
            .await?;
        }
        if !self.session_delta.is_empty() {
            let (mut s, mut m, mut n) = (Vec::new(), Vec::new(), Vec::new());
            for ((session, minute), count) in &self.session_delta {
                s.push(session.as_str());
                m.push(*minute);
                n.push(*count as i64);
            }
            txn.execute(
                "INSERT INTO session_rate SELECT * FROM unnest($1::text[], $2::int8[], $3::int8[]) \
                 ON CONFLICT (session_id, minute) DO UPDATE SET impressions = session_rate.impressions + EXCLUDED.impressions",
                &[&s, &m, &n],
            )
            .await?;
        }
        if !self.windows.is_empty() {
            let mut cols: [Vec<&str>; 5] = Default::default();
            let mut minutes = Vec::new();
            let mut counts = CountColumns::default();
            for (k, c) in &self.windows {
                minutes.push(k.minute);
                for (col, v) in cols.iter_mut().zip([
                    &k.campaign_id,
                    &k.line_item_id,
                    &k.creative_id,
                    &k.channel,
                    &k.live_event_id,
                ]) {
                    col.push(v.as_str());
                }
                counts.push(c);
            }
            let [c0, c1, c2, c3, c4] = &cols;
            let [n0, n1, n2, n3, n4, n5, n6, n7] = &counts.0;
            txn.execute(
                "INSERT INTO windows SELECT * FROM unnest($1::int8[], $2::text[], $3::text[], $4::text[], $5::text[], \
                 $6::text[], $7::int8[], $8::int8[], $9::int8[], $10::int8[], $11::int8[], $12::int8[], $13::int8[], \
                 $14::int8[]) ON CONFLICT (minute, campaign_id, line_item_id, creative_id, channel, live_event_id) \
                 DO UPDATE SET impressions = windows.impressions + EXCLUDED.impressions, \
                 starts = windows.starts + EXCLUDED.starts, \
                 first_quartiles = windows.first_quartiles + EXCLUDED.first_quartiles, \
                 midpoints = windows.midpoints + EXCLUDED.midpoints, \
                 third_quartiles = windows.third_quartiles + EXCLUDED.third_quartiles, \
                 completes = windows.completes + EXCLUDED.completes, clicks = windows.clicks + EXCLUDED.clicks, \
                 errors = windows.errors + EXCLUDED.errors",
                &[&minutes, c0, c1, c2, c3, c4, n0, n1, n2, n3, n4, n5, n6, n7],
            )
            .await?;
        }
        if !self.ledger.is_empty() {
            let (mut li, mut hour, mut counts) = (Vec::new(), Vec::new(), CountColumns::default());
            for ((l, h), (c, ())) in &self.ledger {
                li.push(l.as_str());
                hour.push(*h);
                counts.push(c);
            }
            let [n0, n1, n2, n3, n4, n5, n6, n7] = &counts.0;
            txn.execute(
                "INSERT INTO ledger SELECT * FROM unnest($1::text[], $2::int8[], $3::int8[], $4::int8[], $5::int8[], \
                 $6::int8[], $7::int8[], $8::int8[], $9::int8[], $10::int8[]) ON CONFLICT (line_item_id, hour) \
                 DO UPDATE SET impressions = ledger.impressions + EXCLUDED.impressions, \
                 starts = ledger.starts + EXCLUDED.starts, \
                 first_quartiles = ledger.first_quartiles + EXCLUDED.first_quartiles, \
                 midpoints = ledger.midpoints + EXCLUDED.midpoints, \
                 third_quartiles = ledger.third_quartiles + EXCLUDED.third_quartiles, \
                 completes = ledger.completes + EXCLUDED.completes, clicks = ledger.clicks + EXCLUDED.clicks, \
                 errors = ledger.errors + EXCLUDED.errors",
                &[&li, &hour, n0, n1, n2, n3, n4, n5, n6, n7],
            )
            .await?;
        }
        for ((li, hour), c) in &self.corrections {
            let n = c.as_array().map(|v| v as i64);
            txn.execute(
                "INSERT INTO ledger_corrections (line_item_id, hour, impressions, starts, first_quartiles, midpoints, \
                 third_quartiles, completes, clicks, errors) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                &[li, hour, &n[0], &n[1], &n[2], &n[3], &n[4], &n[5], &n[6], &n[7]],
            )
            .await?;
        }
        if !self.frequency.is_empty() {
            let (mut v, mut li, mut h, mut n) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for ((viewer, line_item, hour), count) in &self.frequency {
                v.push(viewer.as_str());
                li.push(line_item.as_str());
                h.push(*hour);
                n.push(*count as i64);
            }
            txn.execute(
                "INSERT INTO viewer_frequency SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::int8[]) \
                 ON CONFLICT (viewer_id, line_item_id, hour) \
                 DO UPDATE SET impressions = viewer_frequency.impressions + EXCLUDED.impressions",
                &[&v, &li, &h, &n],
            )
            .await?;
        }
        for (event, reason) in &self.quarantined {
            let value = serde_json::to_value(reason).unwrap_or_default();
            let kind = value["reason"].as_str().unwrap_or("unknown");
            let event_json = serde_json::to_value(event).unwrap_or_default();
            txn.execute(
                "INSERT INTO quarantine (event_id, ad_instance_id, reason, detail, event) VALUES ($1, $2, $3, $4, $5)",
                &[&event.event_id, &event.ad_instance_id, &kind, &reason.to_string(), &event_json],
            )
            .await?;
        }
        for (offset, why) in &self.undecodable {
            txn.execute(
                "INSERT INTO quarantine (event_id, ad_instance_id, reason, detail, event) \
                 VALUES ('', '', 'undecodable', $1, $2)",
                &[why, &serde_json::json!({ "offset": offset })],
            )
            .await?;
        }
        Ok(())
    }
}

#[derive(Default)]
struct CountColumns([Vec<i64>; 8]);

impl CountColumns {
    fn push(&mut self, c: &Counts) {
        for (col, v) in self.0.iter_mut().zip(c.as_array()) {
            col.push(v as i64);
        }
    }
}

impl PipelineState for Overlay {
    fn record_event_id(&mut self, event_id: &str, occurred_at: DateTime<Utc>) -> bool {
        if self.known_ids.contains(event_id) || self.new_ids.contains_key(event_id) {
            return false;
        }
        self.new_ids.insert(event_id.to_owned(), occurred_at);
        true
    }

    fn bump_session_minute(&mut self, session_id: &str, minute: i64) -> u64 {
        let key = (session_id.to_owned(), minute);
        let base = self.session_base.get(&key).copied().unwrap_or(0);
        let delta = self.session_delta.entry(key).or_default();
        *delta += 1;
        base + *delta
    }

    fn counted_at(&self, ad_instance_id: &str, event_type: EventType) -> Option<DateTime<Utc>> {
        self.counted
            .get(&(ad_instance_id.to_owned(), event_type))
            .copied()
    }

    fn mark_counted(
        &mut self,
        ad_instance_id: &str,
        event_type: EventType,
        occurred_at: DateTime<Utc>,
    ) -> bool {
        let key = (ad_instance_id.to_owned(), event_type);
        if self.counted.contains_key(&key) {
            return false;
        }
        self.counted.insert(key, occurred_at);
        self.new_counted.insert(
            (ad_instance_id.to_owned(), i16::from(event_type.code())),
            occurred_at,
        );
        true
    }

    fn add_window(&mut self, key: WindowKey, counts: Counts) {
        self.windows.entry(key).or_default().add(&counts);
    }

    fn add_ledger(&mut self, key: LedgerKey, counts: Counts, correction: bool) {
        let key = (key.line_item_id, key.hour);
        if correction {
            self.corrections.push((key, counts));
        } else {
            self.ledger.entry(key).or_default().0.add(&counts);
        }
    }

    fn add_viewer_impression(&mut self, viewer_id: &str, line_item_id: &str, hour: i64) {
        *self
            .frequency
            .entry((viewer_id.to_owned(), line_item_id.to_owned(), hour))
            .or_default() += 1;
    }

    fn quarantine(&mut self, event: &AdEvent, reason: &Quarantine) {
        self.quarantined.push((event.clone(), reason.clone()));
    }

    fn max_event_time(&self) -> Option<DateTime<Utc>> {
        self.max_event_time
    }

    fn set_max_event_time(&mut self, t: DateTime<Utc>) {
        self.max_event_time = Some(t);
    }
}

/// The decision catalog in PostgreSQL: one versioned JSON document that the admin API writes and every node
/// polls. Writers compare and set on the version, so two admins editing at once cannot lose an edit.
pub struct PgCatalog {
    client: Client,
}

impl std::fmt::Debug for PgCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgCatalog").finish_non_exhaustive()
    }
}

impl PgCatalog {
    /// Connects and brings the schema up to date.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let mut client = connect_client(url).await?;
        migrate(&mut client).await?;
        Ok(PgCatalog { client })
    }

    /// The stored catalog and its version, if any was stored.
    pub async fn load(&self) -> Result<Option<(i64, serde_json::Value)>, StoreError> {
        Ok(self
            .client
            .query_opt("SELECT version, document FROM catalog WHERE id = 1", &[])
            .await?
            .map(|r| (r.get(0), r.get(1))))
    }

    /// The stored version (0 when none).
    pub async fn version(&self) -> Result<i64, StoreError> {
        Ok(self
            .client
            .query_opt("SELECT version FROM catalog WHERE id = 1", &[])
            .await?
            .map_or(0, |r| r.get(0)))
    }

    /// Stores `document` if the stored version is still `expected` (0: none stored yet); returns the new
    /// version, or `None` when someone else wrote first.
    pub async fn save(
        &self,
        expected: i64,
        document: &serde_json::Value,
    ) -> Result<Option<i64>, StoreError> {
        let row = self
            .client
            .query_opt(
                "INSERT INTO catalog (id, version, document) VALUES (1, 1, $2) \
                 ON CONFLICT (id) DO UPDATE SET version = catalog.version + 1, document = EXCLUDED.document, \
                 updated_at = now() WHERE catalog.version = $1 RETURNING version",
                &[&expected, document],
            )
            .await?;
        Ok(row.map(|r| r.get(0)))
    }
}
