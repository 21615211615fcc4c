//! The candidate walk: matched line items and external ads in the order the pod considers them, each assessed
//! (holds, flight, exclusions, a servable creative, pacing, caps) into a verdict or a pod candidate. The direct
//! step and the final fill both consume this walk.

use chrono::{DateTime, TimeDelta, Utc};
use interlude_stitch::PodRequest;

use super::prepare::{Prepared, draw};
use super::{Engine, Holds, TagRequest, Verdict};
use crate::catalog::{Catalog, Creative};
use crate::external::ExternalAd;
use crate::pacing::Pacer;
use crate::pod::{Candidate, Tier};
use crate::targeting::Facts;

/// What a decision offers the pod: catalog line items, and the caller's external ads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Offer {
    Line(usize),
    External(usize),
}

/// The order candidates are offered in: tier; within guaranteed, urgency (most behind schedule first); within
/// other tiers, CPM; then the longest creative; then catalog order.
pub(super) struct Ranking {
    /// Each line item's position.
    pub(super) rank: Vec<usize>,
    /// Line items in rank order (the inverse of `rank`).
    pub(super) order: Vec<usize>,
}

impl Ranking {
    pub(super) fn new(catalog: &Catalog, prepared: &[Prepared], urgency: &[f64]) -> Ranking {
        let mut order: Vec<usize> = (0..catalog.line_items.len()).collect();
        let longest = |i: usize| {
            prepared
                .get(i)
                .and_then(|p| p.creatives.first())
                .map_or(0, |c| c.1)
        };
        let value = |i: usize| {
            let l = &catalog.line_items[i];
            if l.tier == Tier::Guaranteed {
                urgency.get(i).copied().unwrap_or(1.0)
            } else {
                l.cpm
            }
        };
        order.sort_by(|&a, &b| {
            let (x, y) = (&catalog.line_items[a], &catalog.line_items[b]);
            x.tier
                .cmp(&y.tier)
                .then(value(b).total_cmp(&value(a)))
                .then(longest(b).cmp(&longest(a)))
                .then(a.cmp(&b))
        });
        let mut rank = vec![0; order.len()];
        for (position, &i) in order.iter().enumerate() {
            rank[i] = position;
        }
        Ranking { rank, order }
    }
}

/// One offer's assessment.
pub(super) enum Assessed<'a> {
    /// Not this step's business (house in the direct step, a line item represented by its resolved tag).
    Skip,
    /// Left out before the pod rules, with why.
    Out(Verdict),
    /// Eligible: the pod rules decide. The creative is `None` for external ads.
    Candidate(Candidate, Option<&'a Creative>),
    /// A line item served only by third-party tags that passed pacing and caps: fetch them.
    Tags(Vec<TagRequest>),
}

/// Everything the walk needs that is fixed for one decision.
pub(super) struct Walk<'a> {
    pub(super) request: &'a PodRequest,
    pub(super) now: DateTime<Utc>,
    pub(super) duration_ms: u32,
    pub(super) excluded: Vec<String>,
    pub(super) external: &'a [ExternalAd],
    pub(super) holds: std::sync::Arc<Holds>,
    pub(super) pacers: Option<std::sync::RwLockReadGuard<'a, Vec<Pacer>>>,
    /// The direct step: house waits for the auction, tags are to be fetched.
    pub(super) direct: bool,
}

impl Walk<'_> {
    fn exclusion(&self, categories: &[String]) -> Option<Verdict> {
        categories
            .iter()
            .find(|c| self.excluded.contains(c))
            .map(|c| Verdict::ContentExclusion {
                category: c.clone(),
            })
    }
}

impl Engine {
    /// Line items whose targeting matches, in the order the pod considers them.
    pub(super) fn matching_in_rank_order(&self, facts: &Facts) -> Vec<usize> {
        // The pod takes candidates in rank order, so examining them in that order lets the decision stop as soon
        // as the pod is full instead of weighing every eligible line item. Marking ranks and walking them is
        // linear in the catalog, cheaper than sorting thousands of matches.
        let Ok(ranking) = self.ranking.read() else {
            return Vec::new();
        };
        let mut by_rank = vec![false; ranking.order.len()];
        for i in self.index.matching(facts) {
            if let Some(&r) = ranking.rank.get(i) {
                by_rank[r] = true;
            }
        }
        by_rank
            .iter()
            .zip(&ranking.order)
            .filter(|(m, _)| **m)
            .map(|(_, &i)| i)
            .collect()
    }

