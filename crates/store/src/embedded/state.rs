//! The redb tables and the pipeline state over one write transaction.
//!
//! Keys that are scanned by time start with the time as a big-endian integer with its sign bit flipped, so byte
//! order is time order. Fields inside keys are separated by 0x1F (unit separator), which ids never contain
//! (the contract limits them to printable text).

use interlude_events::contract::EventType;
use interlude_events::{AuctionCounts, Counts, Delivered, DemandKey, WindowCell, WindowKey};
use redb::{Database, ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};

use super::StoreError;
use super::dedup::{Dedup, Kind};

/// The event log as stores wrote it before [`LOG_CHUNKS`], one entry per event: sequence number →
/// [`crate::log::LogRecord`] JSON (older stores: the bare event). Read, retained and anonymised; no longer
/// written.
pub(crate) const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
/// The event log in chunks of up to [`MAX_VALUE`] bytes, a group commit writing as many as its records fill
/// (one in stores written before that limit): the sequence number of a chunk's first record → its
/// [`crate::log::LogRecord`]s, consecutive sequence numbers from the key (see [`encode_log_chunk`]), each in
/// the compact form ([`crate::compact`]; JSON in chunks written before it). A commit's chunks follow each
/// other, the first starting at the sequence number its [`LOG_MINUTES`] entry may name.
/// Append-only. Replaces [`LOG`]'s entry per event: a few B-tree inserts per commit instead of one per event
/// (a 700-byte value per event was a fifth of the writer's instructions). Stores written before it keep their
/// [`LOG`] entries, which are read first (their sequence numbers are lower) and retained the same way.
pub(crate) const LOG_CHUNKS: TableDefinition<u64, &[u8]> = TableDefinition::new("log_chunks");
/// The last key of [`LOG_CHUNKS`]: a chunk of no records that stays the table's last entry (written at open).
///
/// Why: redb puts a key greater than every other into the table's last leaf, which it reads whole first.
/// Without this entry that leaf is the previous commit's chunk, a megabyte or two that every commit read back
/// from the file (the redb cache does not keep pages written once it is full) and copied: a fifth of the
/// group committer's time (`docs/performance.md`). With it, the last leaf is this entry's small page, and a
/// chunk's leaf is never read again by a write. [`super::dedup::REDO`] and [`EXPIRY_BATCHES`] keep one for
/// the same reason. Each is a well-formed empty value, so readers need not know of it; ranges that end at
/// a sequence number or an hour never reach it. One below `u64::MAX`: readers number a chunk's records
/// counting up from its key, and a count from `u64::MAX` overflows even when there is nothing to count.
pub(crate) const LOG_CHUNKS_TAIL: u64 = u64::MAX - 1;
/// The last key of [`EXPIRY_BATCHES`] (see [`LOG_CHUNKS_TAIL`]): past every hour, with no keys.
pub(crate) const EXPIRY_BATCHES_TAIL: [u8; 16] = [0xFF; 16];
/// [`META`] counter: records in [`LOG_CHUNKS`] (the log's size without reading every chunk).
pub(crate) const META_CHUNK_RECORDS: &str = "log_chunk_records";
/// First byte of a [`LOG_CHUNKS`] value: the layout below, so a later layout can be told apart.
const CHUNK_LAYOUT: u8 = 1;
/// The most bytes a commit puts in one [`LOG_CHUNKS`], [`EXPIRY_BATCHES`] or [`super::dedup::REDO`] value: it
/// writes as many values as it needs, each holding whole records (or keys, or changes).
///
/// Why: redb keeps a value larger than a page in a region of a power of two pages, and writes the region
/// whole. One value per commit for its log (~200 bytes per event), one for its expiry keys (~150) and one for
/// its redo record (~180) came to 300–500 KB each, in regions of 512 KiB: on average 1.44 times their size
/// written and fsynced. Regions of every size, freed by retention and by the redo records' removal, also left
/// holes a later value did not fit, and the file grew by ~1.2 KB per event for ~350 bytes kept. A value of at
/// most this fills a region of 64 KiB (redb's leaf header and key take the rest); only a commit's last one
/// leaves part of its region empty.
pub(crate) const MAX_VALUE: usize = 64 * 1024 - 64;

