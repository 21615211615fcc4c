//! Rendering one viewer's window from the origin's window, the channel's breaks and the viewer's pod plans.
//!
//! Pure and deterministic: the same inputs give the same window on any node, and successive refreshes of one
//! viewer agree with each other (RFC 8216bis §6.2.2) because every media sequence number is a fixed function of
//! the break history (see the crate docs for the mapping).

use chrono::{DateTime, TimeDelta, Utc};

use crate::Result;
use crate::pod::{Item, PodPlan};
use crate::tracker::{OriginWindow, TrackedBreak};

/// What a rendered segment plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Element {
    /// The origin's segment at this index of the origin window.
    Content {
        /// Index into [`OriginWindow::segments`].
        index: usize,
    },
    /// An item of the viewer's pod for a break.
    Pod {
        /// Index into the tracked breaks.
        break_index: usize,
        /// Index of the item in the pod timeline.
        item_index: u64,
        /// The item.
        item: Item,
    },
}

/// One segment of a viewer's window.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedSegment {
    /// What plays.
    pub element: Element,
    /// The viewer's media sequence number for it.
    pub msn: u64,
    /// The viewer's discontinuity sequence number for it (counting its own discontinuity).
    pub dsn: u64,
    /// Whether an `EXT-X-DISCONTINUITY` precedes it.
    pub discontinuity: bool,
    /// Duration in microseconds.
    pub duration_micros: u64,
    /// Program date time, when the origin provides one.
    pub program_date_time: Option<DateTime<Utc>>,
}

/// A viewer's window, ready to be written as a media playlist.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RenderedWindow {
    /// `EXT-X-MEDIA-SEQUENCE`.
    pub media_sequence: u64,
    /// `EXT-X-DISCONTINUITY-SEQUENCE`.
    pub discontinuity_sequence: u64,
    /// The segments, in order.
    pub segments: Vec<RenderedSegment>,
}

/// The per-break figures the mapping needs, for one viewer.
struct BreakShape<'a> {
    tracked: &'a TrackedBreak,
    plan: &'a PodPlan,
    /// First item shown (non-zero when the break was first seen mid-way).
    k0: u64,
    /// Items shown in all, once the break has ended.
    final_items: Option<u64>,
    /// Viewer media sequence offset accumulated before this break.
    msn_offset: i64,
    /// Viewer discontinuity offset accumulated before this break.
    dsn_offset: i64,
}

impl BreakShape<'_> {
    /// Discontinuities among items `k0..k` (the first shown item always starts with one).
    fn discontinuities_to(&self, k: u64) -> u64 {
        if k <= self.k0 {
            return 0;
        }
        let first_forced = u64::from(!self.plan.item(self.k0).discontinuity);
        self.plan.discontinuities_before(k) - self.plan.discontinuities_before(self.k0)
            + first_forced
    }

    /// (media sequence, discontinuity) deltas this break adds for content after it, once ended.
    fn deltas(&self) -> Option<(i64, i64)> {
        let n = self.final_items?;
        let l = self.tracked.replaced_count() as i64;
        let discs = self.discontinuities_to(self.k0 + n) as i64;
        let dsn = discs + 1
            - self.tracked.replaced_discontinuities as i64
            - i64::from(self.tracked.end_discontinuity);
        Some((n as i64 - l, dsn))
    }
}

