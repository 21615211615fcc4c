//! A bounded pool of conditioning workers: `concurrency` tasks, each claiming the most urgent job from the
//! [`JobQueue`], running its ffmpeg children at `niceness` with `ffmpeg_threads` threads, renewing its lease
//! while it works, and recording the outcome. Dropping the pool (or [`Pool::shutdown`]) stops the tasks, and
//! with them their children (`kill_on_drop`); the jobs they held resume from their last finished rendition
//! when claimed again.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, broadcast};
use tokio::task::JoinSet;

use crate::error::{Error, Result};
use crate::fetch::SourceFetcher;
use crate::jobs::{JobQueue, JobRecord, Outcome};
use crate::layout::Layout;
use crate::qc::QcThresholds;
use crate::run::PoolEvent;
use crate::run::job::{JobContext, run_job};
use crate::run::tools::Tools;

/// The pool's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PoolConfig {
    /// Output root: `<root>/<creative identity>/<recipe hash>/<rendition>/…`.
    pub root: PathBuf,
    /// Jobs run at once (each runs one ffmpeg at a time).
    pub concurrency: usize,
    /// `nice` increment of the ffmpeg children, so conditioning yields to stitching.
    pub niceness: i32,
    /// Threads per ffmpeg encode.
    pub ffmpeg_threads: u32,
    /// The ffmpeg binary.
    pub ffmpeg: PathBuf,
    /// The ffprobe binary.
    pub ffprobe: PathBuf,
    /// Longest run of one child process, seconds.
    pub process_timeout_secs: u64,
    /// Longest run of one job, seconds.
    pub job_timeout_secs: u64,
    /// Lease on a running job, seconds; renewed every third of it.
    pub lease_secs: u64,
    /// How often an idle worker looks for work it was not woken for (jobs from other machines), ms.
    pub poll_interval_ms: u64,
    /// Largest source file fetched, bytes.
    pub max_source_bytes: u64,
    /// Quality-check limits.
    pub qc: QcThresholds,
    /// The workers' name prefix in leases (the host name, for a shared queue).
    pub worker_name: String,
}

impl Default for PoolConfig {
    fn default() -> PoolConfig {
        PoolConfig {
            root: "conditioned".into(),
            concurrency: 1,
            niceness: 10,
            ffmpeg_threads: 2,
            ffmpeg: "ffmpeg".into(),
            ffprobe: "ffprobe".into(),
            process_timeout_secs: 1_800,
            job_timeout_secs: 3_600,
            lease_secs: 60,
            poll_interval_ms: 1_000,
            max_source_bytes: 2 << 30,
            qc: QcThresholds::default(),
            worker_name: format!("worker-{}", std::process::id()),
        }
    }
}

impl PoolConfig {
    /// Rejects settings that cannot work, naming the key.
    pub fn validate(&self) -> Result<()> {
        let bad = |key, reason: &str| {
            Err(Error::Config {
                key,
                reason: reason.to_owned(),
            })
        };
        if self.concurrency == 0 || self.concurrency > 256 {
            return bad("concurrency", "must be 1-256");
        }
        if !(-20..=19).contains(&self.niceness) {
            return bad("niceness", "must be -20..19");
        }
        if self.ffmpeg_threads == 0 {
            return bad("ffmpeg_threads", "must be at least 1");
        }
        if self.lease_secs < 3 {
            return bad("lease_secs", "must be at least 3");
        }
        if self.root.to_str().is_none() {
            return bad("root", "must be valid UTF-8 (it is passed to ffmpeg)");
        }
        Ok(())
    }

