//! HLS Interstitials sessions and creative conditioning, without ffmpeg: a creative offered only as a
//! progressive MP4 by a third-party VAST tag, decided for an interstitials session of the origin simulator's
//! live channel.
//!
//! First break: the asset list leaves the ad out (slate plays instead), the skip is counted as
//! `NEW_CREATIVE` and the creative's conditioning is queued, due by the break. The job is then finished by
//! hand (a worker's progress reports and outputs on disk, as the pool would leave them): a later session's
//! asset list plays the ad from its conditioned media playlist for the channel's best rendition, served by the
//! conditioned media route.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use chrono::TimeDelta;
use common::NoCounts;
use interlude_condition::jobs::{Outcome, Progress};
use interlude_condition::layout::Layout;
use interlude_condition::qc::QcReport;
use interlude_condition::{
    CreativeIdentity, JobQueue, JobState, LocalFetcher, RedbQueue, RenditionOutput,
};
use interlude_decision::engine::Engine;
use interlude_hls::AttributeList;
use interlude_server::conditioning::{ConditionConfig, Conditioning, routes as condition_routes};
use interlude_server::decisioning::decider::{Decider, DemandConfig};
use interlude_server::stitcher::beacons::MemoryBeaconSink;
use interlude_server::stitcher::config::{ChannelConfig, StitcherConfig};
use interlude_server::stitcher::sgai::AssetList;
use interlude_server::stitcher::{Stitcher, routes};
use interlude_sim::clock::{Clock, ScaledClock};
use interlude_sim::origin::{OriginConfig, OriginState, router};

/// Channel time runs this many times faster than real time.
const SPEED: f64 = 4.0;
/// The ad's length in seconds.
const AD_SECS: u32 = 10;

