//! Reservations: an impression decided but not yet delivered counts against its line item's goal and the
//! viewer's frequency caps until it is delivered or its reservation expires.
//!
//! Without them, every viewer of a break is decided against the same delivered count, so a line item one
//! impression short of its goal is handed to the whole herd and overruns by the herd's size; and the five
//! sessions of one viewer deciding one break all see a cap of 1 unreached. With them, a decision reserves
//! each ad it chooses, atomically: the goal guard counts delivered plus pending, each of the viewer's caps
//! counts what the decision saw of the viewer's past plus the viewer's pending holds on that cap, and a
//! reservation that never turns into an impression (the viewer left before the break) expires and gives its
//! room back.
//!
//! [`Reservations`] is the seam; [`ReservationBook`] is its pure model, time passed in, used behind a mutex
//! as the one-process implementation (embedded mode) and by the pacing simulation. The Redis implementation
//! (`interlude_store::redis::RedisReservations`) does one atomic reserve-if-under-goal-and-caps per ad, so
//! nodes deciding the same break cannot overrun a goal or a cap together. One conformance suite
//! (`crates/store/tests/reservations.rs`) runs both.
//!
//! The goal guard is the live counters' delivered count (the engine subtracts it from the goal it passes)
//! plus what this store holds: reservations pending, and confirmed ones still *settling*. The event pipeline
//! confirms a reservation when it counts the impression; the counters the engine reads show that delivery a
//! little later (a commit batch, the distributed counters' one-second refresh), so a confirmed reservation
//! keeps counting against the goal for [`CONFIRM_SETTLE`] and then stops, leaving the impression to the
//! counters. Without confirmations a reservation would count next to its own delivery until it expired
//! ([`crate::engine::EngineConfig::reservation_ttl_secs`], minutes): the line item would stop short of its
//! goal for that long near the end of a flight.
//!
//! The viewer's caps are held the same way: a confirmed reservation holds them while it settles, then the
//! counters a decision reads (the store's, or Redis's prefetched per viewer) count the impression instead.
//! Held until expiry, a delivered impression would count twice for the reservation's whole TTL: a cap of two
//! an hour would let a viewer see the ad once every five minutes at most (the demo's evenly paced campaign
//! fell behind for that reason).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

/// One pending impression.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// The ad instance (unique per viewer, break and slot): the key its delivery is confirmed by.
    pub ad_instance_id: String,
    /// The line item it counts against.
    pub line_item_id: String,
    /// The viewer it counts against, for caps.
    pub viewer_id: Option<String>,
    /// When it stops counting if not delivered.
    pub expires_at: DateTime<Utc>,
    /// The viewer's caps it must stay under (none without a viewer).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub caps: Vec<CapClaim>,
}

/// One frequency cap a reservation counts against: the viewer may hold at most `max - seen` pending
/// impressions on `key` at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapClaim {
    /// What the cap counts, for this viewer: `line_item:{id}`, `campaign:{id}`, `advertiser:{id}`,
    /// `creative:{id}`, or a session cap's `session:{session}:…`. Reservations of one viewer with the same
    /// key share one count.
    pub key: String,
    /// The cap.
    pub max: u32,
    /// Impressions the decision already counted against it (the viewer's delivered past in the window).
    pub seen: u64,
}

/// A line item's consumption of its goal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consumption {
    /// Impressions delivered (confirmed in this store).
    pub delivered: u64,
    /// Impressions reserved, neither delivered nor expired.
    pub pending: u64,
    /// Impressions confirmed less than [`CONFIRM_SETTLE`] ago: the live counters may not show them yet.
    #[serde(default)]
    pub settling: u64,
    /// Reservations that expired undelivered (their share of all settled ones is what over-reserving must
    /// make up for).
    pub expired: u64,
}

impl Consumption {
    /// What counts against the goal on top of the live counters' delivered count: pending and settling.
    pub fn committed(&self) -> u64 {
        self.pending + self.settling
    }
}

