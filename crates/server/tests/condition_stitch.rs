//! End to end with real ffmpeg: a creative offered only as a progressive MP4 (1280×720, 30 fps, about
//! −14 LUFS, made here with ffmpeg) by a third-party VAST tag on a local ad server, decided for a live HLS (TS)
//! channel of the origin simulator (320×180 and 640×360 at 25 fps).
//!
//! First break: the ad is decided but skipped as `NEW_CREATIVE` (slate plays instead) and its conditioning is
//! queued. Once the worker pool has conditioned it: the next break stitches it into a new session's live
//! playlist; ffmpeg decodes that playlist across the break with no error output; the stitched ad, fetched
//! through the ad segment route (which fires the server-side beacons), measures −23 LUFS ± 1 LU (EBU R128);
//! the same viewer's DASH session plays the same ad in an ad Period. The channel's CMAF twin (`live1-cmaf`,
//! fragmented MP4 with audio and video muxed) shares the one conditioning (one job): its session stitches the
//! ad's fMP4 form after the ad's own `EXT-X-MAP`, which ffmpeg decodes across the break, at the same loudness;
//! and its DASH session plays the ad as separate video and audio tracks cut from that form, each decoding for
//! the ad's length.
//!
//! Needs ffmpeg and ffprobe on PATH (`scripts/test.sh` installs them).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use chrono::TimeDelta;
use common::NoCounts;
use interlude_condition::{JobQueue, JobState, RedbQueue};
use interlude_decision::engine::Engine;
use interlude_server::conditioning::{
    ConditionConfig, Conditioning, GuardedFetcher, routes as condition_routes,
};
use interlude_server::decisioning::decider::{Decider, DemandConfig};
use interlude_server::decisioning::explain;
use interlude_server::stitcher::beacons::MemoryBeaconSink;
use interlude_server::stitcher::config::{AdDelivery, ChannelConfig, StitcherConfig};
use interlude_server::stitcher::{Stitcher, routes};
use interlude_sim::clock::{Clock, ScaledClock};
use interlude_sim::origin::{OriginConfig, OriginState, router};
use interlude_sim::tools;

/// Channel time runs this many times faster than real time.
const SPEED: f64 = 4.0;
/// The ad's length in seconds.
const AD_SECS: u32 = 10;

fn run(program: &str, args: &[&str]) -> (bool, String, String) {
    let done = tools::run_bounded(Command::new(program).args(args), Duration::from_secs(300))
        .expect("tool runs");
    (done.success, done.stdout, done.stderr)
}

/// Integrated loudness of the first audio stream, as ffmpeg's ebur128 filter reports it.
fn loudness(path: &Path) -> f64 {
    let (ok, _, err) = run(
        "ffmpeg",
        &[
            "-hide_banner",
            "-nostats",
            "-i",
            path.to_str().unwrap(),
            "-filter_complex",
            "[0:a:0]ebur128[a]",
            "-map",
            "[a]",
            "-f",
            "null",
            "-",
        ],
    );
    assert!(ok, "ebur128 ran: {err}");
    let summary = &err[err.rfind("Integrated loudness:").expect("summary printed")..];
    let line = summary
        .lines()
        .find(|l| l.trim_start().starts_with("I:"))
        .expect("I: line");
    line.trim_start()[2..]
        .trim()
        .trim_end_matches("LUFS")
        .trim()
        .parse()
        .expect("a number")
}

