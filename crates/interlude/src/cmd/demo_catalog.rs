//! The demo's catalog: a beer sponsor opening every pod (but not in kids' content), a guaranteed car campaign
//! for TV viewers, a programmatic-tier rival car brand (kept apart from the first by competitive separation),
//! and house promos to fill (the channel's own, and two of its shows', each sold as its own advertiser); with a
//! third-party tag, a guaranteed line item whose VAST offers only a plain MP4
//! (conditioned before it plays).
//!
//! A pod takes one ad per advertiser and keeps the car brands apart, so the advertisers bound how long a pod
//! can be: with the two show promos, a 120 s break fills (15 + 15 + 30 + 30 + 30 s); without them every pod
//! stopped at 60 s, however long the break. They are house ads, so they only take what paid demand leaves.
//!
//! Given the demo's audience ([`DemoAudience`]), flights span the run and goals are sized to the slots the
//! run offers, so pacing is visible within it: the car campaign is paced evenly to half of the slots after the
//! sponsor (the rival takes the rest) and capped at two per viewer an hour, and the dashboard shows each line item
//! on pace rather than "behind" a goal of ten million. Without one (the benchmarks), every goal is out of
//! reach, so nothing but the pod rules shapes what is served.

use interlude_decision::catalog::{
    Advertiser, Campaign, CapScope, Catalog, ContentExclusion, Creative, FrequencyCap, Goal,
    LineItem, Rendition,
};
use interlude_decision::pacing::PacingMode;
use interlude_decision::pod::Tier;
use interlude_decision::targeting::{Expr, Field};

/// What the demo's run offers, to size flights and goals by.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DemoAudience {
    /// Simulated viewers.
    pub(crate) viewers: u64,
    /// Seconds the run lasts (the flights end then).
    pub(crate) run_secs: u64,
    /// Seconds between break starts.
    pub(crate) break_interval_secs: u64,
    /// Seconds a break lasts (the demo lets the one running at the end finish).
    pub(crate) break_duration_secs: u64,
}

impl DemoAudience {
    /// Breaks the run sees: one per interval begun. A run starts at any point of the origin's schedule, so it
    /// sees one break fewer or a part of one more (joined mid-way, or let finish at the end).
    pub(crate) fn breaks(&self) -> u64 {
        self.run_secs
            .div_ceil(self.break_interval_secs.max(1))
            .max(1)
    }

    /// Ad slots of one position across the run: one per viewer per break.
    pub(crate) fn slots(&self) -> u64 {
        self.viewers.max(1).saturating_mul(self.breaks())
    }
}

