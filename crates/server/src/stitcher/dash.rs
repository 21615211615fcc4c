//! DASH sessions: `GET /s/{session}/manifest.mpd` serves the viewer's MPD — the channel's live DASH origin with
//! each ad break split into ad Periods (one per ad) and slate, by the pure `interlude-dash` stitcher.
//!
//! A channel is one stream offered in two packagings, so a viewer's pod is one decision whichever they play:
//! DASH breaks (SCTE-35 in the MPD's EventStream) are matched to the breaks the HLS poller tracks by splice
//! event id, and the session's decision for that break is reused (or made now). Ad Periods address the same
//! creative segments as HLS through this server's ad segment route, so server-side beacons fire the same way.
//! Period ids derive from the break and ad index, so they are stable across refreshes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use interlude_dash::{
    Ad, AdRendition, AdTemplateUrls, AdUrlRequest, ContentKind, PlannedBreak, StitchOptions,
};

use super::session::{BreakDecision, Session};
use super::{StitchError, Stitcher};

/// How long a fetched origin MPD is reused: many sessions refresh within one origin update.
const ORIGIN_CACHE: Duration = Duration::from_millis(500);

impl Stitcher {
    async fn dash_origin(&self, channel: &str) -> Result<Arc<String>, StitchError> {
        let config = self.channel(channel)?.config.clone();
        let url = config
            .dash_origin
            .ok_or_else(|| StitchError::NoDash(channel.to_owned()))?;
        if let Some(hit) = self.dash_cache.get(channel) {
            if hit.0.elapsed() < ORIGIN_CACHE {
                return Ok(hit.1.clone());
            }
        }
        let text = self
            .http()
            .get(&url)
            .timeout(Duration::from_millis(config.origin_timeout_ms))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| StitchError::DashOrigin(format!("{url}: {e}")))?
            .text()
            .await
            .map_err(|e| StitchError::DashOrigin(format!("{url}: {e}")))?;
        let text = Arc::new(text);
        self.dash_cache
            .insert(channel.to_owned(), (Instant::now(), text.clone()));
        Ok(text)
    }

    /// The session's stitched MPD.
    pub async fn dash_manifest(&self, session: &Session) -> Result<String, StitchError> {
        let origin = self.dash_origin(&session.channel).await?;
        let mpd = interlude_dash::parse_mpd(&origin).map_err(|e| {
            StitchError::DashOrigin(format!("origin MPD of {}: {e}", session.channel))
        })?;
        let scan = interlude_dash::scan(&mpd);
        for problem in &scan.problems {
            tracing::debug!(channel = %session.channel, %problem, "DASH origin signalling problem.");
        }
        for warning in &scan.warnings {
            tracing::debug!(channel = %session.channel, %warning, "DASH origin signalling degraded.");
        }
        let channel = self.channel(&session.channel)?;
        let codecs = channel.config.dash_ad_codecs.as_str();
        let snapshot = channel.snapshot();
        let timeout = Duration::from_millis(self.config().decision_timeout_ms);
        let slate = self.slate_of(&session.channel).await;
        let mut plans = Vec::new();
        for b in &scan.breaks {
            let Some(duration) = b.duration else { continue };
            // The same break as HLS sees it (same splice event id, else the same start within a second): its
            // decision is the viewer's pod for this break.
            let starts_at = mpd
                .availability_start_time
                .and_then(|ast| chrono::TimeDelta::from_std(b.start).ok().map(|d| ast + d));
            let Some(tracked) = snapshot.breaks.iter().find(|t| {
                let same_id =
                    matches!((b.splice_event_id, t.event_id), (Some(a), Some(c)) if a == c);
                let same_time = matches!((starts_at, t.start_pdt),
                    (Some(a), Some(c)) if (a - c).num_milliseconds().abs() <= 1_000);
                same_id || same_time
            }) else {
                tracing::debug!(break_id = %b.id, "DASH break not (yet) tracked in HLS; left as content.");
                continue;
            };
            let decision = match session.decision(&tracked.id) {
                Some(d) => d,
                None => {
                    let _ = tokio::time::timeout(timeout, self.decide(session, tracked)).await;
                    match session.decision(&tracked.id) {
                        Some(d) => d,
                        None => continue,
                    }
                }
            };
            plans.push(PlannedBreak {
                id: b.id.clone(),
                start: b.start,
                duration,
                ended_at: b.ended_at,
                ads: ads_of(&decision, &snapshot, codecs),
                slate: slate
                    .as_ref()
                    .map(|(urls, secs)| slate_ad(urls, *secs, &snapshot, codecs)),
            });
        }
        let base = format!("{}/s/{}", self.base_url(), session.id);
        let urls = move |r: &AdUrlRequest<'_>| -> AdTemplateUrls {
            if r.is_slate {
                // The slate is one segment looped: every number is the same file.
                return AdTemplateUrls {
                    media: r.rendition.media.clone(),
                    initialization: String::new(),
                };
            }
            AdTemplateUrls {
                media: format!("{base}/ads/{}/{}/$Number$.ts", r.ad.id, r.rendition.id),
                initialization: String::new(),
            }
        };
        let options = StitchOptions {
            content_base_url: Some(
                self.channel(&session.channel)?
                    .config
                    .dash_origin
                    .clone()
                    .unwrap_or_default(),
            ),
            strip_scte35_events: true,
            ..StitchOptions::default()
        };
        let stitched = interlude_dash::stitch(&mpd, &plans, &urls, &options)
            .map_err(|e| StitchError::DashOrigin(format!("stitching the DASH MPD: {e}")))?;
        for w in &stitched.warnings {
            tracing::debug!(session = %session.id, warning = ?w, "DASH stitching warning.");
        }
        Ok(interlude_dash::write_mpd(&stitched.mpd))
    }
}

