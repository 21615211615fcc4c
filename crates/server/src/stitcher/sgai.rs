//! HLS Interstitials: server-guided ad insertion (SGAI) as a per-session mode.
//!
//! An interstitials session's media playlists are the origin's, untouched (same segments — their URIs made
//! absolute, since the player reads the playlist from this server —, media sequence, discontinuity sequence,
//! program date times and the origin's own ad markers), plus one `EXT-X-DATERANGE` per ad break with
//! `CLASS="com.apple.hls.interstitial"` (Apple, *HLS Interstitials*, and RFC 8216bis appendix D
//! "Interstitials"; the tag itself is RFC 8216bis §4.4.5.1):
//!
//! - `ID` — `ad-{break id}`, the same on every refresh;
//! - `START-DATE` — the program date time of the break's first segment (the origin must carry
//!   `EXT-X-PROGRAM-DATE-TIME`, RFC 8216bis §4.4.5.1 requires it with date ranges; a break without one is not
//!   offered);
//! - `PLANNED-DURATION` (when signalled) and, once the origin ends the break, `DURATION` — appended last, so the
//!   tag of a running break is a prefix of the tag of the ended one (§4.4.5.1 allows a later playlist to add
//!   attributes to a date range, never to change one);
//! - `X-ASSET-LIST` — this session's asset list for the break (appendix D: the client fetches it when it
//!   needs the assets);
//! - `X-RESUME-OFFSET` — the planned break length, so primary content resumes where the break ends, at live;
//! - `X-PLAYOUT-LIMIT` — the planned break length too: the assets never play past the break;
//! - `X-RESTRICT="SKIP,JUMP"` — no skipping the ads, no seeking past them;
//! - `X-SNAP="IN"` — rejoin primary content on a segment boundary (the resume point, start plus planned
//!   duration, need not be one). Not `OUT`: `START-DATE` is a segment boundary already, and hls.js 1.6 snaps
//!   `OUT` to the date range's anchor segment, which becomes the window's first segment once the break's start
//!   has slid out of a live window shorter than the break: the interstitial's start then moves with every
//!   refresh and the player replays or stalls in it (seen with the origin simulator's 12 s window).
//!
//! A break under way when the viewer joined is not offered (players start an interstitial they join mid-way
//! from its first asset; the viewer sees the origin's break content, as with the stitcher's `passthrough` join
//! policy).
//!
//! The asset list (`GET /s/{session}/interstitials/{break}/assets.json`, appendix D's
//! `{"ASSETS": [{"URI", "DURATION"}]}`) is the session's pod for the break: the same decision a stitched
//! playlist of the session shows (decided on request if the break's decision has not run yet), then slate for
//! the planned time the pod leaves unfilled (`GET /s/{session}/interstitials/{break}/slate.m3u8`, a VOD
//! playlist of the channel's slate). Each ad asset carries `X-INTERLUDE-TRACKING` (custom keys are allowed in
//! asset lists): the ad instance and our signed tracking URLs (`/t/{token}`) for impression, start, quartiles
//! and complete, plus the ad's third-party URLs, for the player to call (impression and start at the asset
//! start, quartiles by play position, complete at the end). The player fetches the ads itself: the server
//! fires no server-side beacon for these sessions (see `Stitcher::ad_segment`).
//!
//! An ad offered only as a file to transcode is in the pod once conditioned for the channel's variant set
//! (the decision is the stitched sessions', so it is skipped, counted and queued exactly as there until then);
//! its asset is its conditioned media playlist for the channel's best rendition.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::SecondsFormat;
use interlude_events::contract::EventType;
use interlude_events::token::TokenClaims;
use interlude_hls::AttributeList;
use interlude_stitch::TrackedBreak;
use interlude_stitch::pod::micros_to_secs;
use serde::{Deserialize, Serialize};

use super::channel::ChannelSnapshot;
use super::session::{BreakDecision, ResolvedAd, Session};
use super::{StitchError, Stitcher};

/// The `CLASS` of an interstitial date range (appendix D).
pub const INTERSTITIAL_CLASS: &str = "com.apple.hls.interstitial";

/// The asset-list key with an ad's tracking.
pub const TRACKING_KEY: &str = "X-INTERLUDE-TRACKING";

pub use super::session::SessionMode;

/// Signs a tracking URL (`{beacon base}/t/{token}`) for claims: the collector's keyring.
pub type TrackingSigner = std::sync::Arc<dyn Fn(&TokenClaims) -> Option<String> + Send + Sync>;

