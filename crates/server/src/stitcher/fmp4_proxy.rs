//! Proxy delivery of fragmented MP4 (CMAF) ad and slate segments: the fMP4 counterpart of `proxy`'s MPEG-TS
//! retiming. Each track fragment's decode time (`tfdt`, ISO/IEC 14496-12 §8.8.12) is moved so the item
//! continues the content the break replaces, track by track (matched by handler, `vide`/`soun`, each in its
//! own timescale): the break's anchor is the content's presentation time where the break starts (its first
//! frame on screen: decode time plus the composition offset B-frames add), measured once per break and
//! rendition from the first replaced content segment still in the origin window, and an item `t`
//! microseconds into the break is shown from `anchor + t` — as the TS retiming anchors on the first PTS, so an
//! ad with B-frames and a slate without line up frame for frame. Slate is cut to the item's length. Without an anchor
//! (the content left the window) the bytes are passed through: the playlist's discontinuity still resets
//! players that honour it.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use dashmap::DashMap;
use interlude_mpegts::fmp4::{
    InitSegment, decode_times, first_presentation_times, rewrite_decode_times, ticks_in_timescale,
    truncate,
};
use interlude_stitch::TrackedBreak;
use tokio::sync::OnceCell;

use super::channel::Channel;

/// The content's presentation time where a break starts, per track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Anchor {
    /// (handler, timescale, presentation time at the break start).
    tracks: Vec<([u8; 4], u32, u64)>,
}

/// Channel, break start (media sequence) and rendition.
type AnchorKey = (String, u64, usize);

/// Per-break fMP4 anchors, measured once each.
#[derive(Debug, Default)]
pub(crate) struct Fmp4Anchors {
    cells: DashMap<AnchorKey, Arc<OnceCell<Arc<Anchor>>>>,
}

impl Fmp4Anchors {
    /// The anchor of `tracked` in rendition `rendition`, measured once.
    pub(crate) async fn anchor(
        &self,
        channel: &Channel,
        tracked: &TrackedBreak,
        rendition: usize,
        http: &reqwest::Client,
        timeout: Duration,
    ) -> Option<Arc<Anchor>> {
        let key = (channel.config.id.clone(), tracked.start_msn, rendition);
        let cell = self.cells.entry(key).or_default().clone();
        let result = cell
            .get_or_try_init(|| async {
                measure(channel, tracked, rendition, http, timeout)
                    .await
                    .map(Arc::new)
            })
            .await;
        match result {
            Ok(anchor) => Some(anchor.clone()),
            Err(error) => {
                tracing::warn!(channel = %channel.config.id, break_id = %tracked.id, %error,
                    "No fMP4 timestamp anchor for the break; serving its segments unshifted.");
                None
            }
        }
    }

    /// Forgets anchors of breaks that started before `oldest_msn` on `channel`.
    pub(crate) fn prune(&self, channel: &str, oldest_msn: u64) {
        self.cells
            .retain(|(c, msn, _), _| c != channel || *msn >= oldest_msn);
    }
}

/// The URI of an `EXT-X-MAP` line.
pub(crate) fn map_uri(map: &str) -> Option<&str> {
    let rest = &map[map.find("URI=\"")? + 5..];
    Some(&rest[..rest.find('"')?])
}

async fn get(http: &reqwest::Client, url: &str, timeout: Duration) -> Result<Bytes, String> {
    let response = http
        .get(url)
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("{url}: HTTP {}", response.status()));
    }
    response.bytes().await.map_err(|e| format!("{url}: {e}"))
}

async fn measure(
    channel: &Channel,
    tracked: &TrackedBreak,
    rendition: usize,
    http: &reqwest::Client,
    timeout: Duration,
) -> Result<Anchor, String> {
    let snapshot = channel.snapshot();
    let content = snapshot
        .renditions
        .get(rendition)
        .ok_or("no such rendition")?;
    let replaced = tracked.replaced_micros.len() as u64;
    let (index, into_break) = content
        .media
        .window
        .segments
        .iter()
        .enumerate()
        .find_map(|(i, s)| {
            let k = s.msn.checked_sub(tracked.start_msn)?;
            (k < replaced).then_some((i, k))
        })
        .ok_or("no replaced content segment left in the window")?;
    let segment = content
        .media
        .segments
        .get(index)
        .ok_or("window and segments disagree")?;
    let init_url = segment
        .map
        .as_deref()
        .and_then(map_uri)
        .ok_or("the content segment has no init segment")?;
    let init = get(http, init_url, timeout).await?;
    let init = InitSegment::parse(&init).map_err(|e| format!("{init_url}: {e}"))?;
    let bytes = get(http, &segment.uri, timeout).await?;
    let times = first_presentation_times(&bytes).map_err(|e| format!("{}: {e}", segment.uri))?;
    // The replaced time before this segment, taken off to reach the break start.
    let before: u64 = tracked
        .replaced_micros
        .iter()
        .take(usize::try_from(into_break).unwrap_or(usize::MAX))
        .sum();
    let mut tracks = Vec::new();
    for track in &init.tracks {
        let Some((_, shown)) = times.iter().find(|(id, _)| *id == track.id) else {
            continue;
        };
        let back = micros_in(before, track.timescale);
        tracks.push((track.handler, track.timescale, shown.saturating_sub(back)));
    }
    if tracks.is_empty() {
        return Err(format!("{}: no track fragment", segment.uri));
    }
    Ok(Anchor { tracks })
}

