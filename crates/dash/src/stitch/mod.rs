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
//! What other players key on across Periods (DASH-IF IOP timing model, "Period connectivity"; video.js's
//! mpd-parser joins Periods by Representation@id, Shaka Player and dash.js by AdaptationSet and track
//! attributes):
//! - ad and slate Periods repeat the content's AdaptationSet@ids and every content Representation@id, each
//!   standing for the closest ad rendition, so a player keeps one track per content rendition;
//! - the content after a break signals `urn:mpeg:dash:period-connectivity:2015` to the content piece before
//!   it (same init, timeline jumps), or `urn:mpeg:dash:period-continuity:2015` when the break placed nothing;
//!   slate repetitions connect to the one before;
//! - an attribute without a value is left out (no `initialization=""` for TS ads), ad URLs carry the ad
//!   rendition's own `$RepresentationID$`, and ad Periods repeat the content's Period and AdaptationSet
//!   BaseURLs (mpd-parser groups tracks by resolved base URL).
//!
//! Period ids name the break they follow, so a caller must keep a break in the plan after its cue leaves
//! the origin's MPD: dropped, the content after it would take back the content Period's id (a Period@id
//! change players do not follow). It may be dropped once two later breaks have ended before the
//! time-shift window (nothing visible is then named after it, nor links to a piece named after it).
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
        match content::content_span(&known)? {
            Some(span) => Some(span),
            None => options.now.and_then(|now| clock_span(content, now)),
        }
    } else {
        None
    };
    // Periods are listed up to the lookahead past the live edge.
    let span = span
        .map(|(window_start, edge)| (window_start, edge.saturating_add(options.period_lookahead)));
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
        let mut piece = Piece {
            id: base.clone(),
            link: None,
        };
        // The id of the last piece that covers some time (in this MPD or not).
        let mut last_piece: Option<String> = None;
        for k in overlapping {
            let b = breaks[k];
            let abuts = b.start > cursor;
            if abuts {
                piece.emit(period, start, cursor, Some(b.start), span, &mut out)?;
                last_piece = Some(piece.id.clone());
            }
            if b.start >= start {
                let r = place_break(b, period, start, end, &base, span, urls, &mut out)?;
                resume[k] = Some(r);
            }
            let r = resume[k].unwrap_or_else(|| b.end());
            // The next piece plays the same Representations after the break (period connectivity); when the
            // break placed nothing, straight on from where this one stops (period continuity).
            let link = last_piece.clone().map(|to| Link {
                to,
                continuous: abuts && r <= b.start,
            });
            cursor = cursor.max(r);
            piece = Piece {
                id: format!("{base}_{}_post", b.id),
                link,
            };
        }
        if end.is_none_or(|e| cursor < e) {
            piece.emit(period, start, cursor, end, span, &mut out)?;
        }
    }
    if let Some(t) = options.publish_time {
        out.mpd.publish_time = Some(t);
    }
    if let Some(now) = options.now.filter(|_| content.is_dynamic()) {
        // DASH-IF IOP: a dynamic MPD names its clock. The session MPD is made per request, so the time of the
        // request itself is a fine one when the origin names none.
        if !out
            .mpd
            .extra_children
            .iter()
            .any(|c| c.local_name() == "UTCTiming")
        {
            let mut timing = crate::xml::XmlElement::new("UTCTiming");
            timing
                .attrs
                .push(("schemeIdUri".into(), UTC_TIMING_DIRECT.into()));
            timing.attrs.push((
                "value".into(),
                now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            ));
            crate::order::insert_ordered(
                crate::order::Parent::Mpd,
                &mut out.mpd.extra_children,
                timing,
            );
        }
    }
    if let Some(base) = &options.content_base_url {
        if out.mpd.base_urls.is_empty() {
            // The directory, not the MPD's own URL: every player resolves against either the same way, but a
            // directory is what BaseURL means (§5.6) and what naive joiners get right.
            out.mpd.base_urls.push(crate::model::BaseUrl {
                url: resolve_url(base, ""),
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

/// Period connectivity and continuity (ISO/IEC 23009-1 §5.3.2.4, DASH-IF IOP timing model "Period
/// connectivity"): the scheme URIs of the SupplementalProperty an AdaptationSet carries to say that its
/// Representations continue those of the same @id in the Period its @value names.
pub const PERIOD_CONNECTIVITY: &str = "urn:mpeg:dash:period-connectivity:2015";
/// See [`PERIOD_CONNECTIVITY`]: the sample timelines also run on without a gap.
pub const PERIOD_CONTINUITY: &str = "urn:mpeg:dash:period-continuity:2015";

/// The UTCTiming scheme whose @value is the time itself (ISO/IEC 23009-1 §5.8.5.7).
pub const UTC_TIMING_DIRECT: &str = "urn:mpeg:dash:utc:direct:2014";

/// A Period this one continues.
#[derive(Debug, Clone)]
pub(crate) struct Link {
    /// Its Period@id (present in the MPD or not: the signal does not change when it leaves the window).
    pub(crate) to: String,
    /// Whether the sample timelines are continuous (else only connected).
    pub(crate) continuous: bool,
}

/// Marks every AdaptationSet of `period` that has an @id as continuing the one of the same @id in
/// `link.to`, replacing connectivity or continuity signals copied from the content (they name the content's
/// previous Period, which the piece does not follow).
pub(crate) fn link_period(period: &mut Period, link: &Link) {
    let scheme = if link.continuous {
        PERIOD_CONTINUITY
    } else {
        PERIOD_CONNECTIVITY
    };
    for set in &mut period.adaptation_sets {
        set.extra_children.retain(|c| {
            !(c.local_name() == "SupplementalProperty"
                && matches!(
                    c.attr("schemeIdUri"),
                    Some(PERIOD_CONNECTIVITY | PERIOD_CONTINUITY)
                ))
        });
        if set.id.is_some() {
            let mut prop = crate::xml::XmlElement::new("SupplementalProperty");
            prop.attrs.push(("schemeIdUri".into(), scheme.into()));
            prop.attrs.push(("value".into(), link.to.clone()));
            crate::order::insert_ordered(
                crate::order::Parent::AdaptationSet,
                &mut set.extra_children,
                prop,
            );
        }
    }
}

/// One content piece to come: its id and the piece before it.
struct Piece {
    id: String,
    link: Option<Link>,
}

impl Piece {
    /// Adds the piece `[from, to)` of `period` to the output unless it has left the window (no segment
    /// left, or it ends before the window starts) or lies past the live edge.
    fn emit(
        &self,
        period: &Period,
        period_start: Duration,
        from: Duration,
        to: Option<Duration>,
        span: Option<(Duration, Duration)>,
        out: &mut Stitched,
    ) -> Result<()> {
        if let Some((window_start, edge)) = span {
            if to.is_some_and(|t| t <= window_start) || from >= edge {
                return Ok(());
            }
        }
        if let Some(mut p) =
            content::content_piece(period, period_start, from, to, self.id.clone())?
        {
            if let Some(link) = &self.link {
                link_period(&mut p, link);
            }
            out.mpd.periods.push(p);
        }
        Ok(())
    }
}

/// The time-shift window and live edge of a dynamic MPD at `now`, from its availabilityStartTime and
/// timeShiftBufferDepth (an unbounded window without one).
fn clock_span(content: &Mpd, now: chrono::DateTime<chrono::Utc>) -> Option<(Duration, Duration)> {
    let ast = content.availability_start_time?;
    let edge = (now - ast).to_std().ok()?;
    let window_start = content
        .time_shift_buffer_depth
        .map_or(Duration::ZERO, |d| edge.saturating_sub(d));
    Some((window_start, edge))
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
            let mut p = ads::ad_period(&spec, urls, &mut out.warnings);
            // Slate repeats the same media: each repetition connects to the one before.
            if kind == PlacementKind::Slate && index > 0 {
                let link = Link {
                    to: format!("{base}_{}_{tag}{}", b.id, index - 1),
                    continuous: false,
                };
                link_period(&mut p, &link);
            }
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

#[cfg(test)]
mod interop_tests;
