//! Creative and slate playlists as the stitcher reads them: fragmented MP4 renditions bring their one init
//! segment (`EXT-X-MAP`, URI made absolute), MPEG-TS ones none, and a playlist switching init segments mid-way
//! is refused (the stitcher switches them only at ad boundaries).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use interlude_stitch::Error;
use interlude_stitch::hls::parse_vod_media;

const URL: &str = "http://cdn.test/ads/ad15/r0/index.m3u8";

#[test]
fn an_fmp4_creative_brings_its_init_segment_with_an_absolute_uri() {
    let text = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-MAP:URI=\"init.mp4\"\n\
                #EXTINF:2.000,\n000.m4s\n#EXTINF:1.000,\n001.m4s\n#EXT-X-ENDLIST\n";
    let vod = parse_vod_media(text, URL).unwrap();
    assert_eq!(
        vod.map.as_deref(),
        Some("#EXT-X-MAP:URI=\"http://cdn.test/ads/ad15/r0/init.mp4\"")
    );
    assert_eq!(
        vod.segments,
        vec![
            ("http://cdn.test/ads/ad15/r0/000.m4s".to_owned(), 2_000_000),
            ("http://cdn.test/ads/ad15/r0/001.m4s".to_owned(), 1_000_000)
        ]
    );
}

#[test]
fn a_ts_creative_has_no_init_segment() {
    let text = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.000,\n000.ts\n#EXT-X-ENDLIST\n";
    assert_eq!(parse_vod_media(text, URL).unwrap().map, None);
}

#[test]
fn a_creative_switching_init_segments_is_refused() {
    let text = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-MAP:URI=\"a.mp4\"\n\
                #EXTINF:2.000,\n000.m4s\n#EXT-X-MAP:URI=\"b.mp4\"\n#EXTINF:2.000,\n001.m4s\n";
    assert!(matches!(
        parse_vod_media(text, URL),
        Err(Error::SeveralMaps(_))
    ));
    // A map that first appears after a segment without one: those segments would play without it.
    let late = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.000,\n000.ts\n\
                #EXT-X-MAP:URI=\"b.mp4\"\n#EXTINF:2.000,\n001.m4s\n";
    assert!(matches!(
        parse_vod_media(late, URL),
        Err(Error::SeveralMaps(_))
    ));
}
