//! The shared pacing and frequency counters are exactly once even when a processor dies between its
//! PostgreSQL commit and the Redis step: the batch's deltas wait in PostgreSQL's counter outbox, and the next
//! processor to start re-drives them. Real servers (`eval "$(scripts/services.sh)"`): the pieces of a processor
//! are called directly, with the "crash" between them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, TimeDelta, Utc};
use interlude_events::contract::{ConsentFlags, EventSource, EventType};
use interlude_events::testing::event;
use interlude_events::{Counters, Policy};
use interlude_store::pg::{PgStore, outbox};
use interlude_store::redis::RedisCounters;
use interlude_store::{LogRecord, Logged, testing};

/// `n` impressions on line item 2 by consenting viewer `v1`, at offsets from `first`.
fn records(first: i64, n: i64, at: DateTime<Utc>) -> Vec<Logged> {
    (0..n)
        .map(|i| {
            let offset = first + i;
            let mut e = event(
                format!("e{offset}"),
                &format!("ai{offset}"),
                EventType::Impression,
                EventSource::ServerSide,
                at,
                2,
            );
            e.viewer_id = Some("v1".into());
            e.consent = ConsentFlags {
                store_viewer_id: true,
                ..ConsentFlags::default()
            };
            (
                offset,
                Ok(LogRecord {
                    event: e,
                    edge: None,
                }),
            )
        })
        .collect()
}

async fn connect() -> (PgStore, std::sync::Arc<RedisCounters>) {
    let url = testing::pg_fresh_schema()
        .await
        .expect("PostgreSQL unreachable: start it with `eval \"$(scripts/services.sh)\"`");
    let pg = PgStore::connect(&url, Policy::default()).await.unwrap();
    let counters = RedisCounters::connect(&testing::redis_url(), &testing::redis_prefix(), 30)
        .await
        .expect("Redis unreachable: start it with `eval \"$(scripts/services.sh)\"`");
    (pg, counters)
}

#[tokio::test]
async fn counters_lost_in_a_crash_before_the_redis_step_are_redriven_exactly() {
    let (pg, counters) = connect().await;
    let (group, topic) = ("processors", "events");
    let t0: DateTime<Utc> = "2026-11-23T18:00:00Z".parse().unwrap();
    let since = t0 - TimeDelta::hours(1);

    // Batch 1 goes all the way: PostgreSQL, Redis, outbox row deleted.
    let first = pg
        .apply(group, topic, 0, &records(0, 40, t0))
        .await
        .unwrap();
    assert!(counters.apply(topic, 0, &first).await.unwrap());
    pg.counter_deltas_applied(group, topic, 0, first.first_offset().unwrap())
        .await
        .unwrap();

    // Batch 2 (partition 0) and batch 3 (partition 1) commit to PostgreSQL; the processor dies before Redis.
    pg.apply(group, topic, 0, &records(40, 25, t0))
        .await
        .unwrap();
    pg.apply(group, topic, 1, &records(1_000, 10, t0))
        .await
        .unwrap();
    counters.refresh().await.unwrap();
    counters.load_viewer("v1").await.unwrap();
    assert_eq!(
        counters.delivered("li2", since),
        40,
        "the crash lost two batches"
    );
    let pending = pg.pending_counter_deltas(group, topic).await.unwrap();
    assert_eq!(
        pending
            .iter()
            .map(|p| (p.partition, p.first_offset))
            .collect::<Vec<_>>(),
        [(0, 40), (1, 1_000)]
    );

    // The next processor starts: it re-drives the outbox. Twice (two processors starting at once) is harmless.
    assert_eq!(
        outbox::redrive(&pg, &counters, group, topic).await.unwrap(),
        2
    );
    assert_eq!(
        outbox::redrive(&pg, &counters, group, topic).await.unwrap(),
        0
    );
    counters.refresh().await.unwrap();
    counters.load_viewer("v1").await.unwrap();
    assert_eq!(counters.delivered("li2", since), 75);
    assert_eq!(counters.viewer_impressions("v1", "li2", since), 75);
    assert_eq!(
        pg.delivered("li2", since).await.unwrap(),
        75,
        "Redis agrees with the ledger"
    );

    // A batch re-applied after the crash (the log redelivers it) is skipped by PostgreSQL and adds no row.
    let again = pg
        .apply(group, topic, 0, &records(40, 25, t0))
        .await
        .unwrap();
    assert_eq!(again.skipped, 25);
    assert!(
        pg.pending_counter_deltas(group, topic)
            .await
            .unwrap()
            .is_empty()
    );
    counters.clear().await.unwrap();
}

#[tokio::test]
async fn a_redis_step_that_ran_before_the_crash_is_not_added_twice() {
    let (pg, counters) = connect().await;
    let (group, topic) = ("processors", "events");
    let t0: DateTime<Utc> = "2026-11-23T18:00:00Z".parse().unwrap();
    let applied = pg
        .apply(group, topic, 3, &records(0, 12, t0))
        .await
        .unwrap();
    // Redis took the batch, but the processor died before deleting the outbox row.
    assert!(counters.apply(topic, 3, &applied).await.unwrap());
    assert_eq!(
        outbox::redrive(&pg, &counters, group, topic).await.unwrap(),
        1
    );
    counters.refresh().await.unwrap();
    assert_eq!(counters.delivered("li2", t0 - TimeDelta::hours(1)), 12);
    counters.clear().await.unwrap();
}

#[tokio::test]
async fn erasure_removes_viewer_ids_from_pending_counter_deltas() {
    let (pg, counters) = connect().await;
    let (group, topic) = ("processors", "events");
    let t0: DateTime<Utc> = "2026-11-23T18:00:00Z".parse().unwrap();
    pg.apply(group, topic, 0, &records(0, 5, t0)).await.unwrap();
    pg.forget_viewers(&["v1".to_owned()]).await.unwrap();
    let pending = pg.pending_counter_deltas(group, topic).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert!(pending[0].applied.viewer_impressions.is_empty());
    assert_eq!(pending[0].applied.delivered.values().sum::<u64>(), 5);
    counters.clear().await.unwrap();
}
