//! `GET /v1/vast`: the engine's pod as a VAST 4.2 document that validates against the IAB schema, whose
//! tracking pixels the collector accepts and counts.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use interlude_decision::catalog::Catalog;
use interlude_decision::engine::Engine;
use interlude_server::collector::{self, Collector, EventsConfig};
use interlude_server::decisioning::decider::{Decider, DemandConfig};
use interlude_server::decisioning::vast_routes;
use interlude_server::edge::auth::{Producers, Scope};
use interlude_vast::vmap::{AdSource, AdSourceData};

const XSD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../vast/tests/data/xsd/vast_4.2.xsd"
);

/// The VAST/VMAP routes and the collector over the example catalog, on loopback, at a fixed instant.
async fn serve() -> (tempfile::TempDir, Collector, String, DateTime<Utc>) {
    serve_catalog(|_| {}).await
}

/// As [`serve`], over the example catalog changed by `edit`.
async fn serve_catalog(
    edit: impl FnOnce(&mut Catalog),
) -> (tempfile::TempDir, Collector, String, DateTime<Utc>) {
    let now: DateTime<Utc> = "2026-11-23T20:00:00Z".parse().unwrap();
    let clock = Arc::new(move || now);
    let dir = tempfile::tempdir().unwrap();
    let config = EventsConfig {
        data_dir: dir.path().join("events"),
        ..EventsConfig::default()
    };
    let collector = Collector::open(&config, clock.clone())
        .unwrap()
        .with_access(Producers::insecure_dev(), Scope::open());
    let mut catalog =
        Catalog::from_toml(include_str!("../../decision/tests/data/catalog.toml")).unwrap();
    edit(&mut catalog);
    catalog.validate().unwrap();
    let engine = Arc::new(Engine::new(
        catalog,
        collector.embedded().expect("embedded store"),
        6,
        500,
    ));
    let decider = Arc::new(Decider::new(
        engine,
        clock,
        DemandConfig::default(),
        common::loopback_http(),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = vast_routes::router(decider, collector.clone(), base.clone(), base.clone())
        .merge(collector::router(collector.clone()));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (dir, collector, base, now)
}

/// `GET /v1/vast?{query}`: the document, as text and parsed.
async fn get_vast(base: &str, query: &str) -> (String, interlude_vast::Vast) {
    let xml = reqwest::get(format!("{base}/v1/vast?{query}"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let vast = interlude_vast::parse_vast(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    (xml, vast)
}

/// `xml` validates against the IAB VAST 4.2 schema (xmllint), written to `dir` for it.
fn validates_against_the_xsd(dir: &std::path::Path, xml: &str) {
    let path = dir.join("pod.xml");
    std::fs::write(&path, xml).unwrap();
    let out = Command::new("xmllint")
        .args(["--noout", "--schema", XSD])
        .arg(&path)
        .output()
        .expect("xmllint is installed by scripts/test.sh (Debian libxml2-utils)");
    assert!(
        out.status.success(),
        "{}\n{xml}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csai_pod_validates_and_its_pixels_count() {
    let (dir, collector, base, now) = serve().await;

    let (xml, vast) = get_vast(
        &base,
        "channel=live1&duration=60&device=tv&country=FR&genre=football",
    )
    .await;
    assert_eq!(vast.ads.len(), 3, "{xml}");
    let sequences: Vec<Option<u64>> = vast.ads.iter().map(|a| a.sequence).collect();
    assert_eq!(sequences, [Some(1), Some(2), Some(3)]);

    validates_against_the_xsd(dir.path(), &xml);

    // The player fires the first ad's impression pixel (twice: a retry).
    let interlude_vast::AdBody::InLine(first) = &vast.ads[0].body else {
        panic!("not inline")
    };
    let impression = &first.common.impressions[0].url;
    for _ in 0..2 {
        let status = reqwest::Client::new()
            .get(impression)
            .header("user-agent", "AppleCoreMedia/1.0")
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 204);
    }
    let rows = collector
        .embedded()
        .expect("embedded store")
        .report(
            interlude_store::GroupBy::LineItem,
            now - chrono::TimeDelta::hours(1),
            now + chrono::TimeDelta::hours(1),
        )
        .unwrap();
    let counted: Vec<(String, u64)> = rows
        .iter()
        .map(|r| (r.key.clone(), r.counts.impressions))
        .collect();
    assert_eq!(counted, [("sponsor-open".to_owned(), 1)]);
}

/// A direct-sold creative delivered as an MP4 (no HLS renditions) reaches a client-side player as that MP4:
/// a progressive MediaFile, in a document that still validates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_creative_delivered_as_files_is_offered_to_players_as_its_progressive_file() {
    let (dir, _collector, base, _now) = serve_catalog(|catalog| {
        // Every creative the catalog delivers itself (third-party tags keep theirs).
        for c in catalog
            .creatives
            .iter_mut()
            .filter(|c| c.vast_tag.is_none())
        {
            c.renditions.clear();
            c.media_files = vec![
                interlude_decision::catalog::MediaFile {
                    url: format!("https://cdn.example/{}.mp4", c.id),
                    mime_type: "video/mp4".into(),
                    width: 1280,
                    height: 720,
                    bitrate_kbps: Some(4000),
                    mezzanine: false,
                },
                interlude_decision::catalog::MediaFile {
                    url: format!("https://cdn.example/{}-master.mov", c.id),
                    mime_type: String::new(),
                    width: 1920,
                    height: 1080,
                    bitrate_kbps: None,
                    mezzanine: true,
                },
            ];
        }
    })
    .await;
    let (xml, vast) = get_vast(
        &base,
        "channel=live1&duration=60&device=tv&country=FR&genre=football",
    )
    .await;
    assert!(!vast.ads.is_empty(), "{xml}");
    for ad in &vast.ads {
        let interlude_vast::AdBody::InLine(inline) = &ad.body else {
            panic!("not inline")
        };
        let linear = inline.creatives[0].linear.as_ref().unwrap();
        let files = &linear.media_files;
        assert_eq!(files.media_files.len(), 1, "{xml}");
        let file = &files.media_files[0];
        assert_eq!(file.delivery, interlude_vast::Delivery::Progressive);
        assert_eq!(file.mime_type, "video/mp4");
        assert!(file.url.ends_with(".mp4"), "{xml}");
        assert!(files.mezzanines.is_empty(), "the master stays ours: {xml}");
    }
    validates_against_the_xsd(dir.path(), &xml);
}

/// Client-side ads carry instance ids issued for the player's session, as stitched ones do: a relay posting this
/// player's beacons through `POST /v1/events` can name these ads for this session, and no others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csai_ad_ids_are_issued_for_the_players_session() {
    let (_dir, _collector, base, _now) = serve().await;
    let (xml, vast) = get_vast(
        &base,
        "channel=live1&duration=60&device=tv&country=FR&session=player-7",
    )
    .await;
    assert!(!vast.ads.is_empty(), "{xml}");
    let keys = EventsConfig::default().keyring();
    for ad in &vast.ads {
        let id = ad.id.as_deref().unwrap();
        assert!(keys.verify_instance("player-7", id), "{id} not issued");
        assert!(
            !keys.verify_instance("player-8", id),
            "{id} valid elsewhere"
        );
        // The pixels name the same instance the document does.
        let interlude_vast::AdBody::InLine(inline) = &ad.body else {
            panic!("not inline")
        };
        assert!(!inline.common.impressions.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vmap_schedules_one_decided_pod_per_break() {
    let (dir, _collector, base, _) = serve().await;
    let get = |q: &str| {
        let url = format!(
            "{base}/v1/vmap?channel=live1&duration=60&device=tv&country=FR&genre=football&{q}"
        );
        async move {
            let r = reqwest::get(url).await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };

    let (status, xml) = get("breaks=start,00:10:00,50%25,end").await;
    assert_eq!(status, 200, "{xml}");
    let vmap = interlude_vast::parse_vmap(&xml).unwrap();
    let offsets: Vec<String> = vmap
        .ad_breaks
        .iter()
        .map(|b| b.time_offset.to_string())
        .collect();
    assert_eq!(offsets, ["start", "00:10:00", "50%", "end"]);
    for b in &vmap.ad_breaks {
        let Some(AdSource {
            data: AdSourceData::VastAdData(vast),
            ..
        }) = &b.ad_source
        else {
            panic!("not inline: {b:?}")
        };
        assert_eq!(vast.ads.len(), 3, "{xml}");
        // Each break's pod, written on its own, is schema-valid VAST 4.2.
        validates_against_the_xsd(dir.path(), &interlude_vast::write_vast(vast).unwrap());
    }

    let (status, xml) = get("breaks=start,end&source=tag").await;
    assert_eq!(status, 200, "{xml}");
    let vmap = interlude_vast::parse_vmap(&xml).unwrap();
    let Some(AdSource {
        data: AdSourceData::AdTagUri { uri, .. },
        ..
    }) = &vmap.ad_breaks[0].ad_source
    else {
        panic!("not a tag: {xml}")
    };
    assert!(uri.starts_with(&format!("{base}/v1/vast?")), "{uri}");
    assert!(
        uri.contains("country=FR") && uri.contains("session=csai-"),
        "{uri}"
    );
    let vast = interlude_vast::parse_vast(&reqwest::get(uri).await.unwrap().text().await.unwrap())
        .unwrap();
    assert_eq!(vast.ads.len(), 3);

    let (status, body) = get("breaks=start,soon").await;
    assert_eq!(status, 400);
    let problem: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(problem["status"], 400);
    assert!(
        problem["error"].as_str().unwrap().contains("\"soon\""),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vmap_schedule_over_fifty_breaks_is_refused_naming_breaks() {
    let (_dir, _collector, base, _now) = serve().await;
    let positions = |n: usize| {
        (0..n)
            .map(|i| format!("00:{:02}:{:02}", i / 60, i % 60))
            .collect::<Vec<_>>()
            .join(",")
    };
    let response = reqwest::get(format!(
        "{base}/v1/vmap?channel=live1&duration=30&source=tag&breaks={}",
        positions(51)
    ))
    .await
    .unwrap();
    assert_eq!(response.status(), 400);
    let body = response.text().await.unwrap();
    assert!(body.contains("breaks"), "{body}");
    assert!(body.contains("50"), "{body}");

    let response = reqwest::get(format!(
        "{base}/v1/vmap?channel=live1&duration=30&source=tag&breaks={}",
        positions(50)
    ))
    .await
    .unwrap();
    assert_eq!(response.status(), 200, "fifty is allowed");
    let vmap = interlude_vast::parse_vmap(&response.text().await.unwrap()).unwrap();
    assert_eq!(vmap.ad_breaks.len(), 50);
}
