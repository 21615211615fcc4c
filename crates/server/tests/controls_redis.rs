//! Operator controls shared through a real Redis: a kill switch pulled through node A's operator API holds on
//! node B within a second, and a node that starts later picks up the controls in force.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::NoCounts;
use interlude_decision::catalog::Catalog;
use interlude_decision::engine::Engine;
use interlude_server::Readiness;
use interlude_server::decisioning::decider::{Decider, DemandConfig};
use interlude_server::stitcher::Stitcher;
use interlude_server::stitcher::beacons::MemoryBeaconSink;
use interlude_server::stitcher::config::StitcherConfig;
use interlude_server::stitcher::pods::ConfiguredPodSource;
use interlude_server::stitcher::session::MemorySessionStore;

const REDIS: &str = "redis://127.0.0.1:6379";

fn node(prefix: &str) -> Arc<Decider> {
    let now: DateTime<Utc> = "2026-11-23T20:00:00Z".parse().unwrap();
    let catalog =
        Catalog::from_toml(include_str!("../../decision/tests/data/catalog.toml")).unwrap();
    let engine = Arc::new(Engine::new(catalog, Arc::new(NoCounts), 6, 500));
    let decider = Arc::new(Decider::new(
        engine,
        Arc::new(move || now),
        DemandConfig::default(),
        common::loopback_http(),
    ));
    interlude_server::ops::controls_sync::spawn(decider.clone(), REDIS, prefix)
        .expect("scripts/test.sh starts Redis on 127.0.0.1:6379");
    decider
}

async fn has_carco(d: &Decider, session: usize) -> bool {
    d.decide(
        &common::football_request(&format!("s{session}"), "FR"),
        false,
        false,
    )
    .await
    .decision
    .pod
    .ads
    .iter()
    .any(|a| a.line_item_id.as_deref() == Some("carco-fr-tv"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_switch_on_one_node_holds_on_the_others_within_a_second() {
    let prefix = format!("interlude-test-{}", uuid::Uuid::new_v4().simple());
    let (a, b) = (node(&prefix), node(&prefix));
    // Let both subscriptions settle before pulling the switch.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stitcher = Stitcher::builder(
        StitcherConfig::default(),
        "http://127.0.0.1".into(),
        Arc::new(ConfiguredPodSource::new(&[], 0.5)),
        Arc::new(MemoryBeaconSink::default()),
        Arc::new(chrono::Utc::now),
    )
    .sessions(Arc::new(MemorySessionStore::default()))
    .build()
    .unwrap();
    let app =
        interlude_server::ops::operator::router(stitcher, Some(a.clone()), Readiness::new(), "t");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    assert!(has_carco(&b, 0).await);

    reqwest::Client::new()
        .put(format!("{base}/v1/ops/line_items/carco-fr-tv/paused"))
        .bearer_auth("t")
        .json(&serde_json::json!({ "paused": true }))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let pulled = Instant::now();
    assert!(!has_carco(&a, 1).await, "node A holds at once");
    let mut session = 2;
    while has_carco(&b, session).await {
        assert!(
            pulled.elapsed() < Duration::from_secs(1),
            "node B still served the paused line item after a second"
        );
        session += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    eprintln!("node B holds {:?} after the switch", pulled.elapsed());

    // A node started now reads the controls in force.
    let c = node(&prefix);
    let deadline = Instant::now() + Duration::from_secs(3);
    while has_carco(&c, session).await {
        assert!(
            Instant::now() < deadline,
            "a new node never picked up the controls"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _: () = redis::cmd("DEL")
        .arg(format!("{prefix}:controls"))
        .query_async(
            &mut redis::Client::open(REDIS)
                .unwrap()
                .get_multiplexed_async_connection()
                .await
                .unwrap(),
        )
        .await
        .unwrap();
}
