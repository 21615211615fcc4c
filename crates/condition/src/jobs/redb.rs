//! The embedded job queue: one redb file, for a single process's worker pool. It survives restarts — jobs
//! that were running when the process stopped are queued again when it reopens the file (redb lets one
//! process at a time open a file, so whoever ran them is gone), and resume from their recorded renditions.
//!
//! Tables: `jobs` (id → JSON record, the source of truth), `pending` ((deadline, seq) → id, the queued jobs in
//! claim order), `running` (id → lease end), `meta` (the submission counter). Every method is one write or
//! read transaction, run on the blocking pool.

use std::path::Path;
use std::sync::Arc;

use redb::{
    Database, ReadableTable, ReadableTableMetadata, Table, TableDefinition, WriteTransaction,
};

use super::{
    JobQueue, JobRecord, JobSpec, JobState, Outcome, Progress, apply_claim, apply_finish,
    apply_heartbeat, apply_progress, apply_retry, merge_submit,
};
use crate::error::{Error, Result};

const JOBS: TableDefinition<&str, &[u8]> = TableDefinition::new("jobs");
const PENDING: TableDefinition<(u64, u64), &str> = TableDefinition::new("pending");
const RUNNING: TableDefinition<&str, u64> = TableDefinition::new("running");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

fn q(e: impl std::fmt::Display) -> Error {
    Error::Queue(e.to_string())
}

/// A job queue in a redb file.
#[derive(Debug, Clone)]
pub struct RedbQueue {
    db: Arc<Database>,
}

fn load(jobs: &Table<'_, &str, &[u8]>, id: &str) -> Result<Option<JobRecord>> {
    match jobs.get(id).map_err(q)? {
        Some(bytes) => Ok(Some(serde_json::from_slice(bytes.value()).map_err(q)?)),
        None => Ok(None),
    }
}

/// Writes `rec` and keeps the `pending`/`running` indexes in step with its state (`was` is its state before).
fn store(txn: &WriteTransaction, rec: &JobRecord, was: Option<&JobRecord>) -> Result<()> {
    let mut pending = txn.open_table(PENDING).map_err(q)?;
    let mut running = txn.open_table(RUNNING).map_err(q)?;
    if let Some(old) = was {
        pending.remove(old.priority()).map_err(q)?;
        running.remove(old.id.as_str()).map_err(q)?;
    }
    match &rec.state {
        JobState::Queued => {
            pending.insert(rec.priority(), rec.id.as_str()).map_err(q)?;
        }
        JobState::Running { lease_until_ms, .. } => {
            running
                .insert(rec.id.as_str(), *lease_until_ms)
                .map_err(q)?;
        }
        JobState::Ready | JobState::Failed { .. } => {}
    }
    let bytes = serde_json::to_vec(rec).map_err(q)?;
    txn.open_table(JOBS)
        .map_err(q)?
        .insert(rec.id.as_str(), bytes.as_slice())
        .map_err(q)?;
    Ok(())
}

impl RedbQueue {
    /// Opens (or creates) the queue at `path` and requeues the jobs a previous process left running.
    pub fn open(path: &Path) -> Result<RedbQueue> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
        }
        let db = Database::create(path).map_err(q)?;
        let txn = db.begin_write().map_err(q)?;
        {
            txn.open_table(META).map_err(q)?;
            let ids: Vec<String> = {
                let running = txn.open_table(RUNNING).map_err(q)?;
                running
                    .iter()
                    .map_err(q)?
                    .filter_map(|e| e.ok().map(|(k, _)| k.value().to_owned()))
                    .collect()
            };
            let jobs = txn.open_table(JOBS).map_err(q)?;
            let mut orphans = Vec::new();
            for id in ids {
                if let Some(rec) = load(&jobs, &id)? {
                    orphans.push(rec);
                }
            }
            drop(jobs);
            for rec in orphans {
                let mut requeued = rec.clone();
                requeued.state = JobState::Queued;
                tracing::info!(job = %rec.id, "Requeued a job left running by a previous process.");
                store(&txn, &requeued, Some(&rec))?;
            }
        }
        txn.commit().map_err(q)?;
        Ok(RedbQueue { db: Arc::new(db) })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Database) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(q)?
    }

    /// Loads `id`, applies `f`, stores the result, in one write transaction.
    async fn update<T: Send + 'static>(
        &self,
        id: &str,
        f: impl FnOnce(&mut JobRecord) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let id = id.to_owned();
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(q)?;
            let old = {
                let jobs = txn.open_table(JOBS).map_err(q)?;
                load(&jobs, &id)?.ok_or_else(|| Error::UnknownJob(id.clone()))?
            };
            let mut rec = old.clone();
            let out = f(&mut rec)?;
            store(&txn, &rec, Some(&old))?;
            txn.commit().map_err(q)?;
            Ok(out)
        })
        .await
    }
}

