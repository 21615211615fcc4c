//! Segment addressing with SegmentTemplate (ISO/IEC 23009-1 §5.3.9.4): expanding a SegmentTimeline
//! (§5.3.9.6, including `@r="-1"`) into numbered segments, writing segments back as a compact timeline, and
//! filling URL templates (`$RepresentationID$`, `$Number%05d$`, `$Time$`, `$Bandwidth$`, `$$`, §5.3.9.4.4).

use std::time::Duration;

use crate::error::{Error, Result};
use crate::model::{Period, SegmentTemplate, TimelineEntry};
use crate::parse::MAX_TIMELINE_SEGMENTS;
use crate::time::{duration_to_ticks, ticks_to_duration};

/// One media segment: its number, its media time and duration in the template's timescale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Segment {
    /// `$Number$`.
    pub number: u64,
    /// `$Time$`: the earliest presentation time in timescale units (before presentationTimeOffset).
    pub time: u64,
    /// Duration in timescale units.
    pub duration: u64,
}

impl Segment {
    /// Media time just after the segment.
    #[must_use]
    pub fn end(&self) -> u64 {
        self.time.saturating_add(self.duration)
    }
}

/// An expanded timeline.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expanded {
    /// The segments in order.
    pub segments: Vec<Segment>,
    /// The last entry has `@r="-1"` and no bound was given: it repeats beyond `segments` until the Period
    /// ends (a live timeline whose end only the clock knows).
    pub open_ended: bool,
}

/// Expands a timeline. `until` (media time, exclusive) bounds an `@r="-1"` entry that is last; an `@r="-1"`
/// entry followed by another repeats until that entry's `@t`.
///
/// # Errors
/// [`Error::Invalid`] when expansion would exceed [`MAX_TIMELINE_SEGMENTS`] segments.
pub fn expand_timeline(
    entries: &[TimelineEntry],
    start_number: u64,
    until: Option<u64>,
) -> Result<Expanded> {
    let mut out = Expanded::default();
    let mut time: u64 = 0;
    let mut number = start_number;
    let too_many = || Error::Invalid {
        path: "SegmentTimeline".to_string(),
        reason: format!("more than {MAX_TIMELINE_SEGMENTS} segments"),
    };
    for (i, e) in entries.iter().enumerate() {
        if let Some(t) = e.t {
            time = t;
        }
        if let Some(n) = e.n {
            number = n;
        }
        let repeats: u64 = if e.r >= 0 {
            u64::try_from(e.r).unwrap_or(0)
        } else {
            let bound = entries.get(i + 1).and_then(|next| next.t).or(until);
            match bound {
                Some(b) if b > time => (b - time).div_ceil(e.d).saturating_sub(1),
                Some(_) => 0,
                None => {
                    out.open_ended = true;
                    0
                }
            }
        };
        for _ in 0..=repeats {
            if out.segments.len() as u64 >= MAX_TIMELINE_SEGMENTS {
                return Err(too_many());
            }
            out.segments.push(Segment {
                number,
                time,
                duration: e.d,
            });
            time = time.saturating_add(e.d);
            number = number.saturating_add(1);
        }
    }
    Ok(out)
}

/// Writes segments as a compact timeline: `@t` on the first entry and after any gap or overlap, runs of
/// equal durations folded into `@r`. `@n` is written where numbers are not consecutive.
#[must_use]
pub fn compress_timeline(segments: &[Segment]) -> Vec<TimelineEntry> {
    let mut out: Vec<TimelineEntry> = Vec::new();
    let mut next_time: Option<u64> = None;
    let mut next_number: Option<u64> = None;
    for s in segments {
        let contiguous = next_time == Some(s.time);
        let consecutive = next_number.is_none_or(|n| n == s.number);
        if let Some(last) = out.last_mut() {
            if contiguous && consecutive && last.d == s.duration && last.r >= 0 {
                last.r += 1;
                next_time = Some(s.end());
                next_number = Some(s.number.saturating_add(1));
                continue;
            }
        }
        out.push(TimelineEntry {
            t: if contiguous { None } else { Some(s.time) },
            n: if consecutive { None } else { Some(s.number) },
            d: s.duration,
            r: 0,
            extra_attrs: Vec::new(),
        });
        next_time = Some(s.end());
        next_number = Some(s.number.saturating_add(1));
    }
    out
}