    /// Matched line items and external ads merged in the order the pod considers them: tier, then value, with
    /// a line item before an external ad of equal tier and value.
    pub(super) fn offers(&self, matched: &[usize], external: &[ExternalAd]) -> Vec<Offer> {
        if external.is_empty() {
            return matched.iter().map(|&i| Offer::Line(i)).collect();
        }
        let mut ext: Vec<usize> = (0..external.len()).collect();
        ext.sort_by(|&a, &b| {
            let (x, y) = (&external[a], &external[b]);
            x.tier
                .cmp(&y.tier)
                .then(y.value.total_cmp(&x.value))
                .then(y.duration_ms.cmp(&x.duration_ms))
                .then(a.cmp(&b))
        });
        let mut out = Vec::with_capacity(matched.len() + ext.len());
        let mut ext = ext.into_iter().peekable();
        for &i in matched {
            let l = &self.catalog.line_items[i];
            while let Some(&e) = ext.peek() {
                let x = &external[e];
                // Guaranteed line items are ranked by urgency, which external ads do not have: they follow the
                // tier's line items. Elsewhere value is CPM on both sides.
                let before = x.tier < l.tier
                    || (x.tier == l.tier && l.tier != Tier::Guaranteed && x.value > l.cpm);
                if before {
                    out.push(Offer::External(e));
                    ext.next();
                } else {
                    break;
                }
            }
            out.push(Offer::Line(i));
        }
        out.extend(ext.map(Offer::External));
        out
    }

    /// Categories the content excludes for this request.
    pub(super) fn excluded(&self, facts: &Facts) -> Vec<String> {
        self.exclusions
            .iter()
            .filter(|(when, _)| when.matches(facts))
            .flat_map(|(_, categories)| categories.iter().cloned())
            .collect()
    }

