//! One group commit's view of the pipeline state: the dedup state the batch can touch is read up front, then
//! the pure pipeline runs over memory, and the changes are written in key order, each table once.
//!
//! The dedup keys (event ids, billing keys, session minutes) are read from the dedup state ([`Dedup`]); what
//! the batch adds to them becomes the commit's redo record, written in the commit's redb transaction and
//! applied to the dedup state after it (see [`super::dedup`]). Nothing is written for a retry or a
//! duplicate. Lookups during processing are by reference into the batch (no allocation per event); the only
//! per-event allocations are the keys of what is new. The expiry index is one entry per hour per commit
//! instead of one per key.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use interlude_events::contract::{AdEvent, EventType};
use interlude_events::{Counts, Delivered, DemandKey, PipelineState, Quarantine, WindowCell};
use redb::{ReadableTable, Table, WriteTransaction};

use super::StoreError;
use super::dedup::{self, AfterCommit, Dedup, Kind, Marked, Redo};
use super::filter::key_hash;

/// The batch's maps: keyed by the events' ids, instances and sessions, looked up several times per event.
/// SipHash, the standard default, was a tenth of the group committer's time; foldhash, seeded per map from
/// the process's random state, is several times faster and a caller still cannot predict collisions.
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
use super::state::{
    self, Correction, DELIVERY, DEMAND, EXPIRY_BATCHES, FREQUENCY, FREQUENCY_EXPIRY, LEDGER,
    LEDGER_CORRECTIONS, LOG_CHUNKS, LOG_MINUTES, META, META_CHUNK_RECORDS, QUARANTINE, TAG_COUNTED,
    TAG_EVENT_ID, TAG_SESSION_RATE, WINDOWS,
};

/// The tables a group commit writes.
pub(crate) struct Tables<'txn> {
    log: Table<'txn, u64, &'static [u8]>,
    /// This commit's log records: [`LOG_CHUNKS`] values back to back, each at most [`state::MAX_VALUE`] bytes.
    chunk: Vec<u8>,
    /// Each value in `chunk`: where it starts, its first record's sequence number and its record count.
    chunks: Vec<ChunkAt>,
    quarantine: Table<'txn, u64, &'static [u8]>,
    corrections: Table<'txn, u64, &'static [u8]>,
    windows: Table<'txn, &'static [u8], &'static [u8]>,
    ledger: Table<'txn, &'static [u8], &'static [u8]>,
    delivery: Table<'txn, &'static [u8], &'static [u8]>,
    frequency: Table<'txn, &'static [u8], u64>,
    frequency_expiry: Table<'txn, &'static [u8], ()>,
    demand: Table<'txn, &'static [u8], &'static [u8]>,
    expiry: Table<'txn, &'static [u8], &'static [u8]>,
    meta: Table<'txn, &'static str, i64>,
    log_minutes: Table<'txn, i64, u64>,
    /// The dedup state the prefetch reads, and the redo records of what the commit changes in it.
    dedup: &'txn Dedup,
    redo_records: Table<'txn, u64, &'static [u8]>,
    /// This commit's dedup changes, and what remains to do with them after the commit.
    redo: Redo,
    after: Option<AfterCommit>,
    next_seq: u64,
    /// The first sequence number this commit logged, and the latest receipt minute it logged.
    logged: Option<(u64, i64)>,
}

impl<'txn> Tables<'txn> {
    pub(crate) fn open(
        txn: &'txn WriteTransaction,
        dedup: &'txn Dedup,
    ) -> Result<Self, StoreError> {
        let meta = txn.open_table(META)?;
        let next_seq = meta.get("next_seq")?.map_or(0, |v| v.value()) as u64;
        Ok(Tables {
            log: txn.open_table(LOG_CHUNKS)?,
            chunk: Vec::new(),
            chunks: Vec::new(),
            quarantine: txn.open_table(QUARANTINE)?,
            corrections: txn.open_table(LEDGER_CORRECTIONS)?,
            windows: txn.open_table(WINDOWS)?,
            ledger: txn.open_table(LEDGER)?,
            delivery: txn.open_table(DELIVERY)?,
            frequency: txn.open_table(FREQUENCY)?,
            frequency_expiry: txn.open_table(FREQUENCY_EXPIRY)?,
            demand: txn.open_table(DEMAND)?,
            expiry: txn.open_table(EXPIRY_BATCHES)?,
            meta,
            log_minutes: txn.open_table(LOG_MINUTES)?,
            dedup,
            redo_records: txn.open_table(dedup::REDO)?,
            redo: Redo::default(),
            after: None,
            next_seq,
            logged: None,
        })
    }

