//! The tolerant parser: what real packagers emit (CRLF, blank lines, a BOM, comment lines before `#EXTM3U`,
//! stray whitespace, EXTINF without a comma, integer or decimal durations, vendor tags) is read; what cannot be
//! understood is rejected with the line number, the tag and the reason.
//!
//! What is read although RFC 8216bis does not allow it is reported as a [`Warning`] by the `*_with_warnings`
//! functions, which also give the source line of every tag ([`Parsed`]); the plain functions drop both.

use chrono::{DateTime, FixedOffset};

use crate::attributes::AttributeList;
use crate::model::{
    ByteRange, MasterPlaylist, MediaPlaylist, MediaSegment, Playlist, Tag, VariantStream,
};
use crate::parsed::{Parsed, SegmentLines, SourceLines, Warning};
use crate::{Error, Result};

/// Parses a master or media playlist, deciding which from its tags.
pub fn parse_playlist(text: &str) -> Result<Playlist> {
    parse_playlist_with_warnings(text).map(|p| p.playlist)
}

/// Parses a media playlist.
pub fn parse_media_playlist(text: &str) -> Result<MediaPlaylist> {
    parse_media_playlist_with_warnings(text).map(|p| p.playlist)
}

/// Parses a master playlist.
pub fn parse_master_playlist(text: &str) -> Result<MasterPlaylist> {
    parse_master_playlist_with_warnings(text).map(|p| p.playlist)
}

/// Parses a master or media playlist, with the warnings met and the source lines of its tags.
pub fn parse_playlist_with_warnings(text: &str) -> Result<Parsed<Playlist>> {
    let (lines, mut warnings) = lines(text)?;
    // By tag name, as the parsers read it: a prefix test took a vendor tag such as `EXT-X-STREAM-INF-X` in a
    // media playlist for a master tag, and the master parser then rejected its EXTINF.
    let is_master = lines.iter().any(|(_, l)| {
        l.starts_with("#EXT")
            && matches!(
                split_tag(l).0,
                "EXT-X-STREAM-INF" | "EXT-X-I-FRAME-STREAM-INF" | "EXT-X-MEDIA"
            )
    });
    if is_master {
        let playlist = parse_master_lines(&lines)?;
        Ok(Parsed {
            playlist: Playlist::Master(playlist),
            warnings,
            lines: SourceLines::default(),
        })
    } else {
        let (playlist, source, more) = parse_media_lines(&lines)?;
        warnings.extend(more);
        Ok(Parsed {
            playlist: Playlist::Media(playlist),
            warnings,
            lines: source,
        })
    }
}

/// Parses a media playlist, with the warnings met and the source lines of its tags.
pub fn parse_media_playlist_with_warnings(text: &str) -> Result<Parsed<MediaPlaylist>> {
    let (lines, mut warnings) = lines(text)?;
    let (playlist, source, more) = parse_media_lines(&lines)?;
    warnings.extend(more);
    Ok(Parsed {
        playlist,
        warnings,
        lines: source,
    })
}

/// Parses a master playlist, with the warnings met.
pub fn parse_master_playlist_with_warnings(text: &str) -> Result<Parsed<MasterPlaylist>> {
    let (lines, warnings) = lines(text)?;
    Ok(Parsed {
        playlist: parse_master_lines(&lines)?,
        warnings,
        lines: SourceLines::default(),
    })
}

fn warning(line: usize, message: impl Into<String>) -> Warning {
    Warning {
        line,
        message: message.into(),
    }
}

/// Numbered (1-based) non-blank lines.
type Lines<'a> = Vec<(usize, &'a str)>;

/// Non-blank lines with their 1-based numbers, after the `#EXTM3U` header, and what was tolerated on the way:
/// a UTF-8 byte order mark, CRLF line ends, and comment lines before `#EXTM3U` (which RFC 8216bis §4.4.1.1
/// wants first; some packagers put a generator banner above it).
fn lines(text: &str) -> Result<(Lines<'_>, Vec<Warning>)> {
    let mut warnings = Vec::new();
    let text = match text.strip_prefix('\u{feff}') {
        Some(rest) => {
            warnings.push(warning(1, "UTF-8 byte order mark before #EXTM3U, ignored"));
            rest
        }
        None => text,
    };
    // CRLF is noticed per line: a `find("\r\n")` over the whole text made parsing a third slower.
    let mut crlf = None;
    let lines: Vec<(usize, &str)> = text
        .split('\n')
        .enumerate()
        .filter_map(|(i, raw)| {
            if crlf.is_none() && raw.ends_with('\r') {
                crlf = Some(i + 1);
            }
            let l = raw.trim();
            (!l.is_empty()).then_some((i + 1, l))
        })
        .collect();
    if let Some(line) = crlf {
        warnings.push(warning(line, "CRLF line ends, read as LF"));
    }
    // Comment lines (`#` not followed by `EXT`) before the header are skipped; a tag or URI there is not.
    let header = lines
        .iter()
        .position(|(_, l)| !l.starts_with('#') || l.starts_with("#EXT"));
    match header.map(|i| (i, lines[i])) {
        Some((i, (_, "#EXTM3U"))) => {
            for (line, comment) in &lines[..i] {
                let shown: String = comment.chars().take(40).collect();
                warnings.push(warning(
                    *line,
                    format!("comment {shown:?} before #EXTM3U (RFC 8216bis §4.4.1.1), ignored"),
                ));
            }
            Ok((lines[i + 1..].to_vec(), warnings))
        }
        // Report the first line that is not a comment: what stands where the header should be.
        other => match other.map(|(_, l)| l).or(lines.first().copied()) {
            Some((line, found)) => Err(Error::MissingHeader {
                line,
                found: found.chars().take(40).collect(),
            }),
            None => Err(Error::MissingHeader {
                line: 1,
                found: String::new(),
            }),
        },
    }
}

