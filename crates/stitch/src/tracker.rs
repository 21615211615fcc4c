//! Per-channel memory of ad breaks across origin refreshes.
//!
//! A live window shows a break only while its segments are in it: the `CUE-OUT` slides out long before the viewer
//! who joined late leaves the break. The tracker is fed every refresh of the channel's origin window (one poller
//! per channel, shared by all its viewers) and keeps what stitching needs for as long as any viewer may need it:
//! the break's first media sequence number, the durations of the content segments it replaced, where it ended,
//! and the origin's discontinuity accounting around it (RFC 8216bis §6.2.2: the viewer's discontinuity sequence
//! must count exactly the discontinuities that slid out of *their* playlist).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// One content segment of the origin window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OriginSegment {
    /// Media sequence number (RFC 8216bis §4.4.3.2).
    pub msn: u64,
    /// EXTINF duration in microseconds.
    pub duration_micros: u64,
    /// Whether an `EXT-X-DISCONTINUITY` precedes it at the origin.
    pub discontinuity: bool,
    /// Its `EXT-X-PROGRAM-DATE-TIME`, explicit or carried forward from an earlier segment.
    pub program_date_time: Option<DateTime<Utc>>,
}

/// The origin's current window: what one refresh of a media playlist returned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OriginWindow {
    /// `EXT-X-DISCONTINUITY-SEQUENCE` of the playlist (0 when absent).
    pub discontinuity_sequence: u64,
    /// Segments in playlist order; media sequence numbers must be consecutive.
    pub segments: Vec<OriginSegment>,
}

impl OriginWindow {
    /// Checks the window's segments are consecutive.
    pub fn validate(&self) -> Result<()> {
        for pair in self.segments.windows(2) {
            if pair[1].msn != pair[0].msn + 1 {
                return Err(Error::NonContiguousWindow { msn: pair[1].msn });
            }
        }
        Ok(())
    }

    /// Discontinuity sequence number of each segment: the playlist's value plus the discontinuity tags up to and
    /// including the segment (RFC 8216bis §4.4.3.3).
    pub fn segment_dsns(&self) -> Vec<u64> {
        let mut dsn = self.discontinuity_sequence;
        self.segments
            .iter()
            .map(|s| {
                dsn += u64::from(s.discontinuity);
                dsn
            })
            .collect()
    }

    fn index_of(&self, msn: u64) -> Option<usize> {
        let first = self.segments.first()?.msn;
        let i = usize::try_from(msn.checked_sub(first)?).ok()?;
        (i < self.segments.len()).then_some(i)
    }
}

/// A break as read from one refresh of the origin, in whatever marker dialect (normalised upstream).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObservedBreak {
    /// The break's id (SCTE-35 event id, DATERANGE ID, or one derived from the start).
    pub id: String,
    /// Media sequence number of the first break segment visible in this window.
    pub first_msn: u64,
    /// Break time already elapsed at `first_msn` (0 when the break's start is in the window).
    pub elapsed_at_first_micros: u64,
    /// Planned duration, when signalled.
    pub planned_micros: Option<u64>,
    /// First content segment after the break, when its end is signalled in this window.
    pub end_msn: Option<u64>,
    /// Last segment this window explicitly marks as inside the break (e.g. `EXT-X-CUE-OUT-CONT`).
    pub signalled_through_msn: Option<u64>,
    /// The SCTE-35 cue as found (base64 or hex), when the marker carried one.
    pub scte35: Option<String>,
    /// The SCTE-35 event id (splice_event_id or segmentation_event_id), when known.
    pub event_id: Option<u32>,
}

