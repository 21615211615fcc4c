//! Ad markers in every dialect found in the wild, normalised into one break model.
//!
//! Dialects read (they appear mixed in one stream; DOMAIN.md), each in its own module:
//! - the tags on a segment (module `tags`): `EXT-X-CUE-OUT` / `-CONT` / `-SPAN` / `-IN` in their Elemental,
//!   SCTE-35-enhanced and Adobe SSAI forms, Adobe Primetime's `EXT-X-CUE` / `EXT-X-CUE-CONT`,
//!   `EXT-OATCLS-SCTE35`, `EXT-X-SCTE35` / `EXT-SCTE35`, `EXT-X-SPLICEPOINT-SCTE35`;
//! - `EXT-X-DATERANGE` with `SCTE35-OUT` / `SCTE35-IN` / `SCTE35-CMD` (module `daterange`), mapped to segments by
//!   program date time.
//!
//! Where the cue is what the tag says (OATCLS, SPLICEPOINT, EXT-X-SCTE35 without CUE-OUT/CUE-IN flags, DATERANGE
//! SCTE35-OUT/-CMD, EXT-X-CUE `TYPE=scte35`), the decoded cue decides the direction, and its duration wins over
//! the tag's. Where the tag states the direction itself (CUE-OUT/-CONT/-IN, EXT-X-SCTE35 with flags, EXT-X-CUE
//! `SpliceOut`/`SpliceIn`), its stated duration is kept as written and the cue adds the event id (and a duration
//! when the tag states none). When two dialects mark the same start, the one carrying a cue sets the break's
//! duration and event id. A cue that does not decode
//! still yields the break the tag's other attributes describe (`DURATION`, `PLANNED-DURATION`, the CUE-OUT
//! duration, ...), with a warning naming the line (with [`extract`] given the source lines) or the segment; a
//! cue that is neither a break start nor end (e.g. a program boundary) is ignored.

mod daterange;
mod tags;

use interlude_scte35::SpliceInfoSection;
use serde::Serialize;

use crate::model::MediaPlaylist;
use crate::parsed::{Parsed, SourceLines};

/// Which marker dialect a cue came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Dialect {
    /// `EXT-X-CUE-OUT` / `-CONT` / `-SPAN` / `-IN`.
    CueOut,
    /// `EXT-X-DATERANGE` with SCTE-35 attributes.
    DateRange,
    /// `EXT-OATCLS-SCTE35`.
    Oatcls,
    /// `EXT-X-SCTE35` or `EXT-SCTE35`.
    Scte35Tag,
    /// `EXT-X-SPLICEPOINT-SCTE35`.
    SplicePoint,
    /// `EXT-X-CUE` / `EXT-X-CUE-CONT` (Adobe Primetime, MediaLive "Adobe", Azure Media Services).
    Cue,
}

/// What a cue says about the break.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum Signal {
    /// The break starts at this segment.
    Out {
        /// Planned duration in seconds.
        duration: Option<f64>,
    },
    /// This segment is inside a break.
    Cont {
        /// Seconds of the break already elapsed at this segment.
        elapsed: Option<f64>,
        /// Planned duration in seconds.
        duration: Option<f64>,
    },
    /// Content resumes at this segment.
    In,
}

/// One ad marker, on the segment it applies to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cue {
    /// Index of the segment it applies to (`segments.len()` for tags after the last segment).
    pub segment: usize,
    /// What it says.
    pub signal: Signal,
    /// Where it came from.
    pub dialect: Dialect,
    /// The break id the tag gives (`ID=`), if any.
    pub id: Option<String>,
    /// The SCTE-35 cue as found.
    pub scte35: Option<String>,
    /// Event id from the decoded cue.
    pub event_id: Option<u32>,
    /// Why a carried cue was not used, if it was not.
    pub warning: Option<String>,
    /// Source line of the tag, when the playlist was read with [`crate::parse_media_playlist_with_warnings`].
    pub line: Option<usize>,
}

