//! Golden test over the public sample playlists (tests/data, sources in tests/data/SOURCES.md): every playlist
//! with ad markers gives exactly the breaks listed here (id, start, first segment, planned duration, end,
//! dialect), read with source lines, and the same breaks after a write → parse round trip. The expected values
//! come from reading each sample by hand: where its tags put the break and what duration they state.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use interlude_hls::markers::{AdBreak, Dialect, Extracted, extract_breaks};
use interlude_hls::{parse_media_playlist, parse_media_playlist_with_warnings};

type Shape = (
    &'static str,
    Option<usize>,
    usize,
    Option<f64>,
    Option<usize>,
    Dialect,
);

fn shape(
    b: &AdBreak,
) -> (
    String,
    Option<usize>,
    usize,
    Option<f64>,
    Option<usize>,
    Dialect,
) {
    (
        b.id.clone(),
        b.start_segment,
        b.first_segment,
        b.planned_duration.map(|d| (d * 1e6).round() / 1e6),
        b.end_segment,
        b.dialect,
    )
}

fn read(file: &str) -> (Extracted, String) {
    let path = format!("{}/tests/data/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(path).unwrap();
    let parsed = parse_media_playlist_with_warnings(&text).unwrap();
    (parsed.breaks(), parsed.playlist.to_string())
}

use Dialect::{Cue, CueOut, DateRange, Oatcls, Scte35Tag};

/// Every sample with markers and the breaks it holds.
const GOLDEN: &[(&str, &[Shape])] = &[
    // AWS MediaConvert "Elemental" ad markers: CUE-OUT:30.000, CONT as elapsed/duration, CUE-IN.
    (
        "aws-mediaconvert-elemental.m3u8",
        &[
            ("msn-2", Some(1), 1, Some(30.0), Some(5), CueOut),
            ("msn-10", Some(9), 9, Some(30.0), Some(12), CueOut),
        ],
    ),
    // AWS MediaConvert "SCTE-35 enhanced": OATCLS (time_signal 0x34 without a duration) + CUE-OUT:30.000 on the
    // same segment, CONT as ElapsedTime/Duration/SCTE35, an OATCLS 0x35 and CUE-IN at the end.
    (
        "aws-mediaconvert-scte35-enhanced.m3u8",
        &[
            ("scte35-1", Some(1), 1, Some(30.0), Some(5), Oatcls),
            ("scte35-2", Some(9), 9, Some(30.0), Some(12), Oatcls),
        ],
    ),
    // threefive's simple sample: OATCLS splice_insert (15 s) + CUE-OUT:15.000, CONT, CUE-IN.
    (
        "threefive-simple-scte35.m3u8",
        &[("scte35-1", Some(0), 0, Some(15.0), Some(2), Oatcls)],
    ),
    // Azure Media Services legacy EXT-X-CUE with the whole section in CUE= (splice_insert, event 1026, 30 s).
    (
        "azure-ams-ext-x-cue-scte35.m3u8",
        &[("1026", Some(2), 2, Some(30.0), None, Cue)],
    ),
    // Azure Media Services, Adobe "simple" mode: a SpliceOut, then the same SpliceOut repeated with ELAPSED on
    // each segment of the break; no SpliceIn in the window.
    (
        "azure-ams-ext-x-cue-adobe-simple.m3u8",
        &[("95766", Some(3), 3, Some(30.0), None, Cue)],
    ),
    // Adobe Primetime TVSDK: SpliceOut with DURATION="0" (unknown) paired with a SpliceIn.
    (
        "adobe-primetime-tvsdk-splice-out-in.m3u8",
        &[("1", Some(2), 2, None, Some(6), Cue)],
    ),
    // Adobe Primetime TVSDK: CUE-OUT and CUE-IN with ID and TIME attributes.
    (
        "adobe-primetime-tvsdk-cue-out-id-time.m3u8",
        &[("105", Some(0), 0, Some(30.0), Some(4), CueOut)],
    ),
    // Adobe Primetime Origin Server legacy format: EXT-X-CUE SpliceOut (60 s) and EXT-X-CUE-CONT.
    (
        "adobe-primetime-os-legacy-ext-x-cue.m3u8",
        &[("1", Some(2), 2, Some(60.0), None, Cue)],
    ),
    // x9k3 (threefive's segmenter): EXT-X-SCTE35 with space-separated attributes, CUE-OUT="YES", DURATION.
    (
        "x9k3-readme-x-scte35.m3u8",
        &[("scte35-93", Some(5), 5, Some(90.023267), None, Scte35Tag)],
    ),
    // grafov/m3u8 and m3u8-rs samples.
    (
        "grafov-media-playlist-with-adobe.m3u8",
        &[("100", Some(3), 3, Some(119.0), Some(6), CueOut)],
    ),
    (
        "grafov-media-playlist-with-cue-out-partner-gumgum.m3u8",
        &[("0", Some(4), 4, Some(19.0), Some(7), CueOut)],
    ),
    (
        "grafov-media-playlist-with-cue-out-partner-triplelift.m3u8",
        &[
            ("1015", Some(10), 10, Some(20.0), Some(12), CueOut),
            ("1016", Some(26), 26, Some(20.0), Some(28), CueOut),
            ("1017", Some(42), 42, Some(170.0), None, CueOut),
        ],
    ),
    (
        "grafov-media-playlist-with-cue-out.m3u8",
        &[("msn-30692", Some(2), 2, Some(60.0), Some(18), CueOut)],
    ),
    (
        "grafov-media-playlist-with-cue-scte35.m3u8",
        &[("msn-2", Some(2), 2, Some(18.0), Some(5), CueOut)],
    ),
    (
        "grafov-media-playlist-with-daterange-scte35.m3u8",
        &[("splice-4000C76", Some(1), 1, Some(60.0), None, DateRange)],
    ),
    (
        "grafov-media-playlist-with-daterange.m3u8",
        &[("2", Some(0), 0, Some(169.966667), Some(5), DateRange)],
    ),
    (
        "grafov-media-playlist-with-oatcls-scte35-asset-key.m3u8",
        &[("scte35-1", Some(0), 0, Some(15.0), Some(2), Oatcls)],
    ),
    (
        "grafov-media-playlist-with-oatcls-scte35-cue-in.m3u8",
        &[("scte35-1", Some(0), 0, Some(15.0), Some(2), Oatcls)],
    ),
    (
        "grafov-media-playlist-with-oatcls-scte35.m3u8",
        &[("scte35-1", Some(0), 0, Some(15.0), Some(2), Oatcls)],
    ),
    (
        "grafov-media-playlist-with-scte35-daterange.m3u8",
        &[(
            "splice-6FFFFFF0",
            Some(2),
            2,
            Some(60.0),
            Some(6),
            DateRange,
        )],
    ),
    (
        "grafov-media-playlist-with-simple-cues.m3u8",
        &[("msn-0", Some(0), 0, Some(15.0), Some(2), CueOut)],
    ),
    (
        "grafov-media-playlist-with-timefromsignal.m3u8",
        &[("100", None, 0, None, None, CueOut)],
    ),
    (
        "grafov-media-playlist-with-x-scte35.m3u8",
        &[("3407875", None, 1, None, Some(1), Scte35Tag)],
    ),
    (
        "m3u8rs-media-playlist-with-cues-1.m3u8",
        &[("20", Some(1), 1, Some(19.0), Some(4), DateRange)],
    ),
    (
        "m3u8rs-media-playlist-with-cues.m3u8",
        &[("msn-2", Some(2), 2, Some(30.0), Some(6), CueOut)],
    ),
];

#[test]
fn every_marked_sample_gives_exactly_its_breaks_before_and_after_a_round_trip() {
    for (file, expected) in GOLDEN {
        let (extracted, written) = read(file);
        let got: Vec<_> = extracted.breaks.iter().map(shape).collect();
        let want: Vec<_> = expected
            .iter()
            .map(|&(id, s, f, p, e, d)| (id.to_owned(), s, f, p, e, d))
            .collect();
        assert_eq!(got, want, "{file}");
        let again = extract_breaks(&parse_media_playlist(&written).unwrap());
        assert_eq!(
            again.iter().map(shape).collect::<Vec<_>>(),
            want,
            "{file} after write → parse"
        );
    }
}

#[test]
fn the_golden_list_covers_every_sample_with_markers() {
    let dir = format!("{}/tests/data", env!("CARGO_MANIFEST_DIR"));
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Ok(p) = parse_media_playlist(&std::fs::read_to_string(&path).unwrap()) else {
            continue;
        };
        if !extract_breaks(&p).is_empty() {
            assert!(
                GOLDEN.iter().any(|(f, _)| *f == name),
                "{name} has breaks but no golden entry"
            );
        }
    }
}

/// The Azure Adobe-simple sample repeats its SpliceOut with ELAPSED on every segment of the break: those are
/// continuations of the one break (the last one on segment 8), not new breaks.
#[test]
fn repeated_splice_out_with_elapsed_continues_the_break() {
    let (extracted, _) = read("azure-ams-ext-x-cue-adobe-simple.m3u8");
    assert_eq!(extracted.breaks.len(), 1);
    assert_eq!(extracted.breaks[0].last_signalled_segment, Some(8));
    assert!(extracted.warnings.is_empty());
}

/// The SCTE-35-enhanced sample carries the cue in OATCLS and CUE-OUT-CONT; the break takes its event id.
#[test]
fn scte35_enhanced_break_takes_the_event_id_of_its_oatcls_cue() {
    let (extracted, _) = read("aws-mediaconvert-scte35-enhanced.m3u8");
    let ids: Vec<_> = extracted.breaks.iter().map(|b| b.event_id).collect();
    assert_eq!(ids, vec![Some(1), Some(2)]);
    assert!(extracted.breaks.iter().all(|b| b.warnings.is_empty()));
}
