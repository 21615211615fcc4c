//! Golden corpus: every sample playlist (sources in tests/data/SOURCES.md) parses, and writing it out and
//! parsing again gives an equal model (the m3u8-rs habit).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use interlude_hls::{Playlist, parse_playlist};

fn samples() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "m3u8"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect()
}

/// Samples that are broken as published, and the error each must give (never a panic, never silence).
/// Two are truncated mid-segment (an EXTINF with no URI), two put a URI after EXT-X-MEDIA with no
/// EXT-X-STREAM-INF. A live poller keeps its last good window on such a refresh rather than guess.
const EXPECTED_FAILURES: &[&str] = &[
    "grafov-media-playlist-with-adobe-cue-out-in.m3u8: line 39: EXTINF without a segment URI before the end of the playlist",
    "grafov-media-playlist-with-cue-out-in-without-oatcls.m3u8: line 136: EXTINF without a segment URI before the end of the playlist",
    "m3u8rs-master-not-ending-in-newline.m3u8: line 4: URI \"A1.m3u8\" without a preceding EXTINF or EXT-X-STREAM-INF",
    "m3u8rs-masterplaylist.m3u8: line 4: URI \"A1.m3u8\" without a preceding EXTINF or EXT-X-STREAM-INF",
];

#[test]
fn every_sample_parses_and_round_trips() {
    let all = samples();
    assert!(all.len() >= 40, "corpus went missing: {}", all.len());
    let mut failures = Vec::new();
    for (name, text) in all {
        let parsed = match parse_playlist(&text) {
            Ok(p) => p,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        let written = parsed.to_string();
        let reparsed = parse_playlist(&written)
            .unwrap_or_else(|e| panic!("{name} (rewritten): {e}\n{written}"));
        assert_eq!(parsed, reparsed, "{name} changed on round trip:\n{written}");
        // Writing is canonical: a second round trip is textually stable.
        assert_eq!(written, reparsed.to_string(), "{name}");
        match (&parsed, name.contains("master")) {
            (Playlist::Master(m), true) => {
                assert!(!m.variants.is_empty(), "{name} has no variants")
            }
            (Playlist::Media(m), false) => assert!(
                !m.segments.is_empty() || name.contains("without-segments"),
                "{name}"
            ),
            (_, expected_master) => {
                panic!("{name}: wrong kind (expected master: {expected_master})")
            }
        }
    }
    assert_eq!(failures, EXPECTED_FAILURES, "unexpected parse results");
}
