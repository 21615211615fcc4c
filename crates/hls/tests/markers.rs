//! Ad-marker golden tests over real playlists (sources in tests/data/SOURCES.md) and the dialect forms the
//! samples lack, built from the same tag grammar.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use interlude_hls::markers::{AdBreak, Dialect, extract_breaks};
use interlude_hls::parse_media_playlist;

fn breaks_of(file: &str) -> Vec<AdBreak> {
    let path = format!("{}/tests/data/{file}", env!("CARGO_MANIFEST_DIR"));
    extract_breaks(&parse_media_playlist(&std::fs::read_to_string(path).unwrap()).unwrap())
}

fn breaks_in(text: &str) -> Vec<AdBreak> {
    extract_breaks(&parse_media_playlist(text).unwrap())
}

/// (id, start, first, planned, end, dialect) of each break.
type Shape = (
    String,
    Option<usize>,
    usize,
    Option<f64>,
    Option<usize>,
    Dialect,
);

fn shape(b: &AdBreak) -> Shape {
    (
        b.id.clone(),
        b.start_segment,
        b.first_segment,
        b.planned_duration.map(|d| (d * 1000.0).round() / 1000.0),
        b.end_segment,
        b.dialect,
    )
}

#[test]
fn cue_out_with_id_cue_span_and_cue_in_form_one_break() {
    let b = breaks_of("grafov-media-playlist-with-adobe.m3u8");
    assert_eq!(
        b.iter().map(shape).collect::<Vec<_>>(),
        vec![(
            "100".into(),
            Some(3),
            3,
            Some(119.0),
            Some(6),
            Dialect::CueOut
        )]
    );
    assert_eq!(b[0].last_signalled_segment, Some(5));
}

#[test]
fn bare_cue_out_duration_and_elapsed_duration_cont_are_read() {
    let b = breaks_of("grafov-media-playlist-with-cue-scte35.m3u8");
    assert_eq!(
        shape(&b[0]),
        (
            "msn-2".into(),
            Some(2),
            2,
            Some(18.0),
            Some(5),
            Dialect::CueOut
        )
    );
    assert_eq!(b[0].last_signalled_segment, Some(4));
}

/// `#EXT-X-CUE-OUT:19,ID=0,PARTNER=gumgum`: a duration before an attribute list (the form Adobe SSAI and
/// Elemental write with attributes); it used to lose the duration.
#[test]
fn cue_out_duration_before_attributes_is_read() {
    let b = breaks_of("grafov-media-playlist-with-cue-out-partner-gumgum.m3u8");
    assert_eq!(
        shape(&b[0]),
        ("0".into(), Some(4), 4, Some(19.0), Some(7), Dialect::CueOut)
    );
}

#[test]
fn several_breaks_and_one_still_open_at_the_live_edge() {
    let b = breaks_of("grafov-media-playlist-with-cue-out-partner-triplelift.m3u8");
    let ends: Vec<_> = b.iter().map(|b| (b.id.as_str(), b.end_segment)).collect();
    assert_eq!(
        ends,
        vec![("1015", Some(12)), ("1016", Some(28)), ("1017", None)]
    );
}

#[test]
fn oatcls_cue_wins_and_its_mid_break_repeat_is_not_a_new_break() {
    let b = breaks_of("grafov-media-playlist-with-oatcls-scte35-cue-in.m3u8");
    assert_eq!(b.len(), 1, "{b:?}");
    assert_eq!(
        shape(&b[0]),
        (
            "scte35-1".into(),
            Some(0),
            0,
            Some(15.0),
            Some(2),
            Dialect::Oatcls
        )
    );
    assert_eq!(b[0].event_id, Some(1));
    assert!(b[0].warnings.is_empty());
}

#[test]
fn daterange_out_and_in_map_by_program_date_time_and_prefer_the_cue() {
    let b = breaks_of("grafov-media-playlist-with-daterange.m3u8");
    assert_eq!(b.len(), 1, "{b:?}");
    // The SCTE35-OUT cue's segmentation_duration (15,296,999 ticks) wins over PLANNED-DURATION=26.
    assert_eq!(
        shape(&b[0]),
        (
            "2".into(),
            Some(0),
            0,
            Some(169.967),
            Some(5),
            Dialect::DateRange
        )
    );
}

#[test]
fn daterange_scte35_out_splice_insert_event_id() {
    let b = breaks_of("grafov-media-playlist-with-daterange-scte35.m3u8");
    assert_eq!(
        shape(&b[0]),
        (
            "splice-4000C76".into(),
            Some(1),
            1,
            Some(60.0),
            None,
            Dialect::DateRange
        )
    );
    assert_eq!(b[0].event_id, Some(0x4000C76));
}

