//! Writing a viewer's media playlist from a rendered window: the request-path hot loop.
//!
//! Content segments carry the text of their own tags pre-rendered once per origin refresh (keys, maps, byte
//! ranges, unknown tags), so a request only concatenates: no parsing, no per-segment allocation.
//!
//! Fragmented MP4 (CMAF) channels: an `EXT-X-MAP` applies to every following segment until the next one (RFC
//! 8216bis §4.4.4.5), so an ad or slate with its own init segment gets its `EXT-X-MAP` before its first
//! segment (after the `EXT-X-DISCONTINUITY` that starts the pod), and the content's is written again before the
//! first content segment after the break.

use std::fmt::Write;

use super::origin::OriginMedia;
use crate::window::{Element, RenderedWindow};
use crate::{ItemKind, TrackedBreak};
use chrono::{DateTime, SecondsFormat, Utc};

/// Where the items of a break point to, for one viewer and one rendition.
pub struct ItemUrls<'a> {
    /// Base URL of this server, without a trailing slash.
    pub base_url: &'a str,
    /// The session.
    pub session_id: &'a str,
    /// Index of the content rendition.
    pub rendition: usize,
    /// The slate segment URL for this rendition.
    pub slate_url: &'a str,
    /// Whether slate goes through this server (proxy mode), which needs each slate item's place in its break.
    pub proxy: bool,
    /// The tracked breaks the rendered window's `break_index` points into.
    pub breaks: &'a [TrackedBreak],
    /// The slate's `EXT-X-MAP` line when it is fragmented MP4.
    pub slate_map: Option<&'a str>,
}

/// What the playlist needs of one ad of a viewer's pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdRef<'a> {
    /// The ad instance id (its segments are served through this server's ad route, which fires beacons).
    pub instance_id: &'a str,
    /// Its `EXT-X-MAP` line in this rendition when it is fragmented MP4.
    pub map: Option<&'a str>,
}

/// Writes the playlist. `ad_of(b, a)` gives ad `a` of the viewer's pod for tracked break `b`.
pub fn write_media_playlist<'d>(
    out: &mut String,
    origin: &OriginMedia,
    rendered: &RenderedWindow,
    urls: &ItemUrls<'_>,
    ad_of: impl Fn(usize, usize) -> Option<AdRef<'d>>,
) {
    let max_item = rendered
        .segments
        .iter()
        .map(|s| s.duration_micros)
        .max()
        .unwrap_or(0);
    let target = origin
        .target_duration
        .max(((max_item + 500_000) / 1_000_000).max(1));
    let _ = write!(
        out,
        "#EXTM3U\n#EXT-X-VERSION:{}\n#EXT-X-TARGETDURATION:{}\n#EXT-X-MEDIA-SEQUENCE:{}\n#EXT-X-DISCONTINUITY-SEQUENCE:{}\n",
        origin.version.max(3),
        target,
        rendered.media_sequence,
        rendered.discontinuity_sequence
    );
    // Keys and init segments in force in the output, to switch them at ad boundaries and restore them after.
    let mut key_in_force: Option<&str> = None;
    let mut map_in_force: Option<&str> = None;
    for seg in &rendered.segments {
        if seg.discontinuity {
            out.push_str("#EXT-X-DISCONTINUITY\n");
        }
        match seg.element {
            Element::Content { index } => {
                let Some(content) = origin.segments.get(index) else {
                    continue;
                };
                if content.key.as_deref() != key_in_force {
                    key_in_force = content.key.as_deref();
                    out.push_str(key_in_force.unwrap_or("#EXT-X-KEY:METHOD=NONE"));
                    out.push('\n');
                }
                if content.map.as_deref() != map_in_force {
                    if let Some(map) = content.map.as_deref() {
                        out.push_str(map);
                        out.push('\n');
                    }
                    map_in_force = content.map.as_deref();
                }
                write_pdt(out, seg.program_date_time);
                out.push_str(&content.extra);
                write_extinf(out, seg.duration_micros);
                out.push_str(&content.uri);
                out.push('\n');
            }
            Element::Pod {
                break_index, item, ..
            } => {
                if key_in_force.is_some() {
                    out.push_str("#EXT-X-KEY:METHOD=NONE\n");
                    key_in_force = None;
                }
                let ad = match item.kind {
                    ItemKind::Ad { ad, .. } => ad_of(break_index, ad),
                    ItemKind::Slate { .. } => None,
                };
                let item_map = match item.kind {
                    ItemKind::Ad { .. } => ad.and_then(|a| a.map),
                    ItemKind::Slate { .. } => urls.slate_map,
                };
                if let Some(map) = item_map
                    && item_map != map_in_force
                {
                    out.push_str(map);
                    out.push('\n');
                    map_in_force = item_map;
                }
                write_pdt(out, seg.program_date_time);
                write_extinf(out, seg.duration_micros);
                match item.kind {
                    ItemKind::Ad { segment, .. } => {
                        let instance = ad.map_or("", |a| a.instance_id);
                        let extension = if item_map.is_some() { "m4s" } else { "ts" };
                        let _ = writeln!(
                            out,
                            "{}/s/{}/ads/{}/{}/{}.{extension}",
                            urls.base_url, urls.session_id, instance, urls.rendition, segment
                        );
                    }
                    ItemKind::Slate { .. } => match urls.breaks.get(break_index) {
                        Some(tracked) if urls.proxy => {
                            let extension = if urls.slate_map.is_some() {
                                "m4s"
                            } else {
                                "ts"
                            };
                            let _ = writeln!(
                                out,
                                "{}/s/{}/slate/{}/{}/{}/{}.{extension}",
                                urls.base_url,
                                urls.session_id,
                                urls.rendition,
                                tracked.start_msn,
                                item.start_micros,
                                seg.duration_micros
                            );
                        }
                        _ => {
                            out.push_str(urls.slate_url);
                            out.push('\n');
                        }
                    },
                }
            }
        }
    }
}

fn write_pdt(out: &mut String, pdt: Option<DateTime<Utc>>) {
    if let Some(pdt) = pdt {
        out.push_str("#EXT-X-PROGRAM-DATE-TIME:");
        out.push_str(&pdt.to_rfc3339_opts(SecondsFormat::Millis, true));
        out.push('\n');
    }
}

/// `#EXTINF:<seconds with 3 decimals>,` — exact for whole milliseconds, which is what packagers emit.
fn write_extinf(out: &mut String, micros: u64) {
    let millis = (micros + 500) / 1000;
    let _ = writeln!(out, "#EXTINF:{}.{:03},", millis / 1000, millis % 1000);
}
