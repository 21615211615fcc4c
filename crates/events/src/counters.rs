//! The read seams other layers take from what the pipeline counted: [`Counters`] (pacing and frequency caps,
//! read by the decision engine) and [`Prices`] (spend in reports and the ledger).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

/// Live delivery counts, read by the decision engine for pacing and frequency caps; the event store updates
/// them in the same transaction as the billing counts, so pacing never sees an event billing does not.
pub trait Counters: Send + Sync {
    /// Impressions delivered by `line_item_id` in event time at or after `since` (whole hours: `since` is
    /// floored to its hour).
    fn delivered(&self, line_item_id: &str, since: DateTime<Utc>) -> u64;
    /// Impressions of `line_item_id` shown to `viewer_id` at or after `since` (floored to the hour).
    fn viewer_impressions(&self, viewer_id: &str, line_item_id: &str, since: DateTime<Utc>) -> u64;
    /// Every line item `viewer_id` was counted for at or after `since` (floored to its hour), in hour buckets:
    /// one read answers all of a decision's frequency caps, where [`Counters::viewer_impressions`] costs one
    /// read per capped candidate. `None` when this store answers per line item only (the engine then asks
    /// per line item).
    fn viewer_hours(&self, _viewer_id: &str, _since: DateTime<Utc>) -> Option<Vec<ViewerHour>> {
        None
    }
    /// Loads what [`Counters::viewer_impressions`] will need for `viewer_id`, just before that viewer's
    /// decision: remote stores fetch it here so the engine's reads stay synchronous; local ones need nothing.
    fn prefetch<'a>(
        &'a self,
        _viewer_id: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>> {
        Box::pin(std::future::ready(()))
    }
}

/// One hour bucket of a viewer's impressions of one line item ([`Counters::viewer_hours`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewerHour {
    /// The line item.
    pub line_item_id: String,
    /// The start of the hour, Unix seconds.
    pub hour: i64,
    /// Impressions counted in that hour.
    pub impressions: u64,
}

/// Line-item prices, for spend in reports and the ledger: the decision engine's catalog implements it; until
/// then a map from configuration does.
pub trait Prices: Send + Sync {
    /// CPM of `line_item_id` in millionths of the currency unit, if priced.
    fn cpm_micros(&self, line_item_id: &str) -> Option<u64>;
}

impl Prices for BTreeMap<String, u64> {
    fn cpm_micros(&self, line_item_id: &str) -> Option<u64> {
        self.get(line_item_id).copied()
    }
}
