//! A node restarted while conditioning a creative resumes the job without redoing what it had finished,
//! through the whole application (`App::build` with `[condition]` on, the redb queue and the outputs in the
//! data directory).
//!
//! A progressive MP4 (made here with ffmpeg, served on loopback) is queued for a ladder of three renditions.
//! Once the first rendition is finished the App shuts down (its worker and ffmpeg child stopped mid-job) and
//! its runtime is dropped, as a process exit would; a new App on the same data directory finds the job left
//! running, queues it again (the embedded queue does so when it reopens its file) and finishes it. The
//! rendition finished before the restart is skipped, not started again: its files keep their inodes and
//! modification times and the job record keeps its output as it was.
//!
//! Needs ffmpeg and ffprobe on PATH (`scripts/test.sh` installs them).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::routing::get;
use interlude_condition::{ChannelDefaults, JobRecord, JobState, PoolEvent, VariantSet};
use interlude_decision::{ConditioningSource, SourceFile};
use interlude_server::conditioning::{ConditionConfig, Conditioning};
use interlude_server::{App, InterludeConfig};
use interlude_sim::tools;

/// The ad's length in seconds: long enough that the second rendition is still encoding when the App stops.
const AD_SECS: u32 = 12;

/// Three renditions at the simulator's frame rate, small so that the test is quick.
const MASTER: &str = "#EXTM3U\n#EXT-X-VERSION:3\n\
    #EXT-X-STREAM-INF:BANDWIDTH=300000,CODECS=\"avc1.4d401e,mp4a.40.2\",RESOLUTION=320x180,FRAME-RATE=25.000\nr0/index.m3u8\n\
    #EXT-X-STREAM-INF:BANDWIDTH=500000,CODECS=\"avc1.4d401e,mp4a.40.2\",RESOLUTION=480x270,FRAME-RATE=25.000\nr1/index.m3u8\n\
    #EXT-X-STREAM-INF:BANDWIDTH=800000,CODECS=\"avc1.4d401e,mp4a.40.2\",RESOLUTION=640x360,FRAME-RATE=25.000\nr2/index.m3u8\n";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn config(data_dir: &Path) -> InterludeConfig {
    let mut config = InterludeConfig {
        server: interlude_server::ServerConfig {
            insecure_dev: true,
            ..interlude_server::ServerConfig::default()
        },
        condition: ConditionConfig {
            enabled: true,
            workers: 1,
            ..ConditionConfig::default()
        },
        ..InterludeConfig::default()
    };
    config.events.data_dir = data_dir.to_owned();
    // The source is served on loopback.
    config.outbound.allow = vec!["127.0.0.0/8".into()];
    config
}

fn source(url: &str) -> ConditioningSource {
    ConditioningSource {
        universal_ad_id: Some(("ad-id.org".into(), "REST0001000H".into())),
        files: vec![SourceFile {
            uri: url.to_owned(),
            mime_type: "video/mp4".into(),
            progressive: true,
            width: 1280,
            height: 720,
            ..SourceFile::default()
        }],
        ..ConditioningSource::default()
    }
}

/// Every file under `dir` with its inode and modification time.
fn stats(dir: &Path) -> BTreeMap<PathBuf, (u64, SystemTime)> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                todo.push(entry.path());
            } else {
                out.insert(entry.path(), (meta.ino(), meta.modified().unwrap()));
            }
        }
    }
    out
}

/// This node's pool events, collected from now on.
fn collect_events(conditioning: &Conditioning) -> Arc<Mutex<Vec<PoolEvent>>> {
    let mut rx = conditioning.subscribe().expect("the App runs a local pool");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let into = seen.clone();
    tokio::spawn(async move {
        while let Ok(event) = rx.recv().await {
            into.lock().unwrap().push(event);
        }
    });
    seen
}

async fn record(conditioning: &Conditioning, id: &str) -> JobRecord {
    conditioning
        .conditioner()
        .queue()
        .get(id)
        .await
        .unwrap()
        .expect("the job is recorded")
}

