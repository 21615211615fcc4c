//! Third parties' pixels fired by the server: the durable outbox ([`interlude_outbox`]) as the application runs
//! it ([`PixelOutbox`]), and which URLs of a decided ad one counted event stands for ([`pixels_for`]).
//!
//! In server-side insertion the player never sees the VAST, so the server fires the third parties'
//! `<Impression>` and `<Tracking>` URLs when the pipeline counts the impression or quartile (VAST 4.3 §1.1.3),
//! and the bidders' `nurl`/`lurl` and VAST error pixels when it decides. A winning bid's `burl` is a notice of
//! its own (OpenRTB 2.6 §4.3.1 "billing notice"), not one of the ad's impression pixels: it fires when the
//! impression is counted, under the outbox event `burl`, so it is deduplicated by (ad instance, `burl`, URL)
//! and its OpenRTB macros (§4.4, `${AUCTION_PRICE}` …) are filled from the bid ([`auction_of`]). Everything
//! goes through the outbox, which persists, deduplicates by (ad instance, event, URL), limits the rate per host
//! and retries with backoff, through the same guarded client (`[outbound]`) as every other call to a third
//! party.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use interlude_decision::{PodAd, WonBid};
use interlude_events::EventType;
use interlude_outbound::GuardedClient;
use interlude_outbox::{
    Auction, BreakPosition, DeadLetter, Device, Drained, Enqueued, Outbox, OutboxConfig,
    OutboxStore, PgStore, Pixel, PixelContext, PixelEvent, RedbStore, ServerSide,
};
use tokio::sync::RwLock;

/// The file name of the embedded queue inside `events.data_dir`, when `[outbox] path` is left at its default.
pub const EMBEDDED_FILE: &str = "outbox.redb";

/// Where the embedded queue lives: `[outbox] path` when set, else `outbox.redb` beside the event store (one
/// data directory per node, so two nodes on one machine never share a queue file by accident).
pub fn embedded_path(config: &OutboxConfig, data_dir: &Path) -> PathBuf {
    if config.path == OutboxConfig::default().path {
        data_dir.join(EMBEDDED_FILE)
    } else {
        config.path.clone()
    }
}

/// The outbox the application runs: embedded (redb) on one node, PostgreSQL in distributed mode, so that
/// every node shares one queue and one deduplication (a session's segments may be served by several nodes).
pub struct PixelOutbox {
    /// `None` once shut down; enqueues then fail with [`interlude_outbox::Error::Closed`].
    running: RwLock<Option<Running>>,
}

enum Running {
    Embedded(Outbox<RedbStore>),
    Shared(Outbox<PgStore>),
}

impl std::fmt::Debug for PixelOutbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PixelOutbox").finish_non_exhaustive()
    }
}