/// A break as remembered by the channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackedBreak {
    /// The break's id.
    pub id: String,
    /// Media sequence number of the first replaced content segment the channel saw.
    pub start_msn: u64,
    /// Break time already elapsed at `start_msn`: non-zero only for a break first seen mid-way (e.g. after a
    /// restart), whose earlier part nobody will be shown.
    pub start_offset_micros: u64,
    /// Program date time of the segment at `start_msn`.
    pub start_pdt: Option<DateTime<Utc>>,
    /// Planned duration, when signalled.
    pub planned_micros: Option<u64>,
    /// Discontinuity sequence number of the content segment just before `start_msn`.
    pub dsn_before: u64,
    /// Durations of the replaced content segments, from `start_msn` on.
    pub replaced_micros: Vec<u64>,
    /// How many replaced content segments carried an origin `EXT-X-DISCONTINUITY` (they are dropped).
    pub replaced_discontinuities: u64,
    /// First content segment after the break, once known.
    pub end_msn: Option<u64>,
    /// Whether the origin's segment at `end_msn` carried its own discontinuity.
    pub end_discontinuity: bool,
    /// The SCTE-35 cue, when known.
    pub scte35: Option<String>,
    /// The SCTE-35 event id, when known.
    pub event_id: Option<u32>,
}

impl TrackedBreak {
    /// Whether the break has ended.
    pub fn is_ended(&self) -> bool {
        self.end_msn.is_some()
    }

    /// Number of content segments replaced so far.
    pub fn replaced_count(&self) -> u64 {
        self.replaced_micros.len() as u64
    }

    /// Whether content segment `msn` lies inside the break (as known so far).
    pub fn contains(&self, msn: u64) -> bool {
        msn >= self.start_msn && self.end_msn.is_none_or(|end| msn < end)
    }

    /// Break time elapsed at the start of content segment `msn` (which must be at or after `start_msn`).
    pub fn elapsed_before_micros(&self, msn: u64) -> u64 {
        let n = usize::try_from(msn.saturating_sub(self.start_msn)).unwrap_or(usize::MAX);
        self.start_offset_micros + self.replaced_micros.iter().take(n).sum::<u64>()
    }

    /// Break time covered by all replaced segments seen so far (the actual duration once ended).
    pub fn elapsed_micros(&self) -> u64 {
        self.start_offset_micros + self.replaced_micros.iter().sum::<u64>()
    }
}

/// Tracks a channel's breaks across refreshes. Feed it every refresh with [`BreakTracker::observe`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BreakTracker {
    breaks: Vec<TrackedBreak>,
    max_breaks: usize,
    tolerance_micros: u64,
}

/// Breaks kept by default: a week of one break every two minutes is ~5,000.
const DEFAULT_MAX_BREAKS: usize = 10_000;

impl BreakTracker {
    /// A tracker that ends a break implicitly when its planned duration has played out (within
    /// `tolerance_micros`) and the origin no longer marks segments as inside it.
    pub fn new(tolerance_micros: u64) -> Self {
        BreakTracker {
            breaks: Vec::new(),
            max_breaks: DEFAULT_MAX_BREAKS,
            tolerance_micros,
        }
    }

    /// Breaks known, oldest first.
    pub fn breaks(&self) -> &[TrackedBreak] {
        &self.breaks
    }

