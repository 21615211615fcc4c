//! Seam check for DASH sessions over a CMAF channel (issue 24): a stitched session's break, each track
//! appended as a DASH player appends it to MSE (Period by Period, within the Period's append window, decode
//! times moved by the timestampOffset), decoded by ffmpeg next to the origin's own MPD over the same span.
//! Needs ffmpeg/ffprobe on PATH: `scripts/test.sh` installs them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::dash::manifest;
use common::new_session;
use interlude_dash::segment::period_segments;
use interlude_dash::{ContentKind, Mpd, parse_mpd};
use interlude_server::stitcher::config::AdDelivery;
use interlude_sim::clock::Clock;
use interlude_sim::tools;

/// Numbers the temporary files of this process.
static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// What a player appends to MSE for one Period of a track: the init segment, the media segments, and the
/// append window (seconds on the presentation timeline): samples outside it are dropped.
struct Piece {
    init: Vec<u8>,
    media: Vec<u8>,
    window: (f64, f64),
    /// The init segment differs from the previous piece's (a player appends it).
    new_init: bool,
}

/// The track of kind `kind` (its `rep`-th Representation in every Period) over `[from, to)` of the
/// presentation, as a DASH player appends it to MSE, Period by Period: the init segment, and each segment
/// moved to its place on the presentation timeline (MSE's timestampOffset: the Period start less the
/// presentationTimeOffset), here by rewriting its decode times so that ffmpeg reads one timeline.
async fn appended_track(
    http: &reqwest::Client,
    mpd: &Mpd,
    mpd_url: &url::Url,
    kind: ContentKind,
    rep: usize,
    (from, to): (Duration, Duration),
) -> Vec<Piece> {
    let base = mpd
        .base_urls
        .first()
        .map_or(mpd_url.clone(), |b| mpd_url.join(&b.url).unwrap());
    let fetch = |url: String| {
        let url = base.join(&url).unwrap();
        async move {
            let r = http.get(url.clone()).send().await.unwrap();
            assert!(r.status().is_success(), "{url}: {}", r.status());
            r.bytes().await.unwrap().to_vec()
        }
    };
    let starts = mpd.period_starts();
    let mut out = Vec::new();
    let mut last_init = None;
    for (i, p) in mpd.periods.iter().enumerate() {
        let start = starts[i].unwrap();
        let end = starts.get(i + 1).copied().flatten().unwrap_or(to);
        if end <= from || start >= to {
            continue;
        }
        let Some((ai, set)) = p
            .adaptation_sets
            .iter()
            .enumerate()
            .find(|(_, s)| s.kind() == kind)
        else {
            continue;
        };
        let r = &set.representations[rep];
        let template = match (&r.segment_template, &set.segment_template) {
            (Some(t), Some(parent)) => t.inherit(parent),
            (Some(t), None) | (None, Some(t)) => t.clone(),
            (None, None) => panic!("no SegmentTemplate"),
        };
        let (ts, pto) = (template.timescale(), template.presentation_time_offset());
        let start_ticks = u64::try_from(start.as_nanos() * u128::from(ts) / 1_000_000_000).unwrap();
        let segments: Vec<_> = period_segments(p, start, Some(end))
            .unwrap()
            .into_iter()
            .filter(|s| s.adaptation_set == ai && s.representation_id == r.id)
            .filter(|s| s.start < to && s.start + s.duration > from)
            .collect();
        if segments.is_empty() {
            continue;
        }
        let init = template
            .initialization
            .unwrap()
            .replace("$RepresentationID$", &r.id);
        let new_init = last_init.as_ref() != Some(&init);
        let mut piece = Piece {
            init: fetch(init.clone()).await,
            media: Vec::new(),
            window: (start.max(from).as_secs_f64(), end.min(to).as_secs_f64()),
            new_init,
        };
        last_init = Some(init);
        for s in segments {
            let mut bytes = fetch(s.url).await;
            interlude_mpegts::fmp4::rewrite_decode_times(&mut bytes, |_, t| {
                (t + start_ticks).checked_sub(pto)
            })
            .unwrap();
            piece.media.extend(bytes);
        }
        out.push(piece);
    }
    out
}

