//! Channels: one origin poller per channel, shared by every session of it.
//!
//! Each refresh fetches every rendition's media playlist once (conditional requests, bounded by a timeout),
//! normalises it, feeds the primary rendition's ad breaks to the channel's [`BreakTracker`], and publishes an
//! immutable [`ChannelSnapshot`] that playlist requests read without locking each other out. When the origin
//! fails, the last good snapshot keeps being served until it is older than `stale_after_secs`; then playlist
//! requests get a clear 502.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use interlude_hls::MasterPlaylist;
use interlude_stitch::{BreakTracker, TrackedBreak};
use tokio::sync::mpsc;

use super::config::ChannelConfig;
use super::origin::{OriginMedia, Variant, parse_master, parse_media};

/// One rendition's latest window.
#[derive(Debug, Clone)]
pub struct RenditionWindow {
    /// The variant this rendition is.
    pub variant: Variant,
    /// The parsed window.
    pub media: Arc<OriginMedia>,
    /// The raw playlist as fetched (served as-is by the passthrough route).
    pub raw: Bytes,
}

/// Everything a playlist request needs, as of the last successful refresh.
#[derive(Debug, Clone, Default)]
pub struct ChannelSnapshot {
    /// Renditions in master-playlist order; index 0 is the primary (its markers drive break detection).
    pub renditions: Vec<RenditionWindow>,
    /// Breaks known to the channel, oldest first.
    pub breaks: Arc<Vec<TrackedBreak>>,
    /// When the origin last answered in full.
    pub refreshed_at: Option<DateTime<Utc>>,
    /// The master playlist, every URI absolute.
    pub master: Option<Arc<MasterPlaylist>>,
}

impl ChannelSnapshot {
    /// Media sequence number of the newest segment of the primary rendition.
    pub fn live_edge_msn(&self) -> Option<u64> {
        self.renditions
            .first()?
            .media
            .window
            .segments
            .last()
            .map(|s| s.msn)
    }
}

/// A channel and its latest snapshot.
#[derive(Debug)]
pub struct Channel {
    /// Its configuration.
    pub config: ChannelConfig,
    snapshot: RwLock<Arc<ChannelSnapshot>>,
}

/// Notice that a channel saw a new break (the stitcher asks for pods when it gets one).
#[derive(Debug, Clone)]
pub struct NewBreak {
    /// Channel id.
    pub channel: String,
    /// The break.
    pub tracked: TrackedBreak,
}

/// Why a refresh failed.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// The origin did not answer usefully.
    #[error("origin {url}: {reason}")]
    Origin {
        /// The URL fetched.
        url: String,
        /// What went wrong.
        reason: String,
    },
}

impl Channel {
    /// A channel with no snapshot yet.
    pub fn new(config: ChannelConfig) -> Self {
        Channel {
            config,
            snapshot: RwLock::new(Arc::new(ChannelSnapshot::default())),
        }
    }

    /// The latest snapshot.
    pub fn snapshot(&self) -> Arc<ChannelSnapshot> {
        self.snapshot.read().map(|s| s.clone()).unwrap_or_default()
    }

    fn publish(&self, snapshot: ChannelSnapshot) {
        if let Ok(mut slot) = self.snapshot.write() {
            *slot = Arc::new(snapshot);
        }
    }

    /// Whether the snapshot is too old to serve at `now`.
    pub fn is_stale(&self, snapshot: &ChannelSnapshot, now: DateTime<Utc>) -> bool {
        match snapshot.refreshed_at {
            None => true,
            Some(at) => {
                (now - at).num_milliseconds() > (self.config.stale_after_secs as i64) * 1000
            }
        }
    }
}

/// Validators and body of the last successful fetch of a URL, for conditional requests.
#[derive(Debug, Clone)]
struct Cached {
    etag: Option<String>,
    last_modified: Option<String>,
    body: Bytes,
}

/// Conditional fetcher: sends `If-None-Match`/`If-Modified-Since` and reuses the cached body on 304.
#[derive(Debug, Default)]
struct Fetcher {
    cache: HashMap<String, Cached>,
}

impl Fetcher {
    async fn fetch(
        &mut self,
        client: &reqwest::Client,
        url: &str,
        timeout: Duration,
    ) -> Result<Bytes, RefreshError> {
        let err = |reason: String| RefreshError::Origin {
            url: url.to_owned(),
            reason,
        };
        let mut request = client.get(url).timeout(timeout);
        if let Some(cached) = self.cache.get(url) {
            if let Some(etag) = &cached.etag {
                request = request.header(reqwest::header::IF_NONE_MATCH, etag);
            }
            if let Some(lm) = &cached.last_modified {
                request = request.header(reqwest::header::IF_MODIFIED_SINCE, lm);
            }
        }
        let response = request.send().await.map_err(|e| err(e.to_string()))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_MODIFIED {
            if let Some(cached) = self.cache.get(url) {
                return Ok(cached.body.clone());
            }
        }
        if !status.is_success() {
            return Err(err(format!("HTTP {status}")));
        }
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let (etag, last_modified) = (
            header(reqwest::header::ETAG),
            header(reqwest::header::LAST_MODIFIED),
        );
        let body = response.bytes().await.map_err(|e| err(e.to_string()))?;
        if etag.is_some() || last_modified.is_some() {
            self.cache.insert(
                url.to_owned(),
                Cached {
                    etag,
                    last_modified,
                    body: body.clone(),
                },
            );
        }
        Ok(body)
    }
}

