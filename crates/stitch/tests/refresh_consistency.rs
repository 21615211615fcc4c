//! Property: every pair of successive playlists of one viewer obeys RFC 8216bis §6.2.2 — the same media
//! sequence number names the same segment with the same duration and discontinuity sequence, and no segment is
//! skipped between refreshes — for random break schedules, early and late break ends, pods, origin
//! discontinuities and refresh times.

use std::collections::BTreeMap;

use interlude_stitch::pod::secs_to_micros;
use interlude_stitch::tracker::OriginWindow;
use interlude_stitch::{
    BreakTracker, Element, ObservedBreak, OriginSegment, PlannedAd, PodPlan, RenderedWindow,
    render_window,
};
use proptest::prelude::*;

const SEG: u64 = 2_000_000;
const WINDOW: u64 = 6;
const TOLERANCE: u64 = 500_000;

#[derive(Debug, Clone)]
struct Break {
    start: u64,
    /// Content segments actually in the break.
    len: u64,
    /// Planned duration in segments (may differ from `len`: early or late return).
    planned: u64,
    /// Whether the origin signals the end (CUE-IN) or leaves it to the planned duration.
    explicit_end: bool,
    pod: Vec<Vec<f64>>,
    personalised: bool,
}

#[derive(Debug, Clone)]
struct Scenario {
    breaks: Vec<Break>,
    /// Origin discontinuity flags by media sequence number.
    discontinuities: Vec<bool>,
    /// Segments the live edge advances between refreshes.
    steps: Vec<u64>,
}

fn ad_strategy() -> impl Strategy<Value = Vec<f64>> {
    prop_oneof![
        Just(vec![2.0; 7].into_iter().chain([1.0]).collect::<Vec<_>>()), // 15 s
        Just(vec![2.0; 15]),                                             // 30 s
        Just(vec![2.0, 2.0, 1.0]),                                       // 5 s
        prop::collection::vec(prop_oneof![Just(1.0), Just(1.5), Just(2.0)], 1..6),
    ]
}

fn scenario() -> impl Strategy<Value = Scenario> {
    let one_break = (
        2u64..20,
        1u64..20,
        -3i64..4,
        any::<bool>(),
        prop::collection::vec(ad_strategy(), 0..4),
        prop::bool::weighted(0.85),
    );
    (
        prop::collection::vec(one_break, 1..5),
        prop::collection::vec(prop::bool::weighted(0.05), 200),
        prop::collection::vec(0u64..4, 20..120),
    )
        .prop_map(|(raw, discontinuities, steps)| {
            let mut breaks = Vec::new();
            let mut at = WINDOW + 2;
            for (gap, len, planned_delta, explicit_end, pod, personalised) in raw {
                let start = at + gap;
                let planned = (len as i64 + planned_delta).max(1) as u64;
                // Without an explicit end the break lasts exactly as planned.
                let len = if explicit_end { len } else { planned };
                breaks.push(Break {
                    start,
                    len,
                    planned,
                    explicit_end,
                    pod,
                    personalised,
                });
                at = start + len + 1;
            }
            Scenario {
                breaks,
                discontinuities,
                steps,
            }
        })
}

