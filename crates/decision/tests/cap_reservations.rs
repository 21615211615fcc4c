//! Caps under burst: the sessions of one viewer deciding one break at once (several devices, several
//! players) each see the viewer's delivered past unchanged, so without reservations every one of them gets a
//! cap-1 line item. With reservations each decision holds the viewer's caps as it reserves, atomically, and
//! exactly one wins (issue 21, "Correctness under burst").

use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, Utc};
use interlude_decision::catalog::Catalog;
use interlude_decision::engine::{Engine, EngineConfig};
use interlude_decision::history::{MemoryHistory, PastImpression, ViewerHistory};
use interlude_decision::reservation::ReservationBook;
use interlude_decision::{PodRequest, ViewerContext};

fn now() -> DateTime<Utc> {
    "2026-11-23T20:00:00Z".parse().unwrap_or_default()
}

/// A capped standard line item `capped` (cap given as TOML), a second line item `sibling` of the same
/// campaign, and a house line item to fill what they cannot.
fn catalog(line_cap: &str, campaign_cap: &str) -> Catalog {
    let text = format!(
        r#"
[[advertisers]]
id = "a"
[[advertisers]]
id = "h"
[[campaigns]]
id = "c"
advertiser = "a"
{campaign_cap}
[[campaigns]]
id = "hc"
advertiser = "h"
[[line_items]]
id = "capped"
campaign = "c"
tier = "standard"
start = "2026-11-01T00:00:00Z"
end = "2026-12-01T00:00:00Z"
goal = {{ impressions = 1000000 }}
cpm = 20.0
pacing = "asap"
creatives = ["spot"]
{line_cap}
[[line_items]]
id = "sibling"
campaign = "c"
tier = "standard"
start = "2026-11-01T00:00:00Z"
end = "2026-12-01T00:00:00Z"
goal = {{ impressions = 1000000 }}
cpm = 10.0
pacing = "asap"
creatives = ["spot2"]
[[line_items]]
id = "house"
campaign = "hc"
tier = "house"
start = "2026-11-01T00:00:00Z"
end = "2026-12-01T00:00:00Z"
goal = {{ impressions = 1000000 }}
cpm = 0.0
creatives = ["filler"]
[[creatives]]
id = "spot"
advertiser = "a"
duration_secs = 15.0
approved = true
renditions = [{{ bandwidth = 1, playlist = "https://cdn.example/spot.m3u8" }}]
[[creatives]]
id = "spot2"
advertiser = "a"
duration_secs = 15.0
approved = true
renditions = [{{ bandwidth = 1, playlist = "https://cdn.example/spot2.m3u8" }}]
[[creatives]]
id = "filler"
advertiser = "h"
duration_secs = 15.0
approved = true
renditions = [{{ bandwidth = 1, playlist = "https://cdn.example/filler.m3u8" }}]
"#
    );
    Catalog::from_toml(&text).unwrap_or_else(|e| panic!("{e}"))
}

fn engine(catalog: Catalog, history: MemoryHistory) -> Engine {
    let counters = Arc::new(interlude_decision::testing::HourCounters::default());
    let config = EngineConfig {
        max_ads: 1,
        ..EngineConfig::default()
    };
    Engine::with_config(catalog, counters, Some(Arc::new(history)), config)
        .with_reservations(Arc::new(Mutex::new(ReservationBook::new())), None)
}

fn request(viewer: &str, session: &str) -> PodRequest {
    PodRequest {
        channel: "live1".into(),
        session_id: session.into(),
        break_id: "b1".into(),
        duration_secs: Some(15.0),
        viewer: ViewerContext {
            viewer_id: Some(viewer.into()),
            consent: Some(true),
            ..ViewerContext::default()
        },
    }
}

/// The line items served to `sessions` sessions of viewer `v1`, decided at once on as many threads.
fn burst(e: &Engine, sessions: usize) -> Vec<String> {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..sessions)
            .map(|k| s.spawn(move || e.decide(&request("v1", &format!("s{k}")), now(), false)))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| match h.join() {
                Ok(d) => d.pod.ads,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .filter_map(|a| a.line_item_id)
            .collect()
    })
}

fn count(served: &[String], id: &str) -> usize {
    served.iter().filter(|s| *s == id).count()
}

#[test]
fn five_sessions_of_one_viewer_at_one_break_get_a_cap_one_line_item_once() {
    let cap = "frequency_caps = [{ max = 1, window_hours = 24 }]";
    let e = engine(catalog(cap, ""), MemoryHistory::default());
    let served = burst(&e, 5);
    assert_eq!(count(&served, "capped"), 1, "{served:?}");
    // Another viewer is not held by v1's reservation.
    let other = e.decide(&request("v2", "s-other"), now(), false);
    assert_eq!(
        other
            .pod
            .ads
            .first()
            .and_then(|a| a.line_item_id.as_deref()),
        Some("capped")
    );
}

#[test]
fn a_cap_counts_the_delivered_past_plus_the_pending_holds() {
    let cap = "frequency_caps = [{ max = 3, window_hours = 24 }]";
    let mut history = MemoryHistory::default();
    history.viewers.insert(
        "v1".into(),
        Arc::new(ViewerHistory {
            impressions: vec![PastImpression {
                line_item_id: "capped".into(),
                creative_id: Some("spot".into()),
                session_id: Some("yesterday".into()),
                break_id: Some("b0".into()),
                at: now() - TimeDelta::hours(2),
                count: 1,
                pending: false,
            }],
        }),
    );
    let e = engine(catalog(cap, ""), history);
    let served = burst(&e, 20);
    assert_eq!(
        count(&served, "capped"),
        2,
        "one seen, three allowed: {served:?}"
    );
}

#[test]
fn a_campaign_cap_holds_across_its_line_items() {
    let cap = "frequency_caps = [{ max = 1, window_hours = 24 }]";
    let e = engine(catalog("", cap), MemoryHistory::default());
    let served = burst(&e, 8);
    assert_eq!(
        count(&served, "capped") + count(&served, "sibling"),
        1,
        "{served:?}"
    );
    assert_eq!(count(&served, "house"), 7, "{served:?}");
}

#[test]
fn a_viewer_who_left_gives_the_cap_back_at_once_not_at_the_reservation_ttl() {
    let cap = "frequency_caps = [{ max = 1, window_hours = 24 }]";
    let e = engine(catalog("", cap), MemoryHistory::default());
    let first = e.decide(&request("v1", "s1"), now(), false);
    let held = first.pod.ads.first().cloned().expect("an ad");
    let brand = held.line_item_id.clone().expect("a catalog line item");
    assert_ne!(brand, "house", "the campaign's line items come first");
    // The viewer's next session, while the first still holds the campaign's cap: the house line item.
    let second = e.decide(&request("v1", "s2"), now(), false);
    assert_eq!(
        second
            .pod
            .ads
            .first()
            .and_then(|a| a.line_item_id.as_deref()),
        Some("house")
    );
    // The first session expires before its break plays: its hold goes back now, counted as an expiry.
    e.abandon_ad(&held, now());
    let third = e.decide(&request("v1", "s3"), now(), false);
    assert_eq!(
        third
            .pod
            .ads
            .first()
            .and_then(|a| a.line_item_id.as_deref()),
        Some("capped")
    );
    let reservations = e.reservations().expect("reserving");
    assert_eq!(reservations.consumption("capped", now()).expired, 1);
}
