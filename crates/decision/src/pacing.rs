//! Pacing: how much of its eligible traffic a line item should take right now so that it delivers its goal
//! evenly across its flight (or as soon as possible).
//!
//! Even pacing is a feedback controller on a serve probability. At each update (every minute or so) it
//! compares delivered impressions with the straight line from zero at flight start to the goal at flight end,
//! and sets the probability so that, at the traffic rate just observed, delivery would land on the line again
//! by the end of the next interval. Changes are damped (geometric mean with the previous probability) so the
//! throttle moves smoothly, and bounded: never above 1, never below a floor that keeps the line item learning
//! its traffic. Guards: a line item at or over its goal stops (over-delivery); one behind in the last few
//! intervals of its flight serves everything it can (under-delivery).

use serde::{Deserialize, Serialize};

/// How a line item spends its goal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PacingMode {
    /// Evenly across the flight.
    Even,
    /// As fast as traffic allows.
    Asap,
}

/// A line item's pacing state (one per line item, updated periodically from live delivered counts).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pacer {
    mode: PacingMode,
    goal: u64,
    /// Flight start and end, seconds since the Unix epoch.
    start: i64,
    end: i64,
    probability: f64,
    last: Option<(i64, u64, u64)>,
}

/// The lowest serve probability: enough to keep measuring traffic.
const FLOOR: f64 = 0.001;

impl Pacer {
    /// A pacer for `goal` impressions over `[start, end)` (Unix seconds).
    pub fn new(mode: PacingMode, goal: u64, start: i64, end: i64) -> Self {
        Pacer {
            mode,
            goal,
            start,
            end: end.max(start + 1),
            probability: 1.0,
            last: None,
        }
    }

    /// The probability to serve an eligible opportunity now.
    pub fn probability(&self) -> f64 {
        self.probability
    }

    /// Updates from `delivered` impressions and `eligible` opportunities seen so far (cumulative) at `now`.
    pub fn update(&mut self, now: i64, delivered: u64, eligible: u64) {
        if delivered >= self.goal || now >= self.end {
            self.probability = 0.0;
            self.last = Some((now, delivered, eligible));
            return;
        }
        if self.mode == PacingMode::Asap || now < self.start {
            self.probability = 1.0;
            self.last = Some((now, delivered, eligible));
            return;
        }
        let Some((then, _, eligible_then)) = self.last.replace((now, delivered, eligible)) else {
            return;
        };
        let interval = (now - then).max(1);
        let traffic_rate = (eligible.saturating_sub(eligible_then)) as f64 / interval as f64;
        let left = self.end - now;
        if left <= 3 * interval {
            // The last intervals: whatever is missing now can only be caught up by serving everything.
            self.probability = 1.0;
            return;
        }
        let flight = (self.end - self.start) as f64;
        let target_next =
            self.goal as f64 * ((now + interval - self.start) as f64 / flight).min(1.0);
        let needed = (target_next - delivered as f64).max(0.0);
        let wanted = if traffic_rate > 0.0 {
            (needed / (traffic_rate * interval as f64)).clamp(FLOOR, 1.0)
        } else {
            1.0
        };
        // Damped: the geometric mean of the old and new probabilities halves each correction in log space.
        self.probability = (self.probability.max(FLOOR) * wanted)
            .sqrt()
            .clamp(FLOOR, 1.0);
    }

    /// How urgently the line item needs delivery at `now`, having delivered `delivered`: the share of its goal
    /// still missing over the share of its flight left. 1 is on schedule, above 1 behind, 0 done or over.
    /// Guaranteed line items are offered to pods most urgent first.
    pub fn urgency(&self, now: i64, delivered: u64) -> f64 {
        if delivered >= self.goal || now >= self.end || self.goal == 0 {
            return 0.0;
        }
        let missing = (self.goal - delivered) as f64 / self.goal as f64;
        let left = (self.end - now.max(self.start)) as f64 / (self.end - self.start) as f64;
        missing / left.max(1e-9)
    }
}
