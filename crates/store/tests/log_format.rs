//! The log's file format across versions: stores written before log chunks (one `log` entry per event, keyed
//! by sequence number, the record's JSON as value, indexed in `log_minutes`) open, keep being read in order
//! with what is logged after them, verify clean, and are retained and anonymised like chunks.
//!
//! The old-format store is written here with redb directly, table by table as the previous version wrote its
//! log: the same table names, key and value types and encoding.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, TimeDelta, Utc};
use interlude_events::contract::{EventSource, EventType};
use interlude_events::testing::event;
use interlude_events::{Envelope, Policy};
use interlude_store::embedded::verify;
use interlude_store::{EventStore, LogReader, LogRecord, LogSnapshot};
use redb::{Database, ReadableTable, TableDefinition};

const OLD_LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
const OLD_LOG_MINUTES: TableDefinition<i64, u64> = TableDefinition::new("log_minutes");
const OLD_META: TableDefinition<&str, i64> = TableDefinition::new("meta");

fn impression(n: u32, at: DateTime<Utc>) -> Envelope {
    let mut e = event(
        format!("e{n}"),
        &format!("ai{n}"),
        EventType::Impression,
        EventSource::ServerSide,
        at,
        1,
    );
    e.viewer_id = Some(format!("viewer{}", n % 10));
    Envelope {
        event: e,
        user_agent: None,
        ip: None,
    }
}

/// A store as the previous version left it: `n` events received at `at`, one `log` entry each (sequence
/// numbers 1..=n), one `log_minutes` entry, the sequence counter in `meta`.
fn write_old_store(dir: &std::path::Path, n: u32, at: DateTime<Utc>) {
    let db = Database::create(dir.join("events.redb")).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut log = txn.open_table(OLD_LOG).unwrap();
        for i in 0..n {
            let record = LogRecord {
                event: impression(i, at).event,
                edge: None,
            };
            let bytes = serde_json::to_vec(&record).unwrap();
            log.insert(u64::from(i) + 1, bytes.as_slice()).unwrap();
        }
        let mut minutes = txn.open_table(OLD_LOG_MINUTES).unwrap();
        minutes
            .insert(at.timestamp().div_euclid(60) * 60, 1)
            .unwrap();
        let mut meta = txn.open_table(OLD_META).unwrap();
        meta.insert("next_seq", i64::from(n)).unwrap();
    }
    txn.commit().unwrap();
}

fn read_all(dir: &std::path::Path, max: usize) -> Vec<(i64, String)> {
    let mut reader = LogSnapshot::open(dir).unwrap();
    let mut out = Vec::new();
    loop {
        let batch = reader.read(max).unwrap();
        if batch.is_empty() {
            return out;
        }
        out.extend(
            batch
                .into_iter()
                .map(|(offset, r)| (offset, r.unwrap().event.event_id)),
        );
    }
}

#[test]
fn a_store_written_before_log_chunks_is_read_with_what_follows() {
    let dir = tempfile::tempdir().unwrap();
    let t0: DateTime<Utc> = "2026-11-20T10:00:00Z".parse().unwrap();
    write_old_store(dir.path(), 250, t0);

    let store = EventStore::open(dir.path(), Policy::default()).unwrap();
    assert_eq!(store.stats().unwrap().logged, 250);
    // Two commits in the new format, received later.
    let t1 = t0 + TimeDelta::minutes(5);
    let t2 = t0 + TimeDelta::minutes(10);
    let batch = |from: u32, to: u32, at| (from..to).map(|n| impression(n, at)).collect::<Vec<_>>();
    store.ingest(&batch(1_000, 1_300, t1), t1).unwrap();
    store.ingest(&batch(2_000, 2_100, t2), t2).unwrap();
    assert_eq!(store.stats().unwrap().logged, 650);
    let sizes = store.table_sizes().unwrap();
    assert!(sizes.contains(&("log", 650)), "{sizes:?}");
    assert!(sizes.contains(&("log_chunks", 2)), "{sizes:?}");
    store.close().unwrap();

    // In order, old entries first, offsets increasing, whatever the reader's page size (a page may end
    // inside a chunk).
    let expected: Vec<String> = (0..250)
        .chain(1_000..1_300)
        .chain(2_000..2_100)
        .map(|n| format!("e{n}"))
        .collect();
    for max in [7, 10_000] {
        let read = read_all(dir.path(), max);
        let ids: Vec<String> = read.iter().map(|(_, id)| id.clone()).collect();
        assert_eq!(ids, expected, "page size {max}");
        assert!(read.windows(2).all(|w| w[0].0 < w[1].0), "offsets increase");
    }

    let report = verify(dir.path()).unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert!(
        report.tables.contains(&("log".to_owned(), 650)),
        "{report:?}"
    );

    let store = EventStore::open(dir.path(), Policy::default()).unwrap();
    // Erasure reaches both formats: viewer3 is in 25 old records, 30 and 10 new ones.
    let forgotten = store.forget_viewers(&["viewer3".to_owned()]).unwrap();
    assert_eq!(forgotten.log_events_anonymised, 65);
    assert!(!store.tables_mentioning("viewer3").unwrap().contains(&"log"));
    assert!(store.tables_mentioning("viewer4").unwrap().contains(&"log"));

    // Retention by receipt time: the old entries, then the first chunk, never the chunk still in the horizon.
    let (removed, _) = store.compact_all(t0 + TimeDelta::minutes(1), t0).unwrap();
    assert_eq!(removed.log_events, 250);
    assert_eq!(store.stats().unwrap().logged, 400);
    let (removed, _) = store.compact_all(t1 + TimeDelta::minutes(1), t0).unwrap();
    assert_eq!(removed.log_events, 300);
    assert_eq!(store.stats().unwrap().logged, 100);
    store.close().unwrap();
    let ids: Vec<String> = read_all(dir.path(), 1_000)
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    assert_eq!(
        ids,
        (2_000..2_100).map(|n| format!("e{n}")).collect::<Vec<_>>()
    );
}