fn inline_vast(media_url: &str) -> String {
    format!(
        r#"<VAST version="4.2"><Ad id="mp4-ad"><InLine><AdSystem>local</AdSystem><AdTitle>loud mp4</AdTitle>
        <Impression><![CDATA[https://3p.example/imp]]></Impression><Creatives><Creative id="cr-mp4" adId="mp4-1">
        <UniversalAdId idRegistry="ad-id.org">LOUD0001000H</UniversalAdId><Linear><Duration>00:00:{AD_SECS:02}</Duration>
        <MediaFiles><MediaFile delivery="progressive" type="video/mp4" width="1280" height="720" bitrate="2000"><![CDATA[{media_url}]]></MediaFile>
        </MediaFiles></Linear></Creative></Creatives></InLine></Ad></VAST>"#
    )
}

fn loopback() -> interlude_outbound::OutboundConfig {
    interlude_outbound::OutboundConfig {
        allow: vec!["127.0.0.0/8".into(), "localhost".into()],
        ..interlude_outbound::OutboundConfig::default()
    }
}

/// Polls the session's playlist (as a player would) until it shows a whole break with content on both
/// sides: some content, the break's first segment, and two content segments after its last.
async fn watch_for_whole_break(base: &str, session: &str) -> String {
    let url = format!("{base}/s/{session}/0/media.m3u8");
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    loop {
        let playlist = reqwest::get(&url).await.unwrap().text().await.unwrap();
        let uris: Vec<&str> = playlist.lines().filter(|l| !l.starts_with('#')).collect();
        let in_break = |u: &&str| u.contains("/ads/") || u.contains("/slate/");
        if let (Some(first), Some(last)) = (
            uris.iter().position(in_break),
            uris.iter().rposition(in_break),
        ) {
            let starts = uris[first].contains("/ads/")
                && (uris[first].ends_with("/0.ts") || uris[first].ends_with("/0.m4s"));
            if first > 0 && starts && uris.len() >= last + 3 {
                return playlist;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no whole break in 3 minutes:\n{playlist}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Polls the session's playlist until channel time `until_secs`; returns the last one.
async fn watch(
    base: &str,
    session: &str,
    clock: &ScaledClock,
    epoch: chrono::DateTime<chrono::Utc>,
    until_secs: i64,
) -> String {
    let url = format!("{base}/s/{session}/0/media.m3u8");
    loop {
        let playlist = reqwest::get(&url).await.unwrap().text().await.unwrap();
        if clock.now() >= epoch + TimeDelta::seconds(until_secs) {
            return playlist;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A new session of `channel` watched through its next whole break, which must list the whole ad in 2 s
/// segments: the session and its playlist.
async fn watch_whole_ad(base: &str, channel: &str) -> (String, String) {
    let session = new_session(base, channel).await;
    let playlist = watch_for_whole_break(base, &session).await;
    assert_eq!(
        uris_with(&playlist, "/ads/").len(),
        (AD_SECS / 2) as usize,
        "the whole ad of {channel} in 2 s segments:\n{playlist}"
    );
    (session, playlist)
}

async fn new_session(base: &str, channel: &str) -> String {
    let http = reqwest::Client::new();
    for _ in 0..100 {
        let ready = http
            .get(format!("{base}/v1/channels/{channel}/origin/0.m3u8"))
            .send()
            .await
            .unwrap()
            .status()
            .is_success();
        if ready {
            let created = http
                .post(format!("{base}/v1/sessions"))
                .header("content-type", "application/json")
                .body(format!(
                    r#"{{"channel":"{channel}","viewer":{{"device":"tv","country":"DE"}}}}"#
                ))
                .send()
                .await
                .unwrap();
            assert!(created.status().is_success());
            let body: serde_json::Value =
                serde_json::from_str(&created.text().await.unwrap()).unwrap();
            return body["session_id"].as_str().unwrap().to_owned();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the stitcher never read the origin");
}

/// Decodes the playlist at `path` (segments over HTTP) and returns each video frame's PTS in seconds.
fn decoded_video_pts(path: &Path) -> Vec<f64> {
    let (ok, out, err) = run(
        "ffprobe",
        &[
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
            path.to_str().unwrap(),
        ],
    );
    assert!(ok && err.trim().is_empty(), "ffprobe: {err}");
    out.lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse::<f64>().ok())
        .collect()
}

/// Writes `playlist` closed (`#EXT-X-ENDLIST`) to `path` and decodes it with ffmpeg (segments over HTTP):
/// whether it succeeded, and its error lines but the null muxer's notes that an audio packet starts a few
/// milliseconds before the previous one ended (the proxy retimes every spliced piece by its first PTS, and
/// AAC's priming frame starts a piece's audio 21 ms ahead of its video, so audio overlaps by a fraction of a
/// frame where one piece follows another; the simulator's own slate does the same at each of its segments).
fn decode_closed(playlist: &str, path: &Path) -> (bool, Vec<String>) {
    std::fs::write(path, format!("{playlist}#EXT-X-ENDLIST\n")).unwrap();
    let (ok, _, err) = run(
        "ffmpeg",
        &[
            "-hide_banner",
            "-v",
            "error",
            "-protocol_whitelist",
            "file,http,tcp",
            "-http_persistent",
            "0",
            "-i",
            path.to_str().unwrap(),
            "-f",
            "null",
            "-",
        ],
    );
    let errors = err
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| !l.contains("non monotonically increasing dts to muxer in stream 1"))
        .map(str::to_owned)
        .collect();
    (ok, errors)
}

/// The bytes of `uris` (absolute, or paths under `base`) fetched one after the other, as a player fetches an
/// ad through the ad segment route, after `init` (an fMP4 ad's init segment) when there is one.
async fn fetch_joined(base: &str, init: Option<&str>, uris: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for uri in init.into_iter().chain(uris.iter().copied()) {
        let url = if uri.starts_with("http") {
            uri.to_string()
        } else {
            format!("{base}{uri}")
        };
        let r = reqwest::get(&url).await.unwrap();
        assert!(r.status().is_success(), "{url}: {}", r.status());
        out.extend_from_slice(&r.bytes().await.unwrap());
    }
    out
}

/// The URIs in `playlist` on lines after `#EXTINF` that contain `what`.
fn uris_with<'a>(playlist: &'a str, what: &str) -> Vec<&'a str> {
    playlist
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains(what))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mp4_creative_is_skipped_as_new_then_conditioned_and_stitched_at_the_target_loudness() {
    tools::require("ffmpeg").unwrap();
    tools::require("ffprobe").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mp4 = tmp.path().join("loud.mp4");
    // A loud ad (about −14 LUFS) at another size and frame rate than the channel.
    common::make_mp4_creative(&mp4, AD_SECS, Some("volume=7dB"));

    // The third party: a VAST tag and its MediaFile on loopback.
    let (ads_listener, ads) = common::listen().await;
    let vast = inline_vast(&format!("{ads}/media/loud.mp4"));
    let bytes = std::fs::read(&mp4).unwrap();
    let ad_server = Router::new()
        .route(
            "/vast",
            get(move || async move { ([("content-type", "application/xml")], vast) }),
        )
        .route(
            "/media/loud.mp4",
            get(move || async move { ([("content-type", "video/mp4")], bytes) }),
        );
    tokio::spawn(async move { axum::serve(ads_listener, ad_server).await });

    // The live channel: breaks of 20 s at 30 s and then every 60 s of channel time.
    let origin_config = OriginConfig {
        window_segments: 40,
        first_break_secs: 30,
        break_duration_secs: 20,
        break_interval_secs: 60,
        ..OriginConfig::default()
    };
    let epoch = origin_config.epoch;
    let clock = Arc::new(ScaledClock::new(epoch + TimeDelta::seconds(20), SPEED));
    let (origin_listener, origin) = common::listen().await;
    let state = OriginState::new(origin_config, clock.clone());
    tokio::spawn(async move { axum::serve(origin_listener, router(state)).await });

    let (listener, base) = common::listen().await;
    let stitcher_clock = clock.clone();
    let now: interlude_server::stitcher::Clock = Arc::new(move || stitcher_clock.now());

    let queue = Arc::new(RedbQueue::open(&tmp.path().join("condition.redb")).unwrap());
    let condition_config = ConditionConfig {
        enabled: true,
        workers: 1,
        // The simulator's audio is mono (assets/README.md).
        audio_channels: 1,
        ..ConditionConfig::default()
    };
    let conditioning = Arc::new(
        Conditioning::start(
            &condition_config,
            queue.clone(),
            Arc::new(GuardedFetcher::new(&loopback(), 64 << 20, Duration::from_secs(60)).unwrap()),
            tmp.path().join("conditioned"),
            format!("{base}/v1/conditioned"),
            now.clone(),
        )
        .unwrap(),
    );

    let engine = Arc::new(Engine::new(
        common::tag_catalog(
            "loud",
            "loud-3p",
            "loud-mp4",
            AD_SECS,
            &format!("{ads}/vast"),
        ),
        Arc::new(NoCounts),
        6,
        500,
    ));
    let decider = Arc::new(Decider::new(
        engine,
        now.clone(),
        DemandConfig::default(),
        common::loopback_http(),
    ));
    let renditions = |path: &str| common::sim_renditions(&origin, path);
    let config = StitcherConfig {
        channels: vec![
            ChannelConfig {
                id: "live1".to_owned(),
                origin: format!("{origin}/live/live1/master.m3u8"),
                poll_interval_ms: Some(200),
                origin_timeout_ms: 2_000,
                stale_after_secs: 30,
                slate: renditions("slate"),
                dash_origin: Some(format!("{origin}/live/live1/manifest.mpd")),
                dash_ad_codecs: interlude_sim::media::CODECS.to_owned(),
            },
            ChannelConfig {
                id: "live1-cmaf".to_owned(),
                origin: format!("{origin}/live/live1-cmaf/master.m3u8"),
                poll_interval_ms: Some(200),
                origin_timeout_ms: 2_000,
                stale_after_secs: 30,
                slate: renditions("cmaf/slate"),
                dash_origin: Some(format!("{origin}/live/live1-cmaf/manifest.mpd")),
                dash_ad_codecs: interlude_sim::media::CODECS.to_owned(),
            },
        ],
        ad_delivery: AdDelivery::Proxy,
        decision_spread_ms: 0,
        ..StitcherConfig::default()
    };
    let beacons = Arc::new(MemoryBeaconSink::default());
    let stitcher: Arc<Stitcher> = Stitcher::builder(
        config,
        base.clone(),
        decider.clone(),
        beacons.clone(),
        now.clone(),
    )
    .conditioning(Some(conditioning.clone()))
    .build()
    .unwrap();
    stitcher.start();
    let app = routes::router(stitcher.clone())
        .merge(condition_routes::media_router(conditioning.clone()))
        .merge(explain::router_with_conditioning(
            decider,
            Some((conditioning.clone(), stitcher.clone())),
        ));
    tokio::spawn(async move { axum::serve(listener, app).await });

    // First break (30..50 s): the ad is chosen, skipped as new, and queued.
    let first = new_session(&base, "live1").await;
    let playlist = watch(&base, &first, &clock, epoch, 56).await;
    assert!(
        uris_with(&playlist, "/ads/").is_empty(),
        "no ad can play yet:\n{playlist}"
    );
    assert!(
        !uris_with(&playlist, "/slate/").is_empty(),
        "slate fills the break:\n{playlist}"
    );
    let skips = conditioning.skips();
    assert_eq!(skips.get("NEW_CREATIVE"), Some(&1), "{skips:?}");
    let jobs = queue.list().await.unwrap();
    assert_eq!(
        jobs.len(),
        1,
        "one job for the creative and the channel's ladder"
    );
    assert_eq!(
        jobs[0].spec.creative.as_str(),
        "uaid:ad-id.org:LOUD0001000H"
    );
    assert_eq!(
        jobs[0]
            .spec
            .recipe
            .variant_set
            .renditions
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>()
            .len(),
        2
    );

    // The pool conditions it.
    let deadline = std::time::Instant::now() + Duration::from_secs(600);
    loop {
        let rec = queue.get(&jobs[0].id).await.unwrap().unwrap();
        match rec.state {
            JobState::Ready => break,
            JobState::Failed { reason, .. } => panic!("conditioning failed: {reason}"),
            _ => {}
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not conditioned in 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // The decision explainer says so for the channel.
    let explained: serde_json::Value = reqwest::get(format!(
        "{base}/v1/decisions/explain?channel=live1&duration=20&device=tv&country=DE"
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(
        explained["conditioning"][0]["readiness"], "READY",
        "{explained:#}"
    );

    // The next break that starts after a new session joins stitches the conditioned ad.
    let (second, playlist) = watch_whole_ad(&base, "live1").await;
    let ad_segments = uris_with(&playlist, "/ads/");

    // ffmpeg decodes the live playlist across the break without a decoding error.
    let path = tmp.path().join("stitched.m3u8");
    let (ok, errors) = decode_closed(&playlist, &path);
    assert!(
        ok && errors.is_empty(),
        "decoding across the break: {errors:?}\n{playlist}"
    );
    // The video is continuous: every frame one frame (25 fps) after the last, into and out of the ad.
    let pts = decoded_video_pts(&path);
    assert!(pts.len() > 100, "too few frames decoded: {}", pts.len());
    let frame = 1.0 / 25.0;
    for (i, pair) in pts.windows(2).enumerate() {
        let step = pair[1] - pair[0];
        assert!(
            (step - frame).abs() < 0.25 * frame,
            "video is not continuous at frame {i}: {} -> {} s\n{playlist}",
            pair[0],
            pair[1]
        );
    }

    // The stitched ad, as a player fetches it (ad segment route), at the EBU R128 target.
    let ad = fetch_joined(&base, None, &ad_segments).await;
    let ad_path = tmp.path().join("stitched-ad.ts");
    std::fs::write(&ad_path, &ad).unwrap();
    let (ok, _, err) = run(
        "ffmpeg",
        &[
            "-hide_banner",
            "-v",
            "error",
            "-i",
            ad_path.to_str().unwrap(),
            "-f",
            "null",
            "-",
        ],
    );
    assert!(
        ok && err.trim().is_empty(),
        "the stitched ad decodes: {err}"
    );
    let lufs = loudness(&ad_path);
    eprintln!("The stitched ad measures {lufs:.1} LUFS (source about -14, target -23).");
    assert!(
        (lufs + 23.0).abs() <= 1.0,
        "the stitched ad measures {lufs} LUFS, target -23 ± 1"
    );

    // A DASH session of the same viewer plays the same decision: an ad Period over the conditioned segments,
    // through the same ad segment route.
    let instance = ad_segments[0]
        .split("/ads/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap()
        .to_owned();
    let mpd = reqwest::get(format!("{base}/s/{second}/manifest.mpd"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let parsed = interlude_dash::parse_mpd(&mpd).unwrap_or_else(|e| panic!("{e}\n{mpd}"));
    assert!(
        parsed
            .periods
            .iter()
            .any(|p| p.id.as_deref().is_some_and(|id| id.contains("ad"))),
        "no ad Period:\n{mpd}"
    );
    assert!(
        mpd.contains(&instance),
        "the MPD plays ad {instance}:\n{mpd}"
    );

    // The CMAF twin: the same conditioning (still one job), stitched in its fMP4 form after its own init
    // segment, decoded across the break, at the same loudness.
    assert_eq!(
        queue.list().await.unwrap().len(),
        1,
        "one job for both channels"
    );
    let (cmaf, playlist) = watch_whole_ad(&base, "live1-cmaf").await;
    let ad_segments = uris_with(&playlist, "/ads/");
    assert!(
        ad_segments.iter().all(|u| u.ends_with(".m4s")),
        "{playlist}"
    );
    let ad_map = playlist
        .lines()
        .filter(|l| l.starts_with("#EXT-X-MAP:") && l.contains("/v1/conditioned/"))
        .map(|l| l.split('"').nth(1).unwrap().to_owned())
        .next()
        .unwrap_or_else(|| panic!("no EXT-X-MAP of the conditioned ad:\n{playlist}"));
    let (ok, errors) = decode_closed(&playlist, &tmp.path().join("stitched-cmaf.m3u8"));
    assert!(
        ok && errors.is_empty(),
        "decoding the CMAF session across the break: {errors:?}\n{playlist}"
    );
    let ad = fetch_joined(&base, Some(&ad_map), &ad_segments).await;
    let ad_path = tmp.path().join("stitched-ad.mp4");
    std::fs::write(&ad_path, &ad).unwrap();
    let lufs = loudness(&ad_path);
    eprintln!("The stitched fMP4 ad measures {lufs:.1} LUFS (target -23).");
    assert!(
        (lufs + 23.0).abs() <= 1.0,
        "the stitched fMP4 ad measures {lufs} LUFS, target -23 ± 1"
    );

    // DASH over the CMAF twin: the ad Period's video and audio tracks, cut from the conditioned fMP4 form by
    // the ad segment route, each decode alone for the ad's length, the audio at the target loudness.
    let (text, mpd) = common::dash::manifest(&base, &cmaf).await;
    let starts = mpd.period_starts();
    let (i, period) = mpd
        .periods
        .iter()
        .enumerate()
        .find(|(_, p)| p.id.as_deref().is_some_and(|id| id.contains("_ad")))
        .unwrap_or_else(|| panic!("no ad Period:\n{text}"));
    let period_secs = period.duration.map_or(0.0, |d| d.as_secs_f64());
    assert!(
        (period_secs - f64::from(AD_SECS)).abs() <= 0.05,
        "the ad Period lasts {period_secs} s:\n{text}"
    );
    let http = reqwest::Client::new();
    for (set, adaptation) in period.adaptation_sets.iter().enumerate() {
        let rep = &adaptation.representations[0].id;
        let bytes = common::dash::track_bytes(&http, period, starts[i].unwrap(), set, rep).await;
        let track = tmp.path().join(format!("dash-ad-{set}.mp4"));
        std::fs::write(&track, &bytes).unwrap();
        let (ok, _, err) = run(
            "ffmpeg",
            &[
                "-hide_banner",
                "-nostdin",
                "-v",
                "error",
                "-i",
                track.to_str().unwrap(),
                "-f",
                "null",
                "-",
            ],
        );
        assert!(
            ok && err.trim().is_empty(),
            "DASH ad track {set} decodes: {err}"
        );
        let (_, secs, _) = run(
            "ffprobe",
            &[
                "-v",
                "error",
                "-show_entries",
                "format=duration",
                "-of",
                "csv=p=0",
                track.to_str().unwrap(),
            ],
        );
        let secs: f64 = secs
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("a duration: {secs:?}"));
        assert!(
            (secs - f64::from(AD_SECS)).abs() <= 0.05,
            "DASH ad track {set} lasts {secs} s, the ad {AD_SECS} s"
        );
        if adaptation.kind() == interlude_dash::ContentKind::Audio {
            let lufs = loudness(&track);
            eprintln!("The DASH ad's audio track measures {lufs:.1} LUFS (target -23).");
            assert!(
                (lufs + 23.0).abs() <= 1.0,
                "DASH ad audio {lufs} LUFS, target -23 ± 1"
            );
        }
    }

    // Its server-side beacons fired like any ad's.
    let fired: Vec<String> = beacons
        .beacons()
        .iter()
        .filter(|b| b.creative_id == "LOUD0001000H")
        .map(|b| b.event_type.as_str().to_owned())
        .collect();
    assert!(fired.iter().any(|e| e == "impression"), "{fired:?}");
    assert!(fired.iter().any(|e| e == "complete"), "{fired:?}");
    conditioning.shutdown().await;
}
