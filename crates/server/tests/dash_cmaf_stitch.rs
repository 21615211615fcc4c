//! DASH sessions over a CMAF channel: the origin simulator's `live1-cmaf` MPD (fMP4 video and audio in
//! separate AdaptationSets) stitched with the muxed fMP4 creative and slate. Each ad and slate Period must
//! mirror the content's two AdaptationSets with separate video and audio tracks (init segment and media
//! through the server, each track's own timescale and first presentation time as @presentationTimeOffset);
//! every track decodes alone in ffmpeg for the Period's length; and fetching the ad's video and audio tracks
//! fires each of its six beacons exactly once (the video track's segments fire them, the audio's and the
//! init segments none). The seam check is in `dash_cmaf_seams.rs`. Needs ffmpeg/ffprobe on PATH: `scripts/test.sh` installs them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use common::dash::{manifest, track_bytes};
use common::{new_session, start_cmaf, until_channel_time};
use interlude_dash::{ContentKind, Period};
use interlude_server::stitcher::config::AdDelivery;
use interlude_sim::tools;

/// Numbers the temporary files of the tests running at once in this process.
static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// ffmpeg's errors decoding `bytes`, and ffprobe's (codec_type, duration in seconds) of each stream.
fn decode(bytes: &[u8], name: &str) -> (String, Vec<(String, f64)>) {
    let path = std::env::temp_dir().join(format!(
        "interlude-dash-cmaf-{}-{name}-{}.mp4",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::write(&path, bytes).unwrap();
    let errors = tools::run_bounded(
        Command::new("ffmpeg")
            .args(["-hide_banner", "-nostdin", "-v", "error", "-i"])
            .arg(&path)
            .args(["-f", "null", "-"]),
        Duration::from_secs(60),
    )
    .unwrap();
    let probe = tools::run_bounded(
        Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-show_entries",
                "packet=stream_index,pts_time,duration_time",
            ])
            .args(["-show_entries", "stream=index,codec_type", "-of", "csv=p=0"])
            .arg(&path),
        Duration::from_secs(60),
    )
    .unwrap();
    let _ = std::fs::remove_file(&path);
    assert!(probe.success, "ffprobe: {}", probe.stderr);
    // Lines are `index,codec_type` (streams) or `index,pts,duration` (packets).
    let mut kinds = Vec::new();
    let mut spans: HashMap<String, (f64, f64)> = HashMap::new();
    for line in probe.stdout.lines() {
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        match f[..] {
            [i, kind] if kind.parse::<f64>().is_err() => {
                kinds.push((i.to_owned(), kind.to_owned()))
            }
            [i, pts, d] => {
                if let (Ok(pts), Ok(d)) = (pts.parse::<f64>(), d.parse::<f64>()) {
                    let span = spans.entry(i.to_owned()).or_insert((f64::MAX, f64::MIN));
                    span.0 = span.0.min(pts);
                    span.1 = span.1.max(pts + d);
                }
            }
            _ => {}
        }
    }
    let streams = kinds
        .into_iter()
        .map(|(i, kind)| {
            let (a, b) = spans.get(&i).copied().unwrap_or((0.0, 0.0));
            (kind, b - a)
        })
        .collect();
    ((errors.stderr + &errors.stdout).trim().to_owned(), streams)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dash_session_over_cmaf_plays_ads_and_slate_as_separate_tracks() {
    separate_tracks(AdDelivery::Redirect).await;
}

/// Proxy mode retimes the muxed fMP4 segments HLS players get; the tracks DASH players get keep the
/// creative's times all the same (the MPD's presentationTimeOffset places them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dash_session_over_cmaf_plays_ads_and_slate_as_separate_tracks_in_proxy_mode() {
    separate_tracks(AdDelivery::Proxy).await;
}

