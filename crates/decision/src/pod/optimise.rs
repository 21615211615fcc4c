//! The most valuable pod: a small branch-and-bound knapsack over the candidates, tier by tier.
//!
//! Tiers stay strict: the sponsorship tier's ads are chosen first, then guaranteed, and so on, each tier
//! taking the most valuable set that fits what the tiers above left (time, ads, separation, caps, slots).
//! Within a tier the objective is, in order: the sum of values (CPM, or urgency for guaranteed), then the
//! number of ads that play their preferred creative (rotation), then the time filled. A greedy walk takes a
//! 45 s ad worth 30 and leaves 15 s of slate where two 30 s ads worth 20 each were worth 40; the search takes
//! the two. Each candidate may play one of several durations (a line item's creatives), so with 10 s left a
//! 10 s creative is tried.
//!
//! Slot restrictions (position-in-pod targeting) are kept by ordering the pod; a tier may choose an ad that
//! needs lower-tier ads around it (one that may not play first), and if none come, the best pod without it
//! is taken instead. That, and the limits below, are where the search is not exact: with no slot
//! restriction beyond first-in-pod it is exact for up to [`PER_TIER`] candidates per tier (the best-ranked ones) and stops after
//! [`NODES`] nodes per tier, keeping the best pod found, which is never worse than the greedy one it starts
//! from.

use super::{Candidate, PodRules};

/// Candidates of one tier the search weighs (the best-ranked).
pub const PER_TIER: usize = 16;
/// Search nodes per tier before the best pod so far is kept.
pub const NODES: usize = 1_000;

/// One chosen ad: candidate index and the duration it plays.
pub(super) type Pick = (usize, u32);

/// A tier's objective: value, preferred creatives, time filled.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct Score {
    value: f64,
    preferred: u32,
    fill: u32,
}

impl Score {
    fn beats(&self, other: &Score) -> bool {
        const EPS: f64 = 1e-9;
        if self.value > other.value + EPS {
            return true;
        }
        if self.value < other.value - EPS {
            return false;
        }
        (self.preferred, self.fill) > (other.preferred, other.fill)
    }
}

/// Whether `picks` could still be placed once lower tiers add ads (up to `max_ads`): some pod size where
/// the others fill the slots these do not accept.
fn extendable(candidates: &[Candidate], picks: &[Pick], max_ads: usize) -> bool {
    if arrange(candidates, picks).is_some() {
        return true;
    }
    (picks.len() + 1..=max_ads).any(|n| {
        // Slots 0..n; each pick needs a distinct slot it accepts (a small bipartite matching).
        fn assign(
            c: &[Candidate],
            picks: &[Pick],
            k: usize,
            n: usize,
            used: &mut Vec<bool>,
        ) -> bool {
            if k == picks.len() {
                return true;
            }
            let x = &c[picks[k].0];
            for slot in 0..n {
                if !used[slot] && x.positions.allows(slot, n) && !(x.first_in_pod && slot != 0) {
                    used[slot] = true;
                    if assign(c, picks, k + 1, n, used) {
                        return true;
                    }
                    used[slot] = false;
                }
            }
            false
        }
        assign(candidates, picks, 0, n, &mut vec![false; n])
    })
}

/// Whether `picks` can be put in an order where each ad's slot is one it accepts; returns that order,
/// keeping the given order where it can.
pub(super) fn arrange(candidates: &[Candidate], picks: &[Pick]) -> Option<Vec<Pick>> {
    fn fits(c: &Candidate, slot: usize, n: usize) -> bool {
        c.positions.allows(slot, n) && !(c.first_in_pod && slot != 0)
    }
    let n = picks.len();
    if picks
        .iter()
        .enumerate()
        .all(|(k, p)| fits(&candidates[p.0], k, n))
    {
        return Some(picks.to_vec());
    }
    // Rare (a positional ad out of place): the first valid order, trying slots in the given order.
    fn place(
        candidates: &[Candidate],
        picks: &[Pick],
        used: &mut Vec<bool>,
        out: &mut Vec<Pick>,
    ) -> bool {
        let n = picks.len();
        if out.len() == n {
            return true;
        }
        for k in 0..n {
            if !used[k] && fits(&candidates[picks[k].0], out.len(), n) {
                used[k] = true;
                out.push(picks[k]);
                if place(candidates, picks, used, out) {
                    return true;
                }
                out.pop();
                used[k] = false;
            }
        }
        false
    }
    let mut out = Vec::with_capacity(n);
    place(candidates, picks, &mut vec![false; n], &mut out).then_some(out)
}

