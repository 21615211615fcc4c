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

use crate::catalog::{Catalog, Creative, LineItem};
use crate::pacing::Pacer;
use crate::pod::{Candidate, PodRules, Rejection, build_pod};
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
    index: TargetingIndex<usize>,
    pacers: RwLock<Vec<Pacer>>,
    eligible: Vec<AtomicU64>,
    counters: Arc<dyn Counters>,
    max_ads: usize,
    tolerance_ms: u32,
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
        Engine {
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

    fn servable<'a>(&'a self, l: &LineItem, duration_ms: u32) -> Option<&'a Creative> {
        // The longest approved creative with renditions that fits the break: fills the most.
        self.catalog
            .creatives
            .iter()
            .filter(|c| l.creatives.contains(&c.id) && c.approved && !c.renditions.is_empty())
            .filter(|c| {
                (c.duration_secs * 1000.0) as u32 <= duration_ms.saturating_add(self.tolerance_ms)
            })
            .max_by(|a, b| a.duration_secs.total_cmp(&b.duration_secs))
    }

    fn capped(&self, l: &LineItem, viewer: &str, now: DateTime<Utc>) -> bool {
        let over = |caps: &[crate::catalog::FrequencyCap], line_items: &[&str]| {
            caps.iter().any(|cap| {
                let since = now - TimeDelta::hours(i64::from(cap.window_hours));
                let seen: u64 = line_items
                    .iter()
                    .map(|li| self.counters.viewer_impressions(viewer, li, since))
                    .sum();
                seen >= u64::from(cap.max)
            })
        };
        if over(&l.frequency_caps, &[l.id.as_str()]) {
            return true;
        }
        let Some(campaign) = self.catalog.campaigns.iter().find(|c| c.id == l.campaign) else {
            return false;
        };
        let siblings: Vec<&str> = self
            .catalog
            .line_items
            .iter()
            .filter(|x| x.campaign == campaign.id)
            .map(|x| x.id.as_str())
            .collect();
        over(&campaign.frequency_caps, &siblings)
    }

    /// Decides the pod for `request` at `now`; `explain` adds every line item's verdict.
    pub fn decide(&self, request: &PodRequest, now: DateTime<Utc>, explain: bool) -> Decision {
        let duration_ms = request
            .duration_secs
            .map_or(0, |s| (s * 1000.0).round() as u32);
        let matched = self.index.matching(&facts(request));
        let mut verdicts: Vec<(usize, Verdict)> = Vec::new();
        let mut candidates: Vec<Candidate> = Vec::new();
        let mut sources: Vec<(usize, &Creative)> = Vec::new();
        let pacers = self.pacers.read().ok();
        for &i in &matched {
            let l = &self.catalog.line_items[i];
            let verdict = if now < l.start || now >= l.end {
                Some(Verdict::OutOfFlight)
            } else if let Some(creative) = self.servable(l, duration_ms) {
                if let Some(e) = self.eligible.get(i) {
                    e.fetch_add(1, Ordering::Relaxed);
                }
                let probability = pacers
                    .as_ref()
                    .and_then(|p| p.get(i))
                    .map_or(1.0, Pacer::probability);
                let capped = request
                    .viewer
                    .viewer_id
                    .as_deref()
                    .is_some_and(|v| self.capped(l, v, now));
                if draw(&request.session_id, &l.id) >= probability {
                    Some(Verdict::PacedOut { probability })
                } else if capped {
                    Some(Verdict::Capped)
                } else {
                    let advertiser = self
                        .catalog
                        .campaigns
                        .iter()
                        .find(|c| c.id == l.campaign)
                        .map(|c| c.advertiser.clone())
                        .unwrap_or_default();
                    let mut categories: Vec<String> = self
                        .catalog
                        .advertisers
                        .iter()
                        .find(|a| a.id == advertiser)
                        .map(|a| a.categories.clone())
                        .unwrap_or_default();
                    categories.extend(creative.categories.iter().cloned());
                    candidates.push(Candidate {
                        id: l.id.clone(),
                        tier: l.tier,
                        value: l.cpm,
                        duration_ms: (creative.duration_secs * 1000.0).round() as u32,
                        advertiser,
                        categories,
                        cap: None,
                        first_in_pod: l.first_in_pod,
                    });
                    sources.push((i, creative));
                    None
                }
            } else {
                Some(Verdict::NoServableCreative)
            };
            if let Some(v) = verdict {
                verdicts.push((i, v));
            }
        }
        drop(pacers);
        let rules = PodRules {
            duration_ms,
            tolerance_ms: self.tolerance_ms,
            max_ads: self.max_ads,
        };
        let built = build_pod(&candidates, &rules);
        let ads = built
            .chosen
            .iter()
            .enumerate()
            .filter_map(|(slot, &c)| {
                let (i, creative) = sources.get(c)?;
                let l = &self.catalog.line_items[*i];
                verdicts.push((*i, Verdict::Chosen));
                Some(PodAd {
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
                })
            })
            .collect();
        let explanation = if explain {
            for (c, why) in built.rejected {
                if let Some((i, _)) = sources.get(c) {
                    verdicts.push((*i, Verdict::Pod(why)));
                }
            }
            let matched_set: std::collections::HashSet<usize> = matched.iter().copied().collect();
            for i in 0..self.catalog.line_items.len() {
                if !matched_set.contains(&i) {
                    verdicts.push((i, Verdict::TargetingMiss));
                }
            }
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
            unfilled_ms: built.unfilled_ms,
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
