//! Marker forms that vendors document as tags rather than as whole playlists, each test naming the page its
//! tags are copied from, placed in minimal playlists; then dialects mixed in one stream, and breaks whose cue
//! does not decode. Every test asserts the exact break starts, planned durations and ends read.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use interlude_hls::markers::{AdBreak, Dialect, Extracted};
use interlude_hls::parse_media_playlist_with_warnings;
use interlude_scte35::{SpliceInfoSection, TICKS_PER_SECOND};

/// Segments of 2 s named s0.ts, s1.ts, ...; `tags[i]` goes before segment i (the last entry after the last
/// segment), and a program date time starts the playlist at 2026-01-01T00:00:00Z.
fn playlist(tags: &[&str]) -> String {
    let mut text = String::from(
        "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:100\n#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:00Z\n",
    );
    for (i, t) in tags.iter().enumerate() {
        for line in t.lines() {
            text.push_str(line);
            text.push('\n');
        }
        if i + 1 < tags.len() {
            text.push_str(&format!("#EXTINF:2.000,\ns{i}.ts\n"));
        }
    }
    text
}

fn extract(tags: &[&str]) -> Extracted {
    parse_media_playlist_with_warnings(&playlist(tags))
        .unwrap()
        .breaks()
}

/// (id, start, planned, end, dialect)
type Shape = (String, Option<usize>, Option<f64>, Option<usize>, Dialect);

fn shape(b: &AdBreak) -> Shape {
    (
        b.id.clone(),
        b.start_segment,
        b.planned_duration.map(|d| (d * 1e6).round() / 1e6),
        b.end_segment,
        b.dialect,
    )
}

fn shapes(e: &Extracted) -> Vec<Shape> {
    e.breaks.iter().map(shape).collect()
}

/// Adobe Primetime KB "What is #EXT-X-CUE-OUT-CONT used for in a SSAI manifest?": a duration, then attributes,
/// on CUE-OUT, CUE-OUT-CONT and CUE-IN.
#[test]
fn adobe_ssai_duration_then_signal_id() {
    let e = extract(&[
        "#EXT-X-CUE-OUT:177.100,SignalID=",
        "#EXT-X-CUE-OUT-CONT:5.005/177.100,SignalID=",
        "#EXT-X-CUE-IN:177.100,SignalID=",
        "",
    ]);
    assert_eq!(
        shapes(&e),
        vec![(
            "msn-100".into(),
            Some(0),
            Some(177.1),
            Some(2),
            Dialect::CueOut
        )]
    );
    assert_eq!(e.breaks[0].last_signalled_segment, Some(1));
}

/// AWS Elemental MediaLive "Sample manifests - HLS", Adobe style: quoted attributes, no CONT and no CUE-IN.
#[test]
fn medialive_adobe_style_ext_x_cue() {
    let e = extract(&[
        r#"#EXT-X-CUE:DURATION="201.467",ID="0",TYPE="SpliceOut",TIME="414.171""#,
        "",
        "",
    ]);
    assert_eq!(
        shapes(&e),
        vec![("0".into(), Some(0), Some(201.467), None, Dialect::Cue)]
    );
}

/// The same page, Elemental style: `#EXT-X-CUE-OUT-CONT: 8.308/30` with a space after the colon.
#[test]
fn medialive_elemental_style_cont_with_a_space() {
    let e = extract(&[
        "#EXT-X-CUE-OUT:30.000",
        "#EXT-X-CUE-OUT-CONT: 8.308/30",
        "#EXT-X-CUE-OUT-CONT: 20.391/30",
        "#EXT-X-CUE-IN",
        "",
    ]);
    assert_eq!(
        shapes(&e),
        vec![(
            "msn-100".into(),
            Some(0),
            Some(30.0),
            Some(3),
            Dialect::CueOut
        )]
    );
    assert_eq!(e.breaks[0].last_signalled_segment, Some(2));
}

/// The same page, SCTE-35 enhanced style: OATCLS with a time_signal 0x34 of 201.4671 s, ASSET, CUE-OUT:201.467
/// (the cue's duration rounded down), CONT with ElapsedTime/Duration/SCTE35, CUE-IN. The cue's exact duration
/// is the break's; the CUE-OUT's rounded one is what a playlist without the cue keeps.
#[test]
fn medialive_scte35_enhanced_style() {
    let cue = "/DA0AAAAAAAAAAAABQb+ADAQ6QAeAhxDVUVJQAAAO3/PAAEUrEoICAAAAAAg+2UBNAAANvrtoQ==";
    let start = format!(
        "#EXT-OATCLS-SCTE35:{cue}\n#EXT-X-ASSET:CAID=0x0000000020FB6501\n#EXT-X-CUE-OUT:201.467"
    );
    let cont = format!("#EXT-X-CUE-OUT-CONT:ElapsedTime=2.000,Duration=201.467,SCTE35={cue}");
    let e = extract(&[&start, &cont, "#EXT-X-CUE-IN", ""]);
    assert_eq!(
        shapes(&e),
        vec![(
            "scte35-1073741883".into(),
            Some(0),
            Some(201.467133),
            Some(2),
            Dialect::Oatcls
        )]
    );
    let e = extract(&["#EXT-X-CUE-OUT:201.467", &cont, "#EXT-X-CUE-IN", ""]);
    assert_eq!(e.breaks[0].planned_duration, Some(201.467));
}

