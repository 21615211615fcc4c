//! The direct step of a hybrid decision: what direct-sold demand (every tier above house) takes of the break,
//! which sizes the auction, and which third-party tags to fetch.

use chrono::{DateTime, Utc};
use interlude_stitch::PodRequest;

use super::rank::Assessed;
use super::{DirectDecision, Engine};
use crate::pod::{PodBuilder, PodRules};
use crate::targeting::Facts;

impl Engine {
    /// The direct-sold part of the pod for `request` from `matched` line items (in rank order).
    pub(super) fn direct(
        &self,
        request: &PodRequest,
        facts: &Facts,
        matched: &[usize],
        now: DateTime<Utc>,
    ) -> DirectDecision {
        let walk = self.walk(request, facts, now, &[], true);
        let mut direct = DirectDecision {
            open_ms: 0,
            ads_left: 0,
            advertisers: Vec::new(),
            blocked_categories: walk.excluded.clone(),
            tags: Vec::new(),
        };
        let mut builder = PodBuilder::new(PodRules {
            duration_ms: walk.duration_ms,
            tolerance_ms: self.tolerance_ms,
            max_ads: self.max_ads,
        });
        let mut chosen = 0;
        for offer in self.offers(matched, &[]) {
            if builder.is_full(self.shortest_ms) {
                break;
            }
            match self.assess(&walk, offer) {
                Assessed::Skip | Assessed::Out(_) => {}
                Assessed::Tags(tags) => direct.tags.extend(tags),
                Assessed::Candidate(candidate, _) => {
                    if builder.offer(chosen, &candidate).is_ok() {
                        chosen += 1;
                        direct.advertisers.push(candidate.advertiser);
                        direct.blocked_categories.extend(candidate.categories);
                    }
                }
            }
        }
        direct.open_ms = builder.finish(Vec::new()).unfilled_ms;
        direct.ads_left = self.max_ads.saturating_sub(chosen);
        direct
    }
}
