//! Stitching a CMAF (fragmented MP4) channel: the origin simulator's `live1-cmaf` packaging with the fMP4 ad
//! and slate assets. The stitched media playlist must switch init segments with the media (RFC 8216bis
//! §4.4.4.5: an `EXT-X-MAP` applies to every following segment until the next one): the ad's `EXT-X-MAP` after
//! the `EXT-X-DISCONTINUITY` that starts the break, the slate's before the slate, the content's again after the
//! break; and ffmpeg must decode a session across the whole break, audio and video, without an error (in
//! proxy mode, where the ad and slate are retimed to continue the content, every second of it).
//! Needs ffmpeg/ffprobe on PATH: `scripts/test.sh` installs them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::{new_session, start_cmaf, until_channel_time};
use interlude_server::stitcher::config::AdDelivery;
use interlude_sim::tools;

/// What a segment line plays, by its URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Content,
    Ad,
    Slate,
}

fn kind_of(uri: &str) -> Kind {
    if uri.contains("/ads/") {
        Kind::Ad
    } else if uri.contains("/slate/") {
        Kind::Slate
    } else {
        assert!(
            uri.contains("/live/live1-cmaf/"),
            "unexpected segment {uri}"
        );
        Kind::Content
    }
}

/// The init segment each kind must play under in rendition `r`.
fn init_of(kind: Kind, r: &str) -> String {
    match kind {
        Kind::Content => format!("/live/live1-cmaf/{r}/init.mp4\""),
        Kind::Ad => format!("/assets/cmaf/ads/ad15/{r}/init.mp4\""),
        Kind::Slate => format!("/assets/cmaf/slate/{r}/init.mp4\""),
    }
}

/// Checks every segment of `playlist` plays under its own init segment, and that the init segment changes only
/// at a discontinuity; returns the kinds of the segments in order.
fn check_maps(playlist: &str, r: &str) -> Vec<Kind> {
    let mut map: Option<&str> = None;
    let mut discontinuity = false;
    let mut kinds = Vec::new();
    for line in playlist.lines() {
        if line == "#EXT-X-DISCONTINUITY" {
            discontinuity = true;
        } else if let Some(m) = line.strip_prefix("#EXT-X-MAP:") {
            assert!(
                map.is_none() || discontinuity,
                "EXT-X-MAP switched without a discontinuity at {line}:\n{playlist}"
            );
            assert!(Some(m) != map, "EXT-X-MAP repeated: {line}\n{playlist}");
            map = Some(m);
        } else if !line.starts_with('#') && !line.is_empty() {
            let kind = kind_of(line);
            let m = map.unwrap_or_else(|| panic!("{line} has no EXT-X-MAP:\n{playlist}"));
            assert!(
                m.ends_with(&init_of(kind, r)),
                "{line} ({kind:?}) plays under {m}:\n{playlist}"
            );
            discontinuity = false;
            kinds.push(kind);
        }
    }
    kinds
}

/// Decodes the playlist at `path` (segments over HTTP), audio and video; returns ffprobe's stdout.
fn decode(path: &std::path::Path, stream: &str, entries: &str) -> String {
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
                stream,
                "-show_entries",
                entries,
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
}

/// Decodes one fMP4 segment with its init segment in front; returns ffmpeg's error output.
fn decode_bytes(bytes: &[u8]) -> String {
    use std::io::Write;
    let mut child = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-nostdin",
            "-v",
            "error",
            "-i",
            "-",
            "-f",
            "null",
            "-",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stderr).trim().to_owned()
}

