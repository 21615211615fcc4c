//! Ad markers in every dialect found in the wild, normalised into one break model.
//!
//! Dialects read (they appear mixed in one stream; DOMAIN.md):
//! - `EXT-X-CUE-OUT` (`DURATION=30`, a bare `30`/`30.000`, or nothing), `EXT-X-CUE-OUT-CONT` (`ElapsedTime=…,
//!   Duration=…[,SCTE35=…]` or `elapsed/duration`), `EXT-X-CUE-SPAN:TIMEFROMSIGNAL=PT6S`, `EXT-X-CUE-IN`;
//! - `EXT-X-DATERANGE` with `SCTE35-OUT` / `SCTE35-IN` / `SCTE35-CMD`, `PLANNED-DURATION`, `DURATION`, `END-DATE`
//!   (RFC 8216bis §4.4.5.1.1), mapped to segments by program date time;
//! - `EXT-OATCLS-SCTE35` (with `EXT-X-ASSET`), `EXT-X-SCTE35` (`CUE=`, `CUE-OUT=YES|CONT|NO`, `CUE-IN=YES`),
//!   `EXT-SCTE35`, `EXT-X-SPLICEPOINT-SCTE35`.
//!
//! Where a tag carries SCTE-35, the cue is decoded and its direction, duration and event id win over the tag's
//! own attributes. A cue that does not decode still yields the break the tag describes, with a warning; an
//! OATCLS or DATERANGE cue that is neither a break start nor end (e.g. a program boundary) is ignored.

use chrono::{DateTime, FixedOffset, TimeDelta};
use interlude_scte35::SpliceInfoSection;
use serde::Serialize;

use crate::attributes::AttributeList;
use crate::model::{MediaPlaylist, Tag};

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
}

/// A break normalised from any dialect.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AdBreak {
    /// Break id: the tag's ID, else `scte35-<event id>`, else `msn-<first media sequence number>`.
    pub id: String,
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

/// A cue from a tag whose only content is an SCTE-35 section.
fn from_section(
    segment: usize,
    dialect: Dialect,
    id: Option<String>,
    scte35: &str,
    fallback: Option<Signal>,
) -> Option<Cue> {
    let (signal, event_id, warning) = match decode(scte35) {
        Decoded::Start { duration, event_id } => (Signal::Out { duration }, event_id, None),
        Decoded::End { event_id } => (Signal::In, event_id, None),
        Decoded::Neither => return None,
        Decoded::Invalid(reason) => (
            fallback?,
            None,
            Some(format!("undecodable SCTE-35 ({reason}); used the tag")),
        ),
    };
    Some(Cue {
        segment,
        signal,
        dialect,
        id,
        scte35: Some(scte35.to_owned()),
        event_id,
        warning,
    })
}

