//! The final fill: candidates (catalog line items and the caller's external ads) walked in rank order until
//! the pod is full and a few more have been seen, the most valuable pod chosen among them
//! ([`crate::pod::optimise`]), each catalog ad taken against the break's allowance, and the chosen ones
//! turned into the stitcher's [`PodAd`]s.

use chrono::{DateTime, Utc};
use interlude_stitch::{CreativeRendition, Pod, PodAd, PodRequest};

use super::plan::BreakPlan;
use super::rank::{Assessed, Offer};
use super::rotation::CreativeOption;
use super::{Decision, Engine, Verdict};
use crate::external::ExternalAd;
use crate::pod::items::Items;
use crate::pod::optimise::{Scratch, optimise_items};
use crate::pod::{self, Candidate, PodBuilder, PodRules};
use crate::targeting::Facts;

/// Candidates weighed past the point where the greedy pod is full, per ad the pod may hold: room for the
/// knapsack to find a better combination without walking the whole catalog.
const EXTRA_PER_AD: usize = 2;

impl Engine {
    pub(super) fn rules(&self, duration_ms: u32) -> PodRules {
        PodRules {
            duration_ms,
            tolerance_ms: self.tolerance_ms,
            max_ads: self.max_ads,
            one_per_advertiser: self.config.one_ad_per_advertiser,
        }
    }

    /// Walks the offers and chooses the pod: the candidates weighed, the verdicts of the others, and the
    /// picks (candidate index, duration) in play order.
    #[allow(clippy::type_complexity)]
    pub(super) fn choose(
        &self,
        walk: &super::rank::Walk<'_>,
        explain: bool,
        tags: &mut Vec<super::TagRequest>,
    ) -> (
        Vec<(Offer, Candidate, Vec<CreativeOption>)>,
        Vec<(Offer, Verdict)>,
        Vec<(usize, u32)>,
    ) {
        let rules = self.rules(walk.duration_ms);
        let mut greedy = PodBuilder::new(rules);
        let shortest = walk
            .external
            .iter()
            .map(|e| e.duration_ms)
            .fold(self.shortest_ms, u32::min);
        let mut weighed: Vec<(Offer, Candidate, Vec<CreativeOption>)> = Vec::new();
        let mut verdicts: Vec<(Offer, Verdict)> = Vec::new();
        let mut extra: Option<usize> = None;
        for offer in self.offers(walk.plan, walk.facts, walk.external) {
            if !explain && extra.is_some_and(|n| n >= EXTRA_PER_AD * self.max_ads) {
                break;
            }
            match self.assess(walk, offer) {
                Assessed::Skip => {}
                Assessed::Tags(t) => tags.extend(t),
                Assessed::Out(v) => {
                    if explain {
                        verdicts.push((offer, v));
                    }
                }
                Assessed::Candidate(candidate, options) => {
                    let _ = greedy.offer(weighed.len(), &candidate);
                    if let Some(n) = extra.as_mut() {
                        *n += 1;
                    } else if greedy.is_full(shortest) {
                        extra = Some(0);
                    }
                    weighed.push((offer, candidate, options));
                }
            }
        }
        let candidates: Vec<Candidate> = weighed.iter().map(|w| w.1.clone()).collect();
        let mut items = Items::from_candidates(&candidates);
        // Offers arrive in rank order (tiers contiguous), the merge with external ads included.
        let order: Vec<usize> = (0..candidates.len()).collect();
        let mut scratch = Scratch::default();
        let mut picks = Vec::new();
        loop {
            optimise_items(&items, &order, &rules, &mut scratch, &mut picks);
            // Each catalog ad takes one impression of its line item's allowance for this break; one that
            // other viewers used up is withdrawn and the pod chosen again.
            let mut taken = Vec::new();
            let mut short = None;
            for &(c, _) in &picks {
                if let Offer::Line(_, position) = weighed[c].0 {
                    if walk.plan.take(position) {
                        taken.push(position);
                    } else {
                        short = Some(c);
                        break;
                    }
                }
            }
            let Some(c) = short else {
                return (weighed, verdicts, picks);
            };
            for position in taken {
                walk.plan.give_back(position);
            }
            // Out of reach from now on: no duration fits.
            items.withdraw(c);
            if explain {
                verdicts.push((weighed[c].0, Verdict::PacedOut { probability: 0.0 }));
            }
        }
    }

