//! The counters the decision engine reads: delivery per line item (late corrections included) and impressions
//! per consenting viewer, updated in the same commit as billing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, TimeDelta, Utc};
use interlude_events::contract::{ConsentFlags, EventSource, EventType};
use interlude_events::testing::event;
use interlude_events::{Counters, Envelope, Policy};
use interlude_store::EventStore;

#[test]
fn delivery_and_frequency_follow_counted_impressions() {
    let dir = tempfile::tempdir().unwrap();
    let store = EventStore::open(dir.path(), Policy::default()).unwrap();
    let t0: DateTime<Utc> = "2026-11-23T18:10:00Z".parse().unwrap();
    let report = |n: u32, t: EventType, at: DateTime<Utc>, viewer: Option<&str>, consent: bool| {
        let mut e = event(
            format!("e{n}-{}", t.as_str()),
            &format!("ai{n}"),
            t,
            EventSource::ServerSide,
            at,
            3,
        );
        e.viewer_id = viewer.map(str::to_owned);
        e.consent = ConsentFlags {
            store_viewer_id: consent,
            ..ConsentFlags::default()
        };
        Envelope {
            event: e,
            user_agent: None,
            ip: None,
        }
    };
    let now = t0 + TimeDelta::hours(2);
    let batch = vec![
        report(1, EventType::Impression, t0, Some("v1"), true),
        report(1, EventType::Start, t0, Some("v1"), true), // not an impression
        report(
            2,
            EventType::Impression,
            t0 + TimeDelta::hours(1),
            Some("v1"),
            true,
        ),
        report(
            3,
            EventType::Impression,
            t0 + TimeDelta::hours(1),
            Some("v2"),
            false,
        ), // no consent: no frequency
        report(
            3,
            EventType::Impression,
            t0 + TimeDelta::hours(1),
            Some("v2"),
            false,
        ), // a retry
    ];
    store.ingest(&batch, now).unwrap();
    // A late impression for the first hour, after the watermark passed it: a correction, still delivered.
    let late = report(
        4,
        EventType::Impression,
        t0 + TimeDelta::minutes(5),
        Some("v1"),
        true,
    );
    let outcome = store.ingest(&[late], now).unwrap();
    assert_eq!(
        outcome[0],
        interlude_events::Outcome::Counted { correction: true }
    );

    assert_eq!(store.delivered("li3", t0 - TimeDelta::days(1)), 4);
    assert_eq!(
        store.delivered("li3", t0 + TimeDelta::hours(1)),
        2,
        "only the later hour"
    );
    assert_eq!(store.delivered("li0", t0 - TimeDelta::days(1)), 0);
    assert_eq!(
        store.viewer_impressions("v1", "li3", t0 - TimeDelta::days(1)),
        3
    );
    assert_eq!(
        store.viewer_impressions("v2", "li3", t0 - TimeDelta::days(1)),
        0,
        "no consent, no profile"
    );
    // Frequency counts outlive the 48 h dedup window but not the 30-day frequency window.
    store.expire(t0 + TimeDelta::days(3), 10_000).unwrap();
    assert_eq!(
        store.viewer_impressions("v1", "li3", t0 - TimeDelta::days(1)),
        3
    );
    store.expire(t0 + TimeDelta::days(31), 10_000).unwrap();
    assert_eq!(
        store.viewer_impressions("v1", "li3", t0 - TimeDelta::days(1)),
        0
    );
}

#[test]
fn spend_follows_impressions_and_line_item_prices() {
    let dir = tempfile::tempdir().unwrap();
    let store = EventStore::open(dir.path(), Policy::default()).unwrap();
    let t0: DateTime<Utc> = "2026-11-23T18:10:00Z".parse().unwrap();
    let batch: Vec<Envelope> = (0..3)
        .flat_map(|li| {
            (0..400u32).map(move |n| Envelope {
                event: event(
                    format!("e{li}-{n}"),
                    &format!("ai{li}-{n}"),
                    EventType::Impression,
                    EventSource::ServerSide,
                    t0,
                    li,
                ),
                user_agent: None,
                ip: None,
            })
        })
        .collect();
    store.ingest(&batch, t0 + TimeDelta::minutes(1)).unwrap();
    // li0 at 12.50 per thousand, li1 at 0.75, li2 unpriced.
    let prices: std::collections::BTreeMap<String, u64> =
        [("li0".to_owned(), 12_500_000), ("li1".to_owned(), 750_000)].into();
    store.set_prices(std::sync::Arc::new(prices));
    let rows = store
        .report(
            interlude_store::GroupBy::LineItem,
            t0 - TimeDelta::hours(1),
            t0 + TimeDelta::hours(1),
        )
        .unwrap();
    let spend: Vec<(String, u64)> = rows
        .iter()
        .map(|r| (r.key.clone(), r.spend_micros))
        .collect();
    assert_eq!(
        spend,
        [
            ("li0".into(), 5_000_000),
            ("li1".into(), 300_000),
            ("li2".into(), 0)
        ]
    );
    let by_campaign = store
        .report(
            interlude_store::GroupBy::Campaign,
            t0 - TimeDelta::hours(1),
            t0 + TimeDelta::hours(1),
        )
        .unwrap();
    let total: u64 = by_campaign.iter().map(|r| r.spend_micros).sum();
    assert_eq!(total, 5_300_000, "spend sums across any grouping");
    let ledger = store.ledger().unwrap();
    assert_eq!(ledger[0].cpm_micros, Some(12_500_000));
    assert_eq!(ledger[0].spend_micros, 5_000_000);
}
