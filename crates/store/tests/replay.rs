//! Shadow replay of recorded events with a candidate configuration that widens the dedup window from 48 to
//! 72 hours. Production quarantined the reports that arrived 60 hours after the ad played (too old to
//! deduplicate); the candidate counts them. The diff names exactly those events, in exactly the cells they
//! change; the baseline replay reproduces production's reports; production's store is byte-identical
//! before and after.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use interlude_events::contract::{EventSource, EventType};
use interlude_events::testing::event;
use interlude_events::{Envelope, Policy};
use interlude_store::{EventStore, GroupBy, replay};
use sha2::{Digest, Sha256};

fn report_bytes(store: &EventStore, now: DateTime<Utc>) -> String {
    let from = now - TimeDelta::days(10);
    let to = now + TimeDelta::days(1);
    let mut out = String::new();
    for by in [
        GroupBy::LineItem,
        GroupBy::Campaign,
        GroupBy::Creative,
        GroupBy::Channel,
    ] {
        out.push_str(&serde_json::to_string(&store.report(by, from, to).unwrap()).unwrap());
    }
    out + &serde_json::to_string(&store.ledger().unwrap()).unwrap()
}

fn file_digest(path: &std::path::Path) -> Vec<u8> {
    Sha256::digest(std::fs::read(path).unwrap()).to_vec()
}

#[test]
fn widening_the_dedup_window_names_exactly_the_events_that_change_counts() {
    let now: DateTime<Utc> = "2026-11-23T20:00:00Z".parse().unwrap();
    let report = |id: &str, instance: &str, t: EventType, age_hours: i64, li: usize| {
        let mut e = event(
            id.into(),
            instance,
            t,
            EventSource::ClientSide,
            now - TimeDelta::hours(age_hours),
            li,
        );
        e.received_at = now;
        Envelope {
            event: e,
            user_agent: None,
            ip: None,
        }
    };
    let mut batch = Vec::new();
    // Fresh traffic: counted by both configurations.
    for n in 0..50 {
        batch.push(report(
            &format!("fresh{n}"),
            &format!("f{n}"),
            EventType::Impression,
            1,
            n % 3,
        ));
        batch.push(report(
            &format!("fresh{n}-s"),
            &format!("f{n}"),
            EventType::Start,
            1,
            n % 3,
        ));
    }
    // Reports 60 hours late (a device that was offline): outside 48 h, inside 72 h.
    let late = [
        ("late1", "l1", EventType::Impression, 1),
        ("late2", "l2", EventType::Impression, 4),
        ("late3", "l2", EventType::Complete, 4),
    ];
    for (id, instance, t, li) in late {
        batch.push(report(id, instance, t, 60, li));
    }
    // A second late report of an impression already in `late1`: a duplicate under the candidate, so it
    // changes no count and must not be named.
    batch.push(report("late1-again", "l1", EventType::Impression, 60, 1));
    // 100 hours late: too old for both.
    batch.push(report("ancient", "a1", EventType::Impression, 100, 1));
    // A bot, quarantined at the edge by both (the verdict travels in the log record).
    let mut bot = report("bot", "b1", EventType::Impression, 1, 2);
    bot.user_agent = Some("Googlebot/2.1".into());
    batch.push(bot);

    let prod_dir = tempfile::tempdir().unwrap();
    let production = EventStore::open(prod_dir.path(), Policy::default()).unwrap();
    production.ingest(&batch, now).unwrap();
    let before = report_bytes(&production, now);
    drop(production);
    let digest_before = file_digest(&prod_dir.path().join("events.redb"));

    let records = replay::read_embedded_log(prod_dir.path(), None, None).unwrap();
    assert_eq!(records.len(), batch.len());
    let prices: Arc<dyn interlude_events::Prices> =
        Arc::new(std::collections::BTreeMap::<String, u64>::new());
    let out = tempfile::tempdir().unwrap();
    let (base_dir, cand_dir) = (out.path().join("baseline"), out.path().join("candidate"));
    replay::run(&records, &Policy::default(), prices.clone(), &base_dir).unwrap();
    let wider = Policy {
        dedup_window_hours: 72,
        ..Policy::default()
    };
    let summary = replay::run(&records, &wider, prices, &cand_dir).unwrap();
    assert_eq!(
        summary.outcomes["quarantined:too_old"], 1,
        "only the 100-hour-old report"
    );
    assert_eq!(
        summary.outcomes["quarantined:bot_user_agent"], 1,
        "edge verdict replayed"
    );
    // A run never overwrites: the same output directory is refused.
    assert!(
        replay::run(
            &records,
            &wider,
            Arc::new(std::collections::BTreeMap::<String, u64>::new()),
            &cand_dir
        )
        .is_err()
    );

    // The baseline replay reproduces production's reports exactly.
    let baseline_store = EventStore::open(&base_dir, Policy::default()).unwrap();
    assert_eq!(
        report_bytes(&baseline_store, now),
        before,
        "baseline replay = production"
    );
    drop(baseline_store);

    let diff = replay::diff(&base_dir, &cand_dir).unwrap();
    assert_eq!(
        diff.changed_outcomes, 4,
        "3 late reports now counted, 1 now a duplicate instead of too old"
    );
    let by_line_item = &diff.dimensions["line_item"];
    let keys: Vec<&str> = by_line_item.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(
        keys,
        ["li1", "li4"],
        "exactly the line items of the late reports"
    );
    let named: BTreeSet<&str> = by_line_item
        .iter()
        .flat_map(|c| c.events.iter().map(|e| e.event_id.as_str()))
        .collect();
    assert_eq!(
        named,
        BTreeSet::from(["late1", "late2", "late3"]),
        "exactly the events that change counts"
    );
    for cell in by_line_item {
        let mut delta = cell.candidate;
        let gained = cell.events.len() as u64;
        delta.impressions -= cell.baseline.impressions;
        delta.completes -= cell.baseline.completes;
        assert_eq!(
            delta.impressions + delta.completes,
            gained,
            "the named events explain the whole change in {}",
            cell.key
        );
        // Counted as a correction of an hour already final (they are late), never merged into it.
        assert!(
            cell.events
                .iter()
                .all(|e| e.baseline == "quarantined:too_old" && e.candidate == "correction"),
            "{:?}",
            cell.events
        );
    }
    assert_eq!(diff.dimensions["channel"].len(), 1);
    assert_eq!(diff.dimensions["channel"][0].events.len(), 3);

    // Production untouched.
    assert_eq!(
        file_digest(&prod_dir.path().join("events.redb")),
        digest_before,
        "production file unchanged"
    );
    let production = EventStore::open(prod_dir.path(), Policy::default()).unwrap();
    assert_eq!(
        report_bytes(&production, now),
        before,
        "production reports byte-identical"
    );
}
