//! What the stitcher asks of a cue (break start/end, duration, event id, splice PTS) and the builders the
//! live origin simulator uses to make cues. The break semantics follow ANSI/SCTE 35 §9.7.3 (splice_insert)
//! and §10.3.3 Table 23 (segmentation types).

use std::time::Duration;

use crate::TICKS_PER_SECOND;
use crate::command::{SpliceCommand, SpliceInsert, TimeSignal};
use crate::descriptor::SpliceDescriptor;
use crate::section::SpliceInfoSection;
use crate::segmentation::SegmentationDescriptor;
use crate::segmentation_type::SegmentationTypeId;
use crate::time::{BreakDuration, SpliceTime};

/// 2^33: PTS values wrap here.
const PTS_MODULUS: u64 = 1 << 33;

/// Converts 90 kHz ticks to a [`Duration`].
#[must_use]
pub fn ticks_to_duration(ticks: u64) -> Duration {
    Duration::from_secs(ticks / TICKS_PER_SECOND)
        + Duration::from_nanos((ticks % TICKS_PER_SECOND) * 1_000_000_000 / TICKS_PER_SECOND)
}

impl SpliceInfoSection {
    /// The splice_insert command, if that is the command.
    #[must_use]
    pub fn splice_insert(&self) -> Option<&SpliceInsert> {
        match &self.splice_command {
            SpliceCommand::SpliceInsert(s) => Some(s),
            _ => None,
        }
    }

    /// Segmentation descriptors that are not cancelled, in order.
    pub fn segmentation_descriptors(&self) -> impl Iterator<Item = &SegmentationDescriptor> {
        self.splice_descriptors.iter().filter_map(|d| match d {
            SpliceDescriptor::SegmentationDescriptor(s)
                if !s.segmentation_event_cancel_indicator =>
            {
                Some(s)
            }
            _ => None,
        })
    }

    /// Whether the cue starts an ad break: a splice_insert with `out_of_network_indicator` 1 that is not
    /// cancelled, or a segmentation descriptor of a break-start type (0x22, 0x30, 0x32, 0x34, 0x36, 0x38,
    /// 0x3A, 0x44, 0x46).
    #[must_use]
    pub fn is_ad_break_start(&self) -> bool {
        match self.splice_insert() {
            Some(s) => !s.splice_event_cancel_indicator && s.out_of_network_indicator,
            None => self
                .segmentation_descriptors()
                .any(|d| d.segmentation_type_id.is_break_start()),
        }
    }

    /// Whether the cue ends an ad break: a splice_insert with `out_of_network_indicator` 0 that is not
    /// cancelled, or a segmentation descriptor of a break-end type (0x23, 0x31, ... 0x47).
    #[must_use]
    pub fn is_ad_break_end(&self) -> bool {
        match self.splice_insert() {
            Some(s) => !s.splice_event_cancel_indicator && !s.out_of_network_indicator,
            None => self
                .segmentation_descriptors()
                .any(|d| d.segmentation_type_id.is_break_end()),
        }
    }

    /// The break's duration: splice_insert `break_duration`, else the first break-start segmentation
    /// descriptor's `segmentation_duration`, else any segmentation descriptor's.
    #[must_use]
    pub fn break_duration(&self) -> Option<Duration> {
        if let Some(s) = self.splice_insert() {
            return s.break_duration.map(|b| ticks_to_duration(b.duration));
        }
        let starts = self
            .segmentation_descriptors()
            .filter(|d| d.segmentation_type_id.is_break_start());
        starts
            .chain(self.segmentation_descriptors())
            .find_map(|d| d.segmentation_duration)
            .map(ticks_to_duration)
    }

    /// `splice_event_id`, else the first break-start segmentation descriptor's `segmentation_event_id`, else
    /// the first segmentation descriptor's.
    #[must_use]
    pub fn event_id(&self) -> Option<u32> {
        if let Some(s) = self.splice_insert() {
            return Some(s.splice_event_id);
        }
        let start = self.segmentation_descriptors().find(|d| {
            d.segmentation_type_id.is_break_start() || d.segmentation_type_id.is_break_end()
        });
        start
            .or_else(|| self.segmentation_descriptors().next())
            .map(|d| d.segmentation_event_id)
    }

    /// The splice PTS with `pts_adjustment` applied modulo 2^33: the time_signal time, the program
    /// splice_insert time, or the first component's time. `None` for immediate or untimed splices.
    #[must_use]
    pub fn splice_pts(&self) -> Option<u64> {
        let raw = match &self.splice_command {
            SpliceCommand::TimeSignal(t) => t.splice_time.pts_time,
            SpliceCommand::SpliceInsert(s)
                if !s.splice_event_cancel_indicator && !s.splice_immediate_flag =>
            {
                if s.program_splice_flag {
                    s.splice_time.and_then(|t| t.pts_time)
                } else {
                    s.components
                        .iter()
                        .find_map(|c| c.splice_time.and_then(|t| t.pts_time))
                }
            }
            _ => None,
        }?;
        Some((raw + self.pts_adjustment) % PTS_MODULUS)
    }

    /// splice_insert, out_of_network=1, program splice at `pts` (None = splice_immediate), break_duration
    /// with auto_return=1 when `duration_ticks` is Some.
    #[must_use]
    pub fn splice_insert_out(event_id: u32, pts: Option<u64>, duration_ticks: Option<u64>) -> Self {
        let mut s = insert(event_id, pts);
        s.out_of_network_indicator = true;
        s.break_duration = duration_ticks.map(|d| BreakDuration {
            auto_return: true,
            reserved: None,
            duration: d,
        });
        Self::new(SpliceCommand::SpliceInsert(s))
    }

    /// splice_insert, out_of_network=0 (return to network), at `pts` (None = splice_immediate).
    #[must_use]
    pub fn splice_insert_in(event_id: u32, pts: Option<u64>) -> Self {
        Self::new(SpliceCommand::SpliceInsert(insert(event_id, pts)))
    }

    /// time_signal at `pts` with one segmentation_descriptor (program mode, delivery not restricted, no UPID,
    /// segment_num/segments_expected 0, and sub_segment 0/0 for the types Table 20 lists it for) of the given type.
    #[must_use]
    pub fn time_signal_segmentation(
        pts: u64,
        segmentation_type_id: u8,
        segmentation_event_id: u32,
        duration_ticks: Option<u64>,
    ) -> Self {
        let type_id = SegmentationTypeId::from(segmentation_type_id);
        let descriptor = SegmentationDescriptor {
            segmentation_event_id,
            segmentation_duration: duration_ticks,
            segmentation_type_id: type_id,
            // Only where the 2022b syntax table (Table 20) lists the fields, so the cues built stay what they were.
            sub_segment: matches!(segmentation_type_id, 0x34 | 0x36 | 0x38 | 0x3A)
                .then(Default::default),
            ..SegmentationDescriptor::default()
        };
        let mut s = Self::new(SpliceCommand::TimeSignal(TimeSignal {
            splice_time: SpliceTime::at(pts % PTS_MODULUS),
        }));
        s.splice_descriptors
            .push(SpliceDescriptor::SegmentationDescriptor(descriptor));
        s
    }
}

fn insert(event_id: u32, pts: Option<u64>) -> SpliceInsert {
    SpliceInsert {
        splice_event_id: event_id,
        program_splice_flag: true,
        splice_immediate_flag: pts.is_none(),
        event_id_compliance_flag: true,
        splice_time: pts.map(|p| SpliceTime::at(p % PTS_MODULUS)),
        ..SpliceInsert::default()
    }
}
