//! End to end with a real decoder: the origin simulator (real media, a CUE-OUT break with a splice_insert),
//! the stitcher in proxy mode, and ffprobe decoding one session's stitched playlist across the whole break.
//!
//! The decoded video must be continuous (no frame gap or jump) and last exactly as long as the playlist says:
//! the content before and after the break plus the ad and slate that replaced it. Needs ffmpeg/ffprobe on
//! PATH: `scripts/test.sh` installs them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::{new_session, start, until_channel_time};
use interlude_server::stitcher::config::AdDelivery;
use interlude_sim::tools;

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
    let run = start(AdDelivery::Proxy, 30).await;
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
        .filter(|b| b.event_type.as_str() == "impression" || b.event_type.as_str() == "complete")
        .count();
    assert_eq!(impressions, 2, "one impression and one complete for the ad");
}