/// A break normalised from any dialect.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AdBreak {
    /// Break id: the tag's ID, else `scte35-<event id>`, else `msn-<media sequence number of the start>` (for a
    /// break whose start has left the playlist, estimated from the elapsed time and the first segment's length).
    pub id: String,
    /// Whether `id` is the tag's own ID (stable wherever the break is seen); a derived id depends on which
    /// tags of the break a playlist still holds, so a reader that needs one id per break across refreshes
    /// and restarts should prefer the start's program date time.
    pub id_from_tag: bool,
    /// Index of the segment the break starts at, when its start is in the playlist.
    pub start_segment: Option<usize>,
    /// Index of the first segment of the break in the playlist.
    pub first_segment: usize,
    /// Seconds of the break elapsed at `first_segment` (0 when the start is in the playlist).
    pub elapsed_at_first: f64,
    /// Planned duration in seconds.
    pub planned_duration: Option<f64>,
    /// Index of the first content segment after the break, when signalled.
    pub end_segment: Option<usize>,
    /// Last segment explicitly marked as inside the break (`CUE-OUT-CONT`, `CUE-SPAN`).
    pub last_signalled_segment: Option<usize>,
    /// The SCTE-35 cue of the break start, as found.
    pub scte35: Option<String>,
    /// SCTE-35 event id.
    pub event_id: Option<u32>,
    /// Dialect of the cue that opened the break.
    pub dialect: Dialect,
    /// Problems met while reading it.
    pub warnings: Vec<String>,
}

/// The breaks of a playlist and the warnings that belong to no break.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Extracted {
    /// The breaks, in playlist order.
    pub breaks: Vec<AdBreak>,
    /// Problems met outside any break (e.g. an undecodable cue on a segment where no break starts).
    pub warnings: Vec<String>,
}

/// How a decoded cue classifies.
enum Decoded {
    Start {
        duration: Option<f64>,
        event_id: Option<u32>,
    },
    End {
        event_id: Option<u32>,
    },
    Neither,
    Invalid(String),
}

fn decode(cue: &str) -> Decoded {
    match SpliceInfoSection::parse_any(cue) {
        Ok(s) if s.is_ad_break_start() => Decoded::Start {
            duration: s.break_duration().map(|d| d.as_secs_f64()),
            event_id: s.event_id(),
        },
        Ok(s) if s.is_ad_break_end() => Decoded::End {
            event_id: s.event_id(),
        },
        Ok(_) => Decoded::Neither,
        Err(e) => Decoded::Invalid(e.to_string()),
    }
}

/// What one tag says.
enum Read {
    Cue(Cue),
    /// Nothing usable, and why (with where).
    Warning(String),
    Nothing,
}

/// "line 12" when the source line is known, else the segment's index.
fn place(line: Option<usize>, segment: usize) -> String {
    match line {
        Some(l) => format!("line {l}"),
        None => format!("segment {segment}"),
    }
}

fn undecodable(line: Option<usize>, segment: usize, tag: &str, reason: &str, what: &str) -> String {
    format!(
        "{}: {tag}: undecodable SCTE-35 ({reason}); {what}",
        place(line, segment)
    )
}

/// A tag whose only content is an SCTE-35 section; `fallback` is what to read when it does not decode.
fn from_section(
    segment: usize,
    line: Option<usize>,
    tag: &str,
    dialect: Dialect,
    id: Option<String>,
    scte35: &str,
    fallback: Option<Signal>,
) -> Read {
    let (signal, event_id, warning) = match decode(scte35) {
        Decoded::Start { duration, event_id } => (Signal::Out { duration }, event_id, None),
        Decoded::End { event_id } => (Signal::In, event_id, None),
        Decoded::Neither => return Read::Nothing,
        Decoded::Invalid(reason) => match fallback {
            Some(signal) => (
                signal,
                None,
                Some(undecodable(
                    line,
                    segment,
                    tag,
                    &reason,
                    "used the tag's other attributes",
                )),
            ),
            None => {
                return Read::Warning(undecodable(
                    line,
                    segment,
                    tag,
                    &reason,
                    "no other attribute says whether a break starts or ends",
                ));
            }
        },
    };
    Read::Cue(Cue {
        segment,
        signal,
        dialect,
        id,
        scte35: Some(scte35.to_owned()),
        event_id,
        warning,
        line,
    })
}

/// ISO 8601 duration as used by `TIMEFROMSIGNAL` (`PT6S`, `PT1M30.5S`).
fn iso_duration(text: &str) -> Option<f64> {
    let rest = text.trim().strip_prefix("PT")?;
    let (mut total, mut number) = (0.0, String::new());
    for c in rest.chars() {
        match c {
            '0'..='9' | '.' => number.push(c),
            'H' | 'M' | 'S' => {
                let v: f64 = number.parse().ok()?;
                total += v * match c {
                    'H' => 3600.0,
                    'M' => 60.0,
                    _ => 1.0,
                };
                number.clear();
            }
            _ => return None,
        }
    }
    number.is_empty().then_some(total)
}

