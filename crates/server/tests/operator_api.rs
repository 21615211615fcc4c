//! The operator API: the kill switch takes a line item (or an advertiser) out of every pod decided after it,
//! and an operator-started break (a SCTE-35 splice_insert injected where the encoder's cue is missing) is
//! stitched like a signalled one.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::NoCounts;
use interlude_decision::PodRequest;
use interlude_decision::catalog::Catalog;
use interlude_decision::engine::{Engine, Verdict};
use interlude_server::Readiness;
use interlude_server::decisioning::decider::{Decider, DemandConfig};
use interlude_server::stitcher::Stitcher;
use interlude_server::stitcher::beacons::MemoryBeaconSink;
use interlude_server::stitcher::config::{AdDelivery, StitcherConfig};
use interlude_server::stitcher::pods::ConfiguredPodSource;
use interlude_server::stitcher::session::MemorySessionStore;
use serde_json::json;

fn request(session: usize) -> PodRequest {
    common::football_request(&format!("s{session}"), "FR")
}

async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kill_switch_keeps_a_line_item_out_of_every_new_pod() {
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
    let base = serve(interlude_server::ops::operator::router(
        stitcher,
        Some(decider.clone()),
        Readiness::new(),
        "op-token",
    ))
    .await;
    let http = reqwest::Client::new();
    let has = |d: &interlude_decision::engine::Decision, li: &str| {
        d.pod
            .ads
            .iter()
            .any(|a| a.line_item_id.as_deref() == Some(li))
    };
    assert!(has(
        &decider.decide(&request(0), false, false).await.decision,
        "carco-fr-tv"
    ));

    let r = http
        .put(format!("{base}/v1/ops/line_items/carco-fr-tv/paused"))
        .json(&json!({ "paused": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "the kill switch needs the operator token");
    let r = http
        .put(format!("{base}/v1/ops/line_items/carco-fr-tv/paused"))
        .bearer_auth("op-token")
        .json(&json!({ "paused": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // From the acknowledgement on, no pod has it: the hold is read by every decision, no propagation delay.
    for s in 1..500 {
        let d = decider.decide(&request(s), s == 1, false).await.decision;
        assert!(!has(&d, "carco-fr-tv"), "session {s}: {d:?}");
        if s == 1 {
            let verdict = d.explanation.iter().find(|(id, _)| id == "carco-fr-tv");
            assert_eq!(verdict.map(|(_, v)| v), Some(&Verdict::Paused));
        }
    }
    // A mistyped advertiser is not silently "paused".
    let typo = http
        .put(format!("{base}/v1/ops/advertisers/brewr/paused"))
        .bearer_auth("op-token")
        .json(&json!({ "paused": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(typo.status(), 404);
    assert!(typo.text().await.unwrap().contains("brewr"));
    // An advertiser-wide switch, and a catalog reload keeps the holds.
    http.put(format!("{base}/v1/ops/advertisers/brewer/paused"))
        .bearer_auth("op-token")
        .json(&json!({ "paused": true }))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let reloaded = decider
        .engine()
        .with_catalog(decider.engine().catalog().clone());
    decider.swap(Arc::new(reloaded));
    let d = decider.decide(&request(600), false, false).await.decision;
    assert!(!has(&d, "carco-fr-tv") && !has(&d, "sponsor-open"), "{d:?}");
    // Released: back in the next pod.
    http.put(format!("{base}/v1/ops/line_items/carco-fr-tv/paused"))
        .bearer_auth("op-token")
        .json(&json!({ "paused": false }))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    assert!(has(
        &decider.decide(&request(601), false, false).await.decision,
        "carco-fr-tv"
    ));
    let state: serde_json::Value = http
        .get(format!("{base}/v1/ops/state"))
        .bearer_auth("op-token")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["controls"]["holds"]["advertisers"][0], "brewer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_break_is_stitched_like_a_signalled_one() {
    let run = common::start(AdDelivery::Redirect, 30).await;
    let session = common::new_session(&run.base).await;
    let base = serve(interlude_server::ops::operator::router(
        run.stitcher.clone(),
        None,
        Readiness::new(),
        "op-token",
    ))
    .await;
    let http = reqwest::Client::new();
    // Before the origin's own break at 30 s: an 8 s break now.
    let started: serde_json::Value = http
        .post(format!("{base}/v1/ops/channels/live1/breaks"))
        .bearer_auth("op-token")
        .json(&json!({ "duration_secs": 8.0 }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = started["break_id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("op-"), "{started}");
    let section = started["scte35"].as_str().unwrap();
    let decoded = interlude_scte35::SpliceInfoSection::decode(
        &base64::Engine::decode(&base64::engine::general_purpose::STANDARD, section).unwrap(),
    )
    .unwrap();
    assert!(decoded.is_ad_break_start());
    assert_eq!(decoded.break_duration(), Some(Duration::from_secs(8)));
    // A second start while the first is pending is refused.
    let again = http
        .post(format!("{base}/v1/ops/channels/live1/breaks"))
        .bearer_auth("op-token")
        .json(&json!({ "duration_secs": 4.0 }))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409);

    // The break reaches the session's playlist with the configured ad.
    let mut seen = false;
    for _ in 0..60 {
        let tracking: serde_json::Value = http
            .get(format!("{}/v1/sessions/{session}/tracking", run.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if tracking["avails"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["avail_id"] == id.as_str())
        {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(seen, "the operator break never reached the session");
    // Ended early, at the next segment.
    let ended = http
        .post(format!("{base}/v1/ops/channels/live1/breaks/end"))
        .bearer_auth("op-token")
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), 202);
}
