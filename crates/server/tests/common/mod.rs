//! Shared harness of the stitcher's integration tests: the origin simulator and a stitcher over it, both on
//! loopback ports, with channel time running faster than real time.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    dead_code,
    unreachable_pub
)]

pub mod dash;
pub mod tls;

use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use interlude_server::stitcher::beacons::MemoryBeaconSink;
use interlude_server::stitcher::config::{
    AdDelivery, ChannelConfig, CreativeConfig, RenditionConfig, StitcherConfig,
};
use interlude_server::stitcher::pods::ConfiguredPodSource;
use interlude_server::stitcher::session::MemorySessionStore;
use interlude_server::stitcher::{Stitcher, routes};
use interlude_sim::clock::{Clock, ScaledClock};
use interlude_sim::origin::{OriginConfig, OriginState, router};

/// Channel time runs this many times faster than real time.
const SPEED: f64 = 4.0;

/// The origin and the stitcher, serving.
pub struct Running {
    /// The stitcher's base URL.
    pub base: String,
    /// The origin's base URL.
    pub origin: String,
    /// Channel time.
    pub clock: Arc<ScaledClock>,
    /// Channel time zero.
    pub epoch: chrono::DateTime<chrono::Utc>,
    /// Server-side beacons.
    pub beacons: Arc<MemoryBeaconSink>,
    /// The stitcher.
    pub stitcher: Arc<Stitcher>,
    /// The origin's server task (abort it to take the origin down).
    pub origin_task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// As `common::start`, with the stitcher's channel `live1` reading the origin's CMAF packaging, the fMP4 slate,
/// and its CMAF DASH MPD, and ad15 in both TS and fMP4 (40-segment window, a 20 s break at 30 s channel time, channel time at 20 s, 4× real time).
pub async fn start_cmaf(delivery: AdDelivery) -> Running {
    let origin_config = OriginConfig {
        window_segments: 40,
        first_break_secs: 30,
        break_duration_secs: 20,
        ..OriginConfig::default()
    };
    start_cmaf_over(origin_config, &[("ad15", 15.0, "ads/ad15")], delivery).await
}

/// As [`start_cmaf`], over an origin configured by `origin_config`, with `creatives` as `(id, duration_secs,
/// asset path)` (each offered in both containers: the TS renditions and the fMP4 ones under `cmaf/`).
pub async fn start_cmaf_over(
    origin_config: OriginConfig,
    creatives: &[(&str, f64, &str)],
    delivery: AdDelivery,
) -> Running {
    let epoch = origin_config.epoch;
    let clock = Arc::new(ScaledClock::new(epoch + TimeDelta::seconds(20), 4.0));
    let (origin_listener, origin) = listen().await;
    let state = OriginState::new(origin_config, clock.clone());
    let origin_task =
        tokio::spawn(async move { axum::serve(origin_listener, router(state)).await });
    let config = StitcherConfig {
        channels: vec![ChannelConfig {
            id: "live1".to_owned(),
            origin: format!("{origin}/live/live1-cmaf/master.m3u8"),
            poll_interval_ms: Some(200),
            origin_timeout_ms: 2_000,
            stale_after_secs: 30,
            slate: sim_renditions(&origin, "cmaf/slate"),
            dash_origin: Some(format!("{origin}/live/live1-cmaf/manifest.mpd")),
            dash_ad_codecs: interlude_sim::media::CODECS.to_owned(),
        }],
        // Offered in both containers, TS first: the stitcher sets the TS renditions aside for this channel.
        creatives: creatives
            .iter()
            .map(|&(id, duration_secs, path)| CreativeConfig {
                id: id.to_owned(),
                duration_secs,
                renditions: [
                    sim_renditions(&origin, path),
                    sim_renditions(&origin, &format!("cmaf/{path}")),
                ]
                .concat(),
            })
            .collect(),
        ad_delivery: delivery,
        ..StitcherConfig::default()
    };
    let (listener, base) = listen().await;
    let beacons = Arc::new(MemoryBeaconSink::default());
    let stitcher_clock = clock.clone();
    let stitcher = Stitcher::builder(
        config.clone(),
        base.clone(),
        Arc::new(ConfiguredPodSource::new(&config.creatives, 0.5)),
        beacons.clone(),
        Arc::new(move || stitcher_clock.now()),
    )
    .sessions(Arc::new(MemorySessionStore::default()))
    .build()
    .unwrap();
    stitcher.start();
    let app = routes::router(stitcher.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Running {
        base,
        origin,
        clock,
        epoch,
        beacons,
        stitcher,
        origin_task,
    }
}

/// A listener on a free loopback port, and its base URL.
pub async fn listen() -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    (listener, base)
}

/// Origin (40-segment window, a 20 s break at 30 s channel time) and stitcher, with channel time at 20 s; the
/// stitcher serves its last good window for `stale_after_secs` of channel time when the origin fails.
/// The keyring every test stitcher signs client-side tracking URLs with.
#[allow(dead_code)] // Not every test binary signs.
pub fn tracking_keys() -> Arc<interlude_events::Keyring> {
    Arc::new(interlude_events::Keyring::new(
        1,
        b"interstitials-test-key-0123456789abcdef".to_vec(),
    ))
}

pub async fn start(delivery: AdDelivery, stale_after_secs: u64) -> Running {
    start_with(
        delivery,
        stale_after_secs,
        StitcherConfig::default().decision_spread_ms,
    )
    .await
}

/// As [`start`], with the break-start decisions spread over `decision_spread_ms`.
pub async fn start_with(
    delivery: AdDelivery,
    stale_after_secs: u64,
    decision_spread_ms: u64,
) -> Running {
    let origin_config = OriginConfig {
        window_segments: 40,
        first_break_secs: 30,
        break_duration_secs: 20,
        ..OriginConfig::default()
    };
    start_over(
        origin_config,
        &[("ad15", 15.0, "ads/ad15")],
        delivery,
        stale_after_secs,
        decision_spread_ms,
    )
    .await
}

/// As [`start_with`], over an origin configured by `origin_config`, with `creatives` as
/// `(id, duration_secs, asset path)` (each creative is used at most once per pod).
pub async fn start_over(
    origin_config: OriginConfig,
    creatives: &[(&str, f64, &str)],
    delivery: AdDelivery,
    stale_after_secs: u64,
    decision_spread_ms: u64,
) -> Running {
    let epoch = origin_config.epoch;
    let clock = Arc::new(ScaledClock::new(epoch + TimeDelta::seconds(20), SPEED));
    let (origin_listener, origin) = listen().await;
    let state = OriginState::new(origin_config, clock.clone());
    let origin_task =
        tokio::spawn(async move { axum::serve(origin_listener, router(state)).await });

    let renditions = |path: &str| sim_renditions(&origin, path);
    let config = StitcherConfig {
        channels: vec![ChannelConfig {
            id: "live1".to_owned(),
            origin: format!("{origin}/live/live1/master.m3u8"),
            poll_interval_ms: Some(200),
            origin_timeout_ms: 2_000,
            stale_after_secs,
            slate: renditions("slate"),
            dash_origin: Some(format!("{origin}/live/live1/manifest.mpd")),
            dash_ad_codecs: interlude_sim::media::CODECS.to_owned(),
        }],
        creatives: creatives
            .iter()
            .map(|&(id, duration_secs, path)| CreativeConfig {
                id: id.to_owned(),
                duration_secs,
                renditions: renditions(path),
            })
            .collect(),
        ad_delivery: delivery,
        decision_spread_ms,
        ..StitcherConfig::default()
    };
    let (listener, base) = listen().await;
    let beacons = Arc::new(MemoryBeaconSink::default());
    let stitcher_clock = clock.clone();
    let signer = tracking_keys();
    let tracking_base = base.clone();
    let stitcher = Stitcher::builder(
        config.clone(),
        base.clone(),
        Arc::new(ConfiguredPodSource::new(&config.creatives, 0.5)),
        beacons.clone(),
        Arc::new(move || stitcher_clock.now()),
    )
    .sessions(Arc::new(MemorySessionStore::default()))
    .tracking_signer(Some(Arc::new(move |claims| {
        signer
            .sign(claims)
            .ok()
            .map(|t| format!("{tracking_base}/t/{t}"))
    })))
    .build()
    .unwrap();
    stitcher.start();
    let app = routes::router(stitcher.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Running {
        base,
        origin,
        clock,
        epoch,
        beacons,
        stitcher,
        origin_task,
    }
}

/// Waits (in real time) until channel time reaches `secs` after the epoch.
pub async fn until_channel_time(run: &Running, secs: i64) {
    while run.clock.now() < run.epoch + TimeDelta::seconds(secs) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Creates a session once the stitcher has read the origin.
pub async fn new_session(base: &str) -> String {
    let http = reqwest::Client::new();
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
            let body: serde_json::Value =
                serde_json::from_str(&created.text().await.unwrap()).unwrap();
            return body["session_id"].as_str().unwrap().to_owned();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the stitcher never read the origin");
}

/// Counters with nothing delivered and nothing seen: decisions without an event store.
pub struct NoCounts;

impl interlude_events::Counters for NoCounts {
    fn delivered(&self, _: &str, _: chrono::DateTime<chrono::Utc>) -> u64 {
        0
    }
    fn viewer_impressions(&self, _: &str, _: &str, _: chrono::DateTime<chrono::Utc>) -> u64 {
        0
    }
}

/// A 60 s break of channel live1 for a TV viewer watching football in `country`.
pub fn football_request(session: &str, country: &str) -> interlude_decision::PodRequest {
    interlude_decision::PodRequest {
        channel: "live1".into(),
        session_id: session.into(),
        break_id: "b1".into(),
        duration_secs: Some(60.0),
        viewer: interlude_decision::ViewerContext {
            device: Some("tv".into()),
            country: Some(country.into()),
            genre: Some("football".into()),
            ..interlude_decision::ViewerContext::default()
        },
    }
}

/// The guarded outbound client tests use: their fake ad servers and bidders listen on loopback, which
/// production refuses, so it is allowed here (plain http included).
#[allow(dead_code)] // Not every test binary calls third parties.
pub fn loopback_http() -> interlude_outbound::GuardedClient {
    interlude_outbound::GuardedClient::new(&interlude_outbound::OutboundConfig {
        allow: vec!["127.0.0.0/8".into(), "localhost".into()],
        ..interlude_outbound::OutboundConfig::default()
    })
    .expect("a valid outbound configuration")
}

/// The ad segment URLs of `session`'s rendition `rendition`.
pub async fn ad_segments(
    http: &reqwest::Client,
    base: &str,
    session: &str,
    rendition: usize,
) -> Vec<String> {
    let playlist = http
        .get(format!("{base}/s/{session}/{rendition}/media.m3u8"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    playlist
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains("/ads/"))
        .map(|l| {
            if l.starts_with("http") {
                l.to_owned()
            } else if l.starts_with('/') {
                format!("{base}{l}")
            } else {
                format!("{base}/s/{session}/{rendition}/{l}")
            }
        })
        .collect()
}

/// Fetches each URL, asserting a success status, and reads its body.
/// The first `<Impression>` URL in `vast` (a VAST document or one `<Ad>` of it) that is ours: under
/// `{base}/t/` (a signed tracking pixel).
pub fn our_impression_pixel(vast: &str, base: &str) -> String {
    let ours = format!("{base}/t/");
    vast.split("<Impression")
        .skip(1)
        .find_map(|element| {
            let start = element.find(&ours)?;
            let url = &element[start..];
            Some(url[..url.find([']', '<']).unwrap_or(url.len())].to_owned())
        })
        .unwrap_or_else(|| panic!("no impression pixel of ours: {vast}"))
}

pub async fn fetch_all(http: &reqwest::Client, urls: &[String]) {
    for url in urls {
        let response = http.get(url).send().await.unwrap();
        assert!(
            response.status().is_success(),
            "{url}: {}",
            response.status()
        );
        response.bytes().await.unwrap();
    }
}

/// The simulator's two renditions (`r0` 320x180, `r1` 640x360) of the asset at `path` under `origin`
/// (`slate`, `ads/ad15`, …), as a channel's slate or a creative is configured.
pub fn sim_renditions(origin: &str, path: &str) -> Vec<RenditionConfig> {
    [(300_000, "320x180", "r0"), (800_000, "640x360", "r1")]
        .into_iter()
        .map(|(bandwidth, res, r)| RenditionConfig {
            bandwidth,
            resolution: Some(res.to_owned()),
            playlist: format!("{origin}/assets/{path}/{r}/index.m3u8"),
        })
        .collect()
}

/// A catalog of one standard line item `line_item` of `advertiser` (campaign `{advertiser}-q4`), selling the
/// `secs`-long creative `creative` whose VAST comes from `tag`.
pub fn tag_catalog(
    advertiser: &str,
    line_item: &str,
    creative: &str,
    secs: u32,
    tag: &str,
) -> interlude_decision::catalog::Catalog {
    interlude_decision::catalog::Catalog::from_toml(&format!(
        r#"
[[advertisers]]
id = "{advertiser}"
categories = []

[[campaigns]]
id = "{advertiser}-q4"
advertiser = "{advertiser}"

[[line_items]]
id = "{line_item}"
campaign = "{advertiser}-q4"
tier = "standard"
start = "2025-01-01T00:00:00Z"
end = "2028-01-01T00:00:00Z"
goal = {{ impressions = 1000000 }}
cpm = 10.0
creatives = ["{creative}"]

[[creatives]]
id = "{creative}"
advertiser = "{advertiser}"
duration_secs = {secs}.0
approved = true
vast_tag = "{tag}"
"#
    ))
    .unwrap()
}

/// A `secs`-long MP4 at `path` as third parties send them: testsrc2 at 1280×720, 30 fps (another size and
/// frame rate than the channel's), with a 1 kHz tone under `audio_filter` (e.g. `volume=7dB`: about −14 LUFS).
pub fn make_mp4_creative(path: &std::path::Path, secs: u32, audio_filter: Option<&str>) {
    let tone = format!("sine=frequency=1000:sample_rate=48000:duration={secs}");
    let audio = audio_filter.map_or(tone.clone(), |f| format!("{tone},{f}"));
    let done = interlude_sim::tools::run_bounded(
        std::process::Command::new("ffmpeg").args([
            "-hide_banner",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            &format!("testsrc2=size=1280x720:rate=30:duration={secs}"),
            "-f",
            "lavfi",
            "-i",
            &audio,
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-pix_fmt",
            "yuv420p",
            "-threads",
            "2",
            "-c:a",
            "aac",
            "-b:a",
            "128k",
            "-ac",
            "2",
            path.to_str().unwrap(),
        ]),
        Duration::from_secs(300),
    )
    .expect("ffmpeg runs");
    assert!(done.success, "creative made: {}", done.stderr);
}
