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
//! The search goes depth first, taking each candidate (preferred duration first) before leaving it out, so
//! its first pod is the greedy one; a branch is cut as soon as its bound cannot beat the best pod found. The
//! bound is what makes it cheap: at most as many more ads as the shortest remaining durations fit in the
//! time left, worth at most the best remaining values, and at most the longest total the remaining durations
//! can make without passing the time left (the subset sums of each suffix, a bitset over the durations'
//! greatest common divisor). When the greedy pod is the best, the bound says so at once. It works on
//! [`Items`]: integers, pairwise conflicts as bitmasks, slots as masks ([`super::slots`]).
//!
//! Slot restrictions (position-in-pod targeting) are kept by ordering the pod; a tier may choose an ad that
//! needs lower-tier ads around it (one that may not play first), and if none come, the best pod without it
//! is taken instead. That, and the limits below, are where the search is not exact: with no slot
//! restriction beyond first-in-pod it is exact for up to [`PER_TIER`] candidates per tier (the best-ranked
//! ones) and stops after [`NODES`] nodes per tier, keeping the best pod found, which is never worse than the
//! greedy one it starts from.

use super::bounds::Bounds;
use super::items::{Items, slot_mask};
use super::{Candidate, PodRules, Positions, Tier, slots};

/// Candidates of one tier the search weighs (the best-ranked).
pub const PER_TIER: usize = 16;
/// Search nodes per tier before the best pod so far is kept.
pub const NODES: usize = 1_000;

/// One chosen ad: candidate index and the duration it plays.
pub(crate) type Pick = (usize, u32);

const ANY: u8 = Positions::ANY.0;

/// Values closer than this are equal (sums of CPMs and urgencies).
const EPS: f64 = 1e-9;

/// A tier's objective: value, preferred creatives, time filled.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct Score {
    value: f64,
    preferred: u32,
    fill: u32,
}

impl Score {
    fn beats(&self, other: &Score) -> bool {
        if self.value > other.value + EPS {
            return true;
        }
        if self.value < other.value - EPS {
            return false;
        }
        (self.preferred, self.fill) > (other.preferred, other.fill)
    }
}

/// The search's buffers, reused from one decision to the next.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    picks: Vec<Pick>,
    masks: Vec<u8>,
    best: Vec<Pick>,
    members: Vec<usize>,
    arranged: Vec<usize>,
    bounds: Bounds,
}

struct Search<'a> {
    items: &'a Items,
    rules: &'a PodRules,
    limit: u32,
    /// This tier's candidates that can still join, value descending.
    members: &'a [usize],
    /// Per member, the members it cannot share the pod with (bit per member).
    conflicts: [u32; PER_TIER],
    /// Per member, whether it needs the first slot (bit 0) or the last (bit 1) of a pod of several.
    needs: [u8; PER_TIER],
    bounds: &'a Bounds,
    /// Picks of the tiers above, then the current branch, with their slot masks.
    picks: &'a mut Vec<Pick>,
    masks: &'a mut Vec<u8>,
    /// Picks with a slot restriction.
    restricted: usize,
    base: usize,
    used: u32,
    /// Members that conflict with the branch's picks.
    blocked: u32,
    best: Option<Score>,
    best_picks: &'a mut Vec<Pick>,
    nodes: usize,
}

