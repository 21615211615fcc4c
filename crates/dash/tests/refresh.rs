//! Property: the MPDs one session gets on successive refreshes agree with each other. The content advances
//! (segments appended to the SegmentTimeline, old ones leaving the time-shift window), the break enters,
//! plays and ends (sometimes early, the cue-in known only once the content reaches it); across every pair
//! of refreshes a Period id keeps its start, and every segment keeps its URL and its time. Content segments
//! keep the time they have in the content MPD (to half a tick); Periods never overlap; each MPD reads back as written.

use std::collections::HashMap;
use std::time::Duration;

use interlude_dash::segment::{SegmentRef, period_segments};
use interlude_dash::{
    Ad, AdRendition, ContentKind, DirectAdUrls, Mpd, PlannedBreak, StitchOptions, parse_mpd,
    stitch, write_mpd,
};
use proptest::prelude::*;

const VIDEO_TS: u64 = 90_000;
const VIDEO_SEG: u64 = 180_000; // 2 s
const AUDIO_TS: u64 = 44_100;
const AUDIO_SEG: u64 = 88_200; // 2 s
const VIDEO_PTO: u64 = 900_000_000; // a packager's running clock: 10 000 s
const AUDIO_PTO: u64 = 441_000_000;

/// The content MPD when segments `first..=last` (numbered from 1, 2 s each) are in the window.
fn content(first: u64, last: u64) -> Mpd {
    let r = last - first;
    let text = format!(
        r#"<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="dynamic" availabilityStartTime="2024-01-01T00:00:00Z"
  publishTime="2024-01-01T00:00:00Z" minimumUpdatePeriod="PT2S" timeShiftBufferDepth="PT40S" minBufferTime="PT4S">
 <Period id="live" start="PT0S">
  <AdaptationSet id="1" contentType="video" mimeType="video/mp4" codecs="avc1.64001f">
   <SegmentTemplate timescale="{VIDEO_TS}" presentationTimeOffset="{VIDEO_PTO}" startNumber="{first}"
     media="v/$RepresentationID$/$Number$.m4s" initialization="v/$RepresentationID$/i.mp4">
    <SegmentTimeline><S t="{vt}" d="{VIDEO_SEG}" r="{r}"/></SegmentTimeline>
   </SegmentTemplate>
   <Representation id="v1" bandwidth="1000000"/>
  </AdaptationSet>
  <AdaptationSet id="2" contentType="audio" mimeType="audio/mp4" codecs="mp4a.40.2" lang="en">
   <Representation id="a1" bandwidth="96000">
    <SegmentTemplate timescale="{AUDIO_TS}" presentationTimeOffset="{AUDIO_PTO}"
      media="a/$Time$.m4s" initialization="a/i.mp4">
     <SegmentTimeline><S t="{at}" d="{AUDIO_SEG}" r="{r}"/></SegmentTimeline>
    </SegmentTemplate>
   </Representation>
  </AdaptationSet>
 </Period>
</MPD>"#,
        vt = VIDEO_PTO + (first - 1) * VIDEO_SEG,
        at = AUDIO_PTO + (first - 1) * AUDIO_SEG,
    );
    parse_mpd(&text).expect("generated content reads")
}

fn ad(id: String, ms: u64) -> Ad {
    let rendition = |suffix: &str, kind, codecs: &str, ts, d| AdRendition {
        id: format!("{id}-{suffix}"),
        kind,
        mime_type: if kind == ContentKind::Video {
            "video/mp4"
        } else {
            "audio/mp4"
        }
        .into(),
        codecs: codecs.into(),
        bandwidth: 1_000_000,
        width: None,
        height: None,
        frame_rate: None,
        audio_sampling_rate: None,
        lang: None,
        timescale: ts,
        segment_duration: d,
        start_number: 1,
        media: format!("https://ads.example/{id}/{suffix}/$Number$.m4s"),
        initialization: format!("https://ads.example/{id}/{suffix}/i.mp4"),
    };
    Ad {
        renditions: vec![
            rendition("v", ContentKind::Video, "avc1.640028", 90_000, 270_000),
            rendition("a", ContentKind::Audio, "mp4a.40.2", 48_000, 96_000),
        ],
        id,
        duration: Duration::from_millis(ms),
    }
}

#[derive(Debug, Clone)]
struct Scenario {
    start_ms: u64,
    duration_ms: u64,
    early: Option<u64>, // per mille of the planned duration
    ads: Vec<u64>,
    slate: Option<u64>,
    window: u64,
    steps: Vec<u64>,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        20_000u64..70_000,
        8_000u64..60_000,
        proptest::option::of(50u64..1000),
        proptest::collection::vec(2_000u64..25_000, 0..4),
        proptest::option::of(1_000u64..12_000),
        8u64..30,
        proptest::collection::vec(1u64..4, 20..60),
    )
        .prop_map(
            |(start_ms, duration_ms, early, ads, slate, window, steps)| Scenario {
                start_ms,
                duration_ms,
                early,
                ads,
                slate,
                window,
                steps,
            },
        )
}

type Snapshot = HashMap<String, (Duration, Vec<SegmentRef>)>;

