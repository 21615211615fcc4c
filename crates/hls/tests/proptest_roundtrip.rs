//! Property tests: random valid media and master playlists (strategies in `strategies/mod.rs`) satisfy
//! parse(write(x)) == x, through the typed parsers and through `parse_playlist`'s kind detection; the marker
//! reader gives the same breaks either side of the round trip and only finite, non-negative seconds. The
//! parsers never panic, on arbitrary text nor on valid playlists with lines deleted, duplicated, swapped,
//! cut or replaced with garbage; whatever they accept is written so that it parses back equal.
//!
//! The model is the normal form, so the round trip is exact on it. The text is normalised, which these
//! properties do not see because they start from the model: whitespace around lines, tag names and values,
//! attribute names and values is trimmed; a title that is empty or blank is no title; comments and blank
//! lines are dropped; typed tags are written in one fixed order per segment; `EXT-X-START`-like header tags
//! before the first segment belong to the playlist; a decimal `EXT-X-TARGETDURATION` is rounded up; a
//! program date time keeps its instant (chrono compares instants) and its offset to the minute.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod strategies;

use interlude_hls::markers::{AdBreak, extract_breaks, read_cues};
use interlude_hls::{
    MediaPlaylist, Playlist, parse_master_playlist, parse_media_playlist, parse_playlist,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use strategies::{cue_tag, master_playlist, media_playlist};

/// What the marker normaliser promises about any playlist.
fn check_breaks(p: &MediaPlaylist, breaks: &[AdBreak]) -> Result<(), TestCaseError> {
    let n = p.segments.len();
    for b in breaks {
        prop_assert!(b.first_segment <= n, "{b:?}");
        prop_assert!(
            b.start_segment.is_none_or(|s| s == b.first_segment),
            "{b:?}"
        );
        prop_assert!(
            b.end_segment.is_none_or(|e| e >= b.first_segment && e <= n),
            "{b:?}"
        );
        prop_assert!(
            b.elapsed_at_first.is_finite() && b.elapsed_at_first >= 0.0,
            "{b:?}"
        );
        prop_assert!(
            b.planned_duration.is_none_or(|d| d.is_finite() && d >= 0.0),
            "{b:?}"
        );
    }
    Ok(())
}

/// Everything the crate does with a playlist it accepted: no panic, and the written form parses back equal.
fn exercise(text: &str) -> Result<(), TestCaseError> {
    let base = url::Url::parse("https://origin.example/live/ch/index.m3u8").expect("base URL");
    let _ = parse_media_playlist(text);
    let _ = parse_master_playlist(text);
    let with_warnings = interlude_hls::parse_playlist_with_warnings(text).map(|w| w.playlist);
    let plain = parse_playlist(text);
    prop_assert_eq!(&with_warnings, &plain);
    match plain {
        Ok(Playlist::Media(p)) => {
            let breaks = extract_breaks(&p);
            check_breaks(&p, &breaks)?;
            // Read with source lines, the same breaks (the warnings name lines instead of segments), and
            // every line named is one of the text's.
            let parsed =
                interlude_hls::parse_media_playlist_with_warnings(text).expect("parsed above");
            let no_warnings = |mut b: AdBreak| {
                b.warnings.clear();
                b
            };
            let lined: Vec<_> = parsed
                .breaks()
                .breaks
                .into_iter()
                .map(no_warnings)
                .collect();
            prop_assert_eq!(
                lined,
                breaks.iter().cloned().map(no_warnings).collect::<Vec<_>>()
            );
            let last = text.lines().count().max(1);
            let all = parsed
                .lines
                .segments
                .iter()
                .chain(std::iter::once(&parsed.lines.trailing));
            for l in all.flat_map(|s| s.tags.iter().chain(&s.dateranges)) {
                prop_assert!((1..=last).contains(l), "line {} of {}", l, last);
            }
            let written = p.to_string();
            let back = parse_media_playlist(&written);
            prop_assert_eq!(back.as_ref(), Ok(&p), "{}", written);
            prop_assert_eq!(extract_breaks(&back.expect("checked")), breaks);
            let _ = p.clone().resolve_uris(&base);
        }
        Ok(Playlist::Master(p)) => {
            let written = p.to_string();
            prop_assert_eq!(
                parse_master_playlist(&written),
                Ok(p.clone()),
                "{}",
                written
            );
            let _ = p.clone().resolve_uris(&base);
        }
        Err(_) => {}
    }
    Ok(())
}

/// A line-level edit of a playlist's text.
#[derive(Debug, Clone)]
enum Mutation {
    Delete(usize),
    Duplicate(usize),
    Swap(usize, usize),
    Cut(usize, usize),
    Insert(usize, String),
}

fn garbage_line() -> impl Strategy<Value = String> {
    prop_oneof![
        "[^\n]{0,40}",
        "#EXT[A-Z-]{0,20}(:[ -~]{0,30})?",
        cue_tag().prop_map(|t| match t.value {
            Some(v) => format!("#{}:{v}", t.name),
            None => format!("#{}", t.name),
        }),
        prop_oneof![
            Just("#EXTINF:"),
            Just("#EXTINF:-1,"),
            Just("#EXTINF:1e309,"),
            Just("#EXT-X-STREAM-INF:BANDWIDTH="),
            Just("#EXT-X-KEY:URI=\"unterminated"),
            Just("#EXT-X-PROGRAM-DATE-TIME:9999-12-31T23:59:59.999999999-23:59"),
            Just("#EXT-X-PROGRAM-DATE-TIME:0000-01-01T00:00:00+23:59"),
            Just("#EXT-X-BYTERANGE:18446744073709551615@18446744073709551615"),
            Just("#EXT-X-TARGETDURATION:1e400"),
            Just("#EXT-X-MEDIA:TYPE=AUDIO"),
            Just("#EXTM3U"),
            Just("\u{feff}#EXTM3U"),
            Just("\r"),
        ]
        .prop_map(str::to_owned),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Delete),
        any::<usize>().prop_map(Mutation::Duplicate),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::Swap(a, b)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::Cut(a, b)),
        (any::<usize>(), garbage_line()).prop_map(|(a, g)| Mutation::Insert(a, g)),
    ]
}