/// The origin's window ending at `edge` (inclusive) and the breaks it signals.
fn origin_at(s: &Scenario, edge: u64) -> (OriginWindow, Vec<ObservedBreak>) {
    let first = edge.saturating_sub(WINDOW - 1);
    let disc = |m: u64| s.discontinuities.get(m as usize).copied().unwrap_or(false);
    let segments = (first..=edge)
        .map(|msn| OriginSegment {
            msn,
            duration_micros: SEG,
            discontinuity: disc(msn),
            program_date_time: None,
        })
        .collect();
    let discontinuity_sequence = (0..first).filter(|&m| disc(m)).count() as u64;
    let mut observed = Vec::new();
    for (i, b) in s.breaks.iter().enumerate() {
        let end = b.start + b.len;
        if b.start > edge || end < first {
            continue;
        }
        let first_msn = b.start.max(first);
        if first_msn >= end {
            // Only the CUE-IN segment is visible: the break has slid out but its end still shows.
            observed.push(ObservedBreak {
                id: format!("b{i}"),
                first_msn: end,
                elapsed_at_first_micros: b.len * SEG,
                planned_micros: Some(b.planned * SEG),
                end_msn: b.explicit_end.then_some(end),
                signalled_through_msn: None,
                scte35: None,
                event_id: None,
            });
            continue;
        }
        observed.push(ObservedBreak {
            id: format!("b{i}"),
            first_msn,
            elapsed_at_first_micros: (first_msn - b.start) * SEG,
            planned_micros: Some(b.planned * SEG),
            end_msn: (b.explicit_end && end <= edge).then_some(end),
            signalled_through_msn: b.explicit_end.then_some(edge.min(end - 1)),
            scte35: None,
            event_id: None,
        });
    }
    (
        OriginWindow {
            discontinuity_sequence,
            segments,
        },
        observed,
    )
}

/// A segment's identity: what it plays, independent of numbering.
#[derive(Debug, Clone, PartialEq)]
enum Identity {
    Content(u64),
    Pod(String, u64),
}

fn identities(
    w: &RenderedWindow,
    origin: &OriginWindow,
    tracker: &BreakTracker,
) -> Vec<(u64, Identity, u64, u64, bool)> {
    w.segments
        .iter()
        .map(|s| {
            let id = match s.element {
                Element::Content { index } => Identity::Content(origin.segments[index].msn),
                Element::Pod {
                    break_index,
                    item_index,
                    ..
                } => Identity::Pod(tracker.breaks()[break_index].id.clone(), item_index),
            };
            (s.msn, id, s.duration_micros, s.dsn, s.discontinuity)
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn successive_playlists_agree_and_lose_nothing(s in scenario()) {
        let plans: Vec<PodPlan> = s
            .breaks
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let ads = b
                    .pod
                    .iter()
                    .enumerate()
                    .map(|(a, d)| PlannedAd::from_seconds(format!("b{i}-ad{a}"), d).unwrap())
                    .collect();
                PodPlan::new(ads, 2.0).unwrap()
            })
            .collect();
        let mut tracker = BreakTracker::new(TOLERANCE);
        let mut seen: BTreeMap<u64, (Identity, u64, u64, bool)> = BTreeMap::new();
        let mut prev_last: Option<u64> = None;
        let mut edge = WINDOW - 1;
        for step in &s.steps {
            edge += step;
            let (origin, observed) = origin_at(&s, edge);
            tracker.observe(&origin, &observed).unwrap();
            let rendered = render_window(
                &origin,
                tracker.breaks(),
                |_, t| {
                    let i: usize = t.id.trim_start_matches('b').parse().ok()?;
                    s.breaks[i].personalised.then(|| &plans[i])
                },
                TOLERANCE,
            )
            .unwrap();
            let ids = identities(&rendered, &origin, &tracker);
            // Within one playlist: consecutive numbers, and the header matches the first segment.
            for pair in ids.windows(2) {
                prop_assert_eq!(pair[1].0, pair[0].0 + 1, "gap inside one playlist: {:?}", ids);
                prop_assert_eq!(pair[1].3, pair[0].3 + u64::from(pair[1].4), "dsn not counting discontinuities: {:?}", ids);
            }
            if let Some(first) = ids.first() {
                prop_assert_eq!(rendered.media_sequence, first.0);
                prop_assert_eq!(rendered.discontinuity_sequence + u64::from(first.4), first.3);
                // No segment skipped between refreshes.
                if let Some(last) = prev_last {
                    prop_assert!(first.0 <= last + 1, "skipped from {} to {}: {:?}", last, first.0, ids);
                }
                prev_last = ids.last().map(|l| l.0).max(prev_last);
            }
            // The same number always names the same segment, with the same duration and dsn.
            for (msn, id, dur, dsn, disc) in ids {
                match seen.get(&msn) {
                    Some(before) => prop_assert_eq!(before, &(id, dur, dsn, disc), "msn {} changed", msn),
                    None => {
                        seen.insert(msn, (id, dur, dsn, disc));
                    }
                }
            }
        }
        // Everything played: content outside personalised breaks appears exactly once, in order.
        let content: Vec<u64> = seen
            .values()
            .filter_map(|(id, ..)| match id { Identity::Content(m) => Some(*m), Identity::Pod(..) => None })
            .collect();
        prop_assert!(content.windows(2).all(|p| p[0] < p[1]));
        // Each fully seen personalised break was filled for its actual length, to within the tolerance either
        // way: the item playing across the break's end is cut to end with it, so no time is lost.
        let final_edge = edge;
        for (i, b) in s.breaks.iter().enumerate() {
            if !b.personalised || b.start < WINDOW || b.start + b.len + 1 > final_edge {
                continue;
            }
            let id = format!("b{i}");
            let filled: u64 = seen
                .values()
                .filter(|(ident, ..)| matches!(ident, Identity::Pod(bid, _) if *bid == id))
                .map(|(_, dur, ..)| *dur)
                .sum();
            let actual = b.len * SEG;
            prop_assert!(filled <= actual + TOLERANCE, "break {} overfilled: {} > {}", i, filled, actual);
            prop_assert!(filled + TOLERANCE >= actual, "break {} underfilled: {} for {}", i, filled, actual);
        }
    }
}

