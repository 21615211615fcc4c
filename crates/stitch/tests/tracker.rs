//! Break tracking details that the property test does not look at.

use interlude_stitch::tracker::{BreakTracker, ObservedBreak, OriginSegment, OriginWindow};

fn window(edge: u64) -> OriginWindow {
    OriginWindow {
        discontinuity_sequence: 0,
        segments: (edge - 5..=edge)
            .map(|msn| OriginSegment {
                msn,
                duration_micros: 2_000_000,
                discontinuity: false,
                program_date_time: None,
            })
            .collect(),
    }
}

#[test]
fn a_cue_carried_only_by_later_tags_is_attached_to_the_break() {
    // CUE-OUT without SCTE35= on the first refresh; CUE-OUT-CONT with the cue (and its event id) on the next.
    let observed = |scte35: Option<&str>, event_id: Option<u32>| ObservedBreak {
        id: "msn-10".into(),
        first_msn: 10,
        elapsed_at_first_micros: 0,
        planned_micros: Some(30_000_000),
        end_msn: None,
        signalled_through_msn: Some(11),
        scte35: scte35.map(str::to_owned),
        event_id,
    };
    let mut tracker = BreakTracker::new(500_000);
    tracker
        .observe(&window(10), &[observed(None, None)])
        .unwrap();
    assert_eq!(tracker.breaks()[0].scte35, None);
    tracker
        .observe(
            &window(11),
            &[observed(
                Some("opaque cue text (the tracker does not decode it)"),
                Some(1),
            )],
        )
        .unwrap();
    let tracked = &tracker.breaks()[0];
    assert_eq!(
        tracked.scte35.as_deref(),
        Some("opaque cue text (the tracker does not decode it)")
    );
    assert_eq!(tracked.event_id, Some(1));
    assert_eq!(tracker.breaks().len(), 1, "the later tag is the same break");
}
