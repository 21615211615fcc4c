//! DASH sessions: `GET /s/{session}/manifest.mpd` serves the viewer's MPD — the channel's live DASH origin with
//! each ad break split into ad Periods (one per ad) and slate, by the pure `interlude-dash` stitcher.
//!
//! A channel is one stream offered in two packagings, so a viewer's pod is one decision whichever they play:
//! DASH breaks (SCTE-35 in the MPD's EventStream) are matched to the breaks the HLS poller tracks by splice
//! event id, and the session's decision for that break is reused (or made now). Ad Periods address the same
//! creative segments as HLS through this server's ad segment route, so server-side beacons fire the same way.
//! Period ids derive from the break and ad index, so they are stable across refreshes, also once the origin
//! stops listing a break (the latest breaks are remembered per channel). Ad and slate Periods carry the
//! media's first PTS as `@presentationTimeOffset`, and the MPD names its clock (`UTCTiming`). Over a CMAF
//! (fMP4) origin the ads and slate are separate video and audio tracks (`dash_cmaf`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use interlude_dash::{
    Ad, AdBreak, AdRendition, AdTemplateUrls, AdUrlRequest, AdUrls, ContentKind, PlannedBreak,
    StitchOptions,
};
use interlude_stitch::TrackedBreak;

use super::dash_cmaf::{CmafAds, audio_bandwidth, is_fmp4};
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

    /// The breaks of `channel` to plan: those the origin MPD lists now (`listed`, by start), and the latest
    /// ones it listed before and no longer does. A break leaves the origin's EventStream once it left the
    /// time-shift window, but the Period after it must keep its id and start: without the break in the plan
    /// the content would go back to the origin's own Period (its id and start), and a player that is in the
    /// Period after the break would see that Period vanish (ISO/IEC 23009-1 §5.3.2.1: a Period's id names
    /// the same Period on every update).
    fn dash_breaks(&self, channel: &str, listed: &[AdBreak]) -> Vec<(AdBreak, bool)> {
        let mut known = self.dash_breaks.entry(channel.to_owned()).or_default();
        for b in listed {
            match known.iter_mut().find(|k| k.id == b.id) {
                Some(k) => *k = b.clone(),
                None => known.push(b.clone()),
            }
        }
        known.sort_by_key(|b| b.start);
        let excess = known
            .len()
            .saturating_sub(listed.len() + REMEMBERED_DASH_BREAKS);
        known.drain(..excess);
        known
            .iter()
            .map(|b| (b.clone(), listed.iter().any(|l| l.id == b.id)))
            .collect()
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
        // Where each ad and slate rendition's media starts, by (ad id, rendition id), in the rendition's
        // timescale (microseconds for MPEG-TS).
        let mut media_starts = HashMap::new();
        let base = format!("{}/s/{}", self.base_url(), session.id);
        // A CMAF origin: ads and slate as separate fMP4 video and audio tracks (see `dash_cmaf`).
        let cmaf = is_fmp4(&mpd).then(|| CmafAds {
            base: &base,
            codecs,
            snapshot: &snapshot,
            audio_bw: audio_bandwidth(&mpd),
        });
        let slate = self.slate_of(&session.channel).await;
        let slate_ad = match &cmaf {
            Some(with) => {
                self.cmaf_slate(&session.channel, with, &mut media_starts)
                    .await
            }
            None => slate
                .as_ref()
                .map(|(urls, secs)| slate_ad(urls, *secs, &snapshot, codecs)),
        };
        let mut plans: Vec<PlannedBreak> = Vec::new();
        for (b, listed) in self.dash_breaks(&session.channel, &scan.breaks) {
            let Some(duration) = b.duration else { continue };
            // The same break as HLS sees it (same splice event id, else the same start within a second): its
            // decision is the viewer's pod for this break.
            let starts_at = mpd
                .availability_start_time
                .and_then(|ast| chrono::TimeDelta::from_std(b.start).ok().map(|d| ast + d));
            let tracked = snapshot.breaks.iter().find(|t| {
                let same_id =
                    matches!((b.splice_event_id, t.event_id), (Some(a), Some(c)) if a == c);
                let same_time = matches!((starts_at, t.start_pdt),
                    (Some(a), Some(c)) if (a - c).num_milliseconds().abs() <= 1_000);
                same_id || same_time
            });
            let decision = match tracked {
                Some(t) => match session.decision(&t.id) {
                    Some(d) => Some(d),
                    // A break that left the origin's MPD is past: nothing of it is played any more.
                    None if listed => {
                        let _ = tokio::time::timeout(timeout, self.decide(session, t)).await;
                        session.decision(&t.id)
                    }
                    None => None,
                },
                None => None,
            };
            let ads = match (&decision, tracked, listed, &cmaf) {
                (Some(d), _, _, Some(with)) => self.cmaf_ads(d, with, &mut media_starts).await,
                (Some(d), Some(t), true, None) => {
                    let ads = ads_of(d, &snapshot, codecs);
                    self.ad_media_starts(session, t, d, &mut media_starts).await;
                    ads
                }
                (Some(d), ..) => ads_of(d, &snapshot, codecs),
                // Past breaks keep their place with slate alone: with slate, content resumes where the break
                // ends whatever the ads were (the Periods of the break itself are out of the window).
                (None, _, false, _) if slate_ad.is_some() => Vec::new(),
                (None, ..) => {
                    tracing::debug!(break_id = %b.id, "DASH break not (yet) tracked in HLS; left as content.");
                    continue;
                }
            };
            plans.push(PlannedBreak {
                id: b.id.clone(),
                start: b.start,
                duration,
                ended_at: b.ended_at,
                ads,
                slate: slate_ad.clone(),
            });
        }
        // A remembered break that overlaps a listed one (the origin moved its schedule) is dropped: the
        // plan's breaks must not overlap.
        plans.sort_by_key(|p| p.start);
        let mut kept: Vec<PlannedBreak> = Vec::with_capacity(plans.len());
        for p in plans {
            if kept.last().is_some_and(|l| p.start < l.end()) {
                continue;
            }
            kept.push(p);
        }
        if let (Some((urls, _)), None) = (&slate, &cmaf) {
            for (i, url) in urls.iter().enumerate() {
                if let Some(pts) = self
                    .segments
                    .creative_first_pts(&self.channels, &session.channel, url)
                    .await
                {
                    media_starts.insert(("slate".to_owned(), format!("slate{i}")), micros(pts));
                }
            }
        }
        let urls = SessionAdUrls {
            base: base.clone(),
            media_starts,
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
            // The request's channel time: an MPEG-TS origin's `$Number$` template says nothing of its live
            // edge, so this is what keeps ad Periods from appearing before their time; it is also the MPD's
            // clock (`UTCTiming` direct, DASH-IF IOP §4.7) when the origin names none — without one dash.js
            // refuses to play ("Failed to synchronize client and server time").
            now: Some(self.now()),
            // Two refreshes ahead: a player learns of the Period after the one it plays before reaching it.
            period_lookahead: mpd
                .minimum_update_period
                .map_or(MIN_PERIOD_LOOKAHEAD, |mup| {
                    (mup * 2).max(MIN_PERIOD_LOOKAHEAD)
                }),
            ..StitchOptions::default()
        };
        let stitched = interlude_dash::stitch(&mpd, &kept, &urls, &options)
            .map_err(|e| StitchError::DashOrigin(format!("stitching the DASH MPD: {e}")))?;
        for w in &stitched.warnings {
            tracing::debug!(session = %session.id, warning = ?w, "DASH stitching warning.");
        }
        Ok(interlude_dash::write_mpd(&stitched.mpd))
    }

    /// Where the media of each of `decision`'s ads starts as served, per rendition (see [`SessionAdUrls`]).
    async fn ad_media_starts(
        &self,
        session: &Session,
        tracked: &TrackedBreak,
        decision: &BreakDecision,
        out: &mut HashMap<(String, String), u64>,
    ) {
        let mut ad_start = 0u64;
        for a in &decision.ads {
            for (i, urls) in a.segment_urls.iter().enumerate() {
                let Some(first) = urls.first() else { continue };
                let pts = self
                    .segments
                    .ad_first_pts(
                        &self.channels,
                        &session.channel,
                        tracked,
                        i,
                        ad_start,
                        first,
                    )
                    .await;
                if let Some(pts) = pts {
                    out.insert((a.ad.ad_instance_id.clone(), i.to_string()), micros(pts));
                }
            }
            ad_start += a.segment_micros.iter().sum::<u64>();
        }
    }
}

