//! Continuity counters set on a real segment (`assets/ads/ad15/r0/000.ts`: video PID 256, audio PID 257):
//! they must run from the wanted first to the wanted last value, with the elementary stream bytes unchanged.

use interlude_mpegts::{Counters, first_counters, last_counters, set_counters};

const AD: &[u8] = include_bytes!("../../../assets/ads/ad15/r0/000.ts");

fn pid(p: &[u8]) -> u16 {
    u16::from(p[1] & 0x1F) << 8 | u16::from(p[2])
}

/// The payload bytes of `wanted`'s packets, in order, and their continuity counters.
fn stream(ts: &[u8], wanted: u16) -> (Vec<u8>, Vec<u8>) {
    let mut bytes = Vec::new();
    let mut ccs = Vec::new();
    for p in ts.chunks_exact(188).filter(|p| pid(p) == wanted) {
        let start = if p[3] & 0x20 != 0 {
            5 + usize::from(p[4])
        } else {
            4
        };
        if p[3] & 0x10 != 0 {
            bytes.extend_from_slice(&p[start..]);
            ccs.push(p[3] & 0x0F);
        }
    }
    (bytes, ccs)
}

#[test]
fn counters_run_from_first_to_last_with_the_stream_unchanged() {
    let video_first = first_counters(AD);
    assert_eq!(
        video_first.iter().map(|c| c.0).collect::<Vec<_>>(),
        [256, 257]
    );
    for (first, last) in [(0u8, 15u8), (7, 6), (3, 3), (9, 2)] {
        let wanted = [
            Counters {
                pid: 256,
                first,
                last,
            },
            Counters {
                pid: 257,
                first: last,
                last: first,
            },
        ];
        let out = set_counters(AD, &wanted);
        assert_eq!(out.len() % 188, 0);
        for c in wanted {
            let (bytes, ccs) = stream(&out, c.pid);
            assert_eq!(
                bytes,
                stream(AD, c.pid).0,
                "PES bytes of PID {} changed",
                c.pid
            );
            assert_eq!(ccs.first(), Some(&c.first));
            assert_eq!(ccs.last(), Some(&c.last));
            for pair in ccs.windows(2) {
                assert_eq!(pair[1], (pair[0] + 1) & 0x0F);
            }
        }
        assert_eq!(first_counters(&out), vec![(256, first), (257, last)]);
        assert_eq!(last_counters(&out), vec![(256, last), (257, first)]);
        let tables = |ts: &[u8]| -> Vec<Vec<u8>> {
            ts.chunks_exact(188)
                .filter(|p| pid(p) > 257 || pid(p) < 256)
                .map(<[u8]>::to_vec)
                .collect()
        };
        assert_eq!(tables(&out), tables(AD), "other PIDs untouched");
    }
}

#[test]
fn counters_already_in_place_change_nothing() {
    let wanted: Vec<Counters> = first_counters(AD)
        .into_iter()
        .zip(last_counters(AD))
        .map(|((pid, first), (_, last))| Counters { pid, first, last })
        .collect();
    assert!(set_counters(AD, &wanted) == AD);
}
