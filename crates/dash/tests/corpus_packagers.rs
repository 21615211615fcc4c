//! Golden tests over SCTE-35 signalling as other packagers, SSAI services and DASH libraries write it
//! (`tests/data/`, sources in `tests/data/SOURCES.md`): AWS Elemental MediaTailor's documented origin
//! Periods, Azure Media Services' documented EventStream, and Eyevinn's dash-mpd SCTE-35 fixtures. Each file
//! reads, writes and reads back to the same model, and its breaks are read exactly as worked out by hand.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::time::Duration;

use interlude_dash::{AdBreak, DurationSource, Mpd, Scan, ScanWarning, parse_mpd, scan, write_mpd};
use interlude_scte35::{SegmentationTypeId, SegmentationUpid};

fn mpd(name: &str) -> Mpd {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    parse_mpd(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

const FILES: [&str; 7] = [
    "aws-mediatailor-origin-splice-insert.mpd",
    "aws-mediatailor-origin-time-signal.mpd",
    "azure-media-services-xmlbin.mpd",
    "eyevinn-splice-insert.mpd",
    "eyevinn-time-signal-segmentation.mpd",
    "eyevinn-direct-splice-info-section.mpd",
    "eyevinn-signal-binary-xmlbin.mpd",
];

/// (id, start, duration, source, splice event id) of a break.
type Row<'a> = (
    &'a str,
    Duration,
    Option<Duration>,
    Option<DurationSource>,
    Option<u32>,
);

/// Every break as a [`Row`].
fn breaks(s: &Scan) -> Vec<Row<'_>> {
    s.breaks
        .iter()
        .map(|b: &AdBreak| {
            (
                b.id.as_str(),
                b.start,
                b.duration,
                b.duration_source,
                b.splice_event_id,
            )
        })
        .collect()
}

fn upid(b: &AdBreak) -> SegmentationUpid {
    b.out
        .segmentation()
        .map(|(_, u)| u.clone())
        .expect("a segmentation descriptor")
}

#[test]
fn every_file_round_trips_and_scans_without_problems() {
    for name in FILES {
        let m = mpd(name);
        let text = write_mpd(&m);
        assert_eq!(parse_mpd(&text).expect("reads back"), m, "{name}");
        let s = scan(&m);
        assert!(s.problems.is_empty(), "{name}: {:?}", s.problems);
        assert!(!s.breaks.is_empty(), "{name}: no break");
    }
}

#[test]
fn aws_mediatailor_splice_insert_origin_period() {
    // Period start PT173402.036S, the Event without presentationTime (so at the Period start), BreakDuration
    // and Event@duration both 9 450 000 / 90 kHz = 105 s; no Event@id.
    let s = scan(&mpd("aws-mediatailor-origin-splice-insert.mpd"));
    assert_eq!(
        breaks(&s),
        [(
            "e99-173402036",
            Duration::new(173_402, 36_000_000),
            Some(Duration::from_secs(105)),
            Some(DurationSource::Signal),
            Some(99)
        )]
    );
    assert_eq!(s.breaks[0].out.event_id, None);
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
}

#[test]
fn aws_mediatailor_time_signal_with_its_type_on_the_upid() {
    // segmentationTypeId="52" (provider placement opportunity start) sits on SegmentationUpid, not on the
    // descriptor: read from there, with a warning. segmentationDuration 8 100 000 = 90 s; Event@duration
    // 5 310 000 = 59 s is within tenfold, so the cue's own duration stands. The UPID is MPU (12) in hex,
    // two bytes — too short for an MPU's format identifier, so kept as bytes.
    let s = scan(&mpd("aws-mediatailor-origin-time-signal.mpd"));
    assert_eq!(
        breaks(&s),
        [(
            "e1414668-346530250",
            Duration::new(346_530, 250_000_000),
            Some(Duration::from_secs(90)),
            Some(DurationSource::Signal),
            Some(1_414_668)
        )]
    );
    let b = &s.breaks[0];
    assert_eq!(
        b.segmentation_type_id,
        Some(SegmentationTypeId::ProviderPlacementOpportunityStart)
    );
    assert_eq!(b.out.event_duration, Some(Duration::from_secs(59)));
    assert_eq!(
        upid(b),
        SegmentationUpid::Other {
            upid_type: 12,
            bytes: vec![1, 0]
        }
    );
    assert!(
        matches!(&s.warnings[..], [ScanWarning::FieldIgnored { reason, .. }] if reason.contains("segmentationTypeId=52")),
        "{:?}",
        s.warnings
    );
}