impl PixelOutbox {
    /// Opens the redb queue at `path` and starts firing through `client`.
    pub fn embedded(
        config: &OutboxConfig,
        path: &Path,
        client: GuardedClient,
    ) -> interlude_outbox::Result<PixelOutbox> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| interlude_outbox::Error::Store {
                op: "create its directory",
                reason: e.to_string(),
            })?;
        }
        let config = OutboxConfig {
            path: path.to_owned(),
            ..config.clone()
        };
        let outbox = Outbox::open(config, client)?;
        Ok(PixelOutbox {
            running: RwLock::new(Some(Running::Embedded(outbox))),
        })
    }

    /// Connects to the PostgreSQL queue at `url` (tables created if absent) and starts firing through `client`.
    pub async fn shared(
        config: &OutboxConfig,
        url: &str,
        client: GuardedClient,
    ) -> interlude_outbox::Result<PixelOutbox> {
        let store = PgStore::connect(url).await?;
        let outbox = Outbox::start(config.clone(), Arc::new(store), client)?;
        Ok(PixelOutbox {
            running: RwLock::new(Some(Running::Shared(outbox))),
        })
    }

    /// Queues `pixels` (durably, deduplicated); one answer per pixel, in order.
    pub async fn enqueue(&self, pixels: Vec<Pixel>) -> interlude_outbox::Result<Vec<Enqueued>> {
        if pixels.is_empty() {
            return Ok(Vec::new());
        }
        match &*self.running.read().await {
            Some(Running::Embedded(o)) => o.enqueue(pixels).await,
            Some(Running::Shared(o)) => o.enqueue(pixels).await,
            None => Err(interlude_outbox::Error::Closed),
        }
    }

    /// Queues `pixels` (durably, deduplicated) held for `hold`, see [`Outbox::enqueue_held`].
    pub async fn enqueue_held(
        &self,
        pixels: Vec<Pixel>,
        hold: Duration,
    ) -> interlude_outbox::Result<Vec<Enqueued>> {
        if pixels.is_empty() {
            return Ok(Vec::new());
        }
        match &*self.running.read().await {
            Some(Running::Embedded(o)) => o.enqueue_held(pixels, hold).await,
            Some(Running::Shared(o)) => o.enqueue_held(pixels, hold).await,
            None => Err(interlude_outbox::Error::Closed),
        }
    }

    /// Fires held pixels now, see [`Outbox::release`].
    pub async fn release(&self, ids: Vec<u64>) -> interlude_outbox::Result<()> {
        match &*self.running.read().await {
            Some(Running::Embedded(o)) => o.release(ids).await,
            Some(Running::Shared(o)) => o.release(ids).await,
            None => Err(interlude_outbox::Error::Closed),
        }
    }

    /// Gives up held pixels unfired, see [`Outbox::cancel`].
    pub async fn cancel(
        &self,
        held: Vec<(u64, Pixel)>,
        reason: &str,
    ) -> interlude_outbox::Result<()> {
        match &*self.running.read().await {
            Some(Running::Embedded(o)) => o.cancel(held, reason).await,
            Some(Running::Shared(o)) => o.cancel(held, reason).await,
            None => Err(interlude_outbox::Error::Closed),
        }
    }

    /// Queues `pixels` in the background (for callers that must not wait, such as a decision on its way to
    /// the viewer); a failure is logged (the store counts it in `outbox_store_errors_total`).
    pub fn enqueue_later(self: &Arc<Self>, pixels: Vec<Pixel>) {
        if pixels.is_empty() {
            return;
        }
        let outbox = Arc::clone(self);
        tokio::spawn(async move {
            if let Err(e) = outbox.enqueue(pixels).await {
                tracing::warn!(error = %e, "Third-party pixels not queued.");
            }
        });
    }

    /// Up to `limit` pixels given up on, oldest first.
    pub async fn dead_letters(&self, limit: usize) -> interlude_outbox::Result<Vec<DeadLetter>> {
        match &*self.running.read().await {
            Some(Running::Embedded(o)) => o.store().dead_letters(limit).await,
            Some(Running::Shared(o)) => o.store().dead_letters(limit).await,
            None => Err(interlude_outbox::Error::Closed),
        }
    }

    /// Pixels waiting in the queue (those being sent included).
    pub async fn depth(&self) -> interlude_outbox::Result<u64> {
        match &*self.running.read().await {
            Some(Running::Embedded(o)) => o.store().depth().await,
            Some(Running::Shared(o)) => o.store().depth().await,
            None => Err(interlude_outbox::Error::Closed),
        }
    }

    /// Stops taking pixels and waits up to `outbox.drain_timeout_ms` for the sends in flight (what is left is
    /// in the queue and sent after the restart). `None` if it was already shut down.
    pub async fn shutdown(&self) -> Option<Drained> {
        let running = self.running.write().await.take()?;
        Some(match running {
            Running::Embedded(o) => o.shutdown().await,
            Running::Shared(o) => o.shutdown().await,
        })
    }
}

/// The outbox event of a pipeline event type, for those that have third-party URLs.
pub fn pixel_event(event: EventType) -> Option<PixelEvent> {
    Some(match event {
        EventType::Impression => PixelEvent::Impression,
        EventType::Start => PixelEvent::Start,
        EventType::FirstQuartile => PixelEvent::FirstQuartile,
        EventType::Midpoint => PixelEvent::Midpoint,
        EventType::ThirdQuartile => PixelEvent::ThirdQuartile,
        EventType::Complete => PixelEvent::Complete,
        EventType::Click => PixelEvent::Click,
        EventType::Error => PixelEvent::Error,
        // VAST has these events, the outbox does not fire them: SSAI never observes them.
        EventType::Pause | EventType::Resume | EventType::Mute | EventType::Unmute => return None,
    })
}

/// The third-party URLs `ad` asks to be called when `event` is counted: for the impression its
/// `<Impression>` URLs (the wrappers' included) and, for a programmatic ad, its bid's `burl` as a billing
/// notice ([`PixelEvent::Burl`]); otherwise its `<Tracking>` URLs for that event (VAST spelling, as the
/// pipeline's event names are).
pub fn pixels_for(ad: &PodAd, event: EventType) -> Vec<(PixelEvent, String)> {
    let Some(pixel_event) = pixel_event(event) else {
        return Vec::new();
    };
    let impressions = (event == EventType::Impression)
        .then_some(ad.impression_urls.iter())
        .into_iter()
        .flatten()
        .map(|url| (PixelEvent::Impression, url));
    let tracking = ad
        .tracking_urls
        .iter()
        .filter(|(name, _)| name == event.as_str())
        .map(|(_, url)| (pixel_event, url));
    let billing = ad
        .bid
        .as_ref()
        .filter(|_| event == EventType::Impression)
        .and_then(|b| b.burl.as_ref())
        .map(|url| (PixelEvent::Burl, url));
    impressions
        .chain(tracking)
        .chain(billing)
        .map(|(e, url)| (e, url.trim()))
        .filter(|(_, url)| !url.is_empty())
        .map(|(e, url)| (e, url.to_owned()))
        .collect()
}

