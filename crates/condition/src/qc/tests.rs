use super::parse::{SegmentFrames, Span, Spans};
use super::*;

fn span(first: f64, end: f64) -> Span {
    Span {
        packets: 10,
        first,
        end,
    }
}

fn good() -> Measurements {
    let seg = |i: usize| SegmentCheck {
        name: format!("ts/{i:03}.ts"),
        exit_ok: true,
        errors: String::new(),
        frames: SegmentFrames {
            first_video_key: Some(true),
            video: 50,
            audio: 94,
        },
        size: Some((100_000, 2.0)),
    };
    Measurements {
        segments: (0..8).map(seg).collect(),
        decodes: vec![("cmaf/manifest.mpd".into(), true, String::new())],
        ts: Spans {
            video: span(1.48, 16.48),
            audio: span(1.4, 16.42),
        },
        dash: Spans {
            video: span(0.08, 15.08),
            audio: span(0.0, 15.02),
        },
        integrated: Some(-23.2),
        black: vec![],
        silence: vec![],
    }
}

fn expected() -> Expected {
    Expected {
        duration: 15.0,
        frame: 0.04,
        audio: true,
        loudness: Some(-23.0),
        bandwidth: 600_000,
    }
}

#[test]
fn clean_rendition_passes() {
    let r = evaluate(&good(), &expected(), &QcThresholds::default());
    assert_eq!(r.failures, Vec::<String>::new());
    assert_eq!(r.warnings, Vec::<String>::new());
    assert_eq!(r.peak_segment_bitrate, 400_000);
}

#[test]
fn segment_without_leading_keyframe_fails() {
    let mut m = good();
    m.segments[3].frames.first_video_key = Some(false);
    m.segments[5].errors = "[h264 @ 0x1] non-existing PPS 0 referenced\n".into();
    let r = evaluate(&m, &expected(), &QcThresholds::default());
    assert_eq!(
        r.failures,
        [
            "ts/003.ts does not start with a keyframe",
            "ts/005.ts does not decode cleanly: [h264 @ 0x1] non-existing PPS 0 referenced"
        ]
    );
}

#[test]
fn loudness_off_by_more_than_one_lu_fails_and_silent_source_is_exempt() {
    let mut m = good();
    m.integrated = Some(-21.8);
    let r = evaluate(&m, &expected(), &QcThresholds::default());
    assert_eq!(
        r.failures,
        ["integrated loudness -21.8 LUFS, target -23.0 ± 1.0 LU"]
    );
    let silent = Expected {
        loudness: None,
        ..expected()
    };
    assert!(
        evaluate(&m, &silent, &QcThresholds::default())
            .failures
            .is_empty()
    );
}

#[test]
fn duration_two_frames_short_fails() {
    let mut m = good();
    m.ts.video = span(1.48, 16.40);
    let r = evaluate(&m, &expected(), &QcThresholds::default());
    assert_eq!(r.failures.len(), 1, "{:?}", r.failures);
    assert!(r.failures[0].starts_with("TS video lasts 14.920 s"));
}

#[test]
fn black_head_and_silent_tail_are_warnings_only() {
    let mut m = good();
    m.black = vec![(0.0, 1.2), (7.0, 7.3)];
    m.silence = vec![(14.2, 15.0)];
    m.segments[0].size = Some((200_000, 2.0));
    let r = evaluate(&m, &expected(), &QcThresholds::default());
    assert!(r.failures.is_empty());
    assert_eq!(
        r.warnings,
        [
            "black at the head for 1.20 s",
            "silence at the tail for 0.80 s",
            "peak segment bitrate 800000 bit/s exceeds BANDWIDTH 600000 bit/s"
        ]
    );
}

#[test]
fn analysis_graph_names_its_filters() {
    let a = analysis_args("/o/ts/index.m3u8", true, &QcThresholds::default()).join(" ");
    assert!(a.contains("blackdetect=d=0.5:pix_th=0.1[vo];[0:a:0]ebur128=framelog=verbose,silencedetect=n=-60dB:d=0.5[ao]"));
}
