//! Inputs found by fuzzing (crates/hls/fuzz) that once broke an invariant, kept so they never do again.

use interlude_hls::parse_master_playlist;

/// Writing must be a fixed point: an unknown tag between `EXT-X-STREAM-INF` and its URI was written before the
/// `EXT-X-STREAM-INF`, so it moved to the playlist's top on the next parse. (A mutated m3u8-rs master sample.)
#[test]
fn unknown_tag_inside_a_variant_stays_inside_it() {
    let text = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=200000\ngear1/prog_index.m3u8\n\
                #EXT-X-STREAM-INF:BANDWIDTH=311000\n#EXT-X-UNKNOWN:1\ngear4/prog_index.m3u8\n";
    let playlist = parse_master_playlist(text).unwrap();
    let written = playlist.to_string();
    assert_eq!(written, text);
    assert_eq!(parse_master_playlist(&written).unwrap(), playlist);
}

/// A segment duration so large that the next segment's program date time leaves chrono's range: the marker
/// reader added it unchecked and panicked.
#[test]
fn a_huge_duration_after_a_program_date_time_does_not_panic() {
    let text = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-PROGRAM-DATE-TIME:2026-11-23T10:00:00Z\n\
                #EXTINF:1e300,\na.ts\n#EXT-X-DATERANGE:ID=\"x\",START-DATE=\"2026-11-23T10:00:00Z\",DURATION=1e300,SCTE35-IN=0x00\n\
                #EXTINF:2,\nb.ts\n";
    let playlist = interlude_hls::parse_media_playlist(text).unwrap();
    let _ = interlude_hls::markers::extract_breaks(&playlist);
}
