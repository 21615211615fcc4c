//! Ad breaks in an MPD: SCTE-35 cues from EventStreams (SCTE 214-1 §6.7: `urn:scte:scte35:2013:xml` and
//! `urn:scte:scte35:2014:xml+bin`), paired into breaks with a start and a duration on the presentation
//! timeline, and the InbandEventStream declarations that say more cues travel as `emsg` boxes inside the
//! media segments (ISO/IEC 23009-1 §5.10.3), which only the segments can tell (see [`crate::emsg`]).
//!
//! An event's time is Period start + (`Event@presentationTime` − `EventStream@presentationTimeOffset`) /
//! `EventStream@timescale` (§5.10.2.2), rounded to the nanosecond. A break's duration comes from, in order:
//! the cue (`break_duration`, or `segmentation_duration` of the break-start descriptor), `Event@duration`,
//! the matching cue-in, and, for Period-based signalling as packagers such as AWS Elemental MediaPackage
//! write it (the break is its own Period, the cue at its start), the Period's length.

use std::time::Duration;

use interlude_scte35::{SegmentationTypeId, SegmentationUpid, SpliceInfoSection};

use crate::error::Error;
use crate::model::Mpd;
use crate::scte35xml::{Scte35Scheme, read_event_payload};
use crate::time::ticks_to_duration;

/// Whether a cue starts or ends a break.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CueDirection {
    /// Leaves the network feed: a break starts (splice_insert out, or a break-start segmentation type).
    Out,
    /// Returns to the network feed: a break ends.
    In,
    /// Neither (splice_null, content identification, program boundaries, a cancelled event).
    Other,
}

/// One SCTE-35 cue found in an MPD EventStream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cue {
    /// Index of the Period in [`Mpd::periods`].
    pub period_index: usize,
    /// Its Period@id.
    pub period_id: Option<String>,
    /// The carriage.
    pub scheme: Scte35Scheme,
    /// `Event@id`.
    pub event_id: Option<String>,
    /// When the cue takes effect, on the presentation timeline (from the presentation start, i.e. from
    /// availabilityStartTime for a dynamic MPD).
    pub time: Duration,
    /// `Event@duration`, when given and non-zero.
    pub event_duration: Option<Duration>,
    /// Out, in or other.
    pub direction: CueDirection,
    /// The decoded section (from XML or binary).
    pub section: SpliceInfoSection,
}

impl Cue {
    /// `splice_event_id`, else the segmentation_event_id of the break descriptor.
    #[must_use]
    pub fn splice_event_id(&self) -> Option<u32> {
        self.section.event_id()
    }

    /// The duration the cue itself signals.
    #[must_use]
    pub fn signalled_duration(&self) -> Option<Duration> {
        self.section.break_duration().filter(|d| !d.is_zero())
    }

    /// The first segmentation descriptor that starts or ends a break, else the first one.
    #[must_use]
    pub fn segmentation(&self) -> Option<(SegmentationTypeId, &SegmentationUpid)> {
        let mut all = self.section.segmentation_descriptors();
        let first = self.section.segmentation_descriptors().find(|d| {
            d.segmentation_type_id.is_break_start() || d.segmentation_type_id.is_break_end()
        });
        first
            .or_else(|| all.next())
            .map(|d| (d.segmentation_type_id, &d.segmentation_upid))
    }
}

/// Where a break's duration came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DurationSource {
    /// The SCTE-35 cue (`break_duration` or `segmentation_duration`).
    Signal,
    /// `Event@duration`.
    EventDuration,
    /// The time of the matching cue-in.
    CueIn,
    /// The length of the Period the break starts (Period-based signalling).
    Period,
}

/// An ad break: a cue-out with what is known of its length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdBreak {
    /// A stable id: the event id and the start in milliseconds (`e{id}-{ms}`, or `t{ms}` without an id),
    /// the same on every refresh of the MPD.
    pub id: String,
    /// Start on the presentation timeline.
    pub start: Duration,
    /// The planned length, when known.
    pub duration: Option<Duration>,
    /// Where [`AdBreak::duration`] came from.
    pub duration_source: Option<DurationSource>,
    /// When the matching cue-in takes effect, if one is in the MPD.
    pub ended_at: Option<Duration>,
    /// `splice_event_id` or `segmentation_event_id`.
    pub splice_event_id: Option<u32>,
    /// The break descriptor's `segmentation_type_id`, for time_signal cues.
    pub segmentation_type_id: Option<SegmentationTypeId>,
    /// The cue-out.
    pub out: Cue,
    /// The matching cue-in.
    pub cue_in: Option<Cue>,
}

