//! Demand reporting: what each bidder, seat and deal was asked, bid, won and lost ([`AuctionTally`]), and the
//! bid behind a programmatic ad as its counted events carry it ([`of_bid`]).
//!
//! Delivery (impressions, quartiles, spend at the clearing price) is counted by the event pipeline, exactly
//! once, from the events' `demand` field; auction outcomes are not events, so each decider tallies them in
//! memory per bidder hour and adds them to the report store every [`FLUSH_EVERY`]. A flush that fails keeps
//! its counts for the next; a node that dies loses at most one interval of outcomes (not billing data: the
//! spend comes from counted impressions). `GET /v1/reports/demand` joins the two.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use interlude_decision::WonBid;
use interlude_events::{AuctionCounts, Demand, DemandKey};
use interlude_store::ReportStore;

/// How often a decider adds its tallies to the report store.
pub const FLUSH_EVERY: Duration = Duration::from_secs(5);

/// The `demand` of the counted events of an ad `bid` won: its bidder, seat, deal and clearing price.
pub fn of_bid(bid: &WonBid) -> Demand {
    Demand {
        bidder: bid.bidder.clone(),
        seat: bid.seat.clone(),
        deal_id: bid.deal_id.clone(),
        price_cpm_micros: cpm_micros(bid.price),
        currency: bid.currency.clone(),
    }
}

/// A CPM in millionths of the currency (a price that is negative or not a number is none).
fn cpm_micros(price: f64) -> u64 {
    if price.is_finite() && price > 0.0 {
        (price * 1_000_000.0).round().min(u64::MAX as f64) as u64
    } else {
        0
    }
}

/// One auction outcome, for [`AuctionTally::record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A bid request was sent.
    Requested,
    /// The bidder answered without a bid.
    NoBid,
    /// No answer within `tmax`.
    TimedOut,
    /// The request failed (HTTP error, unreadable answer) or was not sent (over the bidder's QPS cap).
    Failed,
    /// A bid arrived.
    Bid,
    /// A bid won a place in the pod.
    Won,
    /// A bid lost (outbid, refused).
    Lost,
}

/// Auction outcomes since the last flush, per bidder hour.
#[derive(Debug, Default)]
pub struct AuctionTally {
    cells: Mutex<HashMap<DemandKey, AuctionCounts>>,
}

impl AuctionTally {
    /// Counts one `outcome` at `now`. `seat` and `deal` are those of the bid; none for what concerns the
    /// bidder as a whole (requests, timeouts, failures, no bids).
    pub fn record(
        &self,
        now: DateTime<Utc>,
        bidder: &str,
        bid: Option<(&str, Option<&str>)>,
        outcome: Outcome,
    ) {
        let (seat, deal) = bid.unwrap_or_default();
        let key = DemandKey {
            hour: now.timestamp().div_euclid(3600) * 3600,
            bidder: bidder.to_owned(),
            seat: seat.to_owned(),
            deal_id: deal.unwrap_or_default().to_owned(),
            currency: String::new(),
        };
        let mut cells = self.cells.lock().unwrap_or_else(PoisonError::into_inner);
        let c = cells.entry(key).or_default();
        let n = match outcome {
            Outcome::Requested => &mut c.requests,
            Outcome::NoBid => &mut c.no_bids,
            Outcome::TimedOut => &mut c.timeouts,
            Outcome::Failed => &mut c.errors,
            Outcome::Bid => &mut c.bids,
            Outcome::Won => &mut c.wins,
            Outcome::Lost => &mut c.losses,
        };
        *n += 1;
    }

    /// Adds what was tallied to `store`; on failure the counts stay for the next flush.
    pub async fn flush(&self, store: &Arc<dyn ReportStore>) {
        let cells: Vec<(DemandKey, AuctionCounts)> =
            std::mem::take(&mut *self.cells.lock().unwrap_or_else(PoisonError::into_inner))
                .into_iter()
                .collect();
        if cells.is_empty() {
            return;
        }
        if let Err(e) = store.clone().add_auctions(cells.clone()).await {
            tracing::warn!(error = %e, cells = cells.len(), "Auction outcomes not stored; kept for the next flush.");
            let mut kept = self.cells.lock().unwrap_or_else(PoisonError::into_inner);
            for (k, a) in cells {
                kept.entry(k).or_default().add(&a);
            }
        }
    }

    /// Flushes every [`FLUSH_EVERY`] until `stop` turns true, then once more.
    async fn run(
        self: Arc<Self>,
        store: Arc<dyn ReportStore>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut every = tokio::time::interval(FLUSH_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !*stop.borrow() {
            tokio::select! {
                _ = every.tick() => self.flush(&store).await,
                changed = stop.changed() => if changed.is_err() { break },
            }
        }
        self.flush(&store).await;
    }
}

/// The running flush of a decider's tally: started with the application, stopped (after a last flush) before
/// the report store closes.
#[derive(Debug)]
pub struct TallyFlush {
    stop: tokio::sync::watch::Sender<bool>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl TallyFlush {
    /// Flushes `tally` into `store` every [`FLUSH_EVERY`].
    pub fn start(tally: Arc<AuctionTally>, store: Arc<dyn ReportStore>) -> TallyFlush {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        TallyFlush {
            stop,
            task: Mutex::new(Some(tokio::spawn(tally.run(store, stopped)))),
        }
    }

    /// Flushes what is left and stops.
    pub async fn stop(&self) {
        self.stop.send_replace(true);
        let task = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "The auction tally flush failed.");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bid_carries_its_bidder_seat_deal_and_price_in_micros() {
        let bid = WonBid {
            auction_id: "a".into(),
            bidder: "dsp-a".into(),
            seat: "s1".into(),
            bid_id: "b".into(),
            deal_id: Some("d-9".into()),
            imp_id: "1".into(),
            response_bid_id: None,
            ad_id: None,
            price: 12.345_678_9,
            currency: "EUR".into(),
            burl: None,
            nurl: None,
            lurl: None,
        };
        let d = of_bid(&bid);
        assert_eq!(
            (d.bidder.as_str(), d.seat.as_str(), d.deal_id.as_deref()),
            ("dsp-a", "s1", Some("d-9"))
        );
        assert_eq!(d.price_cpm_micros, 12_345_679);
        assert_eq!(cpm_micros(f64::NAN), 0);
        assert_eq!(cpm_micros(-3.0), 0);
    }

    #[test]
    fn outcomes_land_in_the_bidder_hour_and_bids_under_their_seat_and_deal() {
        let tally = AuctionTally::default();
        let t = DateTime::from_timestamp(7_200 + 59, 0).unwrap_or_default();
        tally.record(t, "dsp", None, Outcome::Requested);
        tally.record(t, "dsp", None, Outcome::TimedOut);
        tally.record(t, "dsp", Some(("s1", Some("d"))), Outcome::Bid);
        tally.record(t, "dsp", Some(("s1", Some("d"))), Outcome::Won);
        tally.record(t, "dsp", Some(("s1", None)), Outcome::Lost);
        let cells = tally.cells.lock().unwrap_or_else(PoisonError::into_inner);
        let at = |seat: &str, deal: &str| {
            cells
                .get(&DemandKey {
                    hour: 7_200,
                    bidder: "dsp".into(),
                    seat: seat.into(),
                    deal_id: deal.into(),
                    currency: String::new(),
                })
                .copied()
                .unwrap_or_default()
        };
        assert_eq!((at("", "").requests, at("", "").timeouts), (1, 1));
        assert_eq!((at("s1", "d").bids, at("s1", "d").wins), (1, 1));
        assert_eq!(at("s1", "").losses, 1);
    }
}
