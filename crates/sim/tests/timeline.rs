//! Drives the simulated channel with a manual clock across two break cycles and checks what a packager must
//! get right: the window slides one segment at a time, every media sequence number keeps its URI, duration and
//! date, program date time is continuous, and the markers of every dialect sit on exactly the scheduled segments
//! with SCTE-35 cues that decode to the right event, duration and direction.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use interlude_hls::markers::extract_breaks;
use interlude_hls::parse_media_playlist;
use interlude_scte35::SpliceInfoSection;
use interlude_sim::clock::{Clock, ManualClock};
use interlude_sim::origin::{CueSignal, MarkerDialect, OriginConfig, Timeline};

fn timeline(dialect: MarkerDialect, signal: CueSignal) -> Timeline {
    let config = OriginConfig {
        dialect,
        signal,
        ..OriginConfig::default()
    };
    config.validate().unwrap();
    Timeline::new(config, 6, 131_280)
}

#[derive(Debug, Clone, PartialEq)]
struct Seen {
    uri: String,
    duration: f64,
    pdt: DateTime<chrono::FixedOffset>,
}

fn run_two_cycles(dialect: MarkerDialect, signal: CueSignal) {
    let tl = timeline(dialect, signal);
    let epoch = tl.config().epoch;
    let clock = ManualClock::new(epoch);
    let mut seen: BTreeMap<u64, Seen> = BTreeMap::new();
    let mut prev_first: Option<u64> = None;
    // Break starts and ends as the playlists announced them, by media sequence number.
    let mut starts: BTreeMap<u64, (String, Option<f64>, Option<u32>)> = BTreeMap::new();
    let mut ends: BTreeMap<u64, String> = BTreeMap::new();
    // 0 → 260 s: breaks at 30 s and 150 s, 30 s each.
    for step in 0..=1040 {
        clock.set(epoch + TimeDelta::milliseconds(step * 250));
        let text = tl.media_playlist(clock.now());
        let p = parse_media_playlist(&text).unwrap();
        if p.segments.is_empty() {
            assert!(step < 8, "no segments at step {step}");
            continue;
        }
        assert_eq!(
            p.segments.len(),
            if p.media_sequence == 0 {
                p.segments.len().min(6)
            } else {
                6
            }
        );
        if let Some(prev) = prev_first {
            let delta = p.media_sequence - prev;
            assert!(delta <= 1, "window jumped by {delta} at step {step}");
        }
        prev_first = Some(p.media_sequence);
        for (i, s) in p.segments.iter().enumerate() {
            let msn = p.media_sequence + i as u64;
            let now = Seen {
                uri: s.uri.clone(),
                duration: s.duration,
                pdt: s.program_date_time.unwrap(),
            };
            assert_eq!(s.uri, format!("{msn}.ts"));
            if let Some(before) = seen.insert(msn, now.clone()) {
                assert_eq!(before, now, "segment {msn} changed between refreshes");
            }
        }
        for b in extract_breaks(&p) {
            if let Some(start) = b.start_segment {
                starts.insert(
                    p.media_sequence + start as u64,
                    (b.id.clone(), b.planned_duration, b.event_id),
                );
            }
            if let Some(end) = b.end_segment {
                ends.insert(p.media_sequence + end as u64, b.id.clone());
            }
            assert!(b.warnings.is_empty(), "{:?}", b.warnings);
        }
    }
    // Program date time is continuous: +2 s per segment, from the epoch.
    for (msn, s) in &seen {
        assert_eq!(
            s.pdt.with_timezone(&Utc),
            epoch + TimeDelta::seconds(*msn as i64 * 2),
            "pdt of {msn}"
        );
        assert_eq!(s.duration, 2.0);
    }
    assert_eq!(
        seen.keys().copied().collect::<Vec<_>>(),
        (0..=129).collect::<Vec<_>>()
    );
    // Breaks at segments 15 and 75, ending at 30 and 90.
    assert_eq!(
        starts.keys().copied().collect::<Vec<_>>(),
        vec![15, 75],
        "{dialect:?}"
    );
    assert_eq!(
        ends.keys().copied().collect::<Vec<_>>(),
        vec![30, 90],
        "{dialect:?}"
    );
    for (k, (id, planned, event)) in starts.values().enumerate() {
        assert_eq!(*planned, Some(30.0), "{id}");
        if dialect != MarkerDialect::CueOut {
            assert_eq!(*event, Some(1000 + k as u32), "{id}");
        }
    }
}

#[test]
fn cue_out_dialect_slides_and_marks_two_cycles() {
    run_two_cycles(MarkerDialect::CueOut, CueSignal::SpliceInsert);
}

#[test]
fn daterange_dialect_slides_and_marks_two_cycles() {
    run_two_cycles(MarkerDialect::Daterange, CueSignal::SpliceInsert);
}

#[test]
fn oatcls_dialect_with_time_signal_slides_and_marks_two_cycles() {
    run_two_cycles(MarkerDialect::Oatcls, CueSignal::TimeSignal);
}

#[test]
fn cues_carry_the_break_at_the_segment_pts() {
    for signal in [CueSignal::SpliceInsert, CueSignal::TimeSignal] {
        let tl = timeline(MarkerDialect::Daterange, signal);
        let out = SpliceInfoSection::decode(&tl.out_cue(1).encode().unwrap()).unwrap();
        assert!(
            out.is_ad_break_start() && !out.is_ad_break_end(),
            "{signal:?}"
        );
        assert_eq!(out.event_id(), Some(1001));
        assert_eq!(out.break_duration().map(|d| d.as_secs()), Some(30));
        assert_eq!(out.splice_pts(), Some(tl.pts(tl.break_start(1))));
        let back = tl.in_cue(1);
        assert!(back.is_ad_break_end(), "{signal:?}");
        assert_eq!(back.splice_pts(), Some(tl.pts(tl.break_start(1) + 15)));
    }
}

#[test]
fn content_loop_offsets_make_pts_continuous() {
    let tl = timeline(MarkerDialect::CueOut, CueSignal::SpliceInsert);
    for i in 0..30u64 {
        // File k starts at 131_280 + k * 2 s as encoded; shifted it must start at pts(i).
        let k = tl.content_file(i) as u64;
        assert_eq!(
            (131_280 + k * 180_000 + tl.pts_offset(i)) % (1 << 33),
            tl.pts(i),
            "segment {i}"
        );
    }
}

#[test]
fn invalid_schedules_are_rejected_with_the_key() {
    let bad = OriginConfig {
        break_duration_secs: 120,
        ..OriginConfig::default()
    };
    assert_eq!(bad.validate().unwrap_err().key, "break_duration_secs");
    let odd = OriginConfig {
        break_duration_secs: 31,
        ..OriginConfig::default()
    };
    assert!(odd.validate().unwrap_err().to_string().contains("multiple"));
}