    fn tools(&self) -> Tools {
        Tools {
            ffmpeg: self.ffmpeg.clone(),
            ffprobe: self.ffprobe.clone(),
            niceness: self.niceness,
            timeout: Duration::from_secs(self.process_timeout_secs),
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Running workers.
#[derive(Debug)]
pub struct Pool {
    tasks: JoinSet<()>,
    wake: Arc<Notify>,
    events: broadcast::Sender<PoolEvent>,
}

struct Shared {
    config: PoolConfig,
    tools: Tools,
    layout: Layout,
    queue: Arc<dyn JobQueue>,
    fetcher: Arc<dyn SourceFetcher>,
    wake: Arc<Notify>,
    events: broadcast::Sender<PoolEvent>,
}

impl Pool {
    /// Starts `config.concurrency` workers on `queue`, fetching with `fetcher`.
    pub fn start(
        config: PoolConfig,
        queue: Arc<dyn JobQueue>,
        fetcher: Arc<dyn SourceFetcher>,
    ) -> Result<Pool> {
        config.validate()?;
        std::fs::create_dir_all(&config.root).map_err(Error::io(&config.root))?;
        let wake = Arc::new(Notify::new());
        let (events, _) = broadcast::channel(1024);
        let shared = Arc::new(Shared {
            tools: config.tools(),
            layout: Layout::new(&config.root),
            config,
            queue,
            fetcher,
            wake: wake.clone(),
            events: events.clone(),
        });
        let mut tasks = JoinSet::new();
        for i in 0..shared.config.concurrency {
            let shared = shared.clone();
            let name = format!("{}-{i}", shared.config.worker_name);
            tasks.spawn(async move { worker(shared, name).await });
        }
        Ok(Pool {
            tasks,
            wake,
            events,
        })
    }

    /// Wakes an idle worker (call after submitting).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// A handle that wakes an idle worker, for a [`crate::service::Conditioner`].
    pub fn waker(&self) -> crate::service::Waker {
        crate::service::Waker(self.wake.clone())
    }

    /// The pool's events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<PoolEvent> {
        self.events.subscribe()
    }

    /// Stops every worker and waits until they (and their ffmpeg children) are gone.
    pub async fn shutdown(mut self) {
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.tasks.abort_all();
    }
}

async fn worker(shared: Arc<Shared>, name: String) {
    let lease_ms = shared.config.lease_secs * 1000;
    loop {
        match shared.queue.claim(&name, now_ms(), lease_ms).await {
            Ok(Some(rec)) => {
                // Another worker may be idle while more jobs wait.
                shared.wake.notify_one();
                process(&shared, &name, rec).await;
            }
            Ok(None) => {
                tokio::select! {
                    () = shared.wake.notified() => {}
                    () = tokio::time::sleep(Duration::from_millis(shared.config.poll_interval_ms)) => {}
                }
            }
            Err(e) => {
                tracing::warn!(worker = %name, error = %e, "Could not claim a conditioning job.");
                tokio::time::sleep(Duration::from_millis(shared.config.poll_interval_ms)).await;
            }
        }
    }
}

async fn process(shared: &Shared, name: &str, rec: JobRecord) {
    let id = rec.id.clone();
    tracing::info!(worker = %name, job = %id, attempt = rec.attempts, "Conditioning a creative.");
    let _ = shared.events.send(PoolEvent::Claimed { job: id.clone() });
    let lease_ms = shared.config.lease_secs * 1000;
    let cx = JobContext {
        queue: shared.queue.as_ref(),
        fetcher: shared.fetcher.as_ref(),
        tools: &shared.tools,
        layout: &shared.layout,
        settings: &shared.config,
        events: &shared.events,
        worker: name,
    };
    let job = tokio::time::timeout(
        Duration::from_secs(shared.config.job_timeout_secs),
        run_job(&cx, rec),
    );
    let heartbeat = async {
        loop {
            tokio::time::sleep(Duration::from_millis(lease_ms / 3)).await;
            if let Err(e) = shared.queue.heartbeat(&id, name, now_ms(), lease_ms).await {
                return e;
            }
        }
    };
    // Whichever ends first: the job, or the lease (dropping the job kills its ffmpeg).
    let outcome = tokio::select! {
        r = job => match r {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(e)) => {
                tracing::warn!(worker = %name, job = %id, error = %e, "Abandoned a conditioning job.");
                return;
            }
            Err(_) => Outcome::Failed {
                reason: format!("timed out after {} s", shared.config.job_timeout_secs),
                quarantined: false,
            },
        },
        e = heartbeat => {
            tracing::warn!(worker = %name, job = %id, error = %e, "Lost the lease on a conditioning job.");
            return;
        }
    };
    let summary = match &outcome {
        Outcome::Ready => "ready".to_owned(),
        Outcome::Failed { reason, .. } => reason.clone(),
    };
    match shared.queue.finish(&id, name, outcome, now_ms()).await {
        Ok(()) => {
            tracing::info!(worker = %name, job = %id, outcome = %summary, "Conditioning ended.")
        }
        Err(e) => {
            tracing::warn!(worker = %name, job = %id, error = %e, "Could not record a job's end.")
        }
    }
    let _ = shared.events.send(PoolEvent::Finished {
        job: id,
        outcome: summary,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_reads_with_defaults_and_rejects_unknown_keys() {
        let c: PoolConfig =
            serde_json::from_str(r#"{"root": "/srv/ads", "concurrency": 4, "niceness": 15}"#)
                .expect("partial config reads");
        assert_eq!((c.concurrency, c.niceness, c.ffmpeg_threads), (4, 15, 2));
        assert!(c.validate().is_ok());
        assert!(serde_json::from_str::<PoolConfig>(r#"{"concurency": 4}"#).is_err());
    }

    #[test]
    fn impossible_settings_name_their_key() {
        let zero = PoolConfig {
            concurrency: 0,
            ..PoolConfig::default()
        };
        assert!(matches!(
            zero.validate(),
            Err(Error::Config {
                key: "concurrency",
                ..
            })
        ));
        let nice = PoolConfig {
            niceness: 40,
            ..PoolConfig::default()
        };
        assert!(matches!(
            nice.validate(),
            Err(Error::Config {
                key: "niceness",
                ..
            })
        ));
    }
}