/// How long a confirmed reservation keeps counting against its goal by default: longer than distributed
/// counters take to show a counted delivery (their cache is refreshed every second), with a wide margin, and
/// far shorter than a reservation's life. A book over counters that cannot lag settles for less
/// ([`ReservationBook::with_settle`]): counting a delivery twice meanwhile holds a line item back, which at
/// the end of a flight is under-delivery.
pub const CONFIRM_SETTLE: TimeDelta = TimeDelta::seconds(3);

/// How long a confirmed ad instance is remembered, so a repeated confirmation counts once.
pub const CONFIRMED_MEMORY: TimeDelta = TimeDelta::days(2);

/// Where reservations are kept.
pub trait Reservations: Send + Sync {
    /// Reserves `reservation` if its line item's pending and settling impressions stay within `goal` (the
    /// caller's goal less what the live counters show delivered) and
    /// each of its caps' `seen` plus the viewer's pending holds on that cap stay within the cap; false when
    /// they would not (the ad must not be served). Reserving an ad instance already reserved or confirmed is
    /// true and changes nothing.
    fn reserve(&self, reservation: Reservation, goal: u64, now: DateTime<Utc>) -> bool;
    /// Records the delivery of `ad_instance_id` of `line_item_id`: its reservation stops pending and settles
    /// for [`CONFIRM_SETTLE`] (still counting against the goal), and the impression counts as delivered.
    /// Idempotent: true the first time, false for a repeat (remembered for
    /// [`CONFIRMED_MEMORY`]). A delivery after its reservation expired still counts (the impression
    /// happened), which is the one way a goal can be passed.
    fn confirm(&self, ad_instance_id: &str, line_item_id: &str, now: DateTime<Utc>) -> bool;
    /// Gives back the room of `reservation`, reserved by this decision and then left out of its pod (another
    /// ad of the pod was refused and the pod chosen again). A confirmed one stays.
    fn release(&self, reservation: &Reservation, now: DateTime<Utc>);
    /// Gives back the room of the reservation of `ad_instance_id` (line item `line_item_id`), found by its id:
    /// an ad decided into a pod that is not served after all (its creative would not stitch). A confirmed
    /// one stays; an unknown one is nothing to do.
    fn release_instance(&self, ad_instance_id: &str, line_item_id: &str, now: DateTime<Utc>);
    /// The viewer of the ad instance `ad_instance_id` left before it played (the session expired): its room
    /// comes back now, counted as an expiry — what its TTL would have done minutes later, while the viewer's
    /// pods and their reservations held memory and the line item's goal. A confirmed one stays; an unknown one
    /// is nothing to do. By default nothing: the reservation expires at its TTL (where reservations are kept
    /// outside the process, its memory is not the node's).
    fn abandon_instance(&self, ad_instance_id: &str, now: DateTime<Utc>) {
        let _ = (ad_instance_id, now);
    }
    /// Reserves every ad of a pod, each against its goal (as [`Reservations::reserve`]), all or none: the
    /// index of the first one refused, with nothing of the pod left reserved, or `None` when all were.
    /// Ads of one pod count against each other (two line items of one campaign under a campaign cap of 1).
    /// By default one [`Reservations::reserve`] per ad, released again on a refusal; a remote store does it
    /// in one round trip.
    fn reserve_pod(&self, pod: &[(Reservation, u64)], now: DateTime<Utc>) -> Option<usize> {
        for (i, (r, goal)) in pod.iter().enumerate() {
            if !self.reserve(r.clone(), *goal, now) {
                for (taken, _) in pod.iter().take(i) {
                    self.release(taken, now);
                }
                return Some(i);
            }
        }
        None
    }
    /// Delivered and pending impressions of `line_item_id` at `now` (expired reservations released).
    fn consumption(&self, line_item_id: &str, now: DateTime<Utc>) -> Consumption;
    /// Forgets the viewers `ids` (the right to erasure): their cap holds are dropped and their reservations
    /// keep counting against goals only. How many holds were dropped.
    fn forget_viewers(&self, ids: &[String]) -> u64;
}

