//! What the engine answers: decisions with their explanation, the direct step of a hybrid decision, operator
//! holds, and the engine as the stitcher's pod source.

use std::sync::Arc;

use crate::{Pod, PodRequest};
use serde::Serialize;

use super::Engine;
use crate::pod::Rejection;

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

/// Operator kill switches: line items and advertisers that must not serve, whatever else is true. Checked on
/// every decision, so a hold applies to the next pod decided anywhere the engine runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Holds {
    /// Paused line item ids.
    pub line_items: std::collections::BTreeSet<String>,
    /// Paused advertisers (catalog ids; for programmatic ads, their domain).
    pub advertisers: std::collections::BTreeSet<String>,
}

/// The engine as the stitcher's pod source: decides at once (the engine never waits on I/O).
pub struct EnginePodSource {
    engine: Arc<Engine>,
    clock: interlude_events::Clock,
}

impl EnginePodSource {
    /// A pod source over `engine`, deciding at `clock()`.
    pub fn new(engine: Arc<Engine>, clock: interlude_events::Clock) -> Self {
        EnginePodSource { engine, clock }
    }
}

impl crate::PodSource for EnginePodSource {
    fn pod(&self, request: PodRequest) -> crate::request::PodFuture<'_> {
        let decision = self.engine.decide(&request, (self.clock)(), false);
        tracing::debug!(session = %request.session_id, break_id = %request.break_id,
            ads = decision.pod.ads.len(), unfilled_ms = decision.unfilled_ms, "Decided pod.");
        Box::pin(std::future::ready(Ok(decision.pod)))
    }
}
