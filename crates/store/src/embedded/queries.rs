//! What the embedded store answers: reports, the ledger, the quarantine, support look-ups, the live counters
//! the decision engine reads, and erasure. Each is one short transaction.

use chrono::{DateTime, Utc};
use interlude_events::{Counters, ViewerHour};
use redb::{ReadableTable, ReadableTableMetadata};

use super::dedup::{self, Kind};
use super::state::{
    self, AUCTIONS, DELIVERY, DEMAND, FREQUENCY, LEDGER, LEDGER_CORRECTIONS, LOG, LOG_CHUNKS, META,
    META_CHUNK_RECORDS, QUARANTINE, WINDOWS,
};
use super::{EventStore, StoreError, StoreStats};
use crate::reports::{
    DemandGroupBy, DemandRow, Forgotten, GroupBy, LedgerRow, ReportRow, build_demand_report,
    build_ledger, build_report,
};

/// A dedup key and its value (a time in seconds, or a count of impressions): see [`EventStore::dedup_entries`].
pub type DedupEntry = (Vec<u8>, u64);

/// Removes `viewer_id` from a stored event when it is one of `ids`; the new bytes if it changed. A compact log
/// record ([`crate::compact`]) is rewritten in that form; in JSON the event is under `event` (log records,
/// quarantine) or, in logs written before log records, the whole value.
fn without_viewer(bytes: &[u8], ids: &std::collections::HashSet<&str>) -> Option<Vec<u8>> {
    if crate::compact::is_compact(bytes) {
        // A record that does not decode is left as it is (as a JSON value that does not parse): `verify`
        // names it.
        let mut record = crate::compact::decode(bytes).ok()?;
        if !ids.contains(record.event.viewer_id.as_deref()?) {
            return None;
        }
        record.event.viewer_id = None;
        let mut out = Vec::with_capacity(bytes.len());
        crate::compact::encode(&record.event, record.edge.as_ref(), &mut out);
        return Some(out);
    }
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

/// Records in [`LOG_CHUNKS`], as counted in [`META`] when chunks are written and retained.
fn chunk_records(txn: &redb::ReadTransaction) -> Result<u64, StoreError> {
    let n = txn
        .open_table(META)?
        .get(META_CHUNK_RECORDS)?
        .map_or(0, |v| v.value());
    Ok(u64::try_from(n).unwrap_or(0))
}

impl EventStore {
    /// Counts per `group_by` value over event time `[from, to)`.
    pub fn report(
        &self,
        group_by: GroupBy,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<ReportRow>, StoreError> {
        let db = self.db()?;
        let txn = db.begin_read()?;
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

    /// Demand per `group_by` value over the hours that start in `[from, to)`.
    pub fn demand_report(
        &self,
        group_by: DemandGroupBy,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<DemandRow>, StoreError> {
        let db = self.db()?;
        let txn = db.begin_read()?;
        let (lo, hi) = (
            state::time_bytes(from.timestamp()),
            state::time_bytes(to.timestamp()),
        );
        let mut delivered = Vec::new();
        for entry in txn
            .open_table(DEMAND)?
            .range::<&[u8]>(lo.as_slice()..hi.as_slice())?
        {
            let (key, value) = entry?;
            delivered.push((
                state::decode_demand_key("demand", key.value())?,
                state::decode_delivered(value.value())?,
            ));
        }
        let mut auctions = Vec::new();
        for entry in txn
            .open_table(AUCTIONS)?
            .range::<&[u8]>(lo.as_slice()..hi.as_slice())?
        {
            let (key, value) = entry?;
            auctions.push((
                state::decode_demand_key("auctions", key.value())?,
                state::decode_auctions(value.value())?,
            ));
        }
        Ok(build_demand_report(delivered, auctions, group_by))
    }

    /// Adds auction outcomes, in one write transaction of their own (the decider's flush, not the pipeline's
    /// group commit: redb serialises the two).
    pub fn add_auctions(
        &self,
        cells: &[(interlude_events::DemandKey, interlude_events::AuctionCounts)],
    ) -> Result<(), StoreError> {
        if cells.is_empty() {
            return Ok(());
        }
        let db = self.db()?;
        let txn = db.begin_write()?;
        {
            let mut table = txn.open_table(AUCTIONS)?;
            let mut sorted: Vec<(Vec<u8>, interlude_events::AuctionCounts)> = cells
                .iter()
                .map(|(k, a)| (state::encode_demand_key(k), *a))
                .collect();
            sorted.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            for (key, add) in sorted {
                let mut cell = match table.get(key.as_slice())? {
                    Some(v) => state::decode_auctions(v.value())?,
                    None => interlude_events::AuctionCounts::default(),
                };
                cell.add(&add);
                table.insert(key.as_slice(), state::encode_auctions(&cell).as_slice())?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// The billing ledger: per line item and hour, the original counts and every correction appended since.
    pub fn ledger(&self) -> Result<Vec<LedgerRow>, StoreError> {
        let db = self.db()?;
        let txn = db.begin_read()?;
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
        let db = self.db()?;
        let txn = db.begin_read()?;
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
        let db = self.db()?;
        let txn = db.begin_read()?;
        Ok(StoreStats {
            logged: txn.open_table(LOG)?.len()? + chunk_records(&txn)?,
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
        let db = self.db()?;
        let txn = db.begin_write()?;
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
            let mut chunks = txn.open_table(LOG_CHUNKS)?;
            let mut changed = Vec::new();
            for entry in chunks.iter()? {
                let (k, v) = entry?;
                let records =
                    state::log_chunk_records(v.value()).map_err(|reason| StoreError::Corrupt {
                        table: "log_chunks",
                        reason: format!("chunk {}: {reason}", k.value()),
                    })?;
                let mut anonymised = 0u64;
                let rewritten: Vec<std::borrow::Cow<'_, [u8]>> = records
                    .into_iter()
                    .map(|r| match without_viewer(r, &set) {
                        Some(bytes) => {
                            anonymised += 1;
                            bytes.into()
                        }
                        None => r.into(),
                    })
                    .collect();
                if anonymised > 0 {
                    out.log_events_anonymised += anonymised;
                    changed.push((
                        k.value(),
                        state::encode_log_chunk(rewritten.iter().map(|r| r.as_ref())),
                    ));
                }
            }
            for (k, bytes) in changed {
                chunks.insert(k, bytes.as_slice())?;
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

    /// Every stored byte that mentions `needle`, by table (the deletion test's "no store contains it").
    pub fn tables_mentioning(&self, needle: &str) -> Result<Vec<&'static str>, StoreError> {
        let db = self.db()?;
        let txn = db.begin_read()?;
        let found = |bytes: &[u8]| {
            bytes
                .windows(needle.len().max(1))
                .any(|w| w == needle.as_bytes())
        };
        let mut out = Vec::new();
        for (name, table) in [
            ("log", LOG),
            ("log", LOG_CHUNKS),
            ("quarantine", QUARANTINE),
            ("ledger_corrections", LEDGER_CORRECTIONS),
        ] {
            if !out.contains(&name)
                && txn
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
        for kind in Kind::ALL {
            if db
                .dedup()
                .entries(kind)
                .any(|e| e.is_ok_and(|(k, _)| found(&k)))
            {
                out.push(kind.name());
            }
        }
        Ok(out)
    }

    /// Dedup keys held (event ids and billing keys; a scan).
    pub fn dedup_keys(&self) -> Result<u64, StoreError> {
        let db = self.db()?;
        Ok(db.dedup().count(Kind::EventId)? + db.dedup().count(Kind::Counted)?)
    }

    /// Whether an event id was ever accepted (the crash test's check of acknowledged events).
    pub fn has_event_id(&self, event_id: &str) -> Result<bool, StoreError> {
        let db = self.db()?;
        Ok(db
            .dedup()
            .get(Kind::EventId, event_id.as_bytes())?
            .is_some())
    }

    /// Every entry of one kind of dedup key (`event_ids`, `counted` or `session_rate`), key and value, in
    /// key order (tests and tools; a scan). `None` for another name.
    pub fn dedup_entries(&self, kind: &str) -> Result<Option<Vec<DedupEntry>>, StoreError> {
        let Some(kind) = Kind::ALL.into_iter().find(|k| k.name() == kind) else {
            return Ok(None);
        };
        let db = self.db()?;
        let mut out = Vec::new();
        for entry in db.dedup().entries(kind) {
            let (key, value) = entry?;
            let value = value.map_err(|len| StoreError::Corrupt {
                table: kind.name(),
                reason: format!("value of {} is {len} bytes, not 8", dedup::hex(&key)),
            })?;
            out.push((key, value));
        }
        Ok(Some(out))
    }

    /// The event types counted for one ad instance (support: "was this ad billed?").
    pub fn counted_events(
        &self,
        ad_instance_id: &str,
    ) -> Result<Vec<interlude_events::contract::EventType>, StoreError> {
        let db = self.db()?;
        let mut out = Vec::new();
        for t in interlude_events::contract::EventType::ALL {
            if db
                .dedup()
                .get(
                    Kind::Counted,
                    state::counted_key(ad_instance_id, t).as_bytes(),
                )?
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
        let db = self.db()?;
        let txn = db.begin_read()?;
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

    fn viewer_hours(&self, viewer_id: &str, since: DateTime<Utc>) -> Option<Vec<ViewerHour>> {
        match self.read_viewer_hours(viewer_id, since) {
            Ok(hours) => Some(hours),
            Err(e) => {
                // As a failed per-line-item read: counted as nothing, logged.
                tracing::warn!(error = %e, "Reading the viewer's frequency failed.");
                Some(Vec::new())
            }
        }
    }
}

impl EventStore {
    /// [`Counters::viewer_hours`]: one range scan over the viewer's frequency keys.
    fn read_viewer_hours(
        &self,
        viewer_id: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<ViewerHour>, StoreError> {
        let db = self.db()?;
        let txn = db.begin_read()?;
        let t = txn.open_table(FREQUENCY)?;
        let (lo, hi) = state::viewer_range(viewer_id);
        let from = since.timestamp().div_euclid(3600) * 3600;
        let mut out = Vec::new();
        for entry in t.range::<&[u8]>(lo.as_slice()..hi.as_slice())? {
            let (key, value) = entry?;
            // A key that does not decode is skipped: caps then count less, never refuse to serve.
            if let Some((line_item, hour)) = state::decode_viewer_hour_key(key.value(), lo.len())
                && hour >= from
            {
                out.push(ViewerHour {
                    line_item_id: line_item.to_owned(),
                    hour,
                    impressions: value.value(),
                });
            }
        }
        Ok(out)
    }

    /// Entries per table (each count is stored in the table's root: no scan).
    pub fn table_sizes(&self) -> Result<Vec<(&'static str, u64)>, StoreError> {
        let db = self.db()?;
        let txn = db.begin_read()?;
        let mut out = Vec::new();
        // The log's records, whether per-event entries or in chunks.
        out.push(("log", txn.open_table(LOG)?.len()? + chunk_records(&txn)?));
        // The tables appended to hold a tail entry each, which is no data (see `state::LOG_CHUNKS_TAIL`).
        let tail = |n: u64| n.saturating_sub(1);
        out.push(("log_chunks", tail(txn.open_table(LOG_CHUNKS)?.len()?)));
        for (name, table) in [
            ("quarantine", QUARANTINE),
            ("ledger_corrections", LEDGER_CORRECTIONS),
        ] {
            out.push((name, txn.open_table(table)?.len()?));
        }
        // Estimated (removed keys count until compaction drops them): a count would scan the tree.
        for kind in [Kind::EventId, Kind::Counted] {
            out.push((kind.name(), db.dedup().approximate_len(kind)));
        }
        for (name, table) in [
            ("windows", WINDOWS),
            ("ledger", LEDGER),
            ("delivery", DELIVERY),
        ] {
            out.push((name, txn.open_table(table)?.len()?));
        }
        out.push(("frequency", txn.open_table(FREQUENCY)?.len()?));
        out.push((
            Kind::SessionRate.name(),
            db.dedup().approximate_len(Kind::SessionRate),
        ));
        out.push(("dedup_redo", tail(txn.open_table(dedup::REDO)?.len()?)));
        out.push(("expiry", txn.open_table(state::EXPIRY)?.len()?));
        out.push((
            "expiry_batches",
            tail(txn.open_table(state::EXPIRY_BATCHES)?.len()?),
        ));
        out.push((
            "frequency_expiry",
            txn.open_table(state::FREQUENCY_EXPIRY)?.len()?,
        ));
        Ok(out)
    }
}
