//! The direct step of a hybrid decision: what direct-sold demand (every tier above house) takes of the break,
//! which sizes the auction, and which third-party tags to fetch.

use crate::PodRequest;
use chrono::{DateTime, Utc};

use super::choice::with_choice;
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
        let (filled, count) = with_choice(|c| {
            self.choose(&walk, false, &mut direct.tags, c);
            // Only sizing: the final step takes the allowance again for what it keeps.
            for &(k, _) in &c.picks {
                if let Some(super::rank::Offer::Line(_, position)) =
                    c.weighed.get(k).map(|w| w.offer)
                {
                    plan.give_back(position);
                }
            }
            for &(k, _) in &c.picks {
                if let Some(candidate) = c
                    .weighed
                    .get(k)
                    .and_then(|w| self.candidate(plan, &[], w, c.options(k)))
                {
                    direct.advertisers.push(candidate.advertiser);
                    direct.blocked_categories.extend(candidate.categories);
                }
            }
            (c.picks.iter().map(|p| p.1).sum::<u32>(), c.picks.len())
        });
        direct.open_ms = walk.duration_ms.saturating_sub(filled);
        direct.ads_left = self.max_ads.saturating_sub(count);
        direct
    }
}
