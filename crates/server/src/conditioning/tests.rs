//! The stitcher's view of conditioning without ffmpeg: readiness answers, their cache, single flight.

use std::sync::Arc;

use bytes::Bytes;
use interlude_condition::jobs::{Outcome, Progress};
use interlude_condition::{JobQueue, JobRecord, JobSpec, LocalFetcher, NotReadyReason, RedbQueue};
use interlude_decision::{ConditioningSource, SourceFile};
use interlude_stitch::hls::{parse_master, parse_media};

use super::{ConditionConfig, Conditioning, Skip};
use crate::stitcher::channel::{ChannelSnapshot, RenditionWindow};

const MASTER: &str = "#EXTM3U\n#EXT-X-VERSION:3\n\
    #EXT-X-STREAM-INF:BANDWIDTH=183000,CODECS=\"avc1.4d401e,mp4a.40.2\",RESOLUTION=320x180,FRAME-RATE=25.000\nr0/index.m3u8\n\
    #EXT-X-STREAM-INF:BANDWIDTH=412345,CODECS=\"avc1.4d401e,mp4a.40.2\",RESOLUTION=640x360,FRAME-RATE=25.000\nr1/index.m3u8\n";

const MEDIA: &str = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:1\n\
    #EXTINF:2.0,\n1.ts\n#EXTINF:2.0,\n2.ts\n";

fn snapshot() -> ChannelSnapshot {
    let url = "http://origin.example/live/live1/master.m3u8";
    let (variants, master) = parse_master(MASTER, url).expect("a valid master playlist");
    let renditions = variants
        .into_iter()
        .map(|variant| RenditionWindow {
            media: Arc::new(parse_media(MEDIA, &variant.uri).expect("a valid media playlist")),
            variant,
            raw: Bytes::new(),
        })
        .collect();
    ChannelSnapshot {
        renditions,
        master: Some(Arc::new(master)),
        ..ChannelSnapshot::default()
    }
}

fn mp4_source() -> ConditioningSource {
    ConditioningSource {
        universal_ad_id: Some(("ad-id.org".into(), "UNIT0001000H".into())),
        files: vec![SourceFile {
            uri: "https://cdn.example/ad.mp4".into(),
            mime_type: "video/mp4".into(),
            progressive: true,
            width: 1280,
            height: 720,
            ..SourceFile::default()
        }],
        ..ConditioningSource::default()
    }
}

/// The redb queue answering `get` only after a while, as a remote queue does: decisions that ask at once
/// overlap.
struct SlowQueue(RedbQueue);

#[async_trait::async_trait]
impl JobQueue for SlowQueue {
    async fn submit(
        &self,
        spec: JobSpec,
        deadline_ms: Option<u64>,
        now_ms: u64,
    ) -> interlude_condition::Result<JobRecord> {
        self.0.submit(spec, deadline_ms, now_ms).await
    }
    async fn claim(
        &self,
        worker: &str,
        now_ms: u64,
        lease_ms: u64,
    ) -> interlude_condition::Result<Option<JobRecord>> {
        self.0.claim(worker, now_ms, lease_ms).await
    }
    async fn heartbeat(
        &self,
        id: &str,
        worker: &str,
        now_ms: u64,
        lease_ms: u64,
    ) -> interlude_condition::Result<()> {
        self.0.heartbeat(id, worker, now_ms, lease_ms).await
    }
    async fn progress(
        &self,
        id: &str,
        worker: &str,
        progress: Progress,
    ) -> interlude_condition::Result<()> {
        self.0.progress(id, worker, progress).await
    }
    async fn finish(
        &self,
        id: &str,
        worker: &str,
        outcome: Outcome,
        now_ms: u64,
    ) -> interlude_condition::Result<()> {
        self.0.finish(id, worker, outcome, now_ms).await
    }
    async fn get(&self, id: &str) -> interlude_condition::Result<Option<JobRecord>> {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        self.0.get(id).await
    }
    async fn retry(&self, id: &str) -> interlude_condition::Result<bool> {
        self.0.retry(id).await
    }
    async fn list(&self) -> interlude_condition::Result<Vec<JobRecord>> {
        self.0.list().await
    }
}

