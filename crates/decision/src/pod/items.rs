//! Candidates as the pod search sees them: numbers only. Advertisers, categories and cap groups are small
//! integers (interned by the caller: the engine at catalog load, [`Items::from_candidates`] for string
//! candidates), durations and categories live in two shared arrays, and a candidate's slot restrictions are
//! one mask. Nothing here allocates per candidate, so a decision can rebuild its items in a reused buffer.

use std::collections::HashMap;

use super::{Candidate, PodRules, Positions, Tier};

/// One candidate.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Item {
    pub(crate) tier: Tier,
    pub(crate) value: f64,
    /// Its durations in [`Items::durations`]: the preferred first, then the alternatives.
    durations: (u32, u32),
    advertiser: u32,
    /// Its categories in [`Items::categories`].
    categories: (u32, u32),
    /// Bit `id % 64` of each category: two candidates whose signatures are disjoint share no category.
    signature: u64,
    /// Frequency-cap group and how many more ads of it the viewer may see.
    pub(crate) cap: Option<(u32, u32)>,
    /// The slots it accepts ([`Positions`] bits; first-in-pod folded in as "alone or first").
    pub(crate) slots: u8,
    /// Only as the first ad of the pod.
    first_in_pod: bool,
}

/// A decision's candidates.
#[derive(Debug, Clone, Default)]
pub(crate) struct Items {
    items: Vec<Item>,
    durations: Vec<u32>,
    categories: Vec<u32>,
}

/// The slots a candidate accepts, first-in-pod folded in.
pub(crate) fn slot_mask(positions: Positions, first_in_pod: bool) -> u8 {
    if first_in_pod {
        positions.0 & (Positions::ALONE.0 | Positions::FIRST.0)
    } else {
        positions.0
    }
}

impl Items {
    /// Empties the list, keeping its buffers.
    pub(crate) fn clear(&mut self) {
        self.items.clear();
        self.durations.clear();
        self.categories.clear();
    }

    /// Number of candidates.
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// Adds a candidate.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn push(
        &mut self,
        tier: Tier,
        value: f64,
        durations: impl IntoIterator<Item = u32>,
        advertiser: u32,
        categories: impl IntoIterator<Item = u32>,
        cap: Option<(u32, u32)>,
        positions: Positions,
        first_in_pod: bool,
    ) {
        let d0 = self.durations.len();
        self.durations.extend(durations);
        let c0 = self.categories.len();
        self.categories.extend(categories);
        let signature = self.categories[c0..]
            .iter()
            .fold(0u64, |s, &c| s | 1 << (c % 64));
        self.items.push(Item {
            tier,
            value,
            durations: (d0 as u32, (self.durations.len() - d0) as u32),
            advertiser,
            categories: (c0 as u32, (self.categories.len() - c0) as u32),
            signature,
            cap,
            slots: slot_mask(positions, first_in_pod),
            first_in_pod,
        });
    }

    /// String candidates as items (advertisers, categories and cap groups interned here).
    pub(crate) fn from_candidates(candidates: &[Candidate]) -> Items {
        fn intern<'a>(names: &mut HashMap<&'a str, u32>, name: &'a str) -> u32 {
            let next = names.len() as u32;
            *names.entry(name).or_insert(next)
        }
        let mut items = Items::default();
        let (mut advertisers, mut categories, mut groups) =
            (HashMap::new(), HashMap::new(), HashMap::new());
        for c in candidates {
            let advertiser = intern(&mut advertisers, &c.advertiser);
            let of: Vec<u32> = c
                .categories
                .iter()
                .map(|k| intern(&mut categories, k))
                .collect();
            let cap = c
                .cap
                .as_ref()
                .map(|(g, left)| (intern(&mut groups, g), *left));
            items.push(
                c.tier,
                c.value,
                std::iter::once(c.duration_ms).chain(c.alternatives_ms.iter().copied()),
                advertiser,
                of,
                cap,
                c.positions,
                c.first_in_pod,
            );
        }
        items
    }

    /// Candidate `i`.
    pub(crate) fn get(&self, i: usize) -> &Item {
        &self.items[i]
    }

    /// The durations candidate `i` can play, preferred first.
    pub(crate) fn durations(&self, i: usize) -> &[u32] {
        let (start, len) = self.items[i].durations;
        &self.durations[start as usize..(start + len) as usize]
    }

    /// Puts candidate `i` out of reach: no duration fits any break.
    pub(crate) fn withdraw(&mut self, i: usize) {
        let (start, len) = self.items[i].durations;
        if len > 0 {
            self.durations[start as usize] = u32::MAX;
            self.items[i].durations.1 = 1;
        }
    }

    fn categories(&self, i: usize) -> &[u32] {
        let (start, len) = self.items[i].categories;
        &self.categories[start as usize..(start + len) as usize]
    }

    /// Whether `a` and `b` may not share a pod: one advertiser (when that is a rule) or a shared category.
    pub(crate) fn conflict(&self, a: usize, b: usize, one_per_advertiser: bool) -> bool {
        let (x, y) = (&self.items[a], &self.items[b]);
        if one_per_advertiser && x.advertiser == y.advertiser {
            return true;
        }
        x.signature & y.signature != 0
            && self
                .categories(a)
                .iter()
                .any(|k| self.categories(b).contains(k))
    }
}

/// The greedy walk of [`super::PodBuilder`] over items: whether each candidate, offered in rank order,
/// would be taken. The engine uses it to know when its walk has seen enough candidates.
#[derive(Debug, Default)]
pub(crate) struct Greedy {
    filled: u32,
    chosen: Vec<usize>,
}

impl Greedy {
    /// An empty pod.
    pub(crate) fn clear(&mut self) {
        self.filled = 0;
        self.chosen.clear();
    }

    /// Offers item `i` on its preferred duration: whether it is taken (as [`super::PodBuilder::offer`]).
    pub(crate) fn offer(&mut self, items: &Items, i: usize, rules: &PodRules) -> bool {
        let limit = rules.duration_ms.saturating_add(rules.tolerance_ms);
        let ms = items.durations(i).first().copied().unwrap_or(0);
        let x = items.get(i);
        if self.chosen.len() >= rules.max_ads
            || self.filled.saturating_add(ms) > limit
            || (x.first_in_pod && !self.chosen.is_empty())
            || self
                .chosen
                .iter()
                .any(|&c| items.conflict(i, c, rules.one_per_advertiser))
        {
            return false;
        }
        if let Some((group, left)) = x.cap {
            let used = self
                .chosen
                .iter()
                .filter(|&&c| items.get(c).cap.is_some_and(|(g, _)| g == group))
                .count();
            if used as u32 >= left {
                return false;
            }
        }
        self.filled += ms;
        self.chosen.push(i);
        true
    }

    /// Whether no candidate of at least `shortest_ms` could still be taken.
    pub(crate) fn is_full(&self, rules: &PodRules, shortest_ms: u32) -> bool {
        self.chosen.len() >= rules.max_ads
            || self.filled.saturating_add(shortest_ms)
                > rules.duration_ms.saturating_add(rules.tolerance_ms)
    }
}
