//! Fitting a picture into a rendition's frame without distorting it: scale until it touches two edges, and
//! fill the rest with black bars (letterbox above and below, pillarbox left and right). The source's display
//! aspect ratio is its storage size times its sample aspect ratio (ISO/IEC 14496-10 Annex E `sar`), so an
//! anamorphic source is shown as its producer meant it.

/// Where the scaled picture sits in the output frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fit {
    /// Scaled picture width (even).
    pub width: u32,
    /// Scaled picture height (even).
    pub height: u32,
    /// Left bar width (even).
    pub x: u32,
    /// Top bar height (even).
    pub y: u32,
}

/// Fits a `src_w`×`src_h` picture with sample aspect ratio `sar` (num, den; 0 or missing means 1:1) into a
/// `dst_w`×`dst_h` frame (both even). Sizes and offsets are even because 4:2:0 chroma is subsampled by two.
pub fn fit(src_w: u32, src_h: u32, sar: (u32, u32), dst_w: u32, dst_h: u32) -> Fit {
    let (sn, sd) = if sar.0 == 0 || sar.1 == 0 {
        (1, 1)
    } else {
        sar
    };
    let dst_w = dst_w.max(2) & !1;
    let dst_h = dst_h.max(2) & !1;
    if src_w == 0 || src_h == 0 {
        return Fit {
            width: dst_w,
            height: dst_h,
            x: 0,
            y: 0,
        };
    }
    // Display aspect as a ratio of integers: (src_w * sn) : (src_h * sd), compared exactly with dst_w : dst_h.
    let display_w = u128::from(src_w) * u128::from(sn);
    let display_h = u128::from(src_h) * u128::from(sd);
    let even = |v: u128, max: u32| -> u32 {
        // Round to the nearest even number, within 2..=max.
        let v = u32::try_from(v.div_ceil(2) * 2).unwrap_or(max);
        v.clamp(2, max)
    };
    let (width, height) = if display_w * u128::from(dst_h) >= u128::from(dst_w) * display_h {
        // Wider than the frame: full width, bars above and below.
        let h = (u128::from(dst_w) * display_h * 2 + display_w) / (display_w * 2);
        (dst_w, even(h, dst_h))
    } else {
        let w = (u128::from(dst_h) * display_w * 2 + display_h) / (display_h * 2);
        (even(w, dst_w), dst_h)
    };
    Fit {
        width,
        height,
        x: (dst_w - width) / 4 * 2,
        y: (dst_h - height) / 4 * 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn same_aspect_fills_the_frame() {
        assert_eq!(
            fit(1280, 720, (1, 1), 640, 360),
            Fit {
                width: 640,
                height: 360,
                x: 0,
                y: 0
            }
        );
    }

    #[test]
    fn four_by_three_is_pillarboxed_in_sixteen_by_nine() {
        assert_eq!(
            fit(640, 480, (1, 1), 1280, 720),
            Fit {
                width: 960,
                height: 720,
                x: 160,
                y: 0
            }
        );
    }

    #[test]
    fn cinemascope_is_letterboxed() {
        let f = fit(1920, 800, (1, 1), 960, 540);
        assert_eq!((f.width, f.height, f.x, f.y), (960, 400, 0, 70));
    }

    #[test]
    fn anamorphic_dvd_is_shown_at_its_display_aspect() {
        // 720x576 with SAR 64:45 displays at 16:9.
        let f = fit(720, 576, (64, 45), 1024, 576);
        assert_eq!((f.width, f.height), (1024, 576));
    }

    proptest! {
        #[test]
        fn never_stretches_and_always_fits(sw in 16u32..8192, sh in 16u32..8192, sn in 1u32..100, sd in 1u32..100,
                                           dw in 8u32..4096, dh in 8u32..4096) {
            let (dw, dh) = (dw & !1, dh & !1);
            let f = fit(sw, sh, (sn, sd), dw, dh);
            prop_assert!(f.width % 2 == 0 && f.height % 2 == 0 && f.x % 2 == 0 && f.y % 2 == 0);
            prop_assert!(f.x + f.width <= dw && f.y + f.height <= dh);
            // Touches two edges.
            prop_assert!(f.width == dw || f.height == dh);
            // Aspect kept within the rounding of one even step on the shorter scaled side, unless clamped at 2px.
            if f.width > 2 && f.height > 2 {
                let src = f64::from(sw) * f64::from(sn) / (f64::from(sh) * f64::from(sd));
                let out = f64::from(f.width) / f64::from(f.height);
                let slack = 2.0 / f64::from(f.width.min(f.height)) + 1e-9;
                prop_assert!((out / src - 1.0).abs() <= slack * 1.01 + slack * slack, "src {src} out {out}");
            }
            // Centred: the bars on each side differ by at most two pixels.
            prop_assert!((dw - f.width - 2 * f.x) <= 2 && (dh - f.height - 2 * f.y) <= 2);
        }
    }
}
