//! Reading origin playlists into what stitching needs: the window as the stitch core sees it, each content
//! segment's own tags pre-rendered once per refresh, the keys and init segments in force, and the breaks the
//! markers describe (any dialect, via `interlude_hls::markers`).

use std::fmt::Write;
use std::sync::Arc;

use crate::pod::secs_to_micros;
use crate::tracker::OriginWindow;
use crate::{Error, ObservedBreak, OriginSegment};
use chrono::{DateTime, TimeDelta, Utc};
use interlude_hls::{
    AttributeList, MasterPlaylist, MediaSegment, parse_master_playlist, parse_media_playlist,
    parse_media_playlist_with_warnings,
};
use url::Url;

/// A variant of the channel's master playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// Absolute URL of its media playlist.
    pub uri: String,
    /// `BANDWIDTH`.
    pub bandwidth: u64,
    /// `RESOLUTION`.
    pub resolution: Option<(u32, u32)>,
}

/// A content segment, ready to be written into a viewer's playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct ContentSegment {
    /// Absolute URI.
    pub uri: String,
    /// Its own tags other than the ones the stitcher writes itself, one per line, each ending in `\n`.
    pub extra: String,
    /// The `EXT-X-KEY` line in force for it, if any.
    pub key: Option<Arc<str>>,
    /// The `EXT-X-MAP` line in force for it, if any.
    pub map: Option<Arc<str>>,
}

/// One refresh of a media playlist, read.
#[derive(Debug, Clone, PartialEq)]
pub struct OriginMedia {
    /// The window for the stitch core.
    pub window: OriginWindow,
    /// The segments, aligned with `window.segments`.
    pub segments: Vec<ContentSegment>,
    /// `EXT-X-TARGETDURATION`.
    pub target_duration: u64,
    /// `EXT-X-VERSION` (1 when absent).
    pub version: u64,
    /// Breaks the markers describe.
    pub observed: Vec<ObservedBreak>,
    /// What was read although it is not valid (a BOM, an undecodable cue read from the tag's other
    /// attributes, …), each naming its line: the caller logs them.
    pub warnings: Vec<String>,
}

impl OriginMedia {
    /// Whether the segments are fragmented MP4 (an `EXT-X-MAP` is in force, RFC 8216bis §4.4.4.5), rather than
    /// MPEG-TS: ads stitched in must then be fragmented MP4 too.
    pub fn is_fmp4(&self) -> bool {
        self.segments.iter().any(|s| s.map.is_some())
    }
}

fn base(url: &str) -> Result<Url, Error> {
    Url::parse(url).map_err(|_| Error::BadUrl(url.to_owned()))
}

/// Reads a master playlist fetched from `url`: its variants (absolute URLs) and the playlist itself with every
/// URI made absolute.
pub fn parse_master(text: &str, url: &str) -> Result<(Vec<Variant>, MasterPlaylist), Error> {
    let mut master = parse_master_playlist(text)?;
    master.resolve_uris(&base(url)?)?;
    let variants = master
        .variants
        .iter()
        .map(|v| Variant {
            uri: v.uri.clone(),
            bandwidth: v.bandwidth(),
            resolution: v.resolution(),
        })
        .collect();
    Ok((variants, master))
}

/// Marker tags the stitcher consumes; they are not passed on to viewers.
fn is_marker(name: &str) -> bool {
    matches!(
        name,
        "EXT-X-CUE-OUT"
            | "EXT-X-CUE-OUT-CONT"
            | "EXT-X-CUE-IN"
            | "EXT-X-CUE-SPAN"
            | "EXT-OATCLS-SCTE35"
            | "EXT-X-ASSET"
            | "EXT-X-SCTE35"
            | "EXT-SCTE35"
            | "EXT-X-SPLICEPOINT-SCTE35"
    )
}

fn is_scte_daterange(dr: &AttributeList) -> bool {
    dr.raw("SCTE35-OUT").is_some()
        || dr.raw("SCTE35-IN").is_some()
        || dr.raw("SCTE35-CMD").is_some()
}

fn extra_tags(s: &MediaSegment) -> String {
    let mut out = String::new();
    for dr in s.dateranges.iter().filter(|d| !is_scte_daterange(d)) {
        let _ = writeln!(out, "#EXT-X-DATERANGE:{dr}");
    }
    for tag in s.tags.iter().filter(|t| !is_marker(&t.name)) {
        let _ = match &tag.value {
            Some(v) => writeln!(out, "#{}:{v}", tag.name),
            None => writeln!(out, "#{}", tag.name),
        };
    }
    if let Some(bitrate) = s.bitrate {
        let _ = writeln!(out, "#EXT-X-BITRATE:{bitrate}");
    }
    if let Some(br) = &s.byte_range {
        let _ = match br.offset {
            Some(o) => writeln!(out, "#EXT-X-BYTERANGE:{}@{o}", br.length),
            None => writeln!(out, "#EXT-X-BYTERANGE:{}", br.length),
        };
    }
    if s.gap {
        out.push_str("#EXT-X-GAP\n");
    }
    out
}

