//! The viewer's recent past, read once per decision: the seam between the engine and the counters.
//!
//! Frequency caps, sequential creative rotation and separation across breaks all need what one viewer saw
//! lately. Asking the store per line item (the older [`Counters::viewer_impressions`]) costs one read per
//! capped candidate, and one per sibling line item for a campaign cap; a [`ViewerHistory`] is one read per
//! viewer per decision, and the engine answers every cap from it in memory. Stores implement
//! [`ViewerHistorySource`]; an engine built over plain [`Counters`] keeps working (see
//! [`Engine::new`](crate::engine::Engine::new)) with per-line-item reads, memoised within a decision.
//!
//! Pending impressions (reserved for a pod decided but not yet delivered, see [`crate::reservation`]) belong
//! in the history too: a cap must count an ad the viewer is about to see.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use interlude_events::Counters;
use serde::{Deserialize, Serialize};

/// Impressions of one ad (or hour bucket of them) in a viewer's past.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PastImpression {
    /// The line item.
    pub line_item_id: String,
    /// The creative, when the store keeps it (creative caps, sequential rotation).
    pub creative_id: Option<String>,
    /// The session, when the store keeps it (session caps, separation across breaks).
    pub session_id: Option<String>,
    /// The break, when the store keeps it (separation across breaks).
    pub break_id: Option<String>,
    /// When (for hour buckets, the start of the hour).
    pub at: DateTime<Utc>,
    /// How many impressions (1 for a single ad; more for a bucket).
    pub count: u32,
    /// Reserved, not yet delivered.
    pub pending: bool,
}

/// What one viewer saw (or is about to see) lately, newest last or in any order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewerHistory {
    /// The impressions.
    pub impressions: Vec<PastImpression>,
}

/// Where the engine reads a viewer's history: one call per decision.
pub trait ViewerHistorySource: Send + Sync {
    /// The viewer's impressions at or after `since` (older ones may be included; the engine filters).
    fn viewer_history(&self, viewer_id: &str, since: DateTime<Utc>) -> Arc<ViewerHistory>;
    /// Impressions delivered by `line_item_id` at or after `since`, for pacing.
    fn delivered(&self, line_item_id: &str, since: DateTime<Utc>) -> u64;
}

/// Histories held in memory, by viewer id: tests, benchmarks, and a store that loads a viewer's history at
/// prefetch time.
#[derive(Debug, Default)]
pub struct MemoryHistory {
    /// Histories by viewer id.
    pub viewers: HashMap<String, Arc<ViewerHistory>>,
    /// Delivered impressions by line item.
    pub delivered: HashMap<String, u64>,
}

impl ViewerHistorySource for MemoryHistory {
    fn viewer_history(&self, viewer_id: &str, _since: DateTime<Utc>) -> Arc<ViewerHistory> {
        self.viewers.get(viewer_id).cloned().unwrap_or_default()
    }

    fn delivered(&self, line_item_id: &str, _since: DateTime<Utc>) -> u64 {
        self.delivered.get(line_item_id).copied().unwrap_or(0)
    }
}

/// A history source as the older per-line-item [`Counters`], for callers that read counts through them
/// (the server prefetches a viewer through [`Engine::counters`](crate::engine::Engine::counters)).
pub(crate) struct HistoryCounters(pub(crate) Arc<dyn ViewerHistorySource>);

impl Counters for HistoryCounters {
    fn delivered(&self, line_item_id: &str, since: DateTime<Utc>) -> u64 {
        self.0.delivered(line_item_id, since)
    }

    fn viewer_impressions(&self, viewer_id: &str, line_item_id: &str, since: DateTime<Utc>) -> u64 {
        self.0
            .viewer_history(viewer_id, since)
            .impressions
            .iter()
            .filter(|h| h.line_item_id == line_item_id && h.at >= since)
            .map(|h| u64::from(h.count))
            .sum()
    }
}