/// ffmpeg's warnings decoding the pieces as one stream (init segments where they change), its init segment
/// switches, and the packets (pts, duration) a player keeps: each piece's, decoded on its own, within its
/// append window.
fn decode_pieces(pieces: &[Piece], name: &str) -> (Vec<String>, usize, Vec<(f64, f64)>) {
    let mut joined = Vec::new();
    for p in pieces {
        if p.new_init {
            joined.extend_from_slice(&p.init);
        }
        joined.extend_from_slice(&p.media);
    }
    let (warnings, switches, _) = warnings_and_frames(&joined, name);
    let mut kept = Vec::new();
    for p in pieces {
        let (_, _, frames) = warnings_and_frames(&[&p.init[..], &p.media].concat(), name);
        kept.extend(
            frames
                .into_iter()
                .filter(|(pts, _)| *pts >= p.window.0 - 1e-6 && *pts < p.window.1 - 1e-6),
        );
    }
    kept.sort_by(|a, b| a.0.total_cmp(&b.0));
    (warnings, switches, kept)
}

/// ffmpeg's warnings decoding `bytes` (but its notices of a new init segment, which a switch of init
/// segment draws from its one MP4 demuxer: counted apart), and each packet's (pts, duration) from ffprobe, in
/// presentation order.
/// Samples are timed by their decode time and composition offset alone, as Chromium's MSE times them: it
/// ignores an edit list that starts with an empty edit (all of these do, ffmpeg writes them so), where
/// ffmpeg would shift each file by its own.
const IGNORE_EDIT_LISTS: [&str; 2] = ["-ignore_editlist", "1"];

fn warnings_and_frames(bytes: &[u8], name: &str) -> (Vec<String>, usize, Vec<(f64, f64)>) {
    let path = std::env::temp_dir().join(format!(
        "interlude-dash-seam-{}-{name}-{}.mp4",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::write(&path, bytes).unwrap();
    let decoded = tools::run_bounded(
        Command::new("ffmpeg")
            .args(["-hide_banner", "-nostdin", "-v", "warning"])
            .args(IGNORE_EDIT_LISTS)
            .arg("-i")
            .arg(&path)
            .args(["-f", "null", "-"]),
        Duration::from_secs(60),
    )
    .unwrap();
    let probe = tools::run_bounded(
        Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-show_entries",
                "packet=pts_time,duration_time",
                "-of",
                "csv=p=0",
            ])
            .args(IGNORE_EDIT_LISTS)
            .arg(&path),
        Duration::from_secs(60),
    )
    .unwrap();
    let _ = std::fs::remove_file(&path);
    let mut warnings = Vec::new();
    let mut switches = 0;
    let mut after_notice = false;
    for l in decoded.stderr.lines() {
        if l.contains("Found duplicated MOOV Atom") {
            (switches, after_notice) = (switches + 1, true);
        } else if after_notice && l.trim().starts_with("Last message repeated ") {
            switches += l.trim()["Last message repeated ".len()..]
                .split(' ')
                .next()
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap_or(1);
        } else {
            after_notice = false;
            warnings.push(l.to_owned());
        }
    }
    let mut frames: Vec<(f64, f64)> = probe
        .stdout
        .lines()
        .filter_map(|l| {
            let mut f = l.split(',').map(|v| v.trim().parse::<f64>());
            Some((f.next()?.ok()?, f.next()?.ok()?))
        })
        .collect();
    frames.sort_by(|a, b| a.0.total_cmp(&b.0));
    (warnings, switches, frames)
}

/// Where consecutive frames do not abut: (at, gap in seconds; negative for an overlap), beyond `tolerance`.
fn seams(frames: &[(f64, f64)], tolerance: f64) -> Vec<(f64, f64)> {
    frames
        .windows(2)
        .map(|w| (w[1].0, w[1].0 - (w[0].0 + w[0].1)))
        .filter(|(_, gap)| gap.abs() > tolerance)
        .collect()
}

