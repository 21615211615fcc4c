//! Live DASH stitching: a session's MPD from one snapshot of the content MPD and the session's plan.
//!
//! Ads replace content (live semantics): the content Period that holds a break is cut at the break's start;
//! one Period per ad follows (ISO/IEC 23009-1 §5.3.2, multi-Period content as DASH-IF IOP §4.3 describes
//! for ad insertion), then slate Periods for the time the ads leave unfilled, then the content resumes in a
//! Period whose presentationTimeOffset makes every content segment keep its URL and its time.
//!
//! The output is a pure function of (snapshot, plan), so successive refreshes and viewers joining mid-break
//! see the same Periods:
//! - Period ids come from the content Period id, the break id and the ad index
//!   (`{period}_{break}_ad{k}`, `{period}_{break}_slate{k}`, `{period}_{break}_post`); the part of a content
//!   Period before its first break keeps the content's id;
//! - Period starts come from the plan and the content timeline, never from the clock;
//! - in a dynamic MPD an ad or slate Period appears once the content's live edge (the end of its newest
//!   segment) has reached its start, and leaves with the time-shift window (when the content's oldest
//!   segment is later than its end); content pieces leave when none of their segments is left.
//!
//! Early return ([`PlannedBreak::ended_at`]) truncates the ad playing and drops later ones. With slate the
//! content resumes on the first segment boundary at or after the break end (the slate fills the rest);
//! without slate it resumes as soon as the ads end.

mod ads;
mod content;
pub mod plan;

pub(crate) use content::effective_templates;

use std::time::Duration;

use crate::error::{Error, Result};
use crate::model::{Mpd, Period};
use crate::scte35xml::Scte35Scheme;
use plan::{AdUrls, Placement, PlacementKind, PlannedBreak, StitchOptions, StitchWarning};

/// Ad or slate Periods shorter than this are not made: the content resumes early instead (players handle
/// sub-frame Periods badly).
pub const MIN_FILL: Duration = Duration::from_millis(100);

/// The furthest the content resume point moves to reach a segment boundary; beyond (a template with an
/// absurd segment duration) the content resumes exactly at the break end instead of slate filling the gap.
pub const MAX_SNAP: Duration = Duration::from_secs(15);

/// A session's MPD and what is in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stitched {
    /// The MPD to serve.
    pub mpd: Mpd,
    /// Every ad and slate Period of the plan's breaks (in the MPD or not yet / no longer).
    pub placements: Vec<Placement>,
    /// What had to be worked around.
    pub warnings: Vec<StitchWarning>,
}