fn mutate(text: &str, mutations: &[Mutation]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    for m in mutations {
        let n = lines.len().max(1);
        match m {
            Mutation::Delete(i) if !lines.is_empty() => {
                lines.remove(i % n);
            }
            Mutation::Duplicate(i) if !lines.is_empty() => {
                let l = lines[i % n].clone();
                lines.insert(i % n, l);
            }
            Mutation::Swap(a, b) if !lines.is_empty() => lines.swap(a % n, b % n),
            Mutation::Cut(i, at) if !lines.is_empty() => {
                let l = &mut lines[i % n];
                let mut at = at % (l.len() + 1);
                while !l.is_char_boundary(at) {
                    at -= 1;
                }
                l.truncate(at);
            }
            Mutation::Insert(i, g) => lines.insert(i % (lines.len() + 1), g.clone()),
            _ => {}
        }
    }
    lines.join("\n")
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 1000,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn media_parse_of_write_is_identity(p in media_playlist(12)) {
        let written = p.to_string();
        let back = parse_media_playlist(&written);
        prop_assert_eq!(back.as_ref(), Ok(&p), "{}", written);
        prop_assert_eq!(&back.expect("checked").to_string(), &written);
        prop_assert_eq!(parse_playlist(&written), Ok(Playlist::Media(p)));
    }

    #[test]
    fn master_parse_of_write_is_identity(p in master_playlist()) {
        let written = p.to_string();
        let back = parse_master_playlist(&written);
        prop_assert_eq!(back.as_ref(), Ok(&p), "{}", written);
        prop_assert_eq!(&back.expect("checked").to_string(), &written);
        prop_assert_eq!(parse_playlist(&written), Ok(Playlist::Master(p)));
    }

    #[test]
    fn breaks_survive_the_round_trip_and_are_well_formed(p in media_playlist(12)) {
        let breaks = extract_breaks(&p);
        check_breaks(&p, &breaks)?;
        let n = p.segments.len();
        prop_assert!(read_cues(&p).iter().all(|c| c.segment <= n));
        let back = parse_media_playlist(&p.to_string()).expect("what we write parses");
        prop_assert_eq!(extract_breaks(&back), breaks);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "(#EXTM3U\n)?[^\u{0}]{0,400}") {
        exercise(&text)?;
    }

    #[test]
    fn arbitrary_tag_lines_never_panic(lines in vec(garbage_line(), 0..30)) {
        exercise(&format!("#EXTM3U\n{}", lines.join("\n")))?;
    }

    #[test]
    fn mutated_media_playlists_never_panic(
        p in media_playlist(8),
        mutations in vec(mutation(), 1..6),
        crlf in any::<bool>(),
    ) {
        let mut text = mutate(&p.to_string(), &mutations);
        if crlf {
            text = text.replace('\n', "\r\n");
        }
        exercise(&text)?;
    }

    #[test]
    fn mutated_master_playlists_never_panic(
        p in master_playlist(),
        mutations in vec(mutation(), 1..6),
    ) {
        exercise(&mutate(&p.to_string(), &mutations))?;
    }
}