/// The catalog, its flights starting at `now`. See the module documentation.
pub(crate) fn demo_catalog(
    renditions: impl Fn(&str) -> Vec<Rendition>,
    mp4_tag: Option<String>,
    audience: Option<DemoAudience>,
    now: chrono::DateTime<chrono::Utc>,
) -> Catalog {
    // A little before now, so the first break of the run is inside every flight; the end is the run's end
    // and the break it lets finish, or a month away for the benchmarks.
    let (start, end) = match audience {
        Some(a) => (
            now - chrono::TimeDelta::seconds(5),
            now + chrono::TimeDelta::seconds(
                i64::try_from(a.run_secs + a.break_duration_secs).unwrap_or(i64::MAX / 2) + 5,
            ),
        ),
        None => (
            now - chrono::TimeDelta::days(1),
            now + chrono::TimeDelta::days(30),
        ),
    };
    let slots = audience.map(|a| a.slots());
    // A share of the run's slots, or out of reach without an audience.
    let goal = |share: f64| match slots {
        Some(slots) => Goal::Impressions(((slots as f64 * share).round() as u64).max(1)),
        None => Goal::Impressions(10_000_000),
    };
    let advertiser = |id: &str, categories: &[&str]| Advertiser {
        id: id.into(),
        name: id.into(),
        categories: categories.iter().map(|c| (*c).to_owned()).collect(),
        domain: Some(format!("{id}.example")),
    };
    let campaign = |id: &str, advertiser: &str| Campaign {
        id: id.into(),
        advertiser: advertiser.into(),
        frequency_caps: Vec::new(),
    };
    let creative = |id: &str, advertiser: &str, asset: &str, secs: f64| Creative {
        id: id.into(),
        advertiser: advertiser.into(),
        duration_secs: secs,
        renditions: renditions(&format!("ads/{asset}")),
        approved: true,
        categories: Vec::new(),
        vast_tag: None,
        media_files: Vec::new(),
    };
    let line_item = |id: &str,
                     campaign: &str,
                     tier: Tier,
                     cpm: f64,
                     creative: &str,
                     targeting: Option<Expr>| LineItem {
        id: id.into(),
        campaign: campaign.into(),
        tier,
        start,
        end,
        // ASAP line items take what traffic offers: twice the run's slots keeps the goal from being what stops
        // them (reservations of ads never shown, e.g. to viewers who joined mid-ad, are held for five minutes).
        goal: goal(2.0),
        cpm,
        pacing: PacingMode::Asap,
        frequency_caps: Vec::new(),
        targeting,
        creatives: vec![creative.into()],
        first_in_pod: tier == Tier::Sponsorship,
    };
    let is = |field: Field, v: &str| Expr::Is {
        field,
        values: vec![v.into()],
    };
    let mut carco = line_item(
        "carco-tv",
        "carco-q4",
        Tier::Guaranteed,
        24.0,
        "carco-15",
        Some(is(Field::Device, "tv")),
    );
    // The campaign the README calls "a capped guaranteed campaign": half the slots after the sponsor, spread
    // evenly over the run, and at most two ads an hour to one viewer (caps count viewers with an id; the
    // demo's viewers send one). Measured: the first break takes most of its slots (no audience forecast yet),
    // then pacing and the cap leave the rival a share of every later break.
    carco.goal = goal(0.5);
    carco.pacing = PacingMode::Even;
    let mut carco_campaign = campaign("carco-q4", "carco");
    carco_campaign.frequency_caps = vec![FrequencyCap {
        max: 2,
        window_hours: 1,
        scope: CapScope::Own,
    }];
    let mut catalog = Catalog {
        exclusions: vec![ContentExclusion {
            when: is(Field::Genre, "kids"),
            categories: vec!["beer".into()],
        }],
        advertisers: vec![
            advertiser("brewer", &["beer"]),
            advertiser("carco", &["auto"]),
            advertiser("rival-cars", &["auto"]),
            advertiser("house", &[]),
            advertiser("house-news", &[]),
            advertiser("house-drama", &[]),
        ],
        campaigns: vec![
            campaign("sponsor", "brewer"),
            carco_campaign,
            campaign("rival-q4", "rival-cars"),
            campaign("promos", "house"),
            campaign("news-promos", "house-news"),
            campaign("drama-promos", "house-drama"),
        ],
        line_items: vec![
            line_item(
                "sponsor-open",
                "sponsor",
                Tier::Sponsorship,
                45.0,
                "brewer-15",
                Some(Expr::Not(Box::new(is(Field::Genre, "kids")))),
            ),
            carco,
            line_item(
                "rival-rtb",
                "rival-q4",
                Tier::Programmatic,
                30.0,
                "rival-15",
                None,
            ),
            line_item("promo", "promos", Tier::House, 0.0, "promo-30", None),
            line_item(
                "promo-news",
                "news-promos",
                Tier::House,
                0.0,
                "news-30",
                None,
            ),
            line_item(
                "promo-drama",
                "drama-promos",
                Tier::House,
                0.0,
                "drama-30",
                None,
            ),
        ],
        creatives: vec![
            creative("brewer-15", "brewer", "ad15", 15.0),
            creative("carco-15", "carco", "ad15", 15.0),
            creative("rival-15", "rival-cars", "ad15", 15.0),
            creative("promo-30", "house", "ad30", 30.0),
            creative("news-30", "house-news", "ad30", 30.0),
            creative("drama-30", "house-drama", "ad30", 30.0),
        ],
    };
    if let Some(tag) = mp4_tag {
        catalog
            .advertisers
            .push(advertiser("loud-soda", &["soft-drinks"]));
        catalog.campaigns.push(campaign("loud-q4", "loud-soda"));
        // Guaranteed above the car campaign, so the demo's TV viewers get it once it is conditioned. TV only:
        // interstitial (SGAI) asset lists do not carry conditioned ads yet, so elsewhere it would leave its
        // slot to slate (and hls.js was seen to stall 12 s into a 21 s slate asset).
        let mut loud = line_item(
            "loud-3p",
            "loud-q4",
            Tier::Guaranteed,
            30.0,
            "loud-mp4",
            Some(is(Field::Device, "tv")),
        );
        loud.goal = goal(0.2);
        loud.pacing = PacingMode::Even;
        catalog.line_items.push(loud);
        catalog.creatives.push(Creative {
            renditions: Vec::new(),
            vast_tag: Some(tag),
            media_files: Vec::new(),
            ..creative("loud-mp4", "loud-soda", "ad15", 10.0)
        });
    }
    catalog
}

#[cfg(test)]
mod tests {
    use super::*;

