//! One pod decision against 10,000 active line items (latency), and decisions per second for 100,000 viewers
//! at one break start, with the same engine.
//!
//! `cargo bench -p interlude-decision --bench decide -- --warm-up-time 1 --measurement-time 5`

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, TimeDelta, Utc};
use criterion::{Criterion, criterion_main};
use interlude_decision::catalog::{
    Advertiser, Campaign, Catalog, Creative, Goal, LineItem, Rendition,
};
use interlude_decision::engine::Engine;
use interlude_decision::pacing::PacingMode;
use interlude_decision::pod::Tier;
use interlude_decision::targeting::{Expr, Field};
use interlude_decision::{PodRequest, ViewerContext};
use interlude_events::Counters;

struct NoCounts;
impl Counters for NoCounts {
    fn delivered(&self, _: &str, _: DateTime<Utc>) -> u64 {
        0
    }
    fn viewer_impressions(&self, _: &str, _: &str, _: DateTime<Utc>) -> u64 {
        0
    }
}

const COUNTRIES: [&str; 20] = [
    "FR", "DE", "GB", "ES", "IT", "NL", "BE", "PT", "SE", "NO", "DK", "FI", "PL", "AT", "CH", "IE",
    "US", "CA", "BR", "MX",
];
const TIERS: [Tier; 6] = [
    Tier::Sponsorship,
    Tier::Guaranteed,
    Tier::Standard,
    Tier::PrivateMarketplace,
    Tier::Programmatic,
    Tier::House,
];

/// 10,000 line items over 500 advertisers in 40 competitive categories, each with one 15 or 30 s creative.
fn catalog(now: DateTime<Utc>) -> Catalog {
    let n = 10_000;
    let mut c = Catalog::default();
    for a in 0..500 {
        c.advertisers.push(Advertiser {
            id: format!("a{a}"),
            name: String::new(),
            categories: vec![format!("cat{}", a % 40)],
            domain: None,
        });
        c.campaigns.push(Campaign {
            id: format!("c{a}"),
            advertiser: format!("a{a}"),
            frequency_caps: Vec::new(),
        });
    }
    for i in 0..n {
        let a = i % 500;
        c.creatives.push(Creative {
            id: format!("cr{i}"),
            advertiser: format!("a{a}"),
            duration_secs: if i % 3 == 0 { 30.0 } else { 15.0 },
            renditions: vec![Rendition {
                bandwidth: 800_000,
                resolution: Some("640x360".into()),
                playlist: format!("https://cdn.example.com/{i}.m3u8"),
            }],
            approved: true,
            categories: Vec::new(),
            vast_tag: None,
            media_files: Vec::new(),
        });
        let country = |k: usize| COUNTRIES[k % COUNTRIES.len()].to_owned();
        let targeting = match i % 4 {
            0 => Some(Expr::Is {
                field: Field::Country,
                values: vec![country(i), country(i + 7)],
            }),
            1 => Some(Expr::All(vec![
                Expr::Is {
                    field: Field::Device,
                    values: vec!["tv".into()],
                },
                Expr::Is {
                    field: Field::Country,
                    values: vec![country(i)],
                },
            ])),
            2 => Some(Expr::Is {
                field: Field::Channel,
                values: vec![format!("ch{}", i % 30)],
            }),
            _ => Some(Expr::Not(Box::new(Expr::Is {
                field: Field::Genre,
                values: vec!["kids".into()],
            }))),
        };
        c.line_items.push(LineItem {
            id: format!("li{i}"),
            campaign: format!("c{a}"),
            tier: TIERS[i % TIERS.len()],
            start: now - TimeDelta::days(1),
            end: now + TimeDelta::days(30),
            goal: Goal::Impressions(1_000_000),
            cpm: (i % 50) as f64 + 1.0,
            pacing: PacingMode::Even,
            frequency_caps: Vec::new(),
            targeting,
            creatives: vec![format!("cr{i}").into()],
            first_in_pod: false,
        });
    }
    c
}

fn request(v: usize) -> PodRequest {
    PodRequest {
        channel: format!("ch{}", v % 30),
        session_id: format!("s{v}"),
        break_id: "b1".into(),
        duration_secs: Some(120.0),
        viewer: ViewerContext {
            viewer_id: None,
            device: Some(if v % 3 == 0 { "mobile" } else { "tv" }.into()),
            country: Some(COUNTRIES[v % COUNTRIES.len()].into()),
            genre: Some("football".into()),
            ..ViewerContext::default()
        },
    }
}

fn bench(c: &mut Criterion) {
    let now: DateTime<Utc> = "2026-11-23T20:00:00Z".parse().unwrap_or_default();
    let catalog = catalog(now);
    catalog.validate().unwrap_or_else(|e| panic!("{e}"));
    let engine = Engine::new(catalog, Arc::new(NoCounts), 6, 500);
    let one = request(1);
    assert!(!engine.decide(&one, now, false).pod.ads.is_empty());
    c.bench_function("decide_one_pod_10k_line_items", |b| {
        b.iter(|| engine.decide(black_box(&one), now, false))
    });

    // A break start: 100,000 viewers decided back to back on one core; latency percentiles from the same run.
    let requests: Vec<PodRequest> = (0..100_000).map(request).collect();
    let mut latencies = Vec::with_capacity(requests.len());
    let started = Instant::now();
    for r in &requests {
        let t = Instant::now();
        black_box(engine.decide(r, now, false));
        latencies.push(t.elapsed());
    }
    let total = started.elapsed();
    latencies.sort_unstable();
    let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p) as usize];
    let shared = Instant::now();
    let many = engine.decide_many(&requests, now);
    let shared = shared.elapsed();
    assert_eq!(many.len(), requests.len());
    println!(
        "break start with decide_many (shared targeting per context): {:.2} s = {:.0} decisions/s on one core",
        shared.as_secs_f64(),
        requests.len() as f64 / shared.as_secs_f64()
    );
    println!(
        "break start: 100,000 decisions in {:.2} s = {:.0} decisions/s on one core; p50 {:?} p99 {:?} p99.9 {:?}",
        total.as_secs_f64(),
        requests.len() as f64 / total.as_secs_f64(),
        pct(0.5),
        pct(0.99),
        pct(0.999)
    );
}

/// criterion's macro generates an undocumented `pub fn`.
mod group {
    #![allow(missing_docs, unreachable_pub)]
    criterion::criterion_group!(benches, super::bench);
}
criterion_main!(group::benches);
