//! The outbox's metrics, read from a debugging recorder: what was queued, deduplicated, fired, retried and
//! dead-lettered, and the send latency per host.

mod common;

use std::sync::Arc;

use common::{PixelServer, Reply, client, config, wait_for};
use interlude_outbox::metrics as m;
use interlude_outbox::{Outbox, OutboxConfig, OutboxStore, Pixel, PixelEvent, RedbStore};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

/// A metric's name, labels and value.
type Metric = (String, Vec<(String, String)>, DebugValue);

fn counter(snapshot: &[Metric], name: &str, labels: &[(&str, &str)]) -> u64 {
    snapshot
        .iter()
        .filter(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|(_, _, v)| match v {
            DebugValue::Counter(c) => *c,
            _ => 0,
        })
        .sum()
}

// One thread: the recorder is thread-local, and every task of this runtime runs on it.
#[tokio::test(flavor = "current_thread")]
async fn fired_duplicate_retried_and_dead_pixels_are_counted() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _guard = metrics::set_default_local_recorder(&recorder);
    m::describe();

    let server = PixelServer::start(|hit, before| match (hit.key.as_str(), before) {
        ("/gone", _) => Reply::status(404),
        ("/flaky", 0) => Reply::status(503),
        _ => Reply::ok(),
    })
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(RedbStore::open(dir.path().join("q.redb")).expect("open"));
    let outbox = Outbox::start(
        OutboxConfig {
            max_attempts: 2,
            ..config()
        },
        store,
        client(None),
    )
    .expect("start");
    let ok = Pixel::new("ai", PixelEvent::Impression, server.url("/ok"));
    outbox
        .enqueue(vec![
            ok.clone(),
            ok,
            Pixel::new("ai", PixelEvent::Start, server.url("/flaky")),
            Pixel::new("ai", PixelEvent::Complete, server.url("/gone")),
        ])
        .await
        .expect("enqueue");
    let store = Arc::clone(outbox.store());
    wait_for("four hits", 30, || server.total() >= 4).await;
    outbox.shutdown().await;
    assert_eq!(store.depth().await.expect("depth"), 0);

    let snapshot: Vec<Metric> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let labels = key
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            (key.name().to_owned(), labels, value)
        })
        .collect();
    assert_eq!(counter(&snapshot, m::ENQUEUED_TOTAL, &[]), 3);
    assert_eq!(
        counter(&snapshot, m::DUPLICATES_TOTAL, &[("event", "impression")]),
        1
    );
    assert_eq!(
        counter(&snapshot, m::FIRED_TOTAL, &[("event", "impression")]),
        1
    );
    assert_eq!(counter(&snapshot, m::FIRED_TOTAL, &[("event", "start")]), 1);
    assert_eq!(
        counter(&snapshot, m::RETRIED_TOTAL, &[("event", "start")]),
        1
    );
    assert_eq!(counter(&snapshot, m::FAILED_TOTAL, &[("reason", "5xx")]), 1);
    assert_eq!(counter(&snapshot, m::FAILED_TOTAL, &[("reason", "4xx")]), 1);
    assert_eq!(
        counter(
            &snapshot,
            m::DEAD_LETTERED_TOTAL,
            &[("event", "complete"), ("reason", "rejected")]
        ),
        1
    );
    let host = server.addr.to_string();
    assert!(
        snapshot
            .iter()
            .any(|(n, l, v)| n == m::SEND_DURATION_SECONDS
                && l.iter().any(|(k, val)| k == "host" && *val == host)
                && matches!(v, DebugValue::Histogram(h) if h.len() == 4)),
        "a latency histogram for {host}"
    );
}