/// Starts a [`LOG_CHUNKS`] value at the end of `out`: the layout byte and a record count [`finish_log_chunk`]
/// fills in.
pub(crate) fn start_log_chunk(out: &mut Vec<u8>) {
    out.push(CHUNK_LAYOUT);
    out.extend_from_slice(&0u32.to_le_bytes());
}

/// Appends one record to a chunk begun by [`start_log_chunk`]: its length (u32 LE), then its bytes.
pub(crate) fn push_log_record(out: &mut Vec<u8>, record: &[u8]) {
    let len = u32::try_from(record.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(record.get(..len as usize).unwrap_or(record));
}

/// The bytes [`push_log_record`] adds for `record`.
pub(crate) fn log_record_bytes(record: &[u8]) -> usize {
    4 + record.len()
}

/// Writes the record count into a chunk begun by [`start_log_chunk`] (`out` starting at it).
pub(crate) fn finish_log_chunk(out: &mut [u8], records: u32) {
    if let Some(count) = out.get_mut(1..5) {
        count.copy_from_slice(&records.to_le_bytes());
    }
}

/// A [`LOG_CHUNKS`] value built whole (tests, rewrites).
pub(crate) fn encode_log_chunk<'r>(records: impl IntoIterator<Item = &'r [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    start_log_chunk(&mut out);
    let mut n = 0u32;
    for r in records {
        push_log_record(&mut out, r);
        n += 1;
    }
    finish_log_chunk(&mut out, n);
    out
}

/// The record count a chunk's header states (`None` if the header is malformed).
pub(crate) fn log_chunk_len(bytes: &[u8]) -> Option<u32> {
    match bytes {
        [CHUNK_LAYOUT, a, b, c, d, ..] => Some(u32::from_le_bytes([*a, *b, *c, *d])),
        _ => None,
    }
}

/// The records of a [`LOG_CHUNKS`] value, or why it is malformed (with how many records were read before).
pub(crate) fn log_chunk_records(bytes: &[u8]) -> Result<Vec<&[u8]>, String> {
    let n = log_chunk_len(bytes).ok_or("unknown chunk layout")?;
    let mut rest = bytes.get(5..).unwrap_or_default();
    let mut out = Vec::with_capacity(n as usize);
    while let Some((len, tail)) = rest.split_first_chunk::<4>() {
        let len = u32::from_le_bytes(*len) as usize;
        let record = tail
            .get(..len)
            .ok_or_else(|| format!("record {} truncated", out.len()))?;
        out.push(record);
        rest = &tail[len..];
    }
    if !rest.is_empty() || out.len() != n as usize {
        return Err(format!(
            "{} records and {} stray bytes where the header says {n}",
            out.len(),
            rest.len()
        ));
    }
    Ok(out)
}

/// Quarantine: sequence number → `{reason, event}` JSON.
pub(crate) const QUARANTINE: TableDefinition<u64, &[u8]> = TableDefinition::new("quarantine");
/// Ledger corrections: sequence number → `{line_item_id, hour, counts}`. Append-only.
pub(crate) const LEDGER_CORRECTIONS: TableDefinition<u64, &[u8]> =
    TableDefinition::new("ledger_corrections");
/// Event ids seen (ingestion idempotency) → the time they are kept from (seconds), as versions before the
/// dedup state moved to fjall ([`super::dedup`]) kept them; moved there when this version opens the file
/// ([`migrate_dedup_tables`]). Still read by [`super::verify`] and [`super::export`] of an unmoved file.
pub(crate) const EVENT_IDS: TableDefinition<&[u8], i64> = TableDefinition::new("event_ids_bytes");
/// Billing dedup keys `ad_instance␟type` (UTF-8 bytes, as [`EVENT_IDS`]) → occurred_at seconds.
pub(crate) const COUNTED: TableDefinition<&[u8], i64> = TableDefinition::new("counted_bytes");
/// [`EVENT_IDS`] as stores wrote it before, with `&str` keys.
pub(crate) const OLD_EVENT_IDS: TableDefinition<&str, i64> = TableDefinition::new("event_ids");
/// [`COUNTED`] as stores wrote it before, with `&str` keys.
pub(crate) const OLD_COUNTED: TableDefinition<&str, i64> = TableDefinition::new("counted");
/// One-minute windows: `minute␟campaign␟line item␟creative␟channel␟live event` → counts.
pub(crate) const WINDOWS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("windows");
/// Ledger originals: `line item␟hour` → counts.
pub(crate) const LEDGER: TableDefinition<&[u8], &[u8]> = TableDefinition::new("ledger");
/// Delivery per `line item␟hour`, originals and corrections together: what pacing reads.
pub(crate) const DELIVERY: TableDefinition<&[u8], &[u8]> = TableDefinition::new("delivery");
/// Impressions per `viewer␟line item␟hour` (only viewers who consented to their id being stored).
pub(crate) const FREQUENCY: TableDefinition<&[u8], u64> = TableDefinition::new("frequency");

/// Programmatic delivery per bidder hour: [`encode_demand_key`] → counts and Σ clearing CPM
/// ([`encode_delivered`]). Written by the pipeline in the commit that counts the events.
pub(crate) const DEMAND: TableDefinition<&[u8], &[u8]> = TableDefinition::new("demand");
/// Auction outcomes per bidder hour: [`encode_demand_key`] → [`encode_auctions`]. Written by the decider's
/// periodic flush, not by the pipeline.
pub(crate) const AUCTIONS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("auctions");

/// Impressions per `session␟minute` (UTF-8 bytes, as [`EVENT_IDS`]), for the impossible-rate check, as older
/// versions kept them (see [`EVENT_IDS`]).
pub(crate) const SESSION_RATE: TableDefinition<&[u8], u64> =
    TableDefinition::new("session_rate_bytes");
/// [`SESSION_RATE`] as stores wrote it before, with `&str` keys.
pub(crate) const OLD_SESSION_RATE: TableDefinition<&str, u64> =
    TableDefinition::new("session_rate");

/// Moves the dedup tables of a store written by an older version — in redb, with byte-string keys
/// ([`EVENT_IDS`], [`COUNTED`], [`SESSION_RATE`]) or, older still, `&str` keys ([`OLD_EVENT_IDS`],
/// [`OLD_COUNTED`], [`OLD_SESSION_RATE`]) — into the dedup state ([`super::dedup`]), then deletes them; how
/// many keys moved. The copy is synced before the tables are deleted, so a crash in between copies again
/// (the same values: nothing commits before the move is done). Once per store.
pub(crate) fn migrate_dedup_tables(db: &Database, dedup: &Dedup) -> Result<u64, StoreError> {
    let txn = db.begin_read()?;
    let mut moved = None;
    let mut add = |n: Option<u64>| {
        if let Some(n) = n {
            moved = Some(moved.unwrap_or(0) + n);
        }
    };
    let secs = |v: i64| v as u64;
    add(load_table(
        &txn,
        EVENT_IDS,
        dedup,
        Kind::EventId,
        |k, v| (k.to_vec(), secs(v)),
    )?);
    add(load_table(&txn, COUNTED, dedup, Kind::Counted, |k, v| {
        (k.to_vec(), secs(v))
    })?);
    add(load_table(
        &txn,
        SESSION_RATE,
        dedup,
        Kind::SessionRate,
        |k, v| (k.to_vec(), v),
    )?);
    add(load_table(
        &txn,
        OLD_EVENT_IDS,
        dedup,
        Kind::EventId,
        |k, v| (k.as_bytes().to_vec(), secs(v)),
    )?);
    add(load_table(
        &txn,
        OLD_COUNTED,
        dedup,
        Kind::Counted,
        |k, v| (k.as_bytes().to_vec(), secs(v)),
    )?);
    add(load_table(
        &txn,
        OLD_SESSION_RATE,
        dedup,
        Kind::SessionRate,
        |k, v| (k.as_bytes().to_vec(), v),
    )?);
    drop(txn);
    let Some(moved) = moved else {
        return Ok(0);
    };
    dedup.persist()?;
    let txn = db.begin_write()?;
    // Deleting a table that does not exist is a no-op.
    txn.delete_table(EVENT_IDS)?;
    txn.delete_table(COUNTED)?;
    txn.delete_table(SESSION_RATE)?;
    txn.delete_table(OLD_EVENT_IDS)?;
    txn.delete_table(OLD_COUNTED)?;
    txn.delete_table(OLD_SESSION_RATE)?;
    txn.commit()?;
    Ok(moved)
}

/// Writes every entry of redb table `table` into the dedup state as `kind`, each as `entry` makes it; how
/// many (`None`: the file has no such table).
fn load_table<K, V>(
    txn: &ReadTransaction,
    table: TableDefinition<K, V>,
    dedup: &Dedup,
    kind: Kind,
    entry: impl for<'a> Fn(K::SelfType<'a>, V::SelfType<'a>) -> (Vec<u8>, u64),
) -> Result<Option<u64>, StoreError>
where
    K: redb::Key + 'static,
    V: redb::Value + 'static,
{
    let t = match txn.open_table(table) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let n = dedup.load(
        kind,
        t.iter()?.map(|e| {
            let (k, v) = e?;
            Ok(entry(k.value(), v.value()))
        }),
    )?;
    Ok(Some(n))
}

/// Expiry index of the dedup keys as older stores wrote it, one entry per key: `hour ‖ table tag ‖ key` → ().
/// Still swept; no longer written (see [`EXPIRY_BATCHES`]).
pub(crate) const EXPIRY: TableDefinition<&[u8], ()> = TableDefinition::new("expiry");
/// Expiry index of the dedup keys, a few entries per hour per commit: `hour ‖ sequence number` → keys of that
/// hour the commit added, each `tag, length (u16 LE), key` (see [`push_expiry_entry`]), at most [`MAX_VALUE`]
/// bytes. A commit writes entries by the hour instead of one per key; a sweep removes the keys of whole
/// entries.
pub(crate) const EXPIRY_BATCHES: TableDefinition<&[u8], &[u8]> =
    TableDefinition::new("expiry_batches");
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

/// Creates every table (opening a table in a write transaction creates it), and the tails of the tables
/// appended to (see [`LOG_CHUNKS_TAIL`]).
pub(crate) fn create_tables(txn: &WriteTransaction) -> Result<(), StoreError> {
    for table in [LOG, LOG_CHUNKS, QUARANTINE, LEDGER_CORRECTIONS] {
        txn.open_table(table)?;
    }
    let mut chunks = txn.open_table(LOG_CHUNKS)?;
    if chunks.get(LOG_CHUNKS_TAIL)?.is_none() {
        chunks.insert(LOG_CHUNKS_TAIL, encode_log_chunk([]).as_slice())?;
    }
    let mut redo = txn.open_table(super::dedup::REDO)?;
    if redo.get(super::dedup::REDO_TAIL)?.is_none() {
        redo.insert(super::dedup::REDO_TAIL, [].as_slice())?;
    }
    let mut batches = txn.open_table(EXPIRY_BATCHES)?;
    if batches.get(EXPIRY_BATCHES_TAIL.as_slice())?.is_none() {
        batches.insert(EXPIRY_BATCHES_TAIL.as_slice(), [].as_slice())?;
    }
    drop((chunks, redo, batches));
    for table in [WINDOWS, LEDGER, DELIVERY] {
        txn.open_table(table)?;
    }
    txn.open_table(META)?;
    txn.open_table(EXPIRY)?;
    txn.open_table(EXPIRY_BATCHES)?;
    txn.open_table(FREQUENCY_EXPIRY)?;
    txn.open_table(FREQUENCY)?;
    txn.open_table(LOG_MINUTES)?;
    txn.open_table(DEMAND)?;
    txn.open_table(AUCTIONS)?;
    Ok(())
}

/// The key of a demand cell: the hour (time order), then each field length-prefixed (u16 LE), as seats and
/// deals are the bidders' text.
pub(crate) fn encode_demand_key(k: &DemandKey) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + k.fields().iter().map(|f| f.len() + 2).sum::<usize>());
    out.extend_from_slice(&time_bytes(k.hour));
    for field in k.fields() {
        let len = u16::try_from(field.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(field.as_bytes().get(..usize::from(len)).unwrap_or_default());
    }
    out
}

