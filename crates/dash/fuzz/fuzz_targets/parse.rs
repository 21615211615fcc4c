//! Any bytes through the MPD reader and the SCTE-35 scan: no panic; whatever reads writes, the written MPD
//! reads back to the same model and scans the same, and writing that again gives the same text. Whatever
//! reads is also stitched with a one-break plan (without and with a request time), and the stitched MPD
//! must read back as written. Scan warnings format.
#![no_main]

use std::time::Duration;

use interlude_dash::{
    Ad, AdRendition, ContentKind, DirectAdUrls, PlannedBreak, StitchOptions, parse_mpd, parse_mpd_bytes,
    scan, stitch, write_mpd,
};
use libfuzzer_sys::fuzz_target;

fn ad() -> Ad {
    let rendition = |kind, codecs: &str| AdRendition {
        id: codecs.to_string(),
        kind,
        mime_type: "video/mp4".into(),
        codecs: codecs.into(),
        bandwidth: 1_000_000,
        width: None,
        height: None,
        frame_rate: None,
        audio_sampling_rate: None,
        lang: None,
        timescale: 90_000,
        segment_duration: 180_000,
        start_number: 1,
        media: "https://ads.example/$Number$.m4s".into(),
        initialization: "https://ads.example/init.mp4".into(),
    };
    Ad {
        id: "ad".into(),
        duration: Duration::from_secs(10),
        renditions: vec![
            rendition(ContentKind::Video, "avc1.64001f"),
            rendition(ContentKind::Audio, "mp4a.40.2"),
            rendition(ContentKind::Text, "stpp"),
        ],
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(mpd) = parse_mpd_bytes(data) else {
        return;
    };
    let found = scan(&mpd);
    for w in &found.warnings {
        let _ = w.to_string();
    }
    let written = write_mpd(&mpd);
    let reread = parse_mpd(&written).expect("a written MPD reads back");
    assert_eq!(reread, mpd, "write then parse changed the model:\n{written}");
    assert_eq!(scan(&reread), found, "the scan changed after a round trip");
    assert_eq!(write_mpd(&reread), written, "writing is not a fixed point");

    let start = found
        .breaks
        .first()
        .map_or(Duration::from_secs(4), |b| b.start);
    let plan = [PlannedBreak {
        id: "b".into(),
        start,
        duration: Duration::from_secs(25),
        ended_at: None,
        ads: vec![ad(), ad()],
        slate: Some(ad()),
    }];
    // Without a request time, and with one (the live window of `$Number$` content, a UTCTiming).
    let now = mpd.publish_time.or(mpd.availability_start_time);
    for options in [
        StitchOptions::default(),
        StitchOptions { now, ..StitchOptions::default() },
    ] {
        if let Ok(stitched) = stitch(&mpd, &plan, &DirectAdUrls, &options) {
            let text = write_mpd(&stitched.mpd);
            let back = parse_mpd(&text).expect("a stitched MPD reads back");
            assert_eq!(back, stitched.mpd, "the stitched MPD does not read back as written");
        }
    }
});
