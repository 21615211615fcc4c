//! Pod construction: fill a break of a given length from eligible candidates, tier by tier.
//!
//! Rules, in the order they bind:
//! 1. Tier order is strict: sponsorship, then guaranteed, standard, private marketplace (deal bids),
//!    programmatic (open auction), house. A candidate of a higher tier that fits (time left, ads left,
//!    separation, caps) is always taken before any lower-tier one is considered (the industry's priority
//!    model: a sold promise outranks any price; a negotiated deal outranks the open auction).
//! 2. Within a tier, higher value first (for guaranteed: urgency from pacing; for auctions: price), then the
//!    longer ad (fills more of the break), then catalog order for determinism.
//! 3. The pod never runs past the break by more than the tolerance, never holds more than `max_ads`, never holds
//!    two ads of one advertiser or sharing a competitive category, and never exceeds a candidate's remaining
//!    frequency cap — counting ads already chosen in this pod.
//! 4. A candidate asking to be first in the pod is only taken as the first ad.
//!
//! Every candidate not chosen gets the reason (explainability), and the unfilled remainder is reported so the
//! stitcher fills it with slate.
//!
//! [`build_pod`] chooses the most valuable pod under these rules ([`optimise`]: within each tier, the set
//! worth most, a candidate playing whichever of its durations fits); [`PodBuilder`] is the greedy form the
//! engine uses to know when its walk has seen enough.

mod bounds;
pub(crate) mod items;
pub(crate) mod optimise;
mod slots;

pub use optimise::{NODES, PER_TIER};

use serde::{Deserialize, Serialize};

/// The slots of a pod an ad accepts (position-in-pod targeting): as the only ad, first of several, last of
/// several, or in between.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Positions(pub u8);

impl Positions {
    /// The only ad of the pod (first and last at once).
    pub const ALONE: Positions = Positions(1);
    /// First of several.
    pub const FIRST: Positions = Positions(2);
    /// Last of several.
    pub const LAST: Positions = Positions(4);
    /// Neither first nor last.
    pub const MIDDLE: Positions = Positions(8);
    /// Any slot.
    pub const ANY: Positions = Positions(15);

    /// Whether slot `slot` of a pod of `n` ads is accepted.
    pub fn allows(self, slot: usize, n: usize) -> bool {
        let kind = if n <= 1 {
            Positions::ALONE
        } else if slot == 0 {
            Positions::FIRST
        } else if slot + 1 == n {
            Positions::LAST
        } else {
            Positions::MIDDLE
        };
        self.0 & kind.0 != 0
    }
}

impl Default for Positions {
    fn default() -> Self {
        Positions::ANY
    }
}

/// Priority tiers, highest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// Sponsorship: owns its placements.
    Sponsorship,
    /// Guaranteed (reserved) delivery.
    Guaranteed,
    /// Standard (non-guaranteed direct).
    Standard,
    /// Programmatic demand on a private marketplace deal (OpenRTB `dealid`): ahead of the open auction, as
    /// deals are negotiated priority.
    PrivateMarketplace,
    /// Programmatic (auctioned) demand.
    Programmatic,
    /// House ads and promos.
    House,
}

/// One eligible ad: already targeted, paced and approved; the pod builder applies the pod-level rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// Caller's id of the candidate (e.g. line item + creative).
    pub id: String,
    /// Its tier.
    pub tier: Tier,
    /// Value within the tier (higher first): urgency for guaranteed, CPM for auctions.
    pub value: f64,
    /// Creative duration in milliseconds.
    pub duration_ms: u32,
    /// Advertiser: one ad per advertiser per pod.
    pub advertiser: String,
    /// Competitive categories (e.g. IAB "auto", "beer"): no two ads of a pod share one.
    pub categories: Vec<String>,
    /// Frequency-cap group (e.g. the line item) and how many more ads of it this viewer may see.
    pub cap: Option<(String, u32)>,
    /// Only as the first ad of the pod.
    pub first_in_pod: bool,
    /// Other durations it can play (another creative of the line item), less preferred than `duration_ms`.
    #[serde(default)]
    pub alternatives_ms: Vec<u32>,
    /// The slots it accepts.
    #[serde(default)]
    pub positions: Positions,
}

