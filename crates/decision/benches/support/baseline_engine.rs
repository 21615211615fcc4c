//! The engine as it was at f694881 (before the break plan and the viewer history), kept verbatim apart from
//! its imports (and the fields pod types gained since) so the break-start bench measures the old path against the new one in the same run. Not built
//! into the crate.

//! The decision engine: from a viewer and a break to a pod, over the catalog.
//!
//! Per request: targeting (through the compiled index) → flight and approval → pacing (a per-line-item serve
//! probability, drawn deterministically from the session and line item so a retried decision agrees) →
//! frequency caps (from the event pipeline's live [`Counters`]) → pod construction. With `explain`, every line
//! item gets the reason it was or was not chosen.
//!
//! Pacers are refreshed from delivered counts by [`Engine::refresh_pacing`], which the server calls every
//! minute; the request path only reads them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use chrono::{DateTime, TimeDelta, Utc};
use interlude_decision::{CreativeRendition, Pod, PodAd, PodRequest, ViewerContext};
use interlude_events::Counters;
use serde::Serialize;

use interlude_decision::catalog::{Catalog, Creative};
use interlude_decision::external::ExternalAd;
use interlude_decision::pacing::Pacer;
use interlude_decision::pod::{Candidate, PodBuilder, PodRules, Rejection, Tier};
use interlude_decision::targeting::{Expr, Facts, Field, TargetingIndex};

/// Why a line item did not make it into the pod, or that it did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Verdict {
    /// In the pod.
    Chosen,
    /// Its targeting does not match the viewer.
    TargetingMiss,
    /// Outside its flight.
    OutOfFlight,
    /// No approved creative with renditions.
    NoServableCreative,
    /// Its creative comes from a third-party VAST tag, which gave no usable ad this time.
    ThirdPartyUnavailable,
    /// An operator paused it (or its advertiser).
    Paused,
    /// The content excludes one of its categories (brand safety).
    ContentExclusion {
        /// The excluded category.
        category: String,
    },
    /// Pacing held it back this time.
    PacedOut {
        /// The serve probability it had.
        probability: f64,
    },
    /// The viewer has seen it (or its campaign) as often as allowed.
    Capped,
    /// Its targeting needs the viewer's audience segments, which the viewer's consent does not allow using
    /// (no personalisation: contextual targeting only).
    NeedsConsent,
    /// Eligible, but the pod rules left it out.
    Pod(Rejection),
}

/// A decision with, when asked, every line item's verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// The pod.
    pub pod: Pod,
    /// Milliseconds of the break left for slate.
    pub unfilled_ms: u32,
    /// Line item id (or external ad id) → verdict (only with `explain`).
    pub explanation: Vec<(String, Verdict)>,
}

/// The first step of a hybrid decision: what direct-sold demand (every tier above house) takes, what is left
/// for the auction, and which third-party tags to fetch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DirectDecision {
    /// Milliseconds of the break direct-sold ads leave open.
    pub open_ms: u32,
    /// Ads the pod may still take.
    pub ads_left: usize,
    /// Advertiser keys (domains where known) of the direct ads.
    pub advertisers: Vec<String>,
    /// Competitive categories of the direct ads and those the content excludes.
    pub blocked_categories: Vec<String>,
    /// Line items whose creative is a third-party VAST tag and that passed targeting, flight, pacing and caps.
    pub tags: Vec<TagRequest>,
}

/// A third-party VAST tag to fetch for a line item.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TagRequest {
    /// The line item.
    pub line_item_id: String,
    /// The creative carrying the tag.
    pub creative_id: String,
    /// The tag URL (macros not yet expanded).
    pub tag: String,
}

/// What a decision offers the pod: catalog line items, and the caller's external ads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Offer {
    Line(usize),
    External(usize),
}

/// The two steps of a hybrid decision: direct-sold demand sizes the auction, then everything competes.
#[derive(Clone, Copy)]
enum Step<'a> {
    Direct,
    Final(&'a [ExternalAd]),
}