/// CUE-OUT durations are often rounded down (29 for a 29.97 s break); the stated value is kept as is.
#[test]
fn cue_out_duration_is_kept_as_stated() {
    let mut tags = vec!["#EXT-X-CUE-OUT:29"];
    tags.extend(std::iter::repeat_n("", 15));
    tags.push("#EXT-X-CUE-IN");
    tags.push("");
    let e = extract(&tags);
    assert_eq!(
        shapes(&e),
        vec![(
            "msn-100".into(),
            Some(0),
            Some(29.0),
            Some(16),
            Dialect::CueOut
        )]
    );
}

/// AWS Elemental Live "SCTE-35 ad marker EXT-X-DATERANGE": a start tag with START-DATE, PLANNED-DURATION and
/// SCTE35-OUT (a space after a comma), and an end tag with the same ID, END-DATE, DURATION and SCTE35-IN but no
/// START-DATE. The published SCTE35-IN does not decode (an odd number of hex digits): the end is still read
/// from END-DATE, with a warning naming the line.
#[test]
fn elemental_live_daterange_pair() {
    let text = "#EXTM3U\n#EXT-X-TARGETDURATION:11\n#EXT-X-PROGRAM-DATE-TIME:2018-08-22T21:53:58.079Z\n\
        #EXTINF:2.000,\na.ts\n\
        #EXT-X-DATERANGE:ID=\"999\",START-DATE=\"2018-08-22T21:54:00.079Z\",PLANNED-DURATION=30.000, SCTE35-OUT=0xFC302500000000000000FFF01405000003E77FEFFE0011FB9EFE002932E00001010100004D192A59\n\
        #EXTINF:10.010,\nb.ts\n#EXTINF:10.010,\nc.ts\n#EXTINF:10.010,\nd.ts\n\
        #EXT-X-DATERANGE:ID=\"999\",END-DATE=\"2018-08-22T21:54:30.109Z\",DURATION=30.030, SCTE35-IN=0xFC0000425100FFF0140500000300000000E77FEFFE0011FB9EFE0029004D1932E0000100101002A22\n\
        #EXTINF:2.000,\ne.ts\n";
    let e = parse_media_playlist_with_warnings(text).unwrap().breaks();
    assert_eq!(
        shapes(&e),
        vec![(
            "999".into(),
            Some(1),
            Some(30.0),
            Some(4),
            Dialect::DateRange
        )]
    );
    assert_eq!(e.breaks[0].event_id, Some(999));
    assert!(
        e.breaks[0].warnings[0]
            .starts_with("line 13: EXT-X-DATERANGE SCTE35-IN: undecodable SCTE-35"),
        "{:?}",
        e.breaks[0].warnings
    );
}

/// AWS Elemental MediaTailor "HLS supported ad markers", EXT-X-SPLICEPOINT-SCTE35: a 0x34 start (event 2729,
/// 212.16 s) and a 0x35 end.
#[test]
fn mediatailor_splicepoint_pair() {
    let e = extract(&[
        "#EXT-X-SPLICEPOINT-SCTE35:/DA9AAAAAAAAAP/wBQb+uYbZqwAnAiVDVUVJAAAKqX//AAEjW4AMEU1EU05CMDAxMTMyMjE5M19ONAAAmXz5JA==",
        "",
        "#EXT-X-SPLICEPOINT-SCTE35:/DA4AAAAAAAAAP/wBQb+tTeaawAiAiBDVUVJAAAKqH+/DBFNRFNOQjAwMTEzMjIxOTJfTjUAAIiGK1s=",
        "",
    ]);
    assert_eq!(
        shapes(&e),
        vec![(
            "scte35-2729".into(),
            Some(0),
            Some(212.16),
            Some(2),
            Dialect::SplicePoint
        )]
    );
}

/// Google Ad Manager DAI "Live linear stream ad break encoding (HLS)", example 1.
#[test]
fn google_dai_cue_out_duration_and_cue_in() {
    let e = extract(&[
        "",
        "#EXT-X-CUE-OUT:DURATION=30",
        "",
        "",
        "",
        "#EXT-X-CUE-IN",
        "",
    ]);
    assert_eq!(
        shapes(&e),
        vec![(
            "msn-101".into(),
            Some(1),
            Some(30.0),
            Some(5),
            Dialect::CueOut
        )]
    );
}

