//! Frequency caps under burst, through the whole application (`App::build`, embedded mode): the decisions of
//! one viewer made at once each see the viewer's delivered past unchanged, so before reservations five
//! stitched sessions of one viewer at one break got a cap-1 line item twice, and twenty parallel `/v1/vast`
//! requests all got it (issue 21, "Correctness under burst"). Each decision now reserves its ads against
//! the viewer's caps, atomically: the capped line item goes to exactly one of them, and the house line item
//! fills the others. Goals likewise: a herd decided at once takes a line item exactly to its goal.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use interlude_server::stitcher::config::{ChannelConfig, StitcherConfig};
use interlude_server::{App, InterludeConfig};
use interlude_sim::clock::{Clock as _, ScaledClock};
use interlude_sim::origin::{OriginConfig, OriginState, router};
use tokio::net::TcpListener;

/// Channel time runs this many times faster than real time.
const SPEED: f64 = 4.0;

/// A cap-1 line item `capped` (its goal `goal`) and a house line item, both with one 15 s creative of the
/// origin's assets.
fn catalog(origin: &str, goal: u64) -> String {
    let renditions = format!(
        r#"renditions = [{{ bandwidth = 300000, resolution = "320x180", playlist = "{origin}/assets/ads/ad15/r0/index.m3u8" }}, {{ bandwidth = 800000, resolution = "640x360", playlist = "{origin}/assets/ads/ad15/r1/index.m3u8" }}]"#
    );
    format!(
        r#"
[[advertisers]]
id = "brand"
[[advertisers]]
id = "house"
[[campaigns]]
id = "brand-q4"
advertiser = "brand"
[[campaigns]]
id = "house-fill"
advertiser = "house"

[[line_items]]
id = "capped"
campaign = "brand-q4"
tier = "standard"
start = "2020-01-01T00:00:00Z"
end = "2100-01-01T00:00:00Z"
goal = {{ impressions = {goal} }}
cpm = 20.0
pacing = "asap"
frequency_caps = [{{ max = 1, window_hours = 24 }}]
creatives = ["brand-15"]

[[line_items]]
id = "house"
campaign = "house-fill"
tier = "house"
start = "2020-01-01T00:00:00Z"
end = "2100-01-01T00:00:00Z"
goal = {{ impressions = 1000000 }}
cpm = 0.0
creatives = ["house-15"]

[[creatives]]
id = "brand-15"
advertiser = "brand"
duration_secs = 15.0
approved = true
{renditions}

[[creatives]]
id = "house-15"
advertiser = "house"
duration_secs = 15.0
approved = true
{renditions}
"#
    )
}

/// The application serving, over an origin whose break is 30..50 s of channel time (now at 20 s).
struct Running {
    base: String,
    clock: Arc<ScaledClock>,
    epoch: DateTime<Utc>,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<interlude_server::Result<()>>,
    _dir: tempfile::TempDir,
}

async fn start(goal: u64) -> Running {
    let dir = tempfile::tempdir().unwrap();
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
    let catalog_file = dir.path().join("catalog.toml");
    std::fs::write(&catalog_file, catalog(&origin, goal)).unwrap();

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
            ..StitcherConfig::default()
        },
        ..InterludeConfig::default()
    };
    config.events.data_dir = dir.path().join("events");
    config.decision.catalog = Some(catalog_file);
    config.decision.max_ads_per_pod = 1;

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
    let server = tokio::spawn(async move {
        app.serve_on(listener, async {
            let _ = stopped.await;
        })
        .await
    });
    Running {
        base,
        clock,
        epoch,
        stop,
        server,
        _dir: dir,
    }
}

impl Running {
    async fn stop(self) {
        self.stop.send(()).unwrap();
        self.server.await.unwrap().unwrap();
    }
}

/// The VAST document `/v1/vast` answers for a 15 s break to `viewer` on a TV.
async fn vast(http: reqwest::Client, base: String, viewer: String) -> String {
    http.get(format!(
        "{base}/v1/vast?channel=live1&duration=15&viewer={viewer}&device=tv"
    ))
    .send()
    .await
    .unwrap()
    .text()
    .await
    .unwrap()
}