/// Builds the session's MPD. See the [module documentation](self) for the rules.
///
/// # Errors
/// [`Error::BadPlan`] when breaks overlap, and the timeline errors of [`crate::segment`] for content whose
/// SegmentTimeline would expand past [`crate::MAX_TIMELINE_SEGMENTS`].
pub fn stitch(
    content: &Mpd,
    plan: &[PlannedBreak],
    urls: &dyn AdUrls,
    options: &StitchOptions,
) -> Result<Stitched> {
    let mut breaks: Vec<&PlannedBreak> = plan.iter().filter(|b| b.end() > b.start).collect();
    breaks.sort_by_key(|b| b.start);
    for pair in breaks.windows(2) {
        if let [a, b] = pair {
            if b.start < a.end() {
                return Err(Error::BadPlan {
                    break_id: b.id.clone(),
                    reason: format!("starts at {:?}, before break {:?} ends", b.start, a.id),
                });
            }
        }
    }
    let starts = content.period_starts();
    let known: Vec<(usize, &Period, Duration, Option<Duration>)> = content
        .periods
        .iter()
        .enumerate()
        .filter_map(|(i, p)| {
            Some((
                i,
                p,
                starts.get(i).copied().flatten()?,
                content.period_end(i, &starts),
            ))
        })
        .collect();
    let span = if content.is_dynamic() {
        content::content_span(&known)?
    } else {
        None
    };
    let mut out = Stitched {
        mpd: Mpd {
            periods: Vec::new(),
            ..content.clone()
        },
        placements: Vec::new(),
        warnings: Vec::new(),
    };
    // Where the content resumes after each break, decided in the Period where the break starts.
    let mut resume: Vec<Option<Duration>> = vec![None; breaks.len()];
    for (i, period) in content.periods.iter().enumerate() {
        let Some(start) = starts.get(i).copied().flatten() else {
            out.mpd.periods.push(period.clone());
            continue;
        };
        let end = content.period_end(i, &starts);
        let base = period
            .id
            .clone()
            .unwrap_or_else(|| format!("p{}", start.as_millis()));
        let overlapping: Vec<usize> = breaks
            .iter()
            .enumerate()
            .filter(|(_, b)| end.is_none_or(|e| b.start < e) && b.end() > start)
            .map(|(k, _)| k)
            .collect();
        if overlapping.is_empty() {
            out.mpd.periods.push(period.clone());
            continue;
        }
        let mut cursor = start;
        let mut piece_id = base.clone();
        for k in overlapping {
            let b = breaks[k];
            if b.start > cursor {
                if let Some(p) =
                    content::content_piece(period, start, cursor, Some(b.start), piece_id.clone())?
                {
                    out.mpd.periods.push(p);
                }
            }
            if b.start >= start {
                let r = place_break(b, period, start, end, &base, span, urls, &mut out)?;
                resume[k] = Some(r);
            }
            let r = resume[k].unwrap_or_else(|| b.end());
            cursor = cursor.max(r);
            piece_id = format!("{base}_{}_post", b.id);
        }
        if end.is_none_or(|e| cursor < e) {
            if let Some(p) = content::content_piece(period, start, cursor, end, piece_id)? {
                out.mpd.periods.push(p);
            }
        }
    }
    if let Some(t) = options.publish_time {
        out.mpd.publish_time = Some(t);
    }
    if let Some(base) = &options.content_base_url {
        if out.mpd.base_urls.is_empty() {
            out.mpd.base_urls.push(crate::model::BaseUrl {
                url: base.clone(),
                attrs: Vec::new(),
            });
        } else {
            for b in &mut out.mpd.base_urls {
                b.url = resolve_url(base, &b.url);
            }
        }
    }
    if options.strip_scte35_events {
        for p in &mut out.mpd.periods {
            p.event_streams
                .retain(|s| Scte35Scheme::from_uri(&s.scheme_id_uri).is_none());
        }
    }
    Ok(out)
}

