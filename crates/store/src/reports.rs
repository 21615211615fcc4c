//! What reports, the billing ledger, erasure and retention return, and the pure builders every
//! [`crate::ReportStore`] shares (so the embedded store and PostgreSQL answer the same rows by construction).

use chrono::DateTime;
use std::collections::BTreeMap;

use interlude_events::{
    AuctionCounts, Counts, Delivered, DemandKey, Prices, WindowKey, spend_micros,
};
use serde::Serialize;

/// One row of a report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportRow {
    /// The value of the grouping dimension.
    pub key: String,
    /// The counts.
    #[serde(flatten)]
    pub counts: Counts,
    /// Completes over impressions.
    pub completion_rate: f64,
    /// Spend of the impressions at their line items' CPMs, in millionths of the currency unit (unpriced line
    /// items add nothing).
    pub spend_micros: u64,
}

/// One line item's hour in the billing ledger.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LedgerRow {
    /// Line item ("" when unknown).
    pub line_item_id: String,
    /// Start of the hour, seconds since the Unix epoch.
    pub hour: i64,
    /// Counts booked while the hour was open.
    pub original: Counts,
    /// Corrections appended after the hour was final (late events), oldest first.
    pub corrections: Vec<Counts>,
    /// The line item's CPM in millionths of the currency unit, when priced.
    pub cpm_micros: Option<u64>,
    /// Spend of the original and the corrections together, in millionths of the currency unit.
    pub spend_micros: u64,
}

/// Report grouping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    /// Campaign.
    Campaign,
    /// Line item.
    LineItem,
    /// Creative.
    Creative,
    /// Channel.
    Channel,
    /// Live event.
    LiveEvent,
    /// Minute (event time, RFC 3339).
    Minute,
    /// Hour (event time, RFC 3339).
    Hour,
    /// Day (event time, UTC, RFC 3339).
    Day,
}

/// What forgetting viewers changed in one store (the deletion receipt's line for it).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Forgotten {
    /// Logged events whose viewer id was removed (the event stays: it is billing data).
    pub log_events_anonymised: u64,
    /// Quarantined events whose viewer id was removed.
    pub quarantine_anonymised: u64,
    /// Per-viewer frequency rows deleted.
    pub frequency_rows_deleted: u64,
}

/// What a retention sweep removed.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Compacted {
    /// Raw events removed from the log.
    pub log_events: u64,
    /// Quarantined events removed.
    pub quarantined: u64,
}

/// Demand report grouping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DemandGroupBy {
    /// Bidder (DSP): every outcome, the bidder's own (requests, timeouts, errors, no bids) included.
    Bidder,
    /// `bidder/seat`: bids and what they delivered; outcomes of the bidder as a whole have no seat and are
    /// left out.
    Seat,
    /// `bidder/deal`, `bidder/open` for the open auction: bids and what they delivered, as for seats.
    Deal,
}

/// One row of a demand report: auction outcomes as the deciders saw them, and the counted delivery of the
/// ads they won.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DemandRow {
    /// The value of the grouping dimension.
    pub key: String,
    /// Auction outcomes.
    #[serde(flatten)]
    pub auctions: AuctionCounts,
    /// Counted events of the ads won.
    pub delivered: Counts,
    /// Spend at the clearing prices, in millionths of each currency (ISO 4217 → micros).
    pub spend_micros: BTreeMap<String, u64>,
}

/// Groups demand cells (delivery from the pipeline, outcomes from the deciders) into report rows (the same
/// for every store).
pub fn build_demand_report(
    delivered: impl IntoIterator<Item = (DemandKey, Delivered)>,
    auctions: impl IntoIterator<Item = (DemandKey, AuctionCounts)>,
    group_by: DemandGroupBy,
) -> Vec<DemandRow> {
    let group = |k: &DemandKey| -> Option<String> {
        match group_by {
            DemandGroupBy::Bidder => Some(k.bidder.clone()),
            _ if k.seat.is_empty() => None,
            DemandGroupBy::Seat => Some(format!("{}/{}", k.bidder, k.seat)),
            DemandGroupBy::Deal if k.deal_id.is_empty() => Some(format!("{}/open", k.bidder)),
            DemandGroupBy::Deal => Some(format!("{}/{}", k.bidder, k.deal_id)),
        }
    };
    let mut rows: BTreeMap<String, DemandRow> = BTreeMap::new();
    for (k, d) in delivered {
        let Some(key) = group(&k) else { continue };
        let row = rows.entry(key).or_default();
        row.delivered.add(&d.counts);
        let spend = row.spend_micros.entry(k.currency).or_default();
        *spend = spend.saturating_add(d.spend_micros());
    }
    for (k, a) in auctions {
        let Some(key) = group(&k) else { continue };
        rows.entry(key).or_default().auctions.add(&a);
    }
    rows.into_iter()
        .map(|(key, row)| DemandRow { key, ..row })
        .collect()
}

/// Groups window cells into report rows (the same for every store).
pub fn build_report(
    cells: impl IntoIterator<Item = (WindowKey, Counts)>,
    group_by: GroupBy,
    prices: &dyn Prices,
) -> Vec<ReportRow> {
    let mut rows: std::collections::BTreeMap<String, (Counts, u64)> = Default::default();
    let time = |secs: i64| {
        DateTime::from_timestamp(secs, 0)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default()
    };
    for (window, counts) in cells {
        let spend = prices
            .cpm_micros(&window.line_item_id)
            .map_or(0, |cpm| spend_micros(counts.impressions, cpm));
        let group = match group_by {
            GroupBy::Campaign => window.campaign_id,
            GroupBy::LineItem => window.line_item_id,
            GroupBy::Creative => window.creative_id,
            GroupBy::Channel => window.channel,
            GroupBy::LiveEvent => window.live_event_id,
            GroupBy::Minute => time(window.minute),
            GroupBy::Hour => time(window.minute.div_euclid(3600) * 3600),
            GroupBy::Day => time(window.minute.div_euclid(86_400) * 86_400),
        };
        let row = rows.entry(group).or_default();
        row.0.add(&counts);
        row.1 += spend;
    }
    rows.into_iter()
        .map(|(key, (counts, spend_micros))| ReportRow {
            completion_rate: counts.completion_rate(),
            key,
            counts,
            spend_micros,
        })
        .collect()
}

/// Builds ledger rows from original hours and corrections (in booking order), priced.
pub fn build_ledger(
    originals: impl IntoIterator<Item = ((String, i64), Counts)>,
    corrections: impl IntoIterator<Item = ((String, i64), Counts)>,
    prices: &dyn Prices,
) -> Vec<LedgerRow> {
    let mut out: std::collections::BTreeMap<(String, i64), (Counts, Vec<Counts>)> =
        Default::default();
    for (key, counts) in originals {
        out.entry(key).or_default().0 = counts;
    }
    for (key, counts) in corrections {
        out.entry(key).or_default().1.push(counts);
    }
    out.into_iter()
        .map(|((line_item_id, hour), (original, corrections))| {
            let cpm = prices.cpm_micros(&line_item_id);
            let impressions =
                original.impressions + corrections.iter().map(|c| c.impressions).sum::<u64>();
            LedgerRow {
                cpm_micros: cpm,
                spend_micros: cpm.map_or(0, |cpm| spend_micros(impressions, cpm)),
                line_item_id,
                hour,
                original,
                corrections,
            }
        })
        .collect()
}
