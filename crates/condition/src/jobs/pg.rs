//! The shared job queue: one PostgreSQL table that `interlude condition` workers on many machines claim from.
//! A claim is `SELECT … FOR UPDATE SKIP LOCKED LIMIT 1` in priority order, so concurrent workers each take a
//! different job without waiting on one another; a job whose worker died is claimable again when its lease
//! runs out. Records are the same JSON as the embedded queue's, with the claim columns beside them.

use tokio::sync::Mutex;
use tokio_postgres::types::Json;
use tokio_postgres::{Client, NoTls, Transaction};

use super::{
    JobQueue, JobRecord, JobSpec, JobState, Outcome, Progress, apply_claim, apply_finish,
    apply_heartbeat, apply_progress, apply_retry, merge_submit,
};
use crate::error::{Error, Result};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS condition_jobs (
    id TEXT PRIMARY KEY,
    deadline_ms BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    state TEXT NOT NULL,
    lease_until_ms BIGINT NOT NULL DEFAULT 0,
    record JSONB NOT NULL
);
CREATE INDEX IF NOT EXISTS condition_jobs_claim ON condition_jobs (deadline_ms, seq)
    WHERE state IN ('queued', 'running');
CREATE SEQUENCE IF NOT EXISTS condition_jobs_seq;
";

fn q(e: impl std::fmt::Display) -> Error {
    Error::Queue(e.to_string())
}

/// A job queue in PostgreSQL (one connection; open one per worker process).
#[derive(Debug)]
pub struct PgQueue {
    client: Mutex<Client>,
}

fn columns(rec: &JobRecord) -> (i64, i64, &'static str, i64) {
    let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let (state, lease) = match &rec.state {
        JobState::Queued => ("queued", 0),
        JobState::Running { lease_until_ms, .. } => ("running", clamp(*lease_until_ms)),
        JobState::Ready => ("ready", 0),
        JobState::Failed { .. } => ("failed", 0),
    };
    (
        rec.deadline_ms.map_or(i64::MAX, clamp),
        clamp(rec.seq),
        state,
        lease,
    )
}

async fn save(tx: &Transaction<'_>, rec: &JobRecord) -> Result<()> {
    let (deadline, seq, state, lease) = columns(rec);
    let value = serde_json::to_value(rec).map_err(q)?;
    tx.execute(
        "INSERT INTO condition_jobs (id, deadline_ms, seq, state, lease_until_ms, record)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (id) DO UPDATE SET deadline_ms = $2, seq = $3, state = $4, lease_until_ms = $5, record = $6",
        &[&rec.id, &deadline, &seq, &state, &lease, &Json(value)],
    )
    .await
    .map_err(q)?;
    Ok(())
}

fn record(row: &tokio_postgres::Row) -> Result<JobRecord> {
    row.try_get::<_, Json<JobRecord>>(0).map(|j| j.0).map_err(q)
}

async fn load_for_update(tx: &Transaction<'_>, id: &str) -> Result<Option<JobRecord>> {
    let row = tx
        .query_opt(
            "SELECT record FROM condition_jobs WHERE id = $1 FOR UPDATE",
            &[&id],
        )
        .await
        .map_err(q)?;
    row.as_ref().map(record).transpose()
}

impl PgQueue {
    /// Connects (a `tokio-postgres` connection string) and creates the table if it is missing.
    pub async fn connect(url: &str) -> Result<PgQueue> {
        let (client, connection) = tokio_postgres::connect(url, NoTls).await.map_err(q)?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "Conditioning queue connection ended.");
            }
        });
        // Two workers starting at once may both create the table; the advisory lock serialises them.
        client
            .batch_execute(&format!(
                "SELECT pg_advisory_lock(72210); {SCHEMA} SELECT pg_advisory_unlock(72210);"
            ))
            .await
            .map_err(q)?;
        Ok(PgQueue {
            client: Mutex::new(client),
        })
    }

    async fn update<T: Send>(
        &self,
        id: &str,
        f: impl FnOnce(&mut JobRecord) -> Result<T> + Send,
    ) -> Result<T> {
        let mut client = self.client.lock().await;
        let tx = client.transaction().await.map_err(q)?;
        let mut rec = load_for_update(&tx, id)
            .await?
            .ok_or_else(|| Error::UnknownJob(id.to_owned()))?;
        let out = f(&mut rec)?;
        save(&tx, &rec).await?;
        tx.commit().await.map_err(q)?;
        Ok(out)
    }
}

