//! The redb tables and the pipeline state over one write transaction.
//!
//! Keys that are scanned by time start with the time as a big-endian integer with its sign bit flipped, so byte
//! order is time order. Fields inside keys are separated by 0x1F (unit separator), which ids never contain
//! (the contract limits them to printable text).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use interlude_events::contract::{AdEvent, EventType};
use interlude_events::{Counts, PipelineState, Quarantine, WindowCell, WindowKey};
use redb::{ReadableTable, Table, TableDefinition, WriteTransaction};

use super::StoreError;

/// The event log: sequence number → [`crate::log::LogRecord`] JSON (older stores: the bare event). Append-only.
pub(crate) const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
/// Quarantine: sequence number → `{reason, event}` JSON.
pub(crate) const QUARANTINE: TableDefinition<u64, &[u8]> = TableDefinition::new("quarantine");
/// Ledger corrections: sequence number → `{line_item_id, hour, counts}`. Append-only.
pub(crate) const LEDGER_CORRECTIONS: TableDefinition<u64, &[u8]> =
    TableDefinition::new("ledger_corrections");
/// Event ids seen (ingestion idempotency) → occurred_at seconds.
pub(crate) const EVENT_IDS: TableDefinition<&str, i64> = TableDefinition::new("event_ids");
/// Billing dedup keys `ad_instance␟type` → occurred_at seconds.
pub(crate) const COUNTED: TableDefinition<&str, i64> = TableDefinition::new("counted");
/// One-minute windows: `minute␟campaign␟line item␟creative␟channel␟live event` → counts.
pub(crate) const WINDOWS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("windows");
/// Ledger originals: `line item␟hour` → counts.
pub(crate) const LEDGER: TableDefinition<&[u8], &[u8]> = TableDefinition::new("ledger");
/// Delivery per `line item␟hour`, originals and corrections together: what pacing reads.
pub(crate) const DELIVERY: TableDefinition<&[u8], &[u8]> = TableDefinition::new("delivery");
/// Impressions per `viewer␟line item␟hour` (only viewers who consented to their id being stored).
pub(crate) const FREQUENCY: TableDefinition<&[u8], u64> = TableDefinition::new("frequency");

/// Impressions per `session␟minute`, for the impossible-rate check. Expires like the dedup keys.
pub(crate) const SESSION_RATE: TableDefinition<&str, u64> = TableDefinition::new("session_rate");

/// Expiry index of the dedup keys: `hour ‖ table tag ‖ key` → (). Swept once keys leave the dedup window.
pub(crate) const EXPIRY: TableDefinition<&[u8], ()> = TableDefinition::new("expiry");
/// Tag of an `EVENT_IDS` key in `EXPIRY`.
pub(crate) const TAG_EVENT_ID: u8 = b'e';
/// Tag of a `COUNTED` key in `EXPIRY`.
pub(crate) const TAG_COUNTED: u8 = b'c';
/// Expiry index of the frequency counts, swept on their own (longer) horizon: `hour ‖ key` → ().
pub(crate) const FREQUENCY_EXPIRY: TableDefinition<&[u8], ()> =
    TableDefinition::new("frequency_expiry");
/// Tag of a `SESSION_RATE` key in `EXPIRY`.
pub(crate) const TAG_SESSION_RATE: u8 = b'r';

/// Counters and the watermark: name → value.
pub(crate) const META: TableDefinition<&str, i64> = TableDefinition::new("meta");

/// Where each minute of receipt starts in the log: minute (Unix seconds, non-decreasing with the sequence
/// numbers) → the first sequence number logged under it. A batch is indexed under the latest receipt minute
/// of its events (or the last indexed minute, if later), so every record before the entry of minute `m` was
/// received before `m`: retention deletes a range of sequence numbers without reading a record.
pub(crate) const LOG_MINUTES: TableDefinition<i64, u64> = TableDefinition::new("log_minutes");

/// Creates every table (opening a table in a write transaction creates it).
pub(crate) fn create_tables(txn: &WriteTransaction) -> Result<(), StoreError> {
    for table in [LOG, QUARANTINE, LEDGER_CORRECTIONS] {
        txn.open_table(table)?;
    }
    for table in [EVENT_IDS, COUNTED] {
        txn.open_table(table)?;
    }
    for table in [WINDOWS, LEDGER, DELIVERY] {
        txn.open_table(table)?;
    }
    txn.open_table(META)?;
    txn.open_table(EXPIRY)?;
    txn.open_table(FREQUENCY_EXPIRY)?;
    txn.open_table(FREQUENCY)?;
    txn.open_table(SESSION_RATE)?;
    txn.open_table(LOG_MINUTES)?;
    Ok(())
}

