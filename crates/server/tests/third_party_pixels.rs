//! Third parties' pixels fired by the server, through the whole application (`App::build`, `App::serve_on`):
//! an HTTPS ad server, whose certificate comes from a CA made at test time and trusted through
//! `outbound.ca_file`, serves the VAST tag of the catalog's only line item. Its ad has an `<Impression>`, a
//! `<Tracking>` URL for start, each quartile and complete, and a second `<Impression>` on a loopback socket
//! that is not allow-listed (a canary). A stitched session in proxy mode plays the ad's segments, twice and
//! in both renditions: the ad server receives the impression and each tracking event exactly once, the
//! canary receives nothing (the guard refuses it and the outbox keeps it as a dead letter), and nothing is
//! left queued once the server has shut down.
//!
//! And the decider's win notice goes through the outbox too: a break decided twice notifies the bidder once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use interlude_decision::PodSource as _;
use interlude_outbox::{OutboxStore, RedbStore};
use interlude_server::stitcher::config::{AdDelivery, ChannelConfig, StitcherConfig};
use interlude_server::{App, InterludeConfig};
use interlude_sim::clock::{Clock as _, ScaledClock};
use interlude_sim::origin::{OriginConfig, OriginState, router};
use tokio::net::TcpListener;

use common::tls::{TlsServer, canary, test_ca};

/// Channel time runs this many times faster than real time.
const SPEED: f64 = 4.0;

const TRACKED: [&str; 5] = [
    "start",
    "firstQuartile",
    "midpoint",
    "thirdQuartile",
    "complete",
];

