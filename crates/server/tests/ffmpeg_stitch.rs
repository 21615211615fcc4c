//! End to end with a real decoder: the origin simulator (real media, a CUE-OUT break with a splice_insert),
//! the stitcher in proxy mode, and ffprobe decoding one session's stitched playlist across the whole break.
//!
//! The decoded video must be continuous (no frame gap or jump) and last exactly as long as the playlist says:
//! the content before and after the break plus the ad and slate that replaced it. Needs ffmpeg/ffprobe on
//! PATH: `scripts/test.sh` installs them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;
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
use interlude_sim::tools;

/// Channel time runs this many times faster than real time.
const SPEED: f64 = 4.0;

struct Running {
    base: String,
    clock: Arc<ScaledClock>,
    epoch: chrono::DateTime<chrono::Utc>,
    beacons: Arc<MemoryBeaconSink>,
}

async fn listen() -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    (listener, base)
}

/// Origin (40-segment window, a 20 s break at 30 s channel time) and stitcher, with channel time at 20 s.
async fn start(delivery: AdDelivery) -> Running {
    let origin_config = OriginConfig {
        window_segments: 40,
        first_break_secs: 30,
        break_duration_secs: 20,
        ..OriginConfig::default()
    };
    let epoch = origin_config.epoch;
    let clock = Arc::new(ScaledClock::new(epoch + TimeDelta::seconds(20), SPEED));
    let (origin_listener, origin) = listen().await;
    let state = OriginState::new(origin_config, clock.clone());
    tokio::spawn(async move { axum::serve(origin_listener, router(state)).await });

    let renditions = |path: &str| -> Vec<RenditionConfig> {
        [(300_000, "320x180", "r0"), (800_000, "640x360", "r1")]
            .into_iter()
            .map(|(bandwidth, res, r)| RenditionConfig {
                bandwidth,
                resolution: Some(res.to_owned()),
                playlist: format!("{origin}/assets/{path}/{r}/index.m3u8"),
            })
            .collect()
    };
    let config = StitcherConfig {
        channels: vec![ChannelConfig {
            id: "live1".to_owned(),
            origin: format!("{origin}/live/live1/master.m3u8"),
            poll_interval_ms: Some(200),
            origin_timeout_ms: 2_000,
            stale_after_secs: 30,
            slate: renditions("slate"),
        }],
        creatives: vec![CreativeConfig {
            id: "ad15".to_owned(),
            duration_secs: 15.0,
            renditions: renditions("ads/ad15"),
        }],
        ad_delivery: delivery,
        ..StitcherConfig::default()
    };
    let (listener, base) = listen().await;
    let beacons = Arc::new(MemoryBeaconSink::default());
    let stitcher_clock = clock.clone();
    let stitcher = Stitcher::new(
        config.clone(),
        base.clone(),
        Arc::new(MemorySessionStore::default()),
        Arc::new(ConfiguredPodSource::new(&config.creatives, 0.5)),
        beacons.clone(),
        Arc::new(move || stitcher_clock.now()),
    );
    stitcher.start();
    let app = routes::router(stitcher);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Running {
        base,
        clock,
        epoch,
        beacons,
    }
}

/// Waits (in real time) until channel time reaches `secs` after the epoch.
async fn until_channel_time(run: &Running, secs: i64) {
    while run.clock.now() < run.epoch + TimeDelta::seconds(secs) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Creates a session once the stitcher has read the origin.
async fn new_session(base: &str) -> String {
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

fn extinf_total(playlist: &str) -> f64 {
    playlist
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .map(|l| l.trim_end_matches(',').parse::<f64>().unwrap())
        .sum()
}

/// Decodes the playlist at `path` (segments over HTTP) and returns each video frame's PTS in seconds.
fn decoded_video_pts(path: &std::path::Path) -> Vec<f64> {
    let done = tools::run_bounded(
        Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-protocol_whitelist",
                "file,http,tcp",
                "-http_persistent",
                "0",
                "-select_streams",
                "v:0",
                "-show_entries",
                "frame=pts_time",
                "-of",
                "csv=p=0",
            ])
            .arg(path),
        Duration::from_secs(120),
    )
    .unwrap();
    assert!(done.success, "ffprobe failed: {}", done.stderr);
    assert!(
        done.stderr.trim().is_empty(),
        "ffprobe reported errors: {}",
        done.stderr
    );
    done.stdout
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse::<f64>().ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_decodes_a_stitched_break_seamlessly_in_proxy_mode() {
    tools::require("ffprobe").unwrap();
    let run = start(AdDelivery::Proxy).await;
    let session = new_session(&run.base).await;
    // The break is 30..50 s; at 62 s the 40-segment window holds content, the whole break, and content again.
    until_channel_time(&run, 62).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let playlist = reqwest::get(format!("{}/s/{session}/0/media.m3u8", run.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(playlist.contains("/ads/"), "no ad in:\n{playlist}");
    assert!(playlist.contains("/slate/"), "no slate in:\n{playlist}");
    let content_after = playlist
        .rsplit("#EXT-X-DISCONTINUITY\n")
        .next()
        .unwrap()
        .lines()
        .filter(|l| l.contains("/live/"))
        .count();
    assert!(
        content_after >= 3,
        "content must resume after the break:\n{playlist}"
    );
    let expected = extinf_total(&playlist);
    let time_of = |what: &str| -> f64 {
        let lines: Vec<&str> = playlist.lines().collect();
        lines
            .windows(2)
            .filter(|w| w[1].contains(what))
            .filter_map(|w| w[0].strip_prefix("#EXTINF:"))
            .map(|d| d.trim_end_matches(',').parse::<f64>().unwrap())
            .sum()
    };
    assert_eq!(time_of("/ads/"), 15.0, "the whole 15 s ad plays");
    assert_eq!(
        time_of("/slate/"),
        5.0,
        "slate fills the rest of the 20 s break exactly"
    );

    let path = std::env::temp_dir().join(format!("interlude-stitch-{}.m3u8", std::process::id()));
    std::fs::write(&path, format!("{playlist}#EXT-X-ENDLIST\n")).unwrap();
    let pts = tokio::task::spawn_blocking({
        let path = path.clone();
        move || decoded_video_pts(&path)
    })
    .await
    .unwrap();
    let _ = std::fs::remove_file(&path);

    let frame = 1.0 / 25.0;
    assert!(pts.len() > 100, "too few frames decoded: {}", pts.len());
    // Every step from one frame to the next is one frame duration: no gap, jump back, or repeat at any boundary.
    for (i, pair) in pts.windows(2).enumerate() {
        let step = pair[1] - pair[0];
        assert!(
            (step - frame).abs() < 0.25 * frame,
            "video is not continuous at frame {i}: {} -> {} s\n{playlist}",
            pair[0],
            pair[1]
        );
    }
    let decoded = pts.last().unwrap() - pts.first().unwrap() + frame;
    assert!(
        (decoded - expected).abs() < 2.0 * frame,
        "decoded {decoded} s of video, the playlist lasts {expected} s"
    );

    let impressions = run
        .beacons
        .beacons()
        .iter()
        .filter(|b| b.event.as_str() == "impression" || b.event.as_str() == "complete")
        .count();
    assert_eq!(impressions, 2, "one impression and one complete for the ad");
}
