//! The dispatcher against local third-party servers (HTTP and HTTPS on 127.0.0.1): exactly one hit per
//! enqueued pixel, retries until success, dead letters, consent, per-host concurrency, draining on shutdown.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use common::{PixelServer, Reply, TestCa, client, config, wait_for};
use interlude_outbox::{
    Device, Enqueued, Outbox, OutboxConfig, OutboxStore, Pixel, PixelEvent, RedbStore, ServerSide,
};

fn store() -> (tempfile::TempDir, Arc<RedbStore>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = RedbStore::open(dir.path().join("outbox.redb")).expect("open");
    (dir, Arc::new(store))
}

fn pixels(server: &PixelServer, n: usize) -> Vec<Pixel> {
    (0..n)
        .map(|i| {
            Pixel::new(
                format!("ai-{}", i / 4),
                PixelEvent::ALL[i % 4],
                server.url(&format!("/p/{i}?cb=[CACHEBUSTING]")),
            )
        })
        .collect()
}

/// The keys the server counted pixels under (their paths: the cachebuster is dropped).
fn keys_of(server: &PixelServer) -> BTreeSet<String> {
    server.counts().keys().cloned().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_pixel_arrives_once_even_when_enqueued_twice() {
    let server = PixelServer::start(|_, _| Reply::ok()).await;
    let (_dir, store) = store();
    let outbox = Outbox::start(config(), store, client(None)).expect("start");
    let batch = pixels(&server, 200);
    let first = outbox.enqueue(batch.clone()).await.expect("enqueue");
    assert!(first.iter().all(|a| matches!(a, Enqueued::Queued(_))));
    // A replayed batch and a retried beacon: nothing new is queued.
    let replay = outbox.enqueue(batch.clone()).await.expect("enqueue");
    assert!(replay.iter().all(|a| *a == Enqueued::Duplicate));
    wait_for("200 hits", 30, || server.total() >= 200).await;
    let again = outbox.enqueue(batch[..10].to_vec()).await.expect("enqueue");
    assert!(again.iter().all(|a| *a == Enqueued::Duplicate));
    let store = Arc::clone(outbox.store());
    assert_eq!(outbox.shutdown().await.abandoned, 0);
    assert_eq!(server.total(), 200, "one hit per pixel");
    assert_eq!(keys_of(&server).len(), 200);
    assert!(server.counts().values().all(|n| *n == 1));
    assert_eq!(store.depth().await.expect("depth"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_server_is_retried_with_backoff_until_it_answers() {
    // The first three hits of each pixel fail (503, then 429, then a hang past the timeout), the fourth is taken.
    let server = PixelServer::start(|_, before| match before {
        0 => Reply::status(503),
        1 => Reply::status(429),
        2 => Reply::ok().after(Duration::from_millis(1_500)),
        _ => Reply::ok(),
    })
    .await;
    let (_dir, store) = store();
    let outbox = Outbox::start(
        OutboxConfig {
            timeout_ms: 300,
            ..config()
        },
        store,
        client(None),
    )
    .expect("start");
    outbox.enqueue(pixels(&server, 3)).await.expect("enqueue");
    wait_for("four hits per pixel", 30, || {
        let c = server.counts();
        c.len() == 3 && c.values().all(|n| *n >= 4)
    })
    .await;
    let store = Arc::clone(outbox.store());
    outbox.shutdown().await;
    assert!(
        server.counts().values().all(|n| *n == 4),
        "{:?}",
        server.counts()
    );
    assert_eq!(store.depth().await.expect("depth"), 0);
    assert!(store.dead_letters(10).await.expect("dead").is_empty());
    // The hits of one pixel come one after the other, never together.
    let hits = server.hits();
    for key in keys_of(&server) {
        let times: Vec<_> = hits.iter().filter(|h| h.key == key).map(|h| h.at).collect();
        assert_eq!(times.len(), 4);
        let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
        eprintln!("{key}: gaps between attempts {gaps:?}");
        assert!(times.windows(2).all(|w| w[0] <= w[1]));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_and_exhausted_retries_end_in_the_dead_letters() {
    let server = PixelServer::start(|hit, _| {
        if hit.key.starts_with("/gone") {
            Reply::status(404)
        } else {
            Reply::status(500)
        }
    })
    .await;
    let (_dir, store) = store();
    let outbox = Outbox::start(
        OutboxConfig {
            max_attempts: 3,
            ..config()
        },
        store,
        client(None),
    )
    .expect("start");
    let mut consenting = Pixel::new("ai", PixelEvent::Impression, server.url("/down"));
    consenting.context.device = Device {
        share: true,
        user_agent: Some("UA/1".into()),
        ip: Some("198.51.100.4".parse().expect("ip")),
        player: None,
    };
    outbox
        .enqueue(vec![
            Pixel::new("ai", PixelEvent::Impression, server.url("/gone")),
            consenting,
            // 127.0.0.2 is loopback but not allowlisted: the guard refuses it before connecting.
            Pixel::new("ai", PixelEvent::Complete, "http://127.0.0.2:9/private"),
        ])
        .await
        .expect("enqueue");
    let store = Arc::clone(outbox.store());
    wait_for("three dead letters", 30, || {
        server.counts().get("/down").copied().unwrap_or(0) >= 3
            && server.counts().contains_key("/gone")
    })
    .await;
    outbox.shutdown().await;
    let mut dead = store.dead_letters(10).await.expect("dead");
    dead.sort_by(|a, b| a.pixel.url_template.cmp(&b.pixel.url_template));
    let reasons: Vec<(&str, u32)> = dead
        .iter()
        .map(|d| (d.reason.as_str(), d.attempts))
        .collect();
    assert_eq!(dead.len(), 3, "{reasons:?}");
    assert_eq!(reasons[0], ("3 attempts, last: HTTP 500", 3));
    assert_eq!(
        dead[0].pixel.context.device.ip, None,
        "no viewer data in dead letters"
    );
    assert_eq!(reasons[1], ("rejected: HTTP 404", 1));
    assert!(
        reasons[2]
            .0
            .starts_with("rejected: refused http://127.0.0.2:9/private"),
        "{reasons:?}"
    );
    assert_eq!(reasons[2].1, 1);
    assert_eq!(server.counts().get("/gone"), Some(&1));
    assert_eq!(server.counts().get("/down"), Some(&3));
    assert_eq!(store.depth().await.expect("depth"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn macros_are_expanded_and_device_data_follows_consent() {
    let server = PixelServer::start(|_, _| Reply::ok()).await;
    let (_dir, store) = store();
    let outbox = Outbox::start(config(), store, client(None)).expect("start");
    let template = "?ua=[DEVICEUA]&ip=[DEVICEIP]&ss=[SERVERSIDE]&id=[ADSERVINGID]&n=[ADCOUNT]\
                    &cp=[CONTENTPLAYHEAD]&p=${AUCTION_PRICE}&cb=[CACHEBUSTING]";
    let mut with = Pixel::new(
        "ai-yes",
        PixelEvent::Impression,
        server.url(&format!("/yes{template}")),
    );
    with.context.server_side = ServerSide::OnBehalfOfClient;
    with.context.ad_serving_id = Some("srv-1".into());
    with.context.ad_count = Some(1);
    with.context.content_playhead_ms = Some(65_500);
    with.context.auction = Some(interlude_outbox::Auction {
        price: Some("2.50".into()),
        ..Default::default()
    });
    with.context.device = Device {
        share: true,
        user_agent: Some("Mozilla/5.0 (SMART-TV; Linux)".into()),
        ip: Some("198.51.100.23".parse().expect("ip")),
        player: None,
    };
    let mut without = with.clone();
    without.ad_instance_id = "ai-no".into();
    without.url_template = server.url(&format!("/no{template}"));
    without.context.device.share = false;
    outbox.enqueue(vec![with, without]).await.expect("enqueue");
    wait_for("two hits", 30, || server.total() >= 2).await;
    outbox.shutdown().await;
    let hits = server.hits();
    let yes = hits
        .iter()
        .find(|h| h.key.starts_with("/yes"))
        .expect("consenting hit");
    let no = hits
        .iter()
        .find(|h| h.key.starts_with("/no"))
        .expect("refusing hit");
    assert_eq!(
        yes.key,
        "/yes?ua=Mozilla%2F5.0%20%28SMART-TV%3B%20Linux%29&ip=198.51.100.23&ss=1&id=srv-1&n=1\
         &cp=00%3A01%3A05.500&p=2.50"
    );
    assert_eq!(
        yes.headers["x-device-user-agent"],
        "Mozilla/5.0 (SMART-TV; Linux)"
    );
    assert_eq!(yes.headers["x-device-ip"], "198.51.100.23");
    assert_eq!(yes.headers["x-forwarded-for"], "198.51.100.23");
    let cb = yes.target.split("cb=").nth(1).expect("cachebuster");
    assert!(
        cb.len() == 8 && cb.bytes().all(|b| b.is_ascii_digit()),
        "{cb}"
    );
    assert_eq!(
        no.key,
        "/no?ua=-2&ip=-2&ss=1&id=srv-1&n=1&cp=00%3A01%3A05.500&p=2.50"
    );
    for name in ["x-device-user-agent", "x-device-ip", "x-forwarded-for"] {
        assert!(
            !no.headers.contains_key(name),
            "{name} sent without consent"
        );
    }
    // The server's own User-Agent, never the viewer's.
    assert!(
        no.headers["user-agent"]
            .to_str()
            .expect("ua")
            .starts_with("Interlude/")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_host_concurrency_is_never_exceeded() {
    let slow = |_: &common::Hit, _| Reply::ok().after(Duration::from_millis(30));
    let a = PixelServer::start(slow).await;
    let b = PixelServer::start(slow).await;
    let (_dir, store) = store();
    let outbox = Outbox::start(
        OutboxConfig {
            per_host_concurrency: 3,
            max_in_flight: 64,
            ..config()
        },
        store,
        client(None),
    )
    .expect("start");
    let mut all = pixels(&a, 60);
    all.extend(pixels(&b, 60));
    outbox.enqueue(all).await.expect("enqueue");
    wait_for("120 hits", 60, || a.total() + b.total() >= 120).await;
    outbox.shutdown().await;
    for server in [&a, &b] {
        assert_eq!(server.total(), 60);
        assert!(
            server.max_concurrent() <= 3,
            "{} at once",
            server.max_concurrent()
        );
        assert!(server.max_concurrent() >= 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pixels_are_fired_over_https_to_a_server_of_a_trusted_ca() {
    let ca = TestCa::new("Interlude outbox test CA");
    let server = PixelServer::start_tls(ca.server_config(), |_, _| Reply::ok()).await;
    let (_dir, store) = store();
    let outbox = Outbox::start(config(), store, client(Some(ca.pem()))).expect("start");
    outbox.enqueue(pixels(&server, 20)).await.expect("enqueue");
    wait_for("20 hits over TLS", 30, || server.total() >= 20).await;
    let store = Arc::clone(outbox.store());
    outbox.shutdown().await;
    assert!(server.counts().values().all(|n| *n == 1));
    assert_eq!(store.depth().await.expect("depth"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_waits_for_the_sends_in_flight() {
    let server = PixelServer::start(|_, _| Reply::ok().after(Duration::from_millis(300))).await;
    let (_dir, store) = store();
    let outbox = Outbox::start(config(), store, client(None)).expect("start");
    outbox.enqueue(pixels(&server, 8)).await.expect("enqueue");
    wait_for("8 requests in progress", 30, || server.in_progress() == 8).await;
    let store = Arc::clone(outbox.store());
    let drained = outbox.shutdown().await;
    assert_eq!(drained.abandoned, 0);
    assert_eq!(store.depth().await.expect("depth"), 0, "outcomes committed");
    assert_eq!(server.total(), 8);
}

/// Pixels queued held wait for their outcome: released, they fire at once; cancelled, they end in the dead
/// letters unfired; neither (their producer crashed before it knew the outcome: the queue is durable on
/// enqueue, so this is what a restarted dispatcher finds), they fire when the hold ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_pixels_fire_when_released_or_when_the_hold_ends_and_never_when_cancelled() {
    let server = PixelServer::start(|_, _| Reply::ok()).await;
    let (_dir, store) = store();
    let outbox = Outbox::start(config(), store, client(None)).expect("start");
    let batch = pixels(&server, 3);
    let ids: Vec<u64> = outbox
        .enqueue_held(batch.clone(), Duration::from_secs(3600))
        .await
        .expect("enqueue")
        .into_iter()
        .map(|a| match a {
            Enqueued::Queued(id) => id,
            Enqueued::Duplicate => panic!("a new pixel is queued"),
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.total(), 0, "held: nothing fires");
    outbox.release(vec![ids[0]]).await.expect("release");
    wait_for("the released pixel", 30, || server.total() >= 1).await;
    outbox
        .cancel(vec![(ids[1], batch[1].clone())], "beacon quarantined")
        .await
        .expect("cancel");
    let dead = outbox.store().dead_letters(10).await.expect("dead letters");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].reason, "beacon quarantined");
    // The producer crashes before it knows the third pixel's outcome (here: a short hold, never released).
    let late = Pixel::new("ai-late", PixelEvent::Impression, server.url("/late"));
    outbox
        .enqueue_held(vec![late], Duration::from_secs(2))
        .await
        .expect("enqueue");
    wait_for("the pixel whose hold ended", 30, || {
        server.counts().contains_key("/late")
    })
    .await;
    assert_eq!(outbox.shutdown().await.abandoned, 0);
    assert_eq!(server.counts().get("/p/0"), Some(&1), "released: once");
    assert_eq!(server.counts().get("/p/1"), None, "cancelled: never");
    assert_eq!(server.counts().get("/p/2"), None, "still held: not yet");
}
