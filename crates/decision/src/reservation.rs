//! Reservations: an impression decided but not yet delivered counts against its line item's goal (and the
//! viewer's caps) until it is delivered or its reservation expires.
//!
//! Without them, every viewer of a break is decided against the same delivered count, so a line item one
//! impression short of its goal is handed to the whole herd and overruns by the herd's size. With them, a
//! decision reserves each ad it chooses; the goal guard counts delivered plus pending, and a reservation
//! that never turns into an impression (the viewer left before the break) expires and gives its room back.
//!
//! [`Reservations`] is the seam the stores implement (embedded, Redis: one atomic reserve-if-under-goal per
//! ad, so nodes deciding the same break cannot overrun together). [`ReservationBook`] is the pure model of
//! it, time passed in, used as the in-memory implementation and by the pacing simulation.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
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
}

/// A line item's consumption of its goal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consumption {
    /// Impressions delivered.
    pub delivered: u64,
    /// Impressions reserved, neither delivered nor expired.
    pub pending: u64,
    /// Reservations that expired undelivered (their share of all settled ones is what over-reserving must
    /// make up for).
    pub expired: u64,
}

impl Consumption {
    /// What counts against the goal.
    pub fn committed(&self) -> u64 {
        self.delivered + self.pending
    }
}

/// Where reservations are kept.
pub trait Reservations: Send + Sync {
    /// Reserves `reservation` if its line item's delivered plus pending impressions stay within `goal`;
    /// false when they would not (the ad must not be served).
    fn reserve(&self, reservation: Reservation, goal: u64, now: DateTime<Utc>) -> bool;
    /// Delivered and pending impressions of `line_item_id` at `now` (expired reservations released).
    fn consumption(&self, line_item_id: &str, now: DateTime<Utc>) -> Consumption;
}

/// The pure reservation model.
#[derive(Debug, Default, Clone)]
pub struct ReservationBook {
    pending: HashMap<String, Reservation>,
    /// Pending reservations by expiry, to release them in order.
    by_expiry: BTreeMap<(DateTime<Utc>, String), ()>,
    lines: HashMap<String, Consumption>,
    expired: u64,
}

impl ReservationBook {
    /// An empty book.
    pub fn new() -> Self {
        ReservationBook::default()
    }

    /// Releases every reservation expired at `now`; returns how many.
    pub fn expire(&mut self, now: DateTime<Utc>) -> u64 {
        let mut n = 0;
        while let Some((&(at, ref id), _)) = self.by_expiry.first_key_value() {
            if at > now {
                break;
            }
            let id = id.clone();
            self.by_expiry.remove(&(at, id.clone()));
            if let Some(r) = self.pending.remove(&id)
                && let Some(c) = self.lines.get_mut(&r.line_item_id)
            {
                c.pending = c.pending.saturating_sub(1);
                c.expired += 1;
                n += 1;
            }
        }
        self.expired += n;
        n
    }

    /// Reserves if delivered + pending stays within `goal`.
    pub fn reserve(&mut self, r: Reservation, goal: u64, now: DateTime<Utc>) -> bool {
        self.expire(now);
        if self.pending.contains_key(&r.ad_instance_id) {
            return true;
        }
        let c = self.lines.entry(r.line_item_id.clone()).or_default();
        if c.committed() >= goal {
            return false;
        }
        c.pending += 1;
        self.by_expiry
            .insert((r.expires_at, r.ad_instance_id.clone()), ());
        self.pending.insert(r.ad_instance_id.clone(), r);
        true
    }

    /// Records the delivery of `ad_instance_id` of `line_item_id`: pending becomes delivered. A delivery
    /// after its reservation expired still counts (the impression happened), which is the one way a goal
    /// can be passed.
    pub fn deliver(&mut self, ad_instance_id: &str, line_item_id: &str) {
        let c = self.lines.entry(line_item_id.to_owned()).or_default();
        if let Some(r) = self.pending.remove(ad_instance_id) {
            self.by_expiry.remove(&(r.expires_at, r.ad_instance_id));
            c.pending = c.pending.saturating_sub(1);
        }
        c.delivered += 1;
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
        }
    }

    #[test]
    fn pending_counts_against_the_goal_until_delivered_or_expired() {
        let t0: DateTime<Utc> = "2026-11-23T20:00:00Z".parse().unwrap_or_default();
        let later = t0 + chrono::TimeDelta::minutes(5);
        let mut book = ReservationBook::new();
        assert!(book.reserve(r("a", later), 2, t0));
        assert!(book.reserve(r("b", later), 2, t0));
        assert!(
            !book.reserve(r("c", later), 2, t0),
            "two pending fill a goal of two"
        );
        book.deliver("a", "li");
        assert_eq!(book.consumption("li").committed(), 2);
        assert!(!book.reserve(r("c", later), 2, t0));
        // b's viewer left: its reservation expires and the room comes back.
        assert!(book.reserve(r("c", later), 2, later));
        assert_eq!(book.expired(), 1);
        assert_eq!(
            book.consumption("li"),
            Consumption {
                delivered: 1,
                pending: 1,
                expired: 1
            }
        );
    }
}
