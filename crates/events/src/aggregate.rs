//! What a counted event adds to: the counts of one aggregate cell, the one-minute window and the hourly
//! billing ledger it lands in, and spend arithmetic.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::contract::EventType;

/// Counts of one aggregate cell.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Impressions.
    pub impressions: u64,
    /// Starts.
    pub starts: u64,
    /// First quartiles.
    pub first_quartiles: u64,
    /// Midpoints.
    pub midpoints: u64,
    /// Third quartiles.
    pub third_quartiles: u64,
    /// Completes.
    pub completes: u64,
    /// Clicks.
    pub clicks: u64,
    /// Errors.
    pub errors: u64,
}

impl Counts {
    /// One event of type `t` (pause/resume/mute are not aggregated).
    pub fn one(t: EventType) -> Counts {
        let mut c = Counts::default();
        match t {
            EventType::Impression => c.impressions = 1,
            EventType::Start => c.starts = 1,
            EventType::FirstQuartile => c.first_quartiles = 1,
            EventType::Midpoint => c.midpoints = 1,
            EventType::ThirdQuartile => c.third_quartiles = 1,
            EventType::Complete => c.completes = 1,
            EventType::Click => c.clicks = 1,
            EventType::Error => c.errors = 1,
            EventType::Pause | EventType::Resume | EventType::Mute | EventType::Unmute => {}
        }
        c
    }

    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &Counts) {
        self.impressions += other.impressions;
        self.starts += other.starts;
        self.first_quartiles += other.first_quartiles;
        self.midpoints += other.midpoints;
        self.third_quartiles += other.third_quartiles;
        self.completes += other.completes;
        self.clicks += other.clicks;
        self.errors += other.errors;
    }

    /// The counts in a fixed order (impressions, starts, the three quartiles, completes, clicks, errors): the
    /// column order of CSV reports and of the store's encoding.
    pub fn as_array(&self) -> [u64; 8] {
        [
            self.impressions,
            self.starts,
            self.first_quartiles,
            self.midpoints,
            self.third_quartiles,
            self.completes,
            self.clicks,
            self.errors,
        ]
    }

    /// Completes over impressions (0 without impressions).
    pub fn completion_rate(&self) -> f64 {
        if self.impressions == 0 {
            0.0
        } else {
            self.completes as f64 / self.impressions as f64
        }
    }
}

/// The dimensions of a one-minute window cell.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct WindowKey {
    /// Start of the minute, seconds since the Unix epoch.
    pub minute: i64,
    /// Campaign ("" when unknown).
    pub campaign_id: String,
    /// Line item ("" when unknown).
    pub line_item_id: String,
    /// Creative.
    pub creative_id: String,
    /// Channel.
    pub channel: String,
    /// Live event ("" when unknown).
    pub live_event_id: String,
}

/// A [`WindowKey`] by reference: what the pipeline hands its state for each counted event, so a store that
/// already holds the cell allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WindowCell<'a> {
    /// Start of the minute, seconds since the Unix epoch.
    pub minute: i64,
    /// Campaign ("" when unknown).
    pub campaign_id: &'a str,
    /// Line item ("" when unknown).
    pub line_item_id: &'a str,
    /// Creative.
    pub creative_id: &'a str,
    /// Channel.
    pub channel: &'a str,
    /// Live event ("" when unknown).
    pub live_event_id: &'a str,
}

impl WindowCell<'_> {
    /// The owned key.
    pub fn to_key(&self) -> WindowKey {
        WindowKey {
            minute: self.minute,
            campaign_id: self.campaign_id.to_owned(),
            line_item_id: self.line_item_id.to_owned(),
            creative_id: self.creative_id.to_owned(),
            channel: self.channel.to_owned(),
            live_event_id: self.live_event_id.to_owned(),
        }
    }
}

/// Hashes as its [`WindowCell`] does, so maps keyed by [`WindowKey`] can be searched with a cell.
impl std::hash::Hash for WindowKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.cell().hash(state);
    }
}

impl WindowKey {
    /// The key by reference.
    pub fn cell(&self) -> WindowCell<'_> {
        WindowCell {
            minute: self.minute,
            campaign_id: &self.campaign_id,
            line_item_id: &self.line_item_id,
            creative_id: &self.creative_id,
            channel: &self.channel,
            live_event_id: &self.live_event_id,
        }
    }
}

/// Where a counted event lands in the hourly billing ledger.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LedgerKey {
    /// Line item ("" when unknown).
    pub line_item_id: String,
    /// Start of the hour, seconds since the Unix epoch.
    pub hour: i64,
}

/// The start of the `secs`-long period `t` falls in, in seconds since the Unix epoch.
pub(crate) fn floor(t: DateTime<Utc>, secs: i64) -> i64 {
    t.timestamp().div_euclid(secs) * secs
}

/// Spend of `impressions` at `cpm_micros`, in millionths of the currency unit (CPM is per thousand).
pub fn spend_micros(impressions: u64, cpm_micros: u64) -> u64 {
    u64::try_from(u128::from(impressions) * u128::from(cpm_micros) / 1000).unwrap_or(u64::MAX)
}
