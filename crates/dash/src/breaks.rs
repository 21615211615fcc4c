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
//!
//! Signals are read per field: a field a break can do without that does not read (a UPID, a
//! `BreakDuration`) is left out with a [`ScanWarning::FieldIgnored`], and the cue stays. When the cue's and
//! the Event's durations disagree by more than [`DURATION_DISAGREEMENT`] times (a `BreakDuration` written in
//! seconds where 90 kHz ticks belong, an `Event@duration` in the wrong timescale), the one inside
//! [`PLAUSIBLE_BREAK`] is taken — the one closer to the cue-in or the Period's length when both or neither
//! are — with a [`ScanWarning::DurationsDisagree`].

use std::fmt;
use std::ops::RangeInclusive;
use std::time::Duration;

use interlude_scte35::{SegmentationTypeId, SegmentationUpid, SpliceInfoSection};

use crate::error::Error;
use crate::model::Mpd;
use crate::scte35xml::{Scte35Scheme, read_event_payload_with_warnings};
use crate::time::ticks_to_duration;

/// Break lengths taken at face value; a stated duration outside is suspect (0.33 ms is a 30 s break written
/// in seconds where 90 kHz ticks belong; 31 days is 30 s of ticks read as seconds).
pub const PLAUSIBLE_BREAK: RangeInclusive<Duration> =
    Duration::from_secs(1)..=Duration::from_secs(24 * 3600);

/// How many times apart two stated durations of one break must be to count as contradicting each other
/// (rounding and an Event@duration that covers a pre-roll differ by far less).
pub const DURATION_DISAGREEMENT: u32 = 10;

/// Something the scan read around: the MPD is used, but a producer got this wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanWarning {
    /// A field of an Event's SCTE-35 signal did not read; the cue was kept without it.
    FieldIgnored {
        /// Element path of the Event.
        path: String,
        /// What did not read and what was done instead.
        reason: String,
    },
    /// The cue's duration and `Event@duration` disagree by more than [`DURATION_DISAGREEMENT`] times.
    DurationsDisagree {
        /// The break.
        break_id: String,
        /// The duration the cue signals.
        signalled: Duration,
        /// `Event@duration`.
        event_duration: Duration,
        /// The one taken.
        chosen: DurationSource,
    },
    /// The only duration stated for a break is outside [`PLAUSIBLE_BREAK`].
    ImplausibleDuration {
        /// The break.
        break_id: String,
        /// The stated duration.
        duration: Duration,
        /// Where it was stated.
        source: DurationSource,
        /// What was taken instead (the cue-in), if anything.
        replaced_by: Option<DurationSource>,
    },
}

impl fmt::Display for ScanWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::FieldIgnored { path, reason } => write!(f, "{path}: {reason}"),
            Self::DurationsDisagree {
                break_id,
                signalled,
                event_duration,
                chosen,
            } => write!(
                f,
                "break {break_id}: the cue signals {signalled:?} but Event@duration is \
                 {event_duration:?}; took the {chosen:?} one"
            ),
            Self::ImplausibleDuration {
                break_id,
                duration,
                source,
                replaced_by,
            } => match replaced_by {
                Some(r) => write!(
                    f,
                    "break {break_id}: {source:?} duration {duration:?} is implausible; took the {r:?} one"
                ),
                None => write!(
                    f,
                    "break {break_id}: {source:?} duration {duration:?} is implausible, and nothing else \
                     states one"
                ),
            },
        }
    }
}

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
    /// What was read around: fields left out of cues that were kept, and durations that contradict each
    /// other.
    pub warnings: Vec<ScanWarning>,
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
                let section = match read_event_payload_with_warnings(&event.content) {
                    Ok((s, warnings)) => {
                        out.warnings.extend(warnings.into_iter().map(|reason| {
                            ScanWarning::FieldIgnored {
                                path: path.clone(),
                                reason,
                            }
                        }));
                        s
                    }
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
    out.breaks = pair(mpd, &starts, &out.cues, &mut out.warnings);
    out
}

fn plausible(d: Duration) -> bool {
    PLAUSIBLE_BREAK.contains(&d)
}

/// How far apart two durations are, as a ratio (≥ 1).
fn ratio(a: Duration, b: Duration) -> f64 {
    let (a, b) = (a.as_secs_f64().max(1e-9), b.as_secs_f64().max(1e-9));
    if a > b { a / b } else { b / a }
}

/// A break's duration and where it came from: the cue's, else `Event@duration`, else the cue-in, else the
/// Period's length — unless the stated ones contradict each other or are implausible (module docs).
fn choose_duration(
    break_id: &str,
    out: &Cue,
    by_cue_in: Option<Duration>,
    by_period: Option<Duration>,
    warnings: &mut Vec<ScanWarning>,
) -> (Option<Duration>, Option<DurationSource>) {
    let signal = out.signalled_duration();
    let event = out.event_duration;
    let referee = by_cue_in.or(by_period);
    if let (Some(s), Some(e)) = (signal, event) {
        if ratio(s, e) <= f64::from(DURATION_DISAGREEMENT) {
            return (Some(s), Some(DurationSource::Signal));
        }
        let chosen = match (plausible(s), plausible(e), referee) {
            (true, false, _) => DurationSource::Signal,
            (false, true, _) => DurationSource::EventDuration,
            (_, _, Some(r)) if ratio(e, r) < ratio(s, r) => DurationSource::EventDuration,
            _ => DurationSource::Signal,
        };
        warnings.push(ScanWarning::DurationsDisagree {
            break_id: break_id.to_string(),
            signalled: s,
            event_duration: e,
            chosen,
        });
        let d = if chosen == DurationSource::Signal {
            s
        } else {
            e
        };
        return (Some(d), Some(chosen));
    }
    let stated = signal
        .map(|d| (d, DurationSource::Signal))
        .or_else(|| event.map(|d| (d, DurationSource::EventDuration)));
    if let Some((d, source)) = stated {
        if plausible(d) {
            return (Some(d), Some(source));
        }
        let replaced = by_cue_in.filter(|c| plausible(*c));
        warnings.push(ScanWarning::ImplausibleDuration {
            break_id: break_id.to_string(),
            duration: d,
            source,
            replaced_by: replaced.map(|_| DurationSource::CueIn),
        });
        return match replaced {
            Some(c) => (Some(c), Some(DurationSource::CueIn)),
            None => (Some(d), Some(source)),
        };
    }
    if let Some(c) = by_cue_in {
        return (Some(c), Some(DurationSource::CueIn));
    }
    match by_period {
        Some(p) => (Some(p), Some(DurationSource::Period)),
        None => (None, None),
    }
}

fn pair(
    mpd: &Mpd,
    starts: &[Option<Duration>],
    cues: &[Cue],
    warnings: &mut Vec<ScanWarning>,
) -> Vec<AdBreak> {
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
        let ms = out.time.as_millis();
        let break_id = match id {
            Some(id) => format!("e{id}-{ms}"),
            None => format!("t{ms}"),
        };
        // Zero when the cue-in is at the same instant: a zero-length placement (an insertion point).
        let by_cue_in = cue_in.as_ref().map(|i| i.time.saturating_sub(out.time));
        let by_period = (starts.get(out.period_index).copied().flatten() == Some(out.time))
            .then(|| mpd.period_end(out.period_index, starts))
            .flatten()
            .and_then(|e| e.checked_sub(out.time))
            .filter(|d| !d.is_zero());
        let (duration, source) = choose_duration(&break_id, out, by_cue_in, by_period, warnings);
        breaks.push(AdBreak {
            id: break_id,
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