fn conditioning(dir: &std::path::Path) -> (Arc<SlowQueue>, Arc<Conditioning>) {
    let queue = Arc::new(SlowQueue(
        RedbQueue::open(&dir.join("q.redb")).expect("the queue opens"),
    ));
    let c = Conditioning::start(
        &ConditionConfig {
            enabled: true,
            workers: 0,
            ..ConditionConfig::default()
        },
        queue.clone(),
        Arc::new(LocalFetcher::new(dir)),
        dir.join("out"),
        "http://media.example/conditioned".into(),
        Arc::new(chrono::Utc::now),
    )
    .expect("conditioning starts");
    (queue, Arc::new(c))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_creative_asked_by_a_whole_break_at_once_is_queued_and_new_only_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (queue, c) = conditioning(dir.path());
    let snapshot = Arc::new(snapshot());
    let asks: Vec<_> = (0..50)
        .map(|_| {
            let (c, snapshot) = (c.clone(), snapshot.clone());
            tokio::spawn(async move {
                c.resolve("live1", &snapshot, &mp4_source(), Some(1_000))
                    .await
            })
        })
        .collect();
    let mut reasons = Vec::new();
    for ask in asks {
        match ask.await.expect("the task ends") {
            Err(Skip { reason, .. }) => reasons.push(reason),
            Ok(_) => panic!("nothing is conditioned yet"),
        }
    }
    let new = reasons
        .iter()
        .filter(|r| **r == NotReadyReason::NewCreative)
        .count();
    assert_eq!(new, 1, "{reasons:?}");
    assert!(reasons.iter().all(|r| matches!(
        r,
        NotReadyReason::NewCreative | NotReadyReason::TranscodeInProgress
    )));
    let jobs = queue.list().await.expect("list");
    assert_eq!(jobs.len(), 1);
    assert_eq!(
        jobs[0].spec.creative.as_str(),
        "uaid:ad-id.org:UNIT0001000H"
    );
    assert_eq!(jobs[0].deadline_ms, Some(1_000), "due by the break");
    let names: Vec<&str> = jobs[0]
        .spec
        .recipe
        .variant_set
        .renditions
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(names, ["320x180_25_180k", "640x360_25_410k"]);
    assert_eq!(
        jobs[0].spec.recipe.variant_set.renditions[0].segment_duration_ms, 2_000,
        "the channel's target duration"
    );
}

#[tokio::test]
async fn an_ad_without_a_transcodable_file_is_no_variant_match() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (queue, c) = conditioning(dir.path());
    let vpaid = ConditioningSource {
        files: vec![SourceFile {
            uri: "https://cdn.example/ad.js".into(),
            mime_type: "application/javascript".into(),
            progressive: true,
            api_framework: Some("VPAID".into()),
            ..SourceFile::default()
        }],
        ..ConditioningSource::default()
    };
    let skip = c
        .resolve("live1", &snapshot(), &vpaid, None)
        .await
        .expect_err("nothing to transcode");
    assert_eq!(skip.reason, NotReadyReason::NoVariantMatch);
    assert!(
        queue.list().await.expect("list").is_empty(),
        "nothing queued"
    );
}

#[tokio::test]
async fn a_cmaf_channel_and_its_ts_twin_share_one_conditioning() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (queue, c) = conditioning(dir.path());
    let cmaf_media = MEDIA.replace(
        "#EXT-X-MEDIA-SEQUENCE:1\n",
        "#EXT-X-MEDIA-SEQUENCE:1\n#EXT-X-MAP:URI=\"init.mp4\"\n",
    );
    let mut cmaf = snapshot();
    for r in &mut cmaf.renditions {
        r.media = Arc::new(parse_media(&cmaf_media, &r.variant.uri).expect("valid"));
    }
    cmaf.master = cmaf.master.map(|m| Arc::new((*m).clone()));
    let skip = c
        .resolve("live1-cmaf", &cmaf, &mp4_source(), None)
        .await
        .expect_err("not conditioned yet");
    assert_eq!(skip.reason, NotReadyReason::NewCreative);
    let jobs = queue.list().await.expect("list");
    assert_eq!(jobs.len(), 1);
    assert!(
        jobs[0]
            .spec
            .recipe
            .variant_set
            .renditions
            .iter()
            .all(|r| r.container == interlude_condition::Container::Cmaf)
    );
    c.resolve("live1", &snapshot(), &mp4_source(), None)
        .await
        .expect_err("not conditioned yet");
    assert_eq!(
        queue.list().await.expect("list").len(),
        1,
        "the TS channel waits for the same job"
    );
}
