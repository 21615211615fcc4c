//! HLS Interstitials sessions: content untouched, each break an `EXT-X-DATERANGE` of class
//! `com.apple.hls.interstitial` with stable attributes, an asset list that is the session's decided pod (then
//! slate) with signed tracking URLs, no server-side beacons; stitched sessions unaffected.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Running, start, until_channel_time};
use interlude_events::token::Keyring;
use interlude_hls::AttributeList;
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

fn interstitial_tags(playlist: &str) -> Vec<&str> {
    playlist
        .lines()
        .filter(|l| l.starts_with("#EXT-X-DATERANGE:") && l.contains("com.apple.hls.interstitial"))
        .collect()
}

fn attributes(tag: &str) -> AttributeList {
    AttributeList::parse(tag.strip_prefix("#EXT-X-DATERANGE:").unwrap()).unwrap()
}

/// The session's playlist for rendition 0 and the origin's as the stitcher last read it, from one snapshot
/// (the stitcher re-reads the origin every 200 ms: retry until neither changes in between).
async fn playlist_and_origin(run: &Running, session: &str) -> (String, String) {
    for _ in 0..50 {
        let ours = text(format!("{}/s/{session}/0/media.m3u8", run.base)).await;
        let origin = text(format!("{}/v1/channels/live1/origin/0.m3u8", run.base)).await;
        let again = text(format!("{}/s/{session}/0/media.m3u8", run.base)).await;
        if ours == again {
            return (ours, origin);
        }
    }
    panic!("the channel never held still");
}