impl Search<'_> {
    fn offer(&mut self, score: Score) {
        if self.best.as_ref().is_some_and(|b| !score.beats(b)) {
            return;
        }
        // Most pods have no slot restriction: nothing to arrange.
        if self.restricted == 0 || slots::placeable(self.masks, self.rules.max_ads) {
            self.best = Some(score);
            self.best_picks.clear();
            self.best_picks.extend_from_slice(&self.picks[self.base..]);
        }
    }

    /// Whether some pod of this branch that takes members from `k` on might beat `best`.
    fn may_beat(&self, k: usize, score: Score, best: &Score) -> bool {
        let b = self.bounds;
        let ads_left = self.rules.max_ads.saturating_sub(self.picks.len());
        let t = self.limit.saturating_sub(self.used);
        let rest = self.members.len() - k;
        // The values of the members that may still join, best first, summed: at most one that needs the
        // first slot and one the last (the best set of a partition matroid is the greedy one).
        // No more than the ads left are ever added up.
        let mut values = [0.0f64; PER_TIER + 1];
        let (mut open, mut taken) = (0usize, 0u8);
        for j in k..self.members.len() {
            if open == ads_left {
                break;
            }
            let needs = self.needs[j];
            if self.blocked & (1 << j) != 0 || needs & taken != 0 {
                continue;
            }
            taken |= needs;
            values[open + 1] = values[open] + self.bounds.value(j);
            open += 1;
        }
        let value = |c: usize| score.value + values[c.min(open)];
        if b.words == 0 {
            // At most as many more ads as the shortest remaining durations fit, filling at most the
            // longest remaining durations.
            let (mut more, mut sum) = (0usize, 0u32);
            for &s in &b.shortest[k][..rest] {
                if more == ads_left || sum.saturating_add(s) > t {
                    break;
                }
                sum += s;
                more += 1;
            }
            let longest: u32 = b.longest[k][..rest.min(ads_left)].iter().sum();
            let bound = Score {
                value: value(more),
                preferred: score.preferred + more as u32,
                fill: score.fill + longest.min(t),
            };
            return bound.beats(best);
        }
        // Per number `c` of members added: worth at most the `c` best values, filling at most the longest
        // total of `c` that fits, all on their preferred creative only within the longest such total.
        // Values grow with `c`: those below the best's are skipped unread, one above it needs only to fit.
        for c in 0..=ads_left.min(rest).min(b.counts - 1) {
            let value = value(c);
            if value < best.value - EPS {
                continue;
            }
            let Some(fill) = b.longest_within(&b.all, k, c, t) else {
                // No `c` fit, so no more do.
                return false;
            };
            if value > best.value + EPS {
                return true;
            }
            let some = Score {
                value,
                preferred: score.preferred + (c as u32).saturating_sub(1),
                fill: score.fill + fill,
            };
            if some.beats(best) {
                return true;
            }
            if let Some(fill) = b.longest_within(&b.preferred, k, c, t) {
                let every = Score {
                    value,
                    preferred: score.preferred + c as u32,
                    fill: score.fill + fill,
                };
                if every.beats(best) {
                    return true;
                }
            }
        }
        false
    }

    /// Whether member `k` may join the branch (slots aside): not blocked, room for an ad, its cap not used up.
    fn may_join(&self, k: usize) -> bool {
        if self.blocked & (1 << k) != 0 || self.picks.len() >= self.rules.max_ads {
            return false;
        }
        let Some((group, left)) = self.items.get(self.members[k]).cap else {
            return true;
        };
        let same = self
            .picks
            .iter()
            .filter(|p| self.items.get(p.0).cap.is_some_and(|(g, _)| g == group))
            .count();
        (same as u32) < left
    }

    fn dfs(&mut self, k: usize, score: Score) {
        self.nodes += 1;
        self.offer(score);
        if k >= self.members.len() || self.nodes > NODES {
            return;
        }
        if let Some(best) = &self.best
            && !self.may_beat(k, score, best)
        {
            return;
        }
        if self.may_join(k) {
            let c = self.members[k];
            let (item, saved) = (*self.items.get(c), self.blocked);
            for (option, &ms) in self.items.durations(c).iter().enumerate() {
                if self.used.saturating_add(ms) > self.limit {
                    continue;
                }
                self.picks.push((c, ms));
                self.masks.push(item.slots);
                self.restricted += usize::from(item.slots != ANY);
                self.used += ms;
                self.blocked |= self.conflicts[k];
                let next = Score {
                    value: score.value + item.value,
                    preferred: score.preferred + u32::from(option == 0),
                    fill: score.fill + ms,
                };
                self.dfs(k + 1, next);
                self.blocked = saved;
                self.used -= ms;
                self.restricted -= usize::from(item.slots != ANY);
                self.masks.pop();
                self.picks.pop();
            }
        }
        self.dfs(k + 1, score);
    }
}

/// The picks (candidate, duration) tier by tier from `order` (rank order, tiers contiguous), into
/// `scratch.picks` with their slot masks in `scratch.masks`.
fn by_tier(items: &Items, order: &[usize], rules: &PodRules, scratch: &mut Scratch) {
    let Scratch {
        picks,
        masks,
        best,
        members,
        bounds,
        ..
    } = scratch;
    picks.clear();
    masks.clear();
    let limit = rules.duration_ms.saturating_add(rules.tolerance_ms);
    let mut used = 0u32;
    let mut k = 0;
    while k < order.len() {
        let tier = items.get(order[k]).tier;
        let end = order[k..]
            .iter()
            .position(|&c| items.get(c).tier != tier)
            .map_or(order.len(), |n| k + n);
        // Highest value first (stable: ties keep the given order), so the bound can add the next values up.
        members.clear();
        members.extend_from_slice(&order[k..end]);
        members.sort_by(|&a, &b| items.get(b).value.total_cmp(&items.get(a).value));
        members.truncate(PER_TIER);
        k = end;
        if picks.len() >= rules.max_ads {
            break;
        }
        // Members the tiers above keep out for good: a conflict, a cap used up, no duration that fits.
        let time_left = limit.saturating_sub(used);
        members.retain(|&c| {
            let x = items.get(c);
            let capped = x.cap.is_some_and(|(group, left)| {
                let same = picks
                    .iter()
                    .filter(|p| items.get(p.0).cap.is_some_and(|(g, _)| g == group))
                    .count();
                same as u32 >= left
            });
            !capped
                && x.slots & ANY != 0
                && items.durations(c).iter().any(|&d| d <= time_left)
                && picks.iter().all(|p| {
                    !items.conflict(c, p.0, rules.one_per_advertiser)
                        && !slots::exclusive(x.slots, items.get(p.0).slots)
                })
        });
        if members.is_empty() {
            continue;
        }
        // Pairs that can never share the pod: separation, or slots only one of them can have.
        let (mut conflicts, mut needs) = ([0u32; PER_TIER], [0u8; PER_TIER]);
        for a in 0..members.len() {
            let x = items.get(members[a]).slots;
            needs[a] = slots::needs(x);
            for b in a + 1..members.len() {
                if items.conflict(members[a], members[b], rules.one_per_advertiser)
                    || slots::exclusive(x, items.get(members[b]).slots)
                {
                    conflicts[a] |= 1 << b;
                    conflicts[b] |= 1 << a;
                }
            }
        }
        let base = picks.len();
        bounds.prepare(
            items,
            members,
            time_left,
            rules.max_ads.saturating_sub(picks.len()),
        );
        let mut search = Search {
            items,
            rules,
            limit,
            members,
            conflicts,
            needs,
            bounds,
            restricted: masks.iter().filter(|&&m| m != ANY).count(),
            picks,
            masks,
            base,
            used,
            blocked: 0,
            best: None,
            best_picks: best,
            nodes: 0,
        };
        search.dfs(0, Score::default());
        if search.best.is_some() {
            for &(c, ms) in best.iter() {
                picks.push((c, ms));
                masks.push(items.get(c).slots);
                used += ms;
            }
        }
    }
}