    fn audience() -> DemoAudience {
        DemoAudience {
            viewers: 1000,
            run_secs: 140,
            break_interval_secs: 40,
            break_duration_secs: 30,
        }
    }

    fn renditions(path: &str) -> Vec<Rendition> {
        vec![Rendition {
            bandwidth: 1_000_000,
            resolution: None,
            playlist: format!("http://127.0.0.1:1/{path}/index.m3u8"),
        }]
    }

    fn goal_of(catalog: &Catalog, id: &str) -> u64 {
        let l = catalog
            .line_items
            .iter()
            .find(|l| l.id == id)
            .expect("the demo catalog has this line item");
        Catalog::goal_impressions(l)
    }

    #[test]
    fn demo_goals_are_sized_to_the_runs_audience_and_flights_span_the_run() {
        let now = chrono::Utc::now();
        let catalog = demo_catalog(renditions, None, Some(audience()), now);
        // 1000 viewers × 4 breaks in 140 s (one every 40 s); ASAP goals twice that.
        assert_eq!(goal_of(&catalog, "sponsor-open"), 8000);
        assert_eq!(goal_of(&catalog, "carco-tv"), 2000);
        for l in &catalog.line_items {
            assert!(
                l.start <= now && l.end > now + chrono::TimeDelta::seconds(170),
                "{}",
                l.id
            );
            assert!(l.end < now + chrono::TimeDelta::seconds(200), "{}", l.id);
        }
        let carco = catalog.line_items.iter().find(|l| l.id == "carco-tv");
        assert_eq!(carco.map(|l| l.pacing), Some(PacingMode::Even));
        let capped = catalog.campaigns.iter().find(|c| c.id == "carco-q4");
        assert_eq!(capped.map(|c| c.frequency_caps.len()), Some(1));
    }

    #[test]
    fn the_demo_catalog_is_valid_with_and_without_an_audience() {
        let now = chrono::Utc::now();
        for audience in [Some(audience()), None] {
            let catalog = demo_catalog(
                renditions,
                Some("http://127.0.0.1:1/vast.xml".into()),
                audience,
                now,
            );
            let text = toml::to_string(&catalog).expect("the catalog renders as TOML");
            let back = Catalog::from_toml(&text).expect("and loads as the server loads it");
            assert_eq!(back.line_items.len(), 7);
        }
    }

    struct NothingDelivered;

    impl interlude_events::Counters for NothingDelivered {
        fn delivered(&self, _: &str, _: chrono::DateTime<chrono::Utc>) -> u64 {
            0
        }
        fn viewer_impressions(&self, _: &str, _: &str, _: chrono::DateTime<chrono::Utc>) -> u64 {
            0
        }
    }

    fn pod_secs(device: Option<&str>, break_secs: f64) -> (f64, u32) {
        use interlude_decision::{PodRequest, ViewerContext};
        let now = chrono::Utc::now();
        let catalog = demo_catalog(renditions, None, Some(audience()), now);
        let text = toml::to_string(&catalog).expect("the catalog renders as TOML");
        let catalog = Catalog::from_toml(&text).expect("and loads");
        let engine = interlude_decision::engine::Engine::new(
            catalog,
            std::sync::Arc::new(NothingDelivered),
            6,
            500,
        );
        let request = PodRequest {
            channel: "live1".into(),
            session_id: "s1".into(),
            break_id: "b1".into(),
            duration_secs: Some(break_secs),
            viewer: ViewerContext {
                device: device.map(str::to_owned),
                ..ViewerContext::default()
            },
        };
        let decision = engine.decide(&request, now, true);
        let secs = decision.pod.ads.iter().map(|a| a.duration_secs).sum();
        (secs, decision.unfilled_ms)
    }

    #[test]
    fn a_long_break_fills_from_the_demo_catalog_not_just_its_first_minute() {
        // One ad per advertiser and the car brands apart: 60 s was the most any pod held before.
        for device in [Some("tv"), None] {
            assert_eq!(pod_secs(device, 120.0), (120.0, 0), "{device:?}");
            assert_eq!(pod_secs(device, 60.0).1, 0, "{device:?}");
        }
        // The demo's own 30 s breaks: the sponsor opens, a car brand follows.
        assert_eq!(pod_secs(Some("tv"), 30.0), (30.0, 0));
    }

    #[test]
    fn without_an_audience_goals_stay_out_of_reach() {
        let catalog = demo_catalog(renditions, None, None, chrono::Utc::now());
        assert!(
            catalog
                .line_items
                .iter()
                .all(|l| Catalog::goal_impressions(l) == 10_000_000)
        );
    }
}
