//! The contract of [`OutboxStore`], as checks every implementation must pass (feature `testing`). Each check
//! takes a fresh, empty store; the tests of each backend call every one of them (see
//! `tests/store_conformance.rs`).

#![allow(clippy::missing_panics_doc, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::{Enqueued, OutboxStore, Outcome};
use crate::pixel::{Device, Pixel, PixelEvent};

/// A fixed instant: the suite controls the clock.
pub fn t0() -> SystemTime {
    super::from_millis(1_700_000_000_000)
}

fn at(ms: u64) -> SystemTime {
    t0() + Duration::from_millis(ms)
}

/// A pixel of ad instance `ai` to `https://t.example/{path}`.
pub fn pixel(ai: &str, path: &str) -> Pixel {
    Pixel::new(
        ai,
        PixelEvent::Impression,
        format!("https://t.example/{path}"),
    )
}

const LEASE: Duration = Duration::from_secs(30);

/// Every pixel enqueued is handed out once, with its content, and nothing else is.
pub async fn enqueued_pixels_are_leased_once<S: OutboxStore>(store: &S) {
    let pixels: Vec<Pixel> = (0..5).map(|i| pixel("ai", &format!("p{i}"))).collect();
    let answers = store.enqueue(pixels.clone(), t0()).await.expect("enqueue");
    assert!(
        answers.iter().all(|a| matches!(a, Enqueued::Queued(_))),
        "{answers:?}"
    );
    assert_eq!(store.depth().await.expect("depth"), 5);
    let leased = store.lease(at(1), 100, LEASE).await.expect("lease");
    let got: BTreeSet<String> = leased
        .iter()
        .map(|l| l.pixel.url_template.clone())
        .collect();
    let want: BTreeSet<String> = pixels.iter().map(|p| p.url_template.clone()).collect();
    assert_eq!(got, want);
    assert!(leased.iter().all(|l| l.attempts == 0));
    assert!(
        store
            .lease(at(2), 100, LEASE)
            .await
            .expect("lease")
            .is_empty()
    );
}

/// The same (ad instance, event, template) enqueued again, in the same batch or later, even after delivery,
/// queues nothing; a different event or instance does.
pub async fn duplicates_are_not_queued<S: OutboxStore>(store: &S) {
    let p = pixel("ai-1", "imp");
    let mut q = p.clone();
    q.context.ad_count = Some(9); // Context is not part of the key.
    let answers = store
        .enqueue(vec![p.clone(), q], t0())
        .await
        .expect("enqueue");
    assert!(matches!(answers[0], Enqueued::Queued(_)));
    assert_eq!(answers[1], Enqueued::Duplicate);
    let leased = store.lease(at(1), 10, LEASE).await.expect("lease");
    assert_eq!(leased.len(), 1);
    store
        .complete(vec![Outcome::Delivered { id: leased[0].id }], at(2))
        .await
        .expect("complete");
    assert_eq!(store.depth().await.expect("depth"), 0);
    let again = store
        .enqueue(vec![p.clone()], at(3))
        .await
        .expect("enqueue");
    assert_eq!(again, vec![Enqueued::Duplicate]);
    let mut other_event = p.clone();
    other_event.event = PixelEvent::Start;
    let other_ai = pixel("ai-2", "imp");
    let answers = store
        .enqueue(vec![other_event, other_ai], at(4))
        .await
        .expect("enqueue");
    assert!(
        answers.iter().all(|a| matches!(a, Enqueued::Queued(_))),
        "{answers:?}"
    );
}

/// A leased pixel is hidden for the lease, then handed out again (its sender may have died).
pub async fn an_expired_lease_hands_the_pixel_out_again<S: OutboxStore>(store: &S) {
    store
        .enqueue(vec![pixel("ai", "x")], t0())
        .await
        .expect("enqueue");
    let first = store.lease(at(0), 10, LEASE).await.expect("lease");
    assert_eq!(first.len(), 1);
    let hidden = store.lease(at(29_000), 10, LEASE).await.expect("lease");
    assert!(hidden.is_empty());
    let again = store.lease(at(30_001), 10, LEASE).await.expect("lease");
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, first[0].id);
}

