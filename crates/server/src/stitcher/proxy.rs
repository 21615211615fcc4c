//! Proxy delivery of ad and slate segments (`stitcher.ad_delivery = "proxy"`).
//!
//! In redirect mode a player follows a 307 to the creative's CDN and relies on `EXT-X-DISCONTINUITY` to reset its
//! decoder at each boundary. Some players and decoders ignore discontinuities (ffmpeg's HLS demuxer does): the
//! ad's timestamps, which start near zero, then look like a jump backwards, and playback stalls or drops frames.
//! In proxy mode the server fetches the segment once (cached, with concurrent misses collapsed into one fetch)
//! and rewrites its PTS/DTS/PCR so they continue from the content the break replaces: the break's anchor is the
//! first PTS of its first replaced content segment, and an item `t` microseconds into the break starts at
//! `anchor + t`. Only MPEG-TS is rewritten; other containers are passed through unchanged.
//!
//! Items are aligned on their first video frame; where their audio and continuity counters must then lie is
//! `seams`' business, from the break's edges measured here ([`BreakStart`] from its first replaced content
//! segment, [`BreakEnd`] from its last): no audio PTS goes back, no audio gap exceeds one AAC frame and no
//! continuity counter jumps at any seam (issue 24).

use interlude_outbound::{GuardedClient, Kind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use dashmap::DashMap;
use interlude_mpegts::{
    WRAP, audio_span, first_counters, first_video_pts, last_counters, offset_between,
    shift_timestamps,
};
use interlude_stitch::TrackedBreak;
use tokio::sync::OnceCell;

use super::channel::Channel;

/// Why a segment could not be fetched.
#[derive(Debug, Clone, thiserror::Error)]
#[error("segment {url}: {reason}")]
pub struct FetchError {
    /// The segment URL.
    pub url: String,
    /// What went wrong.
    pub reason: String,
}

/// Converts microseconds to 90 kHz ticks.
pub(crate) fn ticks(micros: u64) -> u64 {
    micros * 9 / 100
}

/// Fetched segments by URL, bounded in bytes.
#[derive(Debug)]
pub(crate) struct SegmentCache {
    /// Ad segments are named by third parties: the guarded client, its segment size cap.
    http: GuardedClient,
    timeout: Duration,
    cells: DashMap<String, Arc<OnceCell<Bytes>>>,
    bytes: AtomicUsize,
    capacity: usize,
}

impl SegmentCache {
    pub(crate) fn new(http: GuardedClient, timeout: Duration, capacity: usize) -> Self {
        SegmentCache {
            http,
            timeout,
            cells: DashMap::new(),
            bytes: AtomicUsize::new(0),
            capacity,
        }
    }

    /// The segment at `url`; the first caller fetches it, concurrent callers wait for that fetch.
    pub(crate) async fn get(&self, url: &str) -> Result<Bytes, FetchError> {
        let cell = self.cells.entry(url.to_owned()).or_default().clone();
        let mut fetched = false;
        let bytes = cell
            .get_or_try_init(|| async {
                fetched = true;
                fetch(&self.http, url, self.timeout).await
            })
            .await?
            .clone();
        if fetched {
            metrics::counter!(crate::telemetry::metrics::STITCHER_PROXY_FETCHES).increment(1);
            let total = self.bytes.fetch_add(bytes.len(), Ordering::Relaxed) + bytes.len();
            if total > self.capacity {
                self.evict(url);
            }
        }
        Ok(bytes)
    }

    /// Drops cached segments other than `keep` until the cache is within capacity. Which ones does not matter
    /// much: creatives in rotation are fetched again on their next request.
    fn evict(&self, keep: &str) {
        let victims: Vec<String> = self
            .cells
            .iter()
            .filter(|e| e.key() != keep && e.value().initialized())
            .map(|e| e.key().clone())
            .collect();
        for key in victims {
            if self.bytes.load(Ordering::Relaxed) <= self.capacity {
                break;
            }
            if let Some((_, cell)) = self.cells.remove(&key) {
                let len = cell.get().map_or(0, Bytes::len);
                self.bytes.fetch_sub(len, Ordering::Relaxed);
            }
        }
    }
}

/// A content segment from the channel's origin (the operator's own, possibly on a private network).
async fn fetch_origin(
    http: &reqwest::Client,
    url: &str,
    timeout: Duration,
) -> Result<Bytes, FetchError> {
    let err = |reason: String| FetchError {
        url: url.to_owned(),
        reason,
    };
    let response = http
        .get(url)
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| err(e.to_string()))?;
    if !response.status().is_success() {
        return Err(err(format!("HTTP {}", response.status())));
    }
    response.bytes().await.map_err(|e| err(e.to_string()))
}