/// The keys the test stitcher signs tracking URLs with.
fn signer(_run: &Running) -> Arc<Keyring> {
    common::tracking_keys()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interstitial_sessions_mark_breaks_and_serve_the_pod_as_an_asset_list() {
    let run = start(AdDelivery::Redirect, 30).await;
    let keys = signer(&run);
    let sgai = session(&run.base, "interstitials").await;
    let stitched = session(&run.base, "stitched").await;
    // The break is 30..50 s of channel time.
    until_channel_time(&run, 36).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (first, origin) = playlist_and_origin(&run, &sgai).await;
    let tags = interstitial_tags(&first);
    assert_eq!(tags.len(), 1, "one interstitial per break:\n{first}");
    let tag = tags[0].to_owned();
    let attrs = attributes(&tag);
    assert!(attrs.get("ID").unwrap().starts_with("ad-"));
    assert_eq!(attrs.get("CLASS"), Some("com.apple.hls.interstitial"));
    assert_eq!(attrs.raw("PLANNED-DURATION"), Some("20.000"));
    assert_eq!(attrs.raw("X-RESUME-OFFSET"), Some("20.000"));
    assert_eq!(attrs.raw("X-PLAYOUT-LIMIT"), Some("20.000"));
    assert_eq!(attrs.get("X-RESTRICT"), Some("SKIP,JUMP"));
    assert_eq!(attrs.get("X-SNAP"), Some("IN"));
    assert_eq!(attrs.raw("DURATION"), None, "the break is still running");

    // START-DATE is the program date time of the origin's first break segment (the one after the CUE-OUT).
    assert!(origin.contains("#EXT-X-PROGRAM-DATE-TIME:"), "{origin}");
    let mut pdt = None;
    let mut break_pdt = None;
    let mut cue_out = false;
    for line in origin.lines() {
        if let Some(p) = line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
            pdt = Some(p.parse::<chrono::DateTime<chrono::Utc>>().unwrap());
        } else if line.starts_with("#EXT-X-CUE-OUT:") {
            cue_out = true;
        } else if !line.starts_with('#') && cue_out && break_pdt.is_none() {
            break_pdt = pdt;
        }
    }
    let start_date: chrono::DateTime<chrono::Utc> =
        attrs.get("START-DATE").unwrap().parse().unwrap();
    assert_eq!(
        Some(start_date),
        break_pdt,
        "START-DATE is not the break's PDT"
    );
    assert_eq!(
        start_date,
        run.epoch + chrono::TimeDelta::seconds(30),
        "the break starts at 30 s"
    );

    // Content untouched: without our date ranges, and with the origin's URIs resolved against the origin's
    // variant playlist (ours are absolute: the player reads them from this server), the same playlist.
    let origin_master_url = format!("{}/live/live1/master.m3u8", run.origin);
    let origin_master = text(origin_master_url.clone()).await;
    let variant = origin_master
        .lines()
        .find(|l| !l.starts_with('#') && !l.is_empty())
        .unwrap();
    let variant_url = url::Url::parse(&origin_master_url)
        .unwrap()
        .join(variant)
        .unwrap();
    let ours: Vec<&str> = first
        .lines()
        .filter(|l| !(l.starts_with("#EXT-X-DATERANGE:") && l.contains("interstitial")))
        .collect();
    let theirs: Vec<String> = origin
        .lines()
        .map(|l| {
            if l.starts_with('#') || l.is_empty() {
                l.to_owned()
            } else {
                variant_url.join(l).unwrap().to_string()
            }
        })
        .collect();
    assert_eq!(ours, theirs, "content differs from the origin");
    assert!(first.contains("#EXT-X-CUE-OUT"), "origin markers stay");
    // The segments are the origin's bytes.
    let first_segment = segments(&first)[0];
    let ours_bytes = reqwest::get(first_segment)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let theirs_bytes = reqwest::get(variant_url.join(segments(&origin)[0]).unwrap())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(!ours_bytes.is_empty());
    assert_eq!(ours_bytes, theirs_bytes);

    // The asset list: the session's pod (the same decision a stitched rendering would use), then slate for
    // the 5 s the 15 s ad leaves of the 20 s break; tracking URLs that verify.
    let list_url = attrs.get("X-ASSET-LIST").unwrap().to_owned();
    assert!(list_url.starts_with(&format!("{}/s/{sgai}/interstitials/", run.base)));
    let list: serde_json::Value = reqwest::get(&list_url).await.unwrap().json().await.unwrap();
    let assets = list["ASSETS"].as_array().unwrap();
    let break_id = attrs.get("ID").unwrap().strip_prefix("ad-").unwrap();
    let session = run.stitcher.session(&sgai).await.unwrap();
    let decision = session
        .decision(break_id)
        .expect("decided by the asset list");
    assert_eq!(decision.ads.len(), 1, "{list}");
    assert_eq!(assets.len(), decision.ads.len() + 1, "{list}");
    for (asset, resolved) in assets.iter().zip(&decision.ads) {
        let tracking = &asset["X-INTERLUDE-TRACKING"];
        assert_eq!(
            tracking["ad_instance_id"].as_str(),
            Some(resolved.ad.ad_instance_id.as_str())
        );
        assert_eq!(
            tracking["creative_id"].as_str(),
            Some(resolved.ad.creative_id.as_str())
        );
        let best = resolved
            .ad
            .renditions
            .iter()
            .max_by_key(|r| r.bandwidth)
            .unwrap();
        assert_eq!(asset["URI"].as_str(), Some(best.playlist_url.as_str()));
        assert!(
            (asset["DURATION"].as_f64().unwrap() - 15.0).abs() < 0.01,
            "{asset}"
        );
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
            assert!(url.starts_with(&format!("{}/t/", run.base)), "{url}");
            let token = url.rsplit("/t/").next().unwrap();
            let claims = keys.verify(token).unwrap();
            assert_eq!(claims.ad_instance_id, resolved.ad.ad_instance_id);
            assert_eq!(claims.event_type.as_str(), event);
            assert_eq!(claims.session_id, sgai);
            assert_eq!(claims.channel, "live1");
        }
    }
    let slate = assets.last().unwrap();
    assert!(slate.get("X-INTERLUDE-TRACKING").is_none(), "{slate}");
    assert!(
        (slate["DURATION"].as_f64().unwrap() - 5.0).abs() < 0.01,
        "{slate}"
    );
    let slate_playlist = text(slate["URI"].as_str().unwrap().to_owned()).await;
    let slate_secs: f64 = slate_playlist
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .map(|d| d.trim_end_matches(',').parse::<f64>().unwrap())
        .sum();
    assert!((slate_secs - 5.0).abs() < 0.01, "{slate_playlist}");
    assert!(slate_playlist.contains("#EXT-X-ENDLIST"));
    assert!(
        segments(&slate_playlist)
            .iter()
            .all(|s| s.contains("/assets/slate/"))
    );
    // Asking again changes nothing.
    let again: serde_json::Value = reqwest::get(&list_url).await.unwrap().json().await.unwrap();
    assert_eq!(
        again["ASSETS"][0]["X-INTERLUDE-TRACKING"]["ad_instance_id"],
        list["ASSETS"][0]["X-INTERLUDE-TRACKING"]["ad_instance_id"]
    );
    assert_eq!(again["ASSETS"].as_array().unwrap().len(), assets.len());

    // Stable across refreshes, in every rendition: the same tag while the break runs; once it has ended, the
    // same tag with its DURATION appended (a later playlist may add attributes, never change one).
    until_channel_time(&run, 44).await;
    let later = text(format!("{}/s/{sgai}/0/media.m3u8", run.base)).await;
    assert_eq!(interstitial_tags(&later), vec![tag.as_str()]);
    let other = text(format!("{}/s/{sgai}/1/media.m3u8", run.base)).await;
    assert_eq!(interstitial_tags(&other), vec![tag.as_str()]);
    until_channel_time(&run, 54).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ended = text(format!("{}/s/{sgai}/0/media.m3u8", run.base)).await;
    let ended_tags = interstitial_tags(&ended);
    assert_eq!(ended_tags.len(), 1, "{ended}");
    assert_eq!(ended_tags[0], format!("{tag},DURATION=20.000"));

    // An unknown break is a clear 404.
    let missing = reqwest::get(format!(
        "{}/s/{sgai}/interstitials/nope/assets.json",
        run.base
    ))
    .await
    .unwrap();
    assert_eq!(missing.status(), 404);
    let problem: serde_json::Value = missing.json().await.unwrap();
    let message = problem["error"].as_str().unwrap_or_default();
    assert!(message.contains("unknown break \"nope\""), "{problem}");
    let no_session = reqwest::get(format!(
        "{}/s/nope/interstitials/{break_id}/assets.json",
        run.base
    ))
    .await
    .unwrap();
    assert_eq!(no_session.status(), 404);

    // The player fetches the ads itself: no server-side beacon for this session, even when an ad segment of
    // the session is asked for through the stitcher's beacon route.
    let ad = decision.ads[0].ad.ad_instance_id.clone();
    let refused = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/s/{sgai}/ads/{ad}/0/0.ts", run.base))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 404);
    assert!(run.beacons.beacons().iter().all(|b| b.session_id != sgai));

    // A stitched session of the same channel still gets ads in its playlist, and no interstitial.
    let plain = text(format!("{}/s/{stitched}/0/media.m3u8", run.base)).await;
    assert!(plain.contains("/ads/"), "{plain}");
    assert!(interstitial_tags(&plain).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implicit_sessions_take_the_mode_from_the_query() {
    let run = start(AdDelivery::Redirect, 30).await;
    signer(&run);
    let http = reqwest::Client::new();
    let master = |mode: &'static str| {
        let (http, base) = (http.clone(), run.base.clone());
        async move {
            for _ in 0..100 {
                let r = http
                    .get(format!(
                        "{base}/v1/channels/live1/master.m3u8?device=desktop{mode}"
                    ))
                    .send()
                    .await
                    .unwrap();
                if r.status().is_success() {
                    return r.text().await.unwrap();
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("no implicit session");
        }
    };
    let sgai_master = master("&mode=interstitials").await;
    let plain_master = master("").await;
    let media_url = |m: &str| {
        m.lines()
            .find(|l| l.contains("/media.m3u8"))
            .unwrap()
            .to_owned()
    };
    let (sgai_media, plain_media) = (media_url(&sgai_master), media_url(&plain_master));
    until_channel_time(&run, 36).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sgai_playlist = text(sgai_media).await;
    assert_eq!(
        interstitial_tags(&sgai_playlist).len(),
        1,
        "{sgai_playlist}"
    );
    assert!(!sgai_playlist.contains("/ads/"));
    let plain_playlist = text(plain_media).await;
    assert!(interstitial_tags(&plain_playlist).is_empty());
    assert!(plain_playlist.contains("/ads/"), "{plain_playlist}");
    // An unknown mode is refused.
    let bad = http
        .get(format!(
            "{}/v1/channels/live1/master.m3u8?mode=sideways",
            run.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}