fn b64(s: &SpliceInfoSection) -> String {
    s.to_base64().unwrap()
}

/// Dialects mixed in one stream: a DATERANGE + CUE-OUT start (MediaPackage with both marker styles), CONT in
/// both its forms, CUE-IN; an Adobe EXT-X-CUE break; an OATCLS program start outside any break; an
/// EXT-X-SCTE35 break with an OATCLS program end in its middle.
#[test]
fn dialects_mixed_in_one_stream() {
    let out = SpliceInfoSection::splice_insert_out(1, Some(180_000), Some(6 * TICKS_PER_SECOND));
    let hex = out.to_hex().unwrap();
    let program_start = SpliceInfoSection::time_signal_segmentation(1_000_000, 0x10, 7, None);
    let program_end = SpliceInfoSection::time_signal_segmentation(1_200_000, 0x11, 7, None);
    let third =
        SpliceInfoSection::splice_insert_out(3, Some(1_620_000), Some(4 * TICKS_PER_SECOND));
    let t1 = format!(
        "#EXT-X-DATERANGE:ID=\"1\",START-DATE=\"2026-01-01T00:00:02Z\",PLANNED-DURATION=6,SCTE35-OUT={hex}\n#EXT-X-CUE-OUT:6.000"
    );
    let t8 = format!("#EXT-OATCLS-SCTE35:{}", b64(&program_start));
    let t9 = format!("#EXT-X-SCTE35:CUE=\"{}\",CUE-OUT=YES", b64(&third));
    let t10 = format!("#EXT-X-SCTE35:CUE=\"{}\",CUE-OUT=CONT", b64(&third));
    let t11 = format!(
        "#EXT-OATCLS-SCTE35:{}\n#EXT-X-SCTE35:CUE-IN=YES",
        b64(&program_end)
    );
    let e = extract(&[
        "",
        &t1,
        "#EXT-X-CUE-OUT-CONT:2.000/6",
        "#EXT-X-CUE-OUT-CONT:ElapsedTime=4.000,Duration=6",
        "#EXT-X-CUE-IN",
        "#EXT-X-CUE:TYPE=\"SpliceOut\",ID=\"b2\",DURATION=4.000,TIME=10.0",
        "#EXT-X-CUE-CONT:ID=b2,AVAIL-DUR-ELAPSED=2.0",
        "#EXT-X-CUE:TYPE=\"SpliceIn\",ID=\"b2\",TIME=14.0",
        &t8,
        &t9,
        &t10,
        &t11,
        "",
    ]);
    assert_eq!(
        shapes(&e),
        vec![
            ("1".into(), Some(1), Some(6.0), Some(4), Dialect::DateRange),
            ("b2".into(), Some(5), Some(4.0), Some(7), Dialect::Cue),
            (
                "scte35-3".into(),
                Some(9),
                Some(4.0),
                Some(11),
                Dialect::Scte35Tag
            ),
        ]
    );
    assert_eq!(e.breaks[0].last_signalled_segment, Some(3));
    assert_eq!(e.breaks[0].event_id, Some(1));
    assert!(e.breaks.iter().all(|b| b.warnings.is_empty()));
    assert!(e.warnings.is_empty());
}

const BROKEN: &str = "/DAlAAAAAAAAAP/wFAUAAAABf+/+ANgNkv4AFJlwAAEBAQAA5xULL";

/// An OATCLS cue that does not decode beside a CUE-OUT: the break comes from the CUE-OUT, and carries a warning
/// naming the OATCLS line.
#[test]
fn undecodable_oatcls_beside_cue_out_still_gives_the_break() {
    let oatcls = format!("#EXT-OATCLS-SCTE35:{BROKEN}\n#EXT-X-CUE-OUT:30");
    let e = extract(&[&oatcls, "", "#EXT-X-CUE-IN", ""]);
    assert_eq!(
        shapes(&e),
        vec![(
            "msn-100".into(),
            Some(0),
            Some(30.0),
            Some(2),
            Dialect::CueOut
        )]
    );
    assert_eq!(e.breaks[0].warnings.len(), 1);
    assert!(
        e.breaks[0].warnings[0].starts_with("line 5: EXT-OATCLS-SCTE35: undecodable SCTE-35"),
        "{:?}",
        e.breaks[0].warnings
    );
}