/// Pixels come out earliest due first, at most `limit` per lease, and not before they are due.
pub async fn pixels_come_out_in_due_order<S: OutboxStore>(store: &S) {
    store
        .enqueue(vec![pixel("a", "1")], at(0))
        .await
        .expect("enqueue");
    store
        .enqueue(vec![pixel("b", "2")], at(10))
        .await
        .expect("enqueue");
    store
        .enqueue(vec![pixel("c", "3")], at(20))
        .await
        .expect("enqueue");
    let first = store.lease(at(15), 10, LEASE).await.expect("lease");
    let names: Vec<&str> = first
        .iter()
        .map(|l| l.pixel.ad_instance_id.as_str())
        .collect();
    assert_eq!(names, ["a", "b"]);
    let rest = store.lease(at(25), 1, LEASE).await.expect("lease");
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].pixel.ad_instance_id, "c");
    assert_eq!(
        store.next_due().await.expect("next due"),
        Some(at(15) + LEASE)
    );
}

/// A retry keeps the attempts and comes back when due; a deferral keeps the attempts unchanged.
pub async fn retries_and_deferrals_reschedule<S: OutboxStore>(store: &S) {
    store
        .enqueue(vec![pixel("ai", "r")], t0())
        .await
        .expect("enqueue");
    let l = store
        .lease(at(0), 10, LEASE)
        .await
        .expect("lease")
        .remove(0);
    store
        .complete(
            vec![Outcome::Retry {
                id: l.id,
                attempts: 1,
                due: at(500),
                error: "HTTP 503".into(),
            }],
            at(1),
        )
        .await
        .expect("complete");
    assert!(
        store
            .lease(at(499), 10, LEASE)
            .await
            .expect("lease")
            .is_empty()
    );
    let l = store
        .lease(at(500), 10, LEASE)
        .await
        .expect("lease")
        .remove(0);
    assert_eq!(l.attempts, 1);
    store
        .complete(
            vec![Outcome::Defer {
                id: l.id,
                due: at(800),
            }],
            at(501),
        )
        .await
        .expect("complete");
    assert_eq!(store.next_due().await.expect("next due"), Some(at(800)));
    let l = store
        .lease(at(800), 10, LEASE)
        .await
        .expect("lease")
        .remove(0);
    assert_eq!(l.attempts, 1);
    assert_eq!(store.depth().await.expect("depth"), 1);
}

/// A dead pixel leaves the queue for the dead letters, with its reason and without viewer data; its key stays
/// known.
pub async fn dead_letters_keep_the_reason_without_viewer_data<S: OutboxStore>(store: &S) {
    let mut p = pixel("ai", "dead");
    p.context.device = Device {
        share: true,
        user_agent: Some("UA/1".into()),
        ip: Some("203.0.113.7".parse().expect("ip")),
        player: None,
    };
    store.enqueue(vec![p.clone()], t0()).await.expect("enqueue");
    let l = store
        .lease(at(0), 10, LEASE)
        .await
        .expect("lease")
        .remove(0);
    assert_eq!(
        l.pixel.context.device.ip, p.context.device.ip,
        "kept for sending"
    );
    store
        .complete(
            vec![Outcome::Dead {
                id: l.id,
                pixel: Box::new(l.pixel.clone()),
                attempts: 3,
                reason: "3 attempts, last: HTTP 503".into(),
            }],
            at(5),
        )
        .await
        .expect("complete");
    assert_eq!(store.depth().await.expect("depth"), 0);
    assert_eq!(store.next_due().await.expect("next due"), None);
    let dead = store.dead_letters(10).await.expect("dead letters");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].reason, "3 attempts, last: HTTP 503");
    assert_eq!(dead[0].attempts, 3);
    assert_eq!(dead[0].at_ms, super::millis(at(5)));
    assert_eq!(dead[0].pixel.context.device.ip, None);
    assert_eq!(dead[0].pixel.context.device.user_agent, None);
    assert_eq!(dead[0].pixel.url_template, p.url_template);
    assert_eq!(
        store.enqueue(vec![p], at(6)).await.expect("enqueue"),
        vec![Enqueued::Duplicate]
    );
}

/// Without consent, the queue never holds the viewer's user agent or address.
pub async fn the_queue_holds_no_device_data_without_consent<S: OutboxStore>(store: &S) {
    let mut p = pixel("ai", "noconsent");
    p.context.device = Device {
        share: false,
        user_agent: Some("UA/1".into()),
        ip: Some("203.0.113.7".parse().expect("ip")),
        player: Some("P/1".into()),
    };
    store.enqueue(vec![p], t0()).await.expect("enqueue");
    let l = store
        .lease(at(0), 10, LEASE)
        .await
        .expect("lease")
        .remove(0);
    assert_eq!(l.pixel.context.device, Device::default());
}