/// Every marker of the playlist in segment order, and the warnings of tags that gave no cue (with the segment
/// they sit on).
fn read_all(p: &MediaPlaylist, lines: Option<&SourceLines>) -> (Vec<Cue>, Vec<(usize, String)>) {
    let times = daterange::segment_times(p);
    let (mut cues, mut notes) = (Vec::new(), Vec::new());
    let mut take = |segment: usize, read: Read| match read {
        Read::Cue(c) => cues.push(c),
        Read::Warning(w) => notes.push((segment, w)),
        Read::Nothing => {}
    };
    let all = p
        .segments
        .iter()
        .map(|s| (&s.dateranges, &s.tags))
        .chain(std::iter::once((&p.trailing_dateranges, &p.trailing_tags)));
    for (i, (dateranges, tag_list)) in all.enumerate() {
        for (k, dr) in dateranges.iter().enumerate() {
            let line = lines.and_then(|l| l.daterange(i, k));
            for read in daterange::read_daterange(p, &times, i, line, dr) {
                take(i, read);
            }
        }
        for (k, tag) in tag_list.iter().enumerate() {
            let line = lines.and_then(|l| l.tag(i, k));
            take(i, tags::read_tag(i, line, tag));
        }
    }
    // DATERANGE cues map by time, so they may point before the tag that carried them.
    cues.sort_by_key(|c| c.segment);
    for cue in &mut cues {
        cue.signal = cue.signal.sanitised();
    }
    (cues, notes)
}

/// Every ad marker of the playlist, in segment order.
pub fn read_cues(p: &MediaPlaylist) -> Vec<Cue> {
    read_all(p, None).0
}

/// A count of seconds only if it is one: a negative, infinite or NaN duration from a tag is as good as absent.
fn seconds(v: Option<f64>) -> Option<f64> {
    v.filter(|v| v.is_finite() && *v >= 0.0)
}

impl Signal {
    fn sanitised(self) -> Self {
        match self {
            Signal::Out { duration } => Signal::Out {
                duration: seconds(duration),
            },
            Signal::Cont { elapsed, duration } => Signal::Cont {
                elapsed: seconds(elapsed),
                duration: seconds(duration),
            },
            other => other,
        }
    }
}

/// The playlist's breaks, normalised.
pub fn extract_breaks(p: &MediaPlaylist) -> Vec<AdBreak> {
    extract(p, None).breaks
}

impl Parsed<MediaPlaylist> {
    /// The playlist's breaks, with warnings that name source lines.
    pub fn breaks(&self) -> Extracted {
        extract(&self.playlist, Some(&self.lines))
    }
}

/// The playlist's breaks, normalised, and the warnings that belong to no break. With `lines` (from
/// [`crate::parse_media_playlist_with_warnings`]) warnings name the source line of the tag.
pub fn extract(p: &MediaPlaylist, lines: Option<&SourceLines>) -> Extracted {
    let (cues, notes) = read_all(p, lines);
    let mut breaks = build_breaks(p, cues);
    let mut warnings = Vec::new();
    for (segment, note) in notes {
        // A warning about a segment the break covers (its start through its end) is the break's.
        let owner = breaks
            .iter_mut()
            .find(|b| b.first_segment <= segment && b.end_segment.is_none_or(|e| segment <= e));
        match owner {
            Some(b) => b.warnings.push(note),
            None => warnings.push(note),
        }
    }
    Extracted { breaks, warnings }
}

