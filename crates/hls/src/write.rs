//! The writer: canonical text that parses back to an equal model. Writes into any `fmt::Write` (a reused
//! `String` on the request path) without allocating per segment.

use std::fmt::{self, Write};

use chrono::{DateTime, FixedOffset, SecondsFormat};

use crate::model::{MasterPlaylist, MediaPlaylist, MediaSegment, Playlist, Tag};

/// Writes a duration so it reads back as the same `f64`: three decimals when that is exact (what packagers
/// write), the shortest exact form otherwise.
pub fn write_duration(out: &mut impl Write, seconds: f64) -> fmt::Result {
    let millis = (seconds * 1000.0).round();
    // Exact comparison on purpose: `millis / 1000.0` is the correctly rounded value of the decimal written
    // below, so it is what the parser reads back. Any tolerance lets a duration an ulp away from a whole
    // millisecond be written as that millisecond (the property tests found 1e-103 written as 0.000).
    #[allow(clippy::float_cmp)]
    if millis / 1000.0 == seconds && (0.0..1e15).contains(&millis) {
        let millis = millis as u64;
        write!(out, "{}.{:03}", millis / 1000, millis % 1000)
    } else {
        write!(out, "{seconds}")
    }
}

/// Writes an `EXT-X-PROGRAM-DATE-TIME` value with as many fractional digits as it has (so it reads back equal).
pub fn write_date_time(out: &mut impl Write, t: &DateTime<FixedOffset>) -> fmt::Result {
    out.write_str(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

fn write_tag(out: &mut impl Write, tag: &Tag) -> fmt::Result {
    match &tag.value {
        Some(v) => writeln!(out, "#{}:{}", tag.name, v),
        None => writeln!(out, "#{}", tag.name),
    }
}

/// Writes one segment with its tags.
pub fn write_segment(out: &mut impl Write, s: &MediaSegment) -> fmt::Result {
    for key in &s.keys {
        writeln!(out, "#EXT-X-KEY:{key}")?;
    }
    if let Some(map) = &s.map {
        writeln!(out, "#EXT-X-MAP:{map}")?;
    }
    if s.discontinuity {
        out.write_str("#EXT-X-DISCONTINUITY\n")?;
    }
    if let Some(pdt) = &s.program_date_time {
        out.write_str("#EXT-X-PROGRAM-DATE-TIME:")?;
        write_date_time(out, pdt)?;
        out.write_char('\n')?;
    }
    for dr in &s.dateranges {
        writeln!(out, "#EXT-X-DATERANGE:{dr}")?;
    }
    for tag in &s.tags {
        write_tag(out, tag)?;
    }
    if let Some(bitrate) = s.bitrate {
        writeln!(out, "#EXT-X-BITRATE:{bitrate}")?;
    }
    if let Some(br) = &s.byte_range {
        match br.offset {
            Some(o) => writeln!(out, "#EXT-X-BYTERANGE:{}@{}", br.length, o)?,
            None => writeln!(out, "#EXT-X-BYTERANGE:{}", br.length)?,
        }
    }
    if s.gap {
        out.write_str("#EXT-X-GAP\n")?;
    }
    out.write_str("#EXTINF:")?;
    write_duration(out, s.duration)?;
    out.write_char(',')?;
    if let Some(title) = &s.title {
        out.write_str(title)?;
    }
    out.write_char('\n')?;
    out.write_str(&s.uri)?;
    out.write_char('\n')
}

/// Writes a media playlist.
pub fn write_media(out: &mut impl Write, p: &MediaPlaylist) -> fmt::Result {
    out.write_str("#EXTM3U\n")?;
    if let Some(v) = p.version {
        writeln!(out, "#EXT-X-VERSION:{v}")?;
    }
    writeln!(out, "#EXT-X-TARGETDURATION:{}", p.target_duration)?;
    writeln!(out, "#EXT-X-MEDIA-SEQUENCE:{}", p.media_sequence)?;
    if p.discontinuity_sequence != 0 {
        writeln!(
            out,
            "#EXT-X-DISCONTINUITY-SEQUENCE:{}",
            p.discontinuity_sequence
        )?;
    }
    if let Some(t) = &p.playlist_type {
        writeln!(out, "#EXT-X-PLAYLIST-TYPE:{t}")?;
    }
    if p.i_frames_only {
        out.write_str("#EXT-X-I-FRAMES-ONLY\n")?;
    }
    if p.independent_segments {
        out.write_str("#EXT-X-INDEPENDENT-SEGMENTS\n")?;
    }
    for tag in &p.header_tags {
        write_tag(out, tag)?;
    }
    for s in &p.segments {
        write_segment(out, s)?;
    }
    for dr in &p.trailing_dateranges {
        writeln!(out, "#EXT-X-DATERANGE:{dr}")?;
    }
    for tag in &p.trailing_tags {
        write_tag(out, tag)?;
    }
    if p.end_list {
        out.write_str("#EXT-X-ENDLIST\n")?;
    }
    Ok(())
}

/// Writes a master playlist.
pub fn write_master(out: &mut impl Write, p: &MasterPlaylist) -> fmt::Result {
    out.write_str("#EXTM3U\n")?;
    if let Some(v) = p.version {
        writeln!(out, "#EXT-X-VERSION:{v}")?;
    }
    if p.independent_segments {
        out.write_str("#EXT-X-INDEPENDENT-SEGMENTS\n")?;
    }
    for tag in &p.tags {
        write_tag(out, tag)?;
    }
    for a in &p.session_data {
        writeln!(out, "#EXT-X-SESSION-DATA:{a}")?;
    }
    for a in &p.session_keys {
        writeln!(out, "#EXT-X-SESSION-KEY:{a}")?;
    }
    for a in &p.media {
        writeln!(out, "#EXT-X-MEDIA:{a}")?;
    }
    for v in &p.variants {
        writeln!(out, "#EXT-X-STREAM-INF:{}", v.attributes)?;
        for tag in &v.tags {
            write_tag(out, tag)?;
        }
        writeln!(out, "{}", v.uri)?;
    }
    for a in &p.i_frame_variants {
        writeln!(out, "#EXT-X-I-FRAME-STREAM-INF:{a}")?;
    }
    Ok(())
}

impl fmt::Display for MediaPlaylist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_media(f, self)
    }
}

impl fmt::Display for MasterPlaylist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_master(f, self)
    }
}

impl fmt::Display for Playlist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Playlist::Master(m) => write_master(f, m),
            Playlist::Media(m) => write_media(f, m),
        }
    }
}
