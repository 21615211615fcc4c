//! Cutting a content Period into pieces around breaks (ISO/IEC 23009-1 §5.3.9): each piece is the same
//! Period with a later @start and its SegmentTemplates rewritten so every content segment keeps its URL
//! (`$Number$` and `$Time$` unchanged) and its place on the timeline: presentationTimeOffset moves with the
//! piece start, the timeline keeps only the segments that overlap the piece, and startNumber follows the
//! first segment kept.

use std::time::Duration;

use crate::error::Result;
use crate::model::{Period, SegmentTemplate};
use crate::segment::{Segment, compress_timeline, expand_timeline};
use crate::time::{duration_to_ticks, ticks_to_duration};

/// Where media time `t` of a template falls on the presentation timeline of a Period starting at
/// `period_start`; `None` when it falls before zero.
pub(crate) fn mpd_time(
    period_start: Duration,
    template: &SegmentTemplate,
    t: u64,
) -> Option<Duration> {
    let ts = template.timescale();
    let pto = template.presentation_time_offset();
    if t >= pto {
        Some(period_start.saturating_add(ticks_to_duration(t - pto, ts)?))
    } else {
        period_start.checked_sub(ticks_to_duration(pto - t, ts)?)
    }
}

/// The media time of presentation time `at` (clamped at the Period start).
pub(crate) fn media_time(period_start: Duration, template: &SegmentTemplate, at: Duration) -> u64 {
    let offset = at.saturating_sub(period_start);
    template
        .presentation_time_offset()
        .saturating_add(duration_to_ticks(offset, template.timescale()))
}

/// Effective SegmentTemplates of a Period: one per representation (with the AdaptationSet's and Period's
/// inherited, §5.3.9.1), as `(adaptation set index, representation index, template)`.
pub(crate) fn effective_templates(period: &Period) -> Vec<(usize, usize, SegmentTemplate)> {
    let mut out = Vec::new();
    for (ai, set) in period.adaptation_sets.iter().enumerate() {
        let set_level = match (&set.segment_template, &period.segment_template) {
            (Some(a), Some(p)) => Some(a.inherit(p)),
            (Some(a), None) => Some(a.clone()),
            (None, p) => p.clone(),
        };
        for (ri, rep) in set.representations.iter().enumerate() {
            let t = match (&rep.segment_template, &set_level) {
                (Some(r), Some(s)) => Some(r.inherit(s)),
                (Some(r), None) => Some(r.clone()),
                (None, s) => s.clone(),
            };
            if let Some(t) = t {
                out.push((ai, ri, t));
            }
        }
    }
    out
}

/// The segments of a timeline template within the Period's known end (`until`, media time).
pub(crate) fn timeline_segments(t: &SegmentTemplate, until: Option<u64>) -> Result<Vec<Segment>> {
    match &t.timeline {
        Some(entries) => Ok(expand_timeline(entries, t.start_number(), until)?.segments),
        None => Ok(Vec::new()),
    }
}

/// The MPEG-2 TS system clock of PTS (ISO/IEC 13818-1 §2.4.3.7).
const PTS_HZ: u64 = 90_000;
/// PTS are 33 bits: they wrap every 2^33 ticks (about 26.5 h).
const PTS_WRAP: u64 = 1 << 33;

