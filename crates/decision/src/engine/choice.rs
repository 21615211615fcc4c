//! Choosing the pod: candidates (catalog line items and the caller's external ads) walked in rank order until
//! the pod is full and a few more have been seen, the most valuable pod chosen among them
//! ([`crate::pod::optimise`]), and each catalog ad taken against the break's allowance.
//!
//! A decision's candidates are numbers ([`Items`]) with their creative options, in buffers ([`Choice`])
//! kept per thread and reused, so the walk allocates nothing per candidate.

use std::cell::RefCell;

use super::plan::BreakPlan;
use super::rank::{Assessed, Offer, Walk};
use super::rotation::CreativeOption;
use super::{Engine, TagRequest, Verdict};
use crate::external::ExternalAd;
use crate::pod::items::{Greedy, Items};
use crate::pod::optimise::{Pick, Scratch, optimise_items};
use crate::pod::{Candidate, Positions};

/// Candidates weighed past the point where the greedy pod is full, per ad the pod may hold: room for the
/// knapsack to find a better combination without walking the whole catalog.
const EXTRA_PER_AD: usize = 2;

/// A weighed candidate: its offer, its creative options in [`Choice::options`], and the slots it accepts.
#[derive(Debug, Clone, Copy)]
pub(super) struct Weighed {
    pub(super) offer: Offer,
    options: (u32, u32),
    pub(super) positions: Positions,
}

/// One decision's walk and choice.
#[derive(Debug, Default)]
pub(super) struct Choice {
    /// The candidates weighed, parallel to `items`.
    pub(super) weighed: Vec<Weighed>,
    pub(super) options: Vec<CreativeOption>,
    pub(super) items: Items,
    /// Verdicts of offers left out (with `explain`).
    pub(super) verdicts: Vec<(Offer, Verdict)>,
    /// The pod: weighed candidates and durations, in play order.
    pub(super) picks: Vec<Pick>,
    /// Numbers for external ads' advertisers and categories the catalog does not know.
    pub(super) fresh: super::keys::Fresh,
    /// Buffers of the rotation and the search.
    pub(super) open: Vec<usize>,
    search: Scratch,
    order: Vec<usize>,
    greedy: Greedy,
}

thread_local! {
    static CHOICE: RefCell<Choice> = RefCell::new(Choice::default());
}

/// Runs `f` with this thread's buffers (new ones if they are in use).
pub(super) fn with_choice<R>(f: impl FnOnce(&mut Choice) -> R) -> R {
    CHOICE.with(|c| match c.try_borrow_mut() {
        Ok(mut c) => f(&mut c),
        Err(_) => f(&mut Choice::default()),
    })
}

impl Choice {
    fn clear(&mut self) {
        self.weighed.clear();
        self.options.clear();
        self.items.clear();
        self.verdicts.clear();
        self.picks.clear();
        self.fresh.clear();
        self.greedy.clear();
    }

    /// Adds a weighed candidate: `push` adds its item.
    pub(super) fn push(
        &mut self,
        offer: Offer,
        positions: Positions,
        options: (u32, u32),
        push: impl FnOnce(&mut Items),
    ) {
        push(&mut self.items);
        self.weighed.push(Weighed {
            offer,
            options,
            positions,
        });
    }

    /// The creative options of weighed candidate `k`.
    pub(super) fn options(&self, k: usize) -> &[CreativeOption] {
        let (start, len) = self.weighed[k].options;
        self.options
            .get(start as usize..(start + len) as usize)
            .unwrap_or(&[])
    }
}

impl Engine {
    /// Walks the offers and chooses the pod into `c`: the candidates weighed, the verdicts of the others
    /// (with `explain`), and the picks in play order; third-party tags to fetch go to `tags`.
    pub(super) fn choose(
        &self,
        walk: &Walk<'_>,
        explain: bool,
        tags: &mut Vec<TagRequest>,
        c: &mut Choice,
    ) {
        c.clear();
        let rules = self.rules(walk.duration_ms);
        let shortest = walk
            .external
            .iter()
            .map(|e| e.duration_ms)
            .fold(self.shortest_ms, u32::min);
        let mut extra: Option<usize> = None;
        for offer in self.offers(walk.plan, walk.facts, &walk.keys, walk.external) {
            if !explain && extra.is_some_and(|n| n >= EXTRA_PER_AD * self.max_ads) {
                break;
            }
            match self.assess(walk, offer, c) {
                Assessed::Skip => {}
                Assessed::Tags(t) => tags.extend(t),
                Assessed::Out(v) => {
                    if explain {
                        c.verdicts.push((offer, v));
                    }
                }
                Assessed::Candidate => {
                    let i = c.items.len() - 1;
                    c.greedy.offer(&c.items, i, &rules);
                    if let Some(n) = extra.as_mut() {
                        *n += 1;
                    } else if c.greedy.is_full(&rules, shortest) {
                        extra = Some(0);
                    }
                }
            }
        }
        // Offers arrive in rank order (tiers contiguous), the merge with external ads included.
        c.order.clear();
        c.order.extend(0..c.items.len());
        self.settle(walk, explain, c);
    }