/// The OpenRTB 2.6 §4.4 macro values of `bid`'s notices; `loss` is `${AUCTION_LOSS}` (none for a win).
pub fn auction_of(bid: &WonBid, loss: Option<u32>) -> Auction {
    Auction {
        id: Some(bid.auction_id.clone()),
        bid_id: bid.response_bid_id.clone(),
        imp_id: Some(bid.imp_id.clone()),
        seat_id: Some(bid.seat.clone()),
        ad_id: bid.ad_id.clone(),
        // A loss notice does not reveal the clearing price to the loser (§4.4 leaves it to the exchange).
        price: loss.is_none().then(|| format!("{:.4}", bid.price)),
        currency: Some(bid.currency.clone()),
        mbr: None,
        loss,
        min_to_win: None,
        multiplier: None,
    }
}

/// The impression URLs a player fires itself (client-side insertion, SGAI, the client tracking document):
/// the ad's `<Impression>` URLs and its bid's `burl` with the OpenRTB macros filled, as the player cannot fill
/// them.
pub fn client_impression_urls(ad: &PodAd) -> Vec<String> {
    let billing = ad.bid.as_ref().and_then(|b| {
        let burl = b.burl.as_deref()?.trim();
        (!burl.is_empty()).then(|| {
            interlude_outbox::expand::expand_openrtb(burl, Some(&auction_of(b, None)), None, None)
        })
    });
    ad.impression_urls.iter().cloned().chain(billing).collect()
}

/// What the stitcher knows when an ad segment is fetched, for the macros of the pixels it stands for.
#[derive(Debug, Clone, Copy)]
pub struct SegmentFetch {
    /// When (the stitcher's clock).
    pub at: DateTime<Utc>,
    /// The ad's place in its pod, from 1 (`[PODSEQUENCE]`).
    pub pod_sequence: u32,
    /// The ad's duration in microseconds (for `[ADPLAYHEAD]` at each quartile).
    pub ad_micros: u64,
    /// Whether the viewer's consent allows sharing device data with third parties.
    pub share_device: bool,
}