/// An asset list (appendix D): the assets in play order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssetList {
    /// The assets.
    #[serde(rename = "ASSETS")]
    pub assets: Vec<Asset>,
}

/// One asset: an ad, or slate for unfilled time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Asset {
    /// The asset's playlist (an ad's media playlist at the creative's origin, or our slate playlist).
    #[serde(rename = "URI")]
    pub uri: String,
    /// Seconds.
    #[serde(rename = "DURATION")]
    pub duration: f64,
    /// The ad's tracking (absent for slate, which is not counted).
    #[serde(
        rename = "X-INTERLUDE-TRACKING",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub tracking: Option<AssetTracking>,
}

/// What a player reports for one ad asset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssetTracking {
    /// Ad instance id (every beacon carries it).
    pub ad_instance_id: String,
    /// Creative id.
    pub creative_id: String,
    /// Line item, when the ad came from the catalog.
    pub line_item_id: Option<String>,
    /// Our signed tracking URL per VAST event (`impression`, `start`, `firstQuartile`, `midpoint`,
    /// `thirdQuartile`, `complete`); empty when the server has no signing key.
    pub events: BTreeMap<String, String>,
    /// Third-party impression URLs, called with the impression.
    pub third_party_impressions: Vec<String>,
    /// Third-party tracking URLs by VAST event name.
    pub third_party_events: BTreeMap<String, Vec<String>>,
}

/// The interstitial date range's attributes for `tracked`, or `None` when the break is not offered to a viewer
/// who joined at `joined_msn` (no program date time, under way at the join, or first seen mid-way).
pub fn interstitial_attributes(
    tracked: &TrackedBreak,
    joined_msn: u64,
    asset_list_url: &str,
) -> Option<AttributeList> {
    let start = tracked.start_pdt?;
    if tracked.start_msn < joined_msn || tracked.start_offset_micros > 0 {
        return None;
    }
    // Quoted strings cannot hold a double quote or a line break (RFC 8216bis §4.2).
    let id = format!("ad-{}", tracked.id).replace(['"', '\r', '\n'], "_");
    let mut attrs = AttributeList::new();
    attrs.set_quoted("ID", &id);
    attrs.set_quoted("CLASS", INTERSTITIAL_CLASS);
    attrs.set_quoted(
        "START-DATE",
        &start.to_rfc3339_opts(SecondsFormat::Millis, true),
    );
    let planned = tracked.planned_micros.map(micros_to_secs);
    if let Some(secs) = planned {
        attrs.set_raw("PLANNED-DURATION", format!("{secs:.3}"));
    }
    attrs.set_quoted("X-ASSET-LIST", asset_list_url);
    if let Some(secs) = planned {
        attrs.set_raw("X-RESUME-OFFSET", format!("{secs:.3}"));
        attrs.set_raw("X-PLAYOUT-LIMIT", format!("{secs:.3}"));
    }
    attrs.set_quoted("X-RESTRICT", "SKIP,JUMP");
    attrs.set_quoted("X-SNAP", "IN");
    if tracked.is_ended() {
        attrs.set_raw(
            "DURATION",
            format!("{:.3}", micros_to_secs(tracked.elapsed_micros())),
        );
    }
    Some(attrs)
}

/// `base` with path segments appended, each percent-encoded (break ids come from the origin's markers).
fn url_with_segments(base: &str, segments: &[&str]) -> String {
    match url::Url::parse(base) {
        Ok(mut url) => {
            if let Ok(mut path) = url.path_segments_mut() {
                path.pop_if_empty().extend(segments);
            }
            url.to_string()
        }
        Err(_) => format!("{base}/{}", segments.join("/")),
    }
}

/// Microseconds of the planned break the decision leaves to slate (zero when the plan is passthrough, the
/// break has no planned duration, or the ads fill it to within `tolerance_micros`).
fn unfilled_micros(tracked: &TrackedBreak, decision: &BreakDecision, tolerance_micros: u64) -> u64 {
    let (Some(planned), Some(_)) = (tracked.planned_micros, decision.plan.as_ref()) else {
        return 0;
    };
    let ads: u64 = decision
        .ads
        .iter()
        .map(|a| a.segment_micros.iter().sum::<u64>())
        .sum();
    let left = planned.saturating_sub(ads);
    if left > tolerance_micros { left } else { 0 }
}