    /// Chooses the pod among the weighed candidates of `c`, each catalog ad taking its line item's allowance
    /// for the break (see [`Engine::choose`]); again after a candidate was withdrawn.
    pub(super) fn settle(&self, walk: &Walk<'_>, explain: bool, c: &mut Choice) {
        let rules = self.rules(walk.duration_ms);
        loop {
            optimise_items(&c.items, &c.order, &rules, &mut c.search, &mut c.picks);
            // Each catalog ad takes one impression of its line item's allowance for this break; one that
            // other viewers used up is withdrawn and the pod chosen again.
            let mut short = None;
            for (n, &(k, _)) in c.picks.iter().enumerate() {
                if let Offer::Line(_, position) = c.weighed[k].offer
                    && !walk.plan.take(position)
                {
                    short = Some((n, k));
                    break;
                }
            }
            let Some((n, k)) = short else {
                return;
            };
            for &(taken, _) in &c.picks[..n] {
                if let Offer::Line(_, position) = c.weighed[taken].offer {
                    walk.plan.give_back(position);
                }
            }
            // Out of reach from now on: no duration fits.
            c.items.withdraw(k);
            if explain {
                c.verdicts
                    .push((c.weighed[k].offer, Verdict::PacedOut { probability: 0.0 }));
            }
        }
    }

    /// Withdraws weighed candidate `k` from a settled pod (its reservation was refused), noting `verdict`
    /// when explaining: every pick gives its allowance back and the pod is chosen again without it.
    pub(super) fn withdraw(
        &self,
        walk: &Walk<'_>,
        c: &mut Choice,
        k: usize,
        verdict: Option<Verdict>,
    ) {
        for &(taken, _) in &c.picks {
            if let Offer::Line(_, position) = c.weighed[taken].offer {
                walk.plan.give_back(position);
            }
        }
        c.items.withdraw(k);
        let explain = verdict.is_some();
        if let Some(v) = verdict {
            c.verdicts.push((c.weighed[k].offer, v));
        }
        self.settle(walk, explain, c);
    }

    /// The string form of weighed candidate `k` (explanations and the direct step's answer).
    pub(super) fn candidate(
        &self,
        plan: &BreakPlan,
        external: &[ExternalAd],
        weighed: &Weighed,
        options: &[CreativeOption],
    ) -> Option<Candidate> {
        Some(match weighed.offer {
            Offer::External(e) => {
                let x = external.get(e)?;
                Candidate {
                    id: x.id.clone(),
                    tier: x.tier,
                    value: x.value,
                    duration_ms: x.duration_ms,
                    advertiser: x.advertiser.clone(),
                    categories: x.categories.clone(),
                    cap: None,
                    first_in_pod: false,
                    alternatives_ms: Vec::new(),
                    positions: Positions::ANY,
                }
            }
            Offer::Line(i, position) => {
                let (l, p) = (self.catalog.line_items.get(i)?, self.prepared.get(i)?);
                let mut categories = p.categories.clone();
                if let Some(c) = options
                    .first()
                    .and_then(|o| self.catalog.creatives.get(o.0))
                {
                    categories.extend(c.categories.iter().cloned());
                }
                Candidate {
                    id: l.id.clone(),
                    tier: l.tier,
                    value: plan.value(position, l.cpm),
                    duration_ms: options.first().map_or(0, |o| o.1),
                    advertiser: p.advertiser.clone(),
                    categories,
                    cap: None,
                    first_in_pod: l.first_in_pod,
                    alternatives_ms: options.iter().skip(1).map(|o| o.1).collect(),
                    positions: weighed.positions,
                }
            }
        })
    }
}
