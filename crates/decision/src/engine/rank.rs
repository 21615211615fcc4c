//! The candidate walk: matched line items and external ads in the order the pod considers them, each assessed
//! (holds, flight, exclusions, a servable creative, pacing, caps) into a verdict or a pod candidate. The direct
//! step and the final fill both consume this walk.

use crate::PodRequest;
use chrono::{DateTime, TimeDelta, Utc};

use super::caps::CapView;
use super::choice::Choice;
use super::plan::{BreakPlan, Matches};
use super::prepare::{Prepared, draw_from, stable_hash};
use super::rotation::CreativeOption;
use super::{Engine, Holds, TagRequest, Verdict};
use crate::catalog::Catalog;
use crate::external::ExternalAd;
use crate::pod::{Positions, Rejection, Tier};
use crate::targeting::Facts;
use crate::targeting::compiled::ViewerKeys;

/// What a decision offers the pod: catalog line items, and the caller's external ads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Offer {
    /// A line item: its catalog index and its position in the break plan.
    Line(usize, usize),
    /// An external ad: its index in the caller's list.
    External(usize),
}

/// The order candidates are offered in: tier; within guaranteed, urgency (most behind schedule first); within
/// other tiers, CPM; then the longest creative; then catalog order.
pub(super) struct Ranking {
    /// Line items in rank order.
    pub(super) order: Vec<usize>,
    /// Each line item's value within its tier (urgency for guaranteed, else CPM), by catalog index.
    pub(super) value: Vec<f64>,
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
        let value = (0..catalog.line_items.len()).map(value).collect();
        Ranking { order, value }
    }
}

/// One offer's assessment.
pub(super) enum Assessed {
    /// Not this step's business (house in the direct step, a line item represented by its resolved tag).
    Skip,
    /// Left out before the pod rules, with why.
    Out(Verdict),
    /// Eligible: the pod rules decide. Added to the [`Choice`] with the creatives it may play (preferred
    /// first; none for external ads), matching its durations.
    Candidate,
    /// A line item served only by third-party tags that passed pacing and caps: fetch them.
    Tags(Vec<TagRequest>),
}

/// Everything the walk needs that is fixed for one decision.
pub(super) struct Walk<'a> {
    pub(super) now: DateTime<Utc>,
    pub(super) duration_ms: u32,
    pub(super) tolerance_ms: u32,
    pub(super) excluded: Vec<String>,
    pub(super) external: &'a [ExternalAd],
    pub(super) holds: std::sync::Arc<Holds>,
    pub(super) plan: &'a BreakPlan,
    pub(super) facts: &'a Facts,
    /// The facts as the plan's compiled targeting compares them.
    pub(super) keys: ViewerKeys,
    pub(super) caps: CapView<'a>,
    /// Advertisers of the viewer's previous break in this session, kept out when breaks are separated.
    pub(super) previous: Vec<u32>,
    /// The direct step: house waits for the auction, tags are to be fetched.
    pub(super) direct: bool,
    /// `stable_hash` of the session, and of the session and break: the pacing draw and the rotation seed
    /// continue them with the line item.
    pub(super) session_hash: u64,
    pub(super) rotation_hash: u64,
}

impl Walk<'_> {
    /// The longest ad the break takes.
    pub(super) fn limit(&self) -> u32 {
        self.duration_ms.saturating_add(self.tolerance_ms)
    }

    fn exclusion(&self, categories: &[String]) -> Option<Verdict> {
        categories
            .iter()
            .find(|c| self.excluded.contains(c))
            .map(|c| Verdict::ContentExclusion {
                category: c.clone(),
            })
    }
}

/// Matched line items and external ads merged in the order the pod considers them: tier, then value, with
/// a line item before an external ad of equal tier and value.
pub(super) struct Offers<'a> {
    engine: &'a Engine,
    plan: &'a BreakPlan,
    lines: std::iter::Peekable<Matches<'a>>,
    external: &'a [ExternalAd],
    /// External ads in their own rank order, not yet offered.
    pending: std::collections::VecDeque<usize>,
}