/// Places one break's ads and slate as Periods after `period` (which starts at `start`); returns where the
/// content resumes.
#[allow(clippy::too_many_arguments)]
fn place_break(
    b: &PlannedBreak,
    period: &Period,
    start: Duration,
    period_end: Option<Duration>,
    base: &str,
    span: Option<(Duration, Duration)>,
    urls: &dyn AdUrls,
    out: &mut Stitched,
) -> Result<Duration> {
    let end = b.end();
    let mut cursor = b.start;
    let mut dropped = Vec::new();
    let visible = |from: Duration, to: Duration| match span {
        None => true,
        Some((window_start, edge)) => from < edge && to > window_start,
    };
    let emit = |kind: PlacementKind,
                index: usize,
                ad: &plan::Ad,
                from: Duration,
                plays: Duration,
                out: &mut Stitched| {
        let tag = match kind {
            PlacementKind::Ad => "ad",
            PlacementKind::Slate => "slate",
        };
        let period_id = format!("{base}_{}_{tag}{index}", b.id);
        let in_mpd = visible(from, from.saturating_add(plays));
        if in_mpd {
            let spec = ads::AdPeriodSpec {
                content: period,
                break_id: &b.id,
                period_id: period_id.clone(),
                index,
                is_slate: kind == PlacementKind::Slate,
                ad,
                start: from,
                plays,
            };
            let p = ads::ad_period(&spec, urls, &mut out.warnings);
            out.mpd.periods.push(p);
        }
        out.placements.push(Placement {
            period_id,
            break_id: b.id.clone(),
            kind,
            index,
            ad_id: ad.id.clone(),
            start: from,
            duration: plays,
            truncated: plays < ad.duration,
            in_mpd,
        });
    };
    for (k, ad) in b.ads.iter().enumerate() {
        let left = end.saturating_sub(cursor);
        if ad.duration < MIN_FILL || ad.renditions.is_empty() {
            continue;
        }
        if left < MIN_FILL {
            dropped.push(ad.id.clone());
            continue;
        }
        let plays = ad.duration.min(left);
        emit(PlacementKind::Ad, k, ad, cursor, plays, out);
        cursor += plays;
    }
    if !dropped.is_empty() {
        out.warnings.push(StitchWarning::AdsDropped {
            break_id: b.id.clone(),
            ad_ids: dropped,
        });
    }
    let Some(slate) = b
        .slate
        .as_ref()
        .filter(|s| s.duration >= MIN_FILL && !s.renditions.is_empty())
    else {
        return Ok(cursor);
    };
    // With number-based (`@duration`) content, resume on the next segment boundary: the slate covers the
    // rest of the break up to it. Timeline content resumes exactly at the break end (its first segment may
    // start before the Period, which presentationTimeOffset accounts for): snapping it would depend on which
    // segments this snapshot still holds, and move the Period between refreshes. A caller that wants
    // timeline content to resume on a boundary snaps the plan once, with [`segment_boundary_after`].
    let snapped = if period_end.is_none_or(|e| end < e) {
        content::next_boundary(period, start, end, false)?
            .filter(|b| b.saturating_sub(end) <= MAX_SNAP)
            .unwrap_or(end)
    } else {
        end
    };
    let mut index = 0;
    while snapped.saturating_sub(cursor) >= MIN_FILL {
        let plays = slate.duration.min(snapped - cursor);
        emit(PlacementKind::Slate, index, slate, cursor, plays, out);
        cursor += plays;
        index += 1;
    }
    Ok(cursor)
}

/// The first content segment boundary after `at` (of the first video representation, else the first one)
/// in the Period of `content` that holds `at`, when `at` falls inside a segment this snapshot holds or a
/// `@duration` template can compute; `None` when `at` is already on a boundary (within a millisecond) or
/// the segment is not known. Use it once, when the cue-in is learnt, to put [`PlannedBreak::ended_at`] on
/// a boundary; store the result in the plan so later snapshots need not hold that segment.
///
/// # Errors
/// As [`crate::segment::expand_timeline`].
pub fn segment_boundary_after(content: &Mpd, at: Duration) -> Result<Option<Duration>> {
    let starts = content.period_starts();
    for (i, period) in content.periods.iter().enumerate() {
        let Some(start) = starts.get(i).copied().flatten() else {
            continue;
        };
        let end = content.period_end(i, &starts);
        if at >= start && end.is_none_or(|e| at < e) {
            return content::next_boundary(period, start, at, true);
        }
    }
    Ok(None)
}

/// Resolves `relative` against `base` (RFC 3986 §5.2, for the forms MPDs use: absolute URLs, absolute
/// paths, relative paths).
#[must_use]
pub fn resolve_url(base: &str, relative: &str) -> String {
    if relative.contains("://") {
        return relative.to_string();
    }
    let origin_end = base
        .find("://")
        .and_then(|i| base[i + 3..].find('/').map(|j| i + 3 + j))
        .unwrap_or(base.len());
    if relative.starts_with('/') {
        return format!("{}{relative}", &base[..origin_end]);
    }
    let path_part = base.split(['?', '#']).next().unwrap_or(base);
    let dir_end = path_part.rfind('/').map_or(path_part.len(), |i| i + 1);
    let dir = if dir_end < origin_end {
        format!("{}/", &base[..origin_end])
    } else {
        path_part[..dir_end].to_string()
    };
    format!("{dir}{relative}")
}

#[cfg(test)]
mod tests;
