//! The CMAF packaging of the simulated channel (`/live/live1-cmaf/…`): ffmpeg decodes it live across a break
//! without an error, its playlists carry the same segments, times and cue tags as the TS packaging's, and a
//! served segment's `tfdt` continues the stream across the content loop. Needs ffmpeg on PATH.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use interlude_mpegts::fmp4::{InitSegment, decode_times, sequence_numbers};
use interlude_sim::clock::{Clock, ManualClock, ScaledClock};
use interlude_sim::origin::{OriginConfig, OriginState, router};
use interlude_sim::tools;

/// The origin with its clock at `at_secs` channel time, running at `speed` (`None`: frozen there).
async fn start(config: OriginConfig, speed: Option<f64>, at_secs: i64) -> (String, OriginState) {
    let at = config.epoch + chrono::TimeDelta::seconds(at_secs);
    let clock: Arc<dyn Clock> = match speed {
        Some(speed) => Arc::new(ScaledClock::new(at, speed)),
        None => Arc::new(ManualClock::new(at)),
    };
    let state = OriginState::new(config, clock);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = router(state.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), state)
}

async fn get(url: &str) -> reqwest::Response {
    let r = reqwest::get(url).await.unwrap();
    assert!(r.status().is_success(), "{url}: {}", r.status());
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_decodes_twenty_seconds_of_the_cmaf_channel_across_a_break() {
    tools::require("ffmpeg").unwrap();
    let (base, _) = start(OriginConfig::default(), Some(4.0), 20).await;
    let url = format!("{base}/live/live1-cmaf/master.m3u8");
    let done = tokio::task::spawn_blocking(move || {
        tools::run_bounded(
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
    .unwrap()
    .unwrap();
    assert!(done.success, "ffmpeg failed: {}", done.stderr);
    assert!(
        done.stderr.trim().is_empty(),
        "ffmpeg reported errors: {}",
        done.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cmaf_playlists_match_the_ts_ones_but_for_the_map_and_the_names() {
    // Inside the first break (30 s..60 s), frozen so both playlists are read at the same instant.
    let (base, _) = start(OriginConfig::default(), None, 40).await;
    let ts = get(&format!("{base}/live/live1/r0/index.m3u8"))
        .await
        .text()
        .await
        .unwrap();
    let cmaf = get(&format!("{base}/live/live1-cmaf/r0/index.m3u8"))
        .await
        .text()
        .await
        .unwrap();
    assert!(cmaf.contains("#EXT-X-VERSION:6\n"), "{cmaf}");
    assert!(cmaf.contains("#EXT-X-MAP:URI=\"init.mp4\"\n"), "{cmaf}");
    assert!(ts.contains("#EXT-X-CUE-OUT"), "read inside a break: {ts}");
    let as_ts = cmaf
        .replace("#EXT-X-VERSION:6", "#EXT-X-VERSION:3")
        .replace("#EXT-X-MAP:URI=\"init.mp4\"\n", "")
        .replace(".m4s\n", ".ts\n");
    assert_eq!(as_ts, ts);
    let master = get(&format!("{base}/live/live1-cmaf/master.m3u8"))
        .await
        .text()
        .await
        .unwrap();
    assert!(master.contains("r1/index.m3u8"), "{master}");
    let init = get(&format!("{base}/live/live1-cmaf/r1/init.mp4"))
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(InitSegment::parse(&init).unwrap().tracks.len(), 2);
    assert_eq!(
        reqwest::get(format!("{base}/live/live1/r1/init.mp4"))
            .await
            .unwrap()
            .status(),
        404,
        "the TS packaging has no init segment"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cmaf_mpd_names_separate_video_and_audio_tracks_at_their_served_times() {
    let (base, state) = start(OriginConfig::default(), None, 40).await;
    let mpd = get(&format!("{base}/live/live1-cmaf/manifest.mpd"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        mpd.contains("initialization=\"dash/$RepresentationID$/init.mp4\"")
            && mpd.contains("media=\"dash/$RepresentationID$/$Number$.m4s\"")
            && mpd.contains("urn:scte:scte35:2014:xml+bin")
            && mpd.contains("urn:mpeg:dash:utc:direct:2014"),
        "{mpd}"
    );
    let window = state.timeline().window(state.timeline().pdt(20));
    for (content_type, track) in [("video", "v1"), ("audio", "a")] {
        // The AdaptationSet of this content type: its timeline's first t is the served segment's tfdt.
        let set = mpd
            .split("<AdaptationSet ")
            .find(|s| s.contains(&format!("contentType=\"{content_type}\"")))
            .unwrap_or_else(|| panic!("no {content_type} AdaptationSet: {mpd}"));
        assert!(
            set.contains(&format!("startNumber=\"{}\"", window.start)),
            "{set}"
        );
        assert!(
            set.contains(&format!("<Representation id=\"{track}\"")),
            "{set}"
        );
        let t: u64 = set
            .split("<S t=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let init = get(&format!("{base}/live/live1-cmaf/dash/{track}/init.mp4"))
            .await
            .bytes()
            .await
            .unwrap();
        let init = InitSegment::parse(&init).unwrap();
        assert_eq!(init.tracks.len(), 1, "one media component per track");
        let segment = get(&format!(
            "{base}/live/live1-cmaf/dash/{track}/{}.m4s",
            window.start
        ))
        .await
        .bytes()
        .await
        .unwrap();
        let served = decode_times(&segment).unwrap()[0].base_media_decode_time;
        assert_eq!(
            t, served,
            "{content_type}: MPD says {t}, the segment starts at {served}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_cmaf_segments_continue_the_stream_across_the_loop() {
    let (base, state) = start(OriginConfig::default(), None, 40).await;
    let init = get(&format!("{base}/live/live1-cmaf/r0/init.mp4"))
        .await
        .bytes()
        .await
        .unwrap();
    let init = InitSegment::parse(&init).unwrap();
    // Segments 5 and 6: the last file of the first loop and the first of the second.
    let mut times = Vec::new();
    for i in [5u64, 6] {
        let bytes = get(&format!("{base}/live/live1-cmaf/r0/{i}.m4s"))
            .await
            .bytes()
            .await
            .unwrap();
        assert_eq!(sequence_numbers(&bytes).unwrap(), vec![i as u32 + 1]);
        let video = decode_times(&bytes)
            .unwrap()
            .into_iter()
            .find(|t| init.track(t.track).unwrap().handler == *b"vide")
            .unwrap();
        times.push(video.base_media_decode_time);
    }
    // 2 s at the video track's 12.8 kHz, although segment 6 plays content file 0 again.
    assert_eq!(times[1] - times[0], 25_600);
    let expected = state.timeline().decode_offset(6) * 12_800 / 90_000;
    assert!(
        times[1].abs_diff(expected) <= 1,
        "{} vs {expected}",
        times[1]
    );
}
