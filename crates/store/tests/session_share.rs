//! The conformance suite of [`SessionShare`], run against every backend (in-process memory, Redis on a real
//! server): records round-trip byte for byte, the first decision stored for a break wins however many nodes
//! race to store theirs, and erasure by viewer removes the viewer's sessions and decisions and nothing else.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use interlude_store::embedded::RedbSessionShare;
use interlude_store::redis::RedisSessionShare;
use interlude_store::{MemorySessionShare, SessionShare, testing};

async fn conforms(share: Arc<dyn SessionShare>) {
    let id = format!("s-{}", std::process::id());
    let record = r#"{"id":"s","viewer":{"viewer_id":"v1"},"joined_msn":4242}"#;
    assert_eq!(share.load_session(&id).await.unwrap(), None);
    share.save_session(&id, Some("v1"), record).await.unwrap();
    share
        .save_session("other", Some("v2"), r#"{"viewer":"v2"}"#)
        .await
        .unwrap();
    assert_eq!(
        share.load_session(&id).await.unwrap().as_deref(),
        Some(record)
    );
    share.touch(&id).await.unwrap();

    assert_eq!(share.load_decision(&id, "b1").await.unwrap(), None);
    // Eight nodes decide the same break for the same viewer at once: one decision wins, all adopt it.
    let racers = (0..8).map(|n| {
        let (share, id) = (share.clone(), id.clone());
        tokio::spawn(async move {
            share
                .save_decision(&id, "b1", &format!(r#"{{"node":{n}}}"#))
                .await
                .unwrap()
        })
    });
    let winners: Vec<String> = futures::future::join_all(racers)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert!(winners.windows(2).all(|w| w[0] == w[1]), "one winner");
    assert_eq!(
        share.load_decision(&id, "b1").await.unwrap().as_ref(),
        Some(&winners[0])
    );
    let late = share.save_decision(&id, "b1", "late").await.unwrap();
    assert_eq!(late, winners[0], "a decision is never replaced");
    let other = share.save_decision(&id, "b2", r#""b2""#).await.unwrap();
    assert_eq!(other, r#""b2""#, "another break is independent");

    assert!(!share.mentioning("v1").await.unwrap().is_empty());
    assert_eq!(share.forget_viewers(&["v1".to_owned()]).await.unwrap(), 1);
    assert_eq!(share.load_session(&id).await.unwrap(), None);
    assert_eq!(share.load_decision(&id, "b1").await.unwrap(), None);
    assert!(share.mentioning("v1").await.unwrap().is_empty());
    assert!(
        share.load_session("other").await.unwrap().is_some(),
        "another viewer's session is kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redb_session_share_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let share = RedbSessionShare::open(dir.path(), Duration::from_secs(120)).unwrap();
    conforms(Arc::new(share)).await;
}

/// A node's sessions and decisions outlive the process: closed and opened again, the file answers the same;
/// and a session not touched within its time to live is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redb_sessions_survive_a_restart_and_expire() {
    let dir = tempfile::tempdir().unwrap();
    let share = RedbSessionShare::open(dir.path(), Duration::from_secs(120)).unwrap();
    share
        .save_session("s1", Some("v1"), r#"{"id":"s1"}"#)
        .await
        .unwrap();
    share
        .save_decision("s1", "b1", r#"{"pod":1}"#)
        .await
        .unwrap();
    share.close();
    let reopened = RedbSessionShare::open(dir.path(), Duration::from_secs(120)).unwrap();
    assert_eq!(
        reopened.load_session("s1").await.unwrap().as_deref(),
        Some(r#"{"id":"s1"}"#)
    );
    assert_eq!(
        reopened.load_decision("s1", "b1").await.unwrap().as_deref(),
        Some(r#"{"pod":1}"#)
    );
    reopened.close();
    let short = RedbSessionShare::open(dir.path(), Duration::from_millis(1)).unwrap();
    short.touch("s1").await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(short.load_session("s1").await.unwrap(), None, "expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_session_share_conforms() {
    conforms(Arc::new(MemorySessionShare::default())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_session_share_conforms() {
    let share = RedisSessionShare::connect(&testing::redis_url(), &testing::redis_prefix(), 60)
        .await
        .expect("Redis at INTERLUDE_REDIS_URL (scripts/services.sh starts one)");
    conforms(Arc::new(share)).await;
}