fn build_breaks(p: &MediaPlaylist, cues: Vec<Cue>) -> Vec<AdBreak> {
    let mut breaks = Vec::new();
    let mut open: Option<AdBreak> = None;
    let derived_id_back = |segment: usize, back: usize| {
        let msn = (p.media_sequence + segment as u64).saturating_sub(back as u64);
        format!("msn-{msn}")
    };
    let derived_id = |segment: usize| derived_id_back(segment, 0);
    for cue in cues {
        let warnings: Vec<String> = cue.warning.iter().cloned().collect();
        match cue.signal {
            Signal::Out { duration } => {
                // The same cue repeated mid-break (OATCLS does this) is not a new break.
                let repeat = open.as_ref().is_some_and(|b| {
                    b.first_segment != cue.segment
                        && ((cue.event_id.is_some() && b.event_id == cue.event_id)
                            || (cue.id.is_some() && cue.id.as_ref() == Some(&b.id)))
                });
                if repeat {
                    if let Some(b) = open.as_mut() {
                        b.warnings.extend(warnings);
                    }
                    continue;
                }
                if let Some(b) = open
                    .as_mut()
                    .filter(|b| b.first_segment == cue.segment && b.start_segment.is_some())
                {
                    // Two dialects marking the same start (e.g. OATCLS + CUE-OUT): merge, the cue's values first.
                    if cue.scte35.is_some() && b.scte35.is_none() {
                        b.scte35 = cue.scte35;
                        b.event_id = cue.event_id.or(b.event_id);
                        b.planned_duration = duration.or(b.planned_duration);
                    } else {
                        b.planned_duration = b.planned_duration.or(duration);
                        b.event_id = b.event_id.or(cue.event_id);
                    }
                    b.warnings.extend(warnings);
                    continue;
                }
                if let Some(mut b) = open.take() {
                    if b.first_segment == cue.segment {
                        // A CONT-opened break on the same segment as an OUT: the OUT tells us it starts here.
                        b.start_segment = Some(cue.segment);
                        b.elapsed_at_first = 0.0;
                        b.planned_duration = duration.or(b.planned_duration);
                        open = Some(b);
                        continue;
                    }
                    b.end_segment = Some(cue.segment);
                    b.warnings
                        .push("closed by the next break's start, without a CUE-IN".to_owned());
                    breaks.push(b);
                }
                let id = cue
                    .id
                    .clone()
                    .or_else(|| cue.event_id.map(|e| format!("scte35-{e}")))
                    .unwrap_or_else(|| derived_id(cue.segment));
                open = Some(AdBreak {
                    id,
                    id_from_tag: cue.id.is_some(),
                    start_segment: Some(cue.segment),
                    first_segment: cue.segment,
                    elapsed_at_first: 0.0,
                    planned_duration: duration,
                    end_segment: None,
                    last_signalled_segment: None,
                    scte35: cue.scte35,
                    event_id: cue.event_id,
                    dialect: cue.dialect,
                    warnings,
                });
            }
            Signal::Cont { elapsed, duration } => match open.as_mut() {
                Some(b) => {
                    b.last_signalled_segment = Some(cue.segment);
                    b.planned_duration = b.planned_duration.or(duration);
                    b.scte35 = b.scte35.take().or(cue.scte35);
                    b.warnings.extend(warnings);
                }
                None => {
                    let scte_event = cue.scte35.as_deref().and_then(|s| match decode(s) {
                        Decoded::Start { event_id, .. } => event_id,
                        _ => None,
                    });
                    let event_id = cue.event_id.or(scte_event);
                    // The start left the playlist: estimate its media sequence number from the elapsed time,
                    // so the id is the one a reader that saw the start derived.
                    let back = match (elapsed, p.segments.get(cue.segment)) {
                        (Some(elapsed), Some(s)) if s.duration > 0.0 && elapsed > 0.0 => {
                            (elapsed / s.duration).round() as usize
                        }
                        _ => 0,
                    };
                    open = Some(AdBreak {
                        id: cue
                            .id
                            .clone()
                            .or_else(|| event_id.map(|e| format!("scte35-{e}")))
                            .unwrap_or_else(|| derived_id_back(cue.segment, back)),
                        id_from_tag: cue.id.is_some(),
                        start_segment: None,
                        first_segment: cue.segment,
                        elapsed_at_first: elapsed.unwrap_or(0.0),
                        planned_duration: duration,
                        end_segment: None,
                        last_signalled_segment: Some(cue.segment),
                        scte35: cue.scte35,
                        event_id,
                        dialect: cue.dialect,
                        warnings,
                    });
                }
            },
            Signal::In => match open.take() {
                // A break that ends where it starts has no segments to replace.
                Some(b) if b.start_segment == Some(cue.segment) => {}
                Some(mut b) => {
                    b.end_segment = Some(cue.segment.max(b.first_segment));
                    b.warnings.extend(warnings);
                    breaks.push(b);
                }
                None => {
                    // Only the end is visible; a break already closed by an earlier cue ignores a repeated end.
                    // So is a later end of the same break (a DATERANGE's DURATION and its SCTE35-IN tag, or a
                    // CUE-IN after a cue's end): the earliest end stands.
                    let same = |b: &AdBreak| {
                        b.end_segment == Some(cue.segment)
                            || cue.id.as_ref().is_some_and(|id| *id == b.id)
                            || cue.event_id.is_some_and(|e| b.event_id == Some(e))
                    };
                    if let Some(b) = breaks.last_mut().filter(|b| same(b)) {
                        b.warnings.extend(warnings);
                        continue;
                    }
                    breaks.push(AdBreak {
                        id: cue
                            .id
                            .clone()
                            .or_else(|| cue.event_id.map(|e| format!("scte35-{e}")))
                            .unwrap_or_else(|| derived_id(cue.segment)),
                        id_from_tag: cue.id.is_some(),
                        start_segment: None,
                        first_segment: cue.segment,
                        elapsed_at_first: 0.0,
                        planned_duration: None,
                        end_segment: Some(cue.segment),
                        last_signalled_segment: None,
                        scte35: cue.scte35,
                        event_id: cue.event_id,
                        dialect: cue.dialect,
                        warnings,
                    });
                }
            },
        }
    }
    breaks.extend(open);
    breaks
}