/// Reads `30`, `30.000` or `DURATION=30` style values.
fn number_or_attr(value: &str, attr: &str) -> (Option<f64>, Option<AttributeList>) {
    if let Ok(n) = value.trim().parse::<f64>() {
        return (Some(n), None);
    }
    let attrs = AttributeList::parse(value).ok();
    (attrs.as_ref().and_then(|a| a.get_f64(attr)), attrs)
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

fn cue_from_tag(segment: usize, tag: &Tag) -> Option<Cue> {
    let value = tag.value.as_deref().unwrap_or("");
    let plain = |signal, dialect, id| Cue {
        segment,
        signal,
        dialect,
        id,
        scte35: None,
        event_id: None,
        warning: None,
    };
    match tag.name.as_str() {
        "EXT-X-CUE-OUT" => {
            let (duration, attrs) = number_or_attr(value, "DURATION");
            let id = attrs.as_ref().and_then(|a| a.get("ID").map(str::to_owned));
            Some(plain(Signal::Out { duration }, Dialect::CueOut, id))
        }
        "EXT-X-CUE-OUT-CONT" => {
            if let Some((e, d)) = value.split_once('/') {
                let elapsed = e.trim().parse().ok();
                let duration = d.trim().parse().ok();
                return Some(plain(
                    Signal::Cont { elapsed, duration },
                    Dialect::CueOut,
                    None,
                ));
            }
            let attrs = AttributeList::parse(value).ok()?;
            let elapsed = attrs
                .get_f64("ElapsedTime")
                .or_else(|| attrs.get_f64("ELAPSEDTIME"));
            let duration = attrs
                .get_f64("Duration")
                .or_else(|| attrs.get_f64("DURATION"));
            let mut cue = plain(
                Signal::Cont { elapsed, duration },
                Dialect::CueOut,
                attrs.get("ID").map(str::to_owned),
            );
            cue.scte35 = attrs.get("SCTE35").map(str::to_owned);
            Some(cue)
        }
        "EXT-X-CUE-SPAN" => {
            let attrs = AttributeList::parse(value).ok()?;
            let elapsed = attrs.get("TIMEFROMSIGNAL").and_then(iso_duration);
            Some(plain(
                Signal::Cont {
                    elapsed,
                    duration: None,
                },
                Dialect::CueOut,
                attrs.get("ID").map(str::to_owned),
            ))
        }
        "EXT-X-CUE-IN" => {
            let id = AttributeList::parse(value)
                .ok()
                .and_then(|a| a.get("ID").map(str::to_owned));
            Some(plain(Signal::In, Dialect::CueOut, id))
        }
        "EXT-OATCLS-SCTE35" => from_section(segment, Dialect::Oatcls, None, value.trim(), None),
        "EXT-X-SPLICEPOINT-SCTE35" => {
            from_section(segment, Dialect::SplicePoint, None, value.trim(), None)
        }
        "EXT-X-SCTE35" | "EXT-SCTE35" => {
            let attrs = AttributeList::parse(value).ok()?;
            let id = attrs.get("ID").map(str::to_owned);
            let duration = attrs.get_f64("DURATION");
            let explicit = match (attrs.get("CUE-OUT"), attrs.get("CUE-IN")) {
                (Some("YES"), _) => Some(Signal::Out { duration }),
                (Some("CONT"), _) => Some(Signal::Cont {
                    elapsed: attrs.get_f64("ELAPSED"),
                    duration,
                }),
                (_, Some("YES")) => Some(Signal::In),
                _ => None,
            };
            match (attrs.get("CUE"), explicit) {
                (Some(cue), Some(signal)) => {
                    let event_id = match decode(cue) {
                        Decoded::Start { event_id, .. } | Decoded::End { event_id } => event_id,
                        _ => None,
                    };
                    Some(Cue {
                        segment,
                        signal,
                        dialect: Dialect::Scte35Tag,
                        id,
                        scte35: Some(cue.to_owned()),
                        event_id,
                        warning: None,
                    })
                }
                (Some(cue), None) => from_section(segment, Dialect::Scte35Tag, id, cue, None),
                (None, Some(signal)) => Some(plain(signal, Dialect::Scte35Tag, id)),
                (None, None) => None,
            }
        }
        _ => None,
    }
}

/// `t` plus `secs` seconds; `None` when `secs` is not finite or the sum leaves chrono's range (fuzzing found
/// durations large enough to overflow a date).
fn after(t: DateTime<FixedOffset>, secs: f64) -> Option<DateTime<FixedOffset>> {
    if !secs.is_finite() {
        return None;
    }
    // `as` saturates at i64's bounds, still a valid TimeDelta; the checked add rejects what overflows a date.
    t.checked_add_signed(TimeDelta::microseconds((secs * 1e6).round() as i64))
}

/// Program date time of each segment, carried forward from the last explicit one.
fn segment_times(p: &MediaPlaylist) -> Vec<Option<DateTime<FixedOffset>>> {
    let mut last: Option<DateTime<FixedOffset>> = None;
    p.segments
        .iter()
        .map(|s| {
            let t = s.program_date_time.or(last);
            last = t.and_then(|t| after(t, s.duration));
            t
        })
        .collect()
}

/// Index of the segment playing at `t`, if the playlist covers it (`segments.len()` just past the end).
fn segment_at(
    p: &MediaPlaylist,
    times: &[Option<DateTime<FixedOffset>>],
    t: DateTime<FixedOffset>,
) -> Option<usize> {
    // Half a millisecond of slack: START-DATE values are written with less precision than PDTs.
    let t_slack = t.checked_add_signed(TimeDelta::microseconds(500))?;
    for (i, (s, start)) in p.segments.iter().zip(times).enumerate() {
        let start = (*start)?;
        let end = after(start, s.duration)?;
        if t_slack >= start && t_slack < end {
            return Some(i);
        }
        if i + 1 == p.segments.len() && (t - end).num_milliseconds().abs() <= 1 {
            return Some(p.segments.len());
        }
    }
    None
}

fn cues_from_daterange(
    p: &MediaPlaylist,
    times: &[Option<DateTime<FixedOffset>>],
    attached: usize,
    dr: &AttributeList,
) -> Vec<Cue> {
    if dr
        .get("CLASS")
        .is_some_and(|c| c == "com.apple.hls.interstitial")
    {
        return Vec::new();
    }
    let id = dr.get("ID").map(str::to_owned);
    let start = dr.get("START-DATE").and_then(crate::parse::parse_date_time);
    let at = |t: Option<DateTime<FixedOffset>>| {
        t.and_then(|t| segment_at(p, times, t)).unwrap_or(attached)
    };
    let planned = dr
        .get_f64("PLANNED-DURATION")
        .or_else(|| dr.get_f64("DURATION"));
    let mut cues = Vec::new();
    let mut push = |segment, signal, scte35: Option<&str>, event_id, warning| {
        cues.push(Cue {
            segment,
            signal,
            dialect: Dialect::DateRange,
            id: id.clone(),
            scte35: scte35.map(str::to_owned),
            event_id,
            warning,
        });
    };
    if let Some(out) = dr.get("SCTE35-OUT") {
        let (duration, event_id, warning) = match decode(out) {
            Decoded::Start { duration, event_id } => (duration.or(planned), event_id, None),
            Decoded::Invalid(reason) => (
                planned,
                None,
                Some(format!("undecodable SCTE35-OUT ({reason}); used the tag")),
            ),
            _ => (planned, None, None),
        };
        push(
            at(start),
            Signal::Out { duration },
            Some(out),
            event_id,
            warning,
        );
        // A known actual duration (DURATION or END-DATE) ends the break, once the playlist reaches that time.
        let end = dr
            .get("END-DATE")
            .and_then(crate::parse::parse_date_time)
            .or_else(|| after(start?, dr.get_f64("DURATION")?));
        if let Some(i) = end.and_then(|t| segment_at(p, times, t)) {
            push(i, Signal::In, None, event_id, None);
        }
    } else if let Some(cue_in) = dr.get("SCTE35-IN") {
        let event_id = match decode(cue_in) {
            Decoded::Start { event_id, .. } | Decoded::End { event_id } => event_id,
            _ => None,
        };
        // The splice-in happens at the range's end when it has one (RFC 8216bis §4.4.5.1.4), else at its start.
        let end = dr
            .get("END-DATE")
            .and_then(crate::parse::parse_date_time)
            .or_else(|| after(start?, dr.get_f64("DURATION")?))
            .or(start);
        push(at(end), Signal::In, Some(cue_in), event_id, None);
    } else if let Some(cmd) = dr.get("SCTE35-CMD") {
        if let Some(mut cue) = from_section(at(start), Dialect::DateRange, id.clone(), cmd, None) {
            if let Signal::Out { duration: None } = cue.signal {
                cue.signal = Signal::Out { duration: planned };
            }
            cues.push(cue);
        }
    }
    cues
}

/// Every ad marker of the playlist, in segment order.
pub fn read_cues(p: &MediaPlaylist) -> Vec<Cue> {
    let times = segment_times(p);
    let mut cues = Vec::new();
    let trailing = p.segments.len();
    for (i, s) in p.segments.iter().enumerate() {
        for dr in &s.dateranges {
            cues.extend(cues_from_daterange(p, &times, i, dr));
        }
        cues.extend(s.tags.iter().filter_map(|t| cue_from_tag(i, t)));
    }
    for dr in &p.trailing_dateranges {
        cues.extend(cues_from_daterange(p, &times, trailing, dr));
    }
    cues.extend(
        p.trailing_tags
            .iter()
            .filter_map(|t| cue_from_tag(trailing, t)),
    );
    // DATERANGE cues map by time, so they may point before the tag that carried them.
    cues.sort_by_key(|c| c.segment);
    for cue in &mut cues {
        cue.signal = cue.signal.sanitised();
    }
    cues
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
    let mut breaks = Vec::new();
    let mut open: Option<AdBreak> = None;
    let derived_id = |segment: usize| format!("msn-{}", p.media_sequence + segment as u64);
    for cue in read_cues(p) {
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
                }
                None => {
                    let scte_event = cue.scte35.as_deref().and_then(|s| match decode(s) {
                        Decoded::Start { event_id, .. } => event_id,
                        _ => None,
                    });
                    let event_id = cue.event_id.or(scte_event);
                    open = Some(AdBreak {
                        id: cue
                            .id
                            .clone()
                            .or_else(|| event_id.map(|e| format!("scte35-{e}")))
                            .unwrap_or_else(|| derived_id(cue.segment)),
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
                    breaks.push(b);
                }
                None => {
                    // Only the end is visible; a break already closed by an earlier cue ignores a repeated end.
                    if breaks
                        .last()
                        .is_some_and(|b: &AdBreak| b.end_segment == Some(cue.segment))
                    {
                        continue;
                    }
                    breaks.push(AdBreak {
                        id: cue
                            .id
                            .clone()
                            .or_else(|| cue.event_id.map(|e| format!("scte35-{e}")))
                            .unwrap_or_else(|| derived_id(cue.segment)),
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
