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

/// One hour of one bidder's seat and deal: the cell demand reports (by bidder, seat or deal) are built from.
/// Counted events of programmatic ads land in it (with the currency of their price); the decider's auction
/// outcomes too, with an empty currency, and with an empty seat and deal for what concerns the bidder as a
/// whole (asked, timed out, failed, no bid).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DemandKey {
    /// Start of the hour, seconds since the Unix epoch.
    pub hour: i64,
    /// The bidder as configured.
    pub bidder: String,
    /// The seat ("" for the bidder as a whole).
    pub seat: String,
    /// The deal ("" for the open auction).
    pub deal_id: String,
    /// ISO 4217 of the prices summed in the cell ("" for auction outcomes).
    pub currency: String,
}

impl DemandKey {
    /// The cell of a counted event of the ad `demand` won, at `occurred_at`.
    pub fn of(demand: &crate::contract::Demand, occurred_at: DateTime<Utc>) -> DemandKey {
        DemandKey {
            hour: floor(occurred_at, 3600),
            bidder: demand.bidder.clone(),
            seat: demand.seat.clone(),
            deal_id: demand.deal_id.clone().unwrap_or_default(),
            currency: demand.currency.clone(),
        }
    }

    /// The key's fields in their stored order (after the hour).
    pub fn fields(&self) -> [&str; 4] {
        [&self.bidder, &self.seat, &self.deal_id, &self.currency]
    }
}

/// What counted events of programmatic ads add to a [`DemandKey`] cell.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivered {
    /// The counted events.
    pub counts: Counts,
    /// Σ clearing CPM of the counted impressions, in millionths of the currency: spend is this over 1000,
    /// kept whole so sums stay exact.
    pub price_cpm_micros_sum: u64,
}

impl Delivered {
    /// Adds `other`.
    pub fn add(&mut self, other: &Delivered) {
        self.counts.add(&other.counts);
        self.price_cpm_micros_sum = self
            .price_cpm_micros_sum
            .saturating_add(other.price_cpm_micros_sum);
    }

    /// Spend in millionths of the currency.
    pub fn spend_micros(&self) -> u64 {
        self.price_cpm_micros_sum / 1000
    }
}

/// Auction outcomes in a [`DemandKey`] cell, as the decider saw them (OpenRTB 2.6 §4: a request, bids back or
/// none, a win or a loss per bid).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuctionCounts {
    /// Bid requests sent to the bidder.
    pub requests: u64,
    /// Requests answered with no bid (HTTP 204 or an empty response).
    pub no_bids: u64,
    /// Requests not answered within `tmax`.
    pub timeouts: u64,
    /// Requests that failed otherwise (HTTP error, unreadable response) or were not sent (over the QPS cap).
    pub errors: u64,
    /// Bids received.
    pub bids: u64,
    /// Bids that won a place in a pod.
    pub wins: u64,
    /// Bids that lost (outbid, below floor, blocked, creative unusable, invalid).
    pub losses: u64,
}

impl AuctionCounts {
    /// The counts in their stored order.
    pub fn as_array(&self) -> [u64; 7] {
        [
            self.requests,
            self.no_bids,
            self.timeouts,
            self.errors,
            self.bids,
            self.wins,
            self.losses,
        ]
    }

    /// The counts from [`Self::as_array`]'s order.
    pub fn from_array(a: [u64; 7]) -> AuctionCounts {
        let [requests, no_bids, timeouts, errors, bids, wins, losses] = a;
        AuctionCounts {
            requests,
            no_bids,
            timeouts,
            errors,
            bids,
            wins,
            losses,
        }
    }

    /// Adds `other`.
    pub fn add(&mut self, other: &AuctionCounts) {
        let (a, b) = (self.as_array(), other.as_array());
        *self = AuctionCounts::from_array(std::array::from_fn(|i| a[i].saturating_add(b[i])));
    }
}