#[async_trait::async_trait]
impl JobQueue for RedbQueue {
    async fn submit(
        &self,
        spec: JobSpec,
        deadline_ms: Option<u64>,
        now_ms: u64,
    ) -> Result<JobRecord> {
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(q)?;
            let seq = {
                let mut meta = txn.open_table(META).map_err(q)?;
                let seq = meta.get("seq").map_err(q)?.map_or(0, |v| v.value());
                meta.insert("seq", seq + 1).map_err(q)?;
                seq
            };
            let old = {
                let jobs = txn.open_table(JOBS).map_err(q)?;
                load(&jobs, &spec.id())?
            };
            let rec = merge_submit(old.clone(), spec, deadline_ms, now_ms, seq);
            if old.as_ref() != Some(&rec) {
                store(&txn, &rec, old.as_ref())?;
            }
            txn.commit().map_err(q)?;
            Ok(rec)
        })
        .await
    }

    async fn claim(&self, worker: &str, now_ms: u64, lease_ms: u64) -> Result<Option<JobRecord>> {
        let worker = worker.to_owned();
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(q)?;
            // Leases that ran out (a worker task that died without finishing) go back in line.
            let expired: Vec<String> = {
                let running = txn.open_table(RUNNING).map_err(q)?;
                running
                    .iter()
                    .map_err(q)?
                    .filter_map(|e| e.ok())
                    .filter(|(_, lease)| lease.value() <= now_ms)
                    .map(|(k, _)| k.value().to_owned())
                    .collect()
            };
            for id in expired {
                let old = {
                    let jobs = txn.open_table(JOBS).map_err(q)?;
                    load(&jobs, &id)?
                };
                if let Some(old) = old {
                    let mut rec = old.clone();
                    rec.state = JobState::Queued;
                    store(&txn, &rec, Some(&old))?;
                }
            }
            let next = {
                let pending = txn.open_table(PENDING).map_err(q)?;
                let first = pending.first().map_err(q)?;
                first.map(|(_, id)| id.value().to_owned())
            };
            let Some(id) = next else {
                return Ok(None);
            };
            let old = {
                let jobs = txn.open_table(JOBS).map_err(q)?;
                load(&jobs, &id)?
                    .ok_or_else(|| Error::Queue(format!("pending job {id} has no record")))?
            };
            let mut rec = old.clone();
            apply_claim(&mut rec, &worker, now_ms, lease_ms);
            store(&txn, &rec, Some(&old))?;
            txn.commit().map_err(q)?;
            Ok(Some(rec))
        })
        .await
    }

    async fn heartbeat(&self, id: &str, worker: &str, now_ms: u64, lease_ms: u64) -> Result<()> {
        let worker = worker.to_owned();
        self.update(id, move |rec| {
            apply_heartbeat(rec, &worker, now_ms, lease_ms)
        })
        .await
    }

    async fn progress(&self, id: &str, worker: &str, progress: Progress) -> Result<()> {
        let worker = worker.to_owned();
        self.update(id, move |rec| apply_progress(rec, &worker, progress))
            .await
    }

    async fn finish(&self, id: &str, worker: &str, outcome: Outcome, now_ms: u64) -> Result<()> {
        let worker = worker.to_owned();
        self.update(id, move |rec| apply_finish(rec, &worker, outcome, now_ms))
            .await
    }

    async fn get(&self, id: &str) -> Result<Option<JobRecord>> {
        let id = id.to_owned();
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(q)?;
            let jobs = txn.open_table(JOBS).map_err(q)?;
            match jobs.get(id.as_str()).map_err(q)? {
                Some(bytes) => Ok(Some(serde_json::from_slice(bytes.value()).map_err(q)?)),
                None => Ok(None),
            }
        })
        .await
    }

    async fn retry(&self, id: &str) -> Result<bool> {
        self.update(id, |rec| Ok(apply_retry(rec))).await
    }

    async fn list(&self) -> Result<Vec<JobRecord>> {
        self.blocking(|db| {
            let txn = db.begin_read().map_err(q)?;
            let jobs = txn.open_table(JOBS).map_err(q)?;
            let mut out = Vec::with_capacity(usize::try_from(jobs.len().map_err(q)?).unwrap_or(0));
            for entry in jobs.iter().map_err(q)? {
                let (_, bytes) = entry.map_err(q)?;
                out.push(serde_json::from_slice(bytes.value()).map_err(q)?);
            }
            Ok(out)
        })
        .await
    }
}
