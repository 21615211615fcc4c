//! Golden tests over real MPDs (`tests/data/`, sources in `tests/data/SOURCES.md`): every file reads, writes
//! and reads back to the same model; the SCTE-35 breaks found are the ones worked out by hand from the files.

use std::path::PathBuf;
use std::time::Duration;

use interlude_dash::{
    CueDirection, DurationSource, Mpd, MpdType, parse_mpd, parse_mpd_bytes, scan, write_mpd,
};
use interlude_scte35::SegmentationTypeId;

fn data(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn mpd(name: &str) -> Mpd {
    parse_mpd(&data(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

const FILES: [&str; 10] = [
    "a2d-tv.mpd",
    "admanager.xml",
    "avod-mediatailor.mpd",
    "aws.xml",
    "jurassic-compact-5975.mpd",
    "mediapackage.xml",
    "orange.xml",
    "telestream-binary.xml",
    "telestream-elements.xml",
    "vod-aip-unif-streaming.mpd",
];

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

#[test]
fn every_file_reads_and_round_trips_to_the_same_model() {
    for name in FILES {
        let model = mpd(name);
        let written = write_mpd(&model);
        let again =
            parse_mpd(&written).unwrap_or_else(|e| panic!("{name} as written: {e}\n{written}"));
        assert_eq!(
            again, model,
            "{name}: parse → write → parse changed the model"
        );
        assert_eq!(
            write_mpd(&again),
            written,
            "{name}: writing is not a fixed point"
        );
        // What SSAI reads survives too.
        assert_eq!(scan(&again), scan(&model), "{name}: the scan changed");
    }
}

#[test]
fn truncated_and_mangled_files_are_errors_not_panics() {
    for name in FILES {
        let text = data(name);
        let bytes = text.as_bytes();
        let step = (bytes.len() / 200).max(1);
        for cut in (0..bytes.len()).step_by(step) {
            if let Ok(m) = parse_mpd_bytes(&bytes[..cut]) {
                let _ = scan(&m);
            }
        }
        // Every digit bumped: numbers change, nothing may panic.
        let bumped: String = text
            .chars()
            .map(|c| if c == '9' { '0' } else { c })
            .collect();
        if let Ok(m) = parse_mpd(&bumped) {
            let _ = scan(&m);
        }
    }
}

#[test]
fn live_attributes_are_typed() {
    // orange.xml's MPD element, read by eye.
    let m = mpd("orange.xml");
    assert_eq!(m.mpd_type, Some(MpdType::Dynamic));
    assert_eq!(
        m.availability_start_time.map(|t| t.timestamp()),
        Some(0),
        "availabilityStartTime=1970-01-01T00:00:00Z"
    );
    assert_eq!(
        m.publish_time.map(|t| t.to_rfc3339()),
        Some("2023-05-24T12:48:37.731482+00:00".to_string())
    );
    assert_eq!(m.minimum_update_period, Some(ms(2_000)));
    assert_eq!(m.time_shift_buffer_depth, Some(ms(30_000)));
    assert_eq!(m.min_buffer_time, Some(ms(2_000)));
    assert_eq!(m.max_segment_duration, Some(ms(3_000)));
    assert_eq!(m.periods.len(), 1);
    let video = m.periods[0]
        .adaptation_sets
        .iter()
        .find(|a| a.content_type.as_deref() == Some("video"))
        .expect("a video adaptation set");
    assert_eq!(video.representations[0].width, Some(400));
    assert_eq!(video.representations[0].frame_rate.as_deref(), Some("25"));
    assert_eq!(
        video.segment_template.as_ref().and_then(|t| t.timescale),
        Some(600)
    );
    // admanager.xml: the SegmentTemplate is on the AdaptationSet.
    let ad = mpd("admanager.xml");
    assert_eq!(ad.suggested_presentation_delay, None);
    let audio = &ad.periods[0].adaptation_sets[0];
    assert_eq!(audio.lang.as_deref(), Some("eng"));
    assert_eq!(audio.roles[0].value.as_deref(), Some("main"));
    let tl = audio
        .segment_template
        .as_ref()
        .and_then(|t| t.timeline.as_ref())
        .expect("timeline");
    assert_eq!((tl[0].t, tl[0].d, tl[0].r), (Some(0), 132_300, 20));
}

#[test]
fn admanager_splice_insert_out_and_in() {
    // EventStream timescale 90000 in Period start PT0S. Event 1: presentationTime 270000 → 3 s, a
    // splice_insert (event 4002) out with break_duration 2700000 ticks → 30 s; Event 2: 2970000 → 33 s, the
    // splice_insert in of the same event.
    let s = scan(&mpd("admanager.xml"));
    assert_eq!(s.breaks.len(), 1);
    let b = &s.breaks[0];
    assert_eq!(b.start, ms(3_000));
    assert_eq!(b.duration, Some(ms(30_000)));
    assert_eq!(b.duration_source, Some(DurationSource::Signal));
    assert_eq!(b.ended_at, Some(ms(33_000)));
    assert_eq!(b.splice_event_id, Some(4002));
    assert_eq!(b.id, "e4002-3000");
    assert_eq!(s.cues.len(), 2);
    assert!(s.problems.is_empty());
}

#[test]
fn telestream_xml_time_signal_with_segmentation_descriptors() {
    // 2013:xml, timescale 90000: a TimeSignal with segmentationTypeId 52 (0x34, provider placement
    // opportunity start), segmentationDuration 2700000 → 30 s, at 900000 → 10 s; then type 53 (0x35, its
    // end) at 3600000 → 40 s. Both carry spliceEventId="1".
    let s = scan(&mpd("telestream-elements.xml"));
    assert_eq!(s.breaks.len(), 1);
    let b = &s.breaks[0];
    assert_eq!(
        (b.start, b.duration, b.ended_at),
        (ms(10_000), Some(ms(30_000)), Some(ms(40_000)))
    );
    assert_eq!(
        b.segmentation_type_id,
        Some(SegmentationTypeId::ProviderPlacementOpportunityStart)
    );
    assert_eq!(b.splice_event_id, Some(1));
    assert_eq!(s.cues[1].direction, CueDirection::In);
}

#[test]
fn telestream_binary_splice_inserts() {
    // xml+bin, timescale 90000: two splice_insert outs (events 0x2D1 = 721 and 0x2D2 = 722, read from the
    // base64), each with break_duration 0x1A17B0 = 1710000 ticks → 19 s, at 900000 → 10 s and 3600000 → 40 s.
    let s = scan(&mpd("telestream-binary.xml"));
    let got: Vec<_> = s
        .breaks
        .iter()
        .map(|b| (b.splice_event_id, b.start, b.duration))
        .collect();
    assert_eq!(
        got,
        [
            (Some(721), ms(10_000), Some(ms(19_000))),
            (Some(722), ms(40_000), Some(ms(19_000)))
        ]
    );
}

#[test]
fn mediapackage_break_in_its_own_period() {
    // The second Period (id 21) starts at PT44.075S and opens with a 2013:xml splice_insert out (event
    // 1000) whose Event has no presentationTime (0 → the Period start). No break_duration, no Event@duration,
    // no cue-in, and the Period is the last of an MPD without a duration: the length is unknown.
    let s = scan(&mpd("mediapackage.xml"));
    assert_eq!(s.breaks.len(), 1);
    let b = &s.breaks[0];
    assert_eq!(b.start, ms(44_075));
    assert_eq!(b.duration, None);
    assert_eq!(b.splice_event_id, Some(1000));
    assert_eq!(b.out.period_id.as_deref(), Some("21"));
    assert_eq!(b.out.section.pts_adjustment, 183_003);
    // ptsTime 3783780 + ptsAdjustment 183003 = 3966783 ticks = 44.0754 s, the Period start to 0.5 ms.
    assert_eq!(b.out.section.splice_pts(), Some(3_966_783));
}

#[test]
fn mediapackage_period_with_an_end_gives_the_break_length() {
    // The same MPD with the break Period closed by a Period@duration (as MediaPackage writes it once the
    // cue-in has come): Period-based signalling gives the length.
    let mut m = mpd("mediapackage.xml");
    m.periods[1].duration = Some(ms(28_028));
    let s = scan(&m);
    assert_eq!(s.breaks[0].duration, Some(ms(28_028)));
    assert_eq!(s.breaks[0].duration_source, Some(DurationSource::Period));
}

#[test]
fn orange_live_time_signals_on_an_epoch_timeline() {
    // Dynamic, availabilityStartTime 1970-01-01, EventStream timescale 10000000. Event 3106345436 at
    // 16849324677251439 → 1684932467.7251439 s (2023-05-24T12:47:47.7251439Z, the comment in the file), a
    // time_signal whose provider advertisement start (0x30, event 0x5FA0B = 391691) has
    // segmentation_duration 0x2932E0 = 2700000 ticks → 30 s (Event@duration 300000000 agrees). Event
    // 2860777356 at 16849324980851439 → 1684932498.0851439 s, event 391692, 0x1F95F0 = 2070000 → 23 s.
    let m = mpd("orange.xml");
    let s = scan(&m);
    let got: Vec<_> = s
        .breaks
        .iter()
        .map(|b| {
            (
                b.splice_event_id,
                b.start,
                b.duration,
                b.segmentation_type_id,
            )
        })
        .collect();
    let start1 = Duration::new(1_684_932_467, 725_143_900);
    let start2 = Duration::new(1_684_932_498, 85_143_900);
    let adv = Some(SegmentationTypeId::ProviderAdvertisementStart);
    assert_eq!(
        got,
        [
            (Some(391_691), start1, Some(ms(30_000)), adv),
            (Some(391_692), start2, Some(ms(23_000)), adv)
        ]
    );
    let wall =
        m.availability_start_time.expect("AST") + chrono::Duration::from_std(start1).expect("fits");
    assert_eq!(wall.to_rfc3339(), "2023-05-24T12:47:47.725143900+00:00");
    // Six adaptation sets declare SCTE-35 in band (audio ×3, text ×2, video).
    assert_eq!(s.inband.len(), 6);
    assert!(s.inband.iter().all(|i| i.value.as_deref() == Some("185")));
}

#[test]
fn a2d_splice_inserts_without_duration() {
    // Timescale 25: 17397 → 695.88 s, 35105 → 1404.2 s, 45824 → 1832.96 s; splice_insert outs (events 1,
    // 2, 3) with break_duration 0 and Event@duration 0: length unknown.
    let s = scan(&mpd("a2d-tv.mpd"));
    let got: Vec<_> = s
        .breaks
        .iter()
        .map(|b| (b.splice_event_id, b.start, b.duration))
        .collect();
    assert_eq!(
        got,
        [
            (Some(1), ms(695_880), None),
            (Some(2), ms(1_404_200), None),
            (Some(3), ms(1_832_960), None)
        ]
    );
    assert_eq!(s.inband.len(), 3);
}

#[test]
fn jurassic_zero_length_placements_in_lower_case_signal_elements() {
    // `scte35:signal/scte35:binary` in lower case; timescale 90000. Events 6..13 come in pairs at the same
    // time: a time_signal break start (0x22) with segmentation_duration 0 and a break end (0x23): zero-length
    // insertion points of a VOD asset. 57946698/90000 = 643.8522 s, 107789040 → 1197.656 s, 162834084 →
    // 1809.2676 s, 213333335 → 2370.370388889 s (rounded to the ns), 276276276 → 3069.7364 s, 318284532 →
    // 3536.4948 s, 366201198 → 4068.9022 s, 420138891 → 4668.2099 s. Event 1 (content identification) and
    // event 3 (closing credits) are not breaks.
    let s = scan(&mpd("jurassic-compact-5975.mpd"));
    let starts: Vec<Duration> = s.breaks.iter().map(|b| b.start).collect();
    assert_eq!(
        starts,
        [
            ms(643_852) + Duration::from_micros(200),
            ms(1_197_656),
            ms(1_809_267) + Duration::from_micros(600),
            Duration::new(2_370, 370_388_889),
            ms(3_069_736) + Duration::from_micros(400),
            ms(3_536_494) + Duration::from_micros(800),
            ms(4_068_902) + Duration::from_micros(200),
            ms(4_668_209) + Duration::from_micros(900),
        ]
    );
    assert!(s.breaks.iter().all(|b| b.duration == Some(Duration::ZERO)));
    assert!(
        s.breaks
            .iter()
            .all(|b| b.segmentation_type_id == Some(SegmentationTypeId::BreakStart))
    );
    assert_eq!(s.cues.len(), 19);
}

#[test]
fn aws_mediatailor_period_cue_is_a_break_end() {
    // The first ad Period (8778696_PT0S_0) carries one xml+bin Event without presentationTime: a
    // time_signal whose segmentation descriptor (event 0x3443 = 13379) has type 0x23, break end. No cue-out,
    // so no break: the MPD is already stitched (its ad Periods are MediaTailor's).
    let s = scan(&mpd("aws.xml"));
    assert_eq!(s.cues.len(), 1);
    assert_eq!(s.cues[0].direction, CueDirection::In);
    assert_eq!(s.cues[0].time, Duration::ZERO);
    assert_eq!(s.cues[0].splice_event_id(), Some(13_379));
    assert!(s.breaks.is_empty());
}

#[test]
fn files_without_event_stream_cues_report_in_band_declarations() {
    // avod-mediatailor: empty SCTE-35 EventStreams (only comments), InbandEventStream in both adaptation sets
    // of the 4 content Periods; vod-aip: InbandEventStream in both adaptation sets of 4 Periods.
    for (name, inband) in [
        ("avod-mediatailor.mpd", 8),
        ("vod-aip-unif-streaming.mpd", 8),
    ] {
        let s = scan(&mpd(name));
        assert!(s.breaks.is_empty(), "{name}");
        assert_eq!(s.inband.len(), inband, "{name}");
    }
}