/// Seam check for DASH (issue 24): a stitched session's break from 4 s before to 4 s after, each track
/// appended as a player appends it (content, two ads, slate, content; each Period within its append window),
/// decoded by ffmpeg next to the origin's own MPD over the same span: no more warnings than the origin, video
/// frames that abut at every Period boundary as they do within the content, audio within one AAC frame.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dash_break_over_cmaf_decodes_as_cleanly_as_the_origin() {
    tools::require("ffmpeg").unwrap();
    let origin_config = interlude_sim::origin::OriginConfig {
        window_segments: 60,
        first_break_secs: 30,
        break_duration_secs: 34,
        break_interval_secs: 46,
        ..Default::default()
    };
    let creatives = [("ad15", 15.0, "ads/ad15"), ("ad15b", 15.0, "ads/ad15")];
    let run = common::start_cmaf_over(origin_config, &creatives, AdDelivery::Redirect).await;
    let session = new_session(&run.base).await;
    // The first break is 30..64 s; at 72 s it is in the window with content either side.
    let media = format!("{}/s/{session}/0/media.m3u8", run.base);
    while run.clock.now() < run.epoch + chrono::TimeDelta::seconds(72) {
        reqwest::get(&media).await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (text, mpd) = manifest(&run.base, &session).await;
    let origin_url =
        url::Url::parse(&format!("{}/live/live1-cmaf/manifest.mpd", run.origin)).unwrap();
    let origin_text = reqwest::get(origin_url.clone())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let origin = parse_mpd(&origin_text).unwrap();
    let starts = mpd.period_starts();
    let at = |part: &str| {
        mpd.periods
            .iter()
            .position(|p| p.id.as_deref().unwrap().contains(part))
            .and_then(|i| starts[i])
            .unwrap_or_else(|| panic!("no {part} Period:\n{text}"))
    };
    let (break_start, break_end) = (at("_ad0"), at("_post"));
    let span = (
        break_start - Duration::from_secs(4),
        break_end + Duration::from_secs(4),
    );
    let http = reqwest::Client::new();
    let mpd_url = url::Url::parse(&format!("{}/s/{session}/manifest.mpd", run.base)).unwrap();
    for (kind, name) in [(ContentKind::Video, "video"), (ContentKind::Audio, "audio")] {
        let tolerance = 0.001;
        let stitched = appended_track(&http, &mpd, &mpd_url, kind, 0, span).await;
        let plain = appended_track(&http, &origin, &origin_url, kind, 0, span).await;
        let ((sw, switches, sf), (ow, _, of)) = tokio::task::spawn_blocking(move || {
            (
                decode_pieces(&stitched, "stitched"),
                decode_pieces(&plain, "origin"),
            )
        })
        .await
        .unwrap();
        let (s_seams, o_seams) = (seams(&sf, tolerance), seams(&of, tolerance));
        let secs =
            |f: &[(f64, f64)]| f.last().map_or(0.0, |l| l.0 + l.1) - f.first().map_or(0.0, |f| f.0);
        println!(
            "DASH {name}, break {:.0}..{:.0} s ± 4 s: origin {} warnings, {} frames over {:.3} s, seams {o_seams:?}; \
             stitched {} warnings, {switches} init switches, {} frames over {:.3} s, seams {s_seams:?}",
            break_start.as_secs_f64() % 1000.0,
            break_end.as_secs_f64() % 1000.0,
            ow.len(),
            of.len(),
            secs(&of),
            sw.len(),
            sf.len(),
            secs(&sf),
        );
        for l in &sw {
            println!("  stitched: {l}");
        }
        for l in &ow {
            println!("  origin:   {l}");
        }
        assert!(
            sw.len() <= ow.len(),
            "{name}: {} warnings stitched, {} from the origin",
            sw.len(),
            ow.len()
        );
        // Video frames abut at every Period boundary as within the content; an item's audio ends on an AAC
        // frame, so at a boundary up to one frame (1024 samples at 48 kHz) is cut or missing.
        let slack = match kind {
            ContentKind::Video => 0.001,
            _ => 1024.0 / 48_000.0 + 0.001,
        };
        assert!(
            s_seams.iter().all(|(_, gap)| gap.abs() <= slack),
            "{name}: frames do not abut at {s_seams:?}"
        );
        assert!(
            sf.len().abs_diff(of.len()) <= 5,
            "{name}: {} frames stitched, {} from the origin",
            sf.len(),
            of.len()
        );
    }
}