/// The least [`StitchOptions::period_lookahead`], for origins that refresh often or do not say.
const MIN_PERIOD_LOOKAHEAD: Duration = Duration::from_secs(4);

/// Breaks the origin no longer lists that are still planned, beyond those it lists (see
/// [`Stitcher::dash_breaks`]).
const REMEMBERED_DASH_BREAKS: usize = 2;

/// 90 kHz ticks as microseconds (the ad Representations' timescale), rounded.
fn micros(pts: u64) -> u64 {
    (pts * 100 + 4) / 9
}

/// A session's ad segment URLs (through this server's ad route, so server-side beacons fire; slate as it
/// is), and where each ad and slate rendition's media starts: its first PTS as served, which the stitcher
/// writes as the ad Period's `@presentationTimeOffset` and first `S@t`, so the player puts the ad's first
/// sample at the Period start (ISO/IEC 23009-1 §5.3.9.2). Creatives encoded by ffmpeg start at 1.4 s, not
/// 0: with an offset of 0 every ad and slate Period would begin with a 1.4 s gap and lose its last 1.4 s.
struct SessionAdUrls {
    base: String,
    media_starts: HashMap<(String, String), u64>,
}

impl AdUrls for SessionAdUrls {
    fn urls(&self, r: &AdUrlRequest<'_>) -> AdTemplateUrls {
        // fMP4 track renditions carry their route's URLs (see `dash_cmaf`).
        if !r.rendition.initialization.is_empty() {
            return AdTemplateUrls {
                media: r.rendition.media.clone(),
                initialization: r.rendition.initialization.clone(),
            };
        }
        if r.is_slate {
            // The slate is one segment looped: every number is the same file.
            return AdTemplateUrls {
                media: r.rendition.media.clone(),
                initialization: String::new(),
            };
        }
        AdTemplateUrls {
            media: format!(
                "{}/ads/{}/{}/$Number$.ts",
                self.base, r.ad.id, r.rendition.id
            ),
            initialization: String::new(),
        }
    }

    fn media_time_at_start(&self, r: &AdUrlRequest<'_>) -> u64 {
        self.media_starts
            .get(&(r.ad.id.clone(), r.rendition.id.clone()))
            .copied()
            .unwrap_or(0)
    }
}

/// Content rendition `i`'s bandwidth and size, for the ad rendition mirroring it.
pub(super) fn content_rendition(
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
