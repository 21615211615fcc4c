//! HLS Interstitials sessions: content untouched, each break an `EXT-X-DATERANGE` of class
//! `com.apple.hls.interstitial` with stable attributes, an asset list that is the session's decided pod with
//! signed tracking URLs, no server-side beacons; stitched sessions unaffected.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{start, until_channel_time};
use interlude_events::token::Keyring;
use interlude_server::stitcher::config::AdDelivery;

async fn session(base: &str, mode: &str) -> String {
    let http = reqwest::Client::new();
    for _ in 0..100 {
        let r = http
            .post(format!("{base}/v1/sessions"))
            .json(&serde_json::json!({ "channel": "live1", "mode": mode, "viewer": { "device": "desktop" } }))
            .send()
            .await
            .unwrap();
        if r.status() == 201 {
            let body: serde_json::Value = r.json().await.unwrap();
            let id = body["session_id"].as_str().unwrap().to_owned();
            let ready = http
                .get(format!("{base}/s/{id}/0/media.m3u8"))
                .send()
                .await
                .unwrap();
            if ready.status().is_success() {
                return id;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no session");
}

async fn text(url: String) -> String {
    reqwest::get(url).await.unwrap().text().await.unwrap()
}

fn segments(playlist: &str) -> Vec<&str> {
    playlist
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect()
}

fn daterange(playlist: &str) -> Option<&str> {
    playlist
        .lines()
        .find(|l| l.starts_with("#EXT-X-DATERANGE:") && l.contains("com.apple.hls.interstitial"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interstitial_sessions_mark_breaks_and_serve_the_pod_as_an_asset_list() {
    let run = start(AdDelivery::Redirect, 30).await;
    let keys = Arc::new(Keyring::new(
        1,
        b"interstitials-test-key-0123456789abcdef".to_vec(),
    ));
    let signer = keys.clone();
    run.stitcher.set_tracking_signer(Arc::new(move |claims| {
        signer.sign(claims).ok().map(|t| format!("/t/{t}"))
    }));
    let sgai = session(&run.base, "interstitials").await;
    let stitched = session(&run.base, "stitched").await;
    // The break is 30..50 s of channel time.
    until_channel_time(&run, 36).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let first = text(format!("{}/s/{sgai}/0/media.m3u8", run.base)).await;
    let origin = text(format!("{}/v1/channels/live1/origin/0.m3u8", run.base)).await;
    let tag = daterange(&first)
        .unwrap_or_else(|| panic!("no interstitial date range:\n{first}"))
        .to_owned();
    for attr in [
        "CLASS=\"com.apple.hls.interstitial\"",
        "START-DATE=\"",
        "PLANNED-DURATION=20.000",
        "X-RESUME-OFFSET=20.000",
        "X-RESTRICT=\"SKIP,JUMP\"",
        "X-SNAP=\"OUT,IN\"",
        "X-ASSET-LIST=\"",
    ] {
        assert!(tag.contains(attr), "{attr} missing in {tag}");
    }
    // Content untouched: the origin's segments, in order, and no ad segment of ours.
    let (ours, theirs) = (segments(&first), segments(&origin));
    assert!(!ours.iter().any(|s| s.contains("/ads/")));
    let common_len = ours.len().min(theirs.len()).min(5);
    for (o, t) in ours[..common_len].iter().zip(&theirs[..common_len]) {
        assert!(
            o.starts_with(&run.origin) && o.ends_with(&format!("/{t}")),
            "{o} is not the origin's {t}"
        );
    }
    assert_eq!(
        first
            .lines()
            .find(|l| l.starts_with("#EXT-X-MEDIA-SEQUENCE")),
        origin
            .lines()
            .find(|l| l.starts_with("#EXT-X-MEDIA-SEQUENCE")),
        "media sequence untouched"
    );

    // The asset list: the session's pod, with tracking URLs that verify.
    let list_url = tag
        .split("X-ASSET-LIST=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let list: serde_json::Value = reqwest::get(&list_url).await.unwrap().json().await.unwrap();
    let assets = list["ASSETS"].as_array().unwrap();
    assert!(!assets.is_empty(), "{list}");
    let asset = &assets[0];
    assert!(asset["URI"].as_str().unwrap().ends_with(".m3u8"));
    assert!(
        (asset["DURATION"].as_f64().unwrap() - 15.0).abs() < 0.01,
        "{asset}"
    );
    let tracking = &asset["X-INTERLUDE-TRACKING"];
    for event in [
        "impression",
        "start",
        "firstQuartile",
        "midpoint",
        "thirdQuartile",
        "complete",
    ] {
        let url = tracking["events"][event]
            .as_str()
            .unwrap_or_else(|| panic!("no {event} URL: {tracking}"));
        let token = url.rsplit("/t/").next().unwrap();
        let claims = keys.verify(token).unwrap();
        assert_eq!(
            claims.ad_instance_id,
            tracking["ad_instance_id"].as_str().unwrap()
        );
        assert_eq!(claims.session_id, sgai);
    }
    // The same decision a stitched rendering of this session would use; asking again changes nothing.
    let again: serde_json::Value = reqwest::get(&list_url).await.unwrap().json().await.unwrap();
    assert_eq!(
        again["ASSETS"][0]["X-INTERLUDE-TRACKING"]["ad_instance_id"],
        tracking["ad_instance_id"]
    );

    // Stable across refreshes.
    until_channel_time(&run, 44).await;
    let later = text(format!("{}/s/{sgai}/0/media.m3u8", run.base)).await;
    assert_eq!(
        daterange(&later),
        Some(tag.as_str()),
        "the date range changed between refreshes"
    );
    // An unknown break is a clear 404.
    let missing = reqwest::get(format!(
        "{}/s/{sgai}/interstitials/nope/assets.json",
        run.base
    ))
    .await
    .unwrap();
    assert_eq!(missing.status(), 404);
    assert!(missing.text().await.unwrap().contains("unknown break"));
    // The player fetches the ads itself: no server-side beacon for this session.
    assert!(run.beacons.beacons().iter().all(|b| b.session_id != sgai));
    // A stitched session of the same channel still gets ads in its playlist.
    let plain = text(format!("{}/s/{stitched}/0/media.m3u8", run.base)).await;
    assert!(plain.contains("/ads/"), "{plain}");
    assert!(daterange(&plain).is_none());
}