#[test]
fn retention_removes_whole_chunks_until_the_limit_is_reached() {
    let dir = tempfile::tempdir().unwrap();
    let t0: DateTime<Utc> = "2026-11-20T10:00:00Z".parse().unwrap();
    let store = EventStore::open(dir.path(), Policy::default()).unwrap();
    for minute in 0..4u32 {
        let at = t0 + TimeDelta::minutes(i64::from(minute));
        let batch: Vec<Envelope> = (minute * 100..(minute + 1) * 100)
            .map(|n| impression(n, at))
            .collect();
        store.ingest(&batch, at).unwrap();
    }
    // A limit inside the second chunk: two whole chunks go, not one and a half.
    let c = store.compact(t0 + TimeDelta::minutes(3), t0, 150).unwrap();
    assert_eq!(c.log_events, 200);
    assert_eq!(store.stats().unwrap().logged, 200);
    // The chunk received in minute 3 is not past a horizon of minute 3.
    let c = store
        .compact(t0 + TimeDelta::minutes(3), t0, 1_000)
        .unwrap();
    assert_eq!(c.log_events, 100);
    assert_eq!(store.stats().unwrap().logged, 100);
}

/// The most bytes of a `log_chunks` or `expiry_batches` value (`state::MAX_VALUE`): a region of 64 KiB less
/// redb's leaf header and key.
const MAX_VALUE: usize = 64 * 1024 - 64;

#[test]
fn a_large_commit_writes_its_log_and_expiry_keys_in_values_of_at_most_64_kib() {
    let dir = tempfile::tempdir().unwrap();
    let t0: DateTime<Utc> = "2026-11-20T10:00:00Z".parse().unwrap();
    let store = EventStore::open(dir.path(), Policy::default()).unwrap();
    // One commit, several hundred kilobytes of records and of expiry keys.
    let batch: Vec<Envelope> = (0..3_000).map(|n| impression(n, t0)).collect();
    store.ingest(&batch, t0).unwrap();
    let logged_later = t0 + TimeDelta::minutes(5);
    store
        .ingest(&[impression(9_999, logged_later)], logged_later)
        .unwrap();
    assert_eq!(store.stats().unwrap().logged, 3_001);
    store.close().unwrap();

    // Read with redb directly: every value within the limit, the first commit's chunks one after another.
    {
        let db = Database::open(dir.path().join("events.redb")).unwrap();
        let txn = db.begin_read().unwrap();
        let chunks: Vec<(u64, usize, u32)> = txn
            .open_table(TableDefinition::<u64, &[u8]>::new("log_chunks"))
            .unwrap()
            .iter()
            .unwrap()
            .map(|e| {
                let (k, v) = e.unwrap();
                let v = v.value();
                let records = u32::from_le_bytes(v[1..5].try_into().unwrap());
                (k.value(), v.len(), records)
            })
            .filter(|(_, _, records)| *records > 0)
            .collect();
        assert!(chunks.len() > 3, "{chunks:?}");
        assert!(chunks.iter().all(|c| c.1 <= MAX_VALUE), "{chunks:?}");
        assert_eq!(chunks.iter().map(|c| c.2).sum::<u32>(), 3_001);
        let first_commit = &chunks[..chunks.len() - 1];
        assert!(
            first_commit
                .windows(2)
                .all(|w| w[1].0 == w[0].0 + u64::from(w[0].2)),
            "consecutive sequence numbers: {chunks:?}"
        );
        let expiry: Vec<usize> = txn
            .open_table(TableDefinition::<&[u8], &[u8]>::new("expiry_batches"))
            .unwrap()
            .iter()
            .unwrap()
            .map(|e| e.unwrap().1.value().len())
            .filter(|&len| len > 0)
            .collect();
        assert!(expiry.len() > 2, "{expiry:?}");
        assert!(expiry.iter().all(|&len| len <= MAX_VALUE), "{expiry:?}");
    }

    let ids: Vec<String> = read_all(dir.path(), 1_000)
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    let expected: Vec<String> = (0..3_000).chain([9_999]).map(|n| format!("e{n}")).collect();
    assert_eq!(ids, expected);
    assert!(verify(dir.path()).unwrap().is_clean());

    let store = EventStore::open(dir.path(), Policy::default()).unwrap();
    // Every key of the big commit is found in the expiry values and swept: an event id, a billing key and a
    // session-minute rate per event.
    let keys = store.dedup_keys().unwrap();
    let later = t0 + TimeDelta::hours(49);
    assert_eq!(store.expire(later, 100_000).unwrap(), 9_003);
    assert_eq!(keys, 6_002, "event ids and billing keys, before the sweep");
    // Retention takes the big commit's chunks whole and counts their records, not the later one.
    let (removed, _) = store.compact_all(t0 + TimeDelta::minutes(1), t0).unwrap();
    assert_eq!(removed.log_events, 3_000);
    assert_eq!(store.stats().unwrap().logged, 1);
}
