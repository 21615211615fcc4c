//! The decision engine: from a viewer and a break to a pod, over the catalog.
//!
//! Per request: targeting (through the compiled index) → flight and approval → pacing (a per-line-item serve
//! probability, drawn deterministically from the session and line item so a retried decision agrees) →
//! frequency caps (from the event pipeline's live [`Counters`]) → pod construction. With `explain`, every line
//! item gets the reason it was or was not chosen.
//!
//! Pacers are refreshed from delivered counts by [`Engine::refresh_pacing`], which the server calls every
//! minute; the request path only reads them.
//!
//! Layout: [`prepare`](self) resolves the catalog once and `keys` numbers its advertisers and categories;
//! `plan` settles what is the same for every viewer of a break (targeting compiled over interned values);
//! `rank` walks candidates in the pod's order and assesses each into `choice`, which chooses the pod on
//! numbers in per-thread buffers; `direct` is the first step of a hybrid decision, `fill` the final one;
//! `explain` turns verdicts into the explanation.

mod caps;
mod choice;
mod direct;
mod explain;
mod fill;
mod keys;
mod many;
mod plan;
mod prepare;
mod rank;
mod rotation;
mod types;

pub use plan::BreakPlan;
pub use prepare::stable_hash;
pub use types::{Decision, DirectDecision, EnginePodSource, Holds, TagRequest, Verdict};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::{PodAd, PodRequest};
use chrono::{DateTime, Utc};
use interlude_events::Counters;
use serde::Serialize;

use crate::catalog::Catalog;
use crate::external::ExternalAd;
use crate::history::{HistoryCounters, ViewerHistorySource};
use crate::pacing::{AudienceForecast, Pacer};
use crate::reservation::Reservations;
use crate::targeting::{Expr, TargetingIndex};
use keys::{IdMap, Keys};
use prepare::{Prepared, facts, prepare};
use rank::Ranking;

/// Pod rules beyond the break itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// Most ads in one pod.
    pub max_ads: usize,
    /// How long a reservation counts when its impression is not delivered, in seconds.
    pub reservation_ttl_secs: u32,
    /// How far the ads may run past the break, in ms.
    pub tolerance_ms: u32,
    /// At most one ad per advertiser in a pod (competitive categories are always kept apart).
    pub one_ad_per_advertiser: bool,
    /// Keep an advertiser of a viewer's previous break (in the same session) out of the next one;
    /// sponsorships are exempt (they own their placements). Needs a history source.
    pub separate_breaks: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_ads: 6,
            reservation_ttl_secs: 300,
            tolerance_ms: 500,
            one_ad_per_advertiser: true,
            separate_breaks: false,
        }
    }
}

/// The engine over one catalog.
pub struct Engine {
    config: EngineConfig,
    /// Line items of each advertiser (for advertiser caps over per-line-item counters).
    by_advertiser: Vec<Vec<usize>>,
    catalog: Catalog,
    prepared: Vec<Prepared>,
    /// The order the pod considers line items in, recomputed with pacing (guaranteed urgency changes).
    ranking: RwLock<Ranking>,
    /// The shortest servable creative of the catalog: once less time is left, no candidate can fit.
    shortest_ms: u32,
    /// Some line item serves through a VAST tag ([`Engine::has_tags`]).
    has_tags: bool,
    index: TargetingIndex<usize>,
    pacers: RwLock<Vec<Pacer>>,
    eligible: Vec<AtomicU64>,
    counters: Arc<dyn Counters>,
    max_ads: usize,
    tolerance_ms: u32,
    /// Content-level exclusions: where the expression holds, no ad of these categories.
    exclusions: Vec<(Expr, Vec<String>)>,
    by_id: IdMap<usize>,
    creative_by_id: IdMap<usize>,
    /// Advertisers and categories as numbers, and each creative's categories so numbered.
    keys: Keys,
    creative_categories: Vec<Vec<u32>>,
    holds: RwLock<Arc<Holds>>,
    /// One read per viewer per decision, when the store offers it; else caps read `counters` per line item.
    history: Option<Arc<dyn ViewerHistorySource>>,
    /// The longest cap window of the catalog: how far back a viewer's history is read.
    longest_window_hours: u32,
    /// Recent break plans, reused by the viewers of the same break; cleared when pacing or holds change.
    plans: Mutex<Vec<Arc<BreakPlan>>>,
    /// Pending impressions: the goal guard counts them, and every catalog ad decided is reserved.
    reservations: Option<Arc<dyn Reservations>>,
    /// The audience forecast that break-aware even pacing plans with.
    forecast: Option<Arc<dyn AudienceForecast>>,
    /// Decisions made, against which each line item's eligible count gives its share of the audience.
    decisions: AtomicU64,
    /// Carried fractions of break allowances, by line item (see [`crate::pacing::break_allowance`]).
    carry: Mutex<Vec<f64>>,
}

