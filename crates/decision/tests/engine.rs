//! The engine over the example catalog: targeting, approval, caps from live counters, tiers, separation, and
//! the explanation of every line item's fate.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use interlude_decision::catalog::Catalog;
use interlude_decision::engine::{Engine, Verdict};
use interlude_decision::external::ExternalAd;
use interlude_decision::pod::{Rejection, Tier};
use interlude_decision::{PodAd, PodRequest, ViewerContext};
use interlude_events::Counters;

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

/// The same counts behind the one-read seam ([`Counters::viewer_hours`]), all in the hour before `now`.
struct SeenHours(Seen);

impl Counters for SeenHours {
    fn delivered(&self, _: &str, _: DateTime<Utc>) -> u64 {
        0
    }
    fn viewer_impressions(&self, _: &str, _: &str, _: DateTime<Utc>) -> u64 {
        panic!(
            "an engine over counters that read a viewer's hours in one go must not ask per line item"
        )
    }
    fn viewer_hours(
        &self,
        viewer: &str,
        _: DateTime<Utc>,
    ) -> Option<Vec<interlude_events::ViewerHour>> {
        let hour = (now().timestamp() - 1).div_euclid(3600) * 3600;
        Some(
            (self.0)
                .0
                .iter()
                .filter(|((v, _), _)| v == viewer)
                .map(|((_, li), &n)| interlude_events::ViewerHour {
                    line_item_id: li.clone(),
                    hour,
                    impressions: n,
                })
                .collect(),
        )
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
        &Verdict::ThirdPartyUnavailable,
        "third-party VAST only: not fetched by a catalog-only decision"
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

/// A direct-sold creative delivered as an MP4 is decided as any other and reaches the stitcher with what
/// conditioning needs (it has no renditions to stitch as it is).
#[test]
fn a_creative_delivered_as_files_is_chosen_with_its_conditioning_source() {
    let mut catalog =
        Catalog::from_toml(include_str!("data/catalog.toml")).unwrap_or_else(|e| panic!("{e}"));
    let carco = catalog
        .creatives
        .iter_mut()
        .find(|c| c.id == "carco-30")
        .unwrap_or_else(|| panic!("carco-30"));
    carco.renditions.clear();
    carco.media_files = vec![interlude_decision::catalog::MediaFile {
        url: "https://cdn.example/carco-30.mp4".into(),
        mime_type: "video/mp4".into(),
        width: 1920,
        height: 1080,
        bitrate_kbps: None,
        mezzanine: false,
    }];
    catalog.validate().unwrap_or_else(|e| panic!("{e}"));
    let e = Engine::new(catalog, Arc::new(Seen::default()), 6, 500);
    let d = e.decide(&request("FR", "football", "v1"), now(), true);
    let ad = d
        .pod
        .ads
        .iter()
        .find(|a| a.creative_id == "carco-30")
        .unwrap_or_else(|| panic!("carco-30 is still chosen: {:?}", d.explanation));
    assert!(ad.renditions.is_empty());
    let source = ad.source.as_ref().unwrap_or_else(|| panic!("a source"));
    assert_eq!(source.creative_id.as_deref(), Some("carco-30"));
    assert_eq!(source.files[0].uri, "https://cdn.example/carco-30.mp4");
    let others = d.pod.ads.iter().filter(|a| a.creative_id != "carco-30");
    assert!(others.into_iter().all(|a| a.source.is_none()));
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
    let seen = || {
        let mut seen = Seen::default();
        seen.0.insert(("v3".into(), "carco-fr-tv".into()), 1);
        seen
    };
    let catalog =
        Catalog::from_toml(include_str!("data/catalog.toml")).unwrap_or_else(|e| panic!("{e}"));
    // Per line item, and from the viewer's hours read once: the same verdicts.
    for e in [
        engine(seen()),
        Engine::new(catalog, Arc::new(SeenHours(seen())), 6, 500),
    ] {
        let d = e.decide(&request("FR", "football", "v3"), now(), true);
        assert_eq!(verdict(&d, "carco-fr-tv"), &Verdict::Capped);
        assert!(
            d.pod
                .ads
                .iter()
                .all(|a| a.line_item_id.as_deref() != Some("carco-fr-tv"))
        );
        // Another viewer is not capped by v3's history.
        let d = e.decide(&request("FR", "football", "v4"), now(), true);
        assert_ne!(verdict(&d, "carco-fr-tv"), &Verdict::Capped);
    }
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

#[test]
fn a_herd_decided_on_several_threads_gets_the_pods_it_would_get_one_by_one() {
    // A realistic book and herd (caps, rotation, positions, separation), large enough to be split.
    let at = now();
    let catalog = interlude_decision::testing::realistic_catalog(at, 1_500, 21);
    let herd = interlude_decision::testing::herd(&catalog, 1_200, at, 22);
    let e = Engine::with_history(catalog, herd.history.clone(), 6, 500);
    let together = e.decide_many_on(&herd.requests, at, 3);
    assert_eq!(together.len(), herd.requests.len());
    let mut ads = 0;
    for (r, d) in herd.requests.iter().zip(together) {
        assert_eq!(d.pod, e.decide(r, at, false).pod);
        ads += d.pod.ads.len();
    }
    assert!(ads > herd.requests.len() * 3, "pods are filled: {ads} ads");
}

#[test]
fn content_exclusions_override_targeting() {
    let e = engine(Seen::default());
    // The sponsor's own targeting leaves kids out; with it removed, the catalog's exclusion still does.
    let mut catalog = e.catalog().clone();
    catalog.line_items[0].targeting = None;
    let e = Engine::new(catalog, Arc::new(Seen::default()), 6, 500);
    let d = e.decide(&request("FR", "kids", "v9"), now(), true);
    assert_eq!(
        verdict(&d, "sponsor-open"),
        &Verdict::ContentExclusion {
            category: "alcohol".into()
        }
    );
    assert!(d.pod.ads.iter().all(|a| a.creative_id != "brewer-15"));
}

fn external(
    id: &str,
    tier: Tier,
    value: f64,
    secs: u32,
    advertiser: &str,
    cat: &[&str],
) -> ExternalAd {
    ExternalAd {
        id: id.into(),
        line_item_id: None,
        tier,
        value,
        duration_ms: secs * 1000,
        advertiser: advertiser.into(),
        categories: cat.iter().map(|c| c.to_string()).collect(),
        ad: PodAd {
            ad_instance_id: String::new(),
            creative_id: format!("{id}-creative"),
            campaign_id: None,
            line_item_id: None,
            duration_secs: f64::from(secs),
            renditions: Vec::new(),
            impression_urls: vec![format!("https://3p.example/{id}")],
            tracking_urls: Vec::new(),
            bid: None,
            source: None,
        },
    }
}

#[test]
fn a_hybrid_pod_sells_what_direct_demand_leaves_then_house_fills() {
    let e = engine(Seen::default());
    let r = request("FR", "football", "v1");
    let direct = e.decide_direct(&r, now());
    // Sponsor 15 s + CarCo 30 s of 60 s: 15 s for the auction; house is not counted yet.
    assert_eq!(direct.open_ms, 15_000);
    assert_eq!(direct.ads_left, 4);
    assert_eq!(direct.advertisers, ["brewer.example", "carco.example"]);
    for c in ["beer", "alcohol", "auto"] {
        assert!(direct.blocked_categories.iter().any(|b| b == c), "{c}");
    }
    assert_eq!(direct.tags.len(), 1);
    assert_eq!(direct.tags[0].line_item_id, "rival-all");
    assert_eq!(
        direct.tags[0].tag,
        "https://ads.example.net/vast?slot=rival"
    );

    // The rival's tag resolved to a 10 s ad (it fits, but shares "auto" with CarCo); two bids came back.
    let mut rival = PodAd {
        duration_secs: 10.0,
        ..external("x", Tier::Standard, 0.0, 10, "", &[]).ad
    };
    rival.creative_id = "rival-3p".into();
    let rival = e.tag_ad(&direct.tags[0], rival).unwrap();
    let bids = [
        external(
            "bid:dsp:1",
            Tier::Programmatic,
            18.0,
            10,
            "shoes.example",
            &[],
        ),
        external("bid:dsp:2", Tier::Programmatic, 30.0, 30, "tv.example", &[]),
    ];
    let mut offered = vec![rival];
    offered.extend(bids);
    let d = e.decide_with(&r, now(), true, &offered);
    let creatives: Vec<&str> = d.pod.ads.iter().map(|a| a.creative_id.as_str()).collect();
    // The 30 s bid does not fit; the 10 s one does; the house promo no longer fits the 5 s left.
    assert_eq!(
        creatives,
        ["brewer-15", "carco-30", "bid:dsp:1-creative"],
        "{:?}",
        d.explanation
    );
    assert_eq!(d.unfilled_ms, 5_000);
    assert_eq!(d.pod.ads[2].ad_instance_id, "session-v1-b1-2");
    assert_eq!(
        d.pod.ads[2].impression_urls,
        ["https://3p.example/bid:dsp:1"]
    );
    assert!(matches!(
        verdict(&d, "rival-all"),
        Verdict::Pod(Rejection::CompetitiveSeparation { .. })
    ));
    assert!(matches!(
        verdict(&d, "bid:dsp:2"),
        Verdict::Pod(Rejection::Duration { .. })
    ));
    assert!(matches!(
        verdict(&d, "promo"),
        Verdict::Pod(Rejection::Duration { .. })
    ));
}

#[test]
fn daypart_targeting_reads_the_viewers_local_clock() {
    let toml = r#"
        [[advertisers]]
        id = "a"
        [[campaigns]]
        id = "c"
        advertiser = "a"
        [[line_items]]
        id = "evening"
        campaign = "c"
        tier = "standard"
        start = "2026-01-01T00:00:00Z"
        end = "2027-01-01T00:00:00Z"
        goal = { impressions = 1000 }
        cpm = 5.0
        creatives = ["cr"]
        targeting = { all = [
          { is = { field = "hour", values = ["20", "21", "22"] } },
          { is = { field = "weekday", values = ["mon"] } },
        ] }
        [[creatives]]
        id = "cr"
        advertiser = "a"
        duration_secs = 10.0
        approved = true
        renditions = [{ bandwidth = 1, playlist = "https://cdn.example/cr.m3u8" }]
    "#;
    let e = Engine::new(
        Catalog::from_toml(toml).unwrap(),
        Arc::new(Seen::default()),
        6,
        500,
    );
    // 2026-11-23T20:00Z is a Monday: 21:00 in Paris, 15:00 in New York, 05:00 Tuesday in Tokyo.
    let chosen = |tz: Option<&str>| {
        let mut r = request("FR", "football", "v1");
        r.viewer.timezone = tz.map(str::to_owned);
        !e.decide(&r, now(), false).pod.ads.is_empty()
    };
    assert!(chosen(Some("Europe/Paris")));
    assert!(chosen(None), "UTC: 20:00 Monday");
    assert!(!chosen(Some("America/New_York")));
    assert!(!chosen(Some("Asia/Tokyo")));
}

#[test]
fn guaranteed_line_items_behind_schedule_go_first() {
    struct Delivered;
    impl Counters for Delivered {
        fn delivered(&self, line_item: &str, _: DateTime<Utc>) -> u64 {
            if line_item == "ahead" { 900 } else { 100 }
        }
        fn viewer_impressions(&self, _: &str, _: &str, _: DateTime<Utc>) -> u64 {
            0
        }
    }
    let line_item = |id: &str, cpm: f64| {
        format!(
            r#"
            [[line_items]]
            id = "{id}"
            campaign = "{id}"
            tier = "guaranteed"
            start = "2026-11-23T00:00:00Z"
            end = "2026-11-24T00:00:00Z"
            goal = {{ impressions = 1000 }}
            cpm = {cpm}
            creatives = ["{id}-20"]
            [[campaigns]]
            id = "{id}"
            advertiser = "{id}"
            [[advertisers]]
            id = "{id}"
            [[creatives]]
            id = "{id}-20"
            advertiser = "{id}"
            duration_secs = 20.0
            approved = true
            renditions = [{{ bandwidth = 1, playlist = "https://cdn.example/{id}.m3u8" }}]
            "#
        )
    };
    let toml = line_item("ahead", 30.0) + &line_item("behind", 10.0);
    let e = Engine::new(
        Catalog::from_toml(&toml).unwrap(),
        Arc::new(Delivered),
        6,
        500,
    );
    let mut r = request("FR", "football", "v1");
    r.duration_secs = Some(20.0);
    let first = |e: &Engine| e.decide(&r, now(), false).pod.ads[0].line_item_id.clone();
    // Before pacing has run both are on schedule; catalog order breaks the tie.
    assert_eq!(first(&e).as_deref(), Some("ahead"));
    // At 20:00, 5/6 of the flight is gone: "ahead" has 90% delivered, "behind" 10%, whatever their CPMs.
    e.refresh_pacing(now());
    assert_eq!(first(&e).as_deref(), Some("behind"));
}

/// The example catalog with `promo` sold on an audience segment.
fn engine_with_audience_line_item(seen: Seen) -> Engine {
    let text = include_str!("data/catalog.toml").replace(
        "creatives = [\"promo-10\"]",
        "creatives = [\"promo-10\"]\ntargeting = { is = { field = \"segment\", values = [\"car-intenders\"] } }",
    );
    let catalog = Catalog::from_toml(&text).unwrap_or_else(|e| panic!("{e}"));
    Engine::new(catalog, Arc::new(seen), 6, 500)
}

fn consenting(consent: Option<bool>) -> PodRequest {
    let mut r = request("FR", "football", "v9");
    r.viewer.segments = vec!["car-intenders".into()];
    r.viewer.consent = consent;
    r
}

#[test]
fn without_consent_audience_targeting_and_caps_are_off_and_the_explanation_says_so() {
    let mut seen = Seen::default();
    seen.0.insert(("v9".into(), "carco-fr-tv".into()), 1);
    let e = engine_with_audience_line_item(seen);
    // Consent to personalise: the audience line item matches, the capped one is capped.
    let d = e.decide(&consenting(Some(true)), now(), true);
    assert_eq!(verdict(&d, "promo"), &Verdict::Chosen);
    assert_eq!(verdict(&d, "carco-fr-tv"), &Verdict::Capped);
    // No decision made about consent (a caller without privacy signals): not restricted.
    let d = e.decide(&consenting(None), now(), true);
    assert_eq!(verdict(&d, "promo"), &Verdict::Chosen);
    // Refused: contextual only. The segment is not used, and the explanation names consent as the reason;
    // the viewer's id is not used for caps either.
    let d = e.decide(&consenting(Some(false)), now(), true);
    assert_eq!(verdict(&d, "promo"), &Verdict::NeedsConsent);
    assert_ne!(verdict(&d, "carco-fr-tv"), &Verdict::Capped);
    assert!(
        d.pod
            .ads
            .iter()
            .all(|a| a.line_item_id.as_deref() != Some("promo"))
    );
    // Contextual targeting (country, device, genre) still applies without consent.
    assert_eq!(verdict(&d, "sponsor-open"), &Verdict::Chosen);
}

#[test]
fn a_deal_bid_is_preferred_over_a_higher_open_auction_bid() {
    let e = engine(Seen::default());
    let r = request("FR", "football", "v1");
    // 15 s left after direct demand: room for one of the two 10 s bids.
    let offered = [
        external(
            "bid:dsp:open",
            Tier::Programmatic,
            40.0,
            10,
            "open.example",
            &[],
        ),
        external(
            "bid:dsp:deal",
            Tier::PrivateMarketplace,
            12.0,
            10,
            "deal.example",
            &[],
        ),
    ];
    let d = e.decide_with(&r, now(), true, &offered);
    let creatives: Vec<&str> = d.pod.ads.iter().map(|a| a.creative_id.as_str()).collect();
    assert!(
        creatives.contains(&"bid:dsp:deal-creative")
            && !creatives.contains(&"bid:dsp:open-creative"),
        "{creatives:?} {:?}",
        d.explanation
    );
}