    fn seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    /// The latest event time seen (the watermark's base).
    pub(crate) fn max_event_time(&self) -> Result<Option<i64>, StoreError> {
        Ok(self.meta.get("max_event_time")?.map(|v| v.value()))
    }

    /// Appends an encoded [`crate::log::LogRecord`] received at `received_at` to this commit's log chunk.
    pub(crate) fn log(
        &mut self,
        record: &[u8],
        received_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let seq = self.seq();
        let minute = received_at.timestamp().div_euclid(60) * 60;
        self.logged = Some(match self.logged {
            None => (seq, minute),
            Some((first, latest)) => (first, latest.max(minute)),
        });
        let full = self.chunks.last().is_none_or(|c| {
            self.chunk.len() - c.start + state::log_record_bytes(record) > state::MAX_VALUE
        });
        if full {
            self.chunks.push(ChunkAt {
                start: self.chunk.len(),
                first: seq,
                records: 0,
            });
            state::start_log_chunk(&mut self.chunk);
        }
        state::push_log_record(&mut self.chunk, record);
        if let Some(c) = self.chunks.last_mut() {
            c.records += 1;
        }
        Ok(())
    }

    /// Notes that this commit will log about `bytes` of records, so the chunk is allocated once (grown from
    /// empty, its reallocations and their page faults were a twentieth of the group committer's time).
    pub(crate) fn expect_log_bytes(&mut self, bytes: usize) {
        self.chunk.reserve(bytes);
    }

    /// Writes this commit's log chunks, each under its first sequence number, and counts their records.
    fn write_log(&mut self) -> Result<(), StoreError> {
        let mut records = 0i64;
        let ends = self.chunks.iter().skip(1).map(|c| c.start);
        for (c, end) in self.chunks.iter().zip(ends.chain([self.chunk.len()])) {
            let value = &mut self.chunk[c.start..end];
            state::finish_log_chunk(value, c.records);
            self.log.insert(c.first, &*value)?;
            records += i64::from(c.records);
        }
        if records > 0 {
            let before = self.meta.get(META_CHUNK_RECORDS)?.map_or(0, |v| v.value());
            self.meta
                .insert(META_CHUNK_RECORDS, before.saturating_add(records))?;
        }
        Ok(())
    }

    /// Indexes this commit's log records under their latest receipt minute (see [`LOG_MINUTES`]).
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

    /// Writes this commit's redo record (see [`dedup::record`]).
    fn write_redo(&mut self) -> Result<(), StoreError> {
        let redo = std::mem::take(&mut self.redo);
        self.after = Some(dedup::record(
            &mut self.redo_records,
            &mut self.meta,
            self.dedup,
            redo,
        )?);
        Ok(())
    }

    /// What remains to do once the transaction has committed.
    pub(crate) fn after_commit(self) -> AfterCommit {
        self.after.unwrap_or_default()
    }
}

/// One [`LOG_CHUNKS`] value in [`Tables::chunk`].
struct ChunkAt {
    start: usize,
    first: u64,
    records: u32,
}

/// A dedup key of the batch: its stored value (`None`: no entry), and the one recorded by this commit.
#[derive(Clone, Copy, Default)]
struct Slot {
    stored: Option<i64>,
    new: Option<i64>,
    /// The key's [`key_hash`], for the overlay and the filter after the commit.
    hash: u64,
}

/// A session minute of the batch: its stored impressions (`None`: no entry), and this commit's.
#[derive(Clone, Copy, Default)]
struct SessionSlot {
    stored: Option<u64>,
    added: u64,
    hash: u64,
}

/// A stored time value: seconds, kept as the bits of an `i64`.
fn secs(value: Option<u64>) -> Option<i64> {
    value.map(|v| v as i64)
}