async fn stitched_break(delivery: AdDelivery) {
    tools::require("ffprobe").unwrap();
    let run = start_cmaf(delivery).await;
    let session = new_session(&run.base).await;
    // The break is 30..50 s; at 62 s the 40-segment window holds content, the whole break, and content again.
    until_channel_time(&run, 62).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    for (i, r) in ["r0", "r1"].into_iter().enumerate() {
        let playlist = reqwest::get(format!("{}/s/{session}/{i}/media.m3u8", run.base))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(playlist.contains("#EXT-X-VERSION:6\n"), "{playlist}");
        let mut kinds = check_maps(&playlist, r);
        kinds.dedup();
        assert_eq!(
            kinds,
            [Kind::Content, Kind::Ad, Kind::Slate, Kind::Content],
            "content, the ad, slate, content again:\n{playlist}"
        );
        // Each segment decodes after the init segment its EXT-X-MAP names (fetched as a player would,
        // through the stitcher's ad route for ads).
        let http = reqwest::Client::new();
        let mut init = Vec::new();
        for line in playlist.lines() {
            if let Some(map) = line.strip_prefix("#EXT-X-MAP:URI=\"") {
                let url = map.trim_end_matches('"');
                init = http
                    .get(url)
                    .send()
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap()
                    .to_vec();
            } else if !line.starts_with('#') && !line.is_empty() {
                let response = http.get(line).send().await.unwrap();
                assert!(
                    response.status().is_success(),
                    "{line}: {}",
                    response.status()
                );
                let body = response.bytes().await.unwrap();
                let bytes = [init.as_slice(), &body].concat();
                let stderr = tokio::task::spawn_blocking(move || decode_bytes(&bytes))
                    .await
                    .unwrap();
                assert!(stderr.is_empty(), "{line} does not decode: {stderr}");
            }
        }
        if i == 1 {
            continue;
        }
        // The whole session as one stream, audio and video.
        let path = std::env::temp_dir().join(format!(
            "interlude-cmaf-{}-{delivery:?}.m3u8",
            std::process::id()
        ));
        std::fs::write(&path, format!("{playlist}#EXT-X-ENDLIST\n")).unwrap();
        let (video, audio) = tokio::task::spawn_blocking({
            let path = path.clone();
            move || {
                (
                    decode(&path, "v:0", "frame=pts_time"),
                    decode(&path, "a:0", "frame=pts_time"),
                )
            }
        })
        .await
        .unwrap();
        let _ = std::fs::remove_file(&path);
        let total: f64 = playlist
            .lines()
            .filter_map(|l| l.strip_prefix("#EXTINF:"))
            .map(|l| l.trim_end_matches(',').parse::<f64>().unwrap())
            .sum();
        let video_secs = video.lines().filter(|l| !l.trim().is_empty()).count() as f64 / 25.0;
        // 1024 samples per AAC frame at 48 kHz.
        let audio_secs =
            audio.lines().filter(|l| !l.trim().is_empty()).count() as f64 * 1024.0 / 48_000.0;
        eprintln!(
            "{delivery:?} {r}: playlist {total} s, decoded {video_secs} s of video, {audio_secs} s of audio"
        );
        // ffmpeg's HLS demuxer feeds fMP4 to one MP4 demuxer, which files a fragment whose decode times go
        // back (the ad after the content, the content after the ad) before samples already read: in redirect
        // mode it drops up to a segment at each of the break's three discontinuities (players reset their
        // timeline there). In proxy mode the ad and slate continue the content's decode times: all plays.
        let lost = match delivery {
            AdDelivery::Redirect => 2.5 * 3.0,
            AdDelivery::Proxy => 0.25,
        };
        if delivery == AdDelivery::Proxy {
            // No jump back at any boundary, and no frame lost but two: where the content resumes after the
            // slate (which has no B-frames), the content's first frames are decoded before the slate's last is
            // shown, and ffmpeg's MP4 demuxer drops the two B-frames whose decode times then look out of order
            // (MPEG-TS carries no such constraint; players that honour the discontinuity lose nothing).
            let pts: Vec<f64> = video
                .lines()
                .filter_map(|l| l.trim().trim_end_matches(',').parse().ok())
                .collect();
            let odd: Vec<&[f64]> = pts
                .windows(2)
                .filter(|p| (p[1] - p[0] - 0.04).abs() > 0.01)
                .collect();
            let lost: f64 = odd.iter().map(|p| (p[1] - p[0]) / 0.04 - 1.0).sum();
            assert!(
                odd.iter().all(|p| p[1] > p[0]) && lost < 2.5,
                "video jumps: {odd:?}"
            );
        }
        for (what, secs) in [("video", video_secs), ("audio", audio_secs)] {
            assert!(
                secs > total - lost && secs <= total + 0.25,
                "decoded {secs} s of {what} for {total} s of playlist"
            );
        }
    }
    let events: Vec<String> = run
        .beacons
        .beacons()
        .iter()
        .map(|b| b.event_type.as_str().to_owned())
        .collect();
    assert!(
        events.iter().any(|e| e == "impression") && events.iter().any(|e| e == "complete"),
        "the ad's segments fired its beacons: {events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cmaf_channel_is_stitched_with_init_segments_switched_and_decodes_in_redirect_mode() {
    stitched_break(AdDelivery::Redirect).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cmaf_channel_is_stitched_with_init_segments_switched_and_decodes_in_proxy_mode() {
    stitched_break(AdDelivery::Proxy).await;
}