const SEP: u8 = 0x1F;
const COUNT_FIELDS: usize = 8;

fn time_bytes(secs: i64) -> [u8; 8] {
    ((secs as u64) ^ (1 << 63)).to_be_bytes()
}

fn time_from(bytes: &[u8]) -> Option<i64> {
    let b: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
    Some((u64::from_be_bytes(b) ^ (1 << 63)) as i64)
}

/// The smallest window key of minute `secs` (floored to the minute).
fn expiry_key(occurred_secs: i64, tag: u8, key: &str) -> Vec<u8> {
    let mut out = time_bytes(occurred_secs.div_euclid(3600) * 3600).to_vec();
    out.push(tag);
    out.extend_from_slice(key.as_bytes());
    out
}

/// The smallest expiry key of the hour that contains `secs`.
pub(crate) fn expiry_prefix(secs: i64) -> Vec<u8> {
    time_bytes(secs.div_euclid(3600) * 3600).to_vec()
}

/// Splits an expiry key into its table tag and the key it indexes.
pub(crate) fn split_expiry_key(bytes: &[u8]) -> Option<(u8, &str)> {
    let tag = *bytes.get(8)?;
    Some((tag, std::str::from_utf8(bytes.get(9..)?).ok()?))
}

pub(crate) fn minute_prefix(secs: i64) -> Vec<u8> {
    time_bytes(secs.div_euclid(60) * 60).to_vec()
}

fn corrupt(table: &'static str, reason: &str) -> StoreError {
    StoreError::Corrupt {
        table,
        reason: reason.to_owned(),
    }
}

fn encode_window_key(k: &WindowCell<'_>) -> Vec<u8> {
    let mut out = time_bytes(k.minute).to_vec();
    for field in [
        k.campaign_id,
        k.line_item_id,
        k.creative_id,
        k.channel,
        k.live_event_id,
    ] {
        out.push(SEP);
        out.extend_from_slice(field.as_bytes());
    }
    out
}

pub(crate) fn decode_window_key(bytes: &[u8]) -> Result<WindowKey, StoreError> {
    let minute = time_from(bytes).ok_or_else(|| corrupt("windows", "short key"))?;
    let rest = std::str::from_utf8(bytes.get(9..).unwrap_or_default())
        .map_err(|_| corrupt("windows", "key not UTF-8"))?;
    let mut parts = rest.split(char::from(SEP)).map(str::to_owned);
    let mut next = || {
        parts
            .next()
            .ok_or_else(|| corrupt("windows", "missing key field"))
    };
    Ok(WindowKey {
        minute,
        campaign_id: next()?,
        line_item_id: next()?,
        creative_id: next()?,
        channel: next()?,
        live_event_id: next()?,
    })
}

/// `parts␟…␟hour`: the key of an hourly cell (ledger, delivery, frequency).
pub(crate) fn hour_key(parts: &[&str], hour: i64) -> Vec<u8> {
    let mut out = Vec::new();
    for part in parts {
        out.extend_from_slice(part.as_bytes());
        out.push(SEP);
    }
    out.extend_from_slice(&time_bytes(hour.div_euclid(3600) * 3600));
    out
}

/// The first key after every hourly cell of `parts`.
pub(crate) fn hour_key_end(parts: &[&str]) -> Vec<u8> {
    let mut out = hour_key(parts, 0);
    let n = out.len();
    out[n - 8..].fill(0xFF);
    out.push(0xFF);
    out
}

pub(crate) fn decode_ledger_key(bytes: &[u8]) -> Result<(String, i64), StoreError> {
    let split = bytes
        .len()
        .checked_sub(9)
        .ok_or_else(|| corrupt("ledger", "short key"))?;
    let li =
        std::str::from_utf8(&bytes[..split]).map_err(|_| corrupt("ledger", "key not UTF-8"))?;
    let hour = time_from(&bytes[split + 1..]).ok_or_else(|| corrupt("ledger", "short key"))?;
    Ok((li.to_owned(), hour))
}

fn counts_array(c: &Counts) -> [u64; COUNT_FIELDS] {
    c.as_array()
}

fn encode_counts(c: &Counts) -> [u8; COUNT_FIELDS * 8] {
    let mut out = [0u8; COUNT_FIELDS * 8];
    for (chunk, v) in out.chunks_exact_mut(8).zip(counts_array(c)) {
        chunk.copy_from_slice(&v.to_le_bytes());
    }
    out
}