    /// Fills the pod for `request` from the break `plan` and `external` ads.
    pub(super) fn fill(
        &self,
        plan: &BreakPlan,
        request: &PodRequest,
        facts: &Facts,
        now: DateTime<Utc>,
        explain: bool,
        external: &[ExternalAd],
    ) -> Decision {
        let walk = self.walk(plan, request, facts, now, external, false);
        let (weighed, mut verdicts, picks) = self.choose(&walk, explain, &mut Vec::new());
        drop(walk);
        self.decisions
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut filled: u32 = 0;
        let mut ads: Vec<PodAd> = Vec::with_capacity(picks.len());
        for &(c, ms) in &picks {
            let Some((offer, _, options)) = weighed.get(c) else {
                continue;
            };
            let creative = options.iter().find(|o| o.1 == ms).map(|o| o.0);
            let Some(ad) = self.pod_ad(request, ads.len(), *offer, creative, external) else {
                continue;
            };
            if !self.reserve(&ad, request, now) {
                // Another node took the line item's last room first: slate rather than an overrun.
                continue;
            }
            filled += ms;
            ads.push(ad);
        }
        let explanation = if explain {
            let candidates: Vec<Candidate> = weighed.iter().map(|w| w.1.clone()).collect();
            let rules = self.rules(plan.key.duration_ms);
            for (c, (offer, _, _)) in weighed.iter().enumerate() {
                if verdicts.iter().any(|(o, _)| o == offer) {
                    continue;
                }
                let verdict = if picks.iter().any(|p| p.0 == c) {
                    Verdict::Chosen
                } else {
                    Verdict::Pod(pod::why_not(&candidates, &rules, &picks, c))
                };
                verdicts.push((*offer, verdict));
            }
            self.consent_explained(
                request,
                now,
                self.explanation(plan, facts, verdicts, external),
            )
        } else {
            Vec::new()
        };
        Decision {
            pod: Pod { ads },
            unfilled_ms: plan.key.duration_ms.saturating_sub(filled),
            explanation,
        }
    }

    /// Reserves a chosen catalog ad against its line item's goal (true without reservations, and for
    /// external ads, which are not the catalog's to count).
    fn reserve(&self, ad: &PodAd, request: &PodRequest, now: DateTime<Utc>) -> bool {
        let (Some(reservations), Some(id)) = (&self.reservations, &ad.line_item_id) else {
            return true;
        };
        let Some(l) = self
            .by_id
            .get(id)
            .and_then(|&i| self.catalog.line_items.get(i))
        else {
            return true;
        };
        let ttl = chrono::TimeDelta::seconds(i64::from(self.config.reservation_ttl_secs));
        reservations.reserve(
            crate::reservation::Reservation {
                ad_instance_id: ad.ad_instance_id.clone(),
                line_item_id: id.clone(),
                viewer_id: request.viewer.viewer_id.clone(),
                expires_at: now + ttl,
            },
            crate::catalog::Catalog::goal_impressions(l),
            now,
        )
    }

    /// The stitcher's form of a chosen ad in `slot`.
    fn pod_ad(
        &self,
        request: &PodRequest,
        slot: usize,
        offer: Offer,
        creative: Option<usize>,
        external: &[ExternalAd],
    ) -> Option<PodAd> {
        let ad_instance_id = format!("{}-{}-{slot}", request.session_id, request.break_id);
        Some(match offer {
            Offer::External(e) => PodAd {
                ad_instance_id,
                ..external.get(e)?.ad.clone()
            },
            Offer::Line(i, _) => {
                let l = self.catalog.line_items.get(i)?;
                let creative = self.catalog.creatives.get(creative?)?;
                PodAd {
                    ad_instance_id,
                    creative_id: creative.id.clone(),
                    campaign_id: Some(l.campaign.clone()),
                    line_item_id: Some(l.id.clone()),
                    duration_secs: creative.duration_secs,
                    renditions: creative
                        .renditions
                        .iter()
                        .map(|r| CreativeRendition {
                            bandwidth: r.bandwidth,
                            resolution: r.resolution.as_deref().and_then(parse_resolution),
                            playlist_url: r.playlist.clone(),
                        })
                        .collect(),
                    impression_urls: Vec::new(),
                    tracking_urls: Vec::new(),
                }
            }
        })
    }
}

fn parse_resolution(text: &str) -> Option<(u32, u32)> {
    let (w, h) = text.split_once(['x', 'X'])?;
    Some((w.trim().parse().ok()?, h.trim().parse().ok()?))
}