/// The break to fill.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PodRules {
    /// Break length in milliseconds.
    pub duration_ms: u32,
    /// How far the ads may run past the break (absorbs rounding of creative durations).
    pub tolerance_ms: u32,
    /// Most ads in one pod.
    pub max_ads: usize,
    /// At most one ad per advertiser (competitive categories are always kept apart).
    pub one_per_advertiser: bool,
}

/// Why a candidate was not chosen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "reason")]
pub enum Rejection {
    /// Longer than the time left.
    Duration {
        /// Milliseconds left when it was considered.
        left_ms: u32,
    },
    /// The pod was full.
    MaxAds,
    /// Another ad of the same advertiser is in the pod.
    SameAdvertiser {
        /// The ad already chosen.
        with: String,
    },
    /// Another ad shares a competitive category.
    CompetitiveSeparation {
        /// The category.
        category: String,
        /// The ad already chosen.
        with: String,
    },
    /// The viewer's frequency cap for its group is reached (including ads chosen in this pod).
    FrequencyCap {
        /// The cap group.
        group: String,
    },
    /// It must be first and the pod already had an ad.
    NotFirst,
    /// No slot it accepts (position-in-pod targeting) is free.
    Position,
    /// It fits, but a combination worth more was chosen (e.g. two 30 s ads over one 45 s ad and slate).
    Outvalued,
    /// Its advertiser or category was in the viewer's previous break (separation across breaks).
    PreviousBreak {
        /// The advertiser or category.
        with: String,
    },
}

/// The decided pod.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pod {
    /// Chosen candidates' indexes, in play order.
    pub chosen: Vec<usize>,
    /// The duration each chosen candidate plays, in play order.
    pub durations_ms: Vec<u32>,
    /// Milliseconds of ads.
    pub filled_ms: u32,
    /// Milliseconds left for slate (0 when the ads fill or overrun within tolerance).
    pub unfilled_ms: u32,
    /// Every candidate not chosen, with why.
    pub rejected: Vec<(usize, Rejection)>,
}

/// A pod being filled: candidates are offered in rank order and each is taken or refused with its reason. The
/// engine uses it directly to stop as soon as the pod is full; [`build_pod`] ranks a candidate list and offers
/// them all.
#[derive(Debug, Clone)]
pub struct PodBuilder {
    rules: PodRules,
    limit: u32,
    filled: u32,
    chosen: Vec<usize>,
    /// Advertiser and categories of chosen ads, with the id of the ad that brought them.
    advertisers: Vec<(String, String)>,
    categories: Vec<(String, String)>,
    caps_used: Vec<(String, u32)>,
}

impl PodBuilder {
    /// An empty pod for `rules`.
    pub fn new(rules: PodRules) -> Self {
        PodBuilder {
            limit: rules.duration_ms.saturating_add(rules.tolerance_ms),
            rules,
            filled: 0,
            chosen: Vec::new(),
            advertisers: Vec::new(),
            categories: Vec::new(),
            caps_used: Vec::new(),
        }
    }

    /// Whether no candidate of at least `shortest_ms` could still be taken.
    pub fn is_full(&self, shortest_ms: u32) -> bool {
        self.chosen.len() >= self.rules.max_ads
            || self.filled.saturating_add(shortest_ms) > self.limit
    }

