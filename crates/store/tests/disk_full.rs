//! A full disk is not permanent: on a small tmpfs, the store is filled until a commit fails (ENOSPC), reports
//! itself unhealthy and refuses batches; once space is freed the committer reopens the database, the store is
//! healthy again, the refused batches go through `submit_wait`, and every count is exact — nothing
//! acknowledged is lost, nothing refused was stored.
//!
//! Needs root (to mount the tmpfs); elsewhere the test says so and passes without running.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use interlude_events::contract::{EventSource, EventType};
use interlude_events::testing::event;
use interlude_events::{Counters, Envelope, Policy};
use interlude_store::{Committer, EmbeddedConfig, Error, EventStore, Health, SubmitError};

/// A tmpfs mounted for the test, unmounted on drop.
struct Tmpfs {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().ok()?;
        let path = dir.path().to_path_buf();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Tmpfs { _dir: dir, path })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
    }
}

fn batch(first: u32, n: u32, at: DateTime<Utc>) -> Vec<Envelope> {
    (first..first + n)
        .map(|i| {
            let mut e = event(
                format!("event-{i:08}"),
                &format!("instance-{i:08}"),
                EventType::Impression,
                EventSource::ServerSide,
                at,
                1,
            );
            e.break_id = Some(format!("break-{:064}", i));
            Envelope {
                event: e,
                user_agent: None,
                ip: None,
            }
        })
        .collect()
}

fn free_bytes(path: &Path) -> u64 {
    let out = Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_makes_the_store_unhealthy_until_space_is_freed() {
    let Some(fs) = Tmpfs::mount("8m") else {
        eprintln!("SKIPPED: cannot mount a tmpfs (needs root): the disk-full test did not run");
        return;
    };
    let t0: DateTime<Utc> = "2026-11-23T18:00:00Z".parse().unwrap();
    let now = t0 + TimeDelta::minutes(1);
    let store_dir = fs.path.join("store");
    let config = EmbeddedConfig {
        cache_mb: 4,
        dedup_cache_mb: 4,
    };
    let store = Arc::new(EventStore::open_with(&store_dir, Policy::default(), &config).unwrap());
    let committer = Committer::start(store.clone(), Arc::new(move || now));
    let mut health = store.health();

    // Leave about 2 MiB free, then fill it.
    let ballast = fs.path.join("ballast");
    let room = free_bytes(&fs.path).saturating_sub(2 << 20);
    std::fs::write(&ballast, vec![0u8; room as usize]).unwrap();

    let (mut acknowledged, mut refused) = (0u32, Vec::new());
    let mut next = 0u32;
    while refused.is_empty() {
        assert!(next < 200_000, "the disk never filled");
        let b = batch(next, 500, t0);
        next += 500;
        match committer.submit(b.clone()).await {
            Ok(outcomes) => acknowledged += outcomes.len() as u32,
            Err(SubmitError::Store(Error::Unavailable(reason))) => {
                eprintln!("refused after {acknowledged} events: {reason}");
                refused.push(b);
            }
            Err(e) => panic!("unexpected: {e}"),
        }
    }
    assert!(acknowledged > 0);
    assert!(
        matches!(*store.health().borrow(), Health::Unhealthy { .. }),
        "a failed commit on a full disk makes the store unhealthy"
    );
    // While unhealthy, batches are refused at once, and a waiting submission gives up at its deadline.
    let b = batch(next, 500, t0);
    next += 500;
    let waited = committer
        .submit_wait(
            b.clone(),
            tokio::time::Instant::now() + Duration::from_millis(300),
        )
        .await;
    assert!(
        matches!(waited, Err(SubmitError::Store(Error::Unavailable(_)))),
        "{waited:?}"
    );
    refused.push(b);

    // Free the space: the committer reopens the database and the store is healthy again.
    std::fs::remove_file(&ballast).unwrap();
    tokio::time::timeout(Duration::from_secs(60), async {
        while *health.borrow_and_update() != Health::Healthy {
            health.changed().await.unwrap();
        }
    })
    .await
    .expect("the store did not recover after space was freed");

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut resent = 0u32;
    for b in refused {
        resent += committer.submit_wait(b, deadline).await.unwrap().len() as u32;
    }
    committer
        .submit(batch(next, 500, t0))
        .await
        .expect("new batches commit");
    let total = acknowledged + resent + 500;

    assert_eq!(
        store.delivered("li1", t0 - TimeDelta::hours(1)),
        u64::from(total),
        "every acknowledged and every resent event counted once"
    );
    assert_eq!(store.stats().unwrap().logged, u64::from(total));
    let observed = store.observe().unwrap();
    assert!(observed.disk_total_bytes >= 8 << 20 && observed.file_bytes > 0);
    committer.shutdown().await.unwrap();
}
