//! The engine over the example catalog: targeting, approval, caps from live counters, tiers, separation, and
//! the explanation of every line item's fate.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use interlude_decision::catalog::Catalog;
use interlude_decision::engine::{Engine, Verdict};
use interlude_decision::pod::Rejection;
use interlude_events::pipeline::Counters;
use interlude_stitch::{PodRequest, ViewerContext};

#[derive(Default)]
struct Seen(HashMap<(String, String), u64>);

impl Counters for Seen {
    fn delivered(&self, _: &str, _: DateTime<Utc>) -> u64 {
        0
    }
    fn viewer_impressions(&self, viewer: &str, line_item: &str, _: DateTime<Utc>) -> u64 {
        self.0
            .get(&(viewer.to_owned(), line_item.to_owned()))
            .copied()
            .unwrap_or(0)
    }
}

fn engine(seen: Seen) -> Engine {
    let catalog =
        Catalog::from_toml(include_str!("data/catalog.toml")).unwrap_or_else(|e| panic!("{e}"));
    Engine::new(catalog, Arc::new(seen), 6, 500)
}

fn request(country: &str, genre: &str, viewer: &str) -> PodRequest {
    PodRequest {
        channel: "live1".into(),
        session_id: format!("session-{viewer}"),
        break_id: "b1".into(),
        duration_secs: Some(60.0),
        viewer: ViewerContext {
            viewer_id: Some(viewer.into()),
            device: Some("tv".into()),
            country: Some(country.into()),
            genre: Some(genre.into()),
            ..ViewerContext::default()
        },
    }
}

fn now() -> DateTime<Utc> {
    "2026-11-23T20:00:00Z".parse().unwrap_or_default()
}

fn verdict<'a>(d: &'a interlude_decision::engine::Decision, li: &str) -> &'a Verdict {
    &d.explanation
        .iter()
        .find(|(id, _)| id == li)
        .unwrap_or_else(|| panic!("no verdict for {li}"))
        .1
}

#[test]
fn a_french_tv_viewer_of_the_final_gets_sponsor_first_then_guaranteed_then_house() {
    let e = engine(Seen::default());
    let d = e.decide(&request("FR", "football", "v1"), now(), true);
    let creatives: Vec<&str> = d.pod.ads.iter().map(|a| a.creative_id.as_str()).collect();
    assert_eq!(
        creatives,
        ["brewer-15", "carco-30", "promo-10"],
        "{:?}",
        d.explanation
    );
    assert_eq!(d.unfilled_ms, 5_000, "slate fills the rest");
    assert_eq!(d.pod.ads[1].renditions[0].resolution, Some((640, 360)));
    assert_eq!(
        verdict(&d, "rival-all"),
        &Verdict::NoServableCreative,
        "third-party VAST only: not yet fetched"
    );
    let ids: Vec<&str> = d
        .pod
        .ads
        .iter()
        .map(|a| a.ad_instance_id.as_str())
        .collect();
    assert_eq!(
        ids,
        ["session-v1-b1-0", "session-v1-b1-1", "session-v1-b1-2"]
    );
}

#[test]
fn kids_content_excludes_the_beer_sponsor_and_other_countries_miss_carco() {
    let e = engine(Seen::default());
    let d = e.decide(&request("DE", "kids", "v2"), now(), true);
    assert_eq!(verdict(&d, "sponsor-open"), &Verdict::TargetingMiss);
    assert_eq!(verdict(&d, "carco-fr-tv"), &Verdict::TargetingMiss);
    assert_eq!(verdict(&d, "promo"), &Verdict::Chosen);
}

#[test]
fn a_viewer_at_the_cap_does_not_get_the_line_item_again() {
    let mut seen = Seen::default();
    seen.0.insert(("v3".into(), "carco-fr-tv".into()), 1);
    let e = engine(seen);
    let d = e.decide(&request("FR", "football", "v3"), now(), true);
    assert_eq!(verdict(&d, "carco-fr-tv"), &Verdict::Capped);
    assert!(
        d.pod
            .ads
            .iter()
            .all(|a| a.line_item_id.as_deref() != Some("carco-fr-tv"))
    );
}

#[test]
fn a_short_break_reports_why_longer_ads_were_left_out() {
    let e = engine(Seen::default());
    let mut r = request("FR", "football", "v4");
    r.duration_secs = Some(20.0);
    let d = e.decide(&r, now(), true);
    let creatives: Vec<&str> = d.pod.ads.iter().map(|a| a.creative_id.as_str()).collect();
    assert_eq!(creatives, ["brewer-15"]);
    // carco's 30 s creative does not fit a 20 s break at all; the promo does not fit what the sponsor left.
    assert_eq!(verdict(&d, "carco-fr-tv"), &Verdict::NoServableCreative);
    assert_eq!(
        verdict(&d, "promo"),
        &Verdict::Pod(Rejection::Duration { left_ms: 5_000 })
    );
}

#[test]
fn deciding_many_viewers_at_once_gives_each_the_pod_it_would_get_alone() {
    let e = engine(Seen::default());
    let requests: Vec<PodRequest> = (0..40)
        .map(|v| {
            let country = ["FR", "DE", "BE"][v % 3];
            let genre = ["football", "kids"][v % 2];
            request(country, genre, &format!("v{v}"))
        })
        .collect();
    let together = e.decide_many(&requests, now());
    for (r, d) in requests.iter().zip(together) {
        assert_eq!(d.pod, e.decide(r, now(), false).pod);
    }
}