/// How many break plans are kept: a few breaks in flight per channel.
const PLANS_KEPT: usize = 64;

impl Engine {
    /// An engine over `catalog` (already validated), reading live counts from `counters` (caps read them per
    /// line item; [`Engine::with_history`] reads a viewer's history once per decision instead).
    pub fn new(
        catalog: Catalog,
        counters: Arc<dyn Counters>,
        max_ads: usize,
        tolerance_ms: u32,
    ) -> Self {
        Engine::with_config(
            catalog,
            counters,
            None,
            EngineConfig {
                max_ads,
                tolerance_ms,
                ..EngineConfig::default()
            },
        )
    }

    /// An engine over `catalog` reading each viewer's history once per decision from `history`.
    pub fn with_history(
        catalog: Catalog,
        history: Arc<dyn ViewerHistorySource>,
        max_ads: usize,
        tolerance_ms: u32,
    ) -> Self {
        let counters: Arc<dyn Counters> = Arc::new(HistoryCounters(history.clone()));
        Engine::with_config(
            catalog,
            counters,
            Some(history),
            EngineConfig {
                max_ads,
                tolerance_ms,
                ..EngineConfig::default()
            },
        )
    }

    /// An engine over `catalog` with `config`: caps from `history` when given (one read per viewer), else
    /// from `counters` per line item. The catalog's targeting codes are normalised here too, for catalogs
    /// built in code rather than loaded.
    pub fn with_config(
        mut catalog: Catalog,
        counters: Arc<dyn Counters>,
        history: Option<Arc<dyn ViewerHistorySource>>,
        config: EngineConfig,
    ) -> Self {
        catalog.normalise();
        let (max_ads, tolerance_ms) = (config.max_ads, config.tolerance_ms);
        let index = TargetingIndex::build(
            catalog
                .line_items
                .iter()
                .enumerate()
                .map(|(i, l)| (i, l.targeting.clone().unwrap_or(Expr::All(Vec::new()))))
                .collect(),
        );
        let pacers = catalog
            .line_items
            .iter()
            .map(|l| {
                Pacer::new(
                    l.pacing,
                    Catalog::goal_impressions(l),
                    l.start.timestamp(),
                    l.end.timestamp(),
                )
            })
            .collect();
        let eligible = catalog
            .line_items
            .iter()
            .map(|_| AtomicU64::new(0))
            .collect();
        let mut keys = Keys::default();
        let prepared = prepare(&catalog, &mut keys);
        let creative_categories = catalog
            .creatives
            .iter()
            .map(|c| c.categories.iter().map(|k| keys.category(k)).collect())
            .collect();
        let ranking = Ranking::new(&catalog, &prepared, &[]);
        let shortest_ms = prepared
            .iter()
            .flat_map(|p| p.creatives.iter().map(|c| c.1))
            .min()
            .unwrap_or(0);
        let exclusions = catalog
            .exclusions
            .iter()
            .map(|e| (e.when.clone(), e.categories.clone()))
            .collect();
        let by_id = catalog
            .line_items
            .iter()
            .enumerate()
            .map(|(i, l)| (l.id.clone(), i))
            .collect();
        let creative_by_id = catalog
            .creatives
            .iter()
            .enumerate()
            .map(|(i, c)| (c.id.clone(), i))
            .collect();
        let longest_window_hours = catalog
            .line_items
            .iter()
            .flat_map(|l| &l.frequency_caps)
            .chain(catalog.campaigns.iter().flat_map(|c| &c.frequency_caps))
            .map(|c| c.window_hours)
            .max()
            .unwrap_or(0);
        let mut by_advertiser = vec![Vec::new(); catalog.advertisers.len()];
        for (i, p) in prepared.iter().enumerate() {
            if let Some(list) = p.advertiser_index.and_then(|a| by_advertiser.get_mut(a)) {
                list.push(i);
            }
        }
        Engine {
            has_tags: prepared.iter().any(|p| !p.tags.is_empty()),
            config,
            keys,
            creative_categories,
            by_advertiser,
            creative_by_id,
            history,
            longest_window_hours,
            plans: Mutex::new(Vec::new()),
            reservations: None,
            forecast: None,
            decisions: AtomicU64::new(0),
            carry: Mutex::new(vec![0.0; catalog.line_items.len()]),
            prepared,
            ranking: RwLock::new(ranking),
            shortest_ms,
            exclusions,
            by_id,
            holds: RwLock::new(Arc::default()),
            catalog,
            index,
            pacers: RwLock::new(pacers),
            eligible,
            counters,
            max_ads,
            tolerance_ms,
        }
    }

