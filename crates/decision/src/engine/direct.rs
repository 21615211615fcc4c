//! The direct step of a hybrid decision: what direct-sold demand (every tier above house) takes of the break,
//! which sizes the auction, and which third-party tags to fetch.

use chrono::{DateTime, Utc};
use interlude_stitch::PodRequest;

use super::plan::BreakPlan;
use super::{DirectDecision, Engine};
use crate::targeting::Facts;

impl Engine {
    /// The direct-sold part of the pod for `request` from the break `plan`.
    pub(super) fn direct(
        &self,
        plan: &BreakPlan,
        request: &PodRequest,
        facts: &Facts,
        now: DateTime<Utc>,
    ) -> DirectDecision {
        let walk = self.walk(plan, request, facts, now, &[], true);
        let mut direct = DirectDecision {
            open_ms: 0,
            ads_left: 0,
            advertisers: Vec::new(),
            blocked_categories: walk.excluded.clone(),
            tags: Vec::new(),
        };
        let (weighed, _, picks) = self.choose(&walk, false, &mut direct.tags);
        // Only sizing: the final step takes the allowance again for what it keeps.
        for &(c, _) in &picks {
            if let Some((super::rank::Offer::Line(_, position), _, _)) = weighed.get(c) {
                plan.give_back(*position);
            }
        }
        let filled: u32 = picks.iter().map(|p| p.1).sum();
        for &(c, _) in &picks {
            if let Some((_, candidate, _)) = weighed.get(c) {
                direct.advertisers.push(candidate.advertiser.clone());
                direct
                    .blocked_categories
                    .extend(candidate.categories.iter().cloned());
            }
        }
        direct.open_ms = walk.duration_ms.saturating_sub(filled);
        direct.ads_left = self.max_ads.saturating_sub(picks.len());
        direct
    }
}
