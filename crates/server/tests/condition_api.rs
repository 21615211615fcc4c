//! The condition API over HTTP (`POST`/`GET /v1/creatives/condition`): the admin token, bounded bodies, media
//! URLs checked against the outbound policy, a VAST tag fetched and resolved with each InLine ad conditioned
//! or refused with why, one job per creative and channel (the channel's ladder read from its live master
//! playlist), idempotent submissions, and the status listing. No worker runs here (`workers = 0`, as on a
//! node that only queues): the jobs stay queued.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use interlude_condition::{JobQueue, LocalFetcher, RedbQueue};
use interlude_server::conditioning::routes::{
    ConditionAnswer, ConditionApi, JobStatus, MAX_CONDITION_BODY_BYTES, api_router,
};
use interlude_server::conditioning::{ConditionConfig, Conditioning};
use interlude_server::stitcher::config::AdDelivery;
use serde_json::json;

const TOKEN: &str = "s3cret-condition";

/// Two InLine ads: one offered as an MP4 only, one already HLS.
fn vast(base: &str) -> String {
    format!(
        r#"<VAST version="4.2">
        <Ad id="mp4"><InLine><AdSystem>t</AdSystem><AdTitle>mp4</AdTitle><Impression>https://3p.example/i</Impression>
        <Creatives><Creative id="c-mp4"><UniversalAdId idRegistry="ad-id.org">APIT0001000H</UniversalAdId><Linear>
        <Duration>00:00:15</Duration><MediaFiles><MediaFile delivery="progressive" type="video/mp4" width="1920" height="1080">
        <![CDATA[{base}/media/ad.mp4]]></MediaFile></MediaFiles></Linear></Creative></Creatives></InLine></Ad>
        <Ad id="hls"><InLine><AdSystem>t</AdSystem><AdTitle>hls</AdTitle><Impression>https://3p.example/i</Impression>
        <Creatives><Creative id="c-hls"><Linear><Duration>00:00:10</Duration><MediaFiles>
        <MediaFile delivery="streaming" type="application/x-mpegURL" width="640" height="360">
        <![CDATA[{base}/media/ad.m3u8]]></MediaFile></MediaFiles></Linear></Creative></Creatives></InLine></Ad>
        </VAST>"#
    )
}

