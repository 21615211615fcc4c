//! The codecs a rendition is encoded to, read from the RFC 6381 strings of an HLS `CODECS` attribute
//! (RFC 8216bis §4.4.6.2), and the ffmpeg encoder arguments for each.
//!
//! H.264's `avc1.PPCCLL` carries `profile_idc`, the constraint flags and `level_idc` (ISO/IEC 14496-15
//! §5.4.1.3; values per ITU-T H.264 Annex A): the ad is encoded at the content's profile and level, because the
//! player configured its decoder for those. Only what ffmpeg's Debian build encodes is supported: H.264
//! (libx264), H.265 (libx265), AAC-LC (`aac`), AC-3 and E-AC-3; HE-AAC (`mp4a.40.5`/`.29`) needs libfdk-aac and
//! is refused, as are VP9 and AV1 (not spliceable into TS).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A video codec to encode to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum VideoCodec {
    /// H.264 at a profile and level.
    Avc {
        /// `profile_idc` (66 Baseline, 77 Main, 100 High, …).
        profile_idc: u8,
        /// The constraint-flags byte.
        constraints: u8,
        /// `level_idc` (30 is level 3.0, 31 is 3.1, …).
        level_idc: u8,
    },
    /// H.265 Main profile (the RFC 6381 string kept as written, for the outputs' `CODECS`).
    Hevc {
        /// The string from the playlist (`hvc1.1.6.L93.B0`).
        codecs: String,
    },
}

/// An audio codec to encode to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AudioCodec {
    /// AAC Low Complexity (`mp4a.40.2`).
    AacLc,
    /// AC-3 (`ac-3`).
    Ac3,
    /// E-AC-3 (`ec-3`).
    Ec3,
}

/// One entry of a `CODECS` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Codec {
    /// A video codec.
    Video(VideoCodec),
    /// An audio codec.
    Audio(AudioCodec),
}

/// Reads one RFC 6381 codec string; [`Error::UnsupportedCodec`] for one that cannot be encoded.
pub fn parse_codec(text: &str) -> Result<Codec> {
    let s = text.trim();
    let lower = s.to_ascii_lowercase();
    let unsupported = || Error::UnsupportedCodec {
        codec: s.to_owned(),
    };
    let mut parts = lower.split('.');
    match parts.next().unwrap_or("") {
        "avc1" | "avc3" => {
            let hex = parts.next().ok_or_else(unsupported)?;
            let byte = |i: usize| {
                hex.get(i..i + 2)
                    .and_then(|b| u8::from_str_radix(b, 16).ok())
                    .ok_or_else(unsupported)
            };
            if hex.len() != 6 {
                return Err(unsupported());
            }
            let (profile_idc, constraints, level_idc) = (byte(0)?, byte(2)?, byte(4)?);
            x264_profile(profile_idc).ok_or_else(unsupported)?;
            Ok(Codec::Video(VideoCodec::Avc {
                profile_idc,
                constraints,
                level_idc,
            }))
        }
        "hvc1" | "hev1" => Ok(Codec::Video(VideoCodec::Hevc {
            codecs: s.to_owned(),
        })),
        "mp4a" => match (parts.next(), parts.next()) {
            (Some("40"), Some("2")) | (Some("40"), None) => Ok(Codec::Audio(AudioCodec::AacLc)),
            _ => Err(unsupported()),
        },
        "ac-3" => Ok(Codec::Audio(AudioCodec::Ac3)),
        "ec-3" => Ok(Codec::Audio(AudioCodec::Ec3)),
        _ => Err(unsupported()),
    }
}

/// x264's name for an H.264 `profile_idc`, if x264 can encode it.
fn x264_profile(profile_idc: u8) -> Option<&'static str> {
    match profile_idc {
        66 => Some("baseline"),
        77 => Some("main"),
        100 => Some("high"),
        110 => Some("high10"),
        122 => Some("high422"),
        244 => Some("high444"),
        _ => None,
    }
}