pub(crate) fn decode_counts(bytes: &[u8]) -> Result<Counts, StoreError> {
    if bytes.len() != COUNT_FIELDS * 8 {
        return Err(corrupt("counts", "wrong length"));
    }
    let v: Vec<u64> = bytes
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default()))
        .collect();
    Ok(Counts {
        impressions: v[0],
        starts: v[1],
        first_quartiles: v[2],
        midpoints: v[3],
        third_quartiles: v[4],
        completes: v[5],
        clicks: v[6],
        errors: v[7],
    })
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Correction {
    line_item_id: String,
    hour: i64,
    counts: [u64; COUNT_FIELDS],
}

pub(crate) fn decode_correction(bytes: &[u8]) -> Result<(String, i64, Counts), StoreError> {
    let c: Correction = serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        table: "ledger_corrections",
        reason: e.to_string(),
    })?;
    let flat: Vec<u8> = c.counts.iter().flat_map(|v| v.to_le_bytes()).collect();
    Ok((c.line_item_id, c.hour, decode_counts(&flat)?))
}

/// The pipeline's state inside one write transaction. Table errors are kept and reported by [`Self::finish`]
/// (the pipeline's state trait is infallible), and the caller then drops the transaction uncommitted.
pub(crate) struct RedbState<'txn> {
    log: Table<'txn, u64, &'static [u8]>,
    quarantine: Table<'txn, u64, &'static [u8]>,
    corrections: Table<'txn, u64, &'static [u8]>,
    event_ids: Table<'txn, &'static str, i64>,
    counted: Table<'txn, &'static str, i64>,
    windows: Table<'txn, &'static [u8], &'static [u8]>,
    ledger: Table<'txn, &'static [u8], &'static [u8]>,
    meta: Table<'txn, &'static str, i64>,
    expiry: Table<'txn, &'static [u8], ()>,
    delivery: Table<'txn, &'static [u8], &'static [u8]>,
    frequency: Table<'txn, &'static [u8], u64>,
    session_rate: Table<'txn, &'static str, u64>,
    frequency_expiry: Table<'txn, &'static [u8], ()>,
    log_minutes: Table<'txn, i64, u64>,
    /// The first sequence number this transaction logged, and the latest receipt minute it logged.
    logged: Option<(u64, i64)>,
    next_seq: u64,
    max_event_time: Option<i64>,
    error: Option<StoreError>,
    // Cells read once and written once per transaction: the events of a batch land on few cells.
    pending_windows: HashMap<Vec<u8>, Counts>,
    pending_ledger: HashMap<Vec<u8>, Counts>,
    pending_delivery: HashMap<Vec<u8>, Counts>,
    pending_frequency: HashMap<Vec<u8>, u64>,
    pending_rates: HashMap<String, u64>,
}

/// Which counts table a pending cell belongs to.
#[derive(Clone, Copy)]
enum CountsTable {
    Windows,
    Ledger,
    Delivery,
}

impl<'txn> RedbState<'txn> {
    pub(crate) fn open(txn: &'txn WriteTransaction) -> Result<Self, StoreError> {
        let meta = txn.open_table(META)?;
        let next_seq = meta.get("next_seq")?.map_or(0, |v| v.value()) as u64;
        let max_event_time = meta.get("max_event_time")?.map(|v| v.value());
        Ok(RedbState {
            log: txn.open_table(LOG)?,
            quarantine: txn.open_table(QUARANTINE)?,
            corrections: txn.open_table(LEDGER_CORRECTIONS)?,
            event_ids: txn.open_table(EVENT_IDS)?,
            counted: txn.open_table(COUNTED)?,
            windows: txn.open_table(WINDOWS)?,
            ledger: txn.open_table(LEDGER)?,
            meta,
            expiry: txn.open_table(EXPIRY)?,
            delivery: txn.open_table(DELIVERY)?,
            frequency: txn.open_table(FREQUENCY)?,
            session_rate: txn.open_table(SESSION_RATE)?,
            frequency_expiry: txn.open_table(FREQUENCY_EXPIRY)?,
            log_minutes: txn.open_table(LOG_MINUTES)?,
            logged: None,
            next_seq,
            max_event_time,
            error: None,
            pending_windows: HashMap::new(),
            pending_ledger: HashMap::new(),
            pending_delivery: HashMap::new(),
            pending_frequency: HashMap::new(),
            pending_rates: HashMap::new(),
        })
    }

