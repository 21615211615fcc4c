//! The break plan: everything about a break that does not depend on the viewer, computed once for the herd
//! of viewers decided at its start.
//!
//! Holds, flights, a creative that fits the break, and the targeting clauses on the channel are settled here,
//! so the per-viewer walk only meets line items that can still serve. Each survivor's residual targeting is
//! filed under its narrowest required clause in posting lists sorted by rank, and a viewer's candidates are
//! the lazy merge of the lists its own values select: the walk produces line items in the pod's order and
//! stops when the pod is full, without matching or sorting the rest of the catalog.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};

use chrono::{DateTime, Utc};

use super::{Engine, Verdict};
use crate::catalog::Catalog;
use crate::pacing::{BreakPlanInput, Pacer, PacingMode, break_allowance};
use crate::pod::Positions;
use crate::targeting::compiled::{Compiled, ViewerKeys};
use crate::targeting::{Expr, Facts, Field};

/// No residual targeting: the line item matches every viewer of the break.
const ANYONE: u32 = u32::MAX;

/// What identifies a break for planning: the plan is reused for every viewer of the same break decided in
/// the same second.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct BreakKey {
    pub(super) channel: String,
    pub(super) break_id: String,
    pub(super) duration_ms: u32,
    pub(super) at: i64,
}

/// A line item that survived the break-level checks.
pub(super) struct Line {
    /// Index in the catalog.
    pub(super) item: u32,
    /// Its residual targeting (index into `exprs`), or [`ANYONE`].
    expr: u32,
    /// Whether that targeting tests the pod position.
    positional: bool,
    /// The pacing probability when the plan was made.
    pub(super) probability: f64,
    /// Its value within its tier when the plan was made (urgency for guaranteed, else CPM).
    value: f64,
    /// Impressions this break may still take (goal and reservation guard), and how many it took.
    pub(super) allowance: u32,
    pub(super) taken: AtomicU32,
}

/// Everything about one break that is the same for all its viewers.
pub struct BreakPlan {
    pub(super) key: BreakKey,
    pub(super) now: DateTime<Utc>,
    /// Survivors in rank order.
    pub(super) lines: Vec<Line>,
    /// The residual expressions compiled over interned values (`roots[expr]`), for the per-viewer walk.
    compiled: Compiled,
    roots: Vec<u32>,
    /// Positions in `lines`, filed under a value of their narrowest required clause, ascending.
    by_value: HashMap<Field, HashMap<String, Vec<u32>>>,
    /// Positions of survivors without a required clause, ascending.
    always: Vec<u32>,
    /// Break-level verdicts of the line items left out here (for explanations), by catalog index.
    pub(super) dropped: Vec<Option<Verdict>>,
}

impl BreakPlan {
    /// The channel.
    pub fn channel(&self) -> &str {
        &self.key.channel
    }

    /// Line items that can still serve some viewer of this break.
    pub fn eligible_line_items(&self) -> usize {
        self.lines.len()
    }

    /// A viewer's `facts` as the ids the compiled targeting compares, into `keys`.
    pub(super) fn keys(&self, facts: &Facts, keys: &mut ViewerKeys) {
        self.compiled.keys(facts, keys);
    }