/// An ad or slate segment, through the guarded client.
pub(crate) async fn fetch(
    http: &GuardedClient,
    url: &str,
    timeout: Duration,
) -> Result<Bytes, FetchError> {
    let err = |reason: String| FetchError {
        url: url.to_owned(),
        reason,
    };
    Ok(http
        .get(url, Kind::Segment)
        .timeout(timeout)
        .send()
        .await
        .and_then(|r| r.require_success())
        .map_err(|e| err(e.to_string()))?
        .into_body())
}

/// Where a break starts on the content's timeline, in one rendition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BreakStart {
    /// PTS of the break's first video frame: the anchor its items are placed from.
    pub(crate) video: u64,
    /// First audio PTS of the break's first replaced content segment: where the content's audio before the
    /// break stops. Known when that segment was still in the origin window.
    pub(crate) audio: Option<u64>,
    /// The continuity_counter each PES PID (video, audio) of the content would continue with at the break:
    /// its first replaced segment's first values. Empty when that segment was not read.
    pub(crate) counters: Vec<(u16, u8)>,
}

/// Where the content resumes after a break, in one rendition: read from its last replaced segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BreakEnd {
    /// The first audio PTS after the break (the end of the last replaced segment's audio), when it lies near
    /// the break's video end.
    pub(crate) audio: Option<u64>,
    /// The continuity_counter of the last packet of each PES PID before the content resumes.
    pub(crate) counters: Vec<(u16, u8)>,
}

/// Cells of per-break values, keyed by channel, break start and rendition.
type Cells<T> = DashMap<(String, u64, usize), Arc<OnceCell<T>>>;

/// Per-break timestamp anchors, keyed by channel, break start and rendition.
#[derive(Debug, Default)]
pub(crate) struct Anchors {
    cells: Cells<BreakStart>,
    /// Where the content resumes after each break (measured once the break has ended).
    ends: Cells<BreakEnd>,
}

/// Audio this far (90 kHz) from the video edge is not the content's lead but a wrong measurement.
const MAX_AUDIO_LEAD: u64 = 45_000;

impl Anchors {
    /// The PTS at which `tracked` starts in rendition `rendition`, measured once from a content segment the
    /// break replaces (the earliest still in the origin window, with the replaced time before it subtracted).
    pub(crate) async fn anchor(
        &self,
        channel: &Channel,
        tracked: &TrackedBreak,
        rendition: usize,
        http: &reqwest::Client,
        timeout: Duration,
    ) -> Option<u64> {
        self.start(channel, tracked, rendition, http, timeout)
            .await
            .map(|s| s.video)
    }

    /// As [`Anchors::anchor`], with where the content's audio stops before the break.
    pub(crate) async fn start(
        &self,
        channel: &Channel,
        tracked: &TrackedBreak,
        rendition: usize,
        http: &reqwest::Client,
        timeout: Duration,
    ) -> Option<BreakStart> {
        let key = (channel.config.id.clone(), tracked.start_msn, rendition);
        let cell = self.cells.entry(key).or_default().clone();
        let result = cell
            .get_or_try_init(|| measure(channel, tracked, rendition, http, timeout))
            .await;
        match result {
            Ok(start) => Some(start.clone()),
            Err(error) => {
                tracing::warn!(channel = %channel.config.id, break_id = %tracked.id, %error,
                    "No timestamp anchor for the break; serving its segments unshifted.");
                None
            }
        }
    }

    /// Where the content resumes after `tracked`, read from its last replaced segment `last` (see
    /// `seams::break_end`) while that is in the origin window; `None` otherwise (asked again on the next
    /// request). `video_end` is where the break's video ends, to reject a wrong audio measurement.
    #[allow(clippy::too_many_arguments)] // the cell's key, the measurement's inputs and the client
    pub(crate) async fn end(
        &self,
        channel: &Channel,
        tracked: &TrackedBreak,
        rendition: usize,
        last: u64,
        video_end: u64,
        http: &reqwest::Client,
        timeout: Duration,
    ) -> Option<BreakEnd> {
        let key = (channel.config.id.clone(), tracked.start_msn, rendition);
        let cell = self.ends.entry(key).or_default().clone();
        let measured = cell
            .get_or_try_init(|| async {
                let (_, bytes, _) =
                    fetch_replaced(channel, rendition, http, timeout, |msn| msn == last).await?;
                Ok::<_, FetchError>(BreakEnd {
                    audio: audio_span(&bytes).map(|(_, end)| end),
                    counters: last_counters(&bytes),
                })
            })
            .await;
        match measured {
            Ok(end) => Some(BreakEnd {
                audio: end.audio.filter(|&a| near(a, video_end)),
                counters: end.counters.clone(),
            }),
            Err(error) => {
                tracing::debug!(channel = %channel.config.id, break_id = %tracked.id, %error,
                    "Content audio after the break not measured; its last item's audio ends with its video.");
                None
            }
        }
    }

