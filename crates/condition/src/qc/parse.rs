//! Readers of what ffprobe and ffmpeg's analysis filters print. Each takes any text and never panics: a line
//! it does not recognise is skipped.

/// One media type's extent in a packet listing.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Span {
    /// Packets seen.
    pub packets: usize,
    /// Earliest presentation time, seconds.
    pub first: f64,
    /// Latest presentation end (pts + duration), seconds.
    pub end: f64,
}

impl Span {
    /// `end - first`.
    pub fn duration(&self) -> f64 {
        (self.end - self.first).max(0.0)
    }

    fn add(&mut self, pts: f64, dur: f64) {
        if self.packets == 0 {
            self.first = pts;
            self.end = pts + dur;
        } else {
            self.first = self.first.min(pts);
            self.end = self.end.max(pts + dur);
        }
        self.packets += 1;
    }
}

/// Video and audio extents.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Spans {
    /// Video packets.
    pub video: Span,
    /// Audio packets.
    pub audio: Span,
}

/// Reads `ffprobe -show_entries packet=codec_type,pts_time,duration_time -of csv=p=0`.
pub fn packet_spans(csv: &str) -> Spans {
    let mut spans = Spans::default();
    for line in csv.lines() {
        let mut f = line.split(',');
        let (Some(kind), Some(pts), Some(dur)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let (Ok(pts), Ok(dur)) = (pts.trim().parse::<f64>(), dur.trim().parse::<f64>()) else {
            continue;
        };
        if !pts.is_finite() || !dur.is_finite() {
            continue;
        }
        match kind.trim() {
            "video" => spans.video.add(pts, dur),
            "audio" => spans.audio.add(pts, dur),
            _ => {}
        }
    }
    spans
}

/// What `ffprobe -show_entries frame=media_type,key_frame -of csv=p=0` says about one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SegmentFrames {
    /// Whether the first decoded video frame is a keyframe (`None`: no video frame).
    pub first_video_key: Option<bool>,
    /// Video frames decoded.
    pub video: usize,
    /// Audio frames decoded.
    pub audio: usize,
}

/// Reads a frame listing.
pub fn segment_frames(csv: &str) -> SegmentFrames {
    let mut out = SegmentFrames::default();
    for line in csv.lines() {
        let mut f = line.split(',');
        let (Some(kind), Some(key)) = (f.next(), f.next()) else {
            continue;
        };
        match kind.trim() {
            "video" => {
                if out.video == 0 {
                    out.first_video_key = Some(key.trim() == "1");
                }
                out.video += 1;
            }
            "audio" => out.audio += 1,
            _ => {}
        }
    }
    out
}

/// The number at the start of `s` (`3[dash @ …` → 3).
fn leading_number(s: &str) -> Option<f64> {
    let s = s.trim_start();
    let end = s
        .char_indices()
        .find(|&(_, c)| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+' || c == 'e'))
        .map_or(s.len(), |(i, _)| i);
    s.get(..end)?.parse().ok().filter(|v: &f64| v.is_finite())
}

/// The value after `key` on a line (`black_end:2.96` → 2.96).
fn value_after(line: &str, key: &str) -> Option<f64> {
    let at = line.find(key)?;
    leading_number(line.get(at + key.len()..)?)
}

/// Integrated loudness from the `ebur128` filter's summary (`Integrated loudness:` then `I: -23.0 LUFS`).
pub fn ebur128_integrated(stderr: &str) -> Option<f64> {
    let summary = stderr.get(stderr.rfind("Integrated loudness:")?..)?;
    summary.lines().find_map(|l| value_after(l, "I:"))
}

/// Intervals `blackdetect` reported (`black_start:0 black_end:2.96 black_duration:2.96`).
pub fn black_intervals(stderr: &str) -> Vec<(f64, f64)> {
    stderr
        .lines()
        .filter_map(|l| {
            Some((
                value_after(l, "black_start:")?,
                value_after(l, "black_end:")?,
            ))
        })
        .collect()
}

/// Intervals `silencedetect` reported; a silence still open at the end has `end` = `total`.
pub fn silence_intervals(stderr: &str, total: f64) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    let mut open = None;
    // A `silence_end` may share a line with the next log line (the filter prints it without a newline).
    for l in stderr.lines() {
        if let Some(start) = value_after(l, "silence_start:") {
            open = Some(start);
        }
        if let Some(end) = value_after(l, "silence_end:") {
            out.push((open.take().unwrap_or(0.0), end));
        }
    }
    if let Some(start) = open {
        out.push((start, total));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_listing_gives_durations_despite_b_frames_and_blank_lines() {
        let csv = "video,1.480000,0.040000,\n\nvideo,1.560000,0.040000\nvideo,1.520000,0.040000\n\
                   audio,1.400000,0.021333\naudio,N/A,0.021333\naudio,1.421333,0.021333\n";
        let s = packet_spans(csv);
        assert_eq!(s.video.packets, 3);
        assert!((s.video.duration() - 0.12).abs() < 1e-9);
        assert_eq!(s.audio.packets, 2);
    }

    #[test]
    fn first_video_frame_decides_the_keyframe_check() {
        let f = segment_frames("audio,1\nvideo,1\nvideo,0\naudio,1\n");
        assert_eq!(f.first_video_key, Some(true));
        assert_eq!((f.video, f.audio), (2, 2));
        assert_eq!(
            segment_frames("video,0\nvideo,1").first_video_key,
            Some(false)
        );
    }

    /// ffmpeg 5.1's summary and detector lines.
    const STDERR: &str = "[silencedetect @ 0x55b562e5aac0] silence_start: 0\n\
        [blackdetect @ 0x55b562e5a240] black_start:0 black_end:2.96 black_duration:2.96\n\
        [silencedetect @ 0x55b562e5aac0] silence_end: 3 | silence_duration: 3[dash @ 0x5] x\n\
        [silencedetect @ 0x1] silence_start: 14.5\n\
        [Parsed_ebur128_1 @ 0x56476158ea40] Summary:\n\n  Integrated loudness:\n    I:         -23.0 LUFS\n\
        Threshold: -33.0 LUFS\n\n  Loudness range:\n    LRA:         0.0 LU\n";

    #[test]
    fn detector_and_summary_lines_are_read() {
        assert_eq!(ebur128_integrated(STDERR), Some(-23.0));
        assert_eq!(black_intervals(STDERR), vec![(0.0, 2.96)]);
        assert_eq!(
            silence_intervals(STDERR, 15.0),
            vec![(0.0, 3.0), (14.5, 15.0)]
        );
    }

    proptest::proptest! {
        #[test]
        fn any_text_never_panics(s in "\\PC{0,300}") {
            let _ = packet_spans(&s);
            let _ = segment_frames(&s);
            let _ = ebur128_integrated(&s);
            let _ = black_intervals(&s);
            let _ = silence_intervals(&s, 10.0);
        }
    }
}
