//! Rendering a session's HLS playlists from a channel snapshot and the session's decisions: no I/O and no
//! side effect beyond the session itself. A break the session sees without a decision is fixed to slate
//! here (so every later refresh agrees with this one), and what was fixed is returned for the caller to
//! share with other nodes.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use interlude_stitch::hls::{AdRef, ItemUrls, write_media_playlist};
use interlude_stitch::render_window;

use super::StitchError;
use super::channels::ChannelEntry;
use super::config::JoinPolicy;
use super::decisions::slate_decision;
use super::session::{BreakDecision, Session};

/// What rendering needs beyond the snapshot and the session.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RenderSettings<'a> {
    /// The base URL links are built on.
    pub(crate) base_url: &'a str,
    /// Break tolerance in microseconds.
    pub(crate) tolerance_micros: u64,
    /// What a viewer who joins mid-break (or whose decision is late) sees.
    pub(crate) join_policy: JoinPolicy,
    /// Whether ad and slate segments are served by this server.
    pub(crate) proxy: bool,
}

/// Decisions fixed while rendering: (break id, decision), to share with other nodes.
pub(crate) type Fixed = Vec<(String, Arc<BreakDecision>)>;

/// The session's master playlist: the origin's, with each variant pointing at the session's media playlist
/// (renditions of `EXT-X-MEDIA` groups keep their absolute origin URIs).
pub(crate) fn master_playlist(
    entry: &ChannelEntry,
    session: &Session,
    base_url: &str,
) -> Result<String, StitchError> {
    let snapshot = entry.channel.snapshot();
    let master = snapshot
        .master
        .as_ref()
        .ok_or_else(|| StitchError::OriginUnavailable(session.channel.clone()))?;
    let mut master = (**master).clone();
    for (i, variant) in master.variants.iter_mut().enumerate() {
        variant.uri = format!("{base_url}/s/{}/{i}/media.m3u8", session.id);
    }
    Ok(master.to_string())
}

/// Writes the session's media playlist for content rendition `rendition` into `out`; returns the decisions
/// it had to fix.
pub(crate) fn media_playlist(
    entry: &ChannelEntry,
    session: &Session,
    rendition: usize,
    now: DateTime<Utc>,
    settings: RenderSettings<'_>,
    out: &mut String,
) -> Result<Fixed, StitchError> {
    let snapshot = entry.channel.snapshot();
    if entry.channel.is_stale(&snapshot, now) {
        return Err(StitchError::OriginUnavailable(session.channel.clone()));
    }
    let content = snapshot
        .renditions
        .get(rendition)
        .ok_or(StitchError::UnknownRendition(rendition))?;
    let slate = entry.cached_slate();
    let breaks = snapshot.breaks.as_slice();
    let mut fixed = Fixed::new();
    // Fix each relevant break's decision for this viewer before rendering: a break seen without a decision
    // (the pod source was too slow) is locked to slate now, so every later refresh agrees with this one.
    let decisions: Vec<Option<Arc<BreakDecision>>> = breaks
        .iter()
        .map(|b| {
            let before_session = b.end_msn.is_some_and(|end| end <= session.joined_msn);
            if before_session {
                return None;
            }
            session.decision(&b.id).or_else(|| {
                let fallback = match (&slate, settings.join_policy) {
                    (Some(slate), JoinPolicy::RestOfPod | JoinPolicy::Slate) => {
                        slate_decision(slate)
                    }
                    _ => BreakDecision {
                        plan: None,
                        ads: Vec::new(),
                    },
                };
                let decision = session.decide(&b.id, fallback);
                fixed.push((b.id.clone(), decision.clone()));
                Some(decision)
            })
        })
        .collect();
    let rendered = render_window(
        &content.media.window,
        breaks,
        |i, _| decisions.get(i)?.as_ref()?.plan.as_ref(),
        settings.tolerance_micros,
    )
    .map_err(|_| StitchError::OriginUnavailable(session.channel.clone()))?;
    let slate_url = slate
        .as_ref()
        .and_then(|s| s.urls.get(rendition))
        .map_or("", String::as_str);
    let slate_map = slate.as_ref().and_then(|s| s.maps.get(rendition));
    let urls = ItemUrls {
        base_url: settings.base_url,
        session_id: &session.id,
        rendition,
        slate_url,
        proxy: settings.proxy,
        breaks,
        slate_map: slate_map.map(|m| &**m),
    };
    write_media_playlist(out, &content.media, &rendered, &urls, |b, a| {
        let ad = decisions.get(b)?.as_deref()?.ads.get(a)?;
        Some(AdRef {
            instance_id: ad.ad.ad_instance_id.as_str(),
            map: ad.map(rendition),
        })
    });
    Ok(fixed)
}