    /// Forgets anchors of breaks that started before `oldest_msn` on `channel`.
    pub(crate) fn prune(&self, channel: &str, oldest_msn: u64) {
        self.cells
            .retain(|(c, msn, _), _| c != channel || *msn >= oldest_msn);
        self.ends
            .retain(|(c, msn, _), _| c != channel || *msn >= oldest_msn);
    }
}

/// Whether two PTS are within [`MAX_AUDIO_LEAD`] of each other on the 33-bit clock.
fn near(a: u64, b: u64) -> bool {
    offset_between(a, b) < MAX_AUDIO_LEAD || offset_between(b, a) < MAX_AUDIO_LEAD
}

/// The first content segment of `rendition` in the origin window whose media sequence number passes `wanted`:
/// its URL, bytes and number.
async fn fetch_replaced(
    channel: &Channel,
    rendition: usize,
    http: &reqwest::Client,
    timeout: Duration,
    wanted: impl Fn(u64) -> bool,
) -> Result<(String, Bytes, u64), FetchError> {
    let snapshot = channel.snapshot();
    let unavailable = |reason: &str| FetchError {
        url: format!("{} rendition {rendition}", channel.config.id),
        reason: reason.to_owned(),
    };
    let content = snapshot
        .renditions
        .get(rendition)
        .ok_or_else(|| unavailable("no such rendition"))?;
    let (index, msn) = content
        .media
        .window
        .segments
        .iter()
        .enumerate()
        .find_map(|(i, s)| wanted(s.msn).then_some((i, s.msn)))
        .ok_or_else(|| unavailable("no such replaced content segment in the window"))?;
    let url = content
        .media
        .segments
        .get(index)
        .ok_or_else(|| unavailable("window and segments disagree"))?
        .uri
        .clone();
    let bytes = fetch_origin(http, &url, timeout).await?;
    Ok((url, bytes, msn))
}

async fn measure(
    channel: &Channel,
    tracked: &TrackedBreak,
    rendition: usize,
    http: &reqwest::Client,
    timeout: Duration,
) -> Result<BreakStart, FetchError> {
    let replaced = tracked.replaced_micros.len() as u64;
    let (url, bytes, msn) = fetch_replaced(channel, rendition, http, timeout, |msn| {
        msn.checked_sub(tracked.start_msn)
            .is_some_and(|k| k < replaced)
    })
    .await?;
    let into_break = msn - tracked.start_msn;
    let pts = first_video_pts(&bytes).ok_or_else(|| FetchError {
        url,
        reason: "no PTS in the segment".to_owned(),
    })?;
    let before: u64 = tracked
        .replaced_micros
        .iter()
        .take(usize::try_from(into_break).unwrap_or(usize::MAX))
        .sum();
    let video = offset_between(ticks(before), pts);
    // Only the break's own first segment says where the content's audio stops before it, and which
    // continuity counters come next.
    let first = into_break == 0;
    let audio = audio_span(&bytes)
        .map(|(start, _)| start)
        .filter(|&start| first && near(start, video));
    let counters = if first {
        first_counters(&bytes)
    } else {
        Vec::new()
    };
    Ok(BreakStart {
        video,
        audio,
        counters,
    })
}

/// `segment` with its timestamps moved so that a file whose first PTS is `reference` starts at
/// `anchor + offset_micros`. Without an anchor or a reference PTS the bytes are returned as they are.
pub(crate) fn retimed(
    segment: &Bytes,
    reference: Option<u64>,
    anchor: Option<u64>,
    offset_micros: u64,
) -> Bytes {
    let (Some(reference), Some(anchor)) = (reference, anchor) else {
        return segment.clone();
    };
    let target = (anchor + ticks(offset_micros)) % WRAP;
    let mut out = segment.to_vec();
    shift_timestamps(&mut out, offset_between(reference, target));
    Bytes::from(out)
}

/// The first video PTS of a cached segment, if it is MPEG-TS: items are aligned on their first video frame.
pub(crate) fn reference_pts(segment: &Bytes) -> Option<u64> {
    first_video_pts(segment)
}

#[cfg(test)]
mod tests {
    use super::*;
    use interlude_mpegts::first_pts;

    #[test]
    fn retimed_segment_starts_at_the_anchor_plus_offset() {
        let file = Bytes::from_static(include_bytes!("../../../../assets/ads/ad15/r0/000.ts"));
        let reference = reference_pts(&file);
        assert!(reference.is_some());
        let anchor = WRAP - 90_000; // one second before the 33-bit wrap
        let out = retimed(&file, reference, Some(anchor), 3_000_000);
        assert_eq!(first_pts(&out), Some(2 * 90_000));
        assert_eq!(out.len(), file.len());
    }

    #[test]
    fn without_an_anchor_bytes_pass_through() {
        let file = Bytes::from_static(b"not a transport stream");
        assert_eq!(retimed(&file, reference_pts(&file), Some(5), 0), file);
    }
}
