//! Third parties' pixels fired by the server: the durable outbox ([`interlude_outbox`]) as the application runs
//! it ([`PixelOutbox`]), and which URLs of a decided ad one counted event stands for ([`pixels_for`]).
//!
//! In server-side insertion the player never sees the VAST, so the server fires the third parties'
//! `<Impression>` and `<Tracking>` URLs and the winning bid's `burl` (which the decider adds to the ad's
//! impression URLs) when the pipeline counts the impression or quartile (VAST 4.3 §1.1.3), and the bidders'
//! `nurl`/`lurl` and VAST error pixels when it decides. Everything goes through the outbox, which persists,
//! deduplicates by (ad instance, event, URL), limits the rate per host and retries with backoff, through the
//! same guarded client (`[outbound]`) as every other call to a third party.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use interlude_decision::PodAd;
use interlude_events::EventType;
use interlude_outbound::GuardedClient;
use interlude_outbox::{
    BreakPosition, DeadLetter, Device, Drained, Enqueued, Outbox, OutboxConfig, OutboxStore,
    PgStore, Pixel, PixelContext, PixelEvent, RedbStore, ServerSide,
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
/// `<Impression>` URLs (the wrappers' included, and a winning bid's `burl`), otherwise its `<Tracking>` URLs
/// for that event (VAST spelling, as the pipeline's event names are).
pub fn pixels_for(ad: &PodAd, event: EventType) -> Vec<(PixelEvent, String)> {
    let Some(pixel_event) = pixel_event(event) else {
        return Vec::new();
    };
    let impressions = (event == EventType::Impression)
        .then_some(ad.impression_urls.iter())
        .into_iter()
        .flatten();
    let tracking = ad
        .tracking_urls
        .iter()
        .filter(|(name, _)| name == event.as_str())
        .map(|(_, url)| url);
    impressions
        .chain(tracking)
        .map(|url| url.trim())
        .filter(|url| !url.is_empty())
        .map(|url| (pixel_event, url.to_owned()))
        .collect()
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
            impression_urls: vec!["https://3p/imp".into(), "https://dsp/burl".into()],
            tracking_urls: vec![
                ("start".into(), "https://3p/start".into()),
                ("firstQuartile".into(), "https://3p/q1".into()),
                ("firstQuartile".into(), " ".into()),
                ("pause".into(), "https://3p/pause".into()),
            ],
        }
    }

    #[test]
    fn impressions_and_tracking_are_picked_by_event() {
        let ad = ad();
        assert_eq!(
            pixels_for(&ad, EventType::Impression),
            [
                (PixelEvent::Impression, "https://3p/imp".to_owned()),
                (PixelEvent::Impression, "https://dsp/burl".to_owned())
            ]
        );
        assert_eq!(
            pixels_for(&ad, EventType::FirstQuartile),
            [(PixelEvent::FirstQuartile, "https://3p/q1".to_owned())]
        );
        assert!(pixels_for(&ad, EventType::Complete).is_empty());
        assert!(pixels_for(&ad, EventType::Pause).is_empty());
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