impl VideoCodec {
    /// The RFC 6381 string for the outputs' `CODECS`.
    pub fn rfc6381(&self) -> String {
        match self {
            VideoCodec::Avc {
                profile_idc,
                constraints,
                level_idc,
            } => format!("avc1.{profile_idc:02x}{constraints:02x}{level_idc:02x}"),
            VideoCodec::Hevc { codecs } => codecs.clone(),
        }
    }

    /// ffmpeg output arguments selecting the encoder, profile and level. Keyframe placement is the recipe's.
    pub fn encoder_args(&self) -> Vec<String> {
        match self {
            VideoCodec::Avc {
                profile_idc,
                level_idc,
                ..
            } => {
                let profile = x264_profile(*profile_idc).unwrap_or("high");
                let pix_fmt = match profile {
                    "high10" => "yuv420p10le",
                    "high422" => "yuv422p",
                    "high444" => "yuv444p",
                    _ => "yuv420p",
                };
                vec![
                    "-c:v".into(),
                    "libx264".into(),
                    "-profile:v".into(),
                    profile.into(),
                    "-level:v".into(),
                    format!("{}.{}", level_idc / 10, level_idc % 10),
                    "-pix_fmt".into(),
                    pix_fmt.into(),
                ]
            }
            // hvc1: parameter sets in the sample entry, which Apple's players require for fMP4.
            VideoCodec::Hevc { .. } => vec![
                "-c:v".into(),
                "libx265".into(),
                "-profile:v".into(),
                "main".into(),
                "-tag:v".into(),
                "hvc1".into(),
                "-pix_fmt".into(),
                "yuv420p".into(),
            ],
        }
    }
}

impl AudioCodec {
    /// The RFC 6381 string.
    pub fn rfc6381(self) -> &'static str {
        match self {
            AudioCodec::AacLc => "mp4a.40.2",
            AudioCodec::Ac3 => "ac-3",
            AudioCodec::Ec3 => "ec-3",
        }
    }

    /// The ffmpeg encoder.
    pub fn encoder(self) -> &'static str {
        match self {
            AudioCodec::AacLc => "aac",
            AudioCodec::Ac3 => "ac3",
            AudioCodec::Ec3 => "eac3",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avc_string_gives_profile_and_level() {
        assert_eq!(
            parse_codec("avc1.4d401e").ok(),
            Some(Codec::Video(VideoCodec::Avc {
                profile_idc: 77,
                constraints: 0x40,
                level_idc: 30
            }))
        );
        let Ok(Codec::Video(v)) = parse_codec("avc1.64001F") else {
            panic!("high profile parses")
        };
        assert_eq!(v.rfc6381(), "avc1.64001f");
        assert!(
            v.encoder_args()
                .join(" ")
                .contains("-profile:v high -level:v 3.1")
        );
    }

    #[test]
    fn he_aac_and_vp9_are_refused() {
        for c in [
            "mp4a.40.5",
            "mp4a.40.29",
            "vp09.00.10.08",
            "av01.0.04M.08",
            "avc1.58",
            "avc1",
        ] {
            assert!(parse_codec(c).is_err(), "{c}");
        }
    }

    #[test]
    fn audio_codecs_read() {
        assert_eq!(
            parse_codec("mp4a.40.2").ok(),
            Some(Codec::Audio(AudioCodec::AacLc))
        );
        assert_eq!(
            parse_codec(" ec-3 ").ok(),
            Some(Codec::Audio(AudioCodec::Ec3))
        );
    }

    proptest::proptest! {
        #[test]
        fn parsing_any_text_never_panics(s in "\\PC{0,24}") {
            let _ = parse_codec(&s);
        }

        #[test]
        fn avc_round_trips(p in proptest::sample::select(vec![66u8, 77, 100]), c: u8, l in 9u8..62) {
            let text = format!("avc1.{p:02x}{c:02x}{l:02x}");
            let Ok(Codec::Video(v)) = parse_codec(&text) else { panic!("{text} parses") };
            proptest::prop_assert_eq!(v.rfc6381(), text);
        }
    }
}
