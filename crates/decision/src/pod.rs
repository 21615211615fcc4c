//! Pod construction: fill a break of a given length from eligible candidates, tier by tier.
//!
//! Rules, in the order they bind:
//! 1. Tier order is strict: sponsorship, then guaranteed, standard, programmatic, house. A candidate of a higher
//!    tier that fits (time left, ads left, separation, caps) is always taken before any lower-tier one is
//!    considered (the industry's priority model: a sold promise outranks any price).
//! 2. Within a tier, higher value first (for guaranteed: urgency from pacing; for auctions: price), then the
//!    longer ad (fills more of the break), then catalog order for determinism.
//! 3. The pod never runs past the break by more than the tolerance, never holds more than `max_ads`, never holds
//!    two ads of one advertiser or sharing a competitive category, and never exceeds a candidate's remaining
//!    frequency cap — counting ads already chosen in this pod.
//! 4. A candidate asking to be first in the pod is only taken as the first ad.
//!
//! Every candidate not chosen gets the reason (explainability), and the unfilled remainder is reported so the
//! stitcher fills it with slate.

use serde::{Deserialize, Serialize};

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
}

/// The decided pod.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pod {
    /// Chosen candidates' indexes, in play order.
    pub chosen: Vec<usize>,
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
        if let Some((_, with)) = self.advertisers.iter().find(|(a, _)| *a == c.advertiser) {
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
            unfilled_ms: self.rules.duration_ms.saturating_sub(self.filled),
            filled_ms: self.filled,
            chosen: self.chosen,
            rejected,
        }
    }
}

/// Builds the pod for `rules` from `candidates`.
pub fn build_pod(candidates: &[Candidate], rules: &PodRules) -> Pod {
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (&candidates[a], &candidates[b]);
        x.tier
            .cmp(&y.tier)
            .then(y.value.total_cmp(&x.value))
            .then(y.duration_ms.cmp(&x.duration_ms))
            .then(a.cmp(&b))
    });
    let mut builder = PodBuilder::new(*rules);
    let mut rejected = Vec::new();
    for i in order {
        if let Err(r) = builder.offer(i, &candidates[i]) {
            rejected.push((i, r));
        }
    }
    builder.finish(rejected)
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
        }
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
        let rules = PodRules {
            duration_ms: 60_000,
            tolerance_ms: 500,
            max_ads: 4,
        };
        let pod = build_pod(&candidates, &rules);
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
        let rules = PodRules {
            duration_ms: 30_000,
            tolerance_ms: 0,
            max_ads: 5,
        };
        let pod = build_pod(&[a, b, c], &rules);
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
