//! The decision engine: from a viewer and a break to a pod, over the catalog.
//!
//! Per request: targeting (through the compiled index) → flight and approval → pacing (a per-line-item serve
//! probability, drawn deterministically from the session and line item so a retried decision agrees) →
//! frequency caps (from the event pipeline's live [`Counters`]) → pod construction. With `explain`, every line
//! item gets the reason it was or was not chosen.
//!
//! Pacers are refreshed from delivered counts by [`Engine::refresh_pacing`], which the server calls every
//! minute; the request path only reads them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use chrono::{DateTime, TimeDelta, Utc};
use interlude_events::pipeline::Counters;
use interlude_stitch::{CreativeRendition, Pod, PodAd, PodRequest, ViewerContext};
use serde::Serialize;

use crate::catalog::{Catalog, Creative};
use crate::pacing::Pacer;
use crate::pod::{Candidate, PodBuilder, PodRules, Rejection};
use crate::targeting::{Facts, Field, TargetingIndex};

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
    /// Pacing held it back this time.
    PacedOut {
        /// The serve probability it had.
        probability: f64,
    },
    /// The viewer has seen it (or its campaign) as often as allowed.
    Capped,
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
    /// Line item id → verdict (only with `explain`).
    pub explanation: Vec<(String, Verdict)>,
}

/// The engine over one catalog.
pub struct Engine {
    catalog: Catalog,
    prepared: Vec<Prepared>,
    /// Each line item's position in the order the pod considers candidates: tier, then CPM, then the longest
    /// creative, then catalog order.
    rank: Vec<usize>,
    /// Line items in rank order (the inverse of `rank`).
    order: Vec<usize>,
    /// The shortest servable creative of the catalog: once less time is left, no candidate can fit.
    shortest_ms: u32,
    index: TargetingIndex<usize>,
    pacers: RwLock<Vec<Pacer>>,
    eligible: Vec<AtomicU64>,
    counters: Arc<dyn Counters>,
    max_ads: usize,
    tolerance_ms: u32,
}

/// What a decision needs of a line item, resolved once when the catalog is loaded (never scanned per request).
struct Prepared {
    advertiser: String,
    /// The advertiser's competitive categories.
    categories: Vec<String>,
    /// Servable creatives (approved, with renditions): index into the catalog and duration in ms, longest first.
    creatives: Vec<(usize, u32)>,
    /// Line items of the same campaign (for campaign-level caps), including itself.
    siblings: Vec<usize>,
    /// Index of its campaign.
    campaign: Option<usize>,
}

fn prepare(catalog: &Catalog) -> Vec<Prepared> {
    use std::collections::HashMap;
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
            let categories = advertiser_index
                .get(advertiser.as_str())
                .and_then(|&a| catalog.advertisers.get(a))
                .map(|a| a.categories.clone())
                .unwrap_or_default();
            let mut creatives: Vec<(usize, u32)> = l
                .creatives
                .iter()
                .filter_map(|id| creative_index.get(id.as_str()).copied())
                .filter_map(|i| {
                    let c = catalog.creatives.get(i)?;
                    (c.approved && !c.renditions.is_empty())
                        .then(|| (i, (c.duration_secs * 1000.0).round() as u32))
                })
                .collect();
            creatives.sort_by_key(|c| std::cmp::Reverse(c.1));
            Prepared {
                advertiser,
                categories,
                creatives,
                siblings: by_campaign
                    .get(l.campaign.as_str())
                    .cloned()
                    .unwrap_or_default(),
                campaign,
            }
        })
        .collect()
}