    /// The walk's fixed part for `request`.
    pub(super) fn walk<'a>(
        &'a self,
        request: &'a PodRequest,
        facts: &Facts,
        now: DateTime<Utc>,
        external: &'a [ExternalAd],
        direct: bool,
    ) -> Walk<'a> {
        Walk {
            request,
            now,
            duration_ms: request
                .duration_secs
                .map_or(0, |s| (s * 1000.0).round() as u32),
            excluded: self.excluded(facts),
            external,
            holds: self.holds(),
            pacers: self.pacers.read().ok(),
            direct,
        }
    }

    /// Assesses one offer.
    pub(super) fn assess<'a>(&'a self, w: &Walk<'_>, offer: Offer) -> Assessed<'a> {
        match offer {
            Offer::External(e) => {
                let Some(x) = w.external.get(e) else {
                    return Assessed::Skip;
                };
                let held = x
                    .line_item_id
                    .as_ref()
                    .is_some_and(|l| w.holds.line_items.contains(l))
                    || w.holds.advertisers.contains(&x.advertiser);
                if held {
                    return Assessed::Out(Verdict::Paused);
                }
                if let Some(v) = w.exclusion(&x.categories) {
                    return Assessed::Out(v);
                }
                Assessed::Candidate(
                    Candidate {
                        id: x.id.clone(),
                        tier: x.tier,
                        value: x.value,
                        duration_ms: x.duration_ms,
                        advertiser: x.advertiser.clone(),
                        categories: x.categories.clone(),
                        cap: None,
                        first_in_pod: false,
                    },
                    None,
                )
            }
            Offer::Line(i) => self.assess_line(w, i),
        }
    }

    fn assess_line<'a>(&'a self, w: &Walk<'_>, i: usize) -> Assessed<'a> {
        let (l, p) = (&self.catalog.line_items[i], &self.prepared[i]);
        if w.direct && l.tier == Tier::House {
            // House fills after the auction; the direct step sizes what the auction may sell.
            return Assessed::Skip;
        }
        if w.external
            .iter()
            .any(|x| x.line_item_id.as_deref() == Some(l.id.as_str()))
        {
            // Its resolved tag competes as an external ad and gets the verdict there.
            return Assessed::Skip;
        }
        if w.holds.line_items.contains(&l.id) || w.holds.advertisers.contains(&p.advertiser_id) {
            return Assessed::Out(Verdict::Paused);
        }
        if w.now < l.start || w.now >= l.end {
            return Assessed::Out(Verdict::OutOfFlight);
        }
        if let Some(v) = w.exclusion(&p.categories) {
            return Assessed::Out(v);
        }
        let Some((creative, creative_ms)) = self.servable(i, w.duration_ms) else {
            if p.tags.is_empty() {
                return Assessed::Out(Verdict::NoServableCreative);
            }
            if !w.direct {
                return Assessed::Out(Verdict::ThirdPartyUnavailable);
            }
            if self.admit(i, w).is_err() {
                return Assessed::Skip;
            }
            return Assessed::Tags(
                p.tags
                    .iter()
                    .filter_map(|&c| {
                        let c = self.catalog.creatives.get(c)?;
                        Some(TagRequest {
                            line_item_id: l.id.clone(),
                            creative_id: c.id.clone(),
                            tag: c.vast_tag.clone()?,
                        })
                    })
                    .collect(),
            );
        };
        if !w.direct
            && let Some(e) = self.eligible.get(i)
        {
            e.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let mut categories = p.categories.clone();
        categories.extend(creative.categories.iter().cloned());
        if let Some(v) = w.exclusion(&categories) {
            return Assessed::Out(v);
        }
        if let Err(v) = self.admit(i, w) {
            return Assessed::Out(v);
        }
        Assessed::Candidate(
            Candidate {
                id: l.id.clone(),
                tier: l.tier,
                value: l.cpm,
                duration_ms: creative_ms,
                advertiser: p.advertiser.clone(),
                categories,
                cap: None,
                first_in_pod: l.first_in_pod,
            },
            Some(creative),
        )
    }

    /// The longest servable creative of line item `i` that fits the break: fills the most.
    fn servable(&self, i: usize, duration_ms: u32) -> Option<(&Creative, u32)> {
        let limit = duration_ms.saturating_add(self.tolerance_ms);
        let &(c, ms) = self
            .prepared
            .get(i)?
            .creatives
            .iter()
            .find(|(_, ms)| *ms <= limit)?;
        Some((self.catalog.creatives.get(c)?, ms))
    }

    /// Pacing and caps for line item `i` and this viewer.
    fn admit(&self, i: usize, w: &Walk<'_>) -> Result<(), Verdict> {
        let id = &self.catalog.line_items[i].id;
        let probability = w
            .pacers
            .as_deref()
            .and_then(|p| p.get(i))
            .map_or(1.0, Pacer::probability);
        if draw(&w.request.session_id, id) >= probability {
            return Err(Verdict::PacedOut { probability });
        }
        // Frequency caps count a viewer across sessions by id: only with consent.
        let viewer = &w.request.viewer;
        if viewer.consent != Some(false)
            && viewer
                .viewer_id
                .as_deref()
                .is_some_and(|v| self.capped(i, v, w.now))
        {
            return Err(Verdict::Capped);
        }
        Ok(())
    }

    fn capped(&self, i: usize, viewer: &str, now: DateTime<Utc>) -> bool {
        let over = |caps: &[crate::catalog::FrequencyCap], line_items: &[usize]| {
            caps.iter().any(|cap| {
                let since = now - TimeDelta::hours(i64::from(cap.window_hours));
                let seen: u64 = line_items
                    .iter()
                    .filter_map(|&j| self.catalog.line_items.get(j))
                    .map(|li| self.counters.viewer_impressions(viewer, &li.id, since))
                    .sum();
                seen >= u64::from(cap.max)
            })
        };
        let (Some(l), Some(p)) = (self.catalog.line_items.get(i), self.prepared.get(i)) else {
            return false;
        };
        if over(&l.frequency_caps, &[i]) {
            return true;
        }
        p.campaign
            .and_then(|c| self.catalog.campaigns.get(c))
            .is_some_and(|c| over(&c.frequency_caps, &p.siblings))
    }
}
