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
