//! Writing a viewer's media playlist from a rendered window: the request-path hot loop.
//!
//! Content segments carry the text of their own tags pre-rendered once per origin refresh (keys, maps, byte
//! ranges, unknown tags), so a request only concatenates: no parsing, no per-segment allocation.

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
}

/// Writes the playlist. `ad_instance_of(b, a)` gives the ad instance id of ad `a` of the viewer's pod for
/// tracked break `b` (its segments are served through this server's ad route, which fires the beacons).
pub fn write_media_playlist<'d>(
    out: &mut String,
    origin: &OriginMedia,
    rendered: &RenderedWindow,
    urls: &ItemUrls<'_>,
    ad_instance_of: impl Fn(usize, usize) -> Option<&'d str>,
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
                write_pdt(out, seg.program_date_time);
                write_extinf(out, seg.duration_micros);
                match item.kind {
                    ItemKind::Ad { ad, segment } => {
                        let instance = ad_instance_of(break_index, ad).unwrap_or("");
                        let _ = writeln!(
                            out,
                            "{}/s/{}/ads/{}/{}/{}.ts",
                            urls.base_url, urls.session_id, instance, urls.rendition, segment
                        );
                    }
                    ItemKind::Slate { .. } => match urls.breaks.get(break_index) {
                        Some(tracked) if urls.proxy => {
                            let _ = writeln!(
                                out,
                                "{}/s/{}/slate/{}/{}/{}/{}.ts",
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