/// The pod's picks in play order into `out`, from `order` (candidates in rank order, tiers contiguous).
pub(crate) fn optimise_items(
    items: &Items,
    order: &[usize],
    rules: &PodRules,
    scratch: &mut Scratch,
    out: &mut Vec<Pick>,
) {
    out.clear();
    by_tier(items, order, rules, scratch);
    if slots::arrange(&scratch.masks, &mut scratch.arranged) {
        out.extend(scratch.arranged.iter().map(|&k| scratch.picks[k]));
        return;
    }
    // A positional ad was chosen in the hope of lower-tier ads around it that did not come: the best pod
    // without one of the positional ads, else without all of them. Rare: plain vectors.
    let mut kept: Vec<usize> = order.to_vec();
    loop {
        let positional: Vec<usize> = scratch
            .picks
            .iter()
            .map(|p| p.0)
            .filter(|&c| items.get(c).slots != ANY)
            .collect();
        if positional.is_empty() {
            out.extend_from_slice(&scratch.picks);
            return;
        }
        let mut best: Option<(Vec<Score>, Vec<Pick>)> = None;
        for &r in &positional {
            let without: Vec<usize> = kept.iter().copied().filter(|&c| c != r).collect();
            by_tier(items, &without, rules, scratch);
            if slots::arrange(&scratch.masks, &mut scratch.arranged) {
                let arranged: Vec<Pick> =
                    scratch.arranged.iter().map(|&k| scratch.picks[k]).collect();
                let score = tier_scores(items, &arranged);
                if best.as_ref().is_none_or(|(b, _)| lexi_beats(&score, b)) {
                    best = Some((score, arranged));
                }
            }
        }
        if let Some((_, arranged)) = best {
            out.extend(arranged);
            return;
        }
        kept.retain(|c| !positional.contains(c));
        by_tier(items, &kept, rules, scratch);
        if slots::arrange(&scratch.masks, &mut scratch.arranged) {
            out.extend(scratch.arranged.iter().map(|&k| scratch.picks[k]));
            return;
        }
    }
}

/// [`optimise_items`] over string candidates.
pub(super) fn optimise(candidates: &[Candidate], order: &[usize], rules: &PodRules) -> Vec<Pick> {
    let items = Items::from_candidates(candidates);
    let mut out = Vec::new();
    optimise_items(&items, order, rules, &mut Scratch::default(), &mut out);
    out
}

/// Whether `picks` can be put in an order where each ad's slot is one it accepts; returns that order,
/// keeping the given order where it can.
pub(super) fn arrange(candidates: &[Candidate], picks: &[Pick]) -> Option<Vec<Pick>> {
    let masks: Vec<u8> = picks
        .iter()
        .map(|p| slot_mask(candidates[p.0].positions, candidates[p.0].first_in_pod))
        .collect();
    let mut order = Vec::with_capacity(picks.len());
    slots::arrange(&masks, &mut order).then(|| order.iter().map(|&k| picks[k]).collect())
}

fn tier_scores(items: &Items, picks: &[Pick]) -> Vec<Score> {
    const TIERS: [Tier; 6] = [
        Tier::Sponsorship,
        Tier::Guaranteed,
        Tier::Standard,
        Tier::PrivateMarketplace,
        Tier::Programmatic,
        Tier::House,
    ];
    TIERS
        .iter()
        .map(|&t| {
            let mut s = Score::default();
            for &(c, ms) in picks.iter().filter(|p| items.get(p.0).tier == t) {
                s.value += items.get(c).value;
                s.preferred += u32::from(items.durations(c).first() == Some(&ms));
                s.fill += ms;
            }
            s
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
