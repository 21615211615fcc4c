//! Quality checks on a conditioned rendition, measured with ffprobe/ffmpeg and judged here:
//!
//! - every segment (TS, and each CMAF fragment with its init segment) decodes on its own with no error
//!   output, and its first video frame is a keyframe — a segment that needs its predecessor cannot be
//!   spliced after content;
//! - the whole TS playlist, CMAF HLS playlist and DASH MPD decode with no error output;
//! - video and audio last as long as the source, within one frame of the rendition's rate;
//! - integrated loudness (the `ebur128` filter, ITU-R BS.1770) is within a tolerance of the target;
//! - black pictures or silence at the head or tail beyond a threshold are reported (not fatal: a creative may
//!   fade in on purpose, but a trafficker wants to know), as is a segment whose bitrate exceeds the
//!   variant's `BANDWIDTH`.
//!
//! A failure sends the job to quarantine with the reasons; warnings travel with the outputs.

pub mod parse;

use serde::{Deserialize, Serialize};

use parse::{SegmentFrames, Spans};

/// Limits of the checks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QcThresholds {
    /// Largest difference from the integrated loudness target, LU.
    pub loudness_tolerance_lu: f64,
    /// Black or silence at the head or tail longer than this is reported, seconds.
    pub edge_seconds: f64,
    /// `blackdetect` `pix_th`: the share of the luma range under which a pixel is black.
    pub black_pixel_threshold: f64,
    /// `silencedetect` noise floor, dBFS.
    pub silence_floor_db: f64,
}

impl Default for QcThresholds {
    fn default() -> QcThresholds {
        QcThresholds {
            loudness_tolerance_lu: 1.0,
            edge_seconds: 0.5,
            black_pixel_threshold: 0.10,
            silence_floor_db: -60.0,
        }
    }
}

/// One segment, as decoded alone.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentCheck {
    /// Its name (`ts/003.ts`, `cmaf/seg-0-004.m4s`).
    pub name: String,
    /// Whether the decoder exited with status 0.
    pub exit_ok: bool,
    /// Its error output (should be empty).
    pub errors: String,
    /// What was decoded.
    pub frames: SegmentFrames,
    /// Size in bytes and duration in seconds, for TS segments (bitrate check); `None` for fragments.
    pub size: Option<(u64, f64)>,
}

/// Everything measured on one rendition.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Measurements {
    /// Each segment.
    pub segments: Vec<SegmentCheck>,
    /// Whole-playlist decodes: (which, exit ok, error output).
    pub decodes: Vec<(String, bool, String)>,
    /// Packet extents of the TS playlist.
    pub ts: Spans,
    /// Packet extents of the DASH presentation.
    pub dash: Spans,
    /// Integrated loudness of the TS output.
    pub integrated: Option<f64>,
    /// Black intervals.
    pub black: Vec<(f64, f64)>,
    /// Silent intervals.
    pub silence: Vec<(f64, f64)>,
}

/// What the rendition should be.
#[derive(Debug, Clone, PartialEq)]
pub struct Expected {
    /// The source's duration, seconds.
    pub duration: f64,
    /// One frame of the rendition, seconds.
    pub frame: f64,
    /// Whether the rendition has audio.
    pub audio: bool,
    /// The loudness target, `None` when the source was silent (nothing to normalise).
    pub loudness: Option<f64>,
    /// The variant's `BANDWIDTH`.
    pub bandwidth: u64,
}

/// The verdict on one rendition.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct QcReport {
    /// Fatal findings.
    pub failures: Vec<String>,
    /// Findings reported but not fatal.
    pub warnings: Vec<String>,
    /// Measured integrated loudness, LUFS.
    pub integrated: Option<f64>,
    /// Measured video duration of the TS output, seconds.
    pub video_duration: f64,
    /// Highest TS segment bitrate, bits per second.
    pub peak_segment_bitrate: u64,
}

fn first_line(text: &str) -> &str {
    text.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
}

