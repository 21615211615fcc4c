//! The conformance suite of [`SessionShare`], run against every backend (in-process memory, Redis on a real
//! server): records round-trip byte for byte, the first decision stored for a break wins however many nodes
//! race to store theirs, and erasure by viewer removes the viewer's sessions and decisions and nothing else.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

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
