//! DASH SSAI end to end: the origin simulator's live MPD (SCTE-35 in an EventStream), a session's stitched MPD
//! from the server, read the way a DASH player reads it — Periods in order, `$Number$` segments of the first
//! Representation, ad segments fetched through the server (server-side beacons) — and the bytes across the
//! break decoded by ffmpeg. Refreshes keep the break's Period ids and starts.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::dash::manifest;
use common::{new_session, start, until_channel_time};
use interlude_dash::Mpd;
use interlude_dash::segment::period_segments;
use interlude_server::stitcher::config::AdDelivery;
use interlude_sim::clock::Clock;
use interlude_sim::tools;

/// (period id, start) of every Period.
fn periods(mpd: &Mpd) -> Vec<(String, Duration)> {
    mpd.periods
        .iter()
        .map(|p| {
            (
                p.id.clone().unwrap_or_default(),
                p.start.unwrap_or_default(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dash_session_plays_its_ads_across_the_break_and_ffmpeg_decodes_it() {
    tools::require("ffmpeg").unwrap();
    let run = start(AdDelivery::Redirect, 30).await;
    let session = new_session(&run.base).await;
    // The break is 30..50 s of channel time: at 40 s it is under way, at 62 s it is over and in the window.
    until_channel_time(&run, 40).await;
    let (_, during) = manifest(&run.base, &session).await;
    until_channel_time(&run, 62).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (text, mpd) = manifest(&run.base, &session).await;
    let list = periods(&mpd);
    assert!(list.len() >= 3, "content, ads, content again:\n{text}");
    let ad_periods: Vec<&(String, Duration)> =
        list.iter().filter(|(id, _)| id.contains("ad")).collect();
    assert!(!ad_periods.is_empty(), "no ad Period:\n{text}");
    // Periods seen during the break keep their id and start once it is over.
    for (id, start) in periods(&during).iter().filter(|(id, _)| id.contains("ad")) {
        assert_eq!(
            list.iter().find(|(i, _)| i == id).map(|(_, s)| *s),
            Some(*start),
            "Period {id} moved"
        );
    }
    assert!(
        !text.contains("scte35:Binary"),
        "the stitched MPD does not leak the cues"
    );
    // The MPD names its clock (dash.js refuses a dynamic MPD without one).
    assert!(
        text.contains(r#"<UTCTiming schemeIdUri="urn:mpeg:dash:utc:direct:2014" value=""#),
        "{text}"
    );
    // Each ad Period maps the creative's first sample to its start: @presentationTimeOffset is the first PTS
    // of the creative's first segment (ffmpeg starts at 1.4 s), in the Representation's timescale.
    let creative = reqwest::get(format!("{}/assets/ads/ad15/r0/000.ts", run.origin))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let first_pts = interlude_mpegts::first_pts(&creative).expect("a PTS");
    assert!(first_pts > 0, "the creative does not start at 0");
    for p in mpd
        .periods
        .iter()
        .filter(|p| p.id.as_deref().is_some_and(|id| id.contains("_ad")))
    {
        for r in p.adaptation_sets.iter().flat_map(|a| &a.representations) {
            let t = r.segment_template.as_ref().expect("a template");
            let ts = t.timescale.unwrap();
            assert_eq!(
                t.presentation_time_offset,
                Some((first_pts * ts + 45_000) / 90_000),
                "{:?} {}: {text}",
                p.id,
                r.id
            );
        }
    }

    // Read it as a player would: every Period in order, the first Representation's segments that are still
    // in the time-shift window and complete at the live edge.
    let ast = mpd.availability_start_time.unwrap();
    let now = run.clock.now();
    let live = (now - ast).to_std().unwrap();
    let depth = mpd.time_shift_buffer_depth.unwrap();
    let oldest = live.saturating_sub(depth) + Duration::from_secs(2);
    let mut urls = Vec::new();
    for (i, p) in mpd.periods.iter().enumerate() {
        let start = p.start.unwrap_or_default();
        let end = mpd.periods.get(i + 1).and_then(|n| n.start).unwrap_or(live);
        let Ok(segments) = period_segments(p, start, Some(end)) else {
            continue;
        };
        let first_rep = p.adaptation_sets[0].representations[0].id.clone();
        for s in segments
            .into_iter()
            .filter(|s| s.representation_id == first_rep)
        {
            if s.start >= oldest && s.start + s.duration <= live {
                urls.push((p.id.clone().unwrap_or_default(), s.url));
            }
        }
    }
    assert!(
        urls.iter().any(|(id, _)| id.contains("ad")),
        "the window holds ad segments: {urls:?}"
    );
    let http = reqwest::Client::new();
    // Relative segment URLs resolve against the MPD's BaseURL (ISO/IEC 23009-1 §5.6), as a player does.
    let manifest_url = url::Url::parse(&format!("{}/s/{session}/manifest.mpd", run.base)).unwrap();
    let base = mpd
        .base_urls
        .first()
        .map_or(manifest_url.clone(), |b| manifest_url.join(&b.url).unwrap());
    let mut bytes = Vec::new();
    for (_, url) in &urls {
        let url = base.join(url).unwrap();
        let r = http.get(url.clone()).send().await.unwrap();
        assert!(r.status().is_success(), "{url}: {}", r.status());
        bytes.extend_from_slice(&r.bytes().await.unwrap());
    }
    assert!(
        run.beacons.total() > 0,
        "ad segment requests fired server-side beacons"
    );
    let path = std::env::temp_dir().join(format!("interlude-dash-{}.ts", std::process::id()));
    std::fs::write(&path, &bytes).unwrap();
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-f", "mpegts", "-i"])
        .arg(&path)
        .args(["-map", "0:v:0", "-f", "framemd5", "-"])
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "ffmpeg: {stderr}"
    );
    let post = list
        .iter()
        .find(|(id, _)| id.ends_with("_post"))
        .cloned()
        .unwrap_or_else(|| panic!("content after the break:\n{text}"));

    // Once the break has left the window (and the origin's MPD), the content after it keeps its Period id
    // and start: it does not turn back into the origin's own Period.
    until_channel_time(&run, 140).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (text, later) = manifest(&run.base, &session).await;
    assert!(
        !text.contains(r#"<Period id="p0" start="PT0S""#),
        "the origin's Period is back:\n{text}"
    );
    assert_eq!(periods(&later).first(), Some(&post), "{text}");

    let frames = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .count();
    let expected = urls.len() * 2 * 25;
    assert!(
        frames * 10 >= expected * 9,
        "decoded {frames} video frames of about {expected} ({} segments)",
        urls.len()
    );
}
