//! The dedup keys across versions: a store whose dedup keys are in redb — with `&str` keys (`event_ids`,
//! `counted`, `session_rate`) or byte-string keys (`event_ids_bytes`, …) — has them moved to the dedup state
//! (`dedup/`, an LSM tree) when this version opens it, so its retries are still retries, its counted ads are
//! not counted again, and verify and export read it before and after.
//!
//! The old-format tables are written here with redb directly, as the previous version wrote them: the same
//! table names, key and value types and encoding.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, TimeDelta, Utc};
use interlude_events::contract::{EventSource, EventType};
use interlude_events::testing::event;
use interlude_events::{Envelope, Outcome, Policy};
use interlude_store::EventStore;
use interlude_store::embedded::{export, verify};
use redb::{Database, TableDefinition};

const OLD_EVENT_IDS: TableDefinition<&str, i64> = TableDefinition::new("event_ids");
const OLD_COUNTED: TableDefinition<&str, i64> = TableDefinition::new("counted");
const OLD_SESSION_RATE: TableDefinition<&str, u64> = TableDefinition::new("session_rate");
const EVENT_IDS: TableDefinition<&[u8], i64> = TableDefinition::new("event_ids_bytes");
const COUNTED: TableDefinition<&[u8], i64> = TableDefinition::new("counted_bytes");
const SESSION_RATE: TableDefinition<&[u8], u64> = TableDefinition::new("session_rate_bytes");

fn report(id: &str, instance: &str, at: DateTime<Utc>) -> Envelope {
    Envelope {
        event: event(
            id.to_owned(),
            instance,
            EventType::Impression,
            EventSource::ServerSide,
            at,
            1,
        ),
        user_agent: None,
        ip: None,
    }
}

/// How an older version kept the dedup keys: in redb, with `&str` keys, then with byte-string keys.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Old {
    StrKeys,
    ByteKeys,
}

#[test]
fn dedup_keys_of_a_store_with_str_keys_are_moved_and_still_deduplicate() {
    moved_and_still_deduplicate(Old::StrKeys);
}

#[test]
fn dedup_keys_of_a_store_with_byte_keys_in_redb_are_moved_and_still_deduplicate() {
    moved_and_still_deduplicate(Old::ByteKeys);
}

fn moved_and_still_deduplicate(old: Old) {
    let dir = tempfile::tempdir().unwrap();
    let t0: DateTime<Utc> = "2026-11-23T18:00:30Z".parse().unwrap();
    let minute = t0.timestamp().div_euclid(60) * 60;
    // Every other table as this version creates them (empty), the dedup keys in the old format only: in redb,
    // no dedup directory.
    EventStore::open(dir.path(), Policy::default())
        .unwrap()
        .close()
        .unwrap();
    std::fs::remove_dir_all(dir.path().join(interlude_store::embedded::DEDUP_DIR_NAME)).unwrap();
    {
        // e1 was counted for ai1 by the old version; s-ai2's minute already holds the rate limit.
        let db = Database::create(dir.path().join("events.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        if old == Old::ByteKeys {
            let full = Policy::default().max_session_impressions_per_minute;
            let mut ids = txn.open_table(EVENT_IDS).unwrap();
            ids.insert(b"e1".as_slice(), t0.timestamp()).unwrap();
            let mut counted = txn.open_table(COUNTED).unwrap();
            counted
                .insert(b"ai1\x1fimpression".as_slice(), t0.timestamp())
                .unwrap();
            let mut rates = txn.open_table(SESSION_RATE).unwrap();
            rates
                .insert(format!("s-ai2\u{1f}{minute}").as_bytes(), full)
                .unwrap();
        } else {
            let mut ids = txn.open_table(OLD_EVENT_IDS).unwrap();
            ids.insert("e1", t0.timestamp()).unwrap();
            let mut counted = txn.open_table(OLD_COUNTED).unwrap();
            counted
                .insert("ai1\u{1f}impression", t0.timestamp())
                .unwrap();
            let mut rates = txn.open_table(OLD_SESSION_RATE).unwrap();
            let full = Policy::default().max_session_impressions_per_minute;
            rates
                .insert(format!("s-ai2\u{1f}{minute}").as_str(), full)
                .unwrap();
        }
        txn.commit().unwrap();
    }
    let before = verify(dir.path()).unwrap();
    assert!(
        before.tables.contains(&("event_ids".to_owned(), 1)),
        "{before:?}"
    );
    let mut out = Vec::new();
    assert_eq!(export(dir.path(), &mut out).unwrap().counted, 1);

    let store = EventStore::open(dir.path(), Policy::default()).unwrap();
    let now = t0 + TimeDelta::minutes(1);
    let outcomes = store
        .ingest(
            &[
                report("e1", "ai1", t0),
                report("e1b", "ai1", t0),
                report("e2", "ai2", t0),
                report("e3", "ai3", t0),
            ],
            now,
        )
        .unwrap();
    assert_eq!(outcomes[0], Outcome::Retry, "the old id is known");
    assert!(
        !matches!(outcomes[1], Outcome::Counted { .. }),
        "ai1 was counted by the old version: {outcomes:?}"
    );
    assert!(
        matches!(outcomes[2], Outcome::Quarantined(_)),
        "s-ai2's minute was full: {outcomes:?}"
    );
    assert!(
        matches!(outcomes[3], Outcome::Counted { .. }),
        "{outcomes:?}"
    );
    assert!(store.has_event_id("e1").unwrap());
    assert_eq!(
        store.counted_events("ai1").unwrap(),
        vec![EventType::Impression]
    );
    store.close().unwrap();

    // The old tables are gone (moved, not copied), and a second open moves nothing.
    let db = Database::open(dir.path().join("events.redb")).unwrap();
    let names: Vec<String> = {
        use redb::TableHandle;
        db.begin_read()
            .unwrap()
            .list_tables()
            .unwrap()
            .map(|t| t.name().to_owned())
            .collect()
    };
    drop(db);
    for table in [
        "event_ids",
        "counted",
        "session_rate",
        "event_ids_bytes",
        "counted_bytes",
        "session_rate_bytes",
    ] {
        assert!(!names.contains(&table.to_owned()), "{table} in {names:?}");
    }
    let store = EventStore::open(dir.path(), Policy::default()).unwrap();
    assert!(store.has_event_id("e3").unwrap());
    store.close().unwrap();

    let after = verify(dir.path()).unwrap();
    assert!(after.is_clean(), "{after:?}");
    // e1, e1b, e2 (quarantined reports' ids are recorded too), e3.
    assert!(
        after.tables.contains(&("event_ids".to_owned(), 4)),
        "{after:?}"
    );
    let mut out = Vec::new();
    assert_eq!(export(dir.path(), &mut out).unwrap().counted, 2);
}
