//! One conformance suite for the decision engine's `Reservations` seam, run against its pure model (the
//! in-memory [`ReservationBook`] behind a mutex, embedded mode) and against Redis (distributed mode, the
//! real local server `scripts/services.sh` starts): goals count pending plus settling (the live counters hold
//! the rest), caps count seen plus pending holds, expiry and
//! release give room back, confirmation is idempotent, and under concurrent reserves for one viewer or one
//! line item exactly as many win as the cap or goal allows (issue 21, "Correctness under burst").

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, Utc};
use interlude_decision::reservation::{
    CONFIRM_SETTLE, CapClaim, Consumption, Reservation, ReservationBook, Reservations,
};
use interlude_store::redis::RedisReservations;
use interlude_store::testing;

fn t0() -> DateTime<Utc> {
    // Near the real clock: Redis expires its keys in real time.
    Utc::now()
}

fn book() -> Arc<dyn Reservations> {
    Arc::new(Mutex::new(ReservationBook::new()))
}

fn redis() -> Arc<dyn Reservations> {
    RedisReservations::connect(&testing::redis_url(), &testing::redis_prefix()).unwrap_or_else(
        |e| {
            panic!(
                "Redis at {} ({e}): start it with scripts/services.sh or set INTERLUDE_REDIS_URL",
                testing::redis_url()
            )
        },
    )
}

fn ad(id: &str, line_item: &str, expires: DateTime<Utc>) -> Reservation {
    Reservation {
        ad_instance_id: id.into(),
        line_item_id: line_item.into(),
        viewer_id: None,
        expires_at: expires,
        caps: Vec::new(),
    }
}

fn capped(
    id: &str,
    viewer: &str,
    expires: DateTime<Utc>,
    claims: &[(&str, u32, u64)],
) -> Reservation {
    Reservation {
        viewer_id: Some(viewer.into()),
        caps: claims
            .iter()
            .map(|&(key, max, seen)| CapClaim {
                key: key.into(),
                max,
                seen,
            })
            .collect(),
        ..ad(id, "li", expires)
    }
}

fn pending_counts_against_the_goal_until_confirmed_or_expired(r: &dyn Reservations) {
    let (t0, later) = (t0(), t0() + TimeDelta::minutes(5));
    assert!(r.reserve(ad("a", "li", later), 2, t0));
    assert!(r.reserve(ad("b", "li", later), 2, t0));
    assert!(
        !r.reserve(ad("c", "li", later), 2, t0),
        "two pending fill a goal of two"
    );
    assert!(
        r.reserve(ad("a", "li", later), 2, t0),
        "reserving again is idempotent"
    );
    assert!(r.confirm("a", "li", t0));
    assert!(
        !r.confirm("a", "li", t0),
        "a repeated confirmation counts once"
    );
    assert_eq!(r.consumption("li", t0).committed(), 2);
    assert!(!r.reserve(ad("c", "li", later), 2, t0));
    // b's viewer left: its reservation expires and the room comes back.
    assert!(r.reserve(ad("c", "li", later + TimeDelta::minutes(5)), 2, later));
    assert_eq!(
        r.consumption("li", later),
        Consumption {
            delivered: 1,
            pending: 1,
            settling: 0,
            expired: 1
        }
    );
    // A delivery after its reservation expired still counts (the impression happened), once.
    assert!(r.confirm("b", "li", later));
    assert!(!r.confirm("b", "li", later));
    assert_eq!(r.consumption("li", later).delivered, 2);
    assert_eq!(r.consumption("other", later), Consumption::default());
}

