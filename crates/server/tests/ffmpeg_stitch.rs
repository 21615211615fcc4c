//! End to end with a real decoder: the origin simulator (real media, a CUE-OUT break with a splice_insert),
//! the stitcher in proxy mode, and ffprobe decoding one session's stitched playlist across the whole break.
//!
//! The decoded video must be continuous (no frame gap or jump) and last exactly as long as the playlist says:
//! the content before and after the break plus the ad and slate that replaced it; the audio packets' PTS must
//! never go back nor leave a gap longer than one AAC frame at any boundary (issue 24). The seam check decodes
//! the origin's and a stitched session's playlists over the same breaks and compares ffmpeg's warnings. Needs
//! ffmpeg/ffprobe on PATH: `scripts/test.sh` installs them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::{new_session, start, start_cmaf_over, start_over, until_channel_time};
use interlude_server::stitcher::config::AdDelivery;
use interlude_sim::clock::Clock;
use interlude_sim::tools;

fn extinf_total(playlist: &str) -> f64 {
    playlist
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .map(|l| l.trim_end_matches(',').parse::<f64>().unwrap())
        .sum()
}

/// Options for reading `path` when it is a playlist (segments over HTTP, one connection each).
fn hls_options(path: &std::path::Path) -> &'static [&'static str] {
    if path.extension().is_some_and(|e| e == "m3u8") {
        &["-http_persistent", "0"]
    } else {
        &[]
    }
}

/// Demuxes the playlist (or transport stream) at `path` (segments over HTTP) and returns each audio packet's PTS in seconds.
fn audio_packet_pts(path: &std::path::Path) -> Vec<f64> {
    let done = tools::run_bounded(
        Command::new("ffprobe")
            .args(["-v", "error", "-protocol_whitelist", "file,http,tcp"])
            .args(hls_options(path))
            .args([
                "-select_streams",
                "a:0",
                "-show_entries",
                "packet=pts_time",
                "-of",
                "csv=p=0",
            ])
            .arg(path),
        Duration::from_secs(120),
    )
    .unwrap();
    assert!(done.success, "ffprobe failed: {}", done.stderr);
    done.stdout
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse::<f64>().ok())
        .collect()
}