/// The index of the channel's highest-bandwidth content rendition (0 when it has none): the one whose slate
/// and conditioned ads the interstitial assets play, as a player left alone would pick the best.
fn best_content_rendition(snapshot: &ChannelSnapshot) -> usize {
    snapshot
        .renditions
        .iter()
        .enumerate()
        .max_by_key(|(_, r)| r.variant.bandwidth)
        .map_or(0, |(i, _)| i)
}

/// The media playlist an ad asset plays: the ad's own highest-bandwidth HLS rendition, or for an ad conditioned
/// here, its conditioned playlist for content rendition `best`. `None` for a conditioned ad decided without
/// playlists (a decision shared by a node that did not record them).
fn asset_uri(resolved: &ResolvedAd, best: usize) -> Option<&str> {
    if let Some(rendition) = resolved.ad.renditions.iter().max_by_key(|r| r.bandwidth) {
        return Some(&rendition.playlist_url);
    }
    resolved
        .playlist_urls
        .get(best)
        .or(resolved.playlist_urls.first())
        .map(String::as_str)
}

impl Stitcher {
    fn interstitial_url(&self, session: &Session, break_id: &str, leaf: &str) -> String {
        url_with_segments(
            self.base_url(),
            &["s", &session.id, "interstitials", break_id, leaf],
        )
    }

    fn tracked_break(
        &self,
        session: &Session,
        break_id: &str,
    ) -> Result<TrackedBreak, StitchError> {
        self.channel(&session.channel)?
            .snapshot()
            .breaks
            .iter()
            .find(|b| b.id == break_id)
            .cloned()
            .ok_or_else(|| StitchError::UnknownBreak(break_id.to_owned()))
    }

    /// The origin's media playlist for `rendition` with each break marked as an interstitial.
    pub fn interstitial_playlist(
        &self,
        session: &Session,
        rendition: usize,
    ) -> Result<String, StitchError> {
        let channel = self.channel(&session.channel)?;
        let snapshot = channel.snapshot();
        if channel.is_stale(&snapshot, self.now()) {
            return Err(StitchError::OriginUnavailable(session.channel.clone()));
        }
        let content = snapshot
            .renditions
            .get(rendition)
            .ok_or(StitchError::UnknownRendition(rendition))?;
        let raw = String::from_utf8_lossy(&content.raw);
        let mut dateranges = String::new();
        for tracked in snapshot.breaks.iter() {
            let list = self.interstitial_url(session, &tracked.id, "assets.json");
            if let Some(attrs) = interstitial_attributes(tracked, session.joined_msn, &list) {
                let _ = writeln!(dateranges, "#EXT-X-DATERANGE:{attrs}");
            }
        }
        // Date ranges may appear anywhere in a media playlist; before the first segment keeps the header intact.
        // Segment URIs made absolute against the origin playlist: the player reads this one from our server.
        let origin = url::Url::parse(&content.variant.uri).ok();
        let mut out = String::with_capacity(raw.len() + dateranges.len() + 1024);
        let mut inserted = false;
        for line in raw.lines() {
            if !inserted
                && (line.starts_with("#EXT-X-PROGRAM-DATE-TIME") || line.starts_with("#EXTINF"))
            {
                out.push_str(&dateranges);
                inserted = true;
            }
            match (&origin, line.starts_with('#') || line.trim().is_empty()) {
                (Some(base), false) => match base.join(line.trim()) {
                    Ok(url) => out.push_str(url.as_str()),
                    Err(_) => out.push_str(line),
                },
                _ => out.push_str(line),
            }
            out.push('\n');
        }
        if !inserted {
            out.push_str(&dateranges);
        }
        Ok(out)
    }

    /// The session's decision for `tracked`, deciding it now (within the decision timeout) if the break's
    /// decision has not run yet: the same path, and so the same pod, as a stitched rendering.
    async fn decision_for(
        &self,
        session: &Session,
        tracked: &TrackedBreak,
    ) -> Option<Arc<BreakDecision>> {
        if session.decision(&tracked.id).is_none() {
            metrics::counter!(crate::telemetry::metrics::STITCHER_DECISIONS_ON_REQUEST)
                .increment(1);
            let timeout = Duration::from_millis(self.config().decision_timeout_ms);
            let _ = tokio::time::timeout(timeout, self.decide(session, tracked)).await;
        }
        session.decision(&tracked.id)
    }