async fn separate_tracks(delivery: AdDelivery) {
    tools::require("ffmpeg").unwrap();
    tools::require("ffprobe").unwrap();
    let run = start_cmaf(delivery).await;
    let session = new_session(&run.base).await;
    // The break is 30..50 s of channel time: at 62 s it is over and in the window.
    until_channel_time(&run, 62).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (text, mpd) = manifest(&run.base, &session).await;
    let content = mpd
        .periods
        .first()
        .filter(|p| !p.id.as_deref().unwrap_or("").contains("_ad"))
        .unwrap_or_else(|| panic!("content first:\n{text}"));
    let content_sets: Vec<(Option<String>, ContentKind, Vec<String>)> = content
        .adaptation_sets
        .iter()
        .map(|s| {
            (
                s.id.clone(),
                s.kind(),
                s.representations.iter().map(|r| r.id.clone()).collect(),
            )
        })
        .collect();
    assert_eq!(content_sets.len(), 2, "video and audio:\n{text}");
    let placed: Vec<&Period> = mpd
        .periods
        .iter()
        .filter(|p| {
            p.id.as_deref()
                .is_some_and(|id| id.contains("_ad") || id.contains("_slate"))
        })
        .collect();
    assert!(
        placed
            .iter()
            .any(|p| p.id.as_deref().unwrap().contains("_ad"))
            && placed
                .iter()
                .any(|p| p.id.as_deref().unwrap().contains("_slate")),
        "an ad and slate:\n{text}"
    );
    for p in &placed {
        let id = p.id.clone().unwrap();
        let is_ad = id.contains("_ad");
        let sets: Vec<(Option<String>, ContentKind, Vec<String>)> = p
            .adaptation_sets
            .iter()
            .map(|s| {
                (
                    s.id.clone(),
                    s.kind(),
                    s.representations.iter().map(|r| r.id.clone()).collect(),
                )
            })
            .collect();
        assert_eq!(
            sets, content_sets,
            "{id} mirrors the content's sets:\n{text}"
        );
        for s in &p.adaptation_sets {
            let (mime, track, timescale, first) = match s.kind() {
                // The creative's video has B-frames: shown two frames (1024 ticks) after its first decode
                // time; the slate has none.
                ContentKind::Video => ("video/mp4", "video", 12_800, if is_ad { 1024 } else { 0 }),
                _ => ("audio/mp4", "audio", 48_000, 0),
            };
            assert_eq!(s.mime_type.as_deref(), Some(mime), "{id}");
            for r in &s.representations {
                let t = r.segment_template.as_ref().unwrap();
                assert_eq!(t.timescale, Some(timescale), "{id} {}", r.id);
                assert_eq!(
                    t.presentation_time_offset.unwrap_or(0),
                    first,
                    "{id} {}",
                    r.id
                );
                let init = t.initialization.as_deref().unwrap();
                let media = t.media.as_deref().unwrap();
                assert!(init.ends_with(&format!("/{track}-init.mp4")), "{init}");
                assert!(
                    media.ends_with(&format!("/{track}-$Number$.m4s")),
                    "{media}"
                );
                let route = if is_ad { "/ads/" } else { "/slate-tracks/" };
                assert!(
                    init.starts_with(&format!("{}/s/{session}{route}", run.base)),
                    "{init}"
                );
            }
        }
    }

    // Every track of the first ad and of the first slate Period decodes alone for the Period's length; the
    // ad's beacons fire once each, from its video segments.
    let http = reqwest::Client::new();
    let starts = mpd.period_starts();
    let before = run.beacons.beacons().len();
    for kind in ["_ad", "_slate"] {
        let (i, p) = mpd
            .periods
            .iter()
            .enumerate()
            .find(|(_, p)| p.id.as_deref().unwrap().contains(kind))
            .unwrap();
        let start = starts[i].unwrap();
        let secs = p.duration.unwrap().as_secs_f64();
        for (set, s) in p.adaptation_sets.iter().enumerate() {
            for r in &s.representations {
                let bytes = track_bytes(&http, p, start, set, &r.id).await;
                let name = format!("{kind}-{}", r.id);
                let (errors, streams) = tokio::task::spawn_blocking(move || decode(&bytes, &name))
                    .await
                    .unwrap();
                assert!(errors.is_empty(), "{kind} {}: ffmpeg says {errors}", r.id);
                let wanted = if s.kind() == ContentKind::Video {
                    "video"
                } else {
                    "audio"
                };
                assert_eq!(streams.len(), 1, "{kind} {}: {streams:?}", r.id);
                assert_eq!(streams[0].0, wanted);
                // Slate's one segment is served whole, however long its Period (ending a break it may be
                // cut short); an ad's segments are its Period. AAC frames overrun by up to one frame and a
                // segment's audio is cut at a frame.
                if kind == "_ad" {
                    assert!(
                        (streams[0].1 - secs).abs() < 0.05,
                        "{kind} {}: {} s for {secs} s",
                        r.id,
                        streams[0].1
                    );
                } else {
                    assert!(
                        streams[0].1 + 0.05 >= secs,
                        "{kind} {}: {} s for {secs} s",
                        r.id,
                        streams[0].1
                    );
                }
                eprintln!(
                    "{kind} {}: {wanted} decodes, {:.3} s for a {secs} s Period",
                    r.id, streams[0].1
                );
            }
        }
    }
    let mut events: Vec<String> = run.beacons.beacons()[before..]
        .iter()
        .map(|b| b.event_type.as_str().to_owned())
        .collect();
    events.sort();
    // Two video Representations of the ad were fetched: each fetch of a video segment fires its events, so
    // each beacon twice (a player fetches one Representation per segment), the audio's none.
    let mut expected: Vec<String> = [
        "complete",
        "firstQuartile",
        "impression",
        "midpoint",
        "start",
        "thirdQuartile",
    ]
    .iter()
    .flat_map(|e| [e.to_string(), e.to_string()])
    .collect();
    expected.sort();
    assert_eq!(events, expected);
}
