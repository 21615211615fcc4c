//! Reading a stitched DASH session as a player does: its MPD, and one Representation's init and media
//! segments for a Period.

use std::time::Duration;

use interlude_dash::segment::period_segments;
use interlude_dash::{Mpd, Period, parse_mpd};

/// The session's stitched MPD, as text and parsed.
pub async fn manifest(base: &str, session: &str) -> (String, Mpd) {
    let text = reqwest::get(format!("{base}/s/{session}/manifest.mpd"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mpd = parse_mpd(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    (text, mpd)
}

/// The init segment and media segments of Representation `rep` of AdaptationSet `set` of `period` (which
/// starts at `start` on the presentation timeline), fetched and concatenated.
pub async fn track_bytes(
    http: &reqwest::Client,
    period: &Period,
    start: Duration,
    set: usize,
    rep: &str,
) -> Vec<u8> {
    let r = period.adaptation_sets[set]
        .representations
        .iter()
        .find(|r| r.id == rep)
        .unwrap();
    let init = r
        .segment_template
        .as_ref()
        .and_then(|t| t.initialization.clone())
        .unwrap();
    let end = start + period.duration.unwrap();
    let mut urls = vec![init];
    urls.extend(
        period_segments(period, start, Some(end))
            .unwrap()
            .into_iter()
            .filter(|s| s.adaptation_set == set && s.representation_id == rep)
            .map(|s| s.url),
    );
    let mut bytes = Vec::new();
    for url in urls {
        let response = http.get(&url).send().await.unwrap();
        assert!(
            response.status().is_success(),
            "{url}: {}",
            response.status()
        );
        bytes.extend_from_slice(&response.bytes().await.unwrap());
    }
    bytes
}