    /// The asset list of `break_id` for the session.
    pub async fn asset_list(
        &self,
        session: &Session,
        break_id: &str,
    ) -> Result<AssetList, StitchError> {
        let tracked = self.tracked_break(session, break_id)?;
        let Some(decision) = self.decision_for(session, &tracked).await else {
            return Ok(AssetList { assets: Vec::new() });
        };
        let issued_at = u32::try_from(self.now().timestamp()).unwrap_or(0);
        let best = best_content_rendition(&self.channel(&session.channel)?.snapshot());
        let mut assets = Vec::with_capacity(decision.ads.len() + 1);
        for resolved in &decision.ads {
            let ad = &resolved.ad;
            // The best rendition as a media playlist: the asset is the ad as the player plays it.
            let Some(uri) = asset_uri(resolved, best) else {
                tracing::debug!(session = %session.id, break_id = %tracked.id, creative = %ad.creative_id,
                    "Conditioned ad decided without its playlists; left out of the asset list.");
                continue;
            };
            let mut events = BTreeMap::new();
            for event_type in [
                EventType::Impression,
                EventType::Start,
                EventType::FirstQuartile,
                EventType::Midpoint,
                EventType::ThirdQuartile,
                EventType::Complete,
            ] {
                let claims = TokenClaims {
                    ad_instance_id: ad.ad_instance_id.clone(),
                    event_type,
                    session_id: session.id.clone(),
                    creative_id: ad.creative_id.clone(),
                    line_item_id: ad.line_item_id.clone(),
                    channel: session.channel.clone(),
                    issued_at,
                    demand: ad.bid.as_ref().map(crate::decisioning::demand::of_bid),
                };
                if let Some(url) = self.sign_tracking(&claims) {
                    events.insert(event_type.as_str().to_owned(), url);
                }
            }
            let mut third_party_events: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for (event, url) in &ad.tracking_urls {
                third_party_events
                    .entry(event.clone())
                    .or_default()
                    .push(url.clone());
            }
            assets.push(Asset {
                uri: uri.to_owned(),
                duration: micros_to_secs(resolved.segment_micros.iter().sum()),
                tracking: Some(AssetTracking {
                    ad_instance_id: ad.ad_instance_id.clone(),
                    creative_id: ad.creative_id.clone(),
                    line_item_id: ad.line_item_id.clone(),
                    events,
                    third_party_impressions: crate::pixels::client_impression_urls(ad),
                    third_party_events,
                }),
            });
        }
        let unfilled = unfilled_micros(&tracked, &decision, self.config().tolerance_ms * 1_000);
        if unfilled > 0 && self.slate_of(&session.channel).await.is_some() {
            assets.push(Asset {
                uri: self.interstitial_url(session, &tracked.id, "slate.m3u8"),
                duration: micros_to_secs(unfilled),
                tracking: None,
            });
        }
        Ok(AssetList { assets })
    }

    /// The slate asset of `break_id` for the session: a VOD media playlist repeating the channel's slate
    /// (discontinuity between repeats, RFC 8216bis §4.4.4.3) for the time the session's pod leaves unfilled.
    pub async fn interstitial_slate(
        &self,
        session: &Session,
        break_id: &str,
    ) -> Result<String, StitchError> {
        let tracked = self.tracked_break(session, break_id)?;
        let decision = session
            .decision(&tracked.id)
            .ok_or_else(|| StitchError::UnknownBreak(break_id.to_owned()))?;
        let unfilled = unfilled_micros(&tracked, &decision, self.config().tolerance_ms * 1_000);
        let (urls, seconds) = self
            .slate_of(&session.channel)
            .await
            .ok_or_else(|| StitchError::UnknownBreak(break_id.to_owned()))?;
        // The slate made for the best content rendition, as for the ads.
        let best = best_content_rendition(&self.channel(&session.channel)?.snapshot());
        let url = urls
            .get(best)
            .or(urls.first())
            .ok_or(StitchError::UnknownRendition(best))?;
        Ok(slate_playlist(url, seconds, micros_to_secs(unfilled)))
    }
}

/// A VOD media playlist playing the `slate_secs` long segment at `url` for `total_secs` (the last repeat's
/// `EXTINF` cut to what is left; the asset's playout ends at the break's `X-PLAYOUT-LIMIT` anyway).
pub fn slate_playlist(url: &str, slate_secs: f64, total_secs: f64) -> String {
    let mut out = String::from("#EXTM3U\n#EXT-X-VERSION:3\n");
    let _ = writeln!(out, "#EXT-X-TARGETDURATION:{}", slate_secs.ceil().max(1.0));
    out.push_str("#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n");
    let mut left = total_secs;
    let mut first = true;
    while left > 0.000_5 && slate_secs > 0.0 {
        if !first {
            out.push_str("#EXT-X-DISCONTINUITY\n");
        }
        first = false;
        let _ = writeln!(out, "#EXTINF:{:.3},\n{url}", left.min(slate_secs));
        left -= slate_secs;
    }
    out.push_str("#EXT-X-ENDLIST\n");
    out
}