/// The pixels of `ad` for a server-side `event` counted from a segment fetch: `[SERVERSIDE]` 2 (the server
/// decided from segment delivery), a mid-roll of a live stream, the ad playhead at the event's point.
pub fn server_side_pixels(ad: &PodAd, event: EventType, fetch: SegmentFetch) -> Vec<Pixel> {
    let urls = pixels_for(ad, event);
    if urls.is_empty() {
        return Vec::new();
    }
    let fraction = match event {
        EventType::FirstQuartile => 0.25,
        EventType::Midpoint => 0.5,
        EventType::ThirdQuartile => 0.75,
        EventType::Complete => 1.0,
        _ => 0.0,
    };
    let context = PixelContext {
        event_time_ms: u64::try_from(fetch.at.timestamp_millis()).ok(),
        server_side: ServerSide::OwnDecision,
        ad_playhead_ms: Some((fetch.ad_micros as f64 * fraction / 1000.0).round() as u64),
        pod_sequence: Some(fetch.pod_sequence),
        break_position: Some(BreakPosition::MidRoll),
        device: Device {
            share: fetch.share_device,
            ..Device::default()
        },
        ..PixelContext::default()
    };
    let context = PixelContext {
        // A bid's markup may carry OpenRTB macros too, so every pixel of a programmatic ad gets its auction.
        auction: ad.bid.as_ref().map(|b| auction_of(b, None)),
        ..context
    };
    urls.into_iter()
        .map(|(pixel_event, url)| {
            Pixel::new(ad.ad_instance_id.clone(), pixel_event, url).with_context(context.clone())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ad() -> PodAd {
        PodAd {
            ad_instance_id: "ai".into(),
            creative_id: "c".into(),
            campaign_id: None,
            line_item_id: None,
            duration_secs: 15.0,
            renditions: Vec::new(),
            impression_urls: vec!["https://3p/imp".into()],
            tracking_urls: vec![
                ("start".into(), "https://3p/start".into()),
                ("firstQuartile".into(), "https://3p/q1".into()),
                ("firstQuartile".into(), " ".into()),
                ("pause".into(), "https://3p/pause".into()),
            ],
            bid: None,
            source: None,
        }
    }

    fn won() -> WonBid {
        WonBid {
            auction_id: "s1-b1".into(),
            bidder: "dsp".into(),
            seat: "dsp1".into(),
            bid_id: "b9".into(),
            deal_id: None,
            imp_id: "1".into(),
            response_bid_id: Some("r7".into()),
            ad_id: None,
            price: 12.5,
            currency: "EUR".into(),
            burl: Some(
                "https://dsp/burl?p=${AUCTION_PRICE}&c=${AUCTION_CURRENCY}&ts=${AUCTION_IMP_TS}"
                    .into(),
            ),
            nurl: None,
            lurl: None,
        }
    }

    #[test]
    fn impressions_and_tracking_are_picked_by_event() {
        let ad = ad();
        assert_eq!(
            pixels_for(&ad, EventType::Impression),
            [(PixelEvent::Impression, "https://3p/imp".to_owned())]
        );
        assert_eq!(
            pixels_for(&ad, EventType::FirstQuartile),
            [(PixelEvent::FirstQuartile, "https://3p/q1".to_owned())]
        );
        assert!(pixels_for(&ad, EventType::Complete).is_empty());
        assert!(pixels_for(&ad, EventType::Pause).is_empty());
    }

    #[test]
    fn a_bids_burl_is_a_billing_notice_of_the_impression_with_its_auction() {
        let ad = PodAd {
            bid: Some(won()),
            source: None,
            ..ad()
        };
        let at = DateTime::from_timestamp(1_800_000_000, 0).expect("time");
        let fetch = SegmentFetch {
            at,
            pod_sequence: 1,
            ad_micros: 15_000_000,
            share_device: false,
        };
        let pixels = server_side_pixels(&ad, EventType::Impression, fetch);
        let events: Vec<PixelEvent> = pixels.iter().map(|p| p.event).collect();
        assert_eq!(events, [PixelEvent::Impression, PixelEvent::Burl]);
        let burl = &pixels[1];
        // Queued unexpanded: deduplicated by (ad instance, burl, the bidder's URL).
        assert!(burl.url_template.contains("${AUCTION_PRICE}"));
        assert_ne!(
            burl.dedup_key(),
            Pixel::new("ai", PixelEvent::Impression, burl.url_template.clone()).dedup_key()
        );
        let fired = interlude_outbox::expand::expand_openrtb(
            &burl.url_template,
            burl.context.auction.as_ref(),
            burl.context.event_time_ms,
            None,
        );
        assert_eq!(fired, "https://dsp/burl?p=12.5000&c=EUR&ts=1800000000000");
        // Only the impression bills.
        for event in [EventType::Start, EventType::Complete] {
            assert!(
                server_side_pixels(&ad, event, fetch)
                    .iter()
                    .all(|p| p.event != PixelEvent::Burl)
            );
        }
        // A player fires it itself, filled in, with the impressions.
        let client = client_impression_urls(&ad);
        assert_eq!(client[0], "https://3p/imp");
        assert_eq!(client[1], "https://dsp/burl?p=12.5000&c=EUR&ts=");
        assert_eq!(
            client_impression_urls(&super::tests::ad()),
            ["https://3p/imp"]
        );
    }

    #[test]
    fn loss_notices_name_the_reason_and_not_the_price() {
        let a = auction_of(&won(), Some(102));
        assert_eq!((a.loss, a.price.as_deref()), (Some(102), None));
        let w = auction_of(&won(), None);
        assert_eq!((w.loss, w.price.as_deref()), (None, Some("12.5000")));
        assert_eq!(w.bid_id.as_deref(), Some("r7"));
    }

    #[test]
    fn server_side_pixels_carry_the_ad_playhead_and_consent() {
        let fetch = SegmentFetch {
            at: DateTime::from_timestamp(1_800_000_000, 0).expect("time"),
            pod_sequence: 2,
            ad_micros: 15_000_000,
            share_device: false,
        };
        let pixels = server_side_pixels(&ad(), EventType::FirstQuartile, fetch);
        assert_eq!(pixels.len(), 1);
        let p = &pixels[0];
        assert_eq!(
            (p.ad_instance_id.as_str(), p.event),
            ("ai", PixelEvent::FirstQuartile)
        );
        assert_eq!(p.context.ad_playhead_ms, Some(3_750));
        assert_eq!(p.context.event_time_ms, Some(1_800_000_000_000));
        assert_eq!(p.context.pod_sequence, Some(2));
        assert!(!p.context.device.share);
        assert!(server_side_pixels(&ad(), EventType::Complete, fetch).is_empty());
    }

    #[test]
    fn the_embedded_queue_sits_beside_the_event_store_unless_placed() {
        let data = Path::new("/var/lib/interlude/events");
        assert_eq!(
            embedded_path(&OutboxConfig::default(), data),
            data.join("outbox.redb")
        );
        let placed = OutboxConfig {
            path: "/srv/outbox.redb".into(),
            ..OutboxConfig::default()
        };
        assert_eq!(embedded_path(&placed, data), Path::new("/srv/outbox.redb"));
    }
}
