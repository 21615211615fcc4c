//! What a group commit leaves in the dedup state is exactly what the pipeline decided: ids recorded with the
//! time they are kept from, billing keys only for what was counted, session minutes only for the impressions
//! the rate check counted, and a retry's stored values untouched. Read back after a reopen, kind by kind.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use interlude_events::contract::{EventSource, EventType};
use interlude_events::testing::event;
use interlude_events::{Envelope, Outcome, Policy};
use interlude_store::EventStore;

fn report(id: &str, instance: &str, t: EventType, at: DateTime<Utc>) -> Envelope {
    Envelope {
        event: event(id.to_owned(), instance, t, EventSource::ServerSide, at, 1),
        user_agent: None,
        ip: None,
    }
}

/// One kind of dedup key as the store holds it, keys as text.
fn table<V: TryFrom<u64>>(store: &EventStore, kind: &str) -> BTreeMap<String, V>
where
    V::Error: std::fmt::Debug,
{
    store
        .dedup_entries(kind)
        .unwrap()
        .unwrap()
        .into_iter()
        .map(|(k, v)| (String::from_utf8(k).unwrap(), V::try_from(v).unwrap()))
        .collect()
}

#[test]
fn the_dedup_tables_hold_what_the_pipeline_decided() {
    let dir = tempfile::tempdir().unwrap();
    let t0: DateTime<Utc> = "2026-11-23T18:00:30Z".parse().unwrap();
    let now = t0 + TimeDelta::minutes(1);
    let long_ago = t0 - TimeDelta::days(5);
    let minute = t0.timestamp().div_euclid(60) * 60;
    let store = EventStore::open(dir.path(), Policy::default()).unwrap();

    let mut bot = report("e3", "ai3", EventType::Impression, t0);
    bot.user_agent = Some("Googlebot/2.1".into());
    let batch = vec![
        // Counted: its id, its billing key, its session minute.
        report("e1", "ai1", EventType::Impression, t0),
        // A second report of the same impression: its id is recorded, the billing key is ai1's.
        report(
            "e2",
            "ai1",
            EventType::Impression,
            t0 + TimeDelta::seconds(5),
        ),
        // Quarantined at the edge: the id is recorded, nothing else.
        bot,
        // Too old: the id is kept from now (not from its event time), nothing else.
        report("e4", "ai4", EventType::Impression, long_ago),
        // A start (its billing key is its own; it reads no other).
        report("e5", "ai5", EventType::Start, t0),
        // Three impressions of one session minute (instances differ): the minute holds 3.
        {
            let mut r = report("e6", "ai6", EventType::Impression, t0);
            r.event.session_id = "shared".into();
            r
        },
        {
            let mut r = report("e7", "ai7", EventType::Impression, t0);
            r.event.session_id = "shared".into();
            r
        },
        {
            let mut r = report("e8", "ai8", EventType::Impression, t0);
            r.event.session_id = "shared".into();
            r
        },
    ];
    let outcomes = store.ingest(&batch, now).unwrap();
    assert!(
        matches!(outcomes[0], Outcome::Counted { .. }),
        "{outcomes:?}"
    );
    assert!(
        matches!(outcomes[2], Outcome::Quarantined(_)),
        "{outcomes:?}"
    );
    assert!(
        matches!(outcomes[3], Outcome::Quarantined(_)),
        "{outcomes:?}"
    );
    assert!(
        matches!(outcomes[4], Outcome::Counted { .. }),
        "{outcomes:?}"
    );

    // A retry of e1 with another event time, and a new report: the retry changes nothing stored.
    let retry = report(
        "e1",
        "ai1",
        EventType::Impression,
        t0 + TimeDelta::seconds(20),
    );
    let later = report("e9", "ai9", EventType::Impression, t0);
    let outcomes = store.ingest(&[retry, later], now).unwrap();
    assert_eq!(outcomes[0], Outcome::Retry);
    store.close().unwrap();

    // Read back after a reopen: what the commits left, synced and applied.
    let store = EventStore::open(dir.path(), Policy::default()).unwrap();
    let at = t0.timestamp();
    let ids: BTreeMap<String, i64> = table(&store, "event_ids");
    let expected: BTreeMap<String, i64> = [
        ("e1", at),
        ("e2", at + 5),
        ("e3", at),
        ("e4", now.timestamp()),
        ("e5", at),
        ("e6", at),
        ("e7", at),
        ("e8", at),
        ("e9", at),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(ids, expected);

    let counted: BTreeMap<String, i64> = table(&store, "counted");
    let mut expected: BTreeMap<String, i64> = ["ai1", "ai6", "ai7", "ai8", "ai9"]
        .into_iter()
        .map(|k| (format!("{k}\u{1f}impression"), at))
        .collect();
    expected.insert("ai5\u{1f}start".into(), at);
    assert_eq!(counted, expected);

    let rates: BTreeMap<String, u64> = table(&store, "session_rate");
    let expected: BTreeMap<String, u64> = [
        (format!("s-ai1\u{1f}{minute}"), 1),
        (format!("shared\u{1f}{minute}"), 3),
        (format!("s-ai9\u{1f}{minute}"), 1),
    ]
    .into_iter()
    .collect();
    assert_eq!(rates, expected);
}
