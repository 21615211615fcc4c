//! Any text through the playlist parser, the marker reader and the writer: no panic, and whatever parses is
//! written as a playlist that parses again and is written identically (the writer is a fixed point). The
//! warning-reporting parser gives the same playlist, and reading its breaks with source lines does not panic.
#![no_main]

use interlude_hls::{Playlist, markers, parse_playlist, parse_playlist_with_warnings};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let with_warnings = parse_playlist_with_warnings(&text);
    let Ok(playlist) = parse_playlist(&text) else {
        assert!(with_warnings.is_err(), "only one parser accepted the text");
        return;
    };
    let parsed = with_warnings.expect("both parsers accept the same text");
    assert_eq!(parsed.playlist, playlist);
    if let Playlist::Media(media) = &parsed.playlist {
        let _ = markers::extract(media, Some(&parsed.lines));
    }
    let base = url::Url::parse("https://origin.example/live/ch/index.m3u8").ok();
    let written = match &playlist {
        Playlist::Media(media) => {
            let _ = markers::read_cues(media);
            let _ = markers::extract_breaks(media);
            if let Some(base) = &base {
                let _ = media.clone().resolve_uris(base);
            }
            media.to_string()
        }
        Playlist::Master(master) => {
            if let Some(base) = &base {
                let _ = master.clone().resolve_uris(base);
            }
            master.to_string()
        }
    };
    let again = parse_playlist(&written).expect("what we write must parse");
    let rewritten = match &again {
        Playlist::Media(media) => media.to_string(),
        Playlist::Master(master) => master.to_string(),
    };
    assert_eq!(written, rewritten, "writing is not a fixed point");
});