/// A confirmed reservation counts against the goal while the live counters may not show its delivery yet
/// ([`CONFIRM_SETTLE`]), then leaves it to them: the caller's goal (less the counters) is all that is guarded.
fn a_confirmed_reservation_settles_then_leaves_the_goal_to_the_counters(r: &dyn Reservations) {
    let (t0, later) = (t0(), t0() + TimeDelta::minutes(5));
    assert!(r.reserve(ad("a", "li", later), 2, t0));
    assert!(r.reserve(ad("b", "li", later), 2, t0));
    assert!(r.confirm("a", "li", t0));
    assert_eq!(r.consumption("li", t0).settling, 1);
    let almost = t0 + CONFIRM_SETTLE - TimeDelta::milliseconds(1);
    assert!(
        !r.reserve(ad("c", "li", later), 2, almost),
        "a still settles: a goal of 2 with the counters at 0 is full"
    );
    let settled = t0 + CONFIRM_SETTLE;
    assert!(
        !r.reserve(ad("c", "li", later), 1, settled),
        "the counters show a (goal 2 - 1); b pends"
    );
    assert!(r.reserve(ad("c", "li", later), 2, settled));
    assert_eq!(
        r.consumption("li", settled + TimeDelta::milliseconds(600)),
        Consumption {
            delivered: 1,
            pending: 2,
            settling: 0,
            expired: 0
        }
    );
}

fn a_confirmed_reservation_holds_the_viewers_caps_only_while_it_settles(r: &dyn Reservations) {
    let (t0, later) = (t0(), t0() + TimeDelta::minutes(5));
    let cap = |max, seen| [("line_item:li", max, seen)];
    assert!(r.reserve(capped("a", "v1", later, &cap(2, 0)), 100, t0));
    assert!(r.confirm("a", "li", t0));
    let almost = t0 + CONFIRM_SETTLE - TimeDelta::milliseconds(1);
    assert!(r.reserve(capped("b", "v1", later, &cap(2, 0)), 100, almost));
    assert!(
        !r.reserve(capped("c", "v1", later, &cap(2, 0)), 100, almost),
        "a settles (the counters may not show it yet) and b pends: a cap of 2 is full"
    );
    let settled = t0 + CONFIRM_SETTLE;
    assert!(
        !r.reserve(capped("c", "v1", later, &cap(2, 1)), 100, settled),
        "the counters show a; b pends"
    );
    assert!(r.confirm("b", "li", settled));
    let both = settled + CONFIRM_SETTLE;
    assert!(
        r.reserve(capped("c", "v1", later, &cap(3, 2)), 100, both),
        "a and b are counted once each, by the counters: a cap of 3 has room"
    );
    assert!(
        !r.reserve(capped("d", "v1", later, &cap(3, 2)), 100, both),
        "c's hold fills it"
    );
}

fn an_ad_left_out_after_its_decision_gives_its_room_back_by_id(r: &dyn Reservations) {
    let (t0, later) = (t0(), t0() + TimeDelta::minutes(5));
    let cap1 = [("line_item:li", 1, 0)];
    assert!(r.reserve(capped("a", "v1", later, &cap1), 1, t0));
    assert!(
        !r.reserve(capped("b", "v2", later, &cap1), 1, t0),
        "a goal of 1 is held by a"
    );
    // The stitcher could not play a: released by its id alone, goal and cap.
    r.release_instance("a", "li", t0);
    assert_eq!(r.consumption("li", t0).pending, 0);
    assert!(
        r.reserve(capped("c", "v1", later, &cap1), 2, t0),
        "v1's cap is free"
    );
    // A confirmed one stays; an unknown id is nothing to do.
    assert!(r.confirm("c", "li", t0));
    r.release_instance("c", "li", t0);
    r.release_instance("nobody", "li", t0);
    assert_eq!(r.consumption("li", t0).settling, 1);
}