fn split_tag(line: &str) -> (&str, Option<&str>) {
    let body = &line[1..];
    match body.split_once(':') {
        Some((name, value)) => (name.trim(), Some(value.trim())),
        None => (body.trim(), None),
    }
}

fn invalid(line: usize, tag: &str, reason: impl Into<String>) -> Error {
    Error::InvalidTag {
        line,
        tag: tag.to_owned(),
        reason: reason.into(),
    }
}

fn attrs(line: usize, tag: &str, value: Option<&str>) -> Result<AttributeList> {
    AttributeList::parse(value.unwrap_or("")).map_err(|reason| invalid(line, tag, reason))
}

fn number<T: std::str::FromStr>(line: usize, tag: &str, value: Option<&str>) -> Result<T> {
    let v = value
        .ok_or_else(|| invalid(line, tag, "missing value"))?
        .trim();
    v.parse()
        .map_err(|_| invalid(line, tag, format!("{v:?} is not a valid number")))
}

/// Parses an `EXT-X-PROGRAM-DATE-TIME` value: ISO 8601 with a zone, as RFC 3339 or with a `+hhmm` offset.
pub fn parse_date_time(value: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(value)
        .or_else(|_| DateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()
}

/// Tags that belong to the playlist, not to the next segment.
const HEADER_TAGS: &[&str] = &[
    "EXT-X-START",
    "EXT-X-SERVER-CONTROL",
    "EXT-X-PART-INF",
    "EXT-X-DEFINE",
    "EXT-X-ALLOW-CACHE",
    "EXT-X-SKIP",
];

fn parse_media_lines(
    lines: &[(usize, &str)],
) -> Result<(MediaPlaylist, SourceLines, Vec<Warning>)> {
    let mut playlist = MediaPlaylist::default();
    let mut pending = MediaSegment::new("", 0.0);
    let mut pending_lines = SegmentLines::default();
    let mut source = SourceLines::default();
    let mut warnings = Vec::new();
    let mut extinf_line: Option<usize> = None;
    for &(n, line) in lines {
        if !line.starts_with('#') {
            if extinf_line.is_none() {
                return Err(Error::UnexpectedUri {
                    line: n,
                    uri: line.chars().take(80).collect(),
                });
            }
            pending.uri = line.to_owned();
            playlist
                .segments
                .push(std::mem::replace(&mut pending, MediaSegment::new("", 0.0)));
            source.segments.push(std::mem::take(&mut pending_lines));
            extinf_line = None;
            continue;
        }
        if !line.starts_with("#EXT") {
            continue; // a comment
        }
        let (tag, value) = split_tag(line);
        match tag {
            "EXTINF" => {
                let v = value.ok_or_else(|| invalid(n, tag, "missing duration"))?;
                let (d, title) = match v.split_once(',') {
                    Some((d, t)) => (
                        d.trim(),
                        (!t.trim().is_empty()).then(|| t.trim().to_owned()),
                    ),
                    None => (v.trim(), None),
                };
                let duration: f64 = d.parse().map_err(|_| {
                    invalid(n, tag, format!("duration {d:?} is not a decimal number"))
                })?;
                if !duration.is_finite() || duration < 0.0 {
                    return Err(invalid(
                        n,
                        tag,
                        format!("duration {d:?} must be a non-negative number"),
                    ));
                }
                pending.duration = duration;
                pending.title = title;
                extinf_line = Some(n);
            }
            "EXT-X-TARGETDURATION" => {
                // An integer is read exactly (through f64, values past 2^53 changed on a round trip).
                // Some packagers write a decimal; RFC 8216bis wants an integer: round up to stay valid.
                playlist.target_duration = match number::<u64>(n, tag, value) {
                    Ok(t) => t,
                    Err(_) => {
                        let t: f64 = number(n, tag, value)?;
                        if !t.is_finite() || t < 0.0 {
                            return Err(invalid(n, tag, "must be a non-negative number"));
                        }
                        warnings.push(warning(
                            n,
                            format!("decimal EXT-X-TARGETDURATION {t} rounded up to an integer"),
                        ));
                        t.ceil() as u64
                    }
                };
            }
            "EXT-X-MEDIA-SEQUENCE" => playlist.media_sequence = number(n, tag, value)?,
            "EXT-X-DISCONTINUITY-SEQUENCE" => {
                playlist.discontinuity_sequence = number(n, tag, value)?
            }
            "EXT-X-VERSION" => playlist.version = Some(number(n, tag, value)?),
            "EXT-X-PLAYLIST-TYPE" => playlist.playlist_type = value.map(str::to_owned),
            "EXT-X-ENDLIST" => playlist.end_list = true,
            "EXT-X-I-FRAMES-ONLY" => playlist.i_frames_only = true,
            "EXT-X-INDEPENDENT-SEGMENTS" => playlist.independent_segments = true,
            "EXT-X-DISCONTINUITY" => pending.discontinuity = true,
            "EXT-X-GAP" => pending.gap = true,
            "EXT-X-KEY" => pending.keys.push(attrs(n, tag, value)?),
            "EXT-X-MAP" => pending.map = Some(attrs(n, tag, value)?),
            "EXT-X-DATERANGE" => {
                pending.dateranges.push(attrs(n, tag, value)?);
                pending_lines.dateranges.push(n);
            }
            "EXT-X-BITRATE" => pending.bitrate = Some(number(n, tag, value)?),
            "EXT-X-PROGRAM-DATE-TIME" => {
                let v = value.ok_or_else(|| invalid(n, tag, "missing date-time"))?;
                pending.program_date_time = Some(parse_date_time(v).ok_or_else(|| {
                    invalid(n, tag, format!("{v:?} is not an ISO 8601 date-time"))
                })?);
            }
            "EXT-X-BYTERANGE" => {
                let v = value.ok_or_else(|| invalid(n, tag, "missing value"))?;
                pending.byte_range = Some(
                    parse_byte_range(v)
                        .ok_or_else(|| invalid(n, tag, format!("{v:?} is not n[@o]")))?,
                );
            }
            "EXT-X-STREAM-INF" | "EXT-X-MEDIA" | "EXT-X-I-FRAME-STREAM-INF" => {
                return Err(Error::MixedPlaylist {
                    line: n,
                    tag: tag.to_owned(),
                    kind: "media",
                });
            }
            _ if HEADER_TAGS.contains(&tag) && playlist.segments.is_empty() => {
                playlist
                    .header_tags
                    .push(Tag::new(tag, value.map(str::to_owned)));
            }
            _ => {
                pending.tags.push(Tag::new(tag, value.map(str::to_owned)));
                pending_lines.tags.push(n);
            }
        }
    }
    if let Some(line) = extinf_line {
        return Err(Error::MissingUri { line });
    }
    playlist.trailing_tags = pending.tags;
    playlist.trailing_dateranges = pending.dateranges;
    source.trailing = pending_lines;
    Ok((playlist, source, warnings))
}

fn parse_byte_range(v: &str) -> Option<ByteRange> {
    let (length, offset) = match v.split_once('@') {
        Some((l, o)) => (l.trim().parse().ok()?, Some(o.trim().parse().ok()?)),
        None => (v.trim().parse().ok()?, None),
    };
    Some(ByteRange { length, offset })
}

fn parse_master_lines(lines: &[(usize, &str)]) -> Result<MasterPlaylist> {
    let mut playlist = MasterPlaylist::default();
    let mut pending: Option<(usize, AttributeList)> = None;
    let mut tags = Vec::new();
    for &(n, line) in lines {
        if !line.starts_with('#') {
            let Some((_, attributes)) = pending.take() else {
                return Err(Error::UnexpectedUri {
                    line: n,
                    uri: line.chars().take(80).collect(),
                });
            };
            playlist.variants.push(VariantStream {
                uri: line.to_owned(),
                attributes,
                tags: std::mem::take(&mut tags),
            });
            continue;
        }
        if !line.starts_with("#EXT") {
            continue;
        }
        let (tag, value) = split_tag(line);
        match tag {
            "EXT-X-STREAM-INF" => pending = Some((n, attrs(n, tag, value)?)),
            "EXT-X-MEDIA" => playlist.media.push(attrs(n, tag, value)?),
            "EXT-X-I-FRAME-STREAM-INF" => playlist.i_frame_variants.push(attrs(n, tag, value)?),
            "EXT-X-SESSION-DATA" => playlist.session_data.push(attrs(n, tag, value)?),
            "EXT-X-SESSION-KEY" => playlist.session_keys.push(attrs(n, tag, value)?),
            "EXT-X-VERSION" => playlist.version = Some(number(n, tag, value)?),
            "EXT-X-INDEPENDENT-SEGMENTS" => playlist.independent_segments = true,
            "EXTINF" => {
                return Err(Error::MixedPlaylist {
                    line: n,
                    tag: tag.to_owned(),
                    kind: "master",
                });
            }
            _ if pending.is_some() => tags.push(Tag::new(tag, value.map(str::to_owned))),
            _ => playlist.tags.push(Tag::new(tag, value.map(str::to_owned))),
        }
    }
    if let Some((line, _)) = pending {
        return Err(invalid(line, "EXT-X-STREAM-INF", "not followed by a URI"));
    }
    playlist.tags.extend(tags);
    Ok(playlist)
}