    /// The same engine reserving every catalog ad it decides in `reservations`, which guard the goals
    /// (delivered plus pending never past a goal), and, with a `forecast`, pacing even line items per break
    /// from the expected audience instead of the per-minute serve probability.
    pub fn with_reservations(
        mut self,
        reservations: Arc<dyn Reservations>,
        forecast: Option<Arc<dyn AudienceForecast>>,
    ) -> Self {
        self.reservations = Some(reservations);
        self.forecast = forecast;
        self
    }

    /// Whether any line item serves through a third-party VAST tag: without one and without bidders, a
    /// hybrid decision has no external step and needs no direct step to size it.
    pub fn has_tags(&self) -> bool {
        self.has_tags
    }

    /// Gives back the reservation of `ad`, decided by this engine and then not served
    /// ([`crate::request::PodSource::dropped`]).
    pub fn release_ad(&self, ad: &PodAd, now: DateTime<Utc>) {
        if let (Some(reservations), Some(line_item)) = (&self.reservations, &ad.line_item_id) {
            reservations.release_instance(&ad.ad_instance_id, line_item, now);
        }
    }

    /// Gives back the reservation of `ad`, decided by this engine for a viewer who left before it played
    /// ([`crate::request::PodSource::abandoned`]), counted as an expiry.
    pub fn abandon_ad(&self, ad: &PodAd, now: DateTime<Utc>) {
        if let Some(reservations) = &self.reservations {
            reservations.abandon_instance(&ad.ad_instance_id, now);
        }
    }

    /// Where decided ads are reserved, when they are.
    pub fn reservations(&self) -> Option<&Arc<dyn Reservations>> {
        self.reservations.as_ref()
    }

    /// The catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The live counts pacing and caps read.
    pub fn counters(&self) -> &Arc<dyn Counters> {
        &self.counters
    }

    /// Replaces the operator holds.
    pub fn set_holds(&self, holds: Arc<Holds>) {
        if let Ok(mut h) = self.holds.write() {
            *h = holds;
        }
        self.forget_plans();
    }

    fn forget_plans(&self) {
        if let Ok(mut plans) = self.plans.lock() {
            plans.clear();
        }
    }

    /// The plan for a break of `channel` (its id and planned duration) at `now`: what is the same for every
    /// viewer of the break, computed once. [`Engine::decide`] finds it by itself; callers deciding a herd
    /// plan once and pass it to [`Engine::decide_in`].
    pub fn plan_break(
        &self,
        channel: &str,
        break_id: &str,
        duration_secs: Option<f64>,
        now: DateTime<Utc>,
    ) -> Arc<BreakPlan> {
        let key = plan::BreakKey {
            channel: channel.to_owned(),
            break_id: break_id.to_owned(),
            duration_ms: duration_secs.map_or(0, |s| (s * 1000.0).round() as u32),
            at: now.timestamp(),
        };
        if let Ok(plans) = self.plans.lock()
            && let Some(p) = plans.iter().find(|p| p.key == key)
        {
            return p.clone();
        }
        let plan = Arc::new(self.plan(key, now));
        if let Ok(mut plans) = self.plans.lock() {
            if plans.len() >= PLANS_KEPT {
                plans.remove(0);
            }
            plans.push(plan.clone());
        }
        plan
    }

    fn plan_for(&self, request: &PodRequest, now: DateTime<Utc>) -> Arc<BreakPlan> {
        self.plan_break(
            &request.channel,
            &request.break_id,
            request.duration_secs,
            now,
        )
    }

    /// The operator holds in force.
    pub fn holds(&self) -> Arc<Holds> {
        self.holds.read().map(|h| h.clone()).unwrap_or_default()
    }