/// The engine over one catalog.
pub struct Engine {
    catalog: Catalog,
    prepared: Vec<Prepared>,
    /// The order the pod considers line items in, recomputed with pacing (guaranteed urgency changes).
    ranking: RwLock<Ranking>,
    /// The shortest servable creative of the catalog: once less time is left, no candidate can fit.
    shortest_ms: u32,
    index: TargetingIndex<usize>,
    pacers: RwLock<Vec<Pacer>>,
    eligible: Vec<AtomicU64>,
    counters: Arc<dyn Counters>,
    max_ads: usize,
    tolerance_ms: u32,
    /// Content-level exclusions: where the expression holds, no ad of these categories.
    exclusions: Vec<(Expr, Vec<String>)>,
    by_id: HashMap<String, usize>,
    holds: RwLock<Arc<Holds>>,
}

/// Operator kill switches: line items and advertisers that must not serve, whatever else is true. Checked on
/// every decision, so a hold applies to the next pod decided anywhere the engine runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Holds {
    /// Paused line item ids.
    pub line_items: std::collections::BTreeSet<String>,
    /// Paused advertisers (catalog ids; for programmatic ads, their domain).
    pub advertisers: std::collections::BTreeSet<String>,
}

/// The order candidates are offered in: tier; within guaranteed, urgency (most behind schedule first); within
/// other tiers, CPM; then the longest creative; then catalog order.
struct Ranking {
    /// Each line item's position.
    rank: Vec<usize>,
    /// Line items in rank order (the inverse of `rank`).
    order: Vec<usize>,
}

