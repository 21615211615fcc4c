//! Dedup state is bounded: keys of events older than the dedup window are swept, and an event that old is then
//! quarantined as too old — never counted a second time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, TimeDelta, Utc};
use interlude_events::contract::{EventSource, EventType};
use interlude_events::testing::event;
use interlude_events::{Envelope, Outcome, Policy, Quarantine};
use interlude_store::EventStore;

#[test]
fn old_dedup_keys_are_swept_and_old_events_cannot_be_recounted() {
    let dir = tempfile::tempdir().unwrap();
    let store = EventStore::open(dir.path(), Policy::default()).unwrap();
    let t0: DateTime<Utc> = "2026-11-20T10:00:00Z".parse().unwrap();
    let envelope = |n: u32, at: DateTime<Utc>| Envelope {
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
    };
    let old: Vec<Envelope> = (0..100).map(|n| envelope(n, t0)).collect();
    let recent: Vec<Envelope> = (100..150)
        .map(|n| envelope(n, t0 + TimeDelta::hours(30)))
        .collect();
    store.ingest(&old, t0 + TimeDelta::minutes(1)).unwrap();
    store.ingest(&recent, t0 + TimeDelta::hours(30)).unwrap();
    assert_eq!(
        store.dedup_keys().unwrap(),
        300,
        "an event id and a billing key per event"
    );

    let later = t0 + TimeDelta::hours(49);
    assert_eq!(
        store.expire(later, 1_000).unwrap(),
        300,
        "the old events' keys (event id, billing key, session-minute rate), not the recent ones'"
    );
    assert_eq!(store.dedup_keys().unwrap(), 100);
    assert_eq!(
        store.expire(later, 1_000).unwrap(),
        0,
        "nothing left to sweep"
    );

    let resent = store.ingest(&old[..1], later).unwrap();
    assert!(
        matches!(resent[0], Outcome::Quarantined(Quarantine::TooOld { .. })),
        "{resent:?}"
    );
    let again = store.ingest(&recent[..1], later).unwrap();
    assert_eq!(again[0], Outcome::Retry, "recent keys are kept");
}