    /// An engine over a new version of the catalog with the same counters and pod limits. Line items that keep
    /// their id keep their pacing state and eligible count, so a reload does not reset delivery.
    pub fn with_catalog(&self, catalog: Catalog) -> Engine {
        let mut next = Engine::with_config(
            catalog,
            self.counters.clone(),
            self.history.clone(),
            self.config,
        );
        if let (Ok(old), Ok(mut new)) = (self.pacers.read(), next.pacers.write()) {
            for (i, l) in next.catalog.line_items.iter().enumerate() {
                let Some(&j) = self.by_id.get(&l.id) else {
                    continue;
                };
                let unchanged = self
                    .catalog
                    .line_items
                    .get(j)
                    .is_some_and(|o| o.goal == l.goal && o.start == l.start && o.end == l.end);
                if let (true, Some(p), Some(slot)) = (unchanged, old.get(j), new.get_mut(i)) {
                    *slot = p.clone();
                }
                if let (Some(e), Some(n)) = (self.eligible.get(j), next.eligible.get(i)) {
                    n.store(e.load(Ordering::Relaxed), Ordering::Relaxed);
                }
            }
        }
        next.set_holds(self.holds());
        // The reservations outlive a catalog version: pending impressions still count after a reload.
        next.reservations = self.reservations.clone();
        next.forecast = self.forecast.clone();
        next
    }

    /// Updates every pacer from delivered counts (call periodically).
    pub fn refresh_pacing(&self, now: DateTime<Utc>) {
        let Ok(mut pacers) = self.pacers.write() else {
            return;
        };
        let mut urgency = Vec::with_capacity(pacers.len());
        for (i, (l, pacer)) in self
            .catalog
            .line_items
            .iter()
            .zip(pacers.iter_mut())
            .enumerate()
        {
            let delivered = self.counters.delivered(&l.id, l.start);
            let eligible = self
                .eligible
                .get(i)
                .map_or(0, |e| e.load(Ordering::Relaxed));
            pacer.update(now.timestamp(), delivered, eligible);
            urgency.push(pacer.urgency(now.timestamp(), delivered));
        }
        drop(pacers);
        let ranking = Ranking::new(&self.catalog, &self.prepared, &urgency);
        if let Ok(mut r) = self.ranking.write() {
            *r = ranking;
        }
        self.forget_plans();
    }

    /// Decides the pod for `request` at `now` from the catalog alone; `explain` adds every line item's verdict.
    pub fn decide(&self, request: &PodRequest, now: DateTime<Utc>, explain: bool) -> Decision {
        self.decide_with(request, now, explain, &[])
    }

    /// Decides the pod with `external` ads (resolved third-party tags, programmatic bids) competing next to the
    /// catalog in their tiers. Line items whose tag is among `external` are represented by it.
    pub fn decide_with(
        &self,
        request: &PodRequest,
        now: DateTime<Utc>,
        explain: bool,
        external: &[ExternalAd],
    ) -> Decision {
        let plan = self.plan_for(request, now);
        let facts = facts(request, now);
        self.fill(&plan, request, &facts, now, explain, external)
    }

    /// The first step of a hybrid decision: the direct-sold part of the pod, which sizes the auction and names
    /// the third-party tags to fetch. Pacing draws are deterministic, so [`Engine::decide_with`] at the same
    /// `now` makes the same direct choices.
    pub fn decide_direct(&self, request: &PodRequest, now: DateTime<Utc>) -> DirectDecision {
        let plan = self.plan_for(request, now);
        let facts = facts(request, now);
        self.direct(&plan, request, &facts, now)
    }

    /// A resolved third-party tag as an external ad of its line item (tier, CPM, advertiser, categories and ids
    /// from the catalog; duration from the VAST document).
    pub fn tag_ad(&self, tag: &TagRequest, mut ad: PodAd) -> Option<ExternalAd> {
        let &i = self.by_id.get(&tag.line_item_id)?;
        let (l, p) = (self.catalog.line_items.get(i)?, self.prepared.get(i)?);
        let creative = self
            .catalog
            .creatives
            .iter()
            .find(|c| c.id == tag.creative_id);
        let mut categories = p.categories.clone();
        categories.extend(creative.iter().flat_map(|c| c.categories.iter().cloned()));
        ad.line_item_id = Some(l.id.clone());
        ad.campaign_id = Some(l.campaign.clone());
        Some(ExternalAd {
            id: l.id.clone(),
            line_item_id: Some(l.id.clone()),
            tier: l.tier,
            value: l.cpm,
            duration_ms: (ad.duration_secs * 1000.0).round() as u32,
            advertiser: p.advertiser.clone(),
            categories,
            ad,
        })
    }

    /// Decides one viewer of a planned break (at the plan's time). The plan is `Sync`: a herd can be decided
    /// from several threads over one plan.
    pub fn decide_in(&self, plan: &BreakPlan, request: &PodRequest) -> Decision {
        let facts = facts(request, plan.now);
        self.fill(plan, request, &facts, plan.now, false, &[])
    }
}
