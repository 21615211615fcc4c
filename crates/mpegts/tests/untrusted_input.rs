//! Segments come from creative CDNs and origins we do not control: any bytes must be handled without a panic,
//! and a shift must be exactly undone by the opposite shift (only timestamp bits ever change).

use interlude_mpegts::{
    AudioWindow, Counters, WRAP, audio_frames, audio_span, first_counters, first_pts, fit_audio,
    last_counters, offset_between, set_counters, shift_timestamps, truncate,
};
use proptest::prelude::*;

/// Packets that look like TS often enough to reach the PES and adaptation-field paths.
fn packets() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        (
            prop::collection::vec(any::<u8>(), 188),
            any::<bool>(),
            any::<bool>(),
        ),
        0..8,
    )
    .prop_map(|packets| {
        let mut out = Vec::new();
        for (mut p, sync, pes) in packets {
            if sync {
                p[0] = 0x47;
            }
            if pes {
                p[1] |= 0x40;
                p[3] = (p[3] & 0xCF) | 0x10;
                p[4..7].copy_from_slice(&[0, 0, 1]);
            }
            out.extend(p);
        }
        out
    })
}

/// A real segment with audio: its tables, PES headers and ADTS headers are where corruption hurts most.
const AD: &[u8] = include_bytes!("../../../assets/ads/ad15/r0/000.ts");

/// Fits audio to an arbitrary window, padded at both edges, sets arbitrary continuity counters on the result,
/// and checks both are still whole packets; returns the fitted segment.
fn fit_anywhere(bytes: &[u8], start: u64, length: u64) -> Vec<u8> {
    let window = AudioWindow {
        start: start % WRAP,
        end: (start + length) % WRAP,
        pad_start: true,
        pad_end: true,
    };
    let out = fit_audio(bytes, &window);
    let _ = audio_span(&out);
    let _ = audio_frames(&out);
    let counters: Vec<Counters> = first_counters(&out)
        .into_iter()
        .chain(last_counters(&out))
        .map(|(pid, cc)| Counters {
            pid,
            first: cc ^ (length as u8),
            last: cc.wrapping_add(start as u8),
        })
        .collect();
    let renumbered = set_counters(&out, &counters);
    assert!(
        bytes.len() % 188 != 0 || (out.len() % 188 == 0 && renumbered.len() % 188 == 0),
        "a packet was cut"
    );
    out
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(mut bytes in prop::collection::vec(any::<u8>(), 0..2000), offset in any::<u64>()) {
        let _ = first_pts(&bytes);
        let _ = truncate(&bytes, offset);
        let _ = fit_anywhere(&bytes, offset, offset >> 31);
        shift_timestamps(&mut bytes, offset);
    }

    #[test]
    fn packet_shaped_bytes_never_panic_audio_fitting(bytes in packets(), start in any::<u64>(), length in 0..WRAP) {
        let _ = fit_anywhere(&bytes, start, length);
    }

    #[test]
    fn a_corrupted_real_segment_never_panics_audio_fitting(
        flips in prop::collection::vec((0..AD.len(), any::<u8>()), 1..40),
        start in 100_000u64..400_000,
        length in 0u64..300_000,
    ) {
        let mut bytes = AD.to_vec();
        for (at, value) in flips {
            bytes[at] = value;
        }
        let out = fit_anywhere(&bytes, start, length);
        // Whatever survives the corruption, video packets (PID 256) pass through untouched.
        let video = |ts: &[u8]| -> Vec<Vec<u8>> {
            ts.chunks_exact(188).filter(|p| p[1] & 0x1F == 1 && p[2] == 0).map(<[u8]>::to_vec).collect()
        };
        prop_assert_eq!(video(&out), video(&bytes));
    }

    #[test]
    fn a_shift_is_undone_by_its_opposite(original in packets(), offset in 0..WRAP) {
        let mut bytes = original.clone();
        shift_timestamps(&mut bytes, offset);
        if let (Some(before), Some(after)) = (first_pts(&original), first_pts(&bytes)) {
            prop_assert_eq!(after, (before + offset) % WRAP);
        }
        shift_timestamps(&mut bytes, offset_between(offset, 0));
        prop_assert_eq!(bytes, original);
    }
}