#[async_trait::async_trait]
impl JobQueue for PgQueue {
    async fn submit(
        &self,
        spec: JobSpec,
        deadline_ms: Option<u64>,
        now_ms: u64,
    ) -> Result<JobRecord> {
        let mut client = self.client.lock().await;
        let tx = client.transaction().await.map_err(q)?;
        let seq: i64 = tx
            .query_one("SELECT nextval('condition_jobs_seq')", &[])
            .await
            .map_err(q)?
            .get(0);
        let fresh = merge_submit(
            None,
            spec.clone(),
            deadline_ms,
            now_ms,
            u64::try_from(seq).unwrap_or(0),
        );
        let (deadline, seq_col, state, lease) = columns(&fresh);
        let value = serde_json::to_value(&fresh).map_err(q)?;
        let inserted = tx
            .execute(
                "INSERT INTO condition_jobs (id, deadline_ms, seq, state, lease_until_ms, record)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
                &[&fresh.id, &deadline, &seq_col, &state, &lease, &Json(value)],
            )
            .await
            .map_err(q)?;
        let rec = if inserted == 1 {
            fresh
        } else {
            let old = load_for_update(&tx, &fresh.id).await?;
            let rec = merge_submit(old.clone(), spec, deadline_ms, now_ms, fresh.seq);
            if old.as_ref() != Some(&rec) {
                save(&tx, &rec).await?;
            }
            rec
        };
        tx.commit().await.map_err(q)?;
        Ok(rec)
    }

    async fn claim(&self, worker: &str, now_ms: u64, lease_ms: u64) -> Result<Option<JobRecord>> {
        let now = i64::try_from(now_ms).unwrap_or(i64::MAX);
        let mut client = self.client.lock().await;
        let tx = client.transaction().await.map_err(q)?;
        let row = tx
            .query_opt(
                "SELECT record FROM condition_jobs
                 WHERE state = 'queued' OR (state = 'running' AND lease_until_ms <= $1)
                 ORDER BY deadline_ms, seq
                 LIMIT 1 FOR UPDATE SKIP LOCKED",
                &[&now],
            )
            .await
            .map_err(q)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut rec = record(&row)?;
        apply_claim(&mut rec, worker, now_ms, lease_ms);
        save(&tx, &rec).await?;
        tx.commit().await.map_err(q)?;
        Ok(Some(rec))
    }

    async fn heartbeat(&self, id: &str, worker: &str, now_ms: u64, lease_ms: u64) -> Result<()> {
        self.update(id, |rec| apply_heartbeat(rec, worker, now_ms, lease_ms))
            .await
    }

    async fn progress(&self, id: &str, worker: &str, progress: Progress) -> Result<()> {
        self.update(id, |rec| apply_progress(rec, worker, progress))
            .await
    }

    async fn finish(&self, id: &str, worker: &str, outcome: Outcome, now_ms: u64) -> Result<()> {
        self.update(id, |rec| apply_finish(rec, worker, outcome, now_ms))
            .await
    }

    async fn get(&self, id: &str) -> Result<Option<JobRecord>> {
        let client = self.client.lock().await;
        let row = client
            .query_opt("SELECT record FROM condition_jobs WHERE id = $1", &[&id])
            .await
            .map_err(q)?;
        row.as_ref().map(record).transpose()
    }

    async fn retry(&self, id: &str) -> Result<bool> {
        self.update(id, |rec| Ok(apply_retry(rec))).await
    }

    async fn list(&self) -> Result<Vec<JobRecord>> {
        let client = self.client.lock().await;
        let rows = client
            .query("SELECT record FROM condition_jobs ORDER BY seq", &[])
            .await
            .map_err(q)?;
        rows.iter().map(record).collect()
    }
}