    /// Offers candidate `index`: taken (`Ok`) or refused with the reason.
    pub fn offer(&mut self, index: usize, c: &Candidate) -> Result<(), Rejection> {
        if self.chosen.len() >= self.rules.max_ads {
            return Err(Rejection::MaxAds);
        }
        if self.filled.saturating_add(c.duration_ms) > self.limit {
            return Err(Rejection::Duration {
                left_ms: self.rules.duration_ms.saturating_sub(self.filled),
            });
        }
        if c.first_in_pod && !self.chosen.is_empty() {
            return Err(Rejection::NotFirst);
        }
        if self.rules.one_per_advertiser
            && let Some((_, with)) = self.advertisers.iter().find(|(a, _)| *a == c.advertiser)
        {
            return Err(Rejection::SameAdvertiser { with: with.clone() });
        }
        if let Some((category, with)) = c
            .categories
            .iter()
            .find_map(|cat| self.categories.iter().find(|(k, _)| k == cat))
        {
            return Err(Rejection::CompetitiveSeparation {
                category: category.clone(),
                with: with.clone(),
            });
        }
        if let Some((group, left)) = &c.cap {
            let used = self
                .caps_used
                .iter()
                .find(|(g, _)| g == group)
                .map_or(0, |(_, n)| *n);
            if used >= *left {
                return Err(Rejection::FrequencyCap {
                    group: group.clone(),
                });
            }
            match self.caps_used.iter_mut().find(|(g, _)| g == group) {
                Some((_, n)) => *n += 1,
                None => self.caps_used.push((group.clone(), 1)),
            }
        }
        self.filled += c.duration_ms;
        self.advertisers.push((c.advertiser.clone(), c.id.clone()));
        self.categories
            .extend(c.categories.iter().map(|k| (k.clone(), c.id.clone())));
        self.chosen.push(index);
        Ok(())
    }

    /// The pod, with the rejections collected by the caller.
    pub fn finish(self, mut rejected: Vec<(usize, Rejection)>) -> Pod {
        rejected.sort_by_key(|(i, _)| *i);
        Pod {
            durations_ms: Vec::new(),
            unfilled_ms: self.rules.duration_ms.saturating_sub(self.filled),
            filled_ms: self.filled,
            chosen: self.chosen,
            rejected,
        }
    }
}

/// The order candidates are considered in: tier, value (higher first), the longer ad, then index.
pub fn rank_order(candidates: &[Candidate]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (&candidates[a], &candidates[b]);
        x.tier
            .cmp(&y.tier)
            .then(y.value.total_cmp(&x.value))
            .then(y.duration_ms.cmp(&x.duration_ms))
            .then(a.cmp(&b))
    });
    order
}

/// Builds the most valuable pod for `rules` from `candidates` (see [`optimise`] for the objective).
pub fn build_pod(candidates: &[Candidate], rules: &PodRules) -> Pod {
    let order = rank_order(candidates);
    let picks = optimise(candidates, &order, rules);
    finish(candidates, rules, &picks)
}

/// The picks of [`optimise`] candidates in `order` (rank order), in play order with their durations.
pub fn optimise(candidates: &[Candidate], order: &[usize], rules: &PodRules) -> Vec<(usize, u32)> {
    optimise::optimise(candidates, order, rules)
}

/// The pod of `picks`, every other candidate with the first rule that kept it out of that pod.
pub fn finish(candidates: &[Candidate], rules: &PodRules, picks: &[(usize, u32)]) -> Pod {
    let filled: u32 = picks.iter().map(|p| p.1).sum();
    let rejected = (0..candidates.len())
        .filter(|i| picks.iter().all(|p| p.0 != *i))
        .map(|i| (i, why_not(candidates, rules, picks, i)))
        .collect();
    Pod {
        chosen: picks.iter().map(|p| p.0).collect(),
        durations_ms: picks.iter().map(|p| p.1).collect(),
        filled_ms: filled,
        unfilled_ms: rules.duration_ms.saturating_sub(filled),
        rejected,
    }
}