/// The batch's state: what it read, what it changes. `'a` is the batch's events.
pub(crate) struct Batch<'a> {
    ids: Map<&'a str, usize>,
    id_slots: Vec<Slot>,
    /// The ids in the order they were read, as `id_slots` holds them.
    id_keys: Vec<&'a str>,
    counted: Map<(&'a str, EventType), usize>,
    counted_slots: Vec<Slot>,
    /// The billing keys in the order they were read, as `counted_slots` holds them.
    counted_keys: Vec<(&'a str, EventType)>,
    sessions: Map<(&'a str, i64), usize>,
    session_slots: Vec<SessionSlot>,
    /// The session minutes in the order they were read, as `session_slots` holds them.
    session_keys: Vec<(&'a str, i64)>,
    /// The filters the lookups marked new keys in.
    marked: Marked,
    windows: Map<Vec<u8>, Counts>,
    ledger: Map<Vec<u8>, Counts>,
    delivery: Map<Vec<u8>, Counts>,
    frequency: Map<Vec<u8>, u64>,
    demand: BTreeMap<DemandKey, Delivered>,
    corrections: Vec<Vec<u8>>,
    quarantined: Vec<Vec<u8>>,
    max_event_time: Option<i64>,
    key: Vec<u8>,
}

/// The event types whose billing key processing `event` may read: its own, the impression (the session
/// rate check), the start (the plausibility of progress events).
fn counted_keys(event: &AdEvent) -> impl Iterator<Item = EventType> {
    let t = event.event_type;
    let progress = matches!(
        t,
        EventType::FirstQuartile
            | EventType::Midpoint
            | EventType::ThirdQuartile
            | EventType::Complete
    );
    [Some(t), progress.then_some(EventType::Start)]
        .into_iter()
        .flatten()
}

/// The [`Kind::SessionRate`] key of a session minute, `session␟minute`, in `out`.
fn session_key(session: &str, minute: i64, out: &mut String) {
    out.clear();
    out.push_str(session);
    out.push('\u{1f}');
    out.push_str(itoa(minute, &mut [0u8; 24]));
}

fn floor(t: DateTime<Utc>, secs: i64) -> i64 {
    t.timestamp().div_euclid(secs) * secs
}

impl<'a> Batch<'a> {
    /// Reads the dedup state `events` can touch.
    pub(crate) fn prefetch(
        tables: &Tables<'_>,
        events: &[&'a AdEvent],
    ) -> Result<Self, StoreError> {
        // One hold of the overlay for every lookup (dropped before the commit applies its changes).
        let dedup = tables.dedup.reader();

        // Each key once, in the batch's order, looked up as it first appears; the keys not there are marked in
        // the filter at once, as most become new (see `Reader::get_or_mark`).
        let mut ids = Map::with_capacity_and_hasher(events.len(), Default::default());
        let mut id_keys = Vec::with_capacity(events.len());
        let mut id_slots = Vec::with_capacity(events.len());
        for id in events.iter().map(|e| e.event_id.as_str()) {
            if let Entry::Vacant(v) = ids.entry(id) {
                v.insert(id_slots.len());
                let hash = key_hash(id.as_bytes());
                id_keys.push(id);
                id_slots.push(Slot {
                    stored: secs(dedup.get_or_mark(Kind::EventId, id.as_bytes(), hash)?),
                    new: None,
                    hash,
                });
            }
        }

        // Each billing key a batch's event may read: its own, and the start of a progress event.
        let mut counted = Map::with_capacity_and_hasher(events.len(), Default::default());
        let mut counted_keys = Vec::with_capacity(events.len());
        let mut counted_slots = Vec::with_capacity(events.len());
        let mut key = String::new();
        for e in events {
            for t in self::counted_keys(e) {
                let instance = e.ad_instance_id.as_str();
                if let Entry::Vacant(v) = counted.entry((instance, t)) {
                    v.insert(counted_slots.len());
                    state::push_counted_key(instance, t, &mut key);
                    let hash = key_hash(key.as_bytes());
                    counted_keys.push((instance, t));
                    counted_slots.push(Slot {
                        stored: secs(dedup.get_or_mark(Kind::Counted, key.as_bytes(), hash)?),
                        new: None,
                        hash,
                    });
                }
            }
        }

        // Each session minute the batch has impressions in.
        let mut sessions = Map::default();
        let mut session_keys = Vec::new();
        let mut session_slots = Vec::new();
        for e in events
            .iter()
            .filter(|e| e.event_type == EventType::Impression)
        {
            let (session, minute) = (e.session_id.as_str(), floor(e.occurred_at, 60));
            if let Entry::Vacant(v) = sessions.entry((session, minute)) {
                v.insert(session_slots.len());
                session_key(session, minute, &mut key);
                let hash = key_hash(key.as_bytes());
                session_keys.push((session, minute));
                session_slots.push(SessionSlot {
                    stored: dedup.get_or_mark(Kind::SessionRate, key.as_bytes(), hash)?,
                    added: 0,
                    hash,
                });
            }
        }
        let marked = dedup.marked();

        Ok(Batch {
            ids,
            id_slots,
            id_keys,
            counted,
            counted_slots,
            counted_keys,
            sessions,
            session_slots,
            session_keys,
            marked,
            windows: Map::default(),
            ledger: Map::default(),
            delivery: Map::default(),
            frequency: Map::default(),
            demand: BTreeMap::new(),
            corrections: Vec::new(),
            quarantined: Vec::new(),
            max_event_time: tables.max_event_time()?,
            key: Vec::with_capacity(256),
        })
    }

    fn counted_slot(&self, instance: &str, t: EventType) -> Option<usize> {
        // `Map` is covariant in its key: searched with a key of a shorter lifetime.
        let map: &Map<(&str, EventType), usize> = &self.counted;
        map.get(&(instance, t)).copied()
    }

    /// Writes the changes, each table in key order, and the counters.
    pub(crate) fn write(self, t: &mut Tables<'_>) -> Result<(), StoreError> {
        let mut expiry: BTreeMap<i64, Vec<Vec<u8>>> = BTreeMap::new();
        let mut entry = |secs: i64, tag: u8, key: &[u8]| {
            let values = expiry.entry(secs.div_euclid(3600) * 3600).or_default();
            state::push_expiry_entry_within(values, tag, key);
        };

        // What the pipeline added to the dedup keys, in the order they were read: the commit's redo record.
        for (id, slot) in self.id_keys.iter().zip(&self.id_slots) {
            if let (None, Some(at)) = (slot.stored, slot.new) {
                t.redo
                    .set_hashed(Kind::EventId, id.as_bytes(), slot.hash, at as u64);
                entry(at, TAG_EVENT_ID, id.as_bytes());
            }
        }

        let mut key = String::new();
        for ((instance, ty), slot) in self.counted_keys.iter().zip(&self.counted_slots) {
            if let (None, Some(at)) = (slot.stored, slot.new) {
                state::push_counted_key(instance, *ty, &mut key);
                t.redo
                    .set_hashed(Kind::Counted, key.as_bytes(), slot.hash, at as u64);
                entry(at, TAG_COUNTED, key.as_bytes());
            }
        }

        for ((session, minute), slot) in self.session_keys.iter().zip(&self.session_slots) {
            if slot.added == 0 {
                continue;
            }
            session_key(session, *minute, &mut key);
            t.redo.set_hashed(
                Kind::SessionRate,
                key.as_bytes(),
                slot.hash,
                slot.stored.unwrap_or(0) + slot.added,
            );
            if slot.stored.is_none() {
                entry(*minute, TAG_SESSION_RATE, key.as_bytes());
            }
        }

        t.redo.marked_in(self.marked);

        for (hour, value) in expiry
            .iter()
            .flat_map(|(h, vs)| vs.iter().map(move |v| (h, v)))
        {
            let seq = t.seq();
            t.expiry.insert(
                state::expiry_batch_key(*hour, seq).as_slice(),
                value.as_slice(),
            )?;
        }

        for (cells, table) in [
            (self.windows, &mut t.windows),
            (self.ledger, &mut t.ledger),
            (self.delivery, &mut t.delivery),
        ] {
            let mut cells: Vec<(Vec<u8>, Counts)> = cells.into_iter().collect();
            cells.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            for (key, add) in cells {
                let mut cell = match table.get(key.as_slice())? {
                    Some(v) => state::decode_counts(v.value())?,
                    None => Counts::default(),
                };
                cell.add(&add);
                table.insert(key.as_slice(), state::encode_counts(&cell).as_slice())?;
            }
        }

        let mut demand: Vec<(Vec<u8>, Delivered)> = self
            .demand
            .iter()
            .map(|(k, d)| (state::encode_demand_key(k), *d))
            .collect();
        demand.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for (key, add) in demand {
            let mut cell = match t.demand.get(key.as_slice())? {
                Some(v) => state::decode_delivered(v.value())?,
                None => Delivered::default(),
            };
            cell.add(&add);
            t.demand
                .insert(key.as_slice(), state::encode_delivered(&cell).as_slice())?;
        }

        let mut frequency: Vec<(Vec<u8>, u64)> = self.frequency.into_iter().collect();
        frequency.sort_unstable();
        for (key, n) in frequency {
            let current = t.frequency.get(key.as_slice())?.map(|v| v.value());
            if current.is_none() {
                // A new cell: index it for expiry by its hour (the last 8 bytes of the key).
                let mut index = key
                    .get(key.len().saturating_sub(8)..)
                    .unwrap_or_default()
                    .to_vec();
                index.extend_from_slice(&key);
                t.frequency_expiry.insert(index.as_slice(), ())?;
            }
            t.frequency
                .insert(key.as_slice(), current.unwrap_or(0) + n)?;
        }

        for record in &self.quarantined {
            let seq = t.seq();
            t.quarantine.insert(seq, record.as_slice())?;
        }
        for record in &self.corrections {
            let seq = t.seq();
            t.corrections.insert(seq, record.as_slice())?;
        }

        t.write_log()?;
        t.index_log()?;
        t.write_redo()?;
        let seq = i64::try_from(t.next_seq).unwrap_or(i64::MAX);
        t.meta.insert("next_seq", seq)?;
        if let Some(at) = self.max_event_time {
            t.meta.insert("max_event_time", at)?;
        }
        Ok(())
    }
}

/// `n` in decimal, in `buf` (no allocation).
fn itoa(n: i64, buf: &mut [u8; 24]) -> &str {
    use std::io::Write;
    let mut cursor = std::io::Cursor::new(&mut buf[..]);
    let _ = write!(cursor, "{n}");
    let len = usize::try_from(cursor.position()).unwrap_or(0);
    std::str::from_utf8(&buf[..len]).unwrap_or_default()
}

impl PipelineState for Batch<'_> {
    fn record_event_id(&mut self, event_id: &str, kept_from: DateTime<Utc>) -> bool {
        let map: &Map<&str, usize> = &self.ids;
        let Some(&i) = map.get(event_id) else {
            // Every id of the batch was read; an id from elsewhere cannot be checked, so it is not counted.
            return false;
        };
        let slot = &mut self.id_slots[i];
        if slot.stored.is_some() || slot.new.is_some() {
            return false;
        }
        slot.new = Some(kept_from.timestamp());
        true
    }

    fn bump_session_minute(&mut self, session_id: &str, minute: i64) -> u64 {
        let map: &Map<(&str, i64), usize> = &self.sessions;
        match map.get(&(session_id, minute)).copied() {
            Some(i) => {
                let slot = &mut self.session_slots[i];
                slot.added += 1;
                slot.stored.unwrap_or(0) + slot.added
            }
            None => u64::MAX,
        }
    }

    fn counted_at(&self, ad_instance_id: &str, event_type: EventType) -> Option<DateTime<Utc>> {
        let slot = self.counted_slots[self.counted_slot(ad_instance_id, event_type)?];
        DateTime::from_timestamp(slot.stored.or(slot.new)?, 0)
    }

    fn mark_counted(
        &mut self,
        ad_instance_id: &str,
        event_type: EventType,
        occurred_at: DateTime<Utc>,
    ) -> bool {
        let Some(i) = self.counted_slot(ad_instance_id, event_type) else {
            return false;
        };
        let slot = &mut self.counted_slots[i];
        if slot.stored.is_some() || slot.new.is_some() {
            return false;
        }
        slot.new = Some(occurred_at.timestamp());
        true
    }

    fn add_window(&mut self, cell: WindowCell<'_>, counts: Counts) {
        self.key.clear();
        state::encode_window_key(&cell, &mut self.key);
        add(&mut self.windows, &self.key, &counts);
    }

    fn add_ledger(&mut self, line_item_id: &str, hour: i64, counts: Counts, correction: bool) {
        self.key.clear();
        state::push_hour_key(&[line_item_id], hour, &mut self.key);
        add(&mut self.delivery, &self.key, &counts);
        if correction {
            let record = Correction {
                line_item_id: line_item_id.to_owned(),
                hour,
                counts: state::counts_array(&counts),
            };
            self.corrections
                .push(serde_json::to_vec(&record).unwrap_or_default());
        } else {
            add(&mut self.ledger, &self.key, &counts);
        }
    }

    fn add_demand(&mut self, key: DemandKey, delivered: Delivered) {
        self.demand.entry(key).or_default().add(&delivered);
    }

    fn add_viewer_impression(&mut self, viewer_id: &str, line_item_id: &str, hour: i64) {
        let key = state::hour_key(&[viewer_id, line_item_id], hour);
        *self.frequency.entry(key).or_default() += 1;
    }

    fn quarantine(&mut self, event: &AdEvent, reason: &Quarantine) {
        let record =
            serde_json::json!({ "reason": reason, "detail": reason.to_string(), "event": event });
        self.quarantined
            .push(serde_json::to_vec(&record).unwrap_or_default());
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

/// Adds `counts` to the pending cell `key`, allocating the key only for a new cell.
fn add(cells: &mut Map<Vec<u8>, Counts>, key: &[u8], counts: &Counts) {
    match cells.get_mut(key) {
        Some(c) => c.add(counts),
        None => {
            cells.insert(key.to_vec(), *counts);
        }
    }
}