    fn keep<T>(&mut self, result: Result<T, impl Into<StoreError>>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.error.get_or_insert(e.into());
                None
            }
        }
    }

    fn seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    fn index_expiry(&mut self, occurred_at: DateTime<Utc>, tag: u8, key: &str) {
        let k = expiry_key(occurred_at.timestamp(), tag, key);
        let r = self.expiry.insert(k.as_slice(), ()).map(|_| ());
        self.keep(r);
    }

    /// Appends an encoded [`crate::log::LogRecord`] received at `received_at` to the log.
    pub(crate) fn log(&mut self, record: &[u8], received_at: DateTime<Utc>) {
        let seq = self.seq();
        let minute = received_at.timestamp().div_euclid(60) * 60;
        self.logged = Some(match self.logged {
            None => (seq, minute),
            Some((first, latest)) => (first, latest.max(minute)),
        });
        let r = self.log.insert(seq, record).map(|_| ());
        self.keep(r);
    }

    /// Indexes this transaction's log records under their latest receipt minute (see [`LOG_MINUTES`]).
    fn index_log(&mut self) -> Result<(), StoreError> {
        let Some((first, minute)) = self.logged else {
            return Ok(());
        };
        let last = self.log_minutes.last()?.map(|(k, _)| k.value());
        let minute = last.map_or(minute, |l| l.max(minute));
        if last != Some(minute) {
            self.log_minutes.insert(minute, first)?;
        }
        Ok(())
    }

    /// Adds `counts` to a cell, reading it from its table the first time the transaction touches it.
    fn add_cell(&mut self, which: CountsTable, key: Vec<u8>, counts: &Counts) {
        let (pending, table) = match which {
            CountsTable::Windows => (&mut self.pending_windows, &self.windows),
            CountsTable::Ledger => (&mut self.pending_ledger, &self.ledger),
            CountsTable::Delivery => (&mut self.pending_delivery, &self.delivery),
        };
        if let Some(cell) = pending.get_mut(&key) {
            cell.add(counts);
            return;
        }
        let stored = match table.get(key.as_slice()) {
            Ok(Some(v)) => decode_counts(v.value()),
            Ok(None) => Ok(Counts::default()),
            Err(e) => Err(e.into()),
        };
        match stored {
            Ok(mut cell) => {
                cell.add(counts);
                pending.insert(key, cell);
            }
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
    }

    /// Writes the pending cells.
    fn flush(&mut self) -> Result<(), StoreError> {
        for (pending, table) in [
            (&mut self.pending_windows, &mut self.windows),
            (&mut self.pending_ledger, &mut self.ledger),
            (&mut self.pending_delivery, &mut self.delivery),
        ] {
            for (key, cell) in pending.drain() {
                table.insert(key.as_slice(), encode_counts(&cell).as_slice())?;
            }
        }
        for (key, n) in self.pending_frequency.drain() {
            self.frequency.insert(key.as_slice(), n)?;
        }
        for (key, n) in self.pending_rates.drain() {
            self.session_rate.insert(key.as_str(), n)?;
        }
        Ok(())
    }

    /// Persists the pending cells, the log index and the counters; the first error met, if any.
    pub(crate) fn finish(mut self) -> Result<(), StoreError> {
        let r = self.flush();
        self.keep(r);
        let r = self.index_log();
        self.keep(r);
        let seq = i64::try_from(self.next_seq).unwrap_or(i64::MAX);
        let r = self.meta.insert("next_seq", seq).map(|_| ());
        self.keep(r);
        if let Some(t) = self.max_event_time {
            let r = self.meta.insert("max_event_time", t).map(|_| ());
            self.keep(r);
        }
        self.error.map_or(Ok(()), Err)
    }
}

pub(crate) fn counted_key(ad_instance_id: &str, event_type: EventType) -> String {
    format!("{ad_instance_id}\u{1f}{}", event_type.as_str())
}