/// Reads a media playlist fetched from `url`.
pub fn parse_media(text: &str, url: &str) -> Result<OriginMedia, Error> {
    let parsed = parse_media_playlist_with_warnings(text)?;
    let found = parsed.breaks();
    let mut warnings: Vec<String> = parsed.warnings.iter().map(ToString::to_string).collect();
    warnings.extend(found.warnings);
    for b in &found.breaks {
        warnings.extend(b.warnings.iter().cloned());
    }
    let mut playlist = parsed.playlist;
    playlist.resolve_uris(&base(url)?)?;
    let msn0 = playlist.media_sequence;
    let mut key: Option<Arc<str>> = None;
    let mut map: Option<Arc<str>> = None;
    let mut pdt: Option<DateTime<Utc>> = None;
    let mut window = Vec::with_capacity(playlist.segments.len());
    let mut segments = Vec::with_capacity(playlist.segments.len());
    for (i, s) in playlist.segments.iter().enumerate() {
        if let Some(k) = s.keys.last() {
            let method_none = k.get("METHOD") == Some("NONE");
            key = (!method_none).then(|| Arc::from(format!("#EXT-X-KEY:{k}")));
        }
        if let Some(m) = &s.map {
            map = Some(Arc::from(format!("#EXT-X-MAP:{m}")));
        }
        let duration_micros = secs_to_micros(s.duration);
        let this_pdt = s.program_date_time.map(|t| t.with_timezone(&Utc)).or(pdt);
        pdt = this_pdt.and_then(|t| {
            t.checked_add_signed(TimeDelta::microseconds(
                i64::try_from(duration_micros).unwrap_or(0),
            ))
        });
        window.push(OriginSegment {
            msn: msn0 + i as u64,
            duration_micros,
            discontinuity: s.discontinuity,
            program_date_time: this_pdt,
        });
        segments.push(ContentSegment {
            uri: s.uri.clone(),
            extra: extra_tags(s),
            key: key.clone(),
            map: map.clone(),
        });
    }
    let observed = found
        .breaks
        .into_iter()
        .filter(|b| b.first_segment < playlist.segments.len() || b.end_segment.is_some())
        .map(|b| {
            let elapsed_at_first_micros = secs_to_micros(b.elapsed_at_first);
            let start_pdt = window
                .get(b.first_segment)
                .and_then(|s| s.program_date_time)
                .and_then(|t| {
                    t.checked_sub_signed(TimeDelta::microseconds(
                        i64::try_from(elapsed_at_first_micros).ok()?,
                    ))
                });
            ObservedBreak {
                id: stable_break_id(&b, start_pdt),
                first_msn: msn0 + b.first_segment as u64,
                elapsed_at_first_micros,
                planned_micros: b.planned_duration.map(secs_to_micros),
                end_msn: b.end_segment.map(|e| msn0 + e as u64),
                signalled_through_msn: b.last_signalled_segment.map(|e| msn0 + e as u64),
                scte35: b.scte35,
                event_id: b.event_id,
            }
        })
        .collect();
    Ok(OriginMedia {
        window: OriginWindow {
            discontinuity_sequence: playlist.discontinuity_sequence,
            segments: window,
        },
        segments,
        target_duration: playlist.target_duration,
        version: playlist.version.unwrap_or(1),
        observed,
        warnings,
    })
}

/// One id per break wherever it is seen from: the tag's own ID when it has one, else the program date time of
/// its start to the second (`pdt-<Unix seconds>`), else the marker parser's derived id.
///
/// A derived id depends on which of the break's tags are still in the window: an `EXT-X-CUE-OUT` without a
/// cue followed by `EXT-X-CUE-OUT-CONT` tags carrying one (MediaPackage style) reads as `msn-<start>` while
/// the start is visible and as `scte35-<event id>` after; a node that starts, or restarts, mid-break would
/// otherwise name the break differently from the one that saw it begin, and find no decision for it. The
/// start time is the same in every window (PDT of the first visible segment minus the elapsed time, RFC
/// 8216bis §4.4.4.6); rounding to the second absorbs elapsed times written to the millisecond.
fn stable_break_id(b: &interlude_hls::markers::AdBreak, start: Option<DateTime<Utc>>) -> String {
    match start {
        Some(start) if !b.id_from_tag => {
            let secs = (start.timestamp_millis() + 500).div_euclid(1000);
            format!("pdt-{secs}")
        }
        _ => b.id.clone(),
    }
}

/// A VOD media playlist (a creative or slate rendition) read for stitching.
#[derive(Debug, Clone, PartialEq)]
pub struct VodMedia {
    /// Absolute segment URLs and durations in microseconds.
    pub segments: Vec<(String, u64)>,
    /// The `EXT-X-MAP` line of its init segment (URI absolute) when its segments are fragmented MP4 (RFC
    /// 8216bis §4.4.4.5); `None` for MPEG-TS.
    pub map: Option<String>,
}

/// Reads a VOD media playlist fetched from `url`: its segments and its one init segment, if any. A playlist
/// whose segments need different init segments is refused ([`Error::SeveralMaps`]).
pub fn parse_vod_media(text: &str, url: &str) -> Result<VodMedia, Error> {
    let mut playlist = parse_media_playlist(text)?;
    playlist.resolve_uris(&base(url)?)?;
    let mut map: Option<String> = None;
    for (i, s) in playlist.segments.iter().enumerate() {
        match (&s.map, &map) {
            (Some(m), None) if i == 0 => map = Some(format!("#EXT-X-MAP:{m}")),
            (Some(m), Some(current)) if *current == format!("#EXT-X-MAP:{m}") => {}
            (None, _) => {}
            _ => return Err(Error::SeveralMaps(url.to_owned())),
        }
    }
    Ok(VodMedia {
        segments: playlist
            .segments
            .into_iter()
            .map(|s| (s.uri, secs_to_micros(s.duration)))
            .collect(),
        map,
    })
}

/// A VOD media playlist (a creative or slate rendition) as absolute segment URLs and durations.
pub fn parse_vod_segments(text: &str, url: &str) -> Result<Vec<(String, u64)>, Error> {
    let mut playlist = parse_media_playlist(text)?;
    playlist.resolve_uris(&base(url)?)?;
    Ok(playlist
        .segments
        .into_iter()
        .map(|s| (s.uri, secs_to_micros(s.duration)))
        .collect())
}