/// A reservation in the book.
#[derive(Debug, Clone)]
struct Entry {
    reservation: Reservation,
    /// Confirmed: no longer pending, settling against the goal and the viewer's caps until `settled_at`.
    confirmed: bool,
    /// When a confirmed reservation stops counting against the goal and the caps.
    settled_at: DateTime<Utc>,
    /// Still holding the viewer's caps (until settled, expired or released).
    holding: bool,
}

/// The pure reservation model.
#[derive(Debug, Clone)]
pub struct ReservationBook {
    /// How long a confirmed reservation settles (see [`CONFIRM_SETTLE`]).
    settle: TimeDelta,
    /// How long a confirmation is remembered ([`CONFIRMED_MEMORY`], or [`ReservationBook::remembering`]).
    memory: TimeDelta,
    entries: HashMap<String, Entry>,
    /// Reservations by expiry, to release them in order.
    by_expiry: BTreeSet<(DateTime<Utc>, String)>,
    /// Confirmed reservations by the end of their settling.
    by_settle: BTreeSet<(DateTime<Utc>, String)>,
    lines: HashMap<String, Consumption>,
    /// Pending holds per viewer and cap key (nested, so a lookup borrows its keys instead of building them).
    holds: HashMap<String, HashMap<String, u64>>,
    /// Confirmed ad instances, until they are forgotten.
    confirmed: HashMap<String, DateTime<Utc>>,
    by_forget: BTreeMap<(DateTime<Utc>, String), ()>,
    expired: u64,
}

