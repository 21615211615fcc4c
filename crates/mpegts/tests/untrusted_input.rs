//! Segments come from creative CDNs and origins we do not control: any bytes must be handled without a panic,
//! and a shift must be exactly undone by the opposite shift (only timestamp bits ever change).

use interlude_mpegts::{WRAP, first_pts, offset_between, shift_timestamps, truncate};
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

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(mut bytes in prop::collection::vec(any::<u8>(), 0..2000), offset in any::<u64>()) {
        let _ = first_pts(&bytes);
        let _ = truncate(&bytes, offset);
        shift_timestamps(&mut bytes, offset);
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
