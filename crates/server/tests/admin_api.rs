//! The catalog admin API over HTTP: bearer authentication, upserts validated as a whole catalog and persisted,
//! the change live for the next decision, and hot reload of the file edited by hand.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::NoCounts;
use interlude_decision::PodRequest;
use interlude_decision::catalog::Catalog;
use interlude_decision::engine::Engine;
use interlude_server::decisioning::admin::{self, LiveCatalog};
use interlude_server::decisioning::decider::{Decider, DemandConfig};
use serde_json::json;

fn request() -> PodRequest {
    common::football_request("s1", "DE")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_need_the_token_are_validated_persisted_and_live() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.toml");
    let text = include_str!("../../decision/tests/data/catalog.toml");
    std::fs::write(&path, text).unwrap();
    let now: DateTime<Utc> = "2026-11-23T20:00:00Z".parse().unwrap();
    let engine = Arc::new(Engine::new(
        Catalog::from_toml(text).unwrap(),
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
    let changes = Arc::new(AtomicUsize::new(0));
    let counted = changes.clone();
    let store = LiveCatalog::new(
        decider.clone(),
        Some(path.clone()),
        Arc::new(move |_: &Catalog| {
            counted.fetch_add(1, Ordering::SeqCst);
        }),
    );
    store.watch(Duration::from_millis(50));
    let app = admin::router(store, "s3cret").merge(admin::openapi_router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let http = reqwest::Client::new();
    let auth = "Bearer s3cret";

    // No token, a wrong token: refused.
    let r = http
        .get(format!("{base}/v1/admin/catalog"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    let r = http
        .get(format!("{base}/v1/admin/catalog"))
        .header("authorization", "Bearer guess")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // A house promo pauses: the next decision no longer has it.
    let creatives = |d: &interlude_decision::engine::Decision| -> Vec<String> {
        d.pod.ads.iter().map(|a| a.creative_id.clone()).collect()
    };
    let before = decider.decide(&request(), false, false).await.decision;
    assert!(creatives(&before).contains(&"promo-10".to_owned()));
    let mut promo: serde_json::Value = http
        .get(format!("{base}/v1/admin/line_items/promo"))
        .header("authorization", auth)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    promo["end"] = json!("2026-11-23T19:00:00Z");
    let r = http
        .put(format!("{base}/v1/admin/line_items/promo"))
        .header("authorization", auth)
        .json(&promo)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let after = decider.decide(&request(), false, false).await.decision;
    assert!(
        !creatives(&after).contains(&"promo-10".to_owned()),
        "{after:?}"
    );
    // Persisted: the file now says so.
    let saved = Catalog::from_toml(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(
        saved
            .line_items
            .iter()
            .find(|l| l.id == "promo")
            .unwrap()
            .end,
        "2026-11-23T19:00:00Z".parse::<DateTime<Utc>>().unwrap()
    );

    // A line item pointing at a missing campaign is refused with the path of the problem.
    let mut orphan = promo.clone();
    orphan["id"] = json!("orphan");
    orphan["campaign"] = json!("nope");
    let r = http
        .put(format!("{base}/v1/admin/line_items/orphan"))
        .header("authorization", auth)
        .json(&orphan)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("campaign"),
        "{body}"
    );
    // Deleting a creative a line item still uses is refused too; an unknown id is 404.
    let r = http
        .delete(format!("{base}/v1/admin/creatives/promo-10"))
        .header("authorization", auth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let r = http
        .delete(format!("{base}/v1/admin/advertisers/ghost"))
        .header("authorization", auth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // Hot reload: the file edited by hand (the promo's flight restored) goes live; a broken edit does not.
    // The watcher may still be catching up with the API's own writes (late on a loaded machine): start from
    // a count that has settled.
    let mut applied = changes.load(Ordering::SeqCst);
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = changes.load(Ordering::SeqCst);
        if now == applied {
            break;
        }
        applied = now;
    }
    std::fs::write(&path, "this is not a catalog").unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        changes.load(Ordering::SeqCst),
        applied,
        "an invalid file went live"
    );
    std::fs::write(&path, text).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while changes.load(Ordering::SeqCst) == applied {
        assert!(
            Instant::now() < deadline,
            "the edited file was not reloaded"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let reloaded = decider.decide(&request(), false, false).await.decision;
    assert!(creatives(&reloaded).contains(&"promo-10".to_owned()));

    // The OpenAPI document lists every admin route.
    let doc: serde_json::Value = http
        .get(format!("{base}/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for p in [
        "/v1/admin/catalog",
        "/v1/admin/advertisers/{id}",
        "/v1/admin/campaigns/{id}",
        "/v1/admin/line_items/{id}",
        "/v1/admin/creatives/{id}",
        "/v1/vast",
        "/v1/vmap",
        "/v1/decisions/explain",
        "/v1/events",
    ] {
        assert!(doc["paths"].get(p).is_some(), "{p} is not documented");
    }
}