/// The viewer of `r` and its distinct cap keys, each held once per reservation (none without a viewer).
fn hold_keys(r: &Reservation) -> Option<(&str, Vec<&str>)> {
    let viewer = r.viewer_id.as_deref()?;
    let mut keys: Vec<&str> = r.caps.iter().map(|c| c.key.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    Some((viewer, keys))
}

impl Default for ReservationBook {
    fn default() -> Self {
        ReservationBook::with_settle(CONFIRM_SETTLE)
    }
}

impl ReservationBook {
    /// An empty book whose confirmations settle for [`CONFIRM_SETTLE`].
    pub fn new() -> Self {
        ReservationBook::default()
    }

    /// An empty book whose confirmations settle for `settle`: how long the live counters the engine reads
    /// may lag a confirmation. Zero where they cannot: the embedded store's counters are read from the very
    /// commit that confirms.
    pub fn with_settle(settle: TimeDelta) -> Self {
        ReservationBook {
            settle: settle.max(TimeDelta::zero()),
            memory: CONFIRMED_MEMORY,
            entries: HashMap::new(),
            by_expiry: BTreeSet::new(),
            by_settle: BTreeSet::new(),
            lines: HashMap::new(),
            holds: HashMap::new(),
            confirmed: HashMap::new(),
            by_forget: BTreeMap::new(),
            expired: 0,
        }
    }

    /// This book, remembering each confirmation for `memory` instead of [`CONFIRMED_MEMORY`]; zero: a
    /// confirmation is remembered only by the reservation it confirms, until that settles, and a confirmation of
    /// an instance the book does not hold is not remembered at all.
    ///
    /// For a book fed by the embedded event pipeline, whose billing dedup confirms each counted impression
    /// once: two days of memory would keep every impression's id in the process (a burst of a million
    /// beacons held about 200 MB for two days) to guard against a repeat that cannot come.
    pub fn remembering(mut self, memory: TimeDelta) -> Self {
        self.memory = memory.max(TimeDelta::zero());
        self
    }

    /// Drops the viewer's holds of `r`.
    fn unhold(&mut self, r: &Reservation) {
        unhold(&mut self.holds, r);
    }
}

/// Drops the viewer's holds of `r` from `holds`.
fn unhold(holds: &mut HashMap<String, HashMap<String, u64>>, r: &Reservation) {
    let Some((viewer, keys)) = hold_keys(r) else {
        return;
    };
    let Some(held) = holds.get_mut(viewer) else {
        return;
    };
    for key in keys {
        if let Some(h) = held.get_mut(key) {
            *h = h.saturating_sub(1);
            if *h == 0 {
                held.remove(key);
            }
        }
    }
    if held.is_empty() {
        holds.remove(viewer);
    }
}

impl ReservationBook {
    /// Releases every reservation expired at `now` (and forgets confirmations past their memory); returns how
    /// many expired undelivered.
    pub fn expire(&mut self, now: DateTime<Utc>) -> u64 {
        while let Some((at, id)) = self.by_settle.first().cloned() {
            if at > now {
                break;
            }
            self.by_settle.remove(&(at, id.clone()));
            if let Some(entry) = self.entries.get_mut(&id) {
                if let Some(c) = self.lines.get_mut(&entry.reservation.line_item_id) {
                    c.settling = c.settling.saturating_sub(1);
                }
                // Settled: the counters a decision reads show the impression now, so the viewer's caps count
                // it there and no longer here (held on, a cap of 2 an hour would allow 1 per reservation TTL).
                if entry.holding {
                    entry.holding = false;
                    unhold(&mut self.holds, &entry.reservation);
                }
            }
            if self.memory.is_zero() {
                // Nothing left for it to do: a confirmation is not remembered past its settling.
                if let Some(entry) = self.entries.remove(&id) {
                    self.by_expiry.remove(&(entry.reservation.expires_at, id));
                }
            }
        }
        let mut n = 0;
        while let Some((at, id)) = self.by_expiry.first().cloned() {
            if at > now {
                break;
            }
            self.by_expiry.remove(&(at, id.clone()));
            let Some(entry) = self.entries.remove(&id) else {
                continue;
            };
            if entry.holding {
                self.unhold(&entry.reservation);
            }
            let Some(c) = self.lines.get_mut(&entry.reservation.line_item_id) else {
                continue;
            };
            if !entry.confirmed {
                c.pending = c.pending.saturating_sub(1);
                c.expired += 1;
                n += 1;
            } else if self.by_settle.remove(&(entry.settled_at, id)) {
                // Expired before its settling ended (settling outlives a short reservation).
                c.settling = c.settling.saturating_sub(1);
            }
        }
        while let Some((&(at, ref id), _)) = self.by_forget.first_key_value() {
            if at > now {
                break;
            }
            let id = id.clone();
            self.by_forget.remove(&(at, id.clone()));
            self.confirmed.remove(&id);
        }
        self.expired += n;
        n
    }

    /// Reserves if pending + settling stays within `goal` and each cap claim within its cap (see
    /// [`Reservations::reserve`]).
    pub fn reserve(&mut self, r: Reservation, goal: u64, now: DateTime<Utc>) -> bool {
        self.expire(now);
        if self.entries.contains_key(&r.ad_instance_id)
            || self.confirmed.contains_key(&r.ad_instance_id)
        {
            return true;
        }
        let c = self.lines.get(&r.line_item_id).copied().unwrap_or_default();
        if c.committed() >= goal {
            return false;
        }
        if let Some(viewer) = &r.viewer_id {
            let held = self.holds.get(viewer.as_str());
            let over = r.caps.iter().any(|claim| {
                let held = held
                    .and_then(|h| h.get(claim.key.as_str()))
                    .copied()
                    .unwrap_or(0);
                claim.seen + held >= u64::from(claim.max)
            });
            if over {
                return false;
            }
        }
        if let Some((viewer, keys)) = hold_keys(&r) {
            if !self.holds.contains_key(viewer) {
                self.holds.insert(viewer.to_owned(), HashMap::new());
            }
            if let Some(held) = self.holds.get_mut(viewer) {
                for key in keys {
                    match held.get_mut(key) {
                        Some(n) => *n += 1,
                        None => {
                            held.insert(key.to_owned(), 1);
                        }
                    }
                }
            }
        }
        match self.lines.get_mut(&r.line_item_id) {
            Some(c) => c.pending += 1,
            None => {
                self.lines.insert(
                    r.line_item_id.clone(),
                    Consumption {
                        pending: 1,
                        ..Consumption::default()
                    },
                );
            }
        }
        self.by_expiry
            .insert((r.expires_at, r.ad_instance_id.clone()));
        self.entries.insert(
            r.ad_instance_id.clone(),
            Entry {
                reservation: r,
                confirmed: false,
                settled_at: now,
                holding: true,
            },
        );
        true
    }

    /// Records the delivery of `ad_instance_id` of `line_item_id` at `now` (see [`Reservations::confirm`]).
    pub fn confirm(
        &mut self,
        ad_instance_id: &str,
        line_item_id: &str,
        now: DateTime<Utc>,
    ) -> bool {
        self.expire(now);
        if self.confirmed.contains_key(ad_instance_id)
            || self
                .entries
                .get(ad_instance_id)
                .is_some_and(|e| e.confirmed)
        {
            return false;
        }
        if !self.memory.is_zero() {
            let forget = now + self.memory;
            self.confirmed.insert(ad_instance_id.to_owned(), forget);
            self.by_forget
                .insert((forget, ad_instance_id.to_owned()), ());
        }
        let c = self.lines.entry(line_item_id.to_owned()).or_default();
        if let Some(entry) = self.entries.get_mut(ad_instance_id) {
            entry.confirmed = true;
            entry.settled_at = now + self.settle;
            c.pending = c.pending.saturating_sub(1);
            c.settling += 1;
            self.by_settle
                .insert((entry.settled_at, ad_instance_id.to_owned()));
        }
        c.delivered += 1;
        true
    }

    /// Gives back the room of `r` unless it was confirmed (see [`Reservations::release`]).
    pub fn release(&mut self, r: &Reservation, now: DateTime<Utc>) {
        self.expire(now);
        let Some(entry) = self.entries.get(&r.ad_instance_id) else {
            return;
        };
        if entry.confirmed {
            return;
        }
        let Some(entry) = self.entries.remove(&r.ad_instance_id) else {
            return;
        };
        self.by_expiry
            .remove(&(entry.reservation.expires_at, r.ad_instance_id.clone()));
        self.unhold(&entry.reservation);
        if let Some(c) = self.lines.get_mut(&entry.reservation.line_item_id) {
            c.pending = c.pending.saturating_sub(1);
        }
    }

    /// The viewer of `ad_instance_id` left before it played (see [`Reservations::abandon_instance`]): an
    /// unconfirmed reservation is released and counted as expired.
    pub fn abandon(&mut self, ad_instance_id: &str, now: DateTime<Utc>) {
        self.expire(now);
        if self.entries.get(ad_instance_id).is_none_or(|e| e.confirmed) {
            return;
        }
        let Some(entry) = self.entries.remove(ad_instance_id) else {
            return;
        };
        self.by_expiry
            .remove(&(entry.reservation.expires_at, ad_instance_id.to_owned()));
        self.unhold(&entry.reservation);
        if let Some(c) = self.lines.get_mut(&entry.reservation.line_item_id) {
            c.pending = c.pending.saturating_sub(1);
            c.expired += 1;
        }
        self.expired += 1;
    }

    /// Forgets the viewers `ids` (see [`Reservations::forget_viewers`]); how many holds were dropped.
    pub fn forget_viewers(&mut self, ids: &[String]) -> u64 {
        let count = |holds: &HashMap<String, HashMap<String, u64>>| -> usize {
            holds.values().map(HashMap::len).sum()
        };
        let before = count(&self.holds);
        self.holds.retain(|viewer, _| !ids.contains(viewer));
        for entry in self.entries.values_mut() {
            if entry
                .reservation
                .viewer_id
                .as_ref()
                .is_some_and(|v| ids.contains(v))
            {
                entry.reservation.viewer_id = None;
                entry.reservation.caps.clear();
            }
        }
        (before - count(&self.holds)) as u64
    }

    /// Consumption of `line_item_id` as of the last [`ReservationBook::expire`].
    pub fn consumption(&self, line_item_id: &str) -> Consumption {
        self.lines.get(line_item_id).copied().unwrap_or_default()
    }

    /// Reservations released unused so far.
    pub fn expired(&self) -> u64 {
        self.expired
    }
}

impl Reservations for Mutex<ReservationBook> {
    fn reserve(&self, reservation: Reservation, goal: u64, now: DateTime<Utc>) -> bool {
        self.lock()
            .map(|mut b| b.reserve(reservation, goal, now))
            .unwrap_or(false)
    }

    fn confirm(&self, ad_instance_id: &str, line_item_id: &str, now: DateTime<Utc>) -> bool {
        self.lock()
            .map(|mut b| b.confirm(ad_instance_id, line_item_id, now))
            .unwrap_or(false)
    }

    fn release(&self, reservation: &Reservation, now: DateTime<Utc>) {
        if let Ok(mut b) = self.lock() {
            b.release(reservation, now);
        }
    }

    fn release_instance(&self, ad_instance_id: &str, _line_item_id: &str, now: DateTime<Utc>) {
        if let Ok(mut b) = self.lock() {
            let held = b.entries.get(ad_instance_id).map(|e| e.reservation.clone());
            if let Some(r) = held {
                b.release(&r, now);
            }
        }
    }

    fn abandon_instance(&self, ad_instance_id: &str, now: DateTime<Utc>) {
        if let Ok(mut b) = self.lock() {
            b.abandon(ad_instance_id, now);
        }
    }

    fn forget_viewers(&self, ids: &[String]) -> u64 {
        self.lock().map(|mut b| b.forget_viewers(ids)).unwrap_or(0)
    }

    fn consumption(&self, line_item_id: &str, now: DateTime<Utc>) -> Consumption {
        self.lock()
            .map(|mut b| {
                b.expire(now);
                b.consumption(line_item_id)
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(id: &str, expires: DateTime<Utc>) -> Reservation {
        Reservation {
            ad_instance_id: id.into(),
            line_item_id: "li".into(),
            viewer_id: None,
            expires_at: expires,
            caps: Vec::new(),
        }
    }

    /// A book with a and b reserved under a goal of 2 until `later`, and a confirmed, at `t0`.
    fn a_confirmed_b_pending(t0: DateTime<Utc>, later: DateTime<Utc>) -> ReservationBook {
        let mut book = ReservationBook::new();
        assert!(book.reserve(r("a", later), 2, t0));
        assert!(book.reserve(r("b", later), 2, t0));
        assert!(book.confirm("a", "li", t0));
        book
    }

    fn t0() -> DateTime<Utc> {
        "2026-11-23T20:00:00Z".parse().unwrap_or_default()
    }

    #[test]
    fn pending_counts_against_the_goal_until_delivered_or_expired() {
        let t0 = t0();
        let later = t0 + TimeDelta::minutes(5);
        let mut book = ReservationBook::new();
        assert!(book.reserve(r("a", later), 2, t0));
        assert!(book.reserve(r("b", later), 2, t0));
        assert!(
            !book.reserve(r("c", later), 2, t0),
            "two pending fill a goal of two"
        );
        assert!(book.confirm("a", "li", t0));
        assert_eq!(book.consumption("li").committed(), 2, "a settles");
        assert!(!book.reserve(r("c", later), 2, t0));
        // b's viewer left: its reservation expires and the room comes back.
        assert!(book.reserve(r("c", later), 2, later));
        assert_eq!(book.expired(), 1);
        assert_eq!(
            book.consumption("li"),
            Consumption {
                delivered: 1,
                pending: 1,
                settling: 0,
                expired: 1
            }
        );
    }

    /// A delivery stops counting in the book once the live counters can show it: the caller's goal (less
    /// what the counters show) is then all the book guards, and the line item goes on to its goal instead
    /// of waiting for the confirmed reservation to expire.
    #[test]
    fn a_confirmed_reservation_settles_then_leaves_the_goal_to_the_counters() {
        let (t0, later) = (t0(), t0() + TimeDelta::minutes(5));
        let mut book = a_confirmed_b_pending(t0, later);
        let settling = |book: &ReservationBook| book.consumption("li").settling;
        assert_eq!(settling(&book), 1);
        // Before the counters can show a's delivery: the goal of 2 (counters at 0) is full.
        let almost = t0 + CONFIRM_SETTLE - TimeDelta::milliseconds(1);
        assert!(!book.reserve(r("c", later), 2, almost));
        // Settled: the counters show it (the caller now passes a goal of 2 - 1), and b still pends.
        let settled = t0 + CONFIRM_SETTLE;
        assert!(!book.reserve(r("c", later), 1, settled));
        assert_eq!(settling(&book), 0);
        assert!(book.reserve(r("c", later), 2, settled), "room for one more");
        assert_eq!(book.consumption("li").committed(), 2, "b and c pending");
        // A confirmed reservation expiring while it settles stops settling too.
        let short = t0 + TimeDelta::seconds(1);
        assert!(book.reserve(r("d", short), 10, t0));
        assert!(book.confirm("d", "li", t0));
        book.expire(short);
        assert_eq!(settling(&book), 0);
        assert_eq!(
            book.expired(),
            0,
            "a confirmed reservation does not expire undelivered"
        );
    }

    #[test]
    fn a_confirmed_instance_keeps_holding_the_viewers_cap_until_it_expires() {
        let t0 = t0();
        let later = t0 + TimeDelta::minutes(5);
        let capped = |id: &str, seen: u64| Reservation {
            viewer_id: Some("v".into()),
            caps: vec![CapClaim {
                key: "line_item:li".into(),
                max: 1,
                seen,
            }],
            ..r(id, later)
        };
        let mut book = ReservationBook::new();
        assert!(book.reserve(capped("a", 0), 100, t0));
        assert!(book.confirm("a", "li", t0));
        assert!(!book.confirm("a", "li", t0), "a repeat counts once");
        // The counters may not show the delivery yet (seen 0): the hold still caps the viewer.
        assert!(!book.reserve(capped("b", 0), 100, t0));
        // Once the hold expires, only what the counters saw counts.
        assert!(!book.reserve(capped("b", 1), 100, later));
        assert!(book.reserve(capped("c", 0), 100, later));
        assert_eq!(book.consumption("li").delivered, 1);
        assert_eq!(book.expired(), 0, "a confirmed reservation does not expire");
    }

    #[test]
    fn an_abandoned_reservation_gives_its_room_back_as_an_expiry() {
        let (t0, later) = (t0(), t0() + TimeDelta::minutes(5));
        let mut book = a_confirmed_b_pending(t0, later);
        assert!(!book.reserve(r("c", later), 2, t0), "the goal is full");
        // Both viewers' sessions expire: a's ad played and keeps its count, b's never will.
        book.abandon("a", t0);
        book.abandon("b", t0);
        book.abandon("unknown", t0);
        assert_eq!(
            book.consumption("li"),
            Consumption {
                delivered: 1,
                pending: 0,
                settling: 1,
                expired: 1
            }
        );
        assert_eq!(book.expired(), 1);
        assert!(book.reserve(r("c", later), 2, t0), "b's room is back now");
        book.abandon("b", t0);
        assert_eq!(book.expired(), 1, "abandoned once");
    }

    #[test]
    fn a_book_remembering_nothing_holds_no_confirmation_past_its_settling() {
        let t0 = t0();
        let later = t0 + TimeDelta::minutes(5);
        let settled = t0 + CONFIRM_SETTLE;
        let mut book = ReservationBook::new().remembering(TimeDelta::zero());
        assert!(book.reserve(r("a", later), 10, t0));
        assert!(book.confirm("a", "li", t0));
        assert!(
            !book.confirm("a", "li", t0),
            "its reservation remembers it while it settles"
        );
        assert!(book.confirm("unheld", "li", t0));
        book.expire(settled);
        assert!(book.entries.is_empty() && book.by_expiry.is_empty());
        assert!(book.confirmed.is_empty() && book.by_forget.is_empty());
        assert_eq!(book.consumption("li").delivered, 2);
        assert_eq!(book.consumption("li").committed(), 0, "settled");
    }
}