pub(crate) fn decode_demand_key(
    table: &'static str,
    bytes: &[u8],
) -> Result<DemandKey, StoreError> {
    let hour = time_from(bytes).ok_or_else(|| corrupt(table, "short key"))?;
    let mut rest = bytes.get(8..).unwrap_or_default();
    let mut next = || -> Result<String, StoreError> {
        let (len, tail) = rest
            .split_first_chunk::<2>()
            .ok_or_else(|| corrupt(table, "missing key field"))?;
        let len = usize::from(u16::from_le_bytes(*len));
        let field = tail
            .get(..len)
            .ok_or_else(|| corrupt(table, "short key field"))?;
        rest = tail.get(len..).unwrap_or_default();
        String::from_utf8(field.to_vec()).map_err(|_| corrupt(table, "key not UTF-8"))
    };
    Ok(DemandKey {
        hour,
        bidder: next()?,
        seat: next()?,
        deal_id: next()?,
        currency: next()?,
    })
}

fn encode_u64s(values: &[u64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn decode_u64s<const N: usize>(table: &'static str, bytes: &[u8]) -> Result<[u64; N], StoreError> {
    if bytes.len() != N * 8 {
        return Err(corrupt(table, "wrong value length"));
    }
    let mut out = [0u64; N];
    for (v, chunk) in out.iter_mut().zip(bytes.chunks_exact(8)) {
        *v = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
    }
    Ok(out)
}

/// A demand cell's value: the eight counts, then Σ clearing CPM micros.
pub(crate) fn encode_delivered(d: &Delivered) -> Vec<u8> {
    let mut values = counts_array(&d.counts).to_vec();
    values.push(d.price_cpm_micros_sum);
    encode_u64s(&values)
}

pub(crate) fn decode_delivered(bytes: &[u8]) -> Result<Delivered, StoreError> {
    let v: [u64; COUNT_FIELDS + 1] = decode_u64s("demand", bytes)?;
    Ok(Delivered {
        counts: decode_counts(bytes.get(..COUNT_FIELDS * 8).unwrap_or_default())?,
        price_cpm_micros_sum: v[COUNT_FIELDS],
    })
}

/// An auction cell's value: [`AuctionCounts::as_array`].
pub(crate) fn encode_auctions(a: &AuctionCounts) -> Vec<u8> {
    encode_u64s(&a.as_array())
}

pub(crate) fn decode_auctions(bytes: &[u8]) -> Result<AuctionCounts, StoreError> {
    Ok(AuctionCounts::from_array(decode_u64s("auctions", bytes)?))
}

const SEP: u8 = 0x1F;
const COUNT_FIELDS: usize = 8;

pub(crate) fn time_bytes(secs: i64) -> [u8; 8] {
    ((secs as u64) ^ (1 << 63)).to_be_bytes()
}

fn time_from(bytes: &[u8]) -> Option<i64> {
    let b: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
    Some((u64::from_be_bytes(b) ^ (1 << 63)) as i64)
}

/// The key of an [`EXPIRY_BATCHES`] entry: the hour that contains `secs`, then `seq`.
pub(crate) fn expiry_batch_key(secs: i64, seq: u64) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&time_bytes(secs.div_euclid(3600) * 3600));
    out[8..].copy_from_slice(&seq.to_be_bytes());
    out
}

