//! `EXT-X-DATERANGE` with SCTE-35 attributes (RFC 8216bis §4.4.5.1.1 "Mapping SCTE-35 into EXT-X-DATERANGE"),
//! placed on segments by program date time: `SCTE35-OUT` starts a break at `START-DATE` (its end is known once
//! `DURATION` or `END-DATE` is), `SCTE35-IN` ends one at its range's end (or start), `SCTE35-CMD` says either
//! by its cue. AWS Elemental and MediaPackage write the end as a second tag with the same `ID`, `END-DATE`,
//! `DURATION` and `SCTE35-IN`, without `START-DATE`.

use chrono::{DateTime, FixedOffset, TimeDelta};

use super::{Cue, Decoded, Dialect, Read, Signal, decode, undecodable};
use crate::attributes::AttributeList;
use crate::model::MediaPlaylist;

/// `t` plus `secs` seconds; `None` when `secs` is not finite or the sum leaves chrono's range (fuzzing found
/// durations large enough to overflow a date).
pub(super) fn after(t: DateTime<FixedOffset>, secs: f64) -> Option<DateTime<FixedOffset>> {
    if !secs.is_finite() {
        return None;
    }
    // `as` saturates at i64's bounds, still a valid TimeDelta; the checked add rejects what overflows a date.
    t.checked_add_signed(TimeDelta::microseconds((secs * 1e6).round() as i64))
}

/// Program date time of each segment, carried forward from the last explicit one.
pub(super) fn segment_times(p: &MediaPlaylist) -> Vec<Option<DateTime<FixedOffset>>> {
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

pub(super) fn read_daterange(
    p: &MediaPlaylist,
    times: &[Option<DateTime<FixedOffset>>],
    attached: usize,
    line: Option<usize>,
    dr: &AttributeList,
) -> Vec<Read> {
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
    let end = dr
        .get("END-DATE")
        .and_then(crate::parse::parse_date_time)
        .or_else(|| after(start?, dr.get_f64("DURATION")?));
    let cue = |segment, signal, scte35: Option<&str>, event_id, warning| {
        Read::Cue(Cue {
            segment,
            signal,
            dialect: Dialect::DateRange,
            id: id.clone(),
            scte35: scte35.map(str::to_owned),
            event_id,
            warning,
            line,
        })
    };
    let warn = |attr: &str, reason: &str, what: &str| {
        undecodable(
            line,
            attached,
            &format!("EXT-X-DATERANGE {attr}"),
            reason,
            what,
        )
    };
    let mut out = Vec::new();
    if let Some(text) = dr.get("SCTE35-OUT") {
        let (duration, event_id, warning) = match decode(text) {
            Decoded::Start { duration, event_id } => (duration.or(planned), event_id, None),
            Decoded::Invalid(reason) => (
                planned,
                None,
                Some(warn(
                    "SCTE35-OUT",
                    &reason,
                    "used START-DATE and PLANNED-DURATION/DURATION",
                )),
            ),
            _ => (planned, None, None),
        };
        out.push(cue(
            at(start),
            Signal::Out { duration },
            Some(text),
            event_id,
            warning,
        ));
        // A known actual duration (DURATION or END-DATE) ends the break, once the playlist reaches that time.
        if let Some(i) = end.and_then(|t| segment_at(p, times, t)) {
            out.push(cue(i, Signal::In, None, event_id, None));
        }
    } else if let Some(text) = dr.get("SCTE35-IN") {
        let (event_id, warning) = match decode(text) {
            Decoded::Start { event_id, .. } | Decoded::End { event_id } => (event_id, None),
            Decoded::Neither => (None, None),
            Decoded::Invalid(reason) => (
                None,
                Some(warn("SCTE35-IN", &reason, "used END-DATE/START-DATE")),
            ),
        };
        // The splice-in happens at the range's end when it has one (RFC 8216bis §4.4.5.1.4). Without one, a
        // tag that repeats its OUT tag's ID and START-DATE (MediaTailor's paired form) ends the break where the
        // tag stands; a range of its own ends it at its START-DATE: the later of the two.
        let segment = match end {
            Some(t) => at(Some(t)),
            None => at(start).max(attached),
        };
        out.push(cue(segment, Signal::In, Some(text), event_id, warning));
    } else if let Some(cmd) = dr.get("SCTE35-CMD") {
        match super::from_section(
            at(start),
            line,
            "EXT-X-DATERANGE SCTE35-CMD",
            Dialect::DateRange,
            id.clone(),
            cmd,
            None,
        ) {
            Read::Cue(mut c) => {
                if let Signal::Out { duration: None } = c.signal {
                    c.signal = Signal::Out { duration: planned };
                }
                out.push(Read::Cue(c));
            }
            other => out.push(other),
        }
    }
    out
}