fn stitched_at(sc: &Scenario, edge: u64) -> (Mpd, Snapshot) {
    let first = edge.saturating_sub(sc.window).max(1);
    let content = content(first, edge);
    let start = Duration::from_millis(sc.start_ms);
    let planned = Duration::from_millis(sc.duration_ms);
    let edge_time = Duration::from_secs(edge * 2);
    // The cue-in is known once the content has reached it.
    let ended_at = sc
        .early
        .map(|pm| start + planned * u32::try_from(pm).expect("small") / 1000)
        .filter(|e| *e <= edge_time);
    let plan = PlannedBreak {
        id: "brk".into(),
        start,
        duration: planned,
        ended_at,
        ads: sc
            .ads
            .iter()
            .enumerate()
            .map(|(i, ms)| ad(format!("ad{i}"), *ms))
            .collect(),
        slate: sc.slate.map(|ms| ad("slate".into(), ms)),
    };
    let out =
        stitch(&content, &[plan], &DirectAdUrls, &StitchOptions::default()).expect("stitches");
    let mpd = out.mpd;
    let mut snap = Snapshot::new();
    for (i, p) in mpd.periods.iter().enumerate() {
        let start = p.start.expect("every Period has a start");
        let end = mpd
            .periods
            .get(i + 1)
            .and_then(|n| n.start)
            .or(p.duration.map(|d| start + d));
        let segs = period_segments(p, start, end).expect("segments");
        snap.insert(p.id.clone().expect("every Period has an id"), (start, segs));
    }
    (mpd, snap)
}

fn close(a: Duration, b: Duration) -> bool {
    a.abs_diff(b) <= Duration::from_micros(1)
}

fn check_one(mpd: &Mpd, snap: &Snapshot) -> Result<(), TestCaseError> {
    let text = write_mpd(mpd);
    prop_assert_eq!(&parse_mpd(&text).expect("reads back"), mpd);
    for pair in mpd.periods.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let (sa, sb) = (a.start.expect("start"), b.start.expect("start"));
        prop_assert!(sa < sb, "Periods out of order: {:?} then {:?}", a.id, b.id);
        if let Some(d) = a.duration {
            prop_assert!(
                sa + d <= sb + Duration::from_millis(1),
                "{:?} overlaps {:?}",
                a.id,
                b.id
            );
        }
    }
    for (id, (_, segs)) in snap {
        if id.contains("_ad") || id.contains("_slate") {
            continue;
        }
        // Content segments sit where the content MPD puts them.
        for s in segs {
            let (pto, ts) = if s.adaptation_set == 0 {
                (VIDEO_PTO, VIDEO_TS)
            } else {
                (AUDIO_PTO, AUDIO_TS)
            };
            let want = Duration::from_nanos((s.media_time - pto) * 1_000_000_000 / ts);
            // A piece starting between two ticks gets the nearer tick as presentationTimeOffset: within half
            // a tick of the timescale (11 µs at 44.1 kHz), below a sample.
            let half_tick = Duration::from_nanos(500_000_000 / ts + 2);
            prop_assert!(
                s.start.abs_diff(want) <= half_tick,
                "{id}: {} at {:?}, content has it at {want:?}",
                s.url,
                s.start
            );
        }
    }
    Ok(())
}

fn check_pair(a: &Snapshot, b: &Snapshot) -> Result<(), TestCaseError> {
    for (id, (start_a, segs_a)) in a {
        let Some((start_b, segs_b)) = b.get(id) else {
            continue;
        };
        prop_assert_eq!(start_a, start_b, "Period {} moved", id);
        let by_url: HashMap<(usize, &str, &str), &SegmentRef> = segs_a
            .iter()
            .map(|s| {
                (
                    (
                        s.adaptation_set,
                        s.representation_id.as_str(),
                        s.url.as_str(),
                    ),
                    s,
                )
            })
            .collect();
        let by_time: HashMap<(usize, &str, Duration), &SegmentRef> = segs_a
            .iter()
            .map(|s| ((s.adaptation_set, s.representation_id.as_str(), s.start), s))
            .collect();
        for s in segs_b {
            if let Some(o) = by_url.get(&(
                s.adaptation_set,
                s.representation_id.as_str(),
                s.url.as_str(),
            )) {
                prop_assert!(
                    close(o.start, s.start),
                    "{id}: {} moved from {:?} to {:?}",
                    s.url,
                    o.start,
                    s.start
                );
                prop_assert_eq!(o.duration, s.duration, "{}: {} changed length", id, s.url);
            }
            if let Some(o) = by_time.get(&(s.adaptation_set, s.representation_id.as_str(), s.start))
            {
                prop_assert_eq!(
                    &o.url,
                    &s.url,
                    "{}: the segment at {:?} changed URL",
                    id,
                    s.start
                );
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn refreshes_keep_period_ids_starts_and_segment_addressing(sc in scenario()) {
        let mut edge = 5u64;
        let mut snaps: Vec<Snapshot> = Vec::new();
        for step in &sc.steps {
            edge += step;
            let (mpd, snap) = stitched_at(&sc, edge);
            check_one(&mpd, &snap)?;
            snaps.push(snap);
        }
        for pair in snaps.windows(2) {
            check_pair(&pair[0], &pair[1])?;
        }
        if let (Some(first), Some(last)) = (snaps.first(), snaps.last()) {
            check_pair(first, last)?;
        }
        // A viewer joining at any refresh gets, for every Period, what a viewer there from the start got.
        for k in 0..snaps.len() {
            check_pair(&snaps[k], &snaps[snaps.len() - 1])?;
        }
    }
}
