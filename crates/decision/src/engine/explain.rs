//! Why every line item was or was not chosen: verdicts by id in catalog order, and consent named as the reason
//! where it changed the decision.

use std::collections::HashSet;

use crate::PodRequest;
use chrono::{DateTime, Utc};

use super::plan::BreakPlan;
use super::prepare::facts;
use super::rank::Offer;
use super::{Engine, Verdict};
use crate::external::ExternalAd;
use crate::targeting::Facts;

impl Engine {
    /// Where the viewer refused personalisation, line items that missed targeting but would have matched with
    /// the viewer's audience segments are shown as [`Verdict::NeedsConsent`]: consent changed the decision.
    pub(super) fn consent_explained(
        &self,
        request: &PodRequest,
        now: DateTime<Utc>,
        mut explanation: Vec<(String, Verdict)>,
    ) -> Vec<(String, Verdict)> {
        if request.viewer.consent != Some(false) || request.viewer.segments.is_empty() {
            return explanation;
        }
        let mut unrestricted = request.clone();
        unrestricted.viewer.consent = None;
        let with_segments: HashSet<usize> = self
            .index
            .matching(&facts(&unrestricted, now))
            .into_iter()
            .collect();
        for (i, (_, verdict)) in explanation.iter_mut().enumerate() {
            if *verdict == Verdict::TargetingMiss && with_segments.contains(&i) {
                *verdict = Verdict::NeedsConsent;
            }
        }
        explanation
    }

    /// Verdicts by id, in catalog order then external order; line items never examined missed targeting.
    pub(super) fn explanation(
        &self,
        plan: &BreakPlan,
        facts: &Facts,
        verdicts: Vec<(Offer, Verdict)>,
        external: &[ExternalAd],
    ) -> Vec<(String, Verdict)> {
        let mut lines: Vec<Option<Verdict>> = vec![None; self.catalog.line_items.len()];
        // Line items the break plan left out, where the viewer matches their targeting, get the plan's verdict.
        for i in self.index.matching(facts) {
            if let (Some(slot), Some(Some(v))) = (lines.get_mut(i), plan.dropped.get(i)) {
                *slot = Some(v.clone());
            }
        }
        let mut others = Vec::new();
        for (offer, verdict) in verdicts {
            match offer {
                Offer::Line(i, _) => lines[i] = Some(verdict),
                Offer::External(e) => match external[e]
                    .line_item_id
                    .as_ref()
                    .and_then(|id| self.by_id.get(id))
                {
                    Some(&i) => lines[i] = Some(verdict),
                    None => others.push((external[e].id.clone(), verdict)),
                },
            }
        }
        lines
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                (
                    self.catalog.line_items[i].id.clone(),
                    v.unwrap_or(Verdict::TargetingMiss),
                )
            })
            .chain(others)
            .collect()
    }
}