fn vast(base: &str, canary: SocketAddr, playlist: &str) -> String {
    let tracking: String = TRACKED
        .iter()
        .map(|e| {
            format!(
                r#"<Tracking event="{e}"><![CDATA[{base}/t/{e}?cb=[CACHEBUSTING]]]></Tracking>"#
            )
        })
        .collect();
    format!(
        r#"<VAST version="4.2"><Ad id="tp"><InLine><AdSystem>3p</AdSystem><AdTitle>tp</AdTitle>
        <Impression><![CDATA[{base}/imp?ss=[SERVERSIDE]&cb=[CACHEBUSTING]]]></Impression>
        <Impression><![CDATA[http://{canary}/canary]]></Impression>
        <Creatives><Creative adId="tp-15"><Linear><Duration>00:00:15</Duration>
        <TrackingEvents>{tracking}</TrackingEvents>
        <MediaFiles><MediaFile delivery="streaming" type="application/x-mpegURL" width="640" height="360"
        bitrate="800"><![CDATA[{playlist}]]></MediaFile></MediaFiles></Linear></Creative></Creatives>
        </InLine></Ad></VAST>"#
    )
}

fn catalog(tag: &str) -> String {
    format!(
        r#"
[[advertisers]]
id = "tp"
categories = []

[[campaigns]]
id = "tp-q4"
advertiser = "tp"

[[line_items]]
id = "tp-all"
campaign = "tp-q4"
tier = "standard"
start = "2020-01-01T00:00:00Z"
end = "2100-01-01T00:00:00Z"
goal = {{ impressions = 1000000 }}
cpm = 10.0
creatives = ["tp-15"]

[[creatives]]
id = "tp-15"
advertiser = "tp"
duration_secs = 15.0
approved = true
vast_tag = "{tag}"
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stitched_ads_fire_their_third_party_pixels_once_and_never_an_unlisted_host() {
    let dir = tempfile::tempdir().unwrap();

    // The origin, with channel time 20 s past its epoch: the break is 30..50 s.
    let epoch = Utc::now() - TimeDelta::seconds(20);
    let origin_config = OriginConfig {
        window_segments: 40,
        first_break_secs: 30,
        break_duration_secs: 20,
        epoch,
        ..OriginConfig::default()
    };
    let clock = Arc::new(ScaledClock::new(epoch + TimeDelta::seconds(20), SPEED));
    let origin_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", origin_listener.local_addr().unwrap());
    let state = OriginState::new(origin_config, clock.clone());
    tokio::spawn(async move { axum::serve(origin_listener, router(state)).await });

    // The third party, and the canary its VAST names besides.
    let (ca_pem, tls) = test_ca();
    let (canary_addr, canary_hits) = canary().await;
    let ad_playlist = format!("{origin}/assets/ads/ad15/r1/index.m3u8");
    let ads = TlsServer::start(
        tls,
        Arc::new(move |base: &str, path: &str, _: &[u8]| {
            (path == "/vast").then(|| vast(base, canary_addr, &ad_playlist))
        }),
    )
    .await;
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let catalog_file = dir.path().join("catalog.toml");
    std::fs::write(
        &catalog_file,
        catalog(&format!("https://{}/vast", ads.addr)),
    )
    .unwrap();

    let renditions = |path: &str| common::sim_renditions(&origin, path);
    let mut config = InterludeConfig {
        server: interlude_server::ServerConfig {
            insecure_dev: true,
            ..interlude_server::ServerConfig::default()
        },
        stitcher: StitcherConfig {
            channels: vec![ChannelConfig {
                id: "live1".to_owned(),
                origin: format!("{origin}/live/live1/master.m3u8"),
                poll_interval_ms: Some(200),
                origin_timeout_ms: 2_000,
                stale_after_secs: 30,
                slate: renditions("slate"),
                dash_origin: None,
                dash_ad_codecs: interlude_sim::media::CODECS.to_owned(),
            }],
            ad_delivery: AdDelivery::Proxy,
            ..StitcherConfig::default()
        },
        ..InterludeConfig::default()
    };
    config.events.data_dir = dir.path().join("events");
    config.decision.catalog = Some(catalog_file);
    // Only the ad server's socket is opened (the origin's is, as a configured host, for the ad's segments);
    // the canary, on loopback too, is not.
    config.outbound.allow = vec![ads.addr.to_string()];
    config.outbound.ca_file = Some(ca_file);
    config.outbound.built_in_roots = false;

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    config.server.public_base_url = Some(base.clone());
    let app_clock = clock.clone();
    let app = Arc::new(
        App::build(&config, Arc::new(move || app_clock.now()))
            .await
            .unwrap(),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = app.clone();
    let server = tokio::spawn(async move {
        serving
            .serve_on(listener, async {
                let _ = stopped.await;
            })
            .await
    });

    // A session before the break.
    let http = reqwest::Client::new();
    let mut session = None;
    for _ in 0..100 {
        let created = http
            .post(format!("{base}/v1/sessions"))
            .header("content-type", "application/json")
            .body(r#"{"channel":"live1","viewer":{"device":"tv"}}"#)
            .send()
            .await
            .unwrap();
        let ready = http
            .get(format!("{base}/v1/channels/live1/origin/0.m3u8"))
            .send()
            .await
            .unwrap()
            .status()
            .is_success();
        if created.status().is_success() && ready {
            let body: serde_json::Value = created.json().await.unwrap();
            session = body["session_id"].as_str().map(str::to_owned);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let session = session.expect("the stitcher never read the origin");

    // Once the break is over, its ad's segments are all in the playlist.
    while clock.now() < epoch + TimeDelta::seconds(52) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let first = common::ad_segments(&http, &base, &session, 0).await;
    assert!(
        !first.is_empty(),
        "no ad in the playlist: the third party's tag did not fill the break"
    );
    common::fetch_all(&http, &first).await;

    // Every pixel arrives (a wait for delivery, not a bound on its time).
    let expected: BTreeMap<String, usize> = std::iter::once("/imp".to_owned())
        .chain(TRACKED.iter().map(|e| format!("/t/{e}")))
        .map(|p| (p, 1))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while ads.per_path() != expected {
        assert!(
            Instant::now() < deadline,
            "pixels received: {:?}, expected {expected:?}",
            ads.per_path()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The same segments again, and the other rendition's: the same reports, nothing fires again.
    common::fetch_all(&http, &first).await;
    common::fetch_all(&http, &common::ad_segments(&http, &base, &session, 1).await).await;

    // The outbox's metrics are described and recorded.
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("# HELP outbox_pixels_fired_total")
            && metrics.contains(r#"outbox_pixels_fired_total{event="impression"}"#),
        "{metrics}"
    );

    // Shutdown submits the last beacons and queues their pixels before the outbox drains.
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();

    assert_eq!(ads.per_path(), expected, "each pixel exactly once");
    let impression = ads
        .hits
        .lock()
        .unwrap()
        .iter()
        .find(|h| h.starts_with("/imp"))
        .cloned()
        .unwrap();
    assert!(
        impression.starts_with("/imp?ss=2&cb=") && !impression.contains('['),
        "macros expanded: {impression}"
    );
    assert_eq!(
        canary_hits.load(Ordering::SeqCst),
        0,
        "the unlisted host was called"
    );

    // Nothing left to send; the canary is a dead letter, refused by the guard.
    // (The dispatcher's aborted writer task lets go of the file once the runtime has dropped it.)
    let path = config.events.data_dir.join("outbox.redb");
    let mut store = RedbStore::open(&path);
    for _ in 0..100 {
        if store.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        store = RedbStore::open(&path);
    }
    let store = store.unwrap();
    assert_eq!(store.depth().await.unwrap(), 0);
    let dead = store.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert!(dead[0].pixel.url_template.ends_with("/canary"), "{dead:?}");
    assert!(dead[0].reason.starts_with("rejected"), "{dead:?}");
}

/// The decider's win notice goes through the outbox: deciding the same break twice (a retried decision)
/// notifies the winning bidder once, with the price filled in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_win_notice_goes_through_the_outbox_once_per_ad_instance() {
    use axum::Router;
    use axum::extract::State;
    use axum::routing::{get, post};
    use interlude_decision::catalog::Catalog;
    use interlude_decision::engine::Engine;
    use interlude_decision::{PodRequest, ViewerContext};
    use interlude_server::decisioning::decider::{BidderConfig, Decider, DemandConfig};
    use interlude_server::pixels::PixelOutbox;

    let notices: Arc<Mutex<Vec<String>>> = Arc::default();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bidder = format!("http://{}", listener.local_addr().unwrap());
    let base = bidder.clone();
    let app = Router::new()
        .route(
            "/bid",
            post(move |axum::Json(request): axum::Json<serde_json::Value>| {
                let base = base.clone();
                async move {
                    let adm = r#"<VAST version="4.2"><Ad id="b1"><InLine><AdSystem>dsp</AdSystem><AdTitle>b1</AdTitle>
                        <Impression><![CDATA[https://dsp.example/imp]]></Impression><Creatives><Creative adId="b1">
                        <Linear><Duration>00:00:15</Duration><MediaFiles><MediaFile delivery="streaming"
                        type="application/x-mpegURL" width="1280" height="720" bitrate="2500">
                        <![CDATA[https://cdn.example/b1/720p.m3u8]]></MediaFile></MediaFiles></Linear></Creative>
                        </Creatives></InLine></Ad></VAST>"#;
                    let response = serde_json::json!({
                        "id": request["id"], "cur": "USD",
                        "seatbid": [{ "bid": [{ "id": "b1", "impid": request["imp"][0]["id"], "price": 20.0,
                            "adomain": ["dsp.example"], "dur": 15, "adm": adm,
                            "nurl": format!("{base}/win?price=${{AUCTION_PRICE}}") }] }]
                    });
                    ([("content-type", "application/json")], response.to_string())
                }
            }),
        )
        .route(
            "/win",
            get(
                |State(seen): State<Arc<Mutex<Vec<String>>>>, uri: axum::http::Uri| async move {
                    seen.lock().unwrap().push(uri.query().unwrap_or("").to_owned());
                },
            ),
        )
        .with_state(notices.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let loopback = interlude_outbound::OutboundConfig {
        allow: vec!["127.0.0.0/8".into()],
        ..interlude_outbound::OutboundConfig::default()
    };
    let client = interlude_outbound::GuardedClient::new(&loopback).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let outbox = Arc::new(
        PixelOutbox::embedded(
            &interlude_outbox::OutboxConfig::default(),
            &dir.path().join("outbox.redb"),
            client.clone(),
        )
        .unwrap(),
    );
    let catalog =
        Catalog::from_toml(include_str!("../../decision/tests/data/catalog.toml")).unwrap();
    let now: chrono::DateTime<Utc> = "2026-11-23T20:00:00Z".parse().unwrap();
    let engine = Arc::new(Engine::new(catalog, Arc::new(NoCounts), 6, 500));
    let decider = Decider::new(
        engine,
        Arc::new(move || now),
        DemandConfig {
            bidders: vec![BidderConfig::new("dsp", format!("{bidder}/bid"))],
            ..DemandConfig::default()
        },
        client,
    )
    .with_outbox(outbox.clone());
    let request = PodRequest {
        channel: "live1".into(),
        session_id: "s1".into(),
        break_id: "b1".into(),
        duration_secs: Some(60.0),
        viewer: ViewerContext {
            device: Some("tv".into()),
            country: Some("DE".into()),
            genre: Some("football".into()),
            ..ViewerContext::default()
        },
    };
    let mut instances = Vec::new();
    let mut bids = Vec::new();
    for _ in 0..2 {
        let d = decider.decide(&request, false, true).await;
        let won = d.decision.pod.ads.iter().find(|a| a.creative_id == "b1");
        let won = won.expect("the bid wins a slot");
        // The stitcher says the ad is served once its pod is stored: the win notice goes then.
        decider.served(won);
        instances.push(won.ad_instance_id.clone());
        bids.push(won.bid.clone().expect("a programmatic ad carries its bid"));
    }
    assert_eq!(instances[0], instances[1], "one ad instance per break");
    assert_eq!(bids[0], bids[1], "one auction per break");
    // The notice arrives (a wait for delivery, not a bound on its time), then nothing is left to send.
    let deadline = Instant::now() + Duration::from_secs(30);
    while notices.lock().unwrap().is_empty() || outbox.depth().await.unwrap() > 0 {
        assert!(Instant::now() < deadline, "no win notice");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The notice is keyed by its bid (auction, seat, bid and imp ids) and the bidder's URL as written (macros
    // unexpanded): queued again, it is a duplicate.
    let b = &bids[0];
    let again = interlude_outbox::Pixel::new(
        format!("bid:{}:{}:{}:{}", b.auction_id, b.seat, b.bid_id, b.imp_id),
        interlude_outbox::PixelEvent::Nurl,
        format!("{bidder}/win?price=${{AUCTION_PRICE}}"),
    );
    assert_eq!(
        outbox.enqueue(vec![again]).await.unwrap(),
        [interlude_outbox::Enqueued::Duplicate]
    );
    outbox.shutdown().await.unwrap();
    assert_eq!(*notices.lock().unwrap(), ["price=20.0000"]);
}

/// Counters with nothing delivered and nothing seen: decisions without an event store.
struct NoCounts;

impl interlude_events::Counters for NoCounts {
    fn delivered(&self, _: &str, _: chrono::DateTime<Utc>) -> u64 {
        0
    }
    fn viewer_impressions(&self, _: &str, _: &str, _: chrono::DateTime<Utc>) -> u64 {
        0
    }
}
