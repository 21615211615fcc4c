//! The dedup state (an LSM tree in `dedup/`) is kept in step with the redb file by redo records: a dedup state
//! that lost the last commits' changes (a crash before its journal was synced) gets them back from redb at
//! open, and one that cannot (another backup's, or changes already dropped from redb) is refused by name
//! instead of counting retries again.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use chrono::{DateTime, TimeDelta, Utc};
use interlude_events::contract::{EventSource, EventType};
use interlude_events::testing::event;
use interlude_events::{Envelope, Outcome, Policy};
use interlude_store::EventStore;
use interlude_store::embedded::DEDUP_DIR_NAME;

fn report(id: &str, at: DateTime<Utc>) -> Envelope {
    Envelope {
        event: event(
            id.to_owned(),
            &format!("ai-{id}"),
            EventType::Impression,
            EventSource::ServerSide,
            at,
            1,
        ),
        user_agent: None,
        ip: None,
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), dest).unwrap();
        }
    }
}

/// Puts the dedup directory saved in `saved` back in the store at `dir`.
fn restore(saved: &Path, dir: &Path) {
    let dedup = dir.join(DEDUP_DIR_NAME);
    std::fs::remove_dir_all(&dedup).unwrap();
    copy_dir(saved, &dedup);
}

#[test]
fn a_dedup_state_that_lost_commits_gets_them_back_from_redb() {
    let dir = tempfile::tempdir().unwrap();
    let saved = tempfile::tempdir().unwrap();
    let t0: DateTime<Utc> = "2026-12-05T01:00:00Z".parse().unwrap();
    let now = t0 + TimeDelta::minutes(1);

    let store = EventStore::open(dir.path(), Policy::default()).unwrap();
    let first: Vec<Envelope> = (0..50).map(|i| report(&format!("a{i}"), t0)).collect();
    store.ingest(&first, now).unwrap();
    store.close().unwrap();
    copy_dir(&dir.path().join(DEDUP_DIR_NAME), &saved.path().join("d"));

    // A second commit, then its changes lost from the dedup state (as if its journal never reached the disk).
    let store = EventStore::open(dir.path(), Policy::default()).unwrap();
    let second: Vec<Envelope> = (0..50).map(|i| report(&format!("b{i}"), t0)).collect();
    let outcomes = store.ingest(&second, now).unwrap();
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, Outcome::Counted { .. }))
    );
    let counted = store.stats().unwrap();
    store.close().unwrap();
    restore(&saved.path().join("d"), dir.path());

    let store = EventStore::open(dir.path(), Policy::default()).unwrap();
    assert!(store.has_event_id("b7").unwrap(), "applied again from redb");
    let again = store.ingest(&second, now).unwrap();
    assert!(
        again.iter().all(|o| *o == Outcome::Retry),
        "the second batch's retries are retries: {again:?}"
    );
    let retried_first = store.ingest(&first[..5], now).unwrap();
    assert!(retried_first.iter().all(|o| *o == Outcome::Retry));
    assert_eq!(store.stats().unwrap(), counted);
    assert_eq!(
        store.dedup_keys().unwrap(),
        200,
        "100 ids, 100 billing keys"
    );
    store.close().unwrap();
}

#[test]
fn a_dedup_state_whose_missing_changes_are_gone_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let saved = tempfile::tempdir().unwrap();
    let t0: DateTime<Utc> = "2026-12-05T01:00:00Z".parse().unwrap();
    let now = t0 + TimeDelta::minutes(1);

    let store = EventStore::open(dir.path(), Policy::default()).unwrap();
    store.ingest(&[report("a", t0)], now).unwrap();
    store.close().unwrap();
    copy_dir(&dir.path().join(DEDUP_DIR_NAME), &saved.path().join("d"));

    // Two more commits; the next open drops their redo records once the dedup state has synced them.
    let store = EventStore::open(dir.path(), Policy::default()).unwrap();
    store.ingest(&[report("b", t0)], now).unwrap();
    store.ingest(&[report("c", t0)], now).unwrap();
    store.close().unwrap();
    EventStore::open(dir.path(), Policy::default())
        .unwrap()
        .close()
        .unwrap();

    // An older dedup state: counting on it would count "b" and "c" again.
    restore(&saved.path().join("d"), dir.path());
    let refused = EventStore::open(dir.path(), Policy::default()).unwrap_err();
    let message = refused.to_string();
    assert!(
        message.contains("holds commit 1") && message.contains("commit 3"),
        "{message}"
    );
    assert!(message.contains("from the same backup"), "{message}");

    // A dedup state from the future (the redb file restored alone) is refused too.
    let other = tempfile::tempdir().unwrap();
    let store = EventStore::open(other.path(), Policy::default()).unwrap();
    store.close().unwrap();
    std::fs::remove_dir_all(dir.path().join(DEDUP_DIR_NAME)).unwrap();
    std::fs::copy(
        other.path().join("events.redb"),
        dir.path().join("events.redb"),
    )
    .unwrap();
    copy_dir(&saved.path().join("d"), &dir.path().join(DEDUP_DIR_NAME));
    let refused = EventStore::open(dir.path(), Policy::default()).unwrap_err();
    assert!(refused.to_string().contains("which is older"), "{refused}");
}