fn facts(request: &PodRequest) -> Facts {
    let v: &ViewerContext = &request.viewer;
    let mut f = Facts::default().with(Field::Channel, request.channel.clone());
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
    for s in &v.segments {
        f = f.with(Field::Segment, s.clone());
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
                            .unwrap_or(crate::targeting::Expr::All(Vec::new())),
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
        let mut order: Vec<usize> = (0..catalog.line_items.len()).collect();
        order.sort_by(|&a, &b| {
            let (x, y) = (&catalog.line_items[a], &catalog.line_items[b]);
            let longest = |i: usize| prepared[i].creatives.first().map_or(0, |c| c.1);
            x.tier
                .cmp(&y.tier)
                .then(y.cpm.total_cmp(&x.cpm))
                .then(longest(b).cmp(&longest(a)))
                .then(a.cmp(&b))
        });
        let mut rank = vec![0; order.len()];
        for (position, &i) in order.iter().enumerate() {
            rank[i] = position;
        }
        let shortest_ms = prepared
            .iter()
            .flat_map(|p| p.creatives.iter().map(|c| c.1))
            .min()
            .unwrap_or(0);
        Engine {
            prepared,
            rank,
            order,
            shortest_ms,
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

    /// Updates every pacer from delivered counts (call periodically).
    pub fn refresh_pacing(&self, now: DateTime<Utc>) {
        let Ok(mut pacers) = self.pacers.write() else {
            return;
        };
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
        let over = |caps: &[crate::catalog::FrequencyCap], line_items: &[usize]| {
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

    /// Decides the pod for `request` at `now`; `explain` adds every line item's verdict.
    pub fn decide(&self, request: &PodRequest, now: DateTime<Utc>, explain: bool) -> Decision {
        let matched = self.matching_in_rank_order(&facts(request));
        self.decide_from(request, &matched, now, explain)
    }

    /// Decides many viewers of one break at once (the break-start herd): viewers with the same targeting
    /// context share the targeting work; pacing draws and caps stay per viewer.
    pub fn decide_many(&self, requests: &[PodRequest], now: DateTime<Utc>) -> Vec<Decision> {
        let mut matched: std::collections::HashMap<Facts, Vec<usize>> =
            std::collections::HashMap::new();
        requests
            .iter()
            .map(|r| {
                let f = facts(r);
                let m = matched
                    .entry(f)
                    .or_insert_with_key(|f| self.matching_in_rank_order(f));
                self.decide_from(r, m, now, false)
            })
            .collect()
    }

    /// Line items whose targeting matches, in the order the pod considers them.
    fn matching_in_rank_order(&self, facts: &Facts) -> Vec<usize> {
        // The pod takes candidates in rank order, so examining them in that order lets the decision stop as soon
        // as the pod is full instead of weighing every eligible line item. Marking ranks and walking them is
        // linear in the catalog, cheaper than sorting thousands of matches.
        let mut by_rank = vec![false; self.order.len()];
        for i in self.index.matching(facts) {
            if let Some(&r) = self.rank.get(i) {
                by_rank[r] = true;
            }
        }
        by_rank
            .iter()
            .zip(&self.order)
            .filter(|(m, _)| **m)
            .map(|(_, &i)| i)
            .collect()
    }

    fn decide_from(
        &self,
        request: &PodRequest,
        matched: &[usize],
        now: DateTime<Utc>,
        explain: bool,
    ) -> Decision {
        let duration_ms = request
            .duration_secs
            .map_or(0, |s| (s * 1000.0).round() as u32);
        let mut verdicts: Vec<(usize, Verdict)> = Vec::new();
        let mut chosen: Vec<(usize, &Creative)> = Vec::new();
        let mut builder = PodBuilder::new(PodRules {
            duration_ms,
            tolerance_ms: self.tolerance_ms,
            max_ads: self.max_ads,
        });
        let pacers = self.pacers.read().ok();
        for &i in matched {
            if !explain && builder.is_full(self.shortest_ms) {
                break;
            }
            let (Some(l), Some(p)) = (self.catalog.line_items.get(i), self.prepared.get(i)) else {
                continue;
            };
            let verdict = if now < l.start || now >= l.end {
                Verdict::OutOfFlight
            } else if let Some((creative, creative_ms)) = self.servable(i, duration_ms) {
                if let Some(e) = self.eligible.get(i) {
                    e.fetch_add(1, Ordering::Relaxed);
                }
                let probability = pacers
                    .as_ref()
                    .and_then(|p| p.get(i))
                    .map_or(1.0, Pacer::probability);
                if draw(&request.session_id, &l.id) >= probability {
                    Verdict::PacedOut { probability }
                } else if request
                    .viewer
                    .viewer_id
                    .as_deref()
                    .is_some_and(|v| self.capped(i, v, now))
                {
                    Verdict::Capped
                } else {
                    let mut categories = p.categories.clone();
                    categories.extend(creative.categories.iter().cloned());
                    let candidate = Candidate {
                        id: l.id.clone(),
                        tier: l.tier,
                        value: l.cpm,
                        duration_ms: creative_ms,
                        advertiser: p.advertiser.clone(),
                        categories,
                        cap: None,
                        first_in_pod: l.first_in_pod,
                    };
                    match builder.offer(i, &candidate) {
                        Ok(()) => {
                            chosen.push((i, creative));
                            Verdict::Chosen
                        }
                        Err(why) => Verdict::Pod(why),
                    }
                }
            } else {
                Verdict::NoServableCreative
            };
            if explain {
                verdicts.push((i, verdict));
            }
        }
        drop(pacers);
        let unfilled_ms = builder.finish(Vec::new()).unfilled_ms;
        let ads = chosen
            .iter()
            .enumerate()
            .map(|(slot, &(i, creative))| {
                let l = &self.catalog.line_items[i];
                PodAd {
                    ad_instance_id: format!("{}-{}-{slot}", request.session_id, request.break_id),
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
                }
            })
            .collect();
        let explanation = if explain {
            let mut seen = vec![false; self.catalog.line_items.len()];
            for (i, _) in &verdicts {
                seen[*i] = true;
            }
            verdicts.extend(
                seen.iter()
                    .enumerate()
                    .filter(|(_, s)| !**s)
                    .map(|(i, _)| (i, Verdict::TargetingMiss)),
            );
            verdicts.sort_by_key(|(i, _)| *i);
            verdicts
                .into_iter()
                .map(|(i, v)| (self.catalog.line_items[i].id.clone(), v))
                .collect()
        } else {
            Vec::new()
        };
        Decision {
            pod: Pod { ads },
            unfilled_ms,
            explanation,
        }
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

impl interlude_stitch::PodSource for EnginePodSource {
    fn pod(&self, request: PodRequest) -> interlude_stitch::source::PodFuture<'_> {
        let decision = self.engine.decide(&request, (self.clock)(), false);
        tracing::debug!(session = %request.session_id, break_id = %request.break_id,
            ads = decision.pod.ads.len(), unfilled_ms = decision.unfilled_ms, "Decided pod.");
        Box::pin(std::future::ready(Ok(decision.pod)))
    }
}
