//! The conformance suite of the node-shared state, run against every adapter on real servers:
//!
//! - `SharedSessions` over the store's `SessionShare` (in-process memory, Redis): sessions round-trip, the first decision stored for a break
//!   wins however many nodes race to store theirs, and every node then reads the winner;
//! - the catalog store (a catalog file, PostgreSQL): a change made through one node's admin API goes live on
//!   another node by itself; PostgreSQL's versioned write refuses a stale writer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::NoCounts;
use interlude_decision::catalog::Catalog;
use interlude_decision::engine::Engine;
use interlude_decision::{PodAd, ViewerContext};
use interlude_server::decisioning::admin::{self, LiveCatalog};
use interlude_server::decisioning::decider::{Decider, DemandConfig};
use interlude_server::stitcher::session::{BreakDecision, ResolvedAd};
use interlude_server::stitcher::shared::{SessionRecord, SharedSessions};
use interlude_store::MemorySessionShare;
use interlude_store::pg::PgCatalog;
use interlude_store::redis::RedisSessionShare;
use interlude_store::testing;

fn decision(instance: &str) -> BreakDecision {
    BreakDecision {
        plan: None,
        ads: vec![ResolvedAd {
            ad: PodAd {
                ad_instance_id: instance.into(),
                creative_id: "ad15".into(),
                campaign_id: Some("c1".into()),
                line_item_id: Some("li1".into()),
                duration_secs: 15.0,
                renditions: Vec::new(),
                impression_urls: vec!["https://imp.example/x".into()],
                tracking_urls: vec![("start".into(), "https://t.example/start".into())],
                bid: None,
                source: None,
            },
            segment_urls: vec![Arc::from(vec!["https://cdn.example/ad15/0.ts".to_owned()])],
            segment_micros: Arc::from(vec![6_000_000u64, 6_000_000, 3_000_000]),
            playlist_urls: vec!["https://cdn.example/ad15/index.m3u8".to_owned()],
            maps: vec![Arc::from(
                "#EXT-X-MAP:URI=\"https://cdn.example/ad15/init.mp4\"",
            )],
        }],
    }
}

async fn shared_sessions_conform(shared: Arc<SharedSessions>) {
    let record = SessionRecord {
        id: format!("s-{}", std::process::id()),
        channel: "live1".into(),
        viewer: ViewerContext {
            viewer_id: Some("v1".into()),
            country: Some("FR".into()),
            segments: vec!["sports".into()],
            ..ViewerContext::default()
        },
        created_at: "2026-11-23T20:00:00Z".parse().unwrap(),
        joined_msn: 4242,
        mode: Default::default(),
    };
    assert_eq!(shared.load_session(&record.id).await.unwrap(), None);
    shared.save_session(&record).await.unwrap();
    assert_eq!(
        shared.load_session(&record.id).await.unwrap(),
        Some(record.clone())
    );
    shared.touch(&record.id).await.unwrap();

    assert_eq!(shared.load_decision(&record.id, "b1").await.unwrap(), None);
    // Eight nodes decide the same break for the same viewer at once: one decision wins, all adopt it.
    let racers = (0..8).map(|n| {
        let (shared, id) = (shared.clone(), record.id.clone());
        tokio::spawn(async move {
            shared
                .save_decision(&id, "b1", &decision(&format!("node{n}")))
                .await
                .unwrap()
        })
    });
    let winners: Vec<BreakDecision> = futures_util::future::join_all(racers)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert!(winners.windows(2).all(|w| w[0] == w[1]), "one winner");
    assert_eq!(
        shared
            .load_decision(&record.id, "b1")
            .await
            .unwrap()
            .as_ref(),
        Some(&winners[0])
    );
    let late = shared
        .save_decision(&record.id, "b1", &decision("late"))
        .await
        .unwrap();
    assert_eq!(late, winners[0], "a decision is never replaced");
    // Another break is independent.
    let other = shared
        .save_decision(&record.id, "b2", &decision("b2"))
        .await
        .unwrap();
    assert_eq!(other, decision("b2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_shared_sessions_conform() {
    shared_sessions_conform(Arc::new(SharedSessions::new(Arc::new(
        MemorySessionShare::default(),
    ))))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_shared_sessions_conform() {
    let shared = RedisSessionShare::connect(&testing::redis_url(), &testing::redis_prefix(), 60)
        .await
        .unwrap();
    shared_sessions_conform(Arc::new(SharedSessions::new(Arc::new(shared)))).await;
}

const CATALOG: &str = include_str!("../../decision/tests/data/catalog.toml");

/// One node: a decider over the catalog and its catalog store, watched every 50 ms.
async fn node(path: &std::path::Path, pg: Option<&str>) -> (Arc<Decider>, Arc<LiveCatalog>) {
    let now: DateTime<Utc> = "2026-11-23T20:00:00Z".parse().unwrap();
    let engine = Arc::new(Engine::new(
        Catalog::from_toml(CATALOG).unwrap(),
        Arc::new(NoCounts),
        6,
        500,
    ));
    let decider = Arc::new(Decider::new(
        engine,
        Arc::new(move || now),
        DemandConfig::default(),
        common::loopback_http(),
    ));
    let store = LiveCatalog::new(
        decider.clone(),
        Some(path.to_owned()),
        Arc::new(|_: &Catalog| {}),
    );
    if let Some(url) = pg {
        store
            .attach_shared(Arc::new(PgCatalog::connect(url).await.unwrap()))
            .await
            .unwrap();
    }
    store.watch(Duration::from_millis(50));
    (decider, store)
}

/// A CPM change through node A's admin API is served by node B within seconds.
async fn catalog_change_reaches_the_other_node(pg: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.toml");
    std::fs::write(&path, CATALOG).unwrap();
    let (_, store_a) = node(&path, pg).await;
    let (decider_b, _store_b) = node(&path, pg).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = admin::router(store_a, "s3cret");
    tokio::spawn(async move { axum::serve(listener, app).await });
    let http = reqwest::Client::new();
    let catalog: serde_json::Value = http
        .get(format!("{base}/v1/admin/catalog"))
        .bearer_auth("s3cret")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut item = catalog["line_items"][0].clone();
    let id = item["id"].as_str().unwrap().to_owned();
    item["cpm"] = serde_json::json!(77.5);
    let r = http
        .put(format!("{base}/v1/admin/line_items/{id}"))
        .bearer_auth("s3cret")
        .json(&item)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let cpm = decider_b
            .engine()
            .catalog()
            .line_items
            .iter()
            .find(|l| l.id == id)
            .map(|l| l.cpm);
        if cpm == Some(77.5) {
            break;
        }
        assert!(Instant::now() < deadline, "node B still serves cpm {cpm:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_catalog_store_conforms() {
    catalog_change_reaches_the_other_node(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_catalog_store_conforms_and_refuses_stale_writers() {
    let url = testing::pg_fresh_schema().await.unwrap();
    catalog_change_reaches_the_other_node(Some(&url)).await;
    let pg = PgCatalog::connect(&url).await.unwrap();
    let (version, document) = pg.load().await.unwrap().unwrap();
    assert_eq!(version, 2, "seeded once, changed once");
    assert_eq!(
        pg.save(version - 1, &document).await.unwrap(),
        None,
        "stale writer refused"
    );
    assert_eq!(
        pg.save(version, &document).await.unwrap(),
        Some(version + 1)
    );
}