impl Ranking {
    fn new(catalog: &Catalog, prepared: &[Prepared], urgency: &[f64]) -> Ranking {
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

/// What a decision needs of a line item, resolved once when the catalog is loaded (never scanned per request).
struct Prepared {
    /// The advertiser's catalog id.
    advertiser_id: String,
    /// Its key for separation: the domain when known, else the id.
    advertiser: String,
    /// The advertiser's competitive categories.
    categories: Vec<String>,
    /// Servable creatives (approved, with renditions): index into the catalog and duration in ms, longest first.
    creatives: Vec<(usize, u32)>,
    /// Approved third-party creatives (a VAST tag, no renditions of their own).
    tags: Vec<usize>,
    /// Line items of the same campaign (for campaign-level caps), including itself.
    siblings: Vec<usize>,
    /// Index of its campaign.
    campaign: Option<usize>,
}

fn prepare(catalog: &Catalog) -> Vec<Prepared> {
    let creative_index: HashMap<&str, usize> = catalog
        .creatives
        .iter()
        .enumerate()
        .map(|(i, c)| (c.id.as_str(), i))
        .collect();
    let campaign_index: HashMap<&str, usize> = catalog
        .campaigns
        .iter()
        .enumerate()
        .map(|(i, c)| (c.id.as_str(), i))
        .collect();
    let advertiser_index: HashMap<&str, usize> = catalog
        .advertisers
        .iter()
        .enumerate()
        .map(|(i, a)| (a.id.as_str(), i))
        .collect();
    let mut by_campaign: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, l) in catalog.line_items.iter().enumerate() {
        by_campaign.entry(l.campaign.as_str()).or_default().push(i);
    }
    catalog
        .line_items
        .iter()
        .map(|l| {
            let campaign = campaign_index.get(l.campaign.as_str()).copied();
            let advertiser = campaign
                .and_then(|c| catalog.campaigns.get(c))
                .map(|c| c.advertiser.clone())
                .unwrap_or_default();
            let record = advertiser_index
                .get(advertiser.as_str())
                .and_then(|&a| catalog.advertisers.get(a));
            let categories = record.map(|a| a.categories.clone()).unwrap_or_default();
            // The domain, when known, is the key bids name their advertiser by (`adomain`).
            let advertiser_id = advertiser.clone();
            let advertiser = record.and_then(|a| a.domain.clone()).unwrap_or(advertiser);
            let mut creatives: Vec<(usize, u32)> = l
                .creatives
                .iter()
                .filter_map(|id| creative_index.get(id.id.as_str()).copied())
                .filter_map(|i| {
                    let c = catalog.creatives.get(i)?;
                    (c.approved && !c.renditions.is_empty())
                        .then(|| (i, (c.duration_secs * 1000.0).round() as u32))
                })
                .collect();
            creatives.sort_by_key(|c| std::cmp::Reverse(c.1));
            let tags = l
                .creatives
                .iter()
                .filter_map(|id| creative_index.get(id.id.as_str()).copied())
                .filter(|&i| {
                    catalog.creatives.get(i).is_some_and(|c| {
                        c.approved && c.renditions.is_empty() && c.vast_tag.is_some()
                    })
                })
                .collect();
            Prepared {
                advertiser_id,
                advertiser,
                categories,
                creatives,
                tags,
                siblings: by_campaign
                    .get(l.campaign.as_str())
                    .cloned()
                    .unwrap_or_default(),
                campaign,
            }
        })
        .collect()
}

/// The viewer's local hour and weekday, for daypart targeting (UTC when the time zone is absent or unknown).
fn daypart(timezone: Option<&str>, now: DateTime<Utc>) -> (u32, &'static str) {
    use chrono::{Datelike, Timelike};
    let tz: chrono_tz::Tz = timezone
        .and_then(|t| t.parse().ok())
        .unwrap_or(chrono_tz::UTC);
    let local = now.with_timezone(&tz);
    let day = match local.weekday() {
        chrono::Weekday::Mon => "mon",
        chrono::Weekday::Tue => "tue",
        chrono::Weekday::Wed => "wed",
        chrono::Weekday::Thu => "thu",
        chrono::Weekday::Fri => "fri",
        chrono::Weekday::Sat => "sat",
        chrono::Weekday::Sun => "sun",
    };
    (local.hour(), day)
}

fn facts(request: &PodRequest, now: DateTime<Utc>) -> Facts {
    let v: &ViewerContext = &request.viewer;
    let (hour, weekday) = daypart(v.timezone.as_deref(), now);
    let mut f = Facts::default()
        .with(Field::Channel, request.channel.clone())
        .with(Field::Hour, hour.to_string())
        .with(Field::Weekday, weekday);
    for (field, value) in [
        (Field::Country, &v.country),
        (Field::Region, &v.region),
        (Field::Device, &v.device),
        (Field::Platform, &v.platform),
        (Field::Content, &v.content_id),
        (Field::Genre, &v.genre),
    ] {
        if let Some(value) = value {
            f = f.with(field, value.clone());
        }
    }
    // Audience segments are personal data: used only with consent to personalise (`consent == Some(false)`
    // is an explicit refusal; `None`, a caller that made no consent decision, is not restricted).
    if v.consent != Some(false) {
        for s in &v.segments {
            f = f.with(Field::Segment, s.clone());
        }
    }
    for (k, value) in &v.key_values {
        f = f.with_kv(k.clone(), value.clone());
    }
    f
}

/// A number in [0, 1) from the session and line item: the pacing draw, stable across retries of a decision.
fn draw(session: &str, line_item: &str) -> f64 {
    // FNV-1a: tiny, deterministic, good enough to spread a probability.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in session.bytes().chain([0]).chain(line_item.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h >> 11) as f64 / (1u64 << 53) as f64
}

impl Engine {
    /// An engine over `catalog` (already validated), reading live counts from `counters`.
    pub fn new(
        catalog: Catalog,
        counters: Arc<dyn Counters>,
        max_ads: usize,
        tolerance_ms: u32,
    ) -> Self {
        let index = TargetingIndex::build(
            catalog
                .line_items
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    (
                        i,
                        l.targeting
                            .clone()
                            .unwrap_or(interlude_decision::targeting::Expr::All(Vec::new())),
                    )
                })
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
        let prepared = prepare(&catalog);
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
        Engine {
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
    }