fn micros_in(micros: u64, timescale: u32) -> u64 {
    ticks_in_timescale(micros.saturating_mul(9) / 100, timescale)
}

/// `segment` (of the creative or slate whose init segment is `init` and whose first segment is `first`)
/// moved to start `offset_micros` after `anchor`, track by track; `None` when it cannot be (then serve it as
/// it is).
pub(crate) fn retimed(
    segment: &[u8],
    init: &[u8],
    first: &[u8],
    anchor: &Anchor,
    offset_micros: u64,
) -> Option<Vec<u8>> {
    let init = InitSegment::parse(init).ok()?;
    let origins = decode_times(first).ok()?;
    let shown = first_presentation_times(first).ok()?;
    // Per creative track: (its first decode time, the decode time it must have now).
    let mut moves = Vec::new();
    for track in &init.tracks {
        let (_, content_scale, content_time) =
            anchor.tracks.iter().find(|(h, ..)| *h == track.handler)?;
        let origin = origins
            .iter()
            .find(|t| t.track == track.id)?
            .base_media_decode_time;
        // Decoded this long before it is shown (B-frames).
        let delay = shown
            .iter()
            .find(|(id, _)| *id == track.id)?
            .1
            .saturating_sub(origin);
        let at = u128::from(*content_time) * u128::from(track.timescale)
            / u128::from((*content_scale).max(1));
        let start = (u64::try_from(at).ok()? + micros_in(offset_micros, track.timescale))
            .checked_sub(delay)?;
        moves.push((track.id, origin, start));
    }
    let mut out = segment.to_vec();
    rewrite_decode_times(&mut out, |id, old| {
        let (_, origin, start) = moves.iter().find(|(t, ..)| *t == id)?;
        start.checked_add(old.checked_sub(*origin)?)
    })
    .ok()?;
    Some(out)
}

/// `segment` cut to its first `duration_micros` (slate filling the end of a break).
pub(crate) fn cut(segment: &[u8], init: &[u8], duration_micros: u64) -> Option<Vec<u8>> {
    let init = InitSegment::parse(init).ok()?;
    truncate(segment, &init, duration_micros.saturating_mul(9) / 100).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_uris_are_read_from_the_tag() {
        assert_eq!(
            map_uri("#EXT-X-MAP:URI=\"http://a/init.mp4\",BYTERANGE=\"1@0\""),
            Some("http://a/init.mp4")
        );
        assert_eq!(map_uri("#EXT-X-MAP:BYTERANGE=\"1@0\""), None);
    }

    #[test]
    fn an_ad_moves_to_the_anchor_track_by_track() {
        let init: &[u8] = include_bytes!("../../../../assets/cmaf/ads/ad15/r0/init.mp4");
        let first: &[u8] = include_bytes!("../../../../assets/cmaf/ads/ad15/r0/000.m4s");
        let second: &[u8] = include_bytes!("../../../../assets/cmaf/ads/ad15/r0/001.m4s");
        // Content at 1000 s: video at 12.8 kHz, audio at 48 kHz.
        let anchor = Anchor {
            tracks: vec![
                (*b"vide", 12_800, 12_800_000),
                (*b"soun", 48_000, 48_000_000),
            ],
        };
        let moved = retimed(second, init, first, &anchor, 5_000_000).unwrap();
        let before = decode_times(second).unwrap();
        let first_times = decode_times(first).unwrap();
        for (t, b) in decode_times(&moved).unwrap().iter().zip(&before) {
            let origin = first_times
                .iter()
                .find(|f| f.track == t.track)
                .unwrap()
                .base_media_decode_time;
            let (scale, at) = if t.track == 1 {
                (12_800, 12_800_000)
            } else {
                (48_000, 48_000_000)
            };
            // Shown 5 s into the break, plus the segment's place in the ad: decoded two frames (1024 ticks)
            // earlier for the video, which has B-frames.
            let delay = if t.track == 1 { 1024 } else { 0 };
            assert_eq!(
                t.base_media_decode_time,
                at + 5 * scale + (b.base_media_decode_time - origin) - delay
            );
        }
    }
}