fn inline_vast() -> String {
    format!(
        r#"<VAST version="4.2"><Ad id="mp4-ad"><InLine><AdSystem>local</AdSystem><AdTitle>mp4</AdTitle>
        <Impression><![CDATA[https://3p.example/imp]]></Impression><Creatives><Creative id="cr-mp4" adId="mp4-1">
        <UniversalAdId idRegistry="ad-id.org">SGAI0001000H</UniversalAdId><Linear><Duration>00:00:{AD_SECS:02}</Duration>
        <MediaFiles><MediaFile delivery="progressive" type="video/mp4" width="1280" height="720" bitrate="2000"><![CDATA[https://cdn.example/never-fetched.mp4]]></MediaFile>
        </MediaFiles></Linear></Creative></Creatives></InLine></Ad></VAST>"#
    )
}

async fn interstitials_session(base: &str) -> String {
    let http = reqwest::Client::new();
    for _ in 0..100 {
        let created = http
            .post(format!("{base}/v1/sessions"))
            .json(&serde_json::json!({ "channel": "live1", "mode": "interstitials", "viewer": { "device": "tv" } }))
            .send()
            .await
            .unwrap();
        if created.status() == 201 {
            let body: serde_json::Value = created.json().await.unwrap();
            return body["session_id"].as_str().unwrap().to_owned();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the stitcher never read the origin");
}

/// Polls the session's playlist until it marks a break as an interstitial; returns the break's asset list.
async fn first_asset_list(base: &str, session: &str) -> AssetList {
    let url = format!("{base}/s/{session}/0/media.m3u8");
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let r = reqwest::get(&url).await.unwrap();
        if r.status().is_success() {
            let playlist = r.text().await.unwrap();
            let list = playlist
                .lines()
                .filter_map(|l| l.strip_prefix("#EXT-X-DATERANGE:"))
                .map(|a| AttributeList::parse(a).unwrap())
                .find_map(|a| a.get("X-ASSET-LIST").map(str::to_owned));
            if let Some(list) = list {
                return reqwest::get(&list).await.unwrap().json().await.unwrap();
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no interstitial in 2 minutes"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Finishes job `id` as a worker would: claims it, reports the source's identity and every rendition (its TS
/// playlist written under `root`, five 2 s segments), then ready. Returns each rendition's TS playlist
/// path relative to the root, in the variant set's order.
async fn finish_by_hand(queue: &RedbQueue, root: &std::path::Path, id: &str) -> Vec<String> {
    let rec = queue
        .claim("hand", 0, 60_000)
        .await
        .unwrap()
        .expect("the queued job is claimable");
    assert_eq!(rec.id, id);
    let identity = CreativeIdentity {
        key: rec.spec.creative.clone(),
        content_sha256: "ab".repeat(32),
    };
    queue
        .progress(id, "hand", Progress::Identity(identity.clone()))
        .await
        .unwrap();
    let mut playlists = Vec::new();
    for r in &rec.spec.recipe.variant_set.renditions {
        let dir = Layout::rendition_rel(&identity, &rec.recipe_hash, &r.name);
        let dir = dir.to_str().unwrap().to_owned();
        let ts_playlist = format!("{dir}/ts/index.m3u8");
        let mut text = String::from(
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-PLAYLIST-TYPE:VOD\n",
        );
        for i in 0..AD_SECS / 2 {
            text.push_str(&format!("#EXTINF:2.000,\n{i}.ts\n"));
        }
        text.push_str("#EXT-X-ENDLIST\n");
        let path = root.join(&ts_playlist);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        let out = RenditionOutput {
            name: r.name.clone(),
            dir: dir.clone(),
            ts_playlist: ts_playlist.clone(),
            fmp4_playlist: format!("{dir}/fmp4/index.m3u8"),
            cmaf_playlist: format!("{dir}/cmaf/index.m3u8"),
            dash_manifest: format!("{dir}/cmaf/manifest.mpd"),
            codecs: "avc1.4d401e,mp4a.40.2".into(),
            bandwidth: 0,
            segments: vec![2.0; (AD_SECS / 2) as usize],
            qc: QcReport::default(),
        };
        queue
            .progress(id, "hand", Progress::Rendition(Box::new(out)))
            .await
            .unwrap();
        playlists.push(ts_playlist);
    }
    queue.finish(id, "hand", Outcome::Ready, 0).await.unwrap();
    assert_eq!(queue.get(id).await.unwrap().unwrap().state, JobState::Ready);
    playlists
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interstitial_asset_lists_skip_an_unconditioned_ad_then_play_its_conditioned_playlist() {
    let tmp = tempfile::tempdir().unwrap();

    // The third party's VAST tag on loopback (its MediaFile is never fetched: no workers run here).
    let (ads_listener, ads) = common::listen().await;
    let ad_server = Router::new().route(
        "/vast",
        get(|| async { ([("content-type", "application/xml")], inline_vast()) }),
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
    let root = tmp.path().join("conditioned");
    let conditioning = Arc::new(
        Conditioning::start(
            &ConditionConfig {
                enabled: true,
                workers: 0,
                audio_channels: 1,
                ..ConditionConfig::default()
            },
            queue.clone(),
            Arc::new(LocalFetcher::new(tmp.path())),
            root.clone(),
            format!("{base}/v1/conditioned"),
            now.clone(),
        )
        .unwrap(),
    );
    let engine = Arc::new(Engine::new(
        common::tag_catalog("mp4", "mp4-3p", "mp4", AD_SECS, &format!("{ads}/vast")),
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
    let config = StitcherConfig {
        channels: vec![ChannelConfig {
            id: "live1".to_owned(),
            origin: format!("{origin}/live/live1/master.m3u8"),
            poll_interval_ms: Some(200),
            origin_timeout_ms: 2_000,
            stale_after_secs: 30,
            slate: common::sim_renditions(&origin, "slate"),
            dash_origin: None,
            dash_ad_codecs: interlude_sim::media::CODECS.to_owned(),
        }],
        decision_spread_ms: 0,
        ..StitcherConfig::default()
    };
    let stitcher: Arc<Stitcher> = Stitcher::builder(
        config,
        base.clone(),
        decider,
        Arc::new(MemoryBeaconSink::default()),
        now.clone(),
    )
    .conditioning(Some(conditioning.clone()))
    .build()
    .unwrap();
    stitcher.start();
    let app = routes::router(stitcher.clone())
        .merge(condition_routes::media_router(conditioning.clone()));
    tokio::spawn(async move { axum::serve(listener, app).await });

    // First break: the ad is decided but not conditioned; the asset list is slate only.
    let first = interstitials_session(&base).await;
    let list = first_asset_list(&base, &first).await;
    assert!(
        list.assets.iter().all(|a| a.tracking.is_none()),
        "no ad can play yet: {list:?}"
    );
    assert!(
        list.assets.iter().any(|a| a.uri.ends_with("/slate.m3u8")),
        "slate fills the break: {list:?}"
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
        "uaid:ad-id.org:SGAI0001000H"
    );
    assert!(jobs[0].deadline_ms.is_some(), "due by the break");

    // Conditioned (by hand, as a worker would leave it).
    let playlists = finish_by_hand(&queue, &root, &jobs[0].id).await;
    assert_eq!(playlists.len(), 2, "the simulator's two renditions");

    // A session joining after the first break: its break's asset list plays the conditioned ad from the
    // playlist made for the channel's best rendition (the simulator's second, 640×360).
    while clock.now() < epoch + TimeDelta::seconds(52) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let second = interstitials_session(&base).await;
    let list = first_asset_list(&base, &second).await;
    let ad = list
        .assets
        .iter()
        .find(|a| a.tracking.is_some())
        .unwrap_or_else(|| panic!("the conditioned ad plays: {list:?}"));
    assert_eq!(ad.uri, format!("{base}/v1/conditioned/{}", playlists[1]));
    assert!((ad.duration - f64::from(AD_SECS)).abs() < 1e-6, "{ad:?}");
    assert_eq!(
        ad.tracking.as_ref().unwrap().creative_id,
        "SGAI0001000H",
        "{ad:?}"
    );
    let served = reqwest::get(&ad.uri).await.unwrap();
    assert!(
        served.status().is_success(),
        "{}: {}",
        ad.uri,
        served.status()
    );
    assert!(served.text().await.unwrap().contains("#EXT-X-ENDLIST"));
    assert_eq!(conditioning.skips().get("NEW_CREATIVE"), Some(&1));
    conditioning.shutdown().await;
}
