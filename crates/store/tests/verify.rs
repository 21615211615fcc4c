//! A damaged store is not a dead end: `verify` names the damage (table, key, reason) and `export` salvages
//! the counted keys and the billing ledger as JSON lines.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, TimeDelta, Utc};
use interlude_events::contract::{EventSource, EventType};
use interlude_events::testing::event;
use interlude_events::{Envelope, Policy};
use interlude_store::EventStore;
use interlude_store::embedded::{export, verify};

fn store_with_events(dir: &std::path::Path) {
    let t0: DateTime<Utc> = "2026-11-23T18:00:00Z".parse().unwrap();
    let batch: Vec<Envelope> = (0..300u32)
        .map(|n| Envelope {
            event: event(
                if n == 150 {
                    "flip-me-0150".to_owned()
                } else {
                    format!("e{n}")
                },
                &format!("ai{}", n / 2),
                if n % 2 == 0 {
                    EventType::Impression
                } else {
                    EventType::Start
                },
                EventSource::ServerSide,
                t0,
                (n % 3) as usize,
            ),
            user_agent: None,
            ip: None,
        })
        .collect();
    let store = EventStore::open(dir, Policy::default()).unwrap();
    store.ingest(&batch, t0 + TimeDelta::minutes(1)).unwrap();
    store.close().unwrap();
}

#[test]
fn a_flipped_byte_is_named_by_table_key_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    store_with_events(dir.path());
    let clean = verify(dir.path()).unwrap();
    assert!(clean.is_clean(), "{clean:?}");
    assert!(clean.tables.contains(&("log".to_owned(), 300)), "{clean:?}");

    // One byte of one log record: the length of its event_id (the compact record stores the id after its
    // length, a byte of 12; the dedup state's copy of the id is in dedup/, not in this file).
    let file = dir.path().join("events.redb");
    let mut bytes = std::fs::read(&file).unwrap();
    let needle = b"\x0cflip-me-0150";
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("the record is in the file");
    bytes[at] = 0xff; // a varint going on into the id: a length far past the record
    std::fs::write(&file, &bytes).unwrap();

    let report = verify(dir.path()).unwrap();
    eprintln!("{}", serde_json::to_string_pretty(&report.damage).unwrap());
    assert!(!report.is_clean());
    let named = report
        .damage
        .iter()
        .find(|d| d.table == "log")
        .expect("the damage is named in the log table");
    assert!(named.key.is_some(), "{named:?}");
    assert!(!named.reason.is_empty());

    // The way out: everything else still exports.
    let mut out = Vec::new();
    let exported = export(dir.path(), &mut out).unwrap();
    let lines: Vec<serde_json::Value> = out
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(exported.counted, 300);
    assert_eq!(exported.ledger_rows, 3, "three line items, one hour");
    assert_eq!(lines.len(), 303);
    let impressions: u64 = lines
        .iter()
        .filter(|l| l["kind"] == "ledger")
        .map(|l| l["original"]["impressions"].as_u64().unwrap())
        .sum();
    assert_eq!(impressions, 150);
}

#[test]
fn a_backup_taken_while_serving_opens_with_what_was_committed() {
    let dir = tempfile::tempdir().unwrap();
    let t0: DateTime<Utc> = "2026-11-23T18:00:00Z".parse().unwrap();
    let store = EventStore::open(dir.path(), Policy::default()).unwrap();
    let batch = |from: u32, to: u32| -> Vec<Envelope> {
        (from..to)
            .map(|n| Envelope {
                event: event(
                    format!("e{n}"),
                    &format!("ai{n}"),
                    EventType::Impression,
                    EventSource::ServerSide,
                    t0,
                    1,
                ),
                user_agent: None,
                ip: None,
            })
            .collect()
    };
    store.ingest(&batch(0, 200), t0).unwrap();
    let backup = tempfile::tempdir().unwrap();
    assert!(store.backup(backup.path()).unwrap() > 0);
    store.ingest(&batch(200, 300), t0).unwrap();

    let report = verify(backup.path()).unwrap();
    assert!(report.is_clean(), "{report:?}");
    let restored = EventStore::open(backup.path(), Policy::default()).unwrap();
    assert_eq!(restored.stats().unwrap().logged, 200);
    assert_eq!(store.stats().unwrap().logged, 300);
}