/// Whether candidate `c` (playing `ms`) can join `picks` under the pod rules (not slots: see [`arrange`]).
pub(super) fn compatible(
    candidates: &[Candidate],
    rules: &PodRules,
    picks: &[Pick],
    c: usize,
    ms: u32,
) -> bool {
    let x = &candidates[c];
    let limit = rules.duration_ms.saturating_add(rules.tolerance_ms);
    let used: u32 = picks.iter().map(|p| p.1).sum();
    if picks.len() >= rules.max_ads || used.saturating_add(ms) > limit {
        return false;
    }
    let mut same_cap = 0;
    for &(o, _) in picks {
        let y = &candidates[o];
        if rules.one_per_advertiser && y.advertiser == x.advertiser {
            return false;
        }
        if x.categories.iter().any(|k| y.categories.contains(k)) {
            return false;
        }
        if let (Some((g, _)), Some((h, _))) = (&x.cap, &y.cap)
            && g == h
        {
            same_cap += 1;
        }
    }
    x.cap.as_ref().is_none_or(|(_, left)| same_cap < *left)
}

struct Search<'a> {
    candidates: &'a [Candidate],
    rules: &'a PodRules,
    /// This tier's candidates in rank order (values descending).
    tier: Vec<usize>,
    /// Picks of the tiers above, then the current branch.
    picks: Vec<Pick>,
    base: usize,
    best: Option<(Score, Vec<Pick>)>,
    nodes: usize,
}

impl Search<'_> {
    fn offer(&mut self, score: Score) {
        if self.best.as_ref().is_some_and(|(b, _)| !score.beats(b)) {
            return;
        }
        // Most pods have no slot restriction: nothing to arrange.
        let free = self.picks.iter().all(|p| {
            let c = &self.candidates[p.0];
            c.positions == super::Positions::ANY && !c.first_in_pod
        });
        if free || extendable(self.candidates, &self.picks, self.rules.max_ads) {
            self.best = Some((score, self.picks[self.base..].to_vec()));
        }
    }

    fn bound(&self, k: usize, score: Score) -> Score {
        let ads_left = self.rules.max_ads.saturating_sub(self.picks.len());
        let rest = &self.tier[k.min(self.tier.len())..];
        let value: f64 = rest
            .iter()
            .take(ads_left)
            .map(|&c| self.candidates[c].value.max(0.0))
            .sum();
        let limit = self
            .rules
            .duration_ms
            .saturating_add(self.rules.tolerance_ms);
        let used: u32 = self.picks.iter().map(|p| p.1).sum();
        // The longest the remaining ads could add: their longest durations, as many as may still join (the
        // tier holds at most PER_TIER candidates: a stack array).
        let mut longest = [0u32; PER_TIER];
        for (slot, &c) in longest.iter_mut().zip(rest) {
            let x = &self.candidates[c];
            *slot = x
                .alternatives_ms
                .iter()
                .fold(x.duration_ms, |a, &b| a.max(b));
        }
        longest.sort_unstable_by(|a, b| b.cmp(a));
        let more: u32 = longest.iter().take(ads_left).sum();
        Score {
            value: score.value + value,
            preferred: score.preferred + rest.len().min(ads_left) as u32,
            fill: score.fill + more.min(limit.saturating_sub(used)),
        }
    }

    fn dfs(&mut self, k: usize, score: Score) {
        self.nodes += 1;
        self.offer(score);
        if k >= self.tier.len() || self.nodes > NODES {
            return;
        }
        if let Some((best, _)) = &self.best
            && !self.bound(k, score).beats(best)
        {
            return;
        }
        let c = self.tier[k];
        let alternatives = self.candidates[c].alternatives_ms.len();
        for option in 0..=alternatives {
            let x = &self.candidates[c];
            let (ms, preferred) = match option {
                0 => (x.duration_ms, true),
                n => (x.alternatives_ms[n - 1], false),
            };
            if compatible(self.candidates, self.rules, &self.picks, c, ms) {
                self.picks.push((c, ms));
                let next = Score {
                    value: score.value + self.candidates[c].value,
                    preferred: score.preferred + u32::from(preferred),
                    fill: score.fill + ms,
                };
                self.dfs(k + 1, next);
                self.picks.pop();
            }
        }
        self.dfs(k + 1, score);
    }
}

