//! Keeping the store small: retention of raw and quarantined events, and expiry of dedup keys and frequency
//! counts once they leave their windows.
//!
//! Both must keep up with ingestion, whatever the backlog: a sweep works in chunks (one short write transaction
//! each, so group commits interleave), and the chunk doubles while a full chunk was found, up to
//! [`MAX_CHUNK`]. Log retention does not decode records: [`super::state::LOG_MINUTES`] says where each receipt
//! minute starts, so removing a day of log is deleting a range of sequence numbers — whole log chunks (one
//! per group commit), once every record of a chunk is past the horizon (a chunk's records share its commit's
//! index entry, so a chunk is never split).

use chrono::{DateTime, Utc};
use redb::{ReadableTable, ReadableTableMetadata};
use serde::Serialize;

use super::dedup::{self, Kind, Redo};
use super::state::{
    self, EXPIRY, EXPIRY_BATCHES, FREQUENCY, LOG, LOG_CHUNKS, LOG_MINUTES, META,
    META_CHUNK_RECORDS, QUARANTINE,
};
use super::{EventStore, StoreError};
use crate::metrics as m;
use crate::reports::Compacted;

/// The first chunk of a sweep.
pub(super) const MIN_CHUNK: usize = 10_000;
/// The largest chunk (one write transaction) of a sweep.
pub(super) const MAX_CHUNK: usize = 1_000_000;

/// What a whole sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Swept {
    /// Entries removed.
    pub removed: u64,
    /// Write transactions it took.
    pub chunks: u64,
}

/// The receipt time of a stored event JSON (`received_at`), if readable.
fn received_at(bytes: &[u8]) -> Option<DateTime<Utc>> {
    #[derive(serde::Deserialize)]
    struct Received {
        received_at: DateTime<Utc>,
    }
    #[derive(serde::Deserialize)]
    struct Nested {
        event: Received,
    }
    serde_json::from_slice::<Nested>(bytes)
        .map(|n| n.event.received_at)
        .or_else(|_| serde_json::from_slice::<Received>(bytes).map(|r| r.received_at))
        .ok()
}

/// Removes, from an arrival-ordered table, the leading records received before `before` (read from their
/// JSON), at most `limit` and only below sequence number `end`; how many.
fn sweep_by_content(
    t: &mut redb::Table<'_, u64, &'static [u8]>,
    before: DateTime<Utc>,
    end: u64,
    limit: usize,
) -> Result<(u64, bool), StoreError> {
    let mut old = Vec::new();
    let mut reached_newer = false;
    for entry in t.range(..end)?.take(limit) {
        let (k, v) = entry?;
        match received_at(v.value()) {
            Some(at) if at < before => old.push(k.value()),
            _ => {
                reached_newer = true;
                break;
            }
        }
    }
    for k in &old {
        t.remove(*k)?;
    }
    Ok((old.len() as u64, reached_newer))
}