/// The segments of `template` that overlap media time `[from, to)`: from its timeline, or for a
/// `@duration` template the numbered segments starting at presentationTimeOffset. `to = None` means up to
/// the end of a timeline (a `@duration` template then needs a bound and yields nothing).
///
/// # Errors
/// As [`expand_timeline`].
pub fn segments_between(
    template: &SegmentTemplate,
    from: u64,
    to: Option<u64>,
) -> Result<Expanded> {
    if let Some(entries) = &template.timeline {
        let mut all = expand_timeline(entries, template.start_number(), to)?;
        all.segments
            .retain(|s| s.end() > from && to.is_none_or(|to| s.time < to));
        return Ok(all);
    }
    let (Some(d), Some(to)) = (template.duration.filter(|&d| d > 0), to) else {
        return Ok(Expanded::default());
    };
    let pto = template.presentation_time_offset();
    let first = from.saturating_sub(pto) / d;
    let last = to.saturating_sub(pto).div_ceil(d);
    if last.saturating_sub(first) > MAX_TIMELINE_SEGMENTS {
        return Err(Error::Invalid {
            path: "SegmentTemplate".to_string(),
            reason: format!("more than {MAX_TIMELINE_SEGMENTS} segments"),
        });
    }
    let segments = (first..last)
        .map(|k| Segment {
            number: template.start_number().saturating_add(k),
            time: pto.saturating_add(k.saturating_mul(d)),
            duration: d,
        })
        .collect();
    Ok(Expanded {
        segments,
        open_ended: false,
    })
}

/// Values substituted into a URL template.
#[derive(Debug, Clone, Copy, Default)]
pub struct TemplateValues<'a> {
    /// `$RepresentationID$`.
    pub representation_id: &'a str,
    /// `$Number$`.
    pub number: Option<u64>,
    /// `$Time$`.
    pub time: Option<u64>,
    /// `$Bandwidth$`.
    pub bandwidth: Option<u64>,
}

/// Fills a SegmentTemplate URL template. Identifiers with no value given, and unknown ones, are left as
/// written; `$$` becomes `$`; a format tag `%0Nd` pads numbers with zeros.
#[must_use]
pub fn fill_template(template: &str, values: &TemplateValues<'_>) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find('$') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('$') else {
            out.push_str(&rest[open..]);
            return out;
        };
        let ident = &after[..close];
        rest = &after[close + 1..];
        if ident.is_empty() {
            out.push('$');
            continue;
        }
        let (name, format) = match ident.split_once('%') {
            Some((n, f)) => (n, Some(f)),
            None => (ident, None),
        };
        let number = match name {
            "RepresentationID" if format.is_none() => {
                out.push_str(values.representation_id);
                continue;
            }
            "Number" => values.number,
            "Time" => values.time,
            "Bandwidth" => values.bandwidth,
            _ => None,
        };
        match (number, format.map(width_of)) {
            (Some(n), None) => out.push_str(&n.to_string()),
            (Some(n), Some(Some(width))) => out.push_str(&format!("{n:0width$}")),
            _ => {
                out.push('$');
                out.push_str(ident);
                out.push('$');
            }
        }
    }
    out.push_str(rest);
    out
}

/// The width of a `0Nd` format tag (§5.3.9.4.4), capped so a hostile tag cannot allocate much.
fn width_of(format: &str) -> Option<usize> {
    let digits = format.strip_prefix('0')?.strip_suffix('d')?;
    digits.parse::<usize>().ok().map(|w| w.min(32))
}

/// One media segment of a Period as a player would address it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SegmentRef {
    /// Index of the AdaptationSet in the Period.
    pub adaptation_set: usize,
    /// Representation@id.
    pub representation_id: String,
    /// `$Number$`.
    pub number: u64,
    /// `$Time$`.
    pub media_time: u64,
    /// Start on the presentation timeline.
    pub start: Duration,
    /// Duration.
    pub duration: Duration,
    /// The media URL (the template filled in; relative URLs are left relative).
    pub url: String,
}