#[test]
fn a_restart_mid_job_resumes_without_redoing_finished_renditions() {
    tools::require("ffmpeg").unwrap();
    tools::require("ffprobe").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mp4 = tmp.path().join("ad.mp4");
    common::make_mp4_creative(&mp4, AD_SECS, None);
    let data_dir = tmp.path().join("data");
    let config = config(&data_dir);

    // The third party's file, served for the whole test (outliving both Apps' runtimes).
    let media = runtime();
    let url = media.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/ad.mp4", listener.local_addr().unwrap());
        let bytes = std::fs::read(&mp4).unwrap();
        let app = Router::new().route(
            "/ad.mp4",
            get(move || async move { ([("content-type", "video/mp4")], bytes) }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    });
    let set = VariantSet::from_master_text(MASTER, &ChannelDefaults::default()).unwrap();
    let names: Vec<String> = set.renditions.iter().map(|r| r.name.clone()).collect();
    assert_eq!(names.len(), 3);

    // First run: queued, stopped once the first rendition is finished.
    let first = runtime();
    let (id, before) = first.block_on(async {
        let app = App::build(&config, Arc::new(chrono::Utc::now))
            .await
            .unwrap();
        let conditioning = app.conditioning.clone().expect("[condition] is on");
        let events = collect_events(&conditioning);
        let rec = conditioning
            .precondition(&source(&url), &set, "api")
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let ready = events
                .lock()
                .unwrap()
                .iter()
                .any(|e| matches!(e, PoolEvent::RenditionReady { .. }));
            if ready {
                break;
            }
            let now = record(&conditioning, &rec.id).await;
            if let JobState::Failed { reason, .. } = &now.state {
                panic!("conditioning failed: {reason}");
            }
            assert!(Instant::now() < deadline, "no rendition in 5 minutes");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        app.shutdown().await.unwrap();
        let stopped = record(&conditioning, &rec.id).await;
        assert!(
            matches!(stopped.state, JobState::Running { .. }),
            "stopped mid-job: {:?}",
            stopped.state
        );
        assert!(
            !stopped.renditions.is_empty() && stopped.renditions.len() < names.len(),
            "some renditions finished, not all: {:?}",
            stopped.renditions.keys()
        );
        let root = conditioning.root().to_owned();
        let before: BTreeMap<String, _> = stopped
            .renditions
            .iter()
            .map(|(name, out)| (name.clone(), (out.clone(), stats(&root.join(&out.dir)))))
            .collect();
        (rec.id, before)
    });
    // As a process exit: every task of the first App (its pollers hold the queue and stores open) is gone.
    first.shutdown_timeout(Duration::from_secs(30));

    // Second run on the same data directory: the job is claimed again and finished.
    let second = runtime();
    second.block_on(async {
        let app = App::build(&config, Arc::new(chrono::Utc::now))
            .await
            .unwrap();
        let conditioning = app.conditioning.clone().expect("[condition] is on");
        let events = collect_events(&conditioning);
        let deadline = Instant::now() + Duration::from_secs(300);
        let done = loop {
            let now = record(&conditioning, &id).await;
            match &now.state {
                JobState::Ready => break now,
                JobState::Failed { reason, .. } => panic!("conditioning failed: {reason}"),
                _ => {}
            }
            assert!(Instant::now() < deadline, "not finished in 5 minutes");
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        app.shutdown().await.unwrap();
        let events = events.lock().unwrap().clone();
        let started: Vec<&str> = events
            .iter()
            .filter_map(|e| match e {
                PoolEvent::RenditionStarted { rendition, .. } => Some(rendition.as_str()),
                _ => None,
            })
            .collect();
        let skipped: Vec<&str> = events
            .iter()
            .filter_map(|e| match e {
                PoolEvent::RenditionSkipped { rendition, .. } => Some(rendition.as_str()),
                _ => None,
            })
            .collect();
        let root = conditioning.root().to_owned();
        for name in &names {
            if let Some((output, files)) = before.get(name) {
                assert!(
                    skipped.contains(&name.as_str()),
                    "{name} skipped: {events:?}"
                );
                assert!(
                    !started.contains(&name.as_str()),
                    "{name} not redone: {events:?}"
                );
                assert_eq!(
                    done.renditions.get(name),
                    Some(output),
                    "{name}'s output kept"
                );
                assert_eq!(
                    &stats(&root.join(&output.dir)),
                    files,
                    "{name}'s files untouched"
                );
            } else {
                assert!(
                    started.contains(&name.as_str()),
                    "{name} encoded: {events:?}"
                );
                assert!(done.renditions.contains_key(name), "{name} recorded");
            }
        }
    });
    second.shutdown_timeout(Duration::from_secs(30));
    media.shutdown_timeout(Duration::from_secs(5));
}