/// Decodes the playlist at `path` (segments over HTTP) and returns each video frame's PTS in seconds.
fn decoded_video_pts(path: &std::path::Path) -> Vec<f64> {
    let done = tools::run_bounded(
        Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-protocol_whitelist",
                "file,http,tcp",
                "-http_persistent",
                "0",
                "-select_streams",
                "v:0",
                "-show_entries",
                "frame=pts_time",
                "-of",
                "csv=p=0",
            ])
            .arg(path),
        Duration::from_secs(120),
    )
    .unwrap();
    assert!(done.success, "ffprobe failed: {}", done.stderr);
    assert!(
        done.stderr.trim().is_empty(),
        "ffprobe reported errors: {}",
        done.stderr
    );
    done.stdout
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse::<f64>().ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_decodes_a_stitched_break_seamlessly_in_proxy_mode() {
    tools::require("ffprobe").unwrap();
    let run = start(AdDelivery::Proxy, 30).await;
    let session = new_session(&run.base).await;
    // The break is 30..50 s; at 62 s the 40-segment window holds content, the whole break, and content again.
    until_channel_time(&run, 62).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let playlist = reqwest::get(format!("{}/s/{session}/0/media.m3u8", run.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(playlist.contains("/ads/"), "no ad in:\n{playlist}");
    assert!(playlist.contains("/slate/"), "no slate in:\n{playlist}");
    let content_after = playlist
        .rsplit("#EXT-X-DISCONTINUITY\n")
        .next()
        .unwrap()
        .lines()
        .filter(|l| l.contains("/live/"))
        .count();
    assert!(
        content_after >= 3,
        "content must resume after the break:\n{playlist}"
    );
    let expected = extinf_total(&playlist);
    let time_of = |what: &str| -> f64 {
        let lines: Vec<&str> = playlist.lines().collect();
        lines
            .windows(2)
            .filter(|w| w[1].contains(what))
            .filter_map(|w| w[0].strip_prefix("#EXTINF:"))
            .map(|d| d.trim_end_matches(',').parse::<f64>().unwrap())
            .sum()
    };
    assert_eq!(time_of("/ads/"), 15.0, "the whole 15 s ad plays");
    assert_eq!(
        time_of("/slate/"),
        5.0,
        "slate fills the rest of the 20 s break exactly"
    );

    let path = std::env::temp_dir().join(format!("interlude-stitch-{}.m3u8", std::process::id()));
    std::fs::write(&path, format!("{playlist}#EXT-X-ENDLIST\n")).unwrap();
    let pts = tokio::task::spawn_blocking({
        let path = path.clone();
        move || decoded_video_pts(&path)
    })
    .await
    .unwrap();

    let frame = 1.0 / 25.0;
    assert!(pts.len() > 100, "too few frames decoded: {}", pts.len());
    // Every step from one frame to the next is one frame duration: no gap, jump back, or repeat at any boundary.
    for (i, pair) in pts.windows(2).enumerate() {
        let step = pair[1] - pair[0];
        assert!(
            (step - frame).abs() < 0.25 * frame,
            "video is not continuous at frame {i}: {} -> {} s\n{playlist}",
            pair[0],
            pair[1]
        );
    }
    let decoded = pts.last().unwrap() - pts.first().unwrap() + frame;
    assert!(
        (decoded - expected).abs() < 2.0 * frame,
        "decoded {decoded} s of video, the playlist lasts {expected} s"
    );

    let impressions = run
        .beacons
        .beacons()
        .iter()
        .filter(|b| b.event_type.as_str() == "impression" || b.event_type.as_str() == "complete")
        .count();
    assert_eq!(impressions, 2, "one impression and one complete for the ad");

    // Fetching the break again for its audio fires its beacons again: counted above, before.
    let audio = tokio::task::spawn_blocking({
        let path = path.clone();
        move || audio_packet_pts(&path)
    })
    .await
    .unwrap();
    let _ = std::fs::remove_file(&path);
    // Audio: one AAC frame is 1024 samples at 48 kHz. Each packet starts after the one before it (never back,
    // which decoders play as a jump) and at most one frame after the end of it (no gap longer than a frame), at
    // content->ad, ad->slate, slate->slate and slate->content alike. 1 µs of slack for the 6-digit pts_time.
    let aac = 1024.0 / 48_000.0;
    assert!(audio.len() > 1000, "too few audio packets: {}", audio.len());
    for (i, pair) in audio.windows(2).enumerate() {
        let gap = pair[1] - pair[0] - aac;
        assert!(
            gap >= -aac + 1e-6 && gap <= aac + 1e-6,
            "audio is not continuous at packet {i}: {} -> {} s (gap {:.1} ms)\n{playlist}",
            pair[0],
            pair[1],
            gap * 1000.0
        );
    }
}

/// One segment of a media playlist: its `#EXTINF`/`#EXT-X-DISCONTINUITY` lines, its absolute URI, and the
/// absolute URI of the init segment (`EXT-X-MAP`) it plays under, for fMP4.
struct Entry {
    tags: Vec<String>,
    uri: String,
    map: Option<String>,
}

/// The segments of the media playlist `text` fetched from `url`.
fn entries(text: &str, url: &str) -> Vec<Entry> {
    let base = &url[..url.rfind('/').unwrap() + 1];
    let absolute = |uri: &str| {
        if uri.starts_with("http") {
            uri.to_owned()
        } else {
            format!("{base}{uri}")
        }
    };
    let mut out = Vec::new();
    let mut tags = Vec::new();
    let mut map = None;
    for line in text.lines() {
        if line.starts_with("#EXTINF:") || line == "#EXT-X-DISCONTINUITY" {
            tags.push(line.to_owned());
        } else if let Some(m) = line.strip_prefix("#EXT-X-MAP:URI=\"") {
            map = Some(absolute(&m[..m.find('"').unwrap()]));
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            out.push(Entry {
                tags: std::mem::take(&mut tags),
                uri: absolute(line),
                map: map.clone(),
            });
        }
    }
    out
}

/// ffmpeg's warnings decoding `entries` as a VOD playlist: `(audio, video)` counts and the lines.
fn decode_warnings(entries: &[Entry], name: &str) -> (usize, usize, Vec<String>) {
    // RFC 8216bis §8: EXT-X-MAP needs version 6.
    let version = if entries.iter().any(|e| e.map.is_some()) {
        6
    } else {
        3
    };
    let mut playlist = format!("#EXTM3U\n#EXT-X-VERSION:{version}\n#EXT-X-TARGETDURATION:2\n");
    let mut map: Option<&str> = None;
    for e in entries {
        for t in &e.tags {
            playlist.push_str(t);
            playlist.push('\n');
        }
        if e.map.as_deref() != map {
            map = e.map.as_deref();
            if let Some(m) = map {
                playlist.push_str(&format!("#EXT-X-MAP:URI=\"{m}\"\n"));
            }
        }
        playlist.push_str(&e.uri);
        playlist.push('\n');
    }
    playlist.push_str("#EXT-X-ENDLIST\n");
    let path =
        std::env::temp_dir().join(format!("interlude-seam-{}-{name}.m3u8", std::process::id()));
    std::fs::write(&path, playlist).unwrap();
    let counts = ffmpeg_warnings(&path, name);
    let _ = std::fs::remove_file(&path);
    counts
}

/// ffmpeg's warnings decoding the playlist or transport stream at `path`: `(audio, video)` counts and the
/// lines.
fn ffmpeg_warnings(path: &std::path::Path, name: &str) -> (usize, usize, Vec<String>) {
    let done = tools::run_bounded(
        Command::new("ffmpeg")
            .args([
                "-nostdin",
                "-v",
                "warning",
                "-protocol_whitelist",
                "file,http,tcp",
            ])
            .args(hls_options(path))
            .arg("-i")
            .arg(path)
            .args(["-f", "null", "-"]),
        Duration::from_secs(120),
    )
    .unwrap();
    assert!(done.success, "ffmpeg failed on {name}: {}", done.stderr);
    let lines: Vec<String> = done.stderr.lines().map(str::to_owned).collect();
    // Video is stream 0 and audio 1 (PMT order, also through the HLS demuxer); decoder messages name their
    // codec.
    let audio = lines
        .iter()
        .filter(|l| l.contains("[aac") || l.contains("stream = 1") || l.contains("stream 1"))
        .count();
    (audio, lines.len() - audio, lines)
}

/// ffmpeg's notices of a new init segment in `lines`: `(lines, occurrences)`. Its HLS demuxer feeds every
/// `EXT-X-MAP` to the one MP4 demuxer of the playlist, which says so at each switch ("Found duplicated MOOV
/// Atom. Skipped it", and "Last message repeated n times" for the next ones) and goes on with the track
/// layout it has (the creatives' is the content's). A stitched fMP4 break switches three times (content → ad →
/// slate → content); they are counted apart from the decoders' warnings.
fn init_switches(lines: &[String]) -> (usize, usize) {
    let (mut count, mut occurrences) = (0, 0);
    let mut after_notice = false;
    for l in lines {
        if l.contains("Found duplicated MOOV Atom") {
            (count, occurrences, after_notice) = (count + 1, occurrences + 1, true);
        } else if let Some(n) = after_notice
            .then(|| l.trim().strip_prefix("Last message repeated "))
            .flatten()
        {
            let n: usize = n
                .split(' ')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(1);
            (count, occurrences) = (count + 1, occurrences + n);
        } else {
            after_notice = false;
        }
    }
    (count, occurrences)
}

/// Seam check (issue 24): the origin's playlist and a stitched session's, over the same span around each break
/// (two content segments either side), decoded by ffmpeg in the same run; the stitched one must not draw more
/// warnings, audio or video, than the origin does. Breaks of 34 s every 46 s, each filled with two 15 s ads
/// and 4 s of slate, so every kind of seam is there: content->ad, ad->ad, ad->slate, slate->slate and
/// slate->content. Returns per break and rendition `(origin audio, origin video, stitched audio, stitched
/// video, stitched init segment switches)`; the warnings leave out ffmpeg's notices of init segment switches
/// (see [`init_switches`]), counted apart. With `cmaf`, over the channel's CMAF packaging with the fMP4
/// creatives and slate.
async fn seam_warnings(
    delivery: AdDelivery,
    cmaf: bool,
) -> Vec<(usize, usize, usize, usize, usize)> {
    tools::require("ffmpeg").unwrap();
    let origin_config = interlude_sim::origin::OriginConfig {
        window_segments: 60,
        first_break_secs: 30,
        break_duration_secs: 34,
        break_interval_secs: 46,
        ..Default::default()
    };
    let creatives = [("ad15", 15.0, "ads/ad15"), ("ad15b", 15.0, "ads/ad15")];
    let (run, packaging) = if cmaf {
        let run = start_cmaf_over(origin_config, &creatives, delivery).await;
        (run, "live1-cmaf")
    } else {
        (
            start_over(origin_config, &creatives, delivery, 30, 0).await,
            "live1",
        )
    };
    let session = new_session(&run.base).await;
    // Breaks at 30..64 and 76..110 s; at 118 s the 120 s window holds both, with content either side. The
    // session asks for its playlist as a player would: a session idle at a break's start gets slate.
    let media = format!("{}/s/{session}/0/media.m3u8", run.base);
    while run.clock.now() < run.epoch + chrono::TimeDelta::seconds(118) {
        reqwest::get(&media).await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    let get = |url: String| async move {
        let text = reqwest::get(&url).await.unwrap().text().await.unwrap();
        entries(&text, &url)
    };
    let mut counts = Vec::new();
    // Both renditions: anchors, audio edges and counters are measured per rendition.
    for rendition in 0..2 {
        let origin = get(format!(
            "{}/live/{packaging}/r{rendition}/index.m3u8",
            run.origin
        ))
        .await;
        let stitched = get(format!("{}/s/{session}/{rendition}/media.m3u8", run.base)).await;
        let is_content = |e: &Entry| e.uri.contains("/live/");
        let mut breaks = Vec::new();
        let mut i = 0;
        while i < stitched.len() {
            if is_content(&stitched[i]) {
                i += 1;
                continue;
            }
            let start = i;
            while i < stitched.len() && !is_content(&stitched[i]) {
                i += 1;
            }
            if start >= 2 && i + 2 <= stitched.len() {
                breaks.push((start - 2, i + 2));
            }
        }
        assert!(breaks.len() >= 2, "two whole breaks expected");
        for (n, &(from, to)) in breaks.iter().enumerate() {
            let span = &stitched[from..to];
            let at = |uri: &str| origin.iter().position(|e| e.uri == uri).unwrap();
            let same = &origin[at(&span[0].uri)..=at(&span[span.len() - 1].uri)];
            let (oa, ov, ol) =
                decode_warnings(same, &format!("origin-{packaging}-{rendition}-{n}"));
            let (sa, sv, sl) =
                decode_warnings(span, &format!("stitched-{packaging}-{rendition}-{n}"));
            let (o_notices, _) = init_switches(&ol);
            let (s_notices, switches) = init_switches(&sl);
            let (ov, sv) = (ov - o_notices, sv - s_notices);
            let count = |what: &str| span.iter().filter(|e| e.uri.contains(what)).count();
            println!(
                "{packaging} break {n} r{rendition} ({delivery:?}, {} ad + {} slate segments): origin {oa} audio + {ov} \
                 video warnings, stitched {sa} audio + {sv} video; {switches} init segment switches",
                count("/ads/"),
                count("/slate/")
            );
            for l in ol {
                println!("  origin:   {l}");
            }
            for l in sl {
                println!("  stitched: {l}");
            }
            counts.push((oa, ov, sa, sv, switches));
        }
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stitched_breaks_decode_with_no_more_warnings_than_the_origin_in_proxy_mode() {
    let counts = seam_warnings(AdDelivery::Proxy, false).await;
    assert_eq!(counts.len(), 4, "two breaks in each of two renditions");
    for (n, &(oa, ov, sa, sv, _)) in counts.iter().enumerate() {
        let (b, r) = (n % 2, n / 2);
        assert!(
            sa <= oa,
            "break {b} r{r}: {sa} audio warnings stitched, {oa} from the origin"
        );
        assert!(
            sv <= ov,
            "break {b} r{r}: {sv} video warnings stitched, {ov} from the origin"
        );
    }
}

/// Redirect mode, measured only: ffmpeg's HLS demuxer ignores `EXT-X-DISCONTINUITY`, so every creative's own
/// timestamps (starting near zero) look like a jump back to it; parity there is not possible.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measures redirect mode; it cannot reach parity with ffmpeg"]
async fn seam_warnings_in_redirect_mode() {
    let counts = seam_warnings(AdDelivery::Redirect, false).await;
    assert!(!counts.is_empty());
}

/// The seam check on the CMAF channel (fMP4 content, creatives and slate, each item under its own
/// `EXT-X-MAP`), in proxy mode, where ads and slate continue the content's decode times.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stitched_cmaf_breaks_decode_with_no_more_warnings_than_the_origin_in_proxy_mode() {
    let counts = seam_warnings(AdDelivery::Proxy, true).await;
    assert_eq!(counts.len(), 4, "two breaks in each of two renditions");
    for (n, &(oa, ov, sa, sv, switches)) in counts.iter().enumerate() {
        let (b, r) = (n % 2, n / 2);
        assert!(
            switches <= 3,
            "CMAF break {b} r{r}: {switches} init segment switches"
        );
        assert!(
            sa <= oa && sv <= ov,
            "CMAF break {b} r{r}: {sa} audio + {sv} video warnings stitched, {oa} + {ov} from the origin"
        );
    }
}

/// As a live player sees a break: each segment fetched as soon as the session's playlist lists it, the bytes
/// played as one stream. Its audio must be continuous and ffmpeg must warn no more than on the origin's
/// segments over the same span, fetched afterwards, and only where the origin does. (Here the stitcher has
/// seen the break end by the time its last segment is listed; the planned-duration path of
/// `seams::break_end`, for origins that publish later, is covered by its unit test.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_player_fetching_at_the_edge_sees_seamless_audio_and_counters_in_proxy_mode() {
    tools::require("ffmpeg").unwrap();
    let run = start(AdDelivery::Proxy, 30).await;
    let session = new_session(&run.base).await;
    let media = format!("{}/s/{session}/0/media.m3u8", run.base);
    // The break is 30..50 s: follow the live edge from 24 s to 58 s.
    until_channel_time(&run, 24).await;
    let http = reqwest::Client::new();
    let mut seen: Vec<String> = Vec::new();
    let mut fetched: Vec<(String, bytes::Bytes)> = Vec::new();
    while run.clock.now() < run.epoch + chrono::TimeDelta::seconds(58) {
        let text = http.get(&media).send().await.unwrap().text().await.unwrap();
        let listed = entries(&text, &media);
        let edge = listed.len().saturating_sub(2);
        for (i, e) in listed.iter().enumerate() {
            if seen.contains(&e.uri) {
                continue;
            }
            seen.push(e.uri.clone());
            // Start two segments from the live edge, as players do.
            if i >= edge || !fetched.is_empty() {
                let bytes = http
                    .get(&e.uri)
                    .send()
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap();
                fetched.push((e.uri.clone(), bytes));
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let uris: Vec<&str> = fetched.iter().map(|(u, _)| u.as_str()).collect();
    assert!(
        uris.iter().any(|u| u.contains("/ads/")),
        "no ad in {uris:?}"
    );
    assert!(
        uris.last().unwrap().contains("/live/"),
        "content resumes: {uris:?}"
    );

    // The origin's own segments over the same span: from the first to the last content segment played.
    let origin_url = format!("{}/live/live1/r0/index.m3u8", run.origin);
    let text = http
        .get(&origin_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let origin = entries(&text, &origin_url);
    let at = |uri: &str| origin.iter().position(|e| e.uri == uri).unwrap();
    let mut origin_bytes = Vec::new();
    for e in &origin[at(uris[0])..=at(uris[uris.len() - 1])] {
        let bytes = http
            .get(&e.uri)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        origin_bytes.extend_from_slice(&bytes);
    }
    let stitched_bytes: Vec<u8> = fetched
        .iter()
        .flat_map(|(_, b)| b.iter().copied())
        .collect();
    let dir = std::env::temp_dir();
    let id = std::process::id();
    let (stitched_path, origin_path) = (
        dir.join(format!("interlude-live-{id}-stitched.ts")),
        dir.join(format!("interlude-live-{id}-origin.ts")),
    );
    std::fs::write(&stitched_path, &stitched_bytes).unwrap();
    std::fs::write(&origin_path, &origin_bytes).unwrap();
    let ((oa, ov, ol), (sa, sv, sl), audio) = tokio::task::spawn_blocking({
        let (s, o) = (stitched_path.clone(), origin_path.clone());
        move || {
            (
                ffmpeg_warnings(&o, "live origin"),
                ffmpeg_warnings(&s, "live stitched"),
                audio_packet_pts(&s),
            )
        }
    })
    .await
    .unwrap();
    let _ = std::fs::remove_file(&stitched_path);
    let _ = std::fs::remove_file(&origin_path);
    println!(
        "live, {} segments: origin {oa} audio + {ov} video warnings, stitched {sa} audio + {sv} video",
        uris.len()
    );
    for l in ol
        .iter()
        .map(|l| format!("  origin:   {l}"))
        .chain(sl.iter().map(|l| format!("  stitched: {l}")))
    {
        println!("{l}");
    }
    assert!(
        sa <= oa && sv <= ov,
        "more warnings stitched than from the origin"
    );
    // Stronger: every corrupt packet stitched is one the origin has too (the content loop's own seams), none
    // at the break's edges or between its items.
    let dts = |lines: &[String]| -> Vec<String> {
        lines
            .iter()
            .filter_map(|l| Some(l.split_once("dts = ")?.1.trim_end_matches(").").to_owned()))
            .collect()
    };
    let origin_dts = dts(&ol);
    for d in dts(&sl) {
        assert!(
            origin_dts.contains(&d),
            "a corrupt packet at dts {d} the origin does not have: {sl:#?}"
        );
    }
    let aac = 1024.0 / 48_000.0;
    for (i, pair) in audio.windows(2).enumerate() {
        let gap = pair[1] - pair[0] - aac;
        assert!(
            gap >= -aac + 1e-6 && gap <= aac + 1e-6,
            "audio is not continuous at packet {i}: {} -> {} s (gap {:.1} ms)\n{uris:#?}",
            pair[0],
            pair[1],
            gap * 1000.0
        );
    }
}