/// Creates a stitched session of `viewer` once the stitcher has read the origin.
async fn session(http: &reqwest::Client, base: &str, viewer: &str) -> String {
    let body =
        format!(r#"{{"channel":"live1","viewer":{{"viewer_id":"{viewer}","device":"tv"}}}}"#);
    for _ in 0..100 {
        let created = http
            .post(format!("{base}/v1/sessions"))
            .header("content-type", "application/json")
            .body(body.clone())
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
            return body["session_id"].as_str().unwrap().to_owned();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the stitcher never read the origin");
}

/// The line items of `session`'s decided breaks, from its tracking document.
async fn line_items(http: &reqwest::Client, base: &str, session: &str) -> Vec<String> {
    let doc: serde_json::Value = http
        .get(format!("{base}/v1/sessions/{session}/tracking"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    doc["avails"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|a| a["ads"].as_array().into_iter().flatten())
        .filter_map(|ad| ad["line_item_id"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_stitched_sessions_of_one_viewer_at_one_break_get_a_cap_one_line_item_once() {
    let run = start(1_000_000).await;
    let http = reqwest::Client::new();
    let mut sessions = Vec::new();
    for _ in 0..5 {
        sessions.push(session(&http, &run.base, "viewer-1").await);
    }
    // Every session plays up to the break: each decides its pod (at the cue or on its playlist request).
    while run.clock.now() < run.epoch + TimeDelta::seconds(52) {
        for s in &sessions {
            http.get(format!("{}/s/{s}/0/media.m3u8", run.base))
                .send()
                .await
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut served = Vec::new();
    for s in &sessions {
        let items = line_items(&http, &run.base, s).await;
        assert_eq!(
            items.len(),
            1,
            "session {s} has one ad at the break: {items:?}"
        );
        served.extend(items);
    }
    let capped = served.iter().filter(|l| *l == "capped").count();
    assert_eq!(capped, 1, "{served:?}");
    assert_eq!(
        served.len() - capped,
        4,
        "house fills the others: {served:?}"
    );
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_parallel_vast_requests_of_one_viewer_get_the_capped_ad_once() {
    let run = start(1_000_000).await;
    let http = reqwest::Client::new();
    let requests =
        (0..20).map(|_| tokio::spawn(vast(http.clone(), run.base.clone(), "viewer-2".into())));
    let mut documents = Vec::new();
    for r in requests.collect::<Vec<_>>() {
        documents.push(r.await.unwrap());
    }
    let brand = documents.iter().filter(|d| d.contains("brand-15")).count();
    let house = documents.iter().filter(|d| d.contains("house-15")).count();
    assert_eq!(brand, 1, "the capped ad once");
    assert_eq!(house, 19, "house for the others");
    // Another viewer is not held by viewer-2's reservation.
    let other = vast(http.clone(), run.base.clone(), "viewer-3".into()).await;
    assert!(other.contains("brand-15"), "{other}");
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forty_parallel_vast_requests_take_a_line_item_exactly_to_its_goal() {
    let run = start(5).await;
    let http = reqwest::Client::new();
    let requests: Vec<_> = (0..40)
        .map(|k| tokio::spawn(vast(http.clone(), run.base.clone(), format!("herd-{k}"))))
        .collect();
    let mut brand = 0;
    for r in requests {
        brand += usize::from(r.await.unwrap().contains("brand-15"));
    }
    assert_eq!(
        brand, 5,
        "a goal of 5, nothing delivered yet: five pending reservations"
    );
    run.stop().await;
}

/// An impression counted confirms its reservation: it stops counting in the reservations (at once in
/// embedded mode, whose counters show the delivery from the confirming commit), so the line item goes on to
/// its goal. Before, a delivered
/// reservation counted next to its own delivery until it expired (minutes): with a goal of 3, two reserved
/// and one of them delivered, the line item stopped at 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_counted_impression_gives_its_goal_room_back_once_settled() {
    let run = start(3).await;
    let http = reqwest::Client::new();
    let vast = |viewer: &'static str| vast(http.clone(), run.base.clone(), viewer.to_owned());
    let (a, b) = (vast("viewer-a").await, vast("viewer-b").await);
    assert!(a.contains("brand-15") && b.contains("brand-15"), "{a}\n{b}");
    // Viewer a's player fires the impression pixel (ours, in the VAST); the answer comes once it is counted.
    let pixel = common::our_impression_pixel(&a, &run.base);
    let r = http.get(&pixel).send().await.unwrap();
    assert_eq!(r.status(), 204, "{pixel}");
    let c = vast("viewer-c").await;
    assert!(
        c.contains("brand-15"),
        "1 delivered + b pending < 3: room for c\n{c}"
    );
    let d = vast("viewer-d").await;
    assert!(
        d.contains("house-15"),
        "1 delivered + b and c pending = 3\n{d}"
    );
    run.stop().await;
}
