//! Writing a viewer's playlist over a fragmented MP4 (CMAF) origin: an `EXT-X-MAP` applies to every following
//! segment until the next one (RFC 8216bis §4.4.4.5), so the ad's and the slate's init segments are written
//! after the discontinuity that starts them, and the content's again after the break. Over MPEG-TS nothing
//! of the kind is written.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use interlude_stitch::hls::{AdRef, ItemUrls, parse_media, write_media_playlist};
use interlude_stitch::window::{Element, RenderedSegment, RenderedWindow};
use interlude_stitch::{Item, ItemKind};

const ORIGIN: &str = "http://origin.test/live/c/r0/index.m3u8";
const AD_MAP: &str = "#EXT-X-MAP:URI=\"http://cdn.test/ad/r0/init.mp4\"";
const SLATE_MAP: &str = "#EXT-X-MAP:URI=\"http://cdn.test/slate/r0/init.mp4\"";

fn origin(cmaf: bool) -> String {
    let (map, ext) = if cmaf {
        ("#EXT-X-MAP:URI=\"init.mp4\"\n", "m4s")
    } else {
        ("", "ts")
    };
    let mut text = format!(
        "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:10\n{map}"
    );
    for msn in 10..14 {
        text.push_str(&format!("#EXTINF:2.000,\n{msn}.{ext}\n"));
    }
    text
}

fn content(index: usize, discontinuity: bool) -> RenderedSegment {
    RenderedSegment {
        element: Element::Content { index },
        msn: 0,
        dsn: 0,
        discontinuity,
        duration_micros: 2_000_000,
        program_date_time: None,
    }
}

fn pod(kind: ItemKind, discontinuity: bool) -> RenderedSegment {
    RenderedSegment {
        element: Element::Pod {
            break_index: 0,
            item_index: 0,
            item: Item {
                kind,
                start_micros: 0,
                duration_micros: 2_000_000,
                discontinuity,
            },
        },
        msn: 0,
        dsn: 0,
        discontinuity,
        duration_micros: 2_000_000,
        program_date_time: None,
    }
}

/// Content 10, the ad's two segments, one slate segment, content 13; the tag and URI lines in order.
fn write(cmaf: bool) -> Vec<String> {
    let media = parse_media(&origin(cmaf), ORIGIN).unwrap();
    let rendered = RenderedWindow {
        media_sequence: 10,
        discontinuity_sequence: 0,
        segments: vec![
            content(0, false),
            pod(ItemKind::Ad { ad: 0, segment: 0 }, true),
            pod(ItemKind::Ad { ad: 0, segment: 1 }, false),
            pod(ItemKind::Slate { n: 0 }, true),
            content(3, true),
        ],
    };
    let urls = ItemUrls {
        base_url: "http://stitcher.test",
        session_id: "s",
        rendition: 0,
        slate_url: "http://cdn.test/slate/r0/000.m4s",
        proxy: false,
        breaks: &[],
        slate_map: cmaf.then_some(SLATE_MAP),
    };
    let mut out = String::new();
    write_media_playlist(&mut out, &media, &rendered, &urls, |_, _| {
        Some(AdRef {
            instance_id: "ad-1",
            map: cmaf.then_some(AD_MAP),
        })
    });
    out.lines()
        .filter(|l| {
            !l.starts_with("#EXTINF")
                && !l.starts_with("#EXTM3U")
                && !l.contains("SEQUENCE")
                && !l.starts_with("#EXT-X-VERSION")
                && !l.starts_with("#EXT-X-TARGETDURATION")
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn init_segments_switch_with_the_media_around_a_break() {
    assert_eq!(
        write(true),
        [
            "#EXT-X-MAP:URI=\"http://origin.test/live/c/r0/init.mp4\"",
            "http://origin.test/live/c/r0/10.m4s",
            "#EXT-X-DISCONTINUITY",
            AD_MAP,
            "http://stitcher.test/s/s/ads/ad-1/0/0.m4s",
            "http://stitcher.test/s/s/ads/ad-1/0/1.m4s",
            "#EXT-X-DISCONTINUITY",
            SLATE_MAP,
            "http://cdn.test/slate/r0/000.m4s",
            "#EXT-X-DISCONTINUITY",
            "#EXT-X-MAP:URI=\"http://origin.test/live/c/r0/init.mp4\"",
            "http://origin.test/live/c/r0/13.m4s",
        ]
    );
}

#[test]
fn ts_breaks_have_no_init_segments() {
    let lines = write(false);
    assert!(
        !lines.iter().any(|l| l.starts_with("#EXT-X-MAP")),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"http://stitcher.test/s/s/ads/ad-1/0/0.ts".to_owned()),
        "{lines:?}"
    );
}
