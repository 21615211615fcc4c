//! The dedup tables' key format across versions: a store written with `&str` keys (`event_ids`, `counted`,
//! `session_rate`) has them moved to the byte-string tables when this version opens it, so its retries are
//! still retries, its counted ads are not counted again, and verify and export read it before and after.
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

#[test]
fn dedup_keys_of_an_older_store_are_moved_and_still_deduplicate() {
    let dir = tempfile::tempdir().unwrap();
    let t0: DateTime<Utc> = "2026-11-23T18:00:30Z".parse().unwrap();
    let minute = t0.timestamp().div_euclid(60) * 60;
    // Every other table as this version creates them (empty), the dedup tables in the old format only.
    EventStore::open(dir.path(), Policy::default())
        .unwrap()
        .close()
        .unwrap();
    {
        // e1 was counted for ai1 by the old version; s-ai2's minute already holds the rate limit.
        let db = Database::create(dir.path().join("events.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        for new in ["event_ids_bytes", "counted_bytes", "session_rate_bytes"] {
            let def: TableDefinition<&[u8], i64> = TableDefinition::new(new);
            assert!(txn.delete_table(def).unwrap(), "{new}");
        }
        {
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
    for old in ["event_ids", "counted", "session_rate"] {
        assert!(!names.contains(&old.to_owned()), "{old} in {names:?}");
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