    /// The lines a viewer with `facts` (and their `keys`) matches, lazily, in rank order (positions in
    /// `lines`).
    pub(super) fn matches<'a>(&'a self, facts: &'a Facts, keys: &'a ViewerKeys) -> Matches<'a> {
        let mut lists: Vec<&'a [u32]> = Vec::with_capacity(16);
        if !self.always.is_empty() {
            lists.push(&self.always);
        }
        for (field, value) in facts.values() {
            if let Some(list) = self.by_value.get(field).and_then(|m| m.get(value.as_str())) {
                lists.push(list);
            }
        }
        Matches {
            plan: self,
            keys,
            lists,
            last: None,
        }
    }

    /// Takes one impression of line `position` against the break's allowance; false when it is used up.
    pub(super) fn take(&self, position: usize) -> bool {
        let Some(line) = self.lines.get(position) else {
            return false;
        };
        if line.allowance == u32::MAX {
            return true;
        }
        let before = line.taken.fetch_add(1, Ordering::Relaxed);
        if before >= line.allowance {
            line.taken.fetch_sub(1, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// The pod slots line `position` accepts for a viewer with `keys` (position-in-pod targeting): its
    /// targeting evaluated as the only ad, as first, as last and in between.
    pub(super) fn positions(&self, position: usize, keys: &ViewerKeys) -> Positions {
        let Some(line) = self.lines.get(position) else {
            return Positions(0);
        };
        let Some(&root) = self
            .roots
            .get(line.expr as usize)
            .filter(|_| line.positional)
        else {
            return Positions::ANY;
        };
        let [first, last] = self.compiled.position_ids();
        let mut mask = 0;
        for (kind, slot) in [
            (Positions::ALONE, &[first, last][..]),
            (Positions::FIRST, &[first][..]),
            (Positions::LAST, &[last][..]),
            (Positions::MIDDLE, &[][..]),
        ] {
            if self.compiled.matches_in_slot(root, keys, slot) {
                mask |= kind.0;
            }
        }
        Positions(mask)
    }

    /// The value of line `position` within its tier (`cpm` when unknown).
    pub(super) fn value(&self, position: usize, cpm: f64) -> f64 {
        self.lines.get(position).map_or(cpm, |l| l.value)
    }

    /// Returns an impression taken by [`BreakPlan::take`] that the pod did not use.
    pub(super) fn give_back(&self, position: usize) {
        if let Some(line) = self.lines.get(position)
            && line.allowance != u32::MAX
        {
            line.taken.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Whether line `position` has allowance left (a hint; [`BreakPlan::take`] decides).
    pub(super) fn has_allowance(&self, position: usize) -> bool {
        self.lines.get(position).is_some_and(|l| {
            l.allowance == u32::MAX || l.taken.load(Ordering::Relaxed) < l.allowance
        })
    }
}

/// A viewer's matching lines: a k-way merge of the posting lists its values select, each candidate's
/// residual expression checked as it comes out.
pub(super) struct Matches<'a> {
    plan: &'a BreakPlan,
    keys: &'a ViewerKeys,
    lists: Vec<&'a [u32]>,
    last: Option<u32>,
}

impl Iterator for Matches<'_> {
    /// A position in the plan's `lines`.
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        loop {
            // A handful of lists: a linear scan of their heads beats a heap.
            let (k, &position) = self
                .lists
                .iter()
                .enumerate()
                .filter_map(|(k, l)| l.first().map(|p| (k, p)))
                .min_by_key(|(_, p)| **p)?;
            self.lists[k] = &self.lists[k][1..];
            if self.last == Some(position) {
                continue;
            }
            self.last = Some(position);
            let line = self.plan.lines.get(position as usize)?;
            let hit = line.expr == ANYONE
                || if line.positional {
                    self.plan.positions(position as usize, self.keys) != Positions(0)
                } else {
                    self.plan
                        .roots
                        .get(line.expr as usize)
                        .is_some_and(|&root| self.plan.compiled.matches(root, self.keys))
                };
            if hit {
                return Some(position as usize);
            }
        }
    }
}

impl Engine {
    /// Plans the break `key` at `now`: the line items any of its viewers may get, and how much each may take.
    pub(super) fn plan(&self, key: BreakKey, now: DateTime<Utc>) -> BreakPlan {
        let holds = self.holds();
        let pacers = self.pacers.read().ok();
        let (order, values): (Vec<usize>, Vec<f64>) = self
            .ranking
            .read()
            .map(|r| (r.order.clone(), r.value.clone()))
            .unwrap_or_default();
        // What every viewer of the break shares: the channel, the break's length, the time (dayparts in a
        // fixed time zone).
        let known = Facts::default()
            .with(Field::Channel, key.channel.clone())
            .with(
                Field::BreakDuration,
                ((key.duration_ms + 500) / 1000).to_string(),
            )
            .at(now);
        let fixed = |field: Field| matches!(field, Field::Channel | Field::BreakDuration);
        let limit = key.duration_ms.saturating_add(self.tolerance_ms);
        let mut dropped: Vec<Option<Verdict>> = vec![None; self.catalog.line_items.len()];
        let mut lines = Vec::new();
        let mut exprs: Vec<Expr> = Vec::new();
        let mut seen: HashMap<Expr, u32> = HashMap::new();
        let mut by_value: HashMap<Field, HashMap<String, Vec<u32>>> = HashMap::new();
        let mut always = Vec::new();
        for i in order {
            let (Some(l), Some(p)) = (self.catalog.line_items.get(i), self.prepared.get(i)) else {
                continue;
            };
            let residual = match l.targeting.as_ref().map(|t| t.partial(&known, &fixed)) {
                None | Some(Ok(true)) => None,
                Some(Ok(false)) => {
                    dropped[i] = Some(Verdict::TargetingMiss);
                    continue;
                }
                Some(Err(r)) => Some(r),
            };
            let verdict = if holds.line_items.contains(&l.id)
                || holds.advertisers.contains(&p.advertiser_id)
            {
                Some(Verdict::Paused)
            } else if now < l.start || now >= l.end {
                Some(Verdict::OutOfFlight)
            } else if p.tags.is_empty() && !p.creatives.iter().any(|c| c.1 <= limit) {
                Some(Verdict::NoServableCreative)
            } else {
                None
            };
            if let Some(v) = verdict {
                dropped[i] = Some(v);
                continue;
            }
            let pacer = pacers
                .as_deref()
                .and_then(|p| p.get(i))
                .map_or(1.0, Pacer::probability);
            let (allowance, probability) = self.allowance(i, &key.channel, now, pacer);
            let position = lines.len() as u32;
            let positional = residual.as_ref().is_some_and(Expr::is_positional);
            let expr = match residual {
                None => {
                    always.push(position);
                    ANYONE
                }
                Some(r) => {
                    match r.narrowest_required() {
                        Some((field, values)) => {
                            let by = by_value.entry(field).or_default();
                            for v in values {
                                let list = by.entry(v.clone()).or_default();
                                if list.last() != Some(&position) {
                                    list.push(position);
                                }
                            }
                        }
                        None => always.push(position),
                    }
                    let next = exprs.len() as u32;
                    *seen.entry(r).or_insert_with_key(|r| {
                        exprs.push(r.clone());
                        next
                    })
                }
            };
            lines.push(Line {
                item: i as u32,
                expr,
                positional,
                value: values.get(i).copied().unwrap_or(l.cpm),
                probability,
                allowance,
                taken: AtomicU32::new(0),
            });
        }
        let mut compiled = Compiled::default();
        let roots = exprs.iter().map(|e| compiled.compile(e, now)).collect();
        BreakPlan {
            key,
            now,
            lines,
            compiled,
            roots,
            by_value,
            always,
            dropped,
        }
    }

    /// What line item `i` may take in one break, and its serve probability: unlimited without
    /// reservations; with them, never past the goal counting pending impressions; with a forecast too, even
    /// line items get their audience share of what is left ([`break_allowance`]), and a probability that
    /// spreads it over the break's eligible viewers.
    fn allowance(&self, i: usize, channel: &str, now: DateTime<Utc>, pacer: f64) -> (u32, f64) {
        let (Some(reservations), Some(l)) = (&self.reservations, self.catalog.line_items.get(i))
        else {
            return (u32::MAX, pacer);
        };
        let goal = Catalog::goal_impressions(l);
        let consumption = reservations.consumption(&l.id, now);
        // What the live counters show delivered counts too (see `Engine::reserve`).
        let committed = consumption.committed() + self.counters.delivered(&l.id, l.start);
        let Some(forecast) = &self.forecast else {
            return (to_u32(goal.saturating_sub(committed)), pacer);
        };
        let break_audience = forecast.break_audience(channel, now);
        let input = BreakPlanInput {
            mode: l.pacing,
            goal,
            committed,
            break_audience,
            remaining_audience: forecast.audience_between(now, l.end),
        };
        let deliveries = match self.carry.lock() {
            Ok(mut carry) => carry.get_mut(i).map_or(0, |c| break_allowance(&input, c)),
            Err(_) => 0,
        };
        // Some reservations expire undelivered (viewers leave): reserve that much more, still never past the
        // goal counting pending ones.
        let settled = consumption.delivered + consumption.expired;
        let rate = if settled >= 100 {
            (consumption.delivered as f64 / settled as f64).max(0.5)
        } else {
            1.0
        };
        let allowance =
            ((deliveries as f64 / rate).round() as u64).min(goal.saturating_sub(committed));
        // The share of viewers eligible for it so far (1 until it has been seen), so the allowance is
        // offered across the break rather than to its first viewers.
        let decisions = self.decisions.load(Ordering::Relaxed);
        let eligible = self
            .eligible
            .get(i)
            .map_or(0, |e| e.load(Ordering::Relaxed));
        let share = if decisions > 100 && eligible > 0 {
            (eligible as f64 / decisions as f64).min(1.0)
        } else {
            1.0
        };
        let probability = if l.pacing == PacingMode::Asap {
            1.0
        } else {
            // A margin over the forecast, so a break somewhat smaller than forecast still meets its plan; the
            // allowance caps a bigger one.
            (allowance as f64 / (share * break_audience).max(1.0) * 1.25).min(1.0)
        };
        (to_u32(allowance), probability)
    }
}

fn to_u32(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX - 1)
}