impl EventStore {
    /// Retention, one chunk: removes raw events received before `log_before` from the log and quarantined
    /// events received before `quarantine_before`, in one transaction: at most `limit` quarantined events,
    /// and log records until `limit` are gone in whole log chunks (the last chunk may take it past `limit`).
    pub fn compact(
        &self,
        log_before: DateTime<Utc>,
        quarantine_before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Compacted, StoreError> {
        let mut out = Compacted::default();
        let db = self.db()?;
        let txn = db.begin_write()?;
        {
            let mut log = txn.open_table(LOG)?;
            let mut chunks = txn.open_table(LOG_CHUNKS)?;
            let mut meta = txn.open_table(META)?;
            let mut index = txn.open_table(LOG_MINUTES)?;
            let cutoff = log_before.timestamp().div_euclid(60) * 60;
            // Records logged before the index existed are judged by their content.
            let first_indexed = index.first()?.map(|(_, s)| s.value());
            let (legacy, reached_newer) = sweep_by_content(
                &mut log,
                log_before,
                first_indexed.unwrap_or(u64::MAX),
                limit,
            )?;
            out.log_events = legacy;
            if let (false, Some(_)) = (reached_newer, first_indexed) {
                // Everything below the first minute at or after the cutoff was received before it.
                let end = index
                    .range(cutoff..)?
                    .next()
                    .transpose()?
                    .map_or(u64::MAX, |(_, s)| s.value());
                let mut left = (limit as u64).saturating_sub(legacy);
                // Per-event entries first (stores written before chunks; their sequence numbers are lower).
                let first = log.first()?.map(|(k, _)| k.value());
                if let (Some(first), true) = (first, left > 0) {
                    // Sequence numbers are shared with other tables: the key `left` entries on.
                    let hi = log
                        .range(first..end)?
                        .nth(usize::try_from(left).unwrap_or(usize::MAX))
                        .transpose()?
                        .map_or(end, |(k, _)| k.value());
                    if hi > first {
                        let before = log.len()?;
                        log.retain_in(first..hi, |_, _| false)?;
                        let removed = before - log.len()?;
                        out.log_events += removed;
                        left = left.saturating_sub(removed);
                    }
                }
                // Then whole chunks: a commit's chunks start at or after its index entry and end before the
                // next commit's, so one that starts below `end` holds only records received before the
                // cutoff. Whole chunks go until `limit` records are gone (the last may take the sweep past it).
                let mut gone = Vec::new();
                let mut records = 0u64;
                // Never the tail entry (see `state::LOG_CHUNKS_TAIL`): it holds no records.
                for entry in chunks.range(..end.min(state::LOG_CHUNKS_TAIL))? {
                    if left == 0 {
                        break;
                    }
                    let (k, v) = entry?;
                    let n = u64::from(state::log_chunk_len(v.value()).ok_or_else(|| {
                        StoreError::Corrupt {
                            table: "log_chunks",
                            reason: format!("chunk {}: unknown layout", k.value()),
                        }
                    })?);
                    gone.push(k.value());
                    records += n;
                    left = left.saturating_sub(n);
                }
                if let (Some(lo), Some(hi)) = (gone.first(), gone.last()) {
                    chunks.retain_in(*lo..=*hi, |_, _| false)?;
                    let before = meta.get(META_CHUNK_RECORDS)?.map_or(0, |v| v.value());
                    let records_i = i64::try_from(records).unwrap_or(i64::MAX);
                    meta.insert(META_CHUNK_RECORDS, before.saturating_sub(records_i).max(0))?;
                    out.log_events += records;
                }
                // Index entries whose whole range is gone.
                let first_left = [
                    log.first()?.map(|(k, _)| k.value()),
                    chunks.first()?.map(|(k, _)| k.value()),
                ]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(u64::MAX);
                let entries: Vec<(i64, u64)> = index
                    .range(..cutoff)?
                    .map(|e| e.map(|(k, v)| (k.value(), v.value())))
                    .collect::<Result<_, _>>()?;
                let next_starts = entries
                    .iter()
                    .skip(1)
                    .map(|(_, s)| *s)
                    .chain([end])
                    .collect::<Vec<_>>();
                for ((minute, _), next) in entries.iter().zip(next_starts) {
                    if next <= first_left {
                        index.remove(*minute)?;
                    }
                }
            }
            let mut quarantine = txn.open_table(QUARANTINE)?;
            out.quarantined =
                sweep_by_content(&mut quarantine, quarantine_before, u64::MAX, limit)?.0;
        }
        txn.commit()?;
        Ok(out)
    }

    /// Retention, the whole backlog: [`Self::compact`] in chunks that grow while they come back full.
    pub fn compact_all(
        &self,
        log_before: DateTime<Utc>,
        quarantine_before: DateTime<Utc>,
    ) -> Result<(Compacted, Swept), StoreError> {
        let (mut total, mut swept, mut chunk) = (Compacted::default(), Swept::default(), MIN_CHUNK);
        loop {
            let c = self.compact(log_before, quarantine_before, chunk)?;
            swept.chunks += 1;
            total.log_events += c.log_events;
            total.quarantined += c.quarantined;
            metrics::counter!(m::RETENTION_REMOVED).increment(c.log_events + c.quarantined);
            if c.log_events < chunk as u64 && c.quarantined < chunk as u64 {
                break;
            }
            chunk = (chunk * 2).min(MAX_CHUNK);
        }
        swept.removed = total.log_events + total.quarantined;
        metrics::gauge!(m::RETENTION_BACKLOG).set(0.0);
        Ok((total, swept))
    }

    /// Forgets dedup keys of events that occurred before the dedup window (those events are quarantined as too
    /// old from then on, so forgetting cannot recount them), and frequency counts older than the frequency
    /// window. Sweeps at most `limit` keys of each kind in one transaction; returns how many.
    pub fn expire(&self, now: DateTime<Utc>, limit: usize) -> Result<usize, StoreError> {
        let cutoff = now.timestamp() - self.policy.dedup_window_hours * 3600;
        let hi = state::expiry_prefix(cutoff);
        let frequency_cutoff = now.timestamp() - self.policy.frequency_window_days * 86_400;
        let frequency_hi = state::expiry_prefix(frequency_cutoff);
        let db = self.db()?;
        let dedup = db.dedup();
        let _writer = dedup.writer();
        let txn = db.begin_write()?;
        // The dedup keys go in a redo record, applied once the transaction commits (see `super::dedup`).
        let mut redo = Redo::default();
        let (removed, after) = {
            let mut expiry = txn.open_table(EXPIRY)?;
            let mut removed = 0;
            for entry in expiry
                .extract_from_if::<&[u8], _>(..hi.as_slice(), |_, _| true)?
                .take(limit)
            {
                let (key, _) = entry?;
                if let Some((tag, key)) = state::split_expiry_key(key.value())
                    && let Some(kind) = Kind::of_tag(tag)
                {
                    redo.remove(kind, key.as_bytes());
                }
                removed += 1;
            }
            // Whole commit entries, until `limit` keys are gone.
            let mut batches = txn.open_table(EXPIRY_BATCHES)?;
            let mut swept = 0;
            for entry in batches.extract_from_if::<&[u8], _>(..hi.as_slice(), |_, _| true)? {
                let (_, value) = entry?;
                for (tag, key) in state::expiry_entries(value.value()).unwrap_or_default() {
                    if let Some(kind) = Kind::of_tag(tag) {
                        redo.remove(kind, key.as_bytes());
                    }
                    swept += 1;
                }
                if swept >= limit {
                    break;
                }
            }
            removed += swept;
            let mut index = txn.open_table(state::FREQUENCY_EXPIRY)?;
            let mut frequency = txn.open_table(FREQUENCY)?;
            for entry in index
                .extract_from_if::<&[u8], _>(..frequency_hi.as_slice(), |_, _| true)?
                .take(limit)
            {
                let (key, _) = entry?;
                frequency.remove(key.value().get(8..).unwrap_or_default())?;
                removed += 1;
            }
            drop((expiry, batches, index, frequency));
            (removed, dedup::write_redo(&txn, dedup, redo)?)
        };
        txn.commit()?;
        after.finish(dedup)?;
        if removed > 0 {
            metrics::counter!(m::DEDUP_KEYS_EXPIRED).increment(removed as u64);
        }
        Ok(removed)
    }

    /// Expiry, the whole backlog: [`Self::expire`] in chunks that grow while they come back full.
    pub fn expire_all(&self, now: DateTime<Utc>) -> Result<Swept, StoreError> {
        let (mut swept, mut chunk) = (Swept::default(), MIN_CHUNK);
        loop {
            let n = self.expire(now, chunk)?;
            swept.chunks += 1;
            swept.removed += n as u64;
            if n < chunk {
                return Ok(swept);
            }
            chunk = (chunk * 2).min(MAX_CHUNK);
        }
    }
}