#[test]
fn early_return_truncates_pod_and_content_resumes_with_discontinuity() {
    // A 30 s break planned, cut after 10 s by CUE-IN; the pod is one 30 s ad.
    let plan = PodPlan::new(
        vec![PlannedAd::from_seconds("ad", &[2.0; 15]).unwrap()],
        2.0,
    )
    .unwrap();
    let mut tracker = BreakTracker::new(TOLERANCE);
    let seg = |msn| OriginSegment {
        msn,
        duration_micros: SEG,
        discontinuity: false,
        program_date_time: None,
    };
    let window = |edge: u64| OriginWindow {
        discontinuity_sequence: 0,
        segments: (edge - 5..=edge).map(seg).collect(),
    };
    let observed = |edge: u64| {
        vec![ObservedBreak {
            id: "x".into(),
            first_msn: 10.max(edge - 5),
            elapsed_at_first_micros: (10.max(edge - 5) - 10) * SEG,
            planned_micros: Some(secs_to_micros(30.0)),
            end_msn: (edge >= 15).then_some(15),
            signalled_through_msn: Some(edge.min(14)),
            scte35: None,
            event_id: None,
        }]
    };
    for edge in 10..=17 {
        tracker.observe(&window(edge), &observed(edge)).unwrap();
    }
    let rendered =
        render_window(&window(17), tracker.breaks(), |_, _| Some(&plan), TOLERANCE).unwrap();
    let kinds: Vec<_> = rendered
        .segments
        .iter()
        .map(|s| (s.msn, s.discontinuity, s.element))
        .collect();
    // Window 12..=17: content 12,13,14 replaced by ad items 2,3,4 (item 0,1 slid out); 15.. content.
    assert_eq!(rendered.media_sequence, 12);
    assert!(matches!(kinds[0].2, Element::Pod { item_index: 2, .. }));
    assert!(matches!(kinds[2].2, Element::Pod { item_index: 4, .. }));
    assert!(matches!(kinds[3].2, Element::Content { .. }));
    assert!(
        kinds[3].1,
        "content after the break must start with a discontinuity"
    );
    assert_eq!(
        rendered.discontinuity_sequence, 1,
        "the ad's opening discontinuity slid out"
    );
    assert_eq!(rendered.segments[3].dsn, 2);
}