/// Rewrites one effective template for a piece covering `[from, to)` of a Period that starts at
/// `period_start`. Returns the template and whether it still addresses any segment.
///
/// `mpeg2_ts`: the Representation is MPEG-2 TS (`video/mp2t`), whose media time is the segments' PTS. An
/// origin's MPD may count that time on without wrapping (a Period opened at its epoch), while the PTS in
/// the segments wrap every 2^33 ticks; a piece's presentationTimeOffset is then taken modulo 2^33 (at the
/// 90 kHz PTS timescale), so a player that maps the piece's first PTS through it lands the content at the
/// piece start. Without this, on a channel more than 26.5 h past its epoch, Shaka Player placed every
/// content piece after a break hours away and stalled at its start. Number-based templates only: with a
/// SegmentTimeline the `S@t` values (and `$Time$` URLs) must stay the origin's.
fn rewrite_template(
    t: &SegmentTemplate,
    period_start: Duration,
    from: Duration,
    to: Option<Duration>,
    mpeg2_ts: bool,
) -> Result<(SegmentTemplate, bool)> {
    let m_from = media_time(period_start, t, from);
    let m_to = to.map(|to| media_time(period_start, t, to));
    let mut out = t.clone();
    out.presentation_time_offset = Some(m_from);
    if let Some(entries) = &t.timeline {
        let expanded = expand_timeline(entries, t.start_number(), m_to)?;
        let kept: Vec<Segment> = expanded
            .segments
            .into_iter()
            .filter(|s| s.end() > m_from && m_to.is_none_or(|m| s.time < m))
            .collect();
        let Some(first) = kept.first() else {
            out.timeline = Some(Vec::new());
            return Ok((out, false));
        };
        out.start_number = Some(first.number);
        let mut timeline = compress_timeline(&kept);
        if expanded.open_ended && m_to.is_none() {
            if let Some(last) = timeline.last_mut() {
                last.r = -1;
            }
        }
        out.timeline = Some(timeline);
        return Ok((out, true));
    }
    if let Some(d) = t.duration.filter(|&d| d > 0) {
        // Number-based addressing: the piece starts on a segment boundary (the stitcher snaps it there), so
        // the segment that starts at `from` is number startNumber + (m_from - pto) / d.
        let k = m_from.saturating_sub(t.presentation_time_offset()) / d;
        out.start_number = Some(t.start_number().saturating_add(k));
        if mpeg2_ts && t.timescale() == PTS_HZ {
            out.presentation_time_offset = Some(m_from % PTS_WRAP);
        }
        return Ok((out, true));
    }
    Ok((out, false))
}

/// The MIME type of MPEG-2 TS segments.
const MP2T: &str = "video/mp2t";

/// A piece `[from, to)` of `period` (which starts at `period_start`) with id `id`; `None` when no
/// representation has a segment in it any more (it slid out of the time-shift window).
pub(crate) fn content_piece(
    period: &Period,
    period_start: Duration,
    from: Duration,
    to: Option<Duration>,
    id: String,
) -> Result<Option<Period>> {
    let mut piece = period.clone();
    piece.id = Some(id);
    piece.start = Some(from);
    piece.duration = to.map(|to| to.saturating_sub(from));
    let mut any = false;
    let period_template = piece.segment_template.take();
    for set in &mut piece.adaptation_sets {
        let set_level = match (&set.segment_template, &period_template) {
            (Some(a), Some(p)) => Some(a.inherit(p)),
            (Some(a), None) => Some(a.clone()),
            (None, p) => p.clone(),
        };
        let set_ts = set.mime_type.as_deref() == Some(MP2T);
        if set
            .representations
            .iter()
            .any(|r| r.segment_template.is_some())
        {
            for rep in &mut set.representations {
                let ts = rep.mime_type.as_deref().map_or(set_ts, |m| m == MP2T);
                let eff = match (&rep.segment_template, &set_level) {
                    (Some(r), Some(s)) => Some(r.inherit(s)),
                    (Some(r), None) => Some(r.clone()),
                    (None, s) => s.clone(),
                };
                if let Some(eff) = eff {
                    let (t, has) = rewrite_template(&eff, period_start, from, to, ts)?;
                    any |= has;
                    rep.segment_template = Some(t);
                }
            }
            set.segment_template = None;
        } else if let Some(eff) = set_level {
            // A set-level template serves every Representation: TS only when they all are.
            let ts = set
                .representations
                .iter()
                .all(|r| r.mime_type.as_deref().map_or(set_ts, |m| m == MP2T));
            let (t, has) = rewrite_template(&eff, period_start, from, to, ts)?;
            any |= has;
            set.segment_template = Some(t);
        }
    }
    // EventStream times are relative to the Period start too (§5.10.2.2): move their offset with the piece
    // and keep the events inside it.
    for stream in &mut piece.event_streams {
        let ts = stream.timescale();
        let pto = stream.presentation_time_offset.unwrap_or(0);
        let new_pto = pto.saturating_add(duration_to_ticks(from.saturating_sub(period_start), ts));
        let end =
            to.map(|to| pto.saturating_add(duration_to_ticks(to.saturating_sub(period_start), ts)));
        stream.events.retain(|e| {
            let t = e.presentation_time.unwrap_or(0);
            t >= new_pto && end.is_none_or(|end| t < end)
        });
        if new_pto != pto {
            stream.presentation_time_offset = Some(new_pto);
        }
    }
    Ok(any.then_some(piece))
}