/// Every media segment of a SegmentTemplate-addressed Period (templates inherited from the AdaptationSet
/// and Period, §5.3.9.1) that overlaps `[period_start, period_end)`; a `@duration` template needs
/// `period_end`. What the server needs to map a segment request to its place, and what tests compare
/// across refreshes.
///
/// # Errors
/// As [`expand_timeline`].
pub fn period_segments(
    period: &Period,
    period_start: Duration,
    period_end: Option<Duration>,
) -> Result<Vec<SegmentRef>> {
    let mut out = Vec::new();
    for (ai, ri, t) in crate::stitch::effective_templates(period) {
        let Some(rep) = period
            .adaptation_sets
            .get(ai)
            .and_then(|a| a.representations.get(ri))
        else {
            continue;
        };
        let pto = t.presentation_time_offset();
        let ts = t.timescale();
        let from = pto;
        let to = period_end
            .map(|e| pto.saturating_add(duration_to_ticks(e.saturating_sub(period_start), ts)));
        for s in segments_between(&t, from, to)?.segments {
            let start = if s.time >= pto {
                period_start.saturating_add(ticks_to_duration(s.time - pto, ts).unwrap_or_default())
            } else {
                period_start.saturating_sub(ticks_to_duration(pto - s.time, ts).unwrap_or_default())
            };
            let url = fill_template(
                t.media.as_deref().unwrap_or(""),
                &TemplateValues {
                    representation_id: &rep.id,
                    number: Some(s.number),
                    time: Some(s.time),
                    bandwidth: rep.bandwidth,
                },
            );
            out.push(SegmentRef {
                adaptation_set: ai,
                representation_id: rep.id.clone(),
                number: s.number,
                media_time: s.time,
                start,
                duration: ticks_to_duration(s.duration, ts).unwrap_or_default(),
                url,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t: Option<u64>, d: u64, r: i64) -> TimelineEntry {
        TimelineEntry {
            t,
            n: None,
            d,
            r,
            extra_attrs: Vec::new(),
        }
    }

    #[test]
    fn repeat_minus_one_runs_to_the_next_entry_or_the_bound() {
        let entries = [s(Some(0), 10, -1), s(Some(50), 20, 0), s(None, 5, -1)];
        let ex = expand_timeline(&entries, 1, Some(90)).expect("small");
        let times: Vec<u64> = ex.segments.iter().map(|x| x.time).collect();
        assert_eq!(times, [0, 10, 20, 30, 40, 50, 70, 75, 80, 85]);
        assert_eq!(ex.segments.last().map(|x| x.number), Some(10));
        let open = expand_timeline(&entries, 1, None).expect("small");
        assert!(open.open_ended);
        assert_eq!(open.segments.len(), 7);
    }

    #[test]
    fn compress_is_the_inverse_of_expand() {
        let entries = vec![
            s(Some(361_301), 60_060, 15),
            s(None, 30_000, 0),
            s(Some(2_000_000), 10, 2),
        ];
        let ex = expand_timeline(&entries, 6, None).expect("small");
        assert_eq!(compress_timeline(&ex.segments), entries);
    }

    #[test]
    fn templates_fill_with_formats_and_escapes() {
        let v = TemplateValues {
            representation_id: "video=1",
            number: Some(42),
            time: Some(900),
            bandwidth: Some(300_000),
        };
        assert_eq!(
            fill_template(
                "a_$RepresentationID$_$Number%09d$_$Time$_$Bandwidth$_$$.mp4",
                &v
            ),
            "a_video=1_000000042_900_300000_$.mp4"
        );
        assert_eq!(fill_template("x$Unknown$y$", &v), "x$Unknown$y$");
    }

    #[test]
    fn duration_templates_number_from_the_offset() {
        let t = SegmentTemplate {
            duration: Some(4),
            start_number: Some(10),
            presentation_time_offset: Some(100),
            ..SegmentTemplate::default()
        };
        let ex = segments_between(&t, 105, Some(113)).expect("small");
        let got: Vec<(u64, u64)> = ex.segments.iter().map(|x| (x.number, x.time)).collect();
        assert_eq!(got, [(11, 104), (12, 108), (13, 112)]);
    }
}
