//! The `OutboxStore` contract (`interlude_outbox::store::conformance`) against every implementation: the
//! embedded redb file and PostgreSQL (the server `scripts/services.sh` starts; `INTERLUDE_PG_URL` overrides the
//! default `host=127.0.0.1 port=5432 user=postgres dbname=interlude_test`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use interlude_outbox::store::conformance as c;
use interlude_outbox::{OutboxStore, PgStore, RedbStore};

fn redb() -> (tempfile::TempDir, RedbStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = RedbStore::open(dir.path().join("outbox.redb")).expect("open redb");
    (dir, store)
}

/// A fresh schema on the test server, as a connection string.
async fn pg_url() -> String {
    let base = std::env::var("INTERLUDE_PG_URL").unwrap_or_else(|_| {
        "host=127.0.0.1 port=5432 user=postgres dbname=interlude_test".to_owned()
    });
    let (client, connection) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL at `{base}` is not reachable ({e}); start it with scripts/services.sh \
                 or set INTERLUDE_PG_URL"
            )
        });
    tokio::spawn(connection);
    static N: AtomicU64 = AtomicU64::new(0);
    let schema = format!(
        "outbox_{}_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() % 1_000_000_000),
        N.fetch_add(1, Ordering::Relaxed)
    );
    client
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .expect("create schema");
    format!("{base} options='-c search_path={schema}'")
}

async fn pg() -> PgStore {
    PgStore::connect(&pg_url().await).await.expect("connect")
}

macro_rules! conformance {
    ($($check:ident),* $(,)?) => {
        mod redb_store {
            use super::*;
            $(
                #[tokio::test]
                async fn $check() {
                    let (_dir, store) = redb();
                    c::$check(&store).await;
                }
            )*
        }
        mod pg_store {
            use super::*;
            $(
                #[tokio::test]
                async fn $check() {
                    let store = pg().await;
                    c::$check(&store).await;
                }
            )*
        }
    };
}

conformance!(
    enqueued_pixels_are_leased_once,
    duplicates_are_not_queued,
    an_expired_lease_hands_the_pixel_out_again,
    pixels_come_out_in_due_order,
    retries_and_deferrals_reschedule,
    dead_letters_keep_the_reason_without_viewer_data,
    the_queue_holds_no_device_data_without_consent,
    pruning_forgets_old_keys_and_dead_letters,
    completions_of_unknown_ids_are_ignored,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redb_concurrent_leases_never_share_a_pixel() {
    let (_dir, store) = redb();
    let store = Arc::new(store);
    c::concurrent_leases_never_share_a_pixel(vec![
        store.clone(),
        store.clone(),
        store.clone(),
        store,
    ])
    .await;
}

/// Several connections, as several server processes would have: `SKIP LOCKED` keeps them apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_concurrent_leases_never_share_a_pixel() {
    let url = pg_url().await;
    let mut stores = Vec::new();
    for _ in 0..4 {
        stores.push(Arc::new(PgStore::connect(&url).await.expect("connect")));
    }
    c::concurrent_leases_never_share_a_pixel(stores).await;
}

/// What a redb queue holds survives closing and reopening the file.
#[tokio::test]
async fn redb_queue_survives_reopening() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("outbox.redb");
    {
        let store = RedbStore::open(&path).expect("open");
        store
            .enqueue(vec![c::pixel("ai", "a"), c::pixel("ai", "b")], c::t0())
            .await
            .expect("enqueue");
    }
    let store = RedbStore::open(&path).expect("reopen");
    assert_eq!(store.depth().await.expect("depth"), 2);
    let again = store
        .enqueue(vec![c::pixel("ai", "a")], c::t0())
        .await
        .expect("enqueue");
    assert_eq!(again, vec![interlude_outbox::Enqueued::Duplicate]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redb_concurrent_enqueues_queue_each_pixel_once() {
    let (_dir, store) = redb();
    c::concurrent_enqueues_queue_each_pixel_once(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_concurrent_enqueues_queue_each_pixel_once() {
    c::concurrent_enqueues_queue_each_pixel_once(Arc::new(pg().await)).await;
}