#[test]
fn azure_media_services_xml_bin_events() {
    // Two Events (ids 1026 and 1027) carry the same section: splice_insert out, splice_event_id 0x403 =
    // 1027, break_duration 0x2932E0 = 2 700 000 = 30 s. At 10 MHz: 15 447 165 200 227 600 →
    // 1 544 716 520.02276 s and 15 447 166 250 227 600 → 1 544 716 625.02276 s. Same event id at two times:
    // two breaks.
    let s = scan(&mpd("azure-media-services-xmlbin.mpd"));
    let thirty = Some(Duration::from_secs(30));
    assert_eq!(
        breaks(&s),
        [
            (
                "e1027-1544716520022",
                Duration::new(1_544_716_520, 22_760_000),
                thirty,
                Some(DurationSource::Signal),
                Some(1027)
            ),
            (
                "e1027-1544716625022",
                Duration::new(1_544_716_625, 22_760_000),
                thirty,
                Some(DurationSource::Signal),
                Some(1027)
            )
        ]
    );
    assert!(s.warnings.is_empty());
}

#[test]
fn eyevinn_splice_insert_in_a_signal_element() {
    // 2 346 545 680 / 90 kHz = 26 072.729777… s (to the ns); BreakDuration 2 699 769 = 29.997433… s.
    let s = scan(&mpd("eyevinn-splice-insert.mpd"));
    assert_eq!(
        breaks(&s),
        [(
            "e4157-26072729",
            Duration::new(26_072, 729_777_778),
            Some(Duration::new(29, 997_433_333)),
            Some(DurationSource::Signal),
            Some(4157)
        )]
    );
    assert!(s.warnings.is_empty());
}

#[test]
fn eyevinn_time_signal_with_a_text_upid_and_no_format() {
    // The ADI UPID "PROVIDERX" has no segmentationUpidFormat (so hexbinary by the schema) and is not hex:
    // taken as the text it is, with a warning, and the break stands (it used to drop the whole cue).
    let s = scan(&mpd("eyevinn-time-signal-segmentation.mpd"));
    assert_eq!(
        breaks(&s),
        [(
            "e99-10000",
            Duration::from_secs(10),
            Some(Duration::from_secs(30)),
            Some(DurationSource::Signal),
            Some(99)
        )]
    );
    assert_eq!(
        upid(&s.breaks[0]),
        SegmentationUpid::Adi("PROVIDERX".into())
    );
    assert!(
        matches!(&s.warnings[..], [ScanWarning::FieldIgnored { path, .. }] if path == "MPD/Period[1]/EventStream[1]/Event[1]"),
        "{:?}",
        s.warnings
    );
}

#[test]
fn eyevinn_splice_info_section_straight_in_the_event() {
    // MediaTailor style: no Signal wrapper. Period start 48 h 10 min 2.036 s; an empty TI UPID (type 8).
    let s = scan(&mpd("eyevinn-direct-splice-info-section.mpd"));
    assert_eq!(
        breaks(&s),
        [(
            "e99-173402036",
            Duration::new(173_402, 36_000_000),
            Some(Duration::from_secs(105)),
            Some(DurationSource::Signal),
            Some(99)
        )]
    );
    assert_eq!(
        upid(&s.breaks[0]),
        SegmentationUpid::Other {
            upid_type: 8,
            bytes: Vec::new()
        }
    );
}

#[test]
fn eyevinn_binary_signal_whose_event_duration_is_in_another_unit() {
    // time_signal, segmentation type 0x34 with segmentation_duration 0x15B7150 = 22 770 000 = 253 s;
    // Event@duration 12 650 at 10 MHz is 1.265 ms (253 s in 50 Hz units): the plausible cue wins, warned.
    let s = scan(&mpd("eyevinn-signal-binary-xmlbin.mpd"));
    assert_eq!(
        breaks(&s),
        [(
            "e872416252-8902811",
            Duration::new(8_902, 811_976_000),
            Some(Duration::from_secs(253)),
            Some(DurationSource::Signal),
            Some(872_416_252)
        )]
    );
    assert_eq!(
        s.warnings,
        [ScanWarning::DurationsDisagree {
            break_id: "e872416252-8902811".into(),
            signalled: Duration::from_secs(253),
            event_duration: Duration::from_micros(1_265),
            chosen: DurationSource::Signal,
        }]
    );
}