impl AdBreak {
    /// Start in seconds.
    #[must_use]
    pub fn start_secs(&self) -> f64 {
        self.start.as_secs_f64()
    }

    /// Planned length in seconds.
    #[must_use]
    pub fn duration_secs(&self) -> Option<f64> {
        self.duration.map(|d| d.as_secs_f64())
    }
}

/// An InbandEventStream declaring SCTE-35 in the segments of an adaptation set or a representation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InbandScte35 {
    /// Index of the Period.
    pub period_index: usize,
    /// Its Period@id.
    pub period_id: Option<String>,
    /// Index of the AdaptationSet in the Period.
    pub adaptation_set_index: usize,
    /// AdaptationSet@id.
    pub adaptation_set_id: Option<String>,
    /// The Representation@id when declared on a representation, `None` for the whole adaptation set.
    pub representation_id: Option<String>,
    /// @schemeIdUri.
    pub scheme_id_uri: String,
    /// @value (often the PID of the SCTE-35 stream in the source).
    pub value: Option<String>,
}

/// Everything SCTE-35 an MPD holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    /// Every cue in time order.
    pub cues: Vec<Cue>,
    /// Breaks, in time order: cue-outs (duplicates at the same time with the same id merged) with their
    /// duration and cue-in.
    pub breaks: Vec<AdBreak>,
    /// InbandEventStream declarations of SCTE-35: cues in `emsg` boxes this scan cannot see.
    pub inband: Vec<InbandScte35>,
    /// Events that could not be read, each an [`Error::Scte35`] with the Event's path; the rest of the MPD
    /// is scanned regardless.
    pub problems: Vec<Error>,
}

/// Finds every SCTE-35 cue, break and in-band declaration in `mpd`.
#[must_use]
pub fn scan(mpd: &Mpd) -> Scan {
    let starts = mpd.period_starts();
    let mut out = Scan::default();
    for (pi, period) in mpd.periods.iter().enumerate() {
        for (ai, set) in period.adaptation_sets.iter().enumerate() {
            let declared = set.inband_event_streams.iter().map(|d| (None, d)).chain(
                set.representations.iter().flat_map(|r| {
                    r.inband_event_streams
                        .iter()
                        .map(move |d| (Some(r.id.clone()), d))
                }),
            );
            for (rep, d) in declared {
                if Scte35Scheme::from_uri(&d.scheme_id_uri).is_some() {
                    out.inband.push(InbandScte35 {
                        period_index: pi,
                        period_id: period.id.clone(),
                        adaptation_set_index: ai,
                        adaptation_set_id: set.id.clone(),
                        representation_id: rep,
                        scheme_id_uri: d.scheme_id_uri.clone(),
                        value: d.value.clone(),
                    });
                }
            }
        }
        for (si, stream) in period.event_streams.iter().enumerate() {
            let Some(scheme) = Scte35Scheme::from_uri(&stream.scheme_id_uri) else {
                continue;
            };
            let timescale = stream.timescale();
            let pto = stream.presentation_time_offset.unwrap_or(0);
            for (ei, event) in stream.events.iter().enumerate() {
                let path = format!(
                    "MPD/Period[{}]/EventStream[{}]/Event[{}]",
                    pi + 1,
                    si + 1,
                    ei + 1
                );
                let Some(period_start) = starts.get(pi).copied().flatten() else {
                    out.problems.push(Error::Scte35 {
                        path,
                        reason:
                            "the Period's start is unknown (no @start and no earlier @duration)"
                                .into(),
                    });
                    continue;
                };
                let section = match read_event_payload(&event.content) {
                    Ok(s) => s,
                    Err(reason) => {
                        out.problems.push(Error::Scte35 { path, reason });
                        continue;
                    }
                };
                let ticks = event.presentation_time.unwrap_or(0).saturating_sub(pto);
                let offset = ticks_to_duration(ticks, timescale).unwrap_or_default();
                let direction = if section.is_ad_break_start() {
                    CueDirection::Out
                } else if section.is_ad_break_end() {
                    CueDirection::In
                } else {
                    CueDirection::Other
                };
                out.cues.push(Cue {
                    period_index: pi,
                    period_id: period.id.clone(),
                    scheme,
                    event_id: event.id.clone(),
                    time: period_start.saturating_add(offset),
                    event_duration: event
                        .duration
                        .and_then(|d| ticks_to_duration(d, timescale))
                        .filter(|d| !d.is_zero()),
                    direction,
                    section,
                });
            }
        }
    }
    out.cues.sort_by_key(|c| c.time);
    out.breaks = pair(mpd, &starts, &out.cues);
    out
}