/// `GET /s/{session}/interstitials/{break}/slate.m3u8`.
pub(crate) async fn slate_route(
    State(stitcher): State<Arc<Stitcher>>,
    Path((session, break_id)): Path<(String, String)>,
) -> Result<Response, crate::error::ApiError> {
    let session = stitcher.session(&session).await?;
    let body = stitcher.interstitial_slate(&session, &break_id).await?;
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.apple.mpegurl"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn tracked(ended: bool) -> TrackedBreak {
        TrackedBreak {
            id: "scte35-7".into(),
            start_msn: 100,
            start_offset_micros: 0,
            start_pdt: Some("2026-11-23T20:00:30Z".parse().unwrap()),
            planned_micros: Some(20_000_000),
            dsn_before: 0,
            replaced_micros: if ended {
                vec![2_000_000; 10]
            } else {
                vec![2_000_000; 3]
            },
            replaced_discontinuities: 0,
            end_msn: ended.then_some(110),
            end_discontinuity: false,
            scte35: None,
            event_id: Some(7),
        }
    }

    #[test]
    fn interstitial_date_range_carries_every_attribute() {
        let attrs = interstitial_attributes(&tracked(false), 90, "http://x/list.json").unwrap();
        assert_eq!(
            attrs.to_string(),
            "ID=\"ad-scte35-7\",CLASS=\"com.apple.hls.interstitial\",\
             START-DATE=\"2026-11-23T20:00:30.000Z\",PLANNED-DURATION=20.000,\
             X-ASSET-LIST=\"http://x/list.json\",X-RESUME-OFFSET=20.000,X-PLAYOUT-LIMIT=20.000,\
             X-RESTRICT=\"SKIP,JUMP\",X-SNAP=\"IN\""
        );
    }

    #[test]
    fn ended_break_only_appends_its_duration() {
        let running = interstitial_attributes(&tracked(false), 90, "u")
            .unwrap()
            .to_string();
        let ended = interstitial_attributes(&tracked(true), 90, "u")
            .unwrap()
            .to_string();
        assert_eq!(ended, format!("{running},DURATION=20.000"));
    }

    #[test]
    fn break_under_way_at_join_or_without_date_is_not_offered() {
        assert!(interstitial_attributes(&tracked(false), 101, "u").is_none());
        let mut no_pdt = tracked(false);
        no_pdt.start_pdt = None;
        assert!(interstitial_attributes(&no_pdt, 0, "u").is_none());
        let mut mid_way = tracked(false);
        mid_way.start_offset_micros = 4_000_000;
        assert!(interstitial_attributes(&mid_way, 0, "u").is_none());
    }

    #[test]
    fn break_ids_are_quoted_and_percent_encoded() {
        let mut odd = tracked(false);
        odd.id = "a \"b\"/c".into();
        let url = url_with_segments(
            "http://h:1",
            &["s", "x", "interstitials", &odd.id, "assets.json"],
        );
        assert_eq!(
            url,
            "http://h:1/s/x/interstitials/a%20%22b%22%2Fc/assets.json"
        );
        let attrs = interstitial_attributes(&odd, 0, &url).unwrap();
        assert_eq!(attrs.get("ID"), Some("ad-a _b_/c"));
        assert_eq!(AttributeList::parse(&attrs.to_string()).unwrap(), attrs);
    }

    #[test]
    fn slate_playlist_repeats_the_slate_for_the_unfilled_time() {
        let p = slate_playlist("http://o/slate/000.ts", 2.0, 5.0);
        assert_eq!(p.matches("#EXT-X-DISCONTINUITY\n").count(), 2);
        let total: f64 = p
            .lines()
            .filter_map(|l| l.strip_prefix("#EXTINF:"))
            .map(|l| l.trim_end_matches(',').parse::<f64>().unwrap())
            .sum();
        assert!((total - 5.0).abs() < 1e-9, "{p}");
        assert!(p.ends_with("#EXT-X-ENDLIST\n"));
        assert!(p.contains("#EXT-X-PLAYLIST-TYPE:VOD"));
    }
}