fn utf8(url: &str, body: &Bytes) -> Result<String, RefreshError> {
    std::str::from_utf8(body)
        .map(str::to_owned)
        .map_err(|e| RefreshError::Origin {
            url: url.to_owned(),
            reason: format!("playlist is not UTF-8: {e}"),
        })
}

/// Polls one channel forever: refresh, publish, sleep; reports new breaks on `breaks_tx`.
pub async fn poll_channel(
    channel: Arc<Channel>,
    client: reqwest::Client,
    tolerance_micros: u64,
    now: impl Fn() -> DateTime<Utc> + Send + 'static,
    breaks_tx: mpsc::Sender<NewBreak>,
) {
    let mut tracker = BreakTracker::new(tolerance_micros);
    let mut master: Option<(Vec<Variant>, Arc<MasterPlaylist>)> = None;
    let mut fetcher = Fetcher::default();
    let timeout = Duration::from_millis(channel.config.origin_timeout_ms);
    loop {
        let started = std::time::Instant::now();
        let outcome = refresh(
            &channel,
            &client,
            &mut fetcher,
            timeout,
            &mut tracker,
            &mut master,
            now(),
        )
        .await;
        let interval = match outcome {
            Ok((new_breaks, target_duration)) => {
                metrics::counter!("stitcher_origin_refreshes_total", "channel" => channel.config.id.clone(), "outcome" => "ok").increment(1);
                for tracked in new_breaks {
                    tracing::info!(channel = %channel.config.id, break_id = %tracked.id, start_msn = tracked.start_msn,
                        planned_ms = tracked.planned_micros.map(|m| m / 1000), "Break detected.");
                    metrics::counter!("stitcher_breaks_detected_total", "channel" => channel.config.id.clone()).increment(1);
                    let _ = breaks_tx
                        .send(NewBreak {
                            channel: channel.config.id.clone(),
                            tracked,
                        })
                        .await;
                }
                channel.config.poll_interval_ms.map_or_else(
                    || Duration::from_secs_f64((target_duration / 2.0).clamp(0.2, 5.0)),
                    Duration::from_millis,
                )
            }
            Err(error) => {
                metrics::counter!("stitcher_origin_refreshes_total", "channel" => channel.config.id.clone(), "outcome" => "error").increment(1);
                tracing::warn!(channel = %channel.config.id, %error, "Origin refresh failed; serving the last good window.");
                Duration::from_millis(channel.config.poll_interval_ms.unwrap_or(1_000))
            }
        };
        metrics::histogram!("stitcher_origin_refresh_seconds", "channel" => channel.config.id.clone())
            .record(started.elapsed().as_secs_f64());
        tokio::time::sleep(
            interval
                .saturating_sub(started.elapsed())
                .max(Duration::from_millis(50)),
        )
        .await;
    }
}

/// One refresh of every rendition. Returns the breaks first seen and the primary's target duration.
async fn refresh(
    channel: &Channel,
    client: &reqwest::Client,
    fetcher: &mut Fetcher,
    timeout: Duration,
    tracker: &mut BreakTracker,
    master: &mut Option<(Vec<Variant>, Arc<MasterPlaylist>)>,
    now: DateTime<Utc>,
) -> Result<(Vec<TrackedBreak>, f64), RefreshError> {
    let origin = &channel.config.origin;
    if master.is_none() {
        let body = fetcher.fetch(client, origin, timeout).await?;
        let text = utf8(origin, &body)?;
        let (variants, playlist) =
            parse_master(&text, origin).map_err(|e| RefreshError::Origin {
                url: origin.clone(),
                reason: e.to_string(),
            })?;
        if variants.is_empty() {
            return Err(RefreshError::Origin {
                url: origin.clone(),
                reason: "master playlist has no variants".into(),
            });
        }
        *master = Some((variants, Arc::new(playlist)));
    }
    let Some((variants, master_playlist)) = master.as_ref() else {
        return Err(RefreshError::Origin {
            url: origin.clone(),
            reason: "no master playlist".into(),
        });
    };
    let mut renditions = Vec::with_capacity(variants.len());
    for variant in variants {
        let body = fetcher.fetch(client, &variant.uri, timeout).await?;
        let text = utf8(&variant.uri, &body)?;
        let media = parse_media(&text, &variant.uri).map_err(|e| RefreshError::Origin {
            url: variant.uri.clone(),
            reason: e.to_string(),
        })?;
        renditions.push(RenditionWindow {
            variant: variant.clone(),
            media: Arc::new(media),
            raw: body,
        });
    }
    let Some(primary) = renditions.first() else {
        return Err(RefreshError::Origin {
            url: origin.clone(),
            reason: "no renditions".into(),
        });
    };
    let target_duration = primary.media.target_duration;
    let new = tracker
        .observe(&primary.media.window, &primary.media.observed)
        .map_err(|e| RefreshError::Origin {
            url: primary.variant.uri.clone(),
            reason: e.to_string(),
        })?;
    let new_breaks = new
        .iter()
        .filter_map(|&i| tracker.breaks().get(i).cloned())
        .collect();
    channel.publish(ChannelSnapshot {
        renditions,
        breaks: Arc::new(tracker.breaks().to_vec()),
        refreshed_at: Some(now),
        master: Some(master_playlist.clone()),
    });
    Ok((new_breaks, target_duration as f64))
}