    /// The operator holds in force.
    pub fn holds(&self) -> Arc<Holds> {
        self.holds.read().map(|h| h.clone()).unwrap_or_default()
    }

    /// An engine over a new version of the catalog with the same counters and pod limits. Line items that keep
    /// their id keep their pacing state and eligible count, so a reload does not reset delivery.
    pub fn with_catalog(&self, catalog: Catalog) -> Engine {
        let next = Engine::new(
            catalog,
            self.counters.clone(),
            self.max_ads,
            self.tolerance_ms,
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

    fn capped(&self, i: usize, viewer: &str, now: DateTime<Utc>) -> bool {
        let over = |caps: &[interlude_decision::catalog::FrequencyCap], line_items: &[usize]| {
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
        let facts = facts(request, now);
        let matched = self.matching_in_rank_order(&facts);
        self.run(
            request,
            &facts,
            &matched,
            now,
            explain,
            Step::Final(external),
        )
        .0
    }

    /// The first step of a hybrid decision: the direct-sold part of the pod, which sizes the auction and names
    /// the third-party tags to fetch. Pacing draws are deterministic, so [`Engine::decide_with`] at the same
    /// `now` makes the same direct choices.
    pub fn decide_direct(&self, request: &PodRequest, now: DateTime<Utc>) -> DirectDecision {
        let facts = facts(request, now);
        let matched = self.matching_in_rank_order(&facts);
        self.run(request, &facts, &matched, now, false, Step::Direct)
            .1
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

    /// Decides many viewers of one break at once (the break-start herd): viewers with the same targeting
    /// context share the targeting work; pacing draws and caps stay per viewer.
    pub fn decide_many(&self, requests: &[PodRequest], now: DateTime<Utc>) -> Vec<Decision> {
        let mut matched: HashMap<Facts, Vec<usize>> = HashMap::new();
        requests
            .iter()
            .map(|r| {
                let f = facts(r, now);
                let m = matched
                    .entry(f.clone())
                    .or_insert_with_key(|f| self.matching_in_rank_order(f));
                self.run(r, &f, m, now, false, Step::Final(&[])).0
            })
            .collect()
    }

    /// Line items whose targeting matches, in the order the pod considers them.
    fn matching_in_rank_order(&self, facts: &Facts) -> Vec<usize> {
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
    fn offers(&self, matched: &[usize], external: &[ExternalAd]) -> Vec<Offer> {
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
    fn excluded(&self, facts: &Facts) -> Vec<String> {
        self.exclusions
            .iter()
            .filter(|(when, _)| when.matches(facts))
            .flat_map(|(_, categories)| categories.iter().cloned())
            .collect()
    }

    /// Pacing and caps for line item `i` and this viewer.
    fn admit(
        &self,
        i: usize,
        request: &PodRequest,
        now: DateTime<Utc>,
        pacers: Option<&Vec<Pacer>>,
    ) -> Result<(), Verdict> {
        let id = &self.catalog.line_items[i].id;
        let probability = pacers
            .and_then(|p| p.get(i))
            .map_or(1.0, Pacer::probability);
        if draw(&request.session_id, id) >= probability {
            return Err(Verdict::PacedOut { probability });
        }
        // Frequency caps count a viewer across sessions by id: only with consent.
        if request.viewer.consent != Some(false)
            && request
                .viewer
                .viewer_id
                .as_deref()
                .is_some_and(|v| self.capped(i, v, now))
        {
            return Err(Verdict::Capped);
        }
        Ok(())
    }

    fn run(
        &self,
        request: &PodRequest,
        facts: &Facts,
        matched: &[usize],
        now: DateTime<Utc>,
        explain: bool,
        step: Step<'_>,
    ) -> (Decision, DirectDecision) {
        let duration_ms = request
            .duration_secs
            .map_or(0, |s| (s * 1000.0).round() as u32);
        let excluded = self.excluded(facts);
        let external = match step {
            Step::Direct => &[][..],
            Step::Final(e) => e,
        };
        let mut verdicts: Vec<(Offer, Verdict)> = Vec::new();
        let mut chosen: Vec<(Offer, Option<&Creative>)> = Vec::new();
        let mut direct = DirectDecision {
            open_ms: 0,
            ads_left: 0,
            advertisers: Vec::new(),
            blocked_categories: excluded.clone(),
            tags: Vec::new(),
        };
        let mut builder = PodBuilder::new(PodRules {
            duration_ms,
            tolerance_ms: self.tolerance_ms,
            max_ads: self.max_ads,
            one_per_advertiser: true,
        });
        let shortest = external
            .iter()
            .map(|e| e.duration_ms)
            .fold(self.shortest_ms, u32::min);
        let pacers = self.pacers.read().ok();
        let holds = self.holds();
        let exclusion = |categories: &[String]| {
            categories
                .iter()
                .find(|c| excluded.contains(c))
                .map(|c| Verdict::ContentExclusion {
                    category: c.clone(),
                })
        };
        for offer in self.offers(matched, external) {
            if !explain && builder.is_full(shortest) {
                break;
            }
            let verdict = match offer {
                Offer::External(e) => {
                    let x = &external[e];
                    let held = x
                        .line_item_id
                        .as_ref()
                        .is_some_and(|l| holds.line_items.contains(l))
                        || holds.advertisers.contains(&x.advertiser);
                    if held {
                        Verdict::Paused
                    } else if let Some(v) = exclusion(&x.categories) {
                        v
                    } else {
                        let candidate = Candidate {
                            id: x.id.clone(),
                            tier: x.tier,
                            value: x.value,
                            duration_ms: x.duration_ms,
                            advertiser: x.advertiser.clone(),
                            categories: x.categories.clone(),
                            cap: None,
                            first_in_pod: false,
                            alternatives_ms: Vec::new(),
                            positions: Default::default(),
                        };
                        match builder.offer(chosen.len(), &candidate) {
                            Ok(()) => {
                                chosen.push((offer, None));
                                Verdict::Chosen
                            }
                            Err(why) => Verdict::Pod(why),
                        }
                    }
                }
                Offer::Line(i) => {
                    let (l, p) = (&self.catalog.line_items[i], &self.prepared[i]);
                    if matches!(step, Step::Direct) && l.tier == Tier::House {
                        // House fills after the auction; the direct step sizes what the auction may sell.
                        continue;
                    }
                    let represented = external
                        .iter()
                        .any(|x| x.line_item_id.as_deref() == Some(l.id.as_str()));
                    if represented {
                        // Its resolved tag competes as an external ad and gets the verdict there.
                        continue;
                    }
                    if holds.line_items.contains(&l.id)
                        || holds.advertisers.contains(&p.advertiser_id)
                    {
                        Verdict::Paused
                    } else if now < l.start || now >= l.end {
                        Verdict::OutOfFlight
                    } else if let Some(v) = exclusion(&p.categories) {
                        v
                    } else if let Some((creative, creative_ms)) = self.servable(i, duration_ms) {
                        if matches!(step, Step::Final(_))
                            && let Some(e) = self.eligible.get(i)
                        {
                            e.fetch_add(1, Ordering::Relaxed);
                        }
                        let mut categories = p.categories.clone();
                        categories.extend(creative.categories.iter().cloned());
                        if let Some(v) = exclusion(&categories) {
                            v
                        } else if let Err(v) = self.admit(i, request, now, pacers.as_deref()) {
                            v
                        } else {
                            let candidate = Candidate {
                                id: l.id.clone(),
                                tier: l.tier,
                                value: l.cpm,
                                duration_ms: creative_ms,
                                advertiser: p.advertiser.clone(),
                                categories,
                                cap: None,
                                first_in_pod: l.first_in_pod,
                                alternatives_ms: Vec::new(),
                                positions: Default::default(),
                            };
                            match builder.offer(chosen.len(), &candidate) {
                                Ok(()) => {
                                    chosen.push((offer, Some(creative)));
                                    if matches!(step, Step::Direct) {
                                        direct.advertisers.push(candidate.advertiser);
                                        direct.blocked_categories.extend(candidate.categories);
                                    }
                                    Verdict::Chosen
                                }
                                Err(why) => Verdict::Pod(why),
                            }
                        }
                    } else if p.tags.is_empty() {
                        Verdict::NoServableCreative
                    } else if matches!(step, Step::Direct) {
                        if self.admit(i, request, now, pacers.as_deref()).is_ok() {
                            direct.tags.extend(p.tags.iter().filter_map(|&c| {
                                let c = self.catalog.creatives.get(c)?;
                                Some(TagRequest {
                                    line_item_id: l.id.clone(),
                                    creative_id: c.id.clone(),
                                    tag: c.vast_tag.clone()?,
                                })
                            }));
                        }
                        continue;
                    } else {
                        Verdict::ThirdPartyUnavailable
                    }
                }
            };
            if explain {
                verdicts.push((offer, verdict));
            }
        }
        drop(pacers);
        let unfilled_ms = builder.finish(Vec::new()).unfilled_ms;
        direct.open_ms = unfilled_ms;
        direct.ads_left = self.max_ads.saturating_sub(chosen.len());
        let ads = chosen
            .iter()
            .enumerate()
            .filter_map(|(slot, &(offer, creative))| {
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
                            bid: None,
                            source: None,
                        }
                    }
                })
            })
            .collect();
        let explanation = if explain {
            self.consent_explained(request, now, self.explanation(verdicts, external))
        } else {
            Vec::new()
        };
        (
            Decision {
                pod: Pod { ads },
                unfilled_ms,
                explanation,
            },
            direct,
        )
    }

    /// Where the viewer refused personalisation, line items that missed targeting but would have matched with
    /// the viewer's audience segments are shown as [`Verdict::NeedsConsent`]: consent changed the decision.
    fn consent_explained(
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
        let with_segments: std::collections::HashSet<usize> = self
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
    fn explanation(
        &self,
        verdicts: Vec<(Offer, Verdict)>,
        external: &[ExternalAd],
    ) -> Vec<(String, Verdict)> {
        let mut lines: Vec<Option<Verdict>> = vec![None; self.catalog.line_items.len()];
        let mut others = Vec::new();
        for (offer, verdict) in verdicts {
            match offer {
                Offer::Line(i) => lines[i] = Some(verdict),
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

fn parse_resolution(text: &str) -> Option<(u32, u32)> {
    let (w, h) = text.split_once(['x', 'X'])?;
    Some((w.trim().parse().ok()?, h.trim().parse().ok()?))
}

/// The engine as the stitcher's pod source: decides at once (the engine never waits on I/O).
pub struct EnginePodSource {
    engine: Arc<Engine>,
    clock: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>,
}

impl EnginePodSource {
    /// A pod source over `engine`, deciding at `clock()`.
    pub fn new(engine: Arc<Engine>, clock: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>) -> Self {
        EnginePodSource { engine, clock }
    }
}

impl interlude_decision::PodSource for EnginePodSource {
    fn pod(&self, request: PodRequest) -> interlude_decision::request::PodFuture<'_> {
        let decision = self.engine.decide(&request, (self.clock)(), false);
        tracing::debug!(session = %request.session_id, break_id = %request.break_id,
            ads = decision.pod.ads.len(), unfilled_ms = decision.unfilled_ms, "Decided pod.");
        Box::pin(std::future::ready(Ok(decision.pod)))
    }
}