fn caps_count_seen_plus_the_viewers_holds_per_key(r: &dyn Reservations) {
    let (t0, later) = (t0(), t0() + TimeDelta::minutes(5));
    let cap2 = [("line_item:li", 2, 0)];
    assert!(r.reserve(capped("a", "v1", later, &cap2), 100, t0));
    assert!(r.reserve(capped("b", "v1", later, &cap2), 100, t0));
    assert!(
        !r.reserve(capped("c", "v1", later, &cap2), 100, t0),
        "two holds reach a cap of 2"
    );
    assert!(
        r.reserve(capped("d", "v2", later, &cap2), 100, t0),
        "another viewer is not held"
    );
    assert!(
        r.reserve(capped("e", "v1", later, &[("campaign:c", 1, 0)]), 100, t0),
        "another cap key is counted apart"
    );
    assert!(
        !r.reserve(
            capped(
                "f",
                "v3",
                later,
                &[("line_item:li", 5, 0), ("campaign:c", 1, 1)]
            ),
            100,
            t0
        ),
        "the tightest of its caps refuses it"
    );
    assert!(
        !r.reserve(capped("g", "v4", later, &[("line_item:li", 3, 3)]), 100, t0),
        "seen reaches the cap"
    );
    // Confirmed: the hold stays until it expires (the counters may not show the delivery yet).
    assert!(r.confirm("a", "li", t0));
    assert!(!r.reserve(capped("c", "v1", later, &cap2), 100, t0));
    // Released: the room comes back at once; a confirmed one is not released.
    r.release(&capped("b", "v1", later, &cap2), t0);
    r.release(&capped("a", "v1", later, &cap2), t0);
    assert!(r.reserve(capped("c", "v1", later, &cap2), 100, t0));
    assert!(!r.reserve(capped("h", "v1", later, &cap2), 100, t0));
    assert_eq!(
        r.consumption("li", t0),
        Consumption {
            delivered: 1,
            pending: 3,
            settling: 1,
            expired: 0
        },
        "c, d, e pending; b released; a delivered and settling"
    );
    // Expired: only what the decision saw counts.
    let after = later + TimeDelta::seconds(1);
    assert!(r.reserve(
        capped(
            "i",
            "v1",
            after + TimeDelta::minutes(5),
            &[("line_item:li", 2, 1)]
        ),
        100,
        after
    ));
}

fn on(line_item: &str, r: Reservation) -> Reservation {
    Reservation {
        line_item_id: line_item.into(),
        ..r
    }
}

fn a_pod_is_reserved_all_or_none(r: &dyn Reservations) {
    let (t0, later) = (t0(), t0() + TimeDelta::minutes(5));
    let a = capped("a", "v1", later, &[("line_item:li", 1, 0)]);
    let b = on("li2", capped("b", "v1", later, &[("campaign:c", 1, 1)]));
    assert_eq!(r.reserve_pod(&[(a.clone(), 10), (b, 10)], t0), Some(1));
    assert_eq!(
        r.consumption("li", t0).pending,
        0,
        "a was not left reserved"
    );
    // Two ads of one pod count against each other: a campaign cap of 1 takes one of them.
    let x = capped("x", "v2", later, &[("campaign:c", 1, 0)]);
    let y = on("li2", capped("y", "v2", later, &[("campaign:c", 1, 0)]));
    assert_eq!(r.reserve_pod(&[(x.clone(), 10), (y, 10)], t0), Some(1));
    assert_eq!(r.reserve_pod(&[(x.clone(), 10)], t0), None);
    // And a goal: the second ad of the line item is one past a goal of 1.
    let p1 = on("li3", ad("p1", "li3", later));
    let p2 = on("li3", ad("p2", "li3", later));
    assert_eq!(r.reserve_pod(&[(p1.clone(), 1), (p2, 1)], t0), Some(1));
    assert_eq!(r.consumption("li3", t0).pending, 0);
    assert_eq!(r.reserve_pod(&[(p1, 1)], t0), None);
    // An ad already reserved (the same decision again) stays reserved, once.
    assert_eq!(r.reserve_pod(&[(x, 10), (a, 10)], t0), None);
    assert_eq!(r.consumption("li", t0).pending, 2);
    assert_eq!(r.reserve_pod(&[], t0), None);
}

fn a_forgotten_viewer_holds_no_cap(r: &dyn Reservations) {
    let (t0, later) = (t0(), t0() + TimeDelta::minutes(5));
    let cap1 = [("line_item:li", 1, 0), ("campaign:c", 2, 0)];
    assert!(r.reserve(capped("a", "v*1", later, &cap1), 10, t0));
    assert!(r.reserve(capped("b", "v-2", later, &cap1), 10, t0));
    // A viewer whose id extends the forgotten one's: its holds are its own.
    assert!(r.reserve(capped("e", "v*1:x", later, &cap1), 10, t0));
    assert!(!r.reserve(capped("c", "v*1", later, &cap1), 10, t0));
    assert_eq!(r.forget_viewers(&["v*1".to_owned()]), 2, "its two cap keys");
    assert!(
        r.reserve(capped("c", "v*1", later, &cap1), 10, t0),
        "no hold left"
    );
    assert!(
        !r.reserve(capped("d", "v-2", later, &cap1), 10, t0),
        "another viewer's kept"
    );
    assert!(
        !r.reserve(capped("f", "v*1:x", later, &cap1), 10, t0),
        "a viewer whose id extends the forgotten one's kept"
    );
    assert_eq!(
        r.consumption("li", t0).pending,
        4,
        "the goal still counts them"
    );
}

