//! The audience simulator against the real stitcher and collector, with client-side beacons misbehaving (drops,
//! duplicates, late delivery, clock skew, abandonment) and a collector that fails requests (refused outright, or
//! processed with the acknowledgement lost, so the client retries what was already stored). The pipeline's counts
//! must equal the simulator's ground truth exactly: every acknowledged event once, nothing else.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::TimeDelta;
use common::{start, until_channel_time};
use interlude_events::contract::EventType;
use interlude_server::collector::{self, Collector, EventsConfig};
use interlude_server::edge::auth::{Producers, Scope};
use interlude_server::stitcher::config::AdDelivery;
use interlude_sim::audience::{ClientBeacons, Viewer, watch_with};
use interlude_sim::beacons::{BeaconPolicy, BeaconTruth};
use interlude_sim::clock::Clock as _;
use interlude_store::GroupBy;

/// Every fourth request is refused with 503; every fourth, one later, is stored but answered 500.
async fn flaky(request: Request, next: Next) -> Response {
    static N: AtomicU64 = AtomicU64::new(0);
    match N.fetch_add(1, Ordering::Relaxed) % 4 {
        1 => (StatusCode::SERVICE_UNAVAILABLE, [("retry-after", "0")]).into_response(),
        3 => {
            let _stored = next.run(request).await;
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
        _ => next.run(request).await,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_equal_the_ground_truth_with_retries_duplicates_and_drops() {
    let run = start(AdDelivery::Redirect, 30).await;
    let dir = tempfile::tempdir().unwrap();
    let channel_clock = run.clock.clone();
    let clock: interlude_server::stitcher::Clock = Arc::new(move || channel_clock.now());
    let config = EventsConfig {
        data_dir: dir.path().join("events"),
        ..EventsConfig::default()
    };
    let collector = Collector::open(&config, clock.clone())
        .unwrap()
        .with_access(Producers::insecure_dev(), Scope::open());
    let app = collector::router(collector.clone()).layer(axum::middleware::from_fn(flaky));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector_base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let policy = BeaconPolicy {
        drop: 0.1,
        duplicate: 0.3,
        max_attempts: 12,
        backoff: Duration::from_millis(20),
        late: Duration::from_millis(300),
        clock_skew: Duration::from_secs(2),
        abandon: 0.25,
    };
    let http = reqwest::Client::builder()
        .user_agent("Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/537.36")
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // Viewers join once the stitcher has the channel, before the break at 30 s channel time.
    common::new_session(&run.base).await;
    let stop = Arc::new(AtomicBool::new(false));
    let viewers: Vec<_> = (0..40u64)
        .map(|v| {
            let client = ClientBeacons {
                policy: policy.clone(),
                seed: v,
                speed: 4.0,
                clock: clock.clone(),
                fetch_ad_segments: false,
                collector: collector_base.clone(),
            };
            tokio::spawn(watch_with(Viewer {
                http: http.clone(),
                base: run.base.clone(),
                channel: "live1".into(),
                rendition: (v % 2) as usize,
                refresh: Duration::from_millis(500),
                stop: stop.clone(),
                client: Some(client),
                stats: None,
                viewer_id: None,
            }))
        })
        .collect();
    // The break runs 30–50 s channel time; its 15 s ad has played by 50 s.
    until_channel_time(&run, 50).await;
    stop.store(true, Ordering::Relaxed);
    let mut truth = BeaconTruth::default();
    for v in viewers {
        truth.merge(v.await.unwrap().beacons);
    }

    eprintln!(
        "played {} dropped {} delivered {} requests {} retries {} duplicates {}",
        truth.played.len(),
        truth.dropped.len(),
        truth.delivered.len(),
        truth.requests,
        truth.retries,
        truth.duplicates
    );
    // The run exercised what it claims to.
    assert!(
        truth.played.len() >= 40 * 2,
        "{} played",
        truth.played.len()
    );
    assert!(!truth.dropped.is_empty() && truth.duplicates > 0 && truth.retries > 0);
    assert!(
        truth.gave_up.is_empty(),
        "every sent event should get through within 12 attempts: {:?}",
        truth.gave_up
    );

    let now = run.clock.now();
    let rows = collector
        .embedded()
        .expect("embedded store")
        .report(
            GroupBy::Channel,
            now - TimeDelta::hours(1),
            now + TimeDelta::hours(1),
        )
        .unwrap();
    let counts = rows
        .iter()
        .find(|r| r.key == "live1")
        .map(|r| r.counts)
        .unwrap_or_default();
    let expected = |t| truth.delivered_of(t) as u64;
    assert_eq!(
        counts.impressions,
        expected(EventType::Impression),
        "{truth:#?}"
    );
    assert_eq!(counts.starts, expected(EventType::Start));
    assert_eq!(counts.first_quartiles, expected(EventType::FirstQuartile));
    assert_eq!(counts.midpoints, expected(EventType::Midpoint));
    assert_eq!(counts.third_quartiles, expected(EventType::ThirdQuartile));
    assert_eq!(counts.completes, expected(EventType::Complete));
    // Abandonment and drops show: fewer completes delivered than impressions played.
    assert!(
        counts.completes
            < truth
                .played
                .iter()
                .filter(|(_, e)| e == "impression")
                .count() as u64
    );
}
