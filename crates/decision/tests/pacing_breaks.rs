//! Break-aware even pacing with reservations in the loop, over a simulated day: a 24-hour flight, a diurnal
//! audience (100 viewers at 04:00 to 1,000 at 16:00, the actual audience ±5 % off the forecast), a break every
//! 6 minutes, every viewer decided through the engine, and 4 % of the reservations expiring undelivered
//! (viewers who left before the break). Each hour delivers within 2 % of its planned share, and the flight
//! ends at its goal without passing it.

use std::f64::consts::TAU;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, Utc};
use interlude_decision::catalog::Catalog;
use interlude_decision::engine::Engine;
use interlude_decision::pacing::AudienceForecast;
use interlude_decision::reservation::{ReservationBook, Reservations};
use interlude_decision::testing::HourCounters;
use interlude_decision::{PodRequest, ViewerContext};
use interlude_events::Counters;

const GOAL: u64 = 40_000;
const BREAK_EVERY_MIN: i64 = 6;

fn start() -> DateTime<Utc> {
    "2026-11-23T00:00:00Z".parse().unwrap_or_default()
}

/// Viewers expected at a break at `at`.
fn forecast(at: DateTime<Utc>) -> f64 {
    let hours = (at - start()).num_seconds() as f64 / 3600.0;
    100.0 + 900.0 * (0.5 - 0.5 * ((hours - 4.0) / 24.0 * TAU).cos())
}

/// Viewers who actually come: ±5 % off the forecast, slowly.
fn actual(at: DateTime<Utc>) -> usize {
    let hours = (at - start()).num_seconds() as f64 / 3600.0;
    (forecast(at) * (1.0 + 0.05 * (hours / 3.0 * TAU).sin())).round() as usize
}

struct Diurnal;

impl AudienceForecast for Diurnal {
    fn break_audience(&self, _: &str, at: DateTime<Utc>) -> f64 {
        forecast(at)
    }

    fn audience_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
        let mut t = start();
        let mut sum = 0.0;
        while t < to {
            if t >= from {
                sum += forecast(t);
            }
            t += TimeDelta::minutes(BREAK_EVERY_MIN);
        }
        sum
    }
}

const CATALOG: &str = r#"
[[advertisers]]
id = "a"
[[campaigns]]
id = "c"
advertiser = "a"
[[line_items]]
id = "even"
campaign = "c"
tier = "guaranteed"
start = "2026-11-23T00:00:00Z"
end = "2026-11-24T00:00:00Z"
goal = { impressions = 40000 }
cpm = 20.0
pacing = "even"
creatives = ["spot"]
[[creatives]]
id = "spot"
advertiser = "a"
duration_secs = 15.0
approved = true
renditions = [{ bandwidth = 1, playlist = "https://cdn.example/spot.m3u8" }]
"#;

#[test]
fn even_pacing_follows_the_audience_hour_by_hour_and_stops_at_the_goal() {
    // The counters count each delivery as it is confirmed (as the embedded store's do): nothing to settle.
    let book = Arc::new(Mutex::new(ReservationBook::with_settle(TimeDelta::zero())));
    let catalog = Catalog::from_toml(CATALOG).unwrap_or_else(|e| panic!("{e}"));
    let counters = Arc::new(Delivered::default());
    let engine = Engine::new(catalog, counters.clone(), 6, 500)
        .with_reservations(book.clone(), Some(Arc::new(Diurnal)));
    let mut hourly = [0u64; 24];
    let mut reserved = 0u64;
    let mut t = start();
    let mut b = 0;
    while t < start() + TimeDelta::days(1) {
        let plan = engine.plan_break("ch", &format!("b{b}"), Some(15.0), t);
        for v in 0..actual(t) {
            let request = PodRequest {
                channel: "ch".into(),
                session_id: format!("s{b}-{v}"),
                break_id: format!("b{b}"),
                duration_secs: Some(15.0),
                viewer: ViewerContext::default(),
            };
            for ad in engine.decide_in(&plan, &request).pod.ads {
                reserved += 1;
                // One viewer in 25 leaves before the break: the reservation expires undelivered.
                if reserved % 25 != 0 {
                    // As the event pipeline does: the live counters count it, and it confirms the
                    // reservation.
                    counters.add("even");
                    if let Ok(mut book) = book.lock() {
                        book.confirm(&ad.ad_instance_id, "even", t);
                    }
                    hourly[(t - start()).num_hours() as usize] += 1;
                }
            }
        }
        t += TimeDelta::minutes(BREAK_EVERY_MIN);
        b += 1;
    }
    let delivered: u64 = hourly.iter().sum();
    let consumption = book.consumption("even", t + TimeDelta::hours(1));
    eprintln!("hourly {hourly:?}; delivered {delivered}; {consumption:?}");
    assert_eq!(consumption.delivered, delivered);
    assert_eq!(counters.delivered("even", start()), delivered);
    assert!(
        delivered <= GOAL + GOAL / 200,
        "over-delivered: {delivered}"
    );
    assert!(
        delivered >= GOAL - GOAL / 200,
        "under-delivered: {delivered}"
    );
    assert!(consumption.expired > 0, "reservations expired in the loop");
    let total = Diurnal.audience_between(start(), start() + TimeDelta::days(1));
    for (h, n) in hourly.iter().enumerate() {
        let from = start() + TimeDelta::hours(h as i64);
        let plan = GOAL as f64 * Diurnal.audience_between(from, from + TimeDelta::hours(1)) / total;
        let off = (*n as f64 - plan).abs() / plan;
        assert!(
            off <= 0.02,
            "hour {h}: delivered {n}, plan {plan:.0} ({:.1} % off)",
            off * 100.0
        );
    }
}

/// Live delivery counters: what the event pipeline counted, per line item.
#[derive(Debug, Default)]
struct Delivered(Mutex<std::collections::HashMap<String, u64>>);

impl Delivered {
    fn add(&self, line_item: &str) {
        if let Ok(mut m) = self.0.lock() {
            *m.entry(line_item.to_owned()).or_default() += 1;
        }
    }
}

impl Counters for Delivered {
    fn delivered(&self, line_item_id: &str, _: DateTime<Utc>) -> u64 {
        self.0
            .lock()
            .map_or(0, |m| m.get(line_item_id).copied().unwrap_or(0))
    }

    fn viewer_impressions(&self, _: &str, _: &str, _: DateTime<Utc>) -> u64 {
        0
    }
}

#[test]
fn asap_stops_at_the_goal_with_the_herd_decided_at_once() {
    let book = Arc::new(Mutex::new(ReservationBook::new()));
    let catalog = Catalog::from_toml(
        &CATALOG
            .replace("pacing = \"even\"", "pacing = \"asap\"")
            .replace("impressions = 40000", "impressions = 1000"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let engine = Engine::new(catalog, Arc::new(HourCounters::default()), 6, 500)
        .with_reservations(book.clone(), None);
    // 5,000 viewers at one break, none delivered yet: pending reservations stop the line item at 1,000.
    let plan = engine.plan_break("ch", "b0", Some(15.0), start() + TimeDelta::hours(1));
    let served: usize = (0..5000)
        .map(|v| {
            let request = PodRequest {
                channel: "ch".into(),
                session_id: format!("s{v}"),
                break_id: "b0".into(),
                duration_secs: Some(15.0),
                viewer: ViewerContext::default(),
            };
            engine.decide_in(&plan, &request).pod.ads.len()
        })
        .sum();
    assert_eq!(served, 1000);
    assert_eq!(book.consumption("even", start()).pending, 1000);
}