/// Content rendition `i`'s bandwidth and size, for the ad rendition mirroring it.
fn content_rendition(
    snapshot: &super::channel::ChannelSnapshot,
    i: usize,
) -> (u64, Option<(u32, u32)>) {
    snapshot
        .renditions
        .get(i)
        .map_or((0, None), |r| (r.variant.bandwidth, r.variant.resolution))
}

fn rendition(
    codecs: &str,
    id: String,
    media: String,
    segment_micros: u64,
    snapshot: &super::channel::ChannelSnapshot,
    i: usize,
) -> AdRendition {
    let (bandwidth, resolution) = content_rendition(snapshot, i);
    AdRendition {
        id,
        kind: ContentKind::Video,
        mime_type: "video/mp2t".into(),
        codecs: codecs.to_owned(),
        bandwidth,
        width: resolution.map(|r| r.0),
        height: resolution.map(|r| r.1),
        frame_rate: None,
        audio_sampling_rate: None,
        lang: None,
        timescale: 1_000_000,
        segment_duration: segment_micros.max(1),
        start_number: 0,
        media,
        initialization: String::new(),
    }
}

/// The decided ads as DASH ads: one rendition per content rendition, segments through our ad route.
fn ads_of(
    decision: &BreakDecision,
    snapshot: &super::channel::ChannelSnapshot,
    codecs: &str,
) -> Vec<Ad> {
    decision
        .ads
        .iter()
        .filter(|a| !a.segment_micros.is_empty())
        .map(|a| {
            let total: u64 = a.segment_micros.iter().sum();
            let first = a.segment_micros.first().copied().unwrap_or(1);
            Ad {
                id: a.ad.ad_instance_id.clone(),
                duration: Duration::from_micros(total),
                renditions: (0..a.segment_urls.len())
                    .map(|i| rendition(codecs, i.to_string(), String::new(), first, snapshot, i))
                    .collect(),
            }
        })
        .collect()
}

fn slate_ad(
    urls: &[String],
    secs: f64,
    snapshot: &super::channel::ChannelSnapshot,
    codecs: &str,
) -> Ad {
    let micros = (secs * 1e6).round() as u64;
    Ad {
        id: "slate".into(),
        duration: Duration::from_micros(micros),
        renditions: urls
            .iter()
            .enumerate()
            .map(|(i, url)| {
                rendition(
                    codecs,
                    format!("slate{i}"),
                    url.clone(),
                    micros,
                    snapshot,
                    i,
                )
            })
            .collect(),
    }
}
