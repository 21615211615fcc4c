//! The final fill: the pod chosen ([`super::choice`]), each catalog ad reserved against its goal, and the
//! chosen ones turned into the stitcher's [`PodAd`]s.

use crate::{CreativeRendition, Pod, PodAd, PodRequest};
use chrono::{DateTime, Utc};

use super::caps::CapView;
use super::choice::{Choice, with_choice};
use super::plan::BreakPlan;
use super::rank::Offer;
use super::rank::Walk;
use super::{Decision, Engine, Verdict};
use crate::external::ExternalAd;
use crate::pod::{self, Candidate, PodRules};
use crate::reservation::Reservation;
use crate::targeting::Facts;

impl Engine {
    pub(super) fn rules(&self, duration_ms: u32) -> PodRules {
        PodRules {
            duration_ms,
            tolerance_ms: self.tolerance_ms,
            max_ads: self.max_ads,
            one_per_advertiser: self.config.one_ad_per_advertiser,
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
        with_choice(|c| {
            self.choose(&walk, explain, &mut Vec::new(), c);
            self.decisions
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let (ads, filled) = loop {
                // An explained decision is a debug answer, never served: it reserves nothing.
                let reserving = !explain;
                match self.reserve_pod(&walk, request, external, c, now, reserving) {
                    Ok(pod) => break pod,
                    // Another decision (another node, another session of the viewer) took the room of a
                    // goal or cap first: the pod is chosen again without that candidate.
                    Err((k, verdict)) => self.withdraw(&walk, c, k, explain.then_some(verdict)),
                }
            };
            let explanation = if explain {
                self.explain_choice(plan, request, facts, now, external, c)
            } else {
                Vec::new()
            };
            Decision {
                pod: Pod { ads },
                unfilled_ms: plan.key.duration_ms.saturating_sub(filled),
                explanation,
            }
        })
    }

    /// The pod of `c`'s picks, each catalog ad reserved (all or none, see
    /// [`crate::reservation::Reservations::reserve_pod`]), and the milliseconds it fills; or the weighed
    /// candidate whose reservation was refused and the verdict to explain it by.
    fn reserve_pod(
        &self,
        walk: &Walk<'_>,
        request: &PodRequest,
        external: &[ExternalAd],
        c: &Choice,
        now: DateTime<Utc>,
        reserving: bool,
    ) -> Result<(Vec<PodAd>, u32), (usize, Verdict)> {
        let mut filled: u32 = 0;
        let mut ads: Vec<PodAd> = Vec::with_capacity(c.picks.len());
        // (weighed candidate, reservation, goal) of each catalog ad.
        let mut wanted: Vec<(usize, Reservation, u64)> = Vec::new();
        for &(k, ms) in &c.picks {
            let Some(weighed) = c.weighed.get(k) else {
                continue;
            };
            let creative = c.options(k).iter().find(|o| o.1 == ms).map(|o| o.0);
            let Some(ad) = self.pod_ad(request, ads.len(), weighed.offer, creative, external)
            else {
                continue;
            };
            if reserving
                && let Some((r, goal)) = self.reservation(&ad, creative, &walk.caps, request, now)
            {
                wanted.push((k, r, goal));
            }
            filled += ms;
            ads.push(ad);
        }
        let Some(reservations) = self.reservations.as_ref().filter(|_| !wanted.is_empty()) else {
            return Ok((ads, filled));
        };
        let pod: Vec<(Reservation, u64)> = wanted
            .iter()
            .map(|(_, r, goal)| (r.clone(), *goal))
            .collect();
        match reservations.reserve_pod(&pod, now) {
            None => Ok((ads, filled)),
            Some(i) => {
                let Some((k, r, _)) = wanted.get(i) else {
                    return Ok((ads, filled));
                };
                let verdict = if r.caps.is_empty() {
                    Verdict::PacedOut { probability: 0.0 }
                } else {
                    Verdict::Capped
                };
                Err((*k, verdict))
            }
        }
    }

    /// Every line item's verdict for the decision in `c`: the walk's, the pod's for those weighed.
    fn explain_choice(
        &self,
        plan: &BreakPlan,
        request: &PodRequest,
        facts: &Facts,
        now: DateTime<Utc>,
        external: &[ExternalAd],
        c: &Choice,
    ) -> Vec<(String, Verdict)> {
        let candidates: Vec<Candidate> = c
            .weighed
            .iter()
            .enumerate()
            .filter_map(|(k, w)| self.candidate(plan, external, w, c.options(k)))
            .collect();
        let rules = self.rules(plan.key.duration_ms);
        let mut verdicts = c.verdicts.clone();
        for (k, weighed) in c.weighed.iter().enumerate() {
            if verdicts.iter().any(|(o, _)| *o == weighed.offer) {
                continue;
            }
            let verdict = if c.picks.iter().any(|p| p.0 == k) {
                Verdict::Chosen
            } else {
                Verdict::Pod(pod::why_not(&candidates, &rules, &c.picks, k))
            };
            verdicts.push((weighed.offer, verdict));
        }
        self.consent_explained(
            request,
            now,
            self.explanation(plan, facts, verdicts, external),
        )
    }

    /// The reservation of a chosen ad of a line item against its goal and the viewer's caps, with the goal
    /// (none without reservations, and for external ads of no line item, which are not the catalog's to
    /// count). The goal passed is the line item's less what the live counters show delivered: the store
    /// guards the rest with what it holds pending and settling (see [`crate::reservation`]).
    fn reservation(
        &self,
        ad: &PodAd,
        creative: Option<usize>,
        caps: &CapView<'_>,
        request: &PodRequest,
        now: DateTime<Utc>,
    ) -> Option<(Reservation, u64)> {
        self.reservations.as_ref()?;
        let id = ad.line_item_id.as_ref()?;
        let &i = self.by_id.get(id)?;
        let l = self.catalog.line_items.get(i)?;
        let ttl = chrono::TimeDelta::seconds(i64::from(self.config.reservation_ttl_secs));
        let goal = crate::catalog::Catalog::goal_impressions(l)
            .saturating_sub(self.counters.delivered(&l.id, l.start));
        let caps = match &request.viewer.viewer_id {
            Some(_) => self.cap_claims(caps, i, creative, &request.session_id, now),
            None => Vec::new(),
        };
        Some((
            Reservation {
                ad_instance_id: ad.ad_instance_id.clone(),
                line_item_id: id.clone(),
                viewer_id: request.viewer.viewer_id.clone(),
                expires_at: now + ttl,
                caps,
            },
            goal,
        ))
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
                    bid: None,
                    source: creative.conditioning_source().map(Box::new),
                }
            }
        })
    }
}

fn parse_resolution(text: &str) -> Option<(u32, u32)> {
    let (w, h) = text.split_once(['x', 'X'])?;
    Some((w.trim().parse().ok()?, h.trim().parse().ok()?))
}
