//! The job-queue conformance suite (`interlude_condition::jobs::testing`) against every implementation: the
//! embedded redb queue always, PostgreSQL with `--features postgres`.

use std::sync::Arc;

use interlude_condition::jobs::testing::{conformance, sample_spec};
use interlude_condition::{JobQueue, JobState, RedbQueue};

#[tokio::test]
async fn redb_queue_conforms() {
    let dir = tempfile::tempdir().expect("temp dir");
    let n = std::sync::atomic::AtomicUsize::new(0);
    conformance(|| {
        let path = dir.path().join(format!(
            "q{}.redb",
            n.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        async move { Arc::new(RedbQueue::open(&path).expect("redb opens")) as Arc<dyn JobQueue> }
    })
    .await;
}

#[tokio::test]
async fn redb_queue_requeues_running_jobs_after_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("q.redb");
    let id = {
        let q = RedbQueue::open(&path).expect("redb opens");
        let id = q
            .submit(sample_spec("a"), None, 0)
            .await
            .expect("submit")
            .id;
        // Held for an hour by a worker of this process, which then dies with it.
        q.claim("w1", 0, 3_600_000)
            .await
            .expect("claim")
            .expect("a job");
        id
    };
    let q = RedbQueue::open(&path).expect("redb reopens");
    let rec = q.get(&id).await.expect("get").expect("the job survived");
    assert_eq!(rec.state, JobState::Queued);
    let again = q
        .claim("w2", 1, 1_000)
        .await
        .expect("claim")
        .expect("claimable at once");
    assert_eq!(again.attempts, 2);
}

/// PostgreSQL (`--features postgres`): `INTERLUDE_CONDITION_PG_URL`, default the local test server with trust
/// auth. Each queue gets a schema of its own.
#[cfg(feature = "postgres")]
mod pg {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use interlude_condition::JobQueue;
    use interlude_condition::jobs::pg::PgQueue;
    use interlude_condition::jobs::testing::{conformance, sample_spec};

    fn base_url() -> String {
        std::env::var("INTERLUDE_CONDITION_PG_URL")
            .unwrap_or_else(|_| "host=127.0.0.1 port=5432 user=postgres dbname=test".into())
    }

    /// A connection string whose `search_path` is a new, empty schema.
    async fn fresh_schema() -> String {
        static N: AtomicU64 = AtomicU64::new(0);
        let schema = format!(
            "condition_t{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let (client, conn) = tokio_postgres::connect(&base_url(), tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "PostgreSQL at {:?} is not reachable ({e}): start it with scripts/services.sh",
                    base_url()
                )
            });
        tokio::spawn(conn);
        client
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
            ))
            .await
            .expect("schema created");
        format!("{} options='-c search_path={schema}'", base_url())
    }

    #[tokio::test]
    async fn postgres_queue_conforms() {
        conformance(|| async {
            Arc::new(
                PgQueue::connect(&fresh_schema().await)
                    .await
                    .expect("connects"),
            ) as Arc<dyn JobQueue>
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn workers_on_separate_connections_skip_each_others_jobs() {
        let url = fresh_schema().await;
        let setup = PgQueue::connect(&url).await.expect("connects");
        for i in 0..30 {
            setup
                .submit(sample_spec(&format!("c{i}")), Some(i), 0)
                .await
                .expect("submit");
        }
        let mut tasks = Vec::new();
        for w in 0..5 {
            let url = url.clone();
            tasks.push(tokio::spawn(async move {
                let q = PgQueue::connect(&url).await.expect("connects");
                let mut got = Vec::new();
                while let Some(rec) = q
                    .claim(&format!("host{w}"), 10, 60_000)
                    .await
                    .expect("claim")
                {
                    got.push(rec.id);
                }
                got
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.expect("worker task"));
        }
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!((n, all.len()), (30, 30), "every job claimed exactly once");
    }
}