/// Renders a viewer's window.
///
/// `plan_for(i, break)` gives the viewer's plan for tracked break `i`, or `None` when the viewer is not
/// personalised for it (its content plays untouched). A plan must not change once the viewer has seen the break.
/// `tolerance_micros` lets an item end that much after the content published so far (EXTINF rounding).
pub fn render_window<'a>(
    window: &OriginWindow,
    breaks: &'a [TrackedBreak],
    mut plan_for: impl FnMut(usize, &TrackedBreak) -> Option<&'a PodPlan>,
    tolerance_micros: u64,
) -> Result<RenderedWindow> {
    window.validate()?;
    let Some(last) = window.segments.last() else {
        return Ok(RenderedWindow::default());
    };
    let dsns = window.segment_dsns();
    let mut shapes: Vec<(usize, BreakShape<'a>)> = Vec::new();
    let (mut msn_offset, mut dsn_offset) = (0i64, 0i64);
    for (i, tracked) in breaks.iter().enumerate() {
        if tracked.start_msn > last.msn {
            break;
        }
        let Some(plan) = plan_for(i, tracked) else {
            continue;
        };
        let k0 = if tracked.start_offset_micros == 0 {
            0
        } else {
            plan.first_ending_after(tracked.start_offset_micros)
        };
        // Once the break has ended, the item playing across its end (typically slate) is shown cut to end with
        // the break, so content resumes with no hole in the timeline; a remainder within the tolerance is dropped.
        // It cannot have been shown before at full length: items are only shown once content covers them.
        let final_items = tracked.is_ended().then(|| {
            let elapsed = tracked.elapsed_micros();
            let whole = plan.count_ending_by(elapsed + tolerance_micros);
            let remainder = plan.item(whole).start_micros + tolerance_micros < elapsed;
            (whole + u64::from(remainder)).saturating_sub(k0)
        });
        let shape = BreakShape {
            tracked,
            plan,
            k0,
            final_items,
            msn_offset,
            dsn_offset,
        };
        if let Some((dm, dd)) = shape.deltas() {
            msn_offset += dm;
            dsn_offset += dd;
        }
        shapes.push((i, shape));
    }

    let mut out = Vec::with_capacity(window.segments.len() + 4);
    let mut idx = 0;
    while idx < window.segments.len() {
        let seg = &window.segments[idx];
        if let Some((bi, shape)) = shapes.iter().find(|(_, s)| s.tracked.contains(seg.msn)) {
            // A run of replaced content segments: emit the pod items covering the same break time.
            let mut end_idx = idx;
            while end_idx + 1 < window.segments.len()
                && shape.tracked.contains(window.segments[end_idx + 1].msn)
            {
                end_idx += 1;
            }
            let tracked = shape.tracked;
            let t_from = tracked.elapsed_before_micros(seg.msn);
            let run_reaches_end = tracked.end_msn == Some(window.segments[end_idx].msn + 1);
            let k_first = shape.k0.max(shape.plan.first_ending_after(t_from));
            let k_end = match (shape.final_items, run_reaches_end) {
                (Some(n), true) => shape.k0 + n,
                (final_items, _) => {
                    let t_to = tracked.elapsed_before_micros(window.segments[end_idx].msn + 1);
                    let k = shape.plan.count_ending_by(t_to + tolerance_micros);
                    final_items.map_or(k, |n| k.min(shape.k0 + n))
                }
            };
            for k in k_first..k_end {
                let mut item = shape.plan.item(k);
                if tracked.is_ended() {
                    let end = tracked.elapsed_micros();
                    if item.end_micros() > end + tolerance_micros {
                        item.duration_micros = end.saturating_sub(item.start_micros);
                    }
                }
                let msn = offset(tracked.start_msn + (k - shape.k0), shape.msn_offset);
                let dsn = offset(
                    tracked.dsn_before + shape.discontinuities_to(k + 1),
                    shape.dsn_offset,
                );
                let since_start = item
                    .start_micros
                    .saturating_sub(tracked.start_offset_micros);
                out.push(RenderedSegment {
                    element: Element::Pod {
                        break_index: *bi,
                        item_index: k,
                        item,
                    },
                    msn,
                    dsn,
                    discontinuity: item.discontinuity || k == shape.k0,
                    duration_micros: item.duration_micros,
                    // Checked: an origin's PDT near the end of time must not take the server down.
                    program_date_time: tracked.start_pdt.and_then(|pdt| {
                        pdt.checked_add_signed(TimeDelta::microseconds(
                            i64::try_from(since_start).unwrap_or(i64::MAX),
                        ))
                    }),
                });
            }
            idx = end_idx + 1;
            continue;
        }
        // Content: offset by every personalised break that ended at or before it.
        let (mut dm, mut dd, mut forced) = (0i64, 0i64, false);
        for (_, shape) in &shapes {
            match shape.tracked.end_msn {
                Some(end) if end <= seg.msn => {
                    if let Some((m, d)) = shape.deltas() {
                        dm = shape.msn_offset + m;
                        dd = shape.dsn_offset + d;
                    }
                    forced |= end == seg.msn;
                }
                _ => {}
            }
        }
        out.push(RenderedSegment {
            element: Element::Content { index: idx },
            msn: offset(seg.msn, dm),
            dsn: offset(dsns[idx], dd),
            discontinuity: seg.discontinuity || forced,
            duration_micros: seg.duration_micros,
            program_date_time: seg.program_date_time,
        });
        idx += 1;
    }
    let (media_sequence, discontinuity_sequence) = out.first().map_or((0, 0), |first| {
        (first.msn, first.dsn - u64::from(first.discontinuity))
    });
    Ok(RenderedWindow {
        media_sequence,
        discontinuity_sequence,
        segments: out,
    })
}

fn offset(value: u64, delta: i64) -> u64 {
    value.saturating_add_signed(delta)
}
