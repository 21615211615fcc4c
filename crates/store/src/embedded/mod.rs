//! The embedded default store of the event pipeline: the event log, the dedup state, the one-minute windows,
//! the billing ledger and the quarantine, in one redb file under the data directory.
//!
//! Why redb: pure Rust (no C build), ACID transactions with one fsync per commit, and crash safety by design
//! (copy-on-write B-trees with a checksummed commit slot) — which is exactly the guarantee the pipeline needs: a
//! batch of events, their dedup marks and the counts they change are committed together or not at all. One
//! writer at a time suits the group commit: many HTTP requests, one transaction per batch. (fjall, an LSM, would
//! write faster but needs its own write-ahead-log reasoning for cross-partition atomicity.)
//!
//! [`EventStore::ingest`] is synchronous; [`committer`] batches concurrent callers into group commits.
//! [`crate::ReportStore`] is implemented here too, the slow parts (retention) on a blocking thread.

pub mod committer;
mod report_store;
mod snapshot;
mod state;

pub use snapshot::LogSnapshot;

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use interlude_events::{
    Counters, Envelope, Outcome, Policy, Prices, edge_check, process_with_edge,
};
use redb::{Database, ReadableTable, ReadableTableMetadata};
use serde::Serialize;

use state::{
    COUNTED, DELIVERY, EVENT_IDS, EXPIRY, FREQUENCY, LEDGER, LEDGER_CORRECTIONS, LOG, META,
    QUARANTINE, RedbState, SESSION_RATE, TAG_COUNTED, TAG_EVENT_ID, TAG_SESSION_RATE, WINDOWS,
};

use crate::Error as StoreError;
use crate::log;
use crate::reports::{
    Compacted, Forgotten, GroupBy, LedgerRow, ReportRow, build_ledger, build_report,
};

/// The store.
pub struct EventStore {
    db: Database,
    policy: Policy,
    prices: std::sync::RwLock<Arc<dyn Prices>>,
}

impl std::fmt::Debug for EventStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStore")
            .field("db", &self.db)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// Removes `viewer_id` from a stored event JSON when it is one of `ids`; the new bytes if it changed. The
/// event is under `event` (log records, quarantine) or, in logs written before log records, the whole value.
fn without_viewer(bytes: &[u8], ids: &std::collections::HashSet<&str>) -> Option<Vec<u8>> {
    let mut value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let nested = value.get("event").is_some_and(serde_json::Value::is_object);
    let event = if nested {
        value.get_mut("event")?
    } else {
        &mut value
    };
    let viewer = event.get("viewer_id")?.as_str()?;
    if !ids.contains(viewer) {
        return None;
    }
    event.as_object_mut()?.remove("viewer_id");
    serde_json::to_vec(&value).ok()
}

/// The receipt time of a stored event JSON (`received_at`), if readable.
fn received_at(bytes: &[u8]) -> Option<DateTime<Utc>> {
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let event = value.get("event").unwrap_or(&value);
    event.get("received_at")?.as_str()?.parse().ok()
}

/// Totals the operator watches.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StoreStats {
    /// Events in the log.
    pub logged: u64,
    /// Quarantined events.
    pub quarantined: u64,
    /// Correction records in the ledger.
    pub corrections: u64,
}