    /// Updates the breaks with one refresh of the origin. Returns the indexes of breaks first seen in it.
    pub fn observe(
        &mut self,
        window: &OriginWindow,
        observed: &[ObservedBreak],
    ) -> Result<Vec<usize>> {
        window.validate()?;
        let dsns = window.segment_dsns();
        let mut new = Vec::new();
        for ob in observed {
            // A cue repeated on later refreshes, or a mid-break cue inside a break we track, is not a new break;
            // nor is a lone end whose start we never saw (nothing of it is left to replace).
            if self.find(ob).is_some() || ob.end_msn.is_some_and(|end| end <= ob.first_msn) {
                continue;
            }
            let Some(i) = window.index_of(ob.first_msn) else {
                continue;
            };
            let seg = &window.segments[i];
            let dsn_before = dsns[i] - u64::from(seg.discontinuity);
            self.breaks.push(TrackedBreak {
                id: ob.id.clone(),
                start_msn: ob.first_msn,
                start_offset_micros: ob.elapsed_at_first_micros,
                start_pdt: seg.program_date_time,
                planned_micros: ob.planned_micros,
                dsn_before,
                replaced_micros: Vec::new(),
                replaced_discontinuities: 0,
                end_msn: None,
                end_discontinuity: false,
                scte35: ob.scte35.clone(),
                event_id: ob.event_id,
            });
            new.push(self.breaks.len() - 1);
        }
        self.breaks.sort_by_key(|b| b.start_msn);
        // Indexes may have moved in the sort; new breaks are the ones with no replaced segments yet.
        let new_ids: Vec<String> = new.iter().map(|&i| self.breaks[i].id.clone()).collect();
        for ob in observed {
            if let Some(b) = self.find(ob) {
                let tracked = &mut self.breaks[b];
                if tracked.end_msn.is_none() {
                    if let Some(end) = ob.end_msn.filter(|&end| end >= tracked.start_msn) {
                        tracked.end_msn = Some(end);
                        tracked.end_discontinuity = window
                            .index_of(end)
                            .is_some_and(|i| window.segments[i].discontinuity);
                    }
                    if tracked.planned_micros.is_none() {
                        tracked.planned_micros = ob.planned_micros;
                    }
                }
                // Some dialects carry the cue only on later tags (CUE-OUT-CONT with SCTE35=): take it when it comes.
                if tracked.scte35.is_none() {
                    tracked.scte35.clone_from(&ob.scte35);
                }
                if tracked.event_id.is_none() {
                    tracked.event_id = ob.event_id;
                }
            }
        }
        let tolerance = self.tolerance_micros;
        let signalled: Vec<(u64, Option<u64>)> = observed
            .iter()
            .map(|ob| (ob.first_msn, ob.signalled_through_msn))
            .collect();
        for tracked in self
            .breaks
            .iter_mut()
            .filter(|b| !b.is_ended() || b.replaced_count() < b.span())
        {
            let through = signalled
                .iter()
                .filter(|(first, _)| tracked.contains(*first))
                .filter_map(|(_, through)| *through)
                .max();
            extend_break(tracked, window, through, tolerance);
        }
        if self.breaks.len() > self.max_breaks {
            let excess = self.breaks.len() - self.max_breaks;
            self.breaks.drain(..excess);
        }
        Ok(new_ids
            .iter()
            .filter_map(|id| self.breaks.iter().position(|b| &b.id == id))
            .collect())
    }

    fn find(&self, ob: &ObservedBreak) -> Option<usize> {
        // Same id at or after the start counts too: a marker can outlive the break's last segment (a DATERANGE or
        // CUE-IN still in the window on the first content segment after it).
        self.breaks.iter().position(|b| {
            b.contains(ob.first_msn)
                || (b.id == ob.id
                    && ob.first_msn >= b.start_msn
                    && b.end_msn.is_none_or(|end| ob.first_msn <= end))
        })
    }
}

impl TrackedBreak {
    /// Content segments between start and end, once ended.
    fn span(&self) -> u64 {
        self.end_msn.map_or(u64::MAX, |end| end - self.start_msn)
    }
}

/// Appends the window's segments that fall inside the break, and ends it implicitly when due.
fn extend_break(
    tracked: &mut TrackedBreak,
    window: &OriginWindow,
    signalled_through: Option<u64>,
    tolerance: u64,
) {
    for seg in &window.segments {
        let next = tracked.start_msn + tracked.replaced_count();
        if seg.msn < next {
            continue;
        }
        if let Some(end) = tracked.end_msn {
            if seg.msn >= end {
                if seg.msn == end {
                    tracked.end_discontinuity = seg.discontinuity;
                }
                break;
            }
        }
        // A missed refresh: segments slid out unseen. Assume they lasted like this one.
        while tracked.start_msn + tracked.replaced_count() < seg.msn {
            tracked.replaced_micros.push(seg.duration_micros);
        }
        let planned_over = tracked
            .planned_micros
            .is_some_and(|planned| tracked.elapsed_micros() + tolerance >= planned);
        let still_signalled = signalled_through.is_some_and(|through| seg.msn <= through);
        if tracked.end_msn.is_none() && planned_over && !still_signalled {
            tracked.end_msn = Some(seg.msn);
            tracked.end_discontinuity = seg.discontinuity;
            break;
        }
        tracked.replaced_micros.push(seg.duration_micros);
        tracked.replaced_discontinuities += u64::from(seg.discontinuity);
    }
}