/// `n` threads reserve at once; how many won.
fn burst(
    r: &Arc<dyn Reservations>,
    n: usize,
    make: impl Fn(usize) -> Reservation + Sync,
    goal: u64,
) -> usize {
    let now = t0();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|k| {
                let (r, make) = (r.clone(), &make);
                s.spawn(move || r.reserve(make(k), goal, now))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|won| *won)
            .count()
    })
}

fn concurrent_sessions_of_one_viewer_get_a_cap_of_one_once(r: &Arc<dyn Reservations>) {
    let expires = t0() + TimeDelta::minutes(5);
    let won = burst(
        r,
        64,
        |k| {
            capped(
                &format!("s{k}-b1-0"),
                "v1",
                expires,
                &[("line_item:li", 1, 0)],
            )
        },
        1_000_000,
    );
    assert_eq!(won, 1);
}

fn a_goal_of_n_under_200_concurrent_reserves_takes_exactly_n(r: &Arc<dyn Reservations>) {
    let expires = t0() + TimeDelta::minutes(5);
    let won = burst(r, 200, |k| ad(&format!("s{k}-b1-0"), "herd", expires), 37);
    assert_eq!(won, 37);
    assert_eq!(r.consumption("herd", t0()).pending, 37);
}

/// Pods of two ads (line items A and B, each capped at 1 for the viewer) decided at once: one pod wins both,
/// no pod gets one of them only.
fn concurrent_pods_of_one_viewer_are_all_or_none(r: &Arc<dyn Reservations>) {
    let expires = t0() + TimeDelta::minutes(5);
    let won = std::thread::scope(|s| {
        let handles: Vec<_> = (0..32)
            .map(|k| {
                let r = r.clone();
                s.spawn(move || {
                    let a = on(
                        "A",
                        capped(
                            &format!("s{k}-b1-0"),
                            "v9",
                            expires,
                            &[("line_item:A", 1, 0)],
                        ),
                    );
                    let b = on(
                        "B",
                        capped(
                            &format!("s{k}-b1-1"),
                            "v9",
                            expires,
                            &[("line_item:B", 1, 0)],
                        ),
                    );
                    r.reserve_pod(&[(a, 1000), (b, 1000)], t0()).is_none()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|w| *w)
            .count()
    });
    assert_eq!(won, 1);
    assert_eq!(r.consumption("A", t0()).pending, 1);
    assert_eq!(r.consumption("B", t0()).pending, 1);
}

#[test]
fn book_a_forgotten_viewer_holds_no_cap() {
    a_forgotten_viewer_holds_no_cap(book().as_ref());
}

#[test]
fn redis_a_forgotten_viewer_holds_no_cap() {
    a_forgotten_viewer_holds_no_cap(redis().as_ref());
}

#[test]
fn book_a_pod_is_reserved_all_or_none() {
    a_pod_is_reserved_all_or_none(book().as_ref());
}

#[test]
fn redis_a_pod_is_reserved_all_or_none() {
    a_pod_is_reserved_all_or_none(redis().as_ref());
}

#[test]
fn book_concurrent_pods_of_one_viewer_are_all_or_none() {
    concurrent_pods_of_one_viewer_are_all_or_none(&book());
}

#[test]
fn redis_concurrent_pods_of_one_viewer_are_all_or_none() {
    concurrent_pods_of_one_viewer_are_all_or_none(&redis());
}

#[test]
fn book_pending_counts_against_the_goal_until_confirmed_or_expired() {
    pending_counts_against_the_goal_until_confirmed_or_expired(book().as_ref());
}

#[test]
fn redis_pending_counts_against_the_goal_until_confirmed_or_expired() {
    pending_counts_against_the_goal_until_confirmed_or_expired(redis().as_ref());
}

#[test]
fn book_a_confirmed_reservation_settles_then_leaves_the_goal_to_the_counters() {
    a_confirmed_reservation_settles_then_leaves_the_goal_to_the_counters(&*book());
}

#[test]
fn redis_a_confirmed_reservation_settles_then_leaves_the_goal_to_the_counters() {
    a_confirmed_reservation_settles_then_leaves_the_goal_to_the_counters(&*redis());
}

#[test]
fn book_a_confirmed_reservation_holds_the_viewers_caps_only_while_it_settles() {
    a_confirmed_reservation_holds_the_viewers_caps_only_while_it_settles(&*book());
}

#[test]
fn redis_a_confirmed_reservation_holds_the_viewers_caps_only_while_it_settles() {
    a_confirmed_reservation_holds_the_viewers_caps_only_while_it_settles(&*redis());
}

#[test]
fn book_an_ad_left_out_after_its_decision_gives_its_room_back_by_id() {
    an_ad_left_out_after_its_decision_gives_its_room_back_by_id(&*book());
}

#[test]
fn redis_an_ad_left_out_after_its_decision_gives_its_room_back_by_id() {
    an_ad_left_out_after_its_decision_gives_its_room_back_by_id(&*redis());
}

#[test]
fn book_caps_count_seen_plus_the_viewers_holds_per_key() {
    caps_count_seen_plus_the_viewers_holds_per_key(book().as_ref());
}

#[test]
fn redis_caps_count_seen_plus_the_viewers_holds_per_key() {
    caps_count_seen_plus_the_viewers_holds_per_key(redis().as_ref());
}

#[test]
fn book_concurrent_sessions_of_one_viewer_get_a_cap_of_one_once() {
    concurrent_sessions_of_one_viewer_get_a_cap_of_one_once(&book());
}

#[test]
fn redis_concurrent_sessions_of_one_viewer_get_a_cap_of_one_once() {
    concurrent_sessions_of_one_viewer_get_a_cap_of_one_once(&redis());
}

#[test]
fn book_a_goal_of_n_under_200_concurrent_reserves_takes_exactly_n() {
    a_goal_of_n_under_200_concurrent_reserves_takes_exactly_n(&book());
}

#[test]
fn redis_a_goal_of_n_under_200_concurrent_reserves_takes_exactly_n() {
    a_goal_of_n_under_200_concurrent_reserves_takes_exactly_n(&redis());
}

/// Inside a multi-threaded runtime the blocking calls step aside for the runtime's other tasks; many tasks
/// reserving at once for one viewer still give exactly one winner.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_reserves_from_many_tokio_tasks_for_one_viewer_give_one_winner() {
    let r = redis();
    let expires = t0() + TimeDelta::minutes(5);
    let tasks: Vec<_> = (0..50)
        .map(|k| {
            let r = r.clone();
            tokio::spawn(async move {
                r.reserve(
                    capped(
                        &format!("s{k}-b1-0"),
                        "v1",
                        expires,
                        &[("campaign:c", 1, 0)],
                    ),
                    1_000_000,
                    t0(),
                )
            })
        })
        .collect();
    let mut won = 0;
    for t in tasks {
        won += usize::from(t.await.unwrap());
    }
    assert_eq!(won, 1);
}

/// No unbounded key growth: every key a reservation writes expires.
#[tokio::test]
async fn redis_every_reservation_key_expires() {
    let prefix = testing::redis_prefix();
    let r = RedisReservations::connect(&testing::redis_url(), &prefix).unwrap();
    let (t0, later) = (t0(), t0() + TimeDelta::minutes(5));
    assert!(r.reserve(capped("a", "v1", later, &[("line_item:li", 2, 0)]), 10, t0));
    assert!(r.reserve(capped("b", "v1", later, &[("line_item:li", 2, 0)]), 10, t0));
    assert!(r.confirm("a", "li", t0));
    assert!(r.confirm("late", "li", t0));
    let client = redis::Client::open(testing::redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        keys.len(),
        7,
        "instances a, b, late; pending, settling, line, hold: {keys:?}"
    );
    for key in keys {
        let ttl: i64 = redis::cmd("PTTL")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(ttl > 0, "{key} never expires ({ttl})");
    }
}