impl EventStore {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path, policy: Policy) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            what: format!("creating {}", dir.display()),
            source,
        })?;
        let db = Database::create(dir.join("events.redb"))?;
        let txn = db.begin_write()?;
        for table in [LOG, QUARANTINE, LEDGER_CORRECTIONS] {
            txn.open_table(table)?;
        }
        for table in [EVENT_IDS, COUNTED] {
            txn.open_table(table)?;
        }
        txn.open_table(WINDOWS)?;
        txn.open_table(LEDGER)?;
        txn.open_table(META)?;
        txn.open_table(EXPIRY)?;
        txn.open_table(DELIVERY)?;
        txn.open_table(FREQUENCY)?;
        txn.open_table(SESSION_RATE)?;
        txn.open_table(state::FREQUENCY_EXPIRY)?;
        txn.commit()?;
        let prices: Arc<dyn Prices> = Arc::new(std::collections::BTreeMap::<String, u64>::new());
        Ok(EventStore {
            db,
            policy,
            prices: std::sync::RwLock::new(prices),
        })
    }

    /// Processes `batch` and commits it durably (one fsync); the outcomes are valid only if this returns `Ok`.
    pub fn ingest(
        &self,
        batch: &[Envelope],
        now: DateTime<Utc>,
    ) -> Result<Vec<Outcome>, StoreError> {
        let txn = self.db.begin_write()?;
        let outcomes = {
            let mut state = RedbState::open(&txn)?;
            let mut outcomes = Vec::with_capacity(batch.len());
            for envelope in batch {
                // The same record a distributed log carries: replayable without the sender's address and agent.
                let edge = edge_check(envelope, &self.policy);
                state.log(&log::LogRecord {
                    event: envelope.event.clone(),
                    edge: edge.clone(),
                });
                outcomes.push(process_with_edge(
                    &mut state,
                    &envelope.event,
                    edge,
                    &self.policy,
                    now,
                ));
            }
            state.finish()?;
            outcomes
        };
        txn.commit()?;
        Ok(outcomes)
    }

    /// Processes records read back from an event log (a replay, or a log shipped from elsewhere) with the
    /// edge verdicts they carry and their receipt time as the clock; logs them and commits durably.
    pub fn ingest_logged(&self, records: &[log::LogRecord]) -> Result<Vec<Outcome>, StoreError> {
        let txn = self.db.begin_write()?;
        let outcomes = {
            let mut state = RedbState::open(&txn)?;
            let mut outcomes = Vec::with_capacity(records.len());
            for record in records {
                state.log(record);
                outcomes.push(interlude_events::process_logged(
                    &mut state,
                    &record.event,
                    record.edge.clone(),
                    &self.policy,
                ));
            }
            state.finish()?;
            outcomes
        };
        txn.commit()?;
        Ok(outcomes)
    }

    /// Sets the line-item prices reports and the ledger compute spend with (the catalog replaces them on reload).
    pub fn set_prices(&self, prices: Arc<dyn Prices>) {
        if let Ok(mut p) = self.prices.write() {
            *p = prices;
        }
    }

    fn prices(&self) -> Arc<dyn Prices> {
        self.prices
            .read()
            .map(|p| p.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Counts per `group_by` value over event time `[from, to)`.
    pub fn report(
        &self,
        group_by: GroupBy,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<ReportRow>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(WINDOWS)?;
        let (lo, hi) = (
            state::minute_prefix(from.timestamp()),
            state::minute_prefix(to.timestamp()),
        );
        let mut cells = Vec::new();
        for entry in table.range::<&[u8]>(lo.as_slice()..hi.as_slice())? {
            let (key, value) = entry?;
            cells.push((
                state::decode_window_key(key.value())?,
                state::decode_counts(value.value())?,
            ));
        }
        Ok(build_report(cells, group_by, self.prices().as_ref()))
    }

    /// The billing ledger: per line item and hour, the original counts and every correction appended since.
    pub fn ledger(&self) -> Result<Vec<LedgerRow>, StoreError> {
        let txn = self.db.begin_read()?;
        let mut originals = Vec::new();
        for entry in txn.open_table(LEDGER)?.iter()? {
            let (key, value) = entry?;
            originals.push((
                state::decode_ledger_key(key.value())?,
                state::decode_counts(value.value())?,
            ));
        }
        let mut corrections = Vec::new();
        for entry in txn.open_table(LEDGER_CORRECTIONS)?.iter()? {
            let (_, value) = entry?;
            let (li, hour, counts) = state::decode_correction(value.value())?;
            corrections.push(((li, hour), counts));
        }
        Ok(build_ledger(originals, corrections, self.prices().as_ref()))
    }

    /// Quarantined events by reason.
    pub fn quarantine_counts(&self) -> Result<std::collections::BTreeMap<String, u64>, StoreError> {
        let txn = self.db.begin_read()?;
        let mut out = std::collections::BTreeMap::new();
        for entry in txn.open_table(QUARANTINE)?.iter()? {
            let (_, value) = entry?;
            let record: serde_json::Value =
                serde_json::from_slice(value.value()).map_err(|e| StoreError::Corrupt {
                    table: "quarantine",
                    reason: e.to_string(),
                })?;
            let reason = record["reason"]["reason"]
                .as_str()
                .unwrap_or("unknown")
                .to_owned();
            *out.entry(reason).or_insert(0) += 1;
        }
        Ok(out)
    }

    /// Sizes of the log, the quarantine and the corrections.
    pub fn stats(&self) -> Result<StoreStats, StoreError> {
        let txn = self.db.begin_read()?;
        Ok(StoreStats {
            logged: txn.open_table(LOG)?.len()?,
            quarantined: txn.open_table(QUARANTINE)?.len()?,
            corrections: txn.open_table(LEDGER_CORRECTIONS)?.len()?,
        })
    }

    /// Irreversibly removes the viewer ids `ids` (pseudonyms) from the store: stripped from logged and
    /// quarantined events (which stay, for billing and investigation), their frequency rows deleted.
    /// Aggregates hold no viewer ids and do not change. One transaction.
    pub fn forget_viewers(&self, ids: &[String]) -> Result<Forgotten, StoreError> {
        let set: std::collections::HashSet<&str> = ids.iter().map(String::as_str).collect();
        let mut out = Forgotten::default();
        let txn = self.db.begin_write()?;
        for (table, count) in [
            (LOG, &mut out.log_events_anonymised),
            (QUARANTINE, &mut out.quarantine_anonymised),
        ] {
            let mut t = txn.open_table(table)?;
            let mut changed = Vec::new();
            for entry in t.iter()? {
                let (k, v) = entry?;
                if let Some(bytes) = without_viewer(v.value(), &set) {
                    changed.push((k.value(), bytes));
                }
            }
            *count = changed.len() as u64;
            for (k, bytes) in changed {
                t.insert(k, bytes.as_slice())?;
            }
        }
        {
            let mut frequency = txn.open_table(FREQUENCY)?;
            let mut index = txn.open_table(state::FREQUENCY_EXPIRY)?;
            for id in ids {
                let (lo, hi) = (
                    state::hour_key(&[id], i64::MIN / 2),
                    state::hour_key_end(&[id]),
                );
                let keys: Vec<Vec<u8>> = frequency
                    .range::<&[u8]>(lo.as_slice()..hi.as_slice())?
                    .filter_map(|e| e.ok().map(|(k, _)| k.value().to_vec()))
                    // The range also covers ids that extend this one: keep exact matches only.
                    .filter(|k| {
                        k.len() > id.len() && k.starts_with(id.as_bytes()) && k[id.len()] == 0x1F
                    })
                    .collect();
                for key in keys {
                    frequency.remove(key.as_slice())?;
                    let mut entry = key
                        .get(key.len().saturating_sub(8)..)
                        .unwrap_or_default()
                        .to_vec();
                    entry.extend_from_slice(&key);
                    index.remove(entry.as_slice())?;
                    out.frequency_rows_deleted += 1;
                }
            }
        }
        txn.commit()?;
        Ok(out)
    }

    /// Retention: removes raw events received before `log_before` from the log and quarantined events
    /// received before `quarantine_before` (both tables are in arrival order, so the sweep stops at the first
    /// newer event). At most `limit` of each per call.
    pub fn compact(
        &self,
        log_before: DateTime<Utc>,
        quarantine_before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Compacted, StoreError> {
        let mut out = Compacted::default();
        let txn = self.db.begin_write()?;
        for (table, before, count) in [
            (LOG, log_before, &mut out.log_events),
            (QUARANTINE, quarantine_before, &mut out.quarantined),
        ] {
            let mut t = txn.open_table(table)?;
            let mut old = Vec::new();
            for entry in t.iter()?.take(limit) {
                let (k, v) = entry?;
                match received_at(v.value()) {
                    Some(at) if at < before => old.push(k.value()),
                    _ => break,
                }
            }
            *count = old.len() as u64;
            for k in old {
                t.remove(k)?;
            }
        }
        txn.commit()?;
        Ok(out)
    }

    /// Every stored byte that mentions `needle`, by table (the deletion test's "no store contains it").
    pub fn tables_mentioning(&self, needle: &str) -> Result<Vec<&'static str>, StoreError> {
        let txn = self.db.begin_read()?;
        let found = |bytes: &[u8]| {
            bytes
                .windows(needle.len().max(1))
                .any(|w| w == needle.as_bytes())
        };
        let mut out = Vec::new();
        for (name, table) in [
            ("log", LOG),
            ("quarantine", QUARANTINE),
            ("ledger_corrections", LEDGER_CORRECTIONS),
        ] {
            if txn
                .open_table(table)?
                .iter()?
                .any(|e| e.is_ok_and(|(_, v)| found(v.value())))
            {
                out.push(name);
            }
        }
        for (name, table) in [
            ("windows", WINDOWS),
            ("ledger", LEDGER),
            ("delivery", DELIVERY),
        ] {
            if txn
                .open_table(table)?
                .iter()?
                .any(|e| e.is_ok_and(|(k, v)| found(k.value()) || found(v.value())))
            {
                out.push(name);
            }
        }
        if txn
            .open_table(FREQUENCY)?
            .iter()?
            .any(|e| e.is_ok_and(|(k, _)| found(k.value())))
        {
            out.push("frequency");
        }
        for (name, table) in [("event_ids", EVENT_IDS), ("counted", COUNTED)] {
            if txn
                .open_table(table)?
                .iter()?
                .any(|e| e.is_ok_and(|(k, _)| found(k.value().as_bytes())))
            {
                out.push(name);
            }
        }
        if txn
            .open_table(SESSION_RATE)?
            .iter()?
            .any(|e| e.is_ok_and(|(k, _)| found(k.value().as_bytes())))
        {
            out.push("session_rate");
        }
        Ok(out)
    }

    /// Forgets dedup keys of events that occurred before the dedup window (those events are quarantined as too
    /// old from then on, so forgetting cannot recount them). Sweeps at most `limit` keys; returns how many.
    pub fn expire(&self, now: DateTime<Utc>, limit: usize) -> Result<usize, StoreError> {
        let cutoff = now.timestamp() - self.policy.dedup_window_hours * 3600;
        let hi = state::expiry_prefix(cutoff);
        let txn = self.db.begin_write()?;
        let removed = {
            let mut expiry = txn.open_table(EXPIRY)?;
            let mut ids = txn.open_table(EVENT_IDS)?;
            let mut counted = txn.open_table(COUNTED)?;
            let mut rates = txn.open_table(SESSION_RATE)?;
            let mut keys = Vec::new();
            for entry in expiry.range::<&[u8]>(..hi.as_slice())?.take(limit) {
                keys.push(entry?.0.value().to_vec());
            }
            for key in &keys {
                match state::split_expiry_key(key) {
                    Some((TAG_EVENT_ID, id)) => {
                        ids.remove(id)?;
                    }
                    Some((TAG_COUNTED, k)) => {
                        counted.remove(k)?;
                    }
                    Some((TAG_SESSION_RATE, k)) => {
                        rates.remove(k)?;
                    }
                    _ => {}
                }
                expiry.remove(key.as_slice())?;
            }
            keys.len()
        };
        txn.commit()?;
        let removed = removed + self.expire_frequency(now, limit)?;
        if removed > 0 {
            metrics::counter!("events_dedup_keys_expired_total").increment(removed as u64);
        }
        Ok(removed)
    }

    /// Forgets per-viewer impression counts older than the frequency window.
    fn expire_frequency(&self, now: DateTime<Utc>, limit: usize) -> Result<usize, StoreError> {
        let cutoff = now.timestamp() - self.policy.frequency_window_days * 86_400;
        let hi = state::expiry_prefix(cutoff);
        let txn = self.db.begin_write()?;
        let removed = {
            let mut index = txn.open_table(state::FREQUENCY_EXPIRY)?;
            let mut frequency = txn.open_table(FREQUENCY)?;
            let mut keys = Vec::new();
            for entry in index.range::<&[u8]>(..hi.as_slice())?.take(limit) {
                keys.push(entry?.0.value().to_vec());
            }
            for key in &keys {
                frequency.remove(key.get(8..).unwrap_or_default())?;
                index.remove(key.as_slice())?;
            }
            keys.len()
        };
        txn.commit()?;
        Ok(removed)
    }

    /// Dedup keys held (event ids and billing keys).
    pub fn dedup_keys(&self) -> Result<u64, StoreError> {
        let txn = self.db.begin_read()?;
        Ok(txn.open_table(EVENT_IDS)?.len()? + txn.open_table(COUNTED)?.len()?)
    }

    /// Whether an event id was ever accepted (the crash test's check of acknowledged events).
    pub fn has_event_id(&self, event_id: &str) -> Result<bool, StoreError> {
        let txn = self.db.begin_read()?;
        Ok(txn.open_table(EVENT_IDS)?.get(event_id)?.is_some())
    }

    /// The event types counted for one ad instance (support: "was this ad billed?").
    pub fn counted_events(
        &self,
        ad_instance_id: &str,
    ) -> Result<Vec<interlude_events::contract::EventType>, StoreError> {
        let txn = self.db.begin_read()?;
        let counted = txn.open_table(state::COUNTED)?;
        let mut out = Vec::new();
        for t in interlude_events::contract::EventType::ALL {
            if counted
                .get(state::counted_key(ad_instance_id, t).as_str())?
                .is_some()
            {
                out.push(t);
            }
        }
        Ok(out)
    }
}

impl EventStore {
    fn sum_hours<V: redb::Value + 'static>(
        &self,
        table: redb::TableDefinition<&[u8], V>,
        parts: &[&str],
        since: DateTime<Utc>,
        value: impl Fn(V::SelfType<'_>) -> u64,
    ) -> Result<u64, StoreError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(table)?;
        let (lo, hi) = (
            state::hour_key(parts, since.timestamp()),
            state::hour_key_end(parts),
        );
        let mut total = 0;
        for entry in t.range::<&[u8]>(lo.as_slice()..hi.as_slice())? {
            total += value(entry?.1.value());
        }
        Ok(total)
    }
}

/// Pacing and frequency capping read live counts straight from the store (a read transaction per call, a few
/// microseconds); a failed read counts as zero delivered and is logged, so a disk error cannot stop ad serving.
impl Counters for EventStore {
    fn delivered(&self, line_item_id: &str, since: DateTime<Utc>) -> u64 {
        self.sum_hours(DELIVERY, &[line_item_id], since, |v: &[u8]| {
            state::decode_counts(v).map_or(0, |c| c.impressions)
        })
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "Reading delivery failed.");
            0
        })
    }

    fn viewer_impressions(&self, viewer_id: &str, line_item_id: &str, since: DateTime<Utc>) -> u64 {
        self.sum_hours(FREQUENCY, &[viewer_id, line_item_id], since, |v: u64| v)
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "Reading frequency failed.");
                0
            })
    }
}