/// Pruning forgets old keys (the pixel can be queued again) and old dead letters, and nothing newer.
pub async fn pruning_forgets_old_keys_and_dead_letters<S: OutboxStore>(store: &S) {
    let old = pixel("ai", "old");
    let new = pixel("ai", "new");
    store
        .enqueue(vec![old.clone()], at(0))
        .await
        .expect("enqueue");
    store
        .enqueue(vec![new.clone()], at(1_000))
        .await
        .expect("enqueue");
    let leased = store.lease(at(1_000), 10, LEASE).await.expect("lease");
    let outcomes = leased
        .iter()
        .map(|l| Outcome::Dead {
            id: l.id,
            pixel: Box::new(l.pixel.clone()),
            attempts: 1,
            reason: "HTTP 404".into(),
        })
        .collect::<Vec<_>>();
    let (first, second) = outcomes.split_at(1);
    store
        .complete(first.to_vec(), at(2_000))
        .await
        .expect("complete");
    store
        .complete(second.to_vec(), at(3_000))
        .await
        .expect("complete");
    let pruned = store.prune(at(500), at(2_500)).await.expect("prune");
    assert_eq!(pruned.keys, 1);
    assert_eq!(pruned.dead, 1);
    assert_eq!(store.dead_letters(10).await.expect("dead").len(), 1);
    let answers = store
        .enqueue(vec![old, new], at(4_000))
        .await
        .expect("enqueue");
    assert!(matches!(answers[0], Enqueued::Queued(_)), "{answers:?}");
    assert_eq!(answers[1], Enqueued::Duplicate);
}

/// Completions for ids no longer queued are ignored.
pub async fn completions_of_unknown_ids_are_ignored<S: OutboxStore>(store: &S) {
    store
        .complete(
            vec![
                Outcome::Delivered { id: 999_999 },
                Outcome::Defer {
                    id: 999_998,
                    due: at(1),
                },
            ],
            t0(),
        )
        .await
        .expect("complete");
    assert_eq!(store.depth().await.expect("depth"), 0);
    assert!(store.dead_letters(10).await.expect("dead").is_empty());
}

/// Leasers racing over the same queue (`stores`: handles on one queue, e.g. one connection each) never get the
/// same pixel.
pub async fn concurrent_leases_never_share_a_pixel<S: OutboxStore>(stores: Vec<Arc<S>>) {
    let pixels: Vec<Pixel> = (0..200).map(|i| pixel("ai", &format!("c{i}"))).collect();
    stores[0].enqueue(pixels, t0()).await.expect("enqueue");
    let mut tasks = Vec::new();
    for store in stores {
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let batch = store.lease(at(1), 7, LEASE).await.expect("lease");
                if batch.is_empty() {
                    return got;
                }
                got.extend(batch.into_iter().map(|l| l.id));
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("leaser"));
    }
    let distinct: BTreeSet<u64> = all.iter().copied().collect();
    assert_eq!(all.len(), 200);
    assert_eq!(distinct.len(), 200);
}

/// Many callers enqueueing at once, some the same pixel: each pixel is queued exactly once, and every caller
/// gets an answer per pixel.
pub async fn concurrent_enqueues_queue_each_pixel_once<S: OutboxStore>(store: Arc<S>) {
    let mut tasks = Vec::new();
    for caller in 0..16u32 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            // Callers 0..8 and 8..16 send the same pixels: two of each.
            let pixels: Vec<Pixel> = (0..10)
                .map(|i| pixel(&format!("ai-{}", caller % 8), &format!("e{i}")))
                .collect();
            store.enqueue(pixels, t0()).await.expect("enqueue")
        }));
    }
    let mut queued = 0;
    for t in tasks {
        let answers = t.await.expect("caller");
        assert_eq!(answers.len(), 10);
        queued += answers
            .iter()
            .filter(|a| matches!(a, Enqueued::Queued(_)))
            .count();
    }
    assert_eq!(queued, 80);
    assert_eq!(store.depth().await.expect("depth"), 80);
}
