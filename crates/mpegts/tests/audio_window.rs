//! Fitting real segments' audio to a window: `assets/ads/ad15/r0` (H.264 on PID 256, AAC-LC mono 48 kHz on PID
//! 257, made by `scripts/make-assets.sh`). Its first segment's audio starts one frame (1920 ticks) before its
//! video at 133200; its last segment's audio ends 1680 ticks after its video at 1483200.

use interlude_mpegts::{AudioWindow, audio_frames, audio_span, fit_audio, trim_audio};

const FIRST: &[u8] = include_bytes!("../../../assets/ads/ad15/r0/000.ts");
const LAST: &[u8] = include_bytes!("../../../assets/ads/ad15/r0/007.ts");
const FRAME: u64 = 1920;
const AUDIO: u16 = 257;

fn pid(p: &[u8]) -> u16 {
    u16::from(p[1] & 0x1F) << 8 | u16::from(p[2])
}

/// The packets of every PID but audio, which fitting must leave as they are.
fn other_packets(ts: &[u8]) -> Vec<&[u8]> {
    ts.chunks_exact(188).filter(|p| pid(p) != AUDIO).collect()
}

/// Checks the audio PID's continuity_counter steps by one through the segment.
fn assert_continuous(ts: &[u8]) {
    let ccs: Vec<u8> = ts
        .chunks_exact(188)
        .filter(|p| pid(p) == AUDIO)
        .map(|p| p[3] & 0x0F)
        .collect();
    for pair in ccs.windows(2) {
        assert_eq!(pair[1], (pair[0] + 1) & 0x0F, "continuity: {ccs:?}");
    }
}

/// Checks frames are one frame apart, none missing.
fn assert_contiguous(frames: &[u64]) {
    for pair in frames.windows(2) {
        assert_eq!(pair[1] - pair[0], FRAME, "frames {frames:?}");
    }
}

#[test]
fn the_priming_frame_before_the_video_is_dropped() {
    let before = audio_frames(FIRST);
    assert_eq!(before.first(), Some(&131_280));
    let out = trim_audio(FIRST, 133_200, 133_200 + 2 * 90_000);
    assert_eq!(out.len() % 188, 0);
    let after = audio_frames(&out);
    assert_eq!(after.first(), Some(&133_200));
    assert_eq!(after, before[1..], "only the frame before the window goes");
    assert_contiguous(&after);
    assert_continuous(&out);
    assert_eq!(other_packets(&out), other_packets(FIRST));
    assert!(out.len() <= FIRST.len());
}

#[test]
fn frames_from_the_end_of_the_window_are_dropped() {
    let end = 1_483_200;
    let out = trim_audio(LAST, 1_300_000, end);
    let after = audio_frames(&out);
    let last = *after.last().expect("frames");
    assert!(last < end && last + FRAME >= end, "last frame at {last}");
    assert_eq!(
        audio_frames(LAST).iter().filter(|&&p| p < end).count(),
        after.len()
    );
    assert_contiguous(&after);
    assert_continuous(&out);
    assert_eq!(other_packets(&out), other_packets(LAST));
    assert_eq!(
        audio_span(&out),
        Some((audio_frames(LAST)[0], last + FRAME))
    );
}

#[test]
fn a_window_around_all_audio_changes_nothing() {
    assert!(trim_audio(FIRST, 0, 10 * 90_000) == FIRST);
    let pad = AudioWindow {
        start: 131_280,
        end: 306_000,
        pad_start: true,
        pad_end: true,
    };
    assert!(fit_audio(FIRST, &pad) == FIRST, "no gap to pad");
}

#[test]
fn a_window_before_all_audio_drops_it() {
    let out = trim_audio(FIRST, 0, 90_000);
    assert!(audio_frames(&out).is_empty());
    assert_eq!(other_packets(&out), other_packets(FIRST));
    assert!(out.chunks_exact(188).all(|p| pid(p) != AUDIO));
}

#[test]
fn silence_fills_the_window_edges_to_within_a_frame() {
    // 2.75 frames before the first frame and 3.5 frames after the last.
    let (start, end) = audio_span(FIRST).expect("audio");
    let window = AudioWindow {
        start: start - 5_280,
        end: end + 6_720,
        pad_start: true,
        pad_end: true,
    };
    let out = fit_audio(FIRST, &window);
    let frames = audio_frames(&out);
    assert_eq!(frames.first(), Some(&(start - 2 * FRAME)));
    assert_eq!(frames.last(), Some(&(end + 2 * FRAME)));
    assert_eq!(frames.len(), audio_frames(FIRST).len() + 5);
    assert_contiguous(&frames);
    assert_continuous(&out);
    assert_eq!(other_packets(&out), other_packets(FIRST));
    // Only the edges asked for are padded.
    let start_only = fit_audio(
        FIRST,
        &AudioWindow {
            pad_end: false,
            ..window
        },
    );
    assert_eq!(audio_frames(&start_only).last(), Some(&(end - FRAME)));
}

#[test]
fn a_segment_without_tables_is_left_alone() {
    let without_tables: Vec<u8> = FIRST
        .chunks_exact(188)
        .filter(|p| pid(p) != 0)
        .flatten()
        .copied()
        .collect();
    assert!(trim_audio(&without_tables, 133_200, 200_000) == without_tables);
    assert!(trim_audio(&FIRST[1..], 133_200, 200_000) == FIRST[1..]);
}

#[test]
fn windows_across_the_33_bit_wrap_keep_the_right_frames() {
    let mut shifted = FIRST.to_vec();
    let offset = interlude_mpegts::offset_between(133_200, 0); // video starts at 0 after the shift
    interlude_mpegts::shift_timestamps(&mut shifted, offset);
    let out = trim_audio(&shifted, 0, 2 * 90_000);
    let frames = audio_frames(&out);
    assert_eq!(frames.first(), Some(&0));
    assert_eq!(frames.len(), audio_frames(FIRST).len() - 1);
}
