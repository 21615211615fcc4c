//! The stitcher's HTTP surface against the origin simulator: session start (explicit and implicit), per-session
//! master and media playlists, ad segment redirects with server-side beacons, the tracking document, errors,
//! and the bounded last-good window when the origin goes down.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{new_session, start, start_with, until_channel_time};
use interlude_server::stitcher::config::AdDelivery;

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implicit_session_gets_a_personal_master_with_every_variant() {
    let run = start(AdDelivery::Redirect, 30).await;
    new_session(&run.base).await; // waits until the origin has been read
    let http = no_redirects();
    let response = http
        .get(format!(
            "{}/v1/channels/live1/master.m3u8?device=tv&country=FR",
            run.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["cache-control"],
        "private, no-store",
        "per-viewer playlists must not be cached by shared caches"
    );
    let master = response.text().await.unwrap();
    let variants: Vec<&str> = master
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect();
    assert_eq!(variants.len(), 2, "{master}");
    assert!(master.contains("RESOLUTION=640x360"), "{master}");
    for (i, uri) in variants.iter().enumerate() {
        assert!(uri.starts_with(&format!("{}/s/", run.base)), "{uri}");
        assert!(uri.ends_with(&format!("/{i}/media.m3u8")), "{uri}");
    }
    // Each request of the implicit form is a new viewer.
    let again = http
        .get(format!("{}/v1/channels/live1/master.m3u8", run.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_ne!(again, master);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_errors() {
    let run = start(AdDelivery::Redirect, 30).await;
    let session = new_session(&run.base).await;
    let http = no_redirects();
    let status = |url: String| {
        let http = http.clone();
        async move { http.get(url).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(
        status(format!("{}/v1/channels/nope/master.m3u8", run.base)).await,
        404
    );
    assert_eq!(
        status(format!("{}/s/nope/0/media.m3u8", run.base)).await,
        404
    );
    assert_eq!(
        status(format!("{}/s/{session}/9/media.m3u8", run.base)).await,
        404
    );
    assert_eq!(
        status(format!("{}/s/{session}/ads/nope/0/0.ts", run.base)).await,
        404
    );
    let unknown_field = http
        .post(format!("{}/v1/sessions", run.base))
        .header("content-type", "application/json")
        .body(r#"{"channel":"live1","origin":"http://evil.example/x.m3u8"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        unknown_field.status(),
        422,
        "a session cannot name its own origin: channels are an allowlist"
    );
    let unknown_channel = http
        .post(format!("{}/v1/sessions", run.base))
        .header("content-type", "application/json")
        .body(r#"{"channel":"other"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown_channel.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ad_segments_redirect_to_the_creative_and_fire_beacons_once_per_event() {
    let run = start(AdDelivery::Redirect, 30).await;
    let session = new_session(&run.base).await;
    // The break starts at 30 s channel time; by 36 s the first ad segments are in the window.
    until_channel_time(&run, 36).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let http = no_redirects();
    let playlist = http
        .get(format!("{}/s/{session}/1/media.m3u8", run.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let first_ad = playlist
        .lines()
        .find(|l| l.contains("/ads/") && l.ends_with("/0.ts"))
        .unwrap_or_else(|| panic!("no ad start in:\n{playlist}"));
    assert!(
        first_ad.contains("/1/0.ts"),
        "rendition 1's own ad URI: {first_ad}"
    );
    let before = playlist.split(first_ad).next().unwrap();
    assert!(
        before.trim_end().lines().rev().nth(2) == Some("#EXT-X-DISCONTINUITY"),
        "the ad must open with a discontinuity:\n{playlist}"
    );
    for _ in 0..2 {
        // The second fetch is a player retry: it re-emits the same events, which the pipeline deduplicates.
        let response = http.get(first_ad).send().await.unwrap();
        assert_eq!(response.status(), 307);
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        assert_eq!(
            location,
            format!("{}/assets/ads/ad15/r1/000.ts", run.origin),
            "best match for the 640x360 variant"
        );
    }
    let beacons = run.beacons.beacons();
    let instance = first_ad.split('/').rev().nth(2).unwrap();
    let events: Vec<&str> = beacons
        .iter()
        .filter(|b| b.ad_instance_id == instance)
        .map(|b| b.event_type.as_str())
        .collect();
    assert_eq!(events, ["impression", "start", "impression", "start"]);

    let tracking: serde_json::Value = http
        .get(format!("{}/v1/sessions/{session}/tracking", run.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ad = &tracking["avails"][0]["ads"][0];
    assert_eq!(ad["ad_instance_id"], instance);
    assert_eq!(ad["creative_id"], "ad15");
    assert_eq!(ad["duration_secs"], 15.0);
    assert_eq!(tracking["avails"][0]["planned_duration_secs"], 20.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_origin_is_bridged_for_a_bounded_time_then_502() {
    // Stale after 4 s of channel time: 1 s of real time at 4x.
    let run = start(AdDelivery::Redirect, 4).await;
    let session = new_session(&run.base).await;
    let url = format!("{}/s/{session}/0/media.m3u8", run.base);
    let http = no_redirects();
    assert_eq!(http.get(&url).send().await.unwrap().status(), 200);
    run.origin_task.abort();
    // Right after the outage the last good window is still served.
    assert_eq!(http.get(&url).send().await.unwrap().status(), 200);
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    let response = http.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 502);
    assert!(response.text().await.unwrap().contains("unavailable"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_playlist_requested_before_its_turn_in_the_spread_is_decided_at_once() {
    // Ten minutes of spread: no scheduled decision comes during the test, so the pod can only come from the
    // playlist request itself.
    let run = start_with(AdDelivery::Redirect, 30, 600_000).await;
    let session = new_session(&run.base).await;
    until_channel_time(&run, 36).await;
    let playlist = reqwest::get(format!("{}/s/{session}/1/media.m3u8", run.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        playlist
            .lines()
            .any(|l| l.contains("/ads/") && l.ends_with("/0.ts")),
        "the break was not decided on request:\n{playlist}"
    );
}
