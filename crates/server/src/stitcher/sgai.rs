//! HLS Interstitials: server-guided ad insertion (SGAI) as a per-session mode.
//!
//! An interstitials session's media playlists are the origin's, untouched (same segments — their URIs made
//! absolute, since the player reads the playlist from this server —, media sequence and discontinuity
//! sequence), plus one `EXT-X-DATERANGE` per ad break with `CLASS="com.apple.hls.interstitial"`
//! (HLS Interstitials, RFC 8216bis appendix D): `START-DATE` at the break's program date time, `DURATION` /
//! `PLANNED-DURATION`, `X-ASSET-LIST` pointing at this session's asset list for the break, `X-RESUME-OFFSET`
//! equal to the break's length (content resumes live, where the break ends), `X-RESTRICT="SKIP,JUMP"` and
//! `X-SNAP="OUT,IN"`. Ids and attributes derive from the tracked break only, so every refresh repeats them.
//!
//! The asset list (`GET /s/{session}/interstitials/{break}/assets.json`) is the session's pod for the break —
//! the same decision a stitched playlist of the session would show — as `{"ASSETS": [{"URI", "DURATION"}]}`,
//! each asset with `X-INTERLUDE-TRACKING`: the ad instance and signed tracking URLs (`/t/{token}`) for the
//! player to call (impression and start at the asset start, quartiles by position, complete at the end).
//! The player fetches the ads itself, so no server-side beacons fire for these sessions.

use std::fmt::Write;
use std::time::Duration;

use chrono::SecondsFormat;
use interlude_events::contract::EventType;
use interlude_events::token::TokenClaims;
use interlude_stitch::pod::micros_to_secs;
use serde::{Deserialize, Serialize};

use super::service::{StitchError, Stitcher};
use super::session::Session;

/// How a session's breaks reach the player.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionMode {
    /// Ads stitched into the media playlists (SSAI).
    #[default]
    Stitched,
    /// Content untouched; breaks marked as HLS Interstitials for the player to fill (SGAI).
    Interstitials,
}

/// Signs a tracking URL path (`/t/{token}`) for claims: the collector's keyring.
pub type TrackingSigner = std::sync::Arc<dyn Fn(&TokenClaims) -> Option<String> + Send + Sync>;

fn quote(s: &str) -> String {
    s.replace('"', "'")
}

impl Stitcher {
    /// The origin's media playlist for `rendition` with each break marked as an interstitial.
    pub fn interstitial_playlist(
        &self,
        session: &Session,
        rendition: usize,
    ) -> Result<String, StitchError> {
        let snapshot = self.channel(&session.channel)?.snapshot();
        let content = snapshot
            .renditions
            .get(rendition)
            .ok_or(StitchError::UnknownRendition(rendition))?;
        let raw = String::from_utf8_lossy(&content.raw);
        let mut dateranges = String::new();
        for tracked in snapshot.breaks.iter() {
            let Some(start) = tracked.start_pdt else {
                continue;
            };
            // A break already under way when the viewer joined is not offered: players start an interstitial
            // they join mid-way from its first asset (and hls.js holds the schedule on it), so the viewer sees
            // the origin's break content instead, as with the stitcher's `passthrough` join policy.
            if tracked.start_msn < session.joined_msn {
                continue;
            }
            let planned = tracked.planned_micros.map(micros_to_secs);
            let _ = write!(
                dateranges,
                "#EXT-X-DATERANGE:ID=\"{id}\",CLASS=\"com.apple.hls.interstitial\",START-DATE=\"{start}\"",
                id = quote(&format!("ad-{}", tracked.id)),
                start = start.to_rfc3339_opts(SecondsFormat::Millis, true),
            );
            if let Some(secs) = planned {
                let _ = write!(dateranges, ",PLANNED-DURATION={secs:.3}");
            }
            if tracked.is_ended() {
                let _ = write!(
                    dateranges,
                    ",DURATION={:.3}",
                    micros_to_secs(tracked.elapsed_micros())
                );
            }
            let _ = write!(
                dateranges,
                ",X-ASSET-LIST=\"{}/s/{}/interstitials/{}/assets.json\"",
                self.base_url(),
                session.id,
                quote(&tracked.id)
            );
            if let Some(secs) = planned {
                let _ = write!(dateranges, ",X-RESUME-OFFSET={secs:.3}");
            }
            dateranges.push_str(",X-RESTRICT=\"SKIP,JUMP\",X-SNAP=\"OUT,IN\"\n");
        }
        // Date ranges may appear anywhere in a media playlist; before the first segment keeps the header intact.
        // Segment URIs made absolute against the origin playlist: the player reads this one from our server.
        let origin = url::Url::parse(&content.variant.uri).ok();
        let mut out = String::with_capacity(raw.len() + dateranges.len());
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

    /// The asset list of `break_id` for the session (deciding the break now if needed).
    pub async fn asset_list(
        &self,
        session: &Session,
        break_id: &str,
    ) -> Result<serde_json::Value, StitchError> {
        let snapshot = self.channel(&session.channel)?.snapshot();
        let tracked = snapshot
            .breaks
            .iter()
            .find(|b| b.id == break_id)
            .ok_or_else(|| StitchError::UnknownBreak(break_id.to_owned()))?;
        if session.decision(&tracked.id).is_none() {
            let timeout = Duration::from_millis(self.config().decision_timeout_ms);
            let _ = tokio::time::timeout(timeout, self.decide(session, tracked)).await;
        }
        let decision = session.decision(&tracked.id);
        let now = u32::try_from(chrono::Utc::now().timestamp()).unwrap_or(0);
        let mut assets = Vec::new();
        for resolved in decision.iter().flat_map(|d| d.ads.iter()) {
            let ad = &resolved.ad;
            // The best rendition for the player to start with; its multivariant choice is its own.
            let Some(rendition) = ad.renditions.iter().max_by_key(|r| r.bandwidth) else {
                continue;
            };
            let duration = micros_to_secs(resolved.segment_micros.iter().sum());
            let sign = |event_type: EventType| {
                let claims = TokenClaims {
                    ad_instance_id: ad.ad_instance_id.clone(),
                    event_type,
                    session_id: session.id.clone(),
                    creative_id: ad.creative_id.clone(),
                    line_item_id: ad.line_item_id.clone(),
                    channel: session.channel.clone(),
                    issued_at: now,
                };
                self.sign_tracking(&claims)
                    .map(|path| format!("{}{path}", self.base_url()))
            };
            let mut events = serde_json::Map::new();
            for t in [
                EventType::Impression,
                EventType::Start,
                EventType::FirstQuartile,
                EventType::Midpoint,
                EventType::ThirdQuartile,
                EventType::Complete,
            ] {
                if let Some(url) = sign(t) {
                    events.insert(t.as_str().to_owned(), serde_json::Value::String(url));
                }
            }
            assets.push(serde_json::json!({
                "URI": rendition.playlist_url,
                "DURATION": duration,
                "X-INTERLUDE-TRACKING": {
                    "ad_instance_id": ad.ad_instance_id,
                    "creative_id": ad.creative_id,
                    "line_item_id": ad.line_item_id,
                    "events": events,
                    "third_party_impressions": ad.impression_urls,
                },
            }));
        }
        Ok(serde_json::json!({ "ASSETS": assets }))
    }
}