/// Judges `m` against `e`.
pub fn evaluate(m: &Measurements, e: &Expected, t: &QcThresholds) -> QcReport {
    let mut r = QcReport {
        integrated: m.integrated,
        video_duration: m.ts.video.duration(),
        ..QcReport::default()
    };
    for s in &m.segments {
        if !s.exit_ok || !s.errors.trim().is_empty() {
            r.failures.push(format!(
                "{} does not decode cleanly: {}",
                s.name,
                first_line(&s.errors)
            ));
        }
        match s.frames.first_video_key {
            Some(true) => {}
            Some(false) => r
                .failures
                .push(format!("{} does not start with a keyframe", s.name)),
            None if s.frames.audio == 0 => {
                r.failures.push(format!("{} decodes to nothing", s.name))
            }
            None => {}
        }
        if let Some((bytes, secs)) = s.size.filter(|(_, secs)| *secs > 0.0) {
            let bits = (bytes as f64 * 8.0 / secs) as u64;
            r.peak_segment_bitrate = r.peak_segment_bitrate.max(bits);
        }
    }
    if m.segments.is_empty() {
        r.failures.push("no segments".into());
    }
    for (what, ok, errors) in &m.decodes {
        if !ok || !errors.trim().is_empty() {
            r.failures.push(format!(
                "{what} does not decode cleanly: {}",
                first_line(errors)
            ));
        }
    }
    let tolerance = e.frame + 1e-3;
    let mut duration = |what: &str, got: f64| {
        if (got - e.duration).abs() > tolerance {
            r.failures.push(format!(
                "{what} lasts {got:.3} s, source {:.3} s (more than one frame apart)",
                e.duration
            ));
        }
    };
    duration("TS video", m.ts.video.duration());
    duration("DASH video", m.dash.video.duration());
    if e.audio {
        duration("TS audio", m.ts.audio.duration());
        duration("DASH audio", m.dash.audio.duration());
    }
    if let Some(target) = e.loudness.filter(|_| e.audio) {
        match m.integrated {
            Some(i) if (i - target).abs() <= t.loudness_tolerance_lu => {}
            Some(i) => r.failures.push(format!(
                "integrated loudness {i:.1} LUFS, target {target:.1} ± {:.1} LU",
                t.loudness_tolerance_lu
            )),
            None => r.failures.push("loudness not measured".into()),
        }
    }
    let total = m.ts.video.duration().max(e.duration);
    let edge = |what: &str, intervals: &[(f64, f64)], out: &mut Vec<String>| {
        for &(start, end) in intervals {
            let len = end - start;
            if len < t.edge_seconds {
                continue;
            }
            if start <= 0.1 {
                out.push(format!("{what} at the head for {len:.2} s"));
            } else if end >= total - 0.1 {
                out.push(format!("{what} at the tail for {len:.2} s"));
            }
        }
    };
    edge("black", &m.black, &mut r.warnings);
    if e.audio {
        edge("silence", &m.silence, &mut r.warnings);
    }
    if r.peak_segment_bitrate > e.bandwidth && e.bandwidth > 0 {
        r.warnings.push(format!(
            "peak segment bitrate {} bit/s exceeds BANDWIDTH {} bit/s",
            r.peak_segment_bitrate, e.bandwidth
        ));
    }
    r
}

/// `ffprobe` listing every decoded frame's type and key flag (decoding errors go to the error output).
pub fn frames_args(path: &str) -> Vec<String> {
    [
        "-v",
        "error",
        "-show_entries",
        "frame=media_type,key_frame",
        "-of",
        "csv=p=0",
        path,
    ]
    .map(String::from)
    .to_vec()
}

/// `ffprobe` listing every packet's type, pts and duration.
pub fn packets_args(path: &str) -> Vec<String> {
    [
        "-v",
        "error",
        "-show_entries",
        "packet=codec_type,pts_time,duration_time",
        "-of",
        "csv=p=0",
        path,
    ]
    .map(String::from)
    .to_vec()
}

/// `ffmpeg` decoding `path` and discarding the result; only errors are printed.
pub fn decode_args(path: &str) -> Vec<String> {
    [
        "-hide_banner",
        "-nostdin",
        "-v",
        "error",
        "-i",
        path,
        "-f",
        "null",
        "-",
    ]
    .map(String::from)
    .to_vec()
}

/// `ffmpeg` running `blackdetect`, and `ebur128` and `silencedetect` when there is audio, over `path`.
pub fn analysis_args(path: &str, audio: bool, t: &QcThresholds) -> Vec<String> {
    let black = format!(
        "[0:v:0]blackdetect=d={}:pix_th={}[vo]",
        t.edge_seconds, t.black_pixel_threshold
    );
    let graph = if audio {
        format!(
            "{black};[0:a:0]ebur128=framelog=verbose,silencedetect=n={}dB:d={}[ao]",
            t.silence_floor_db, t.edge_seconds
        )
    } else {
        black
    };
    let mut a: Vec<String> = [
        "-hide_banner",
        "-nostdin",
        "-nostats",
        "-i",
        path,
        "-filter_complex",
    ]
    .map(String::from)
    .to_vec();
    a.push(graph);
    a.extend(["-map", "[vo]"].map(String::from));
    if audio {
        a.extend(["-map", "[ao]"].map(String::from));
    }
    a.extend(["-f", "null", "-"].map(String::from));
    a
}

#[cfg(test)]
mod tests;
