//! The embedded store's life cycle: a graceful shutdown leaves a file that opens without repair (an unclean
//! exit's file is repaired, and the store says so); retries do not grow the log; retention and expiry remove
//! what they should, however large the backlog.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use interlude_events::contract::{EventSource, EventType};
use interlude_events::testing::event;
use interlude_events::{Envelope, Outcome, Policy};
use interlude_store::{Committer, EventStore, Health};

fn impressions(from: u32, to: u32, at: DateTime<Utc>) -> Vec<Envelope> {
    (from..to)
        .map(|n| Envelope {
            event: event(
                format!("e{n}"),
                &format!("ai{n}"),
                EventType::Impression,
                EventSource::ServerSide,
                at,
                1,
            ),
            user_agent: None,
            ip: None,
        })
        .collect()
}

#[tokio::test]
async fn a_gracefully_shut_down_store_opens_without_repair() {
    let dir = tempfile::tempdir().unwrap();
    let t0: DateTime<Utc> = "2026-11-23T18:00:00Z".parse().unwrap();
    let store = Arc::new(EventStore::open(dir.path(), Policy::default()).unwrap());
    assert!(!store.opened().repaired, "a new file needs no repair");
    let committer = Committer::start(store.clone(), Arc::new(move || t0));
    committer.submit(impressions(0, 500, t0)).await.unwrap();

    // A copy taken while the store is open is what an unclean exit leaves: opening it repairs.
    let crashed = tempfile::tempdir().unwrap();
    std::fs::copy(
        dir.path().join("events.redb"),
        crashed.path().join("events.redb"),
    )
    .unwrap();
    let after_crash = EventStore::open(crashed.path(), Policy::default()).unwrap();
    assert!(after_crash.opened().repaired, "an unclean file is repaired");
    assert_eq!(after_crash.stats().unwrap().logged, 500);

    committer.shutdown().await.unwrap();
    assert_eq!(*store.health().borrow(), Health::Closed);
    assert!(matches!(
        committer.submit(impressions(500, 501, t0)).await,
        Err(interlude_store::SubmitError::Stopped)
    ));
    assert!(store.stats().is_err(), "a closed store refuses reads");
    // The store is still referenced (the server's report handlers hold it), yet the file is closed.
    let reopened = EventStore::open(dir.path(), Policy::default()).unwrap();
    assert!(
        !reopened.opened().repaired,
        "a cleanly closed file opens without repair"
    );
    assert_eq!(reopened.stats().unwrap().logged, 500);
}

#[test]
fn a_million_retries_do_not_grow_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = EventStore::open(dir.path(), Policy::default()).unwrap();
    let t0: DateTime<Utc> = "2026-11-23T18:00:00Z".parse().unwrap();
    let now = t0 + TimeDelta::minutes(1);
    let originals = impressions(0, 1_000, t0);
    store.ingest(&originals, now).unwrap();
    // The redb file and the dedup state beside it (retries write to neither).
    fn bytes(path: &std::path::Path) -> u64 {
        let meta = std::fs::metadata(path).unwrap();
        if !meta.is_dir() {
            return meta.len();
        }
        std::fs::read_dir(path)
            .unwrap()
            .map(|e| bytes(&e.unwrap().path()))
            .sum()
    }
    let size = || {
        bytes(&dir.path().join("events.redb"))
            + bytes(&dir.path().join(interlude_store::embedded::DEDUP_DIR_NAME))
    };
    let before = size();
    // 1,000 rounds of the same 1,000 reports, 10,000 per commit: one million retries.
    let storm: Vec<Envelope> = (0..10).flat_map(|_| originals.clone()).collect();
    for _ in 0..100 {
        let outcomes = store.ingest(&storm, now).unwrap();
        assert!(outcomes.iter().all(|o| *o == Outcome::Retry));
    }
    let after = size();
    eprintln!(
        "store (file and dedup state): {before} bytes after 1,000 events, {after} bytes after 1,000,000 retries of them"
    );
    assert_eq!(store.stats().unwrap().logged, 1_000);
    assert!(
        after <= before * 2,
        "retries must not grow the file ({before} → {after} bytes)"
    );
}

#[test]
fn retention_removes_the_whole_backlog_by_receipt_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = EventStore::open(dir.path(), Policy::default()).unwrap();
    let t0: DateTime<Utc> = "2026-11-20T10:00:00Z".parse().unwrap();
    // Ten minutes of receipts, 3,000 events a minute, then a recent minute.
    for minute in 0..10u32 {
        let at = t0 + TimeDelta::minutes(i64::from(minute));
        let batch = impressions(minute * 3_000, (minute + 1) * 3_000, at);
        store.ingest(&batch, at).unwrap();
    }
    let recent_at = t0 + TimeDelta::hours(1);
    store
        .ingest(&impressions(30_000, 30_100, recent_at), recent_at)
        .unwrap();
    assert_eq!(store.stats().unwrap().logged, 30_100);

    // Everything received before minute 7 goes: 21,000 events, more than the first chunks hold.
    let (removed, swept) = store.compact_all(t0 + TimeDelta::minutes(7), t0).unwrap();
    assert_eq!(removed.log_events, 21_000);
    assert!(swept.chunks > 1, "{swept:?}");
    assert_eq!(store.stats().unwrap().logged, 9_100);
    let (removed, _) = store.compact_all(recent_at, t0).unwrap();
    assert_eq!(removed.log_events, 9_000);
    assert_eq!(store.stats().unwrap().logged, 100);
    // Counts are not retention's business.
    assert_eq!(
        interlude_events::Counters::delivered(&store, "li1", t0 - TimeDelta::days(1)),
        30_100
    );
}

#[test]
fn expiry_sweeps_a_backlog_larger_than_a_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let store = EventStore::open(dir.path(), Policy::default()).unwrap();
    let t0: DateTime<Utc> = "2026-11-20T10:00:00Z".parse().unwrap();
    store
        .ingest(&impressions(0, 40_000, t0), t0 + TimeDelta::minutes(1))
        .unwrap();
    assert_eq!(store.dedup_keys().unwrap(), 80_000);
    let swept = store.expire_all(t0 + TimeDelta::hours(49)).unwrap();
    // An event id, a billing key and a session-minute rate per event.
    assert_eq!(swept.removed, 120_000);
    assert!(swept.chunks > 1, "{swept:?}");
    assert_eq!(store.dedup_keys().unwrap(), 0);
}