/// Tags whose own attributes describe the break when their cue does not decode: Azure's EXT-X-CUE with
/// TYPE="scte35" and DURATION, EXT-X-SCTE35 with DURATION, a DATERANGE with PLANNED-DURATION, a CUE-OUT-CONT's
/// SCTE35 inside a break.
#[test]
fn undecodable_cues_fall_back_to_the_tags_durations() {
    let cases = [
        (
            format!(
                "#EXT-X-CUE:ID=\"7\",TYPE=\"scte35\",DURATION=30.000000,TIME=1.0,CUE=\"{BROKEN}\""
            ),
            ("7", Some(30.0), Dialect::Cue),
            "EXT-X-CUE",
        ),
        (
            format!("#EXT-X-SCTE35:CUE=\"{BROKEN}\",DURATION=20"),
            ("msn-100", Some(20.0), Dialect::Scte35Tag),
            "EXT-X-SCTE35",
        ),
        (
            "#EXT-X-DATERANGE:ID=\"d\",START-DATE=\"2026-01-01T00:00:00Z\",PLANNED-DURATION=15,SCTE35-OUT=0xFC3011"
                .to_owned(),
            ("d", Some(15.0), Dialect::DateRange),
            "EXT-X-DATERANGE SCTE35-OUT",
        ),
    ];
    for (tag, (id, planned, dialect), name) in cases {
        let e = extract(&[&tag, "", ""]);
        assert_eq!(
            shapes(&e),
            vec![(id.into(), Some(0), planned, None, dialect)],
            "{tag}"
        );
        let want = format!("line 5: {name}: undecodable SCTE-35");
        assert!(
            e.breaks[0].warnings[0].starts_with(&want),
            "{:?}",
            e.breaks[0].warnings
        );
    }
    let cont = format!("#EXT-X-CUE-OUT-CONT:ElapsedTime=2,Duration=6,SCTE35={BROKEN}");
    let e = extract(&["#EXT-X-CUE-OUT:6", &cont, "#EXT-X-CUE-IN", ""]);
    assert_eq!(
        shapes(&e),
        vec![(
            "msn-100".into(),
            Some(0),
            Some(6.0),
            Some(2),
            Dialect::CueOut
        )]
    );
    assert!(e.breaks[0].warnings[0].starts_with("line 8: EXT-X-CUE-OUT-CONT: undecodable"));
}

/// An undecodable cue with nothing else to go by gives no break, and the warning is the playlist's.
#[test]
fn a_lone_undecodable_cue_is_a_playlist_warning() {
    let e = extract(&["", &format!("#EXT-OATCLS-SCTE35:{BROKEN}"), ""]);
    assert!(e.breaks.is_empty());
    assert_eq!(e.warnings.len(), 1);
    assert!(e.warnings[0].starts_with("line 7: EXT-OATCLS-SCTE35: undecodable SCTE-35"));
}

/// AWS Elemental MediaTailor "HLS supported ad markers", EXT-X-DATERANGE: SCTE35-OUT with DURATION; a paired
/// SCTE35-IN tag repeating the OUT tag's ID and START-DATE; and both, where the earliest cue-in wins.
#[test]
fn mediatailor_daterange_forms() {
    let out = SpliceInfoSection::splice_insert_out(5, Some(180_000), Some(4 * TICKS_PER_SECOND))
        .to_hex()
        .unwrap();
    let back = SpliceInfoSection::splice_insert_in(5, Some(540_000))
        .to_hex()
        .unwrap();
    let dr = |attrs: &str| {
        format!("#EXT-X-DATERANGE:ID=\"splice-5\",START-DATE=\"2026-01-01T00:00:02Z\",{attrs}")
    };
    let with_duration = dr(&format!("DURATION=4.000,SCTE35-OUT={out}"));
    let plain_out = dr(&format!("SCTE35-OUT={out}"));
    let paired_in = dr(&format!("SCTE35-IN={back}"));
    // OUT with DURATION: the end is at START-DATE + 4 s, segment 3.
    let e = extract(&["", &with_duration, "", "", "", ""]);
    assert_eq!(
        shapes(&e),
        vec![(
            "splice-5".into(),
            Some(1),
            Some(4.0),
            Some(3),
            Dialect::DateRange
        )]
    );
    // Paired: the IN tag stands before segment 4, where the break ends.
    let e = extract(&["", &plain_out, "", "", &paired_in, ""]);
    assert_eq!(
        shapes(&e),
        vec![(
            "splice-5".into(),
            Some(1),
            Some(4.0),
            Some(4),
            Dialect::DateRange
        )]
    );
    // Both: the DURATION's end (segment 3) comes first and stands; the later IN adds no break.
    let e = extract(&["", &with_duration, "", "", &paired_in, ""]);
    assert_eq!(
        shapes(&e),
        vec![(
            "splice-5".into(),
            Some(1),
            Some(4.0),
            Some(3),
            Dialect::DateRange
        )]
    );
}
