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
use interlude_stitch::hls::{OriginMedia, Variant, parse_master, parse_media};

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
    operator: std::sync::Mutex<OperatorCues>,
}

/// Breaks an operator started or ended, merged into what the origin signals at every refresh.
#[derive(Debug, Default)]
struct OperatorCues {
    /// Breaks started by the operator: id, planned duration, its SCTE-35 splice_insert (base64), and the first
    /// segment once known (the segment after the live edge when the command came).
    started: Vec<OperatorBreak>,
    /// Breaks ended early: id and the first content segment.
    ended: Vec<(String, u64)>,
    next_event_id: u32,
}

#[derive(Debug, Clone)]
struct OperatorBreak {
    id: String,
    event_id: u32,
    planned_micros: u64,
    scte35: String,
    start_msn: u64,
}

/// What an operator command did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OperatorAction {
    /// The break started or ended.
    pub break_id: String,
    /// The media sequence number it starts or ends at.
    pub msn: u64,
    /// The SCTE-35 section injected (base64), for a start.
    pub scte35: Option<String>,
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
            operator: std::sync::Mutex::new(OperatorCues {
                next_event_id: 0x4f50_0000,
                ..OperatorCues::default()
            }),
        }
    }

    /// Starts a break of `duration` at the next segment, as if the encoder had sent a SCTE-35 `splice_insert`
    /// (out of network, with that break duration): for events whose cue is missing. Refused while a break is
    /// open or before the channel has a window.
    pub fn start_break(&self, duration: Duration) -> Option<OperatorAction> {
        let snapshot = self.snapshot();
        if snapshot.breaks.last().is_some_and(|b| !b.is_ended()) {
            return None;
        }
        let start_msn = snapshot.live_edge_msn()? + 1;
        let mut cues = self.operator.lock().ok()?;
        // One started break at a time: a start still waiting for its segment, or running, refuses another.
        let running = cues
            .started
            .iter()
            .any(|b| !snapshot.breaks.iter().any(|t| t.id == b.id && t.is_ended()));
        if running {
            return None;
        }
        cues.next_event_id = cues.next_event_id.wrapping_add(1);
        let event_id = cues.next_event_id;
        // 90 kHz ticks, SCTE-35 §9.7.2 break_duration.
        let ticks = (duration.as_secs_f64() * 90_000.0).round() as u64;
        let section =
            interlude_scte35::SpliceInfoSection::splice_insert_out(event_id, None, Some(ticks));
        let scte35 = section.encode().ok().map(|b| {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(b)
        })?;
        let id = format!("op-{event_id}");
        cues.started.push(OperatorBreak {
            id: id.clone(),
            event_id,
            planned_micros: u64::try_from(duration.as_micros()).unwrap_or(u64::MAX),
            scte35: scte35.clone(),
            start_msn,
        });
        Some(OperatorAction {
            break_id: id,
            msn: start_msn,
            scte35: Some(scte35),
        })
    }

    /// Ends the open break at the next segment (content resumes there). `None` when no break is open.
    pub fn end_break(&self) -> Option<OperatorAction> {
        let snapshot = self.snapshot();
        let open = snapshot.breaks.last().filter(|b| !b.is_ended())?;
        let end_msn = snapshot.live_edge_msn()? + 1;
        let mut cues = self.operator.lock().ok()?;
        cues.ended.push((open.id.clone(), end_msn));
        Some(OperatorAction {
            break_id: open.id.clone(),
            msn: end_msn,
            scte35: None,
        })
    }

    /// The origin's observed breaks with the operator's starts and ends merged in, for `window`.
    pub(super) fn with_operator_cues(
        &self,
        window: &interlude_stitch::tracker::OriginWindow,
        observed: &[interlude_stitch::ObservedBreak],
        tracked: &[TrackedBreak],
    ) -> Vec<interlude_stitch::ObservedBreak> {
        let mut out = observed.to_vec();
        let Ok(mut cues) = self.operator.lock() else {
            return out;
        };
        let first = window.segments.first().map_or(0, |s| s.msn);
        // A started break is injected until the tracker has seen it end, then forgotten: the tracker keeps it
        // from there. Injecting it after its end would start it again at the window's head, the same pod
        // replaying every window length for as long as the channel runs. A start the tracker has not seen yet
        // is kept while its first segment is still to come or in the window.
        cues.started
            .retain(|b| match tracked.iter().find(|t| t.id == b.id) {
                Some(t) => !t.is_ended(),
                None => b.start_msn >= first,
            });
        cues.ended.retain(|(_, end)| *end >= first);
        for b in &cues.started {
            out.push(interlude_stitch::ObservedBreak {
                id: b.id.clone(),
                first_msn: b.start_msn.max(first),
                elapsed_at_first_micros: 0,
                planned_micros: Some(b.planned_micros),
                end_msn: None,
                signalled_through_msn: None,
                scte35: Some(b.scte35.clone()),
                event_id: Some(b.event_id),
            });
        }
        for (id, end) in &cues.ended {
            if let Some(t) = tracked.iter().find(|t| &t.id == id) {
                out.push(interlude_stitch::ObservedBreak {
                    id: id.clone(),
                    first_msn: t.start_msn.max(first),
                    elapsed_at_first_micros: 0,
                    planned_micros: t.planned_micros,
                    end_msn: Some(*end),
                    signalled_through_msn: None,
                    scte35: None,
                    event_id: t.event_id,
                });
            }
        }
        out
    }

    /// The latest snapshot.
    pub fn snapshot(&self) -> Arc<ChannelSnapshot> {
        self.snapshot.read().map(|s| s.clone()).unwrap_or_default()
    }

    pub(super) fn publish(&self, snapshot: ChannelSnapshot) {
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
                metrics::counter!(crate::telemetry::metrics::STITCHER_ORIGIN_REFRESHES, "channel" => channel.config.id.clone(), "outcome" => "ok").increment(1);
                for tracked in new_breaks {
                    tracing::info!(channel = %channel.config.id, break_id = %tracked.id, start_msn = tracked.start_msn,
                        planned_ms = tracked.planned_micros.map(|m| m / 1000), "Break detected.");
                    metrics::counter!(crate::telemetry::metrics::STITCHER_BREAKS_DETECTED, "channel" => channel.config.id.clone()).increment(1);
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
                metrics::counter!(crate::telemetry::metrics::STITCHER_ORIGIN_REFRESHES, "channel" => channel.config.id.clone(), "outcome" => "error").increment(1);
                tracing::warn!(channel = %channel.config.id, %error, "Origin refresh failed; serving the last good window.");
                Duration::from_millis(channel.config.poll_interval_ms.unwrap_or(1_000))
            }
        };
        metrics::histogram!(crate::telemetry::metrics::STITCHER_ORIGIN_REFRESH_DURATION, "channel" => channel.config.id.clone())
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
        // Every refresh repeats the window's warnings: debug level, or a live channel floods the log.
        for warning in &media.warnings {
            tracing::debug!(channel = %channel.config.id, playlist = %variant.uri, %warning,
                "Origin playlist read leniently.");
        }
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
    let observed = channel.with_operator_cues(
        &primary.media.window,
        &primary.media.observed,
        tracker.breaks(),
    );
    let new = tracker
        .observe(&primary.media.window, &observed)
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