fn pair(mpd: &Mpd, starts: &[Option<Duration>], cues: &[Cue]) -> Vec<AdBreak> {
    let mut breaks: Vec<AdBreak> = Vec::new();
    let outs: Vec<&Cue> = cues
        .iter()
        .filter(|c| c.direction == CueDirection::Out)
        .collect();
    for (k, out) in outs.iter().enumerate() {
        let id = out.splice_event_id();
        if let Some(prev) = breaks
            .iter_mut()
            .find(|b| b.start == out.time && b.splice_event_id == id)
        {
            // A repeat of the same cue (packagers emit one per descriptor): keep what it adds.
            if prev.duration.is_none() {
                if let Some(d) = out.signalled_duration() {
                    prev.duration = Some(d);
                    prev.duration_source = Some(DurationSource::Signal);
                }
            }
            continue;
        }
        let next_out = outs
            .get(k + 1..)
            .and_then(|rest| rest.iter().find(|o| o.time > out.time))
            .map(|o| o.time);
        let next_same_id = outs
            .get(k + 1..)
            .and_then(|rest| {
                rest.iter()
                    .find(|o| o.time > out.time && o.splice_event_id() == id)
            })
            .map(|o| o.time);
        // The cue-in with the same event id (possibly at the same instant: a zero-length placement),
        // before that id starts another break; else the next anonymous cue-in before the next break.
        let by_id = id.and_then(|id| {
            cues.iter().find(|c| {
                c.direction == CueDirection::In
                    && c.time >= out.time
                    && c.splice_event_id() == Some(id)
                    && next_same_id.is_none_or(|n| c.time < n)
            })
        });
        let owned_by_other = |c: &Cue| {
            c.splice_event_id()
                .is_some_and(|cid| outs.iter().any(|o| o.splice_event_id() == Some(cid)))
        };
        let cue_in = by_id
            .or_else(|| {
                cues.iter().find(|c| {
                    c.direction == CueDirection::In
                        && c.time > out.time
                        && next_out.is_none_or(|n| c.time <= n)
                        && !owned_by_other(c)
                })
            })
            .cloned();
        let (duration, source) = if let Some(d) = out.signalled_duration() {
            (Some(d), Some(DurationSource::Signal))
        } else if let Some(d) = out.event_duration {
            (Some(d), Some(DurationSource::EventDuration))
        } else if let Some(i) = &cue_in {
            (Some(i.time - out.time), Some(DurationSource::CueIn))
        } else if starts.get(out.period_index).copied().flatten() == Some(out.time) {
            let end = mpd.period_end(out.period_index, starts);
            match end
                .and_then(|e| e.checked_sub(out.time))
                .filter(|d| !d.is_zero())
            {
                Some(d) => (Some(d), Some(DurationSource::Period)),
                None => (None, None),
            }
        } else {
            (None, None)
        };
        let ms = out.time.as_millis();
        breaks.push(AdBreak {
            id: match id {
                Some(id) => format!("e{id}-{ms}"),
                None => format!("t{ms}"),
            },
            start: out.time,
            duration,
            duration_source: source,
            ended_at: cue_in.as_ref().map(|c| c.time),
            splice_event_id: id,
            segmentation_type_id: out.segmentation().map(|(t, _)| t),
            out: (*out).clone(),
            cue_in,
        });
    }
    breaks
}