/// Appends one key to the last of an hour's [`EXPIRY_BATCHES`] values, or to a new one if it would pass
/// [`MAX_VALUE`] (keys are at most 256 bytes of id plus a suffix).
pub(crate) fn push_expiry_entry_within(values: &mut Vec<Vec<u8>>, tag: u8, key: &[u8]) {
    let bytes = 3 + key.len();
    match values.last_mut() {
        Some(last) if last.len() + bytes <= MAX_VALUE => push_expiry_entry(last, tag, key),
        _ => {
            let mut value = Vec::with_capacity(MAX_VALUE);
            push_expiry_entry(&mut value, tag, key);
            values.push(value);
        }
    }
}

/// Appends one key to an [`EXPIRY_BATCHES`] value (keys are at most 256 bytes of id plus a suffix).
pub(crate) fn push_expiry_entry(out: &mut Vec<u8>, tag: u8, key: &[u8]) {
    let len = u16::try_from(key.len()).unwrap_or(u16::MAX);
    out.push(tag);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(key.get(..usize::from(len)).unwrap_or(key));
}

/// The keys of an [`EXPIRY_BATCHES`] value; `None` if it is malformed.
pub(crate) fn expiry_entries(mut bytes: &[u8]) -> Option<Vec<(u8, &str)>> {
    let mut out = Vec::new();
    while let [tag, a, b, rest @ ..] = bytes {
        let len = usize::from(u16::from_le_bytes([*a, *b]));
        let key = std::str::from_utf8(rest.get(..len)?).ok()?;
        out.push((*tag, key));
        bytes = &rest[len..];
    }
    bytes.is_empty().then_some(out)
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

/// Appends the key of window cell `k` to `out`.
pub(crate) fn encode_window_key(k: &WindowCell<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(&time_bytes(k.minute));
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
    push_hour_key(parts, hour, &mut out);
    out
}

/// Appends [`hour_key`] to `out`.
pub(crate) fn push_hour_key(parts: &[&str], hour: i64, out: &mut Vec<u8>) {
    for part in parts {
        out.extend_from_slice(part.as_bytes());
        out.push(SEP);
    }
    out.extend_from_slice(&time_bytes(hour.div_euclid(3600) * 3600));
}

/// The first key after every hourly cell of `parts`.
pub(crate) fn hour_key_end(parts: &[&str]) -> Vec<u8> {
    let mut out = hour_key(parts, 0);
    let n = out.len();
    out[n - 8..].fill(0xFF);
    out.push(0xFF);
    out
}

/// The range of [`FREQUENCY`] keys of one viewer: every line item, every hour.
pub(crate) fn viewer_range(viewer_id: &str) -> (Vec<u8>, Vec<u8>) {
    let mut lo = Vec::with_capacity(viewer_id.len() + 1);
    lo.extend_from_slice(viewer_id.as_bytes());
    lo.push(SEP);
    let mut hi = lo.clone();
    if let Some(last) = hi.last_mut() {
        *last = SEP + 1;
    }
    (lo, hi)
}

/// The line item and hour of a [`FREQUENCY`] key whose viewer part (and its separator) is `prefix_len` bytes.
pub(crate) fn decode_viewer_hour_key(key: &[u8], prefix_len: usize) -> Option<(&str, i64)> {
    let end = key.len().checked_sub(9)?;
    if end < prefix_len || key.get(end) != Some(&SEP) {
        return None;
    }
    let line_item = std::str::from_utf8(key.get(prefix_len..end)?).ok()?;
    Some((line_item, time_from(key.get(end + 1..)?)?))
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

pub(crate) fn counts_array(c: &Counts) -> [u64; COUNT_FIELDS] {
    c.as_array()
}

pub(crate) fn encode_counts(c: &Counts) -> [u8; COUNT_FIELDS * 8] {
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

/// A ledger correction as stored.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct Correction {
    pub(crate) line_item_id: String,
    pub(crate) hour: i64,
    pub(crate) counts: [u64; COUNT_FIELDS],
}

pub(crate) fn decode_correction(bytes: &[u8]) -> Result<(String, i64, Counts), StoreError> {
    let c: Correction = serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        table: "ledger_corrections",
        reason: e.to_string(),
    })?;
    let flat: Vec<u8> = c.counts.iter().flat_map(|v| v.to_le_bytes()).collect();
    Ok((c.line_item_id, c.hour, decode_counts(&flat)?))
}

/// The billing dedup key `ad_instance␟type`.
pub(crate) fn counted_key(ad_instance_id: &str, event_type: EventType) -> String {
    let mut out = String::new();
    push_counted_key(ad_instance_id, event_type, &mut out);
    out
}

/// [`counted_key`] into `out` (cleared first), reusing its allocation.
pub(crate) fn push_counted_key(ad_instance_id: &str, event_type: EventType, out: &mut String) {
    out.clear();
    out.push_str(ad_instance_id);
    out.push('\u{1f}');
    out.push_str(event_type.as_str());
}