/// Why candidate `i` is not in the pod of `picks`: a conflict with an ad in it (advertiser, category,
/// cap) first, as that keeps it out whatever the room, then the room, then the slots, else its value.
pub fn why_not(
    candidates: &[Candidate],
    rules: &PodRules,
    picks: &[(usize, u32)],
    i: usize,
) -> Rejection {
    let c = &candidates[i];
    let id = |k: usize| candidates[k].id.clone();
    let used: u32 = picks.iter().map(|p| p.1).sum();
    let limit = rules.duration_ms.saturating_add(rules.tolerance_ms);
    let shortest = c
        .alternatives_ms
        .iter()
        .fold(c.duration_ms, |a, &b| a.min(b));
    if rules.one_per_advertiser
        && let Some(&(k, _)) = picks
            .iter()
            .find(|p| candidates[p.0].advertiser == c.advertiser)
    {
        return Rejection::SameAdvertiser { with: id(k) };
    }
    for &(k, _) in picks {
        if let Some(category) = c
            .categories
            .iter()
            .find(|x| candidates[k].categories.contains(x))
        {
            return Rejection::CompetitiveSeparation {
                category: category.clone(),
                with: id(k),
            };
        }
    }
    if let Some((group, left)) = &c.cap {
        let n = picks
            .iter()
            .filter(|p| {
                candidates[p.0]
                    .cap
                    .as_ref()
                    .is_some_and(|(g, _)| g == group)
            })
            .count();
        if n as u32 >= *left {
            return Rejection::FrequencyCap {
                group: group.clone(),
            };
        }
    }
    if picks.len() >= rules.max_ads {
        return Rejection::MaxAds;
    }
    if used.saturating_add(shortest) > limit {
        return Rejection::Duration {
            left_ms: rules.duration_ms.saturating_sub(used),
        };
    }
    if c.first_in_pod && !picks.is_empty() {
        return Rejection::NotFirst;
    }
    let mut with: Vec<(usize, u32)> = picks.to_vec();
    with.push((i, shortest));
    if optimise::arrange(candidates, &with).is_none() {
        return Rejection::Position;
    }
    Rejection::Outvalued
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ad(
        id: &str,
        tier: Tier,
        value: f64,
        secs: u32,
        advertiser: &str,
        categories: &[&str],
    ) -> Candidate {
        Candidate {
            id: id.into(),
            tier,
            value,
            duration_ms: secs * 1000,
            advertiser: advertiser.into(),
            categories: categories.iter().map(|c| (*c).to_owned()).collect(),
            cap: None,
            first_in_pod: false,
            alternatives_ms: Vec::new(),
            positions: Positions::ANY,
        }
    }

    fn rules(secs: u32, tolerance_ms: u32, max_ads: usize) -> PodRules {
        PodRules {
            duration_ms: secs * 1000,
            tolerance_ms,
            max_ads,
            one_per_advertiser: true,
        }
    }

    #[test]
    fn two_thirty_second_ads_worth_twenty_beat_one_forty_five_worth_thirty_and_slate() {
        let candidates = vec![
            ad("big", Tier::Standard, 30.0, 45, "a", &[]),
            ad("one", Tier::Standard, 20.0, 30, "b", &[]),
            ad("two", Tier::Standard, 20.0, 30, "c", &[]),
        ];
        let pod = build_pod(&candidates, &rules(60, 0, 6));
        assert_eq!(pod.chosen, vec![1, 2]);
        assert_eq!(pod.unfilled_ms, 0);
        assert_eq!(pod.rejected, vec![(0, Rejection::Duration { left_ms: 0 })]);
    }

    #[test]
    fn with_ten_seconds_left_a_line_items_ten_second_creative_is_tried() {
        let mut sponsor = ad("sponsor", Tier::Sponsorship, 50.0, 50, "s", &[]);
        let mut other = ad("other", Tier::Standard, 20.0, 30, "o", &[]);
        other.alternatives_ms = vec![15_000, 10_000];
        sponsor.alternatives_ms = vec![];
        let pod = build_pod(&[sponsor, other], &rules(60, 0, 6));
        assert_eq!(pod.chosen, vec![0, 1]);
        assert_eq!(pod.durations_ms, vec![50_000, 10_000]);
        assert_eq!(pod.unfilled_ms, 0);
    }

    #[test]
    fn a_last_slot_ad_plays_last_and_one_ad_per_advertiser_is_a_setting() {
        let mut closer = ad("closer", Tier::Sponsorship, 50.0, 10, "x", &[]);
        closer.positions = Positions(Positions::ALONE.0 | Positions::LAST.0);
        let first = ad("first", Tier::Guaranteed, 1.0, 20, "x", &[]);
        let second = ad("second", Tier::Guaranteed, 1.0, 20, "y", &[]);
        let pod = build_pod(
            &[closer.clone(), first.clone(), second.clone()],
            &rules(60, 0, 6),
        );
        assert_eq!(
            pod.chosen,
            vec![2, 0],
            "one per advertiser: x's other ad stays out"
        );
        let mut allow = rules(60, 0, 6);
        allow.one_per_advertiser = false;
        let pod = build_pod(&[closer, first, second], &allow);
        assert_eq!(pod.chosen.len(), 3);
        assert_eq!(pod.chosen.last(), Some(&0), "the closer plays last");
    }

    #[test]
    fn a_sponsor_goes_first_then_value_then_slate_for_the_rest() {
        let candidates = vec![
            ad("house", Tier::House, 1.0, 15, "us", &[]),
            ad("rtb-car", Tier::Programmatic, 40.0, 30, "carco", &["auto"]),
            ad(
                "sponsor-beer",
                Tier::Sponsorship,
                0.0,
                15,
                "brewer",
                &["beer"],
            ),
            ad("other-beer", Tier::Guaranteed, 30.0, 15, "rival", &["beer"]),
            ad("g-bank", Tier::Guaranteed, 20.0, 30, "bank", &["finance"]),
            ad("g-phone", Tier::Guaranteed, 25.0, 15, "phoneco", &["telco"]),
        ];
        let pod = build_pod(&candidates, &rules(60, 500, 4));
        let ids: Vec<&str> = pod
            .chosen
            .iter()
            .map(|&i| candidates[i].id.as_str())
            .collect();
        assert_eq!(ids, ["sponsor-beer", "g-phone", "g-bank"]);
        assert_eq!(pod.filled_ms, 60_000);
        assert_eq!(pod.unfilled_ms, 0);
        let why = |id: &str| {
            let i = candidates
                .iter()
                .position(|c| c.id == id)
                .unwrap_or(usize::MAX);
            pod.rejected
                .iter()
                .find(|(j, _)| *j == i)
                .map(|(_, r)| r.clone())
        };
        assert_eq!(
            why("other-beer"),
            Some(Rejection::CompetitiveSeparation {
                category: "beer".into(),
                with: "sponsor-beer".into()
            })
        );
        assert_eq!(why("rtb-car"), Some(Rejection::Duration { left_ms: 0 }));
        assert_eq!(why("house"), Some(Rejection::Duration { left_ms: 0 }));
    }

    #[test]
    fn caps_count_ads_already_in_the_pod() {
        let mut a = ad("a1", Tier::Guaranteed, 9.0, 10, "x1", &[]);
        a.cap = Some(("li-1".into(), 1));
        let mut b = ad("a2", Tier::Guaranteed, 8.0, 10, "x2", &[]);
        b.cap = Some(("li-1".into(), 1));
        let mut c = ad("a3", Tier::Guaranteed, 7.0, 10, "x3", &[]);
        c.cap = Some(("li-2".into(), 0));
        let pod = build_pod(&[a, b, c], &rules(30, 0, 5));
        assert_eq!(pod.chosen, vec![0]);
        assert_eq!(pod.unfilled_ms, 20_000, "reported for slate");
        assert_eq!(
            pod.rejected[0],
            (
                1,
                Rejection::FrequencyCap {
                    group: "li-1".into()
                }
            )
        );
        assert_eq!(
            pod.rejected[1],
            (
                2,
                Rejection::FrequencyCap {
                    group: "li-2".into()
                }
            )
        );
    }
}