/// The pod's picks in play order, from `order` (candidates in rank order, tiers contiguous).
pub(super) fn optimise(candidates: &[Candidate], order: &[usize], rules: &PodRules) -> Vec<Pick> {
    let mut left_out: Vec<usize> = Vec::new();
    loop {
        let kept: Vec<usize> = order
            .iter()
            .copied()
            .filter(|c| !left_out.contains(c))
            .collect();
        let picks = by_tier(candidates, &kept, rules);
        if let Some(arranged) = arrange(candidates, &picks) {
            return arranged;
        }
        // A positional ad was chosen in the hope of lower-tier ads around it that did not come: the best pod
        // without one of the positional ads, else without all of them.
        let positional: Vec<usize> = picks
            .iter()
            .map(|p| p.0)
            .filter(|&c| {
                candidates[c].positions != super::Positions::ANY || candidates[c].first_in_pod
            })
            .collect();
        if positional.is_empty() {
            return picks;
        }
        let mut best: Option<(Vec<Score>, Vec<Pick>)> = None;
        for &r in &positional {
            let without: Vec<usize> = kept.iter().copied().filter(|&c| c != r).collect();
            let p = by_tier(candidates, &without, rules);
            if let Some(arranged) = arrange(candidates, &p) {
                let score = tier_scores(candidates, &p);
                if best.as_ref().is_none_or(|(b, _)| lexi_beats(&score, b)) {
                    best = Some((score, arranged));
                }
            }
        }
        if let Some((_, arranged)) = best {
            return arranged;
        }
        left_out.extend(positional);
    }
}

fn tier_scores(candidates: &[Candidate], picks: &[Pick]) -> Vec<Score> {
    let mut scores: Vec<(super::Tier, Score)> = Vec::new();
    for &(c, ms) in picks {
        let x = &candidates[c];
        let at = match scores.iter().position(|(t, _)| *t == x.tier) {
            Some(k) => k,
            None => {
                scores.push((x.tier, Score::default()));
                scores.len() - 1
            }
        };
        let s = &mut scores[at].1;
        s.value += x.value;
        s.preferred += u32::from(ms == x.duration_ms);
        s.fill += ms;
    }
    scores.sort_by_key(|(t, _)| *t);
    let tiers = [
        super::Tier::Sponsorship,
        super::Tier::Guaranteed,
        super::Tier::Standard,
        super::Tier::Programmatic,
        super::Tier::House,
    ];
    tiers
        .iter()
        .map(|t| {
            scores
                .iter()
                .find(|(u, _)| u == t)
                .map_or(Score::default(), |(_, s)| *s)
        })
        .collect()
}

fn lexi_beats(a: &[Score], b: &[Score]) -> bool {
    for (x, y) in a.iter().zip(b) {
        if x.beats(y) {
            return true;
        }
        if y.beats(x) {
            return false;
        }
    }
    false
}

fn by_tier(candidates: &[Candidate], order: &[usize], rules: &PodRules) -> Vec<Pick> {
    let mut picks: Vec<Pick> = Vec::new();
    let mut k = 0;
    while k < order.len() {
        let tier = candidates[order[k]].tier;
        let end = order[k..]
            .iter()
            .position(|&c| candidates[c].tier != tier)
            .map_or(order.len(), |n| k + n);
        // Highest value first (stable: ties keep the given order), so the bound can add the next values up.
        let mut members: Vec<usize> = order[k..end].to_vec();
        members.sort_by(|&a, &b| candidates[b].value.total_cmp(&candidates[a].value));
        members.truncate(PER_TIER);
        k = end;
        if picks.len() >= rules.max_ads {
            break;
        }
        let base = picks.len();
        let mut search = Search {
            candidates,
            rules,
            tier: members,
            picks,
            base,
            best: None,
            nodes: 0,
        };
        search.dfs(0, Score::default());
        let chosen = search.best.map(|(_, p)| p).unwrap_or_default();
        picks = search.picks;
        picks.extend(chosen);
    }
    picks
}
