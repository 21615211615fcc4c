//! The final fill: every candidate (catalog line items and the caller's external ads) offered to the pod in
//! rank order until it is full, then the chosen ones turned into the stitcher's [`PodAd`]s.

use chrono::{DateTime, Utc};
use interlude_stitch::{CreativeRendition, Pod, PodAd, PodRequest};

use super::rank::{Assessed, Offer};
use super::{Decision, Engine, Verdict};
use crate::catalog::Creative;
use crate::external::ExternalAd;
use crate::pod::{PodBuilder, PodRules};
use crate::targeting::Facts;

impl Engine {
    /// Fills the pod for `request` from `matched` line items (in rank order) and `external` ads.
    pub(super) fn fill(
        &self,
        request: &PodRequest,
        facts: &Facts,
        matched: &[usize],
        now: DateTime<Utc>,
        explain: bool,
        external: &[ExternalAd],
    ) -> Decision {
        let walk = self.walk(request, facts, now, external, false);
        let mut verdicts: Vec<(Offer, Verdict)> = Vec::new();
        let mut chosen: Vec<(Offer, Option<&Creative>)> = Vec::new();
        let mut builder = PodBuilder::new(PodRules {
            duration_ms: walk.duration_ms,
            tolerance_ms: self.tolerance_ms,
            max_ads: self.max_ads,
        });
        let shortest = external
            .iter()
            .map(|e| e.duration_ms)
            .fold(self.shortest_ms, u32::min);
        for offer in self.offers(matched, external) {
            if !explain && builder.is_full(shortest) {
                break;
            }
            let verdict = match self.assess(&walk, offer) {
                Assessed::Skip | Assessed::Tags(_) => continue,
                Assessed::Out(v) => v,
                Assessed::Candidate(candidate, creative) => {
                    match builder.offer(chosen.len(), &candidate) {
                        Ok(()) => {
                            chosen.push((offer, creative));
                            Verdict::Chosen
                        }
                        Err(why) => Verdict::Pod(why),
                    }
                }
            };
            if explain {
                verdicts.push((offer, verdict));
            }
        }
        drop(walk);
        let unfilled_ms = builder.finish(Vec::new()).unfilled_ms;
        let ads = chosen
            .iter()
            .enumerate()
            .filter_map(|(slot, &(offer, creative))| {
                self.pod_ad(request, slot, offer, creative, external)
            })
            .collect();
        let explanation = if explain {
            self.consent_explained(request, now, self.explanation(verdicts, external))
        } else {
            Vec::new()
        };
        Decision {
            pod: Pod { ads },
            unfilled_ms,
            explanation,
        }
    }

    /// The stitcher's form of a chosen ad in `slot`.
    fn pod_ad(
        &self,
        request: &PodRequest,
        slot: usize,
        offer: Offer,
        creative: Option<&Creative>,
        external: &[ExternalAd],
    ) -> Option<PodAd> {
        let ad_instance_id = format!("{}-{}-{slot}", request.session_id, request.break_id);
        Some(match offer {
            Offer::External(e) => PodAd {
                ad_instance_id,
                ..external.get(e)?.ad.clone()
            },
            Offer::Line(i) => {
                let (l, creative) = (self.catalog.line_items.get(i)?, creative?);
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