impl PipelineState for RedbState<'_> {
    fn record_event_id(&mut self, event_id: &str, occurred_at: DateTime<Utc>) -> bool {
        // Looked up before inserting: a retry then writes nothing (an insert over an existing key would copy
        // its page), so a retry storm costs reads only.
        let r = self.event_ids.get(event_id).map(|v| v.is_some());
        if self.keep(r).unwrap_or(true) {
            return false;
        }
        let r = self
            .event_ids
            .insert(event_id, occurred_at.timestamp())
            .map(|old| old.is_none());
        let new = self.keep(r).unwrap_or(false);
        if new {
            self.index_expiry(occurred_at, TAG_EVENT_ID, event_id);
        }
        new
    }

    fn bump_session_minute(&mut self, session_id: &str, minute: i64) -> u64 {
        let key = format!("{session_id}\u{1f}{minute}");
        let current = match self.pending_rates.get(&key) {
            Some(n) => *n,
            None => match self.session_rate.get(key.as_str()) {
                Ok(v) => v.map_or(0, |v| v.value()),
                Err(e) => {
                    self.error.get_or_insert(e.into());
                    return 0;
                }
            },
        };
        self.pending_rates.insert(key.clone(), current + 1);
        if current == 0 {
            if let Some(at) = DateTime::from_timestamp(minute, 0) {
                self.index_expiry(at, TAG_SESSION_RATE, &key);
            }
        }
        current + 1
    }

    fn counted_at(&self, ad_instance_id: &str, event_type: EventType) -> Option<DateTime<Utc>> {
        let key = counted_key(ad_instance_id, event_type);
        // A read error here only skips a plausibility check; the write path reports store errors.
        let secs = self.counted.get(key.as_str()).ok()??.value();
        DateTime::from_timestamp(secs, 0)
    }

    fn mark_counted(
        &mut self,
        ad_instance_id: &str,
        event_type: EventType,
        occurred_at: DateTime<Utc>,
    ) -> bool {
        let key = counted_key(ad_instance_id, event_type);
        let r = self.counted.get(key.as_str()).map(|v| v.is_some());
        if self.keep(r).unwrap_or(true) {
            return false;
        }
        let r = self
            .counted
            .insert(key.as_str(), occurred_at.timestamp())
            .map(|old| old.is_none());
        let new = self.keep(r).unwrap_or(false);
        if new {
            self.index_expiry(occurred_at, TAG_COUNTED, &key);
        }
        new
    }

    fn add_window(&mut self, cell: WindowCell<'_>, counts: Counts) {
        self.add_cell(CountsTable::Windows, encode_window_key(&cell), &counts);
    }

    fn add_viewer_impression(&mut self, viewer_id: &str, line_item_id: &str, hour: i64) {
        let key = hour_key(&[viewer_id, line_item_id], hour);
        let current = match self.pending_frequency.get(&key) {
            Some(n) => Some(*n),
            None => match self.frequency.get(key.as_slice()) {
                Ok(v) => v.map(|v| v.value()),
                Err(e) => {
                    self.error.get_or_insert(e.into());
                    return;
                }
            },
        };
        if current.is_none() {
            // A new cell: index it for expiry by its hour (the last 8 bytes of the key).
            let mut index = key
                .get(key.len().saturating_sub(8)..)
                .unwrap_or_default()
                .to_vec();
            index.extend_from_slice(&key);
            let r = self
                .frequency_expiry
                .insert(index.as_slice(), ())
                .map(|_| ());
            self.keep(r);
        }
        self.pending_frequency.insert(key, current.unwrap_or(0) + 1);
    }

    fn add_ledger(&mut self, line_item_id: &str, hour: i64, counts: Counts, correction: bool) {
        let key = hour_key(&[line_item_id], hour);
        if correction {
            self.add_cell(CountsTable::Delivery, key, &counts);
            let seq = self.seq();
            let record = Correction {
                line_item_id: line_item_id.to_owned(),
                hour: hour.div_euclid(3600) * 3600,
                counts: counts_array(&counts),
            };
            let bytes = serde_json::to_vec(&record).unwrap_or_default();
            let r = self.corrections.insert(seq, bytes.as_slice()).map(|_| ());
            self.keep(r);
            return;
        }
        self.add_cell(CountsTable::Delivery, key.clone(), &counts);
        self.add_cell(CountsTable::Ledger, key, &counts);
    }

    fn quarantine(&mut self, event: &AdEvent, reason: &Quarantine) {
        let seq = self.seq();
        let record =
            serde_json::json!({ "reason": reason, "detail": reason.to_string(), "event": event });
        let bytes = serde_json::to_vec(&record).unwrap_or_default();
        let r = self.quarantine.insert(seq, bytes.as_slice()).map(|_| ());
        self.keep(r);
        metrics::counter!("events_quarantined_total", "reason" => reason.kind()).increment(1);
    }

    fn max_event_time(&self) -> Option<DateTime<Utc>> {
        self.max_event_time
            .and_then(|t| DateTime::from_timestamp(t, 0))
    }

    fn set_max_event_time(&mut self, t: DateTime<Utc>) {
        self.max_event_time = Some(t.timestamp());
    }
}