/// Conditioning over a redb queue in `dir` with no worker (a node that only queues), and the queue.
fn queueing_only(dir: &std::path::Path) -> (Arc<RedbQueue>, Conditioning) {
    let queue = Arc::new(RedbQueue::open(&dir.join("condition.redb")).unwrap());
    let conditioning = Conditioning::start(
        &ConditionConfig {
            enabled: true,
            workers: 0,
            ..ConditionConfig::default()
        },
        queue.clone(),
        Arc::new(LocalFetcher::new(dir)),
        dir.join("conditioned"),
        "http://127.0.0.1:9/v1/conditioned".to_owned(),
        Arc::new(chrono::Utc::now),
    )
    .unwrap();
    (queue, conditioning)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_urls_and_a_vast_tag_are_queued_per_channel_and_listed() {
    let run = common::start(AdDelivery::Redirect, 30).await;
    // The stitcher has read the channel (its master playlist gives the ladder).
    common::new_session(&run.base).await;

    let tags = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tags_base = format!("http://{}", tags.local_addr().unwrap());
    let document = vast(&tags_base);
    let ad_server = Router::new().route(
        "/vast",
        get(move || async move { ([("content-type", "application/xml")], document) }),
    );
    tokio::spawn(async move { axum::serve(tags, ad_server).await });

    let tmp = tempfile::tempdir().unwrap();
    let (queue, conditioning) = queueing_only(tmp.path());
    let conditioning = Arc::new(conditioning);
    let app = api_router(
        ConditionApi {
            conditioning: conditioning.clone(),
            stitcher: run.stitcher.clone(),
            http: common::loopback_http(),
            resolve: interlude_vast::ResolveConfig::default(),
        },
        TOKEN,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!(
        "http://{}/v1/creatives/condition",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    let http = reqwest::Client::new();
    let auth = format!("Bearer {TOKEN}");

    // Admin scope only.
    let anonymous = http
        .post(&base)
        .json(&json!({"media_urls": ["x"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let listing = http.get(&base).send().await.unwrap();
    assert_eq!(listing.status(), 401);
    // A request that names nothing, or is too large, is refused before any work.
    let empty = http
        .post(&base)
        .header("authorization", &auth)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(empty.status(), 400);
    let huge = json!({"media_urls": ["x".repeat(MAX_CONDITION_BODY_BYTES)]});
    let too_large = http
        .post(&base)
        .header("authorization", &auth)
        .json(&huge)
        .send()
        .await
        .unwrap();
    assert_eq!(too_large.status(), 413);

    let body = json!({
        "media_urls": [format!("{tags_base}/media/master.mov"), "http://10.1.2.3/private.mp4"],
        "vast_tag": format!("{tags_base}/vast"),
    });
    let answer = http
        .post(&base)
        .header("authorization", &auth)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 202);
    let answer: ConditionAnswer = answer.json().await.unwrap();
    let mut creatives: Vec<(&str, &str, &str)> = answer
        .jobs
        .iter()
        .map(|j| {
            (
                j.channel.as_str(),
                j.status.creative.as_str(),
                j.status.state.as_str(),
            )
        })
        .collect();
    creatives.sort();
    assert_eq!(creatives.len(), 2, "{answer:?}");
    assert_eq!(creatives[0].0, "live1");
    assert_eq!(creatives[0].1, "uaid:ad-id.org:APIT0001000H");
    assert!(
        creatives[1].1.starts_with("url:"),
        "a bare file is keyed by its URL: {creatives:?}"
    );
    assert!(creatives.iter().all(|c| c.2 == "queued"));
    assert!(
        answer
            .jobs
            .iter()
            .all(|j| j.status.deadline_ms.is_none() && j.status.renditions == 2),
        "ahead of time, for the channel's two renditions: {answer:?}"
    );
    let refused: Vec<&str> = answer.refused.iter().map(|r| r.what.as_str()).collect();
    assert_eq!(refused.len(), 2, "{answer:?}");
    assert!(
        refused.iter().any(|w| w.contains("10.1.2.3")),
        "private address refused: {refused:?}"
    );
    assert!(
        answer
            .refused
            .iter()
            .any(|r| r.reason.contains("already HLS")),
        "{answer:?}"
    );

    // Asking again changes nothing: one job per creative and ladder.
    let again = http
        .post(&base)
        .header("authorization", &auth)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 202);
    assert_eq!(queue.list().await.unwrap().len(), 2);

    let all: Vec<JobStatus> = http
        .get(&base)
        .header("authorization", &auth)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
    let one: Vec<JobStatus> = http
        .get(format!("{base}?creative=uaid:ad-id.org:APIT0001000H"))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].source, format!("{tags_base}/media/ad.mp4"));
}

/// Catalog load queues every approved direct-sold creative delivered as files, once per channel ladder,
/// ahead of time; creatives with HLS renditions and unapproved ones are left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_creatives_delivered_as_files_are_queued_ahead_once() {
    use interlude_decision::catalog::MediaFile;
    use interlude_server::conditioning::ahead::CatalogConditioning;

    let run = common::start(AdDelivery::Redirect, 30).await;
    common::new_session(&run.base).await;
    let tmp = tempfile::tempdir().unwrap();
    let (queue, conditioning) = queueing_only(tmp.path());

    let mut catalog = interlude_decision::catalog::Catalog::from_toml(include_str!(
        "../../decision/tests/data/catalog.toml"
    ))
    .unwrap();
    let mp4 = |url: &str| MediaFile {
        url: url.into(),
        mime_type: "video/mp4".into(),
        width: 1280,
        height: 720,
        bitrate_kbps: Some(6000),
        mezzanine: false,
    };
    let mut offered = Vec::new();
    for (i, c) in catalog.creatives.iter_mut().take(3).enumerate() {
        c.renditions.clear();
        c.vast_tag = None;
        c.approved = i != 2;
        c.media_files = vec![mp4(&format!("https://cdn.example/{}.mp4", c.id))];
        offered.push((c.id.clone(), c.approved));
    }
    catalog.validate().unwrap();

    let mut ahead = CatalogConditioning::default();
    let pass = ahead.pass(&conditioning, &catalog, &run.stitcher).await;
    assert_eq!(
        pass.queued, 2,
        "two approved creatives, one channel: {pass:?}"
    );
    assert!(pass.failed.is_empty(), "{pass:?}");
    let jobs = queue.list().await.unwrap();
    let mut keys: Vec<String> = jobs.iter().map(|j| j.spec.creative.to_string()).collect();
    keys.sort();
    let mut expected: Vec<String> = offered
        .iter()
        .filter(|(_, approved)| *approved)
        .map(|(id, _)| format!("creative:{id}"))
        .collect();
    expected.sort();
    assert_eq!(keys, expected);
    assert!(
        jobs.iter().all(|j| j.deadline_ms.is_none()),
        "ahead of need: behind every job a break waits for"
    );

    // Nothing changed: nothing asked of the queue. A creative approved since is queued at the next pass.
    assert_eq!(
        ahead.pass(&conditioning, &catalog, &run.stitcher).await,
        Default::default()
    );
    catalog.creatives[2].approved = true;
    let pass = ahead.pass(&conditioning, &catalog, &run.stitcher).await;
    assert_eq!(pass.queued, 1, "{pass:?}");
    assert_eq!(queue.list().await.unwrap().len(), 3);
}