#[test]
fn undecodable_cue_still_yields_the_break_with_a_warning() {
    let b = breaks_of("grafov-media-playlist-with-scte35-daterange.m3u8");
    assert_eq!(
        shape(&b[0]),
        (
            "splice-6FFFFFF0".into(),
            Some(2),
            2,
            Some(60.0),
            Some(6),
            Dialect::DateRange
        )
    );
    assert!(
        b[0].warnings[0].contains("SCTE35-OUT: undecodable SCTE-35"),
        "{:?}",
        b[0].warnings
    );
}

#[test]
fn a_break_that_ends_where_it_starts_is_dropped() {
    assert!(breaks_of("grafov-media-playlist-with-cue-scte35-empty-segments.m3u8").is_empty());
}

#[test]
fn a_cont_only_window_gives_the_elapsed_time_at_its_first_segment() {
    let b = breaks_of("grafov-media-playlist-with-timefromsignal.m3u8");
    assert_eq!(
        (
            b[0].start_segment,
            b[0].first_segment,
            b[0].elapsed_at_first
        ),
        (None, 0, 6.0)
    );
}

#[test]
fn x_scte35_cue_in_only_gives_an_end() {
    let b = breaks_of("grafov-media-playlist-with-x-scte35.m3u8");
    assert_eq!(
        (b[0].start_segment, b[0].end_segment, b[0].dialect),
        (None, Some(1), Dialect::Scte35Tag)
    );
}

#[test]
fn m3u8rs_daterange_cues() {
    let b = breaks_of("m3u8rs-media-playlist-with-cues-1.m3u8");
    assert_eq!(
        shape(&b[0]),
        (
            "20".into(),
            Some(1),
            1,
            Some(19.0),
            Some(4),
            Dialect::DateRange
        )
    );
}

const HEAD: &str = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:100\n";

#[test]
fn slash_form_cont_opens_a_break_whose_start_slid_out() {
    let b = breaks_in(&format!(
        "{HEAD}#EXT-X-CUE-OUT-CONT:8.000/30\n#EXTINF:2,\na.ts\n#EXT-X-CUE-OUT-CONT:10/30\n#EXTINF:2,\nb.ts\n"
    ));
    assert_eq!(
        (
            b[0].id.as_str(),
            b[0].start_segment,
            b[0].elapsed_at_first,
            b[0].planned_duration
        ),
        // The id names the start a reader that saw it derived: 8 s of 2 s segments before sequence 100.
        ("msn-96", None, 8.0, Some(30.0))
    );
    assert!(!b[0].id_from_tag);
    assert_eq!(b[0].last_signalled_segment, Some(1));
}

#[test]
fn x_scte35_with_explicit_flags_and_splicepoint() {
    // splice_insert out, event 1, 15 s (from the OATCLS sample above).
    let cue = "/DAlAAAAAAAAAP/wFAUAAAABf+/+ANgNkv4AFJlwAAEBAQAA5xULLA==";
    let text = format!(
        "{HEAD}#EXT-X-SCTE35:CUE=\"{cue}\",CUE-OUT=YES,DURATION=15\n#EXTINF:2,\na.ts\n#EXT-X-SCTE35:CUE=\"{cue}\",CUE-OUT=CONT\n#EXTINF:2,\nb.ts\n#EXT-X-SCTE35:CUE-IN=YES\n#EXTINF:2,\nc.ts\n"
    );
    let b = breaks_in(&text);
    assert_eq!(
        (b[0].start_segment, b[0].end_segment, b[0].event_id),
        (Some(0), Some(2), Some(1))
    );
    let b = breaks_in(&format!(
        "{HEAD}#EXT-X-SPLICEPOINT-SCTE35:{cue}\n#EXTINF:2,\na.ts\n"
    ));
    assert_eq!(
        (b[0].dialect, b[0].planned_duration),
        (Dialect::SplicePoint, Some(15.0))
    );
}

#[test]
fn cue_in_after_the_last_segment_ends_the_break_at_the_next_one() {
    let b = breaks_in(&format!(
        "{HEAD}#EXT-X-CUE-OUT:DURATION=4\n#EXTINF:2,\na.ts\n#EXTINF:2,\nb.ts\n#EXT-X-CUE-IN\n"
    ));
    assert_eq!(
        (b[0].start_segment, b[0].end_segment, b[0].planned_duration),
        (Some(0), Some(2), Some(4.0))
    );
}

#[test]
fn oatcls_program_boundary_cue_is_not_a_break() {
    // time_signal with a Program Start (0x10) segmentation descriptor, encoded with the scte35 crate.
    let cue = interlude_scte35::SpliceInfoSection::time_signal_segmentation(900_000, 0x10, 7, None)
        .to_base64()
        .unwrap();
    assert!(
        breaks_in(&format!(
            "{HEAD}#EXT-OATCLS-SCTE35:{cue}\n#EXTINF:2,\na.ts\n"
        ))
        .is_empty()
    );
}