impl Iterator for Offers<'_> {
    type Item = Offer;

    fn next(&mut self) -> Option<Offer> {
        let Some(&position) = self.lines.peek() else {
            return self.pending.pop_front().map(Offer::External);
        };
        let item = self.engine.line_of(self.plan, position);
        if let (Some(&e), Some(l)) = (
            self.pending.front(),
            self.engine.catalog.line_items.get(item),
        ) {
            let x = &self.external[e];
            // Guaranteed line items are ranked by urgency, which external ads do not have: they follow the
            // tier's line items. Elsewhere value is CPM on both sides.
            let before = x.tier < l.tier
                || (x.tier == l.tier && l.tier != Tier::Guaranteed && x.value > l.cpm);
            if before {
                self.pending.pop_front();
                return Some(Offer::External(e));
            }
        }
        self.lines.next();
        Some(Offer::Line(item, position))
    }
}

impl Engine {
    /// The catalog index of plan line `position`.
    pub(super) fn line_of(&self, plan: &BreakPlan, position: usize) -> usize {
        plan.lines
            .get(position)
            .map_or(usize::MAX, |l| l.item as usize)
    }

    /// The offers for a viewer with `facts`: its matching line items of `plan` and `external` ads, in order.
    pub(super) fn offers<'a>(
        &'a self,
        plan: &'a BreakPlan,
        facts: &'a Facts,
        keys: &'a ViewerKeys,
        external: &'a [ExternalAd],
    ) -> Offers<'a> {
        let mut ext: Vec<usize> = (0..external.len()).collect();
        ext.sort_by(|&a, &b| {
            let (x, y) = (&external[a], &external[b]);
            x.tier
                .cmp(&y.tier)
                .then(y.value.total_cmp(&x.value))
                .then(y.duration_ms.cmp(&x.duration_ms))
                .then(a.cmp(&b))
        });
        Offers {
            engine: self,
            lines: plan.matches(facts, keys).peekable(),
            plan,
            external,
            pending: ext.into(),
        }
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
        plan: &'a BreakPlan,
        request: &'a PodRequest,
        facts: &'a Facts,
        now: DateTime<Utc>,
        external: &'a [ExternalAd],
        direct: bool,
    ) -> Walk<'a> {
        let caps = self.cap_view(request, now);
        let previous = if self.config.separate_breaks {
            self.previous_break(&caps, &request.break_id)
        } else {
            Vec::new()
        };
        let mut keys = ViewerKeys::default();
        plan.keys(facts, &mut keys);
        Walk {
            plan,
            facts,
            keys,
            caps,
            previous,
            tolerance_ms: self.tolerance_ms,
            now,
            duration_ms: request
                .duration_secs
                .map_or(0, |s| (s * 1000.0).round() as u32),
            excluded: self.excluded(facts),
            external,
            holds: self.holds(),
            direct,
            session_hash: stable_hash(&[&request.session_id]),
            rotation_hash: stable_hash(&[&request.session_id, &request.break_id]),
        }
    }

    /// Assesses one offer; an eligible one is added to `choice` (its item, creative options and offer).
    pub(super) fn assess(&self, w: &Walk<'_>, offer: Offer, choice: &mut Choice) -> Assessed {
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
                let advertiser = choice.fresh.advertiser(&self.keys, &x.advertiser);
                let categories: Vec<u32> = x
                    .categories
                    .iter()
                    .map(|c| choice.fresh.category(&self.keys, c))
                    .collect();
                let none = (choice.options.len() as u32, 0);
                choice.push(offer, Positions::ANY, none, |items| {
                    items.push(
                        x.tier,
                        x.value,
                        [x.duration_ms],
                        advertiser,
                        categories,
                        None,
                        Positions::ANY,
                        false,
                    )
                });
                Assessed::Candidate
            }
            Offer::Line(i, position) => self.assess_line(w, i, position, choice),
        }
    }

    fn assess_line(
        &self,
        w: &Walk<'_>,
        i: usize,
        position: usize,
        choice: &mut Choice,
    ) -> Assessed {
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
        // Holds and flight were settled by the break plan.
        if let Some(v) = w.exclusion(&p.categories) {
            return Assessed::Out(v);
        }
        let mut options = std::mem::take(&mut choice.options);
        let result = self.assess_options(w, i, position, choice, &mut options);
        choice.options = options;
        result
    }

    /// The rest of [`Engine::assess_line`], once the creatives are known; `options` is the choice's
    /// buffer, taken out of it while the walk fills it.
    fn assess_options(
        &self,
        w: &Walk<'_>,
        i: usize,
        position: usize,
        choice: &mut Choice,
        options: &mut Vec<CreativeOption>,
    ) -> Assessed {
        let (l, p) = (&self.catalog.line_items[i], &self.prepared[i]);
        let start = options.len();
        match self.creative_options(w, i, &mut choice.open, options) {
            Ok(()) => {}
            Err(capped) => {
                options.truncate(start);
                return match capped {
                    true => Assessed::Out(Verdict::Capped),
                    false if p.tags.is_empty() || p.creatives.iter().any(|c| c.1 <= w.limit()) => {
                        Assessed::Out(Verdict::NoServableCreative)
                    }
                    false if !w.direct => Assessed::Out(Verdict::ThirdPartyUnavailable),
                    false => {
                        if self.admit(i, position, w).is_err() {
                            return Assessed::Skip;
                        }
                        Assessed::Tags(
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
                        )
                    }
                };
            }
        }
        if !w.direct
            && let Some(e) = self.eligible.get(i)
        {
            e.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let preferred = options[start].0;
        let creative_categories = |c: usize| {
            self.catalog
                .creatives
                .get(c)
                .map_or(&[][..], |c| c.categories.as_slice())
        };
        if !w.excluded.is_empty() {
            // The advertiser's categories passed above: the preferred creative's own.
            if let Some(v) = w.exclusion(creative_categories(preferred)) {
                options.truncate(start);
                return Assessed::Out(v);
            }
            // Alternatives whose own categories the content excludes are not offered.
            let mut k = start + 1;
            while k < options.len() {
                if w.exclusion(creative_categories(options[k].0)).is_some() {
                    options.remove(k);
                } else {
                    k += 1;
                }
            }
        }
        if let Err(v) = self.admit(i, position, w) {
            options.truncate(start);
            return Assessed::Out(v);
        }
        if l.tier != Tier::Sponsorship
            && let Some(a) = p.advertiser_index
            && w.previous.contains(&(a as u32))
        {
            options.truncate(start);
            return Assessed::Out(Verdict::Pod(Rejection::PreviousBreak {
                with: p.advertiser.clone(),
            }));
        }
        let mut positions = w.plan.positions(position, &w.keys);
        if l.first_in_pod {
            positions = Positions(positions.0 & (Positions::ALONE.0 | Positions::FIRST.0));
        }
        let value = w.plan.value(position, l.cpm);
        let mine = &options[start..];
        let range = (start as u32, mine.len() as u32);
        let categories = p.category_keys.iter().chain(
            self.creative_categories
                .get(preferred)
                .map_or(&[][..], Vec::as_slice),
        );
        choice.push(Offer::Line(i, position), positions, range, |items| {
            items.push(
                l.tier,
                value,
                mine.iter().map(|o| o.1),
                p.advertiser_key,
                categories.copied(),
                None,
                positions,
                l.first_in_pod,
            )
        });
        Assessed::Candidate
    }

    /// Pacing, the break's allowance and caps for line item `i` (plan line `position`) and this viewer.
    fn admit(&self, i: usize, position: usize, w: &Walk<'_>) -> Result<(), Verdict> {
        let id = &self.catalog.line_items[i].id;
        let probability = w.plan.lines.get(position).map_or(1.0, |l| l.probability);
        if draw_from(w.session_hash, id) >= probability || !w.plan.has_allowance(position) {
            return Err(Verdict::PacedOut { probability });
        }
        if self.capped(&w.caps, i, w.now) {
            return Err(Verdict::Capped);
        }
        Ok(())
    }

    /// How this decision sees the viewer's counts. Frequency caps count a viewer across sessions by id: only
    /// with consent.
    pub(super) fn cap_view<'a>(
        &'a self,
        request: &'a PodRequest,
        now: DateTime<Utc>,
    ) -> CapView<'a> {
        let viewer = &request.viewer;
        let Some(id) = viewer
            .viewer_id
            .as_deref()
            .filter(|_| viewer.consent != Some(false))
        else {
            return CapView::Off;
        };
        match &self.history {
            Some(source) => {
                let since = now - TimeDelta::hours(i64::from(self.longest_window_hours));
                let history = source.viewer_history(id, since);
                CapView::History(self.resolve_history(&history, &request.session_id))
            }
            None => {
                let since = now - TimeDelta::hours(i64::from(self.longest_window_hours));
                match self.counters.viewer_hours(id, since) {
                    Some(hours) => CapView::History(self.resolve_hours(&hours)),
                    None => CapView::Counters {
                        counters: self.counters.as_ref(),
                        viewer: id,
                        memo: Default::default(),
                    },
                }
            }
        }
    }
}
