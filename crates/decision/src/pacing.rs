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

/// Break-aware pacing: how many impressions a line item may take in one break, planned from the audience
/// expected in it and in the rest of the flight.
///
/// Even pacing spreads what is left of the goal (goal minus delivered minus pending reservations) in
/// proportion to the audience: a break expected to hold 2 % of the flight's remaining eligible audience gets
/// 2 % of the remaining goal. Expired reservations come back as remaining goal, so later breaks make up for
/// viewers who left. ASAP takes what the break offers. Neither ever plans past the goal.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BreakPlanInput {
    /// Pacing mode.
    pub mode: PacingMode,
    /// Goal in impressions.
    pub goal: u64,
    /// Delivered plus pending impressions.
    pub committed: u64,
    /// Eligible opportunities expected in this break.
    pub break_audience: f64,
    /// Eligible opportunities expected from this break (included) to the end of the flight.
    pub remaining_audience: f64,
}

/// The break's allowance (see [`BreakPlanInput`]); `carry` holds the fraction of an impression rounding
/// left over, so a long run of small breaks does not round every allowance down.
pub fn break_allowance(input: &BreakPlanInput, carry: &mut f64) -> u64 {
    let left = input.goal.saturating_sub(input.committed);
    if left == 0 || input.break_audience <= 0.0 {
        return 0;
    }
    let wanted = match input.mode {
        PacingMode::Asap => left as f64,
        PacingMode::Even => {
            let share = (input.break_audience / input.remaining_audience.max(input.break_audience))
                .clamp(0.0, 1.0);
            left as f64 * share + *carry
        }
    };
    let whole = wanted.floor();
    if input.mode == PacingMode::Even {
        *carry = wanted - whole;
    }
    (whole as u64)
        .min(left)
        .min(input.break_audience.floor() as u64)
}

/// The audience the engine plans breaks with (break-aware pacing): from the channel's history, a schedule,
/// or a simulation.
pub trait AudienceForecast: Send + Sync {
    /// Viewers expected at the break of `channel` starting at `at`.
    fn break_audience(&self, channel: &str, at: chrono::DateTime<chrono::Utc>) -> f64;
    /// Viewer-breaks expected across the network in `[from, to)` (this break included when `from` is its
    /// start).
    fn audience_between(
        &self,
        from: chrono::DateTime<chrono::Utc>,
        to: chrono::DateTime<chrono::Utc>,
    ) -> f64;
}
