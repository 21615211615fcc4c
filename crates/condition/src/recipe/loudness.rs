//! Loudness normalisation: the targets of EBU R128 (−23 LUFS integrated, −1 dBTP) and ATSC A/85 (−24 LKFS,
//! −2 dBTP), both measured per ITU-R BS.1770, and ffmpeg's two-pass `loudnorm`.
//!
//! Pass 1 measures the source (`print_format=json`); pass 2 gives those measurements back with
//! `linear=true`, so loudnorm applies one constant gain — the ad keeps its own dynamics instead of being
//! compressed by the single-pass mode's dynamic normaliser. Linear mode needs the target loudness range to be
//! at least the source's, so the target LRA is raised to the measured one (ffmpeg 5 caps it at 20 LU; beyond
//! that, or when the gain would push true peaks over the ceiling, loudnorm falls back to dynamic mode, which
//! still meets the integrated target).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A loudness target.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LoudnessTarget {
    /// Integrated loudness, LUFS.
    pub integrated: f64,
    /// True-peak ceiling, dBTP.
    pub true_peak: f64,
    /// Loudness range target, LU (raised to the source's, see the module docs).
    pub lra: f64,
}

/// The standards an operator picks from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum LoudnessStandard {
    /// EBU R128: −23 LUFS, −1 dBTP.
    #[default]
    EbuR128,
    /// ATSC A/85 (US CALM Act): −24 LKFS, −2 dBTP.
    AtscA85,
}

impl LoudnessStandard {
    /// The standard's target.
    pub fn target(self) -> LoudnessTarget {
        match self {
            LoudnessStandard::EbuR128 => LoudnessTarget {
                integrated: -23.0,
                true_peak: -1.0,
                lra: 7.0,
            },
            LoudnessStandard::AtscA85 => LoudnessTarget {
                integrated: -24.0,
                true_peak: -2.0,
                lra: 7.0,
            },
        }
    }
}

/// What pass 1 measured.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LoudnormMeasurement {
    /// `input_i`, LUFS (−∞ for digital silence, kept as −99).
    pub input_i: f64,
    /// `input_tp`, dBTP.
    pub input_tp: f64,
    /// `input_lra`, LU.
    pub input_lra: f64,
    /// `input_thresh`, LUFS.
    pub input_thresh: f64,
    /// `target_offset`, LU.
    pub target_offset: f64,
}

impl LoudnormMeasurement {
    /// Below BS.1770's absolute gate (−70 LUFS): nothing to normalise.
    pub fn is_silent(&self) -> bool {
        self.input_i <= -70.0
    }
}

/// Reads the JSON block loudnorm prints at the end of pass 1 (the last `{ … }` in the error output that has
/// `input_i`).
pub fn parse_measurement(stderr: &str) -> Result<LoudnormMeasurement> {
    let err = |reason: &str| Error::ToolOutput {
        tool: "loudnorm",
        reason: reason.to_owned(),
    };
    let start = stderr
        .rmatch_indices('{')
        .map(|(i, _)| i)
        .find(|&i| stderr.get(i..).is_some_and(|s| s.contains("\"input_i\"")))
        .ok_or_else(|| err("no measurement block"))?;
    let block = stderr
        .get(start..)
        .ok_or_else(|| err("no measurement block"))?;
    let end = block.find('}').ok_or_else(|| err("unterminated block"))?;
    let value: serde_json::Value =
        serde_json::from_str(block.get(..=end).ok_or_else(|| err("unterminated block"))?)
            .map_err(|e| err(&e.to_string()))?;
    let field = |name: &str| -> Result<f64> {
        let text = value
            .get(name)
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| err(&format!("no {name}")))?;
        match text.trim() {
            "-inf" => Ok(-99.0),
            "inf" | "+inf" => Ok(99.0),
            t => t
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| err(&format!("{name} is {t:?}"))),
        }
    };
    Ok(LoudnormMeasurement {
        input_i: field("input_i")?,
        input_tp: field("input_tp")?,
        input_lra: field("input_lra")?,
        input_thresh: field("input_thresh")?,
        target_offset: field("target_offset")?,
    })
}

