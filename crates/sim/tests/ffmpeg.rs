//! End to end with a real decoder: ffmpeg reads the simulated live channel (running 4× real time) for 20 s of
//! media without a single error, and a served segment carries the timestamps the timeline promises.
//! Needs ffmpeg/ffprobe on PATH: `scripts/test.sh` installs them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use interlude_sim::clock::{Clock, ScaledClock};
use interlude_sim::origin::{OriginConfig, OriginState, router};
use interlude_sim::tools;

fn require(tool: &str) {
    if let Err(e) = tools::require(tool) {
        panic!("{e}");
    }
}

/// Runs a command with a deadline; returns (success, stderr).
fn run_bounded(cmd: &mut Command, limit: Duration) -> (bool, String) {
    let done = tools::run_bounded(cmd, limit).unwrap();
    (done.success, done.stderr)
}

async fn start(config: OriginConfig, speed: f64) -> (String, OriginState) {
    let clock: Arc<dyn Clock> = Arc::new(ScaledClock::new(
        config.epoch + chrono::TimeDelta::seconds(20),
        speed,
    ));
    let state = OriginState::new(config, clock);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = router(state.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_decodes_twenty_seconds_of_the_live_channel_across_a_break() {
    require("ffmpeg");
    // The window at 20 s channel time leads into the first break at 30 s, so the read crosses its markers.
    let (base, _) = start(OriginConfig::default(), 4.0).await;
    let url = format!("{base}/live/live1/master.m3u8");
    let (ok, stderr) = tokio::task::spawn_blocking(move || {
        run_bounded(
            Command::new("ffmpeg").args([
                "-hide_banner",
                "-nostdin",
                "-v",
                "error",
                "-i",
                &url,
                "-t",
                "20",
                "-f",
                "null",
                "-",
            ]),
            Duration::from_secs(60),
        )
    })
    .await
    .unwrap();
    assert!(ok, "ffmpeg failed: {stderr}");
    assert!(stderr.trim().is_empty(), "ffmpeg reported errors: {stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_segments_start_at_the_timeline_pts() {
    require("ffprobe");
    let (base, state) = start(OriginConfig::default(), 1.0).await;
    // Segment 7 plays content file 1 of the second loop: its timestamps were shifted by a whole loop.
    let i = 7;
    let bytes = reqwest::get(format!("{base}/live/live1/r0/{i}.ts"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let path = std::env::temp_dir().join(format!("interlude-sim-{}.ts", std::process::id()));
    std::fs::write(&path, &bytes).unwrap();
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v",
            "-show_entries",
            "stream=start_time",
            "-of",
            "csv=p=0",
        ])
        .arg(&path)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    let text = String::from_utf8_lossy(&out.stdout);
    let start: f64 = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default()
        .trim()
        .parse()
        .expect(&text);
    let expected = state.timeline().pts(i) as f64 / 90_000.0;
    // The timeline anchors on the first PES of file 0 (audio, one AAC frame before video).
    assert!(
        (start - expected).abs() < 0.05,
        "video starts at {start}, timeline says {expected}"
    );
    assert!(
        reqwest::get(format!("{base}/live/live1/r0/999999999.ts"))
            .await
            .unwrap()
            .status()
            == 404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_third_party_tag_offers_a_plain_mp4_unlike_the_channel() {
    require("ffprobe");
    let (base, _) = start(OriginConfig::default(), 1.0).await;
    let vast = reqwest::get(format!("{base}/vast/loud-mp4.xml"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mp4_url = format!("{base}/assets/thirdparty/loud-10s.mp4");
    assert!(vast.contains(&format!("<![CDATA[{mp4_url}]]>")), "{vast}");
    assert!(vast.contains(r#"delivery="progressive" type="video/mp4""#));
    let r = reqwest::get(&mp4_url).await.unwrap();
    assert_eq!(
        r.headers().get("content-type").unwrap().to_str().unwrap(),
        "video/mp4"
    );
    let bytes = r.bytes().await.unwrap();
    let path = std::env::temp_dir().join(format!("interlude-sim-{}.mp4", std::process::id()));
    std::fs::write(&path, &bytes).unwrap();
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type,width,height,r_frame_rate,channels",
            "-of",
            "csv=p=0",
        ])
        .arg(&path)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    let text = String::from_utf8_lossy(&out.stdout);
    // 640x480 at 30 fps with stereo audio: another size, aspect, rate and layout than the channel's.
    assert!(text.contains("video,640,480,30/1"), "{text}");
    assert!(text.contains("audio,2"), "{text}");
}