/// The presentation times the content's segments cover: earliest start and latest end over every
/// representation with a SegmentTimeline (the time-shift window and the live edge of the snapshot).
pub(crate) fn content_span(
    periods: &[(usize, &Period, Duration, Option<Duration>)],
) -> Result<Option<(Duration, Duration)>> {
    let mut span: Option<(Duration, Duration)> = None;
    for &(_, period, start, end) in periods {
        for (_, _, t) in effective_templates(period) {
            let until = end.map(|e| media_time(start, &t, e));
            let segs = timeline_segments(&t, until)?;
            let (Some(first), Some(last)) = (segs.first(), segs.last()) else {
                continue;
            };
            let (Some(a), Some(b)) = (
                mpd_time(start, &t, first.time),
                mpd_time(start, &t, last.end()),
            ) else {
                continue;
            };
            span = Some(match span {
                None => (a, b),
                Some((lo, hi)) => (lo.min(a), hi.max(b)),
            });
        }
    }
    Ok(span)
}

/// The first segment boundary of the Period's reference representation (the first video one, else the
/// first) at or after `at`, when `at` falls strictly inside a segment: computable for `@duration`
/// templates; for timelines only when `use_timeline` and the segment is in this snapshot (so the answer
/// depends on the snapshot). Boundaries within a millisecond count as `at`.
pub(crate) fn next_boundary(
    period: &Period,
    start: Duration,
    at: Duration,
    use_timeline: bool,
) -> Result<Option<Duration>> {
    let templates = effective_templates(period);
    let reference = templates
        .iter()
        .find(|(ai, _, _)| {
            period
                .adaptation_sets
                .get(*ai)
                .is_some_and(|a| a.kind() == crate::model::ContentKind::Video)
        })
        .or_else(|| templates.first());
    let Some((_, _, t)) = reference else {
        return Ok(None);
    };
    let tolerance = Duration::from_millis(1);
    let m_at = media_time(start, t, at);
    let boundary = if t.timeline.is_some() {
        if !use_timeline {
            return Ok(None);
        }
        timeline_segments(t, None)?
            .into_iter()
            .find(|s| s.time < m_at && s.end() > m_at)
            .map(|s| s.end())
    } else if let Some(d) = t.duration.filter(|&d| d > 0) {
        let pto = t.presentation_time_offset();
        let k = m_at.saturating_sub(pto).div_ceil(d);
        Some(pto.saturating_add(k.saturating_mul(d)))
    } else {
        None
    };
    Ok(boundary
        .and_then(|b| mpd_time(start, t, b))
        .filter(|b| b.saturating_sub(at) > tolerance))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_mpd;

    /// A live origin Period from its epoch, number-addressed at 90 kHz, `mime` segments, 30 h of media
    /// time in (past one PTS wrap).
    fn period(mime: &str) -> Period {
        let text = format!(
            r#"<?xml version="1.0"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="dynamic" availabilityStartTime="2026-01-01T00:00:00Z"
     minimumUpdatePeriod="PT2S" minBufferTime="PT2S" profiles="urn:mpeg:dash:profile:isoff-live:2011">
  <Period id="p0" start="PT0S">
    <AdaptationSet id="0" contentType="video" mimeType="{mime}" codecs="avc1.4d401e">
      <SegmentTemplate timescale="90000" duration="180000" startNumber="0" presentationTimeOffset="1033200"
        media="$RepresentationID$/$Number$.seg"/>
      <Representation id="r0" bandwidth="200000"/>
    </AdaptationSet>
  </Period>
</MPD>"#
        );
        parse_mpd(&text).expect("test MPD reads").periods.remove(0)
    }

    fn piece_template(mime: &str, from: Duration) -> SegmentTemplate {
        let piece = content_piece(&period(mime), Duration::ZERO, from, None, "post".into())
            .expect("piece")
            .expect("segments left");
        piece.adaptation_sets[0]
            .segment_template
            .clone()
            .expect("set-level template")
    }

    #[test]
    fn a_ts_piece_past_the_pts_wrap_gets_the_wrapped_offset_and_keeps_its_numbers() {
        let from = Duration::from_secs(30 * 3600);
        let t = piece_template(MP2T, from);
        let unwrapped = 1_033_200 + 30 * 3600 * PTS_HZ;
        assert!(unwrapped > PTS_WRAP);
        assert_eq!(t.presentation_time_offset(), unwrapped % PTS_WRAP);
        assert_eq!(t.start_number(), 30 * 3600 / 2, "URLs unchanged");
        // fMP4 carries 64-bit decode times: nothing wraps, the offset is the origin's arithmetic.
        let t = piece_template("video/mp4", from);
        assert_eq!(t.presentation_time_offset(), unwrapped);
    }
}