fn target_lra(target: &LoudnessTarget, measured_lra: f64) -> f64 {
    target.lra.max(measured_lra + 0.1).clamp(1.0, 20.0)
}

/// Pass 1's filter.
pub fn measure_filter(target: &LoudnessTarget) -> String {
    format!(
        "loudnorm=I={:.1}:TP={:.1}:LRA={:.1}:print_format=json",
        target.integrated,
        target.true_peak,
        target.lra.clamp(1.0, 20.0)
    )
}

/// Pass 2's filter, or `None` for a silent source (normalising silence would only amplify noise).
pub fn apply_filter(target: &LoudnessTarget, m: &LoudnormMeasurement) -> Option<String> {
    if m.is_silent() {
        return None;
    }
    Some(format!(
        "loudnorm=I={:.1}:TP={:.1}:LRA={:.1}:measured_I={:.2}:measured_TP={:.2}:measured_LRA={:.2}:\
         measured_thresh={:.2}:offset={:.2}:linear=true:print_format=none",
        target.integrated,
        target.true_peak,
        target_lra(target, m.input_lra),
        m.input_i,
        m.input_tp,
        m.input_lra,
        m.input_thresh,
        m.target_offset
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pass 1 output of ffmpeg 5.1 (Debian 12) on a 1 kHz stereo tone at about −14 LUFS.
    const PASS1: &str = "size=N/A time=00:00:12.01 bitrate=N/A speed=9.79x\n\
        video:0kB audio:9008kB subtitle:0kB other streams:0kB global headers:0kB muxing overhead: unknown\n\
        [Parsed_loudnorm_2 @ 0x564100507f80] \n{\n\t\"input_i\" : \"-14.09\",\n\t\"input_tp\" : \"-13.87\",\n\
        \t\"input_lra\" : \"0.10\",\n\t\"input_thresh\" : \"-24.09\",\n\t\"output_i\" : \"-22.98\",\n\
        \t\"output_tp\" : \"-22.75\",\n\t\"output_lra\" : \"0.10\",\n\t\"output_thresh\" : \"-32.98\",\n\
        \t\"normalization_type\" : \"dynamic\",\n\t\"target_offset\" : \"-0.02\"\n}\n";

    #[test]
    fn pass_one_json_is_read() {
        let m = parse_measurement(PASS1).expect("ffmpeg's block parses");
        assert_eq!(m.input_i, -14.09);
        assert_eq!(m.target_offset, -0.02);
        let f = apply_filter(&LoudnessStandard::EbuR128.target(), &m).expect("not silent");
        assert_eq!(
            f,
            "loudnorm=I=-23.0:TP=-1.0:LRA=7.0:measured_I=-14.09:measured_TP=-13.87:measured_LRA=0.10:\
             measured_thresh=-24.09:offset=-0.02:linear=true:print_format=none"
        );
    }

    #[test]
    fn silence_is_not_normalised() {
        let text = PASS1
            .replace("\"-14.09\"", "\"-inf\"")
            .replace("\"-13.87\"", "\"-inf\"");
        let m = parse_measurement(&text).expect("-inf is read");
        assert!(m.is_silent());
        assert_eq!(apply_filter(&LoudnessStandard::AtscA85.target(), &m), None);
    }

    #[test]
    fn wide_range_source_raises_the_target_range() {
        let m = LoudnormMeasurement {
            input_i: -20.0,
            input_tp: -5.0,
            input_lra: 12.3,
            input_thresh: -30.0,
            target_offset: 0.0,
        };
        let f = apply_filter(&LoudnessStandard::EbuR128.target(), &m).unwrap_or_default();
        assert!(f.contains(":LRA=12.4:"), "{f}");
    }

    proptest::proptest! {
        #[test]
        fn any_output_never_panics(s in "\\PC{0,200}") {
            let _ = parse_measurement(&s);
            let _ = parse_measurement(&format!("{s}{{\"input_i\" : \"{s}\"}}"));
        }
    }
}
