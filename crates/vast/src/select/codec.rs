//! Codec strings, RFC 6381 (`avc1.64001f`, `hvc1.1.6.L93.B0`, `mp4a.40.2`) or the free text older VAST
//! puts in `MediaFile@codec` (`H.264`), reduced to codec families; for H.264 also the profile and level of
//! ISO/IEC 14496-15's `avc1.PPCCLL`.

use super::{Mismatch, Unverified};

/// Video codec families.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VideoCodec {
    /// H.264 with (profile_idc, level_idc) when the string gives them.
    Avc(Option<(u8, u8)>),
    /// H.265.
    Hevc,
    /// AV1.
    Av1,
    /// VP9.
    Vp9,
    /// VP8.
    Vp8,
}

/// Audio codec families.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AudioCodec {
    /// AAC (any `mp4a.40.*`).
    Aac,
    /// AC-3.
    Ac3,
    /// E-AC-3.
    Ec3,
    /// Opus.
    Opus,
    /// MP3.
    Mp3,
    /// FLAC.
    Flac,
}

enum Codec {
    Video(VideoCodec),
    Audio(AudioCodec),
}

fn classify(codec: &str) -> Option<Codec> {
    let lower = codec.trim().to_ascii_lowercase();
    let head = lower.split('.').next().unwrap_or("");
    let video = |c| Some(Codec::Video(c));
    let audio = |c| Some(Codec::Audio(c));
    match lower.as_str() {
        "h.264" | "h264" | "avc" | "x264" => return video(VideoCodec::Avc(None)),
        "h.265" | "h265" | "hevc" | "x265" => return video(VideoCodec::Hevc),
        "aac" => return audio(AudioCodec::Aac),
        "mp3" | "mp4a.69" | "mp4a.6b" => return audio(AudioCodec::Mp3),
        _ => {}
    }
    match head {
        "avc1" | "avc3" => video(VideoCodec::Avc(avc_profile_level(&lower))),
        "hvc1" | "hev1" => video(VideoCodec::Hevc),
        "av01" | "av1" => video(VideoCodec::Av1),
        "vp09" | "vp9" => video(VideoCodec::Vp9),
        "vp08" | "vp8" => video(VideoCodec::Vp8),
        "mp4a" => audio(AudioCodec::Aac),
        "ac-3" | "ac3" => audio(AudioCodec::Ac3),
        "ec-3" | "eac3" => audio(AudioCodec::Ec3),
        "opus" => audio(AudioCodec::Opus),
        "flac" => audio(AudioCodec::Flac),
        _ => None,
    }
}

/// `avc1.PPCCLL` → (profile_idc, level_idc).
fn avc_profile_level(codec: &str) -> Option<(u8, u8)> {
    let hex = codec.split('.').nth(1)?;
    if hex.len() != 6 {
        return None;
    }
    let profile = u8::from_str_radix(hex.get(0..2)?, 16).ok()?;
    let level = u8::from_str_radix(hex.get(4..6)?, 16).ok()?;
    Some((profile, level))
}

/// Baseline < Main < High: a decoder set up for a profile plays the ones below it.
fn profile_rank(profile_idc: u8) -> Option<u8> {
    match profile_idc {
        66 => Some(1),
        77 => Some(2),
        100 => Some(3),
        _ => None,
    }
}

fn avc_fits(ad: Option<(u8, u8)>, content: Option<(u8, u8)>) -> bool {
    let (Some((ap, al)), Some((cp, cl))) = (ad, content) else {
        return true;
    };
    let profile_ok = match (profile_rank(ap), profile_rank(cp)) {
        (Some(a), Some(c)) => a <= c,
        _ => ap == cp,
    };
    profile_ok && al <= cl
}

fn video_family_matches(ad: VideoCodec, content: VideoCodec) -> bool {
    match (ad, content) {
        (VideoCodec::Avc(a), VideoCodec::Avc(c)) => avc_fits(a, c),
        (a, c) => std::mem::discriminant(&a) == std::mem::discriminant(&c),
    }
}

/// Compares the ad's codecs with the content's: a mismatch when both name a video (or an audio) codec and
/// they differ; unverified when the ad names no video codec the content could be compared with.
pub(super) fn check(
    ad: &[String],
    content: &[String],
    mismatches: &mut Vec<Mismatch>,
    unverified: &mut Vec<Unverified>,
) {
    let split = |codecs: &[String]| {
        let (mut video, mut audio) = (None, None);
        for c in codecs {
            match classify(c) {
                Some(Codec::Video(v)) if video.is_none() => video = Some((v, c.clone())),
                Some(Codec::Audio(a)) if audio.is_none() => audio = Some((a, c.clone())),
                _ => {}
            }
        }
        (video, audio)
    };
    let (ad_video, ad_audio) = split(ad);
    let (content_video, content_audio) = split(content);
    match (&ad_video, &content_video) {
        (Some((a, a_text)), Some((c, c_text))) => {
            if !video_family_matches(*a, *c) {
                mismatches.push(Mismatch::Codec {
                    ad: a_text.clone(),
                    content: c_text.clone(),
                });
            }
        }
        (None, Some(_)) | (None, None) | (Some(_), None) => unverified.push(Unverified::Codec),
    }
    if let (Some((a, a_text)), Some((c, c_text))) = (&ad_audio, &content_audio) {
        if a != c {
            mismatches.push(Mismatch::Codec {
                ad: a_text.clone(),
                content: c_text.clone(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(ad: &[&str], content: &[&str]) -> (Vec<Mismatch>, Vec<Unverified>) {
        let (mut m, mut u) = (Vec::new(), Vec::new());
        let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        check(&owned(ad), &owned(content), &mut m, &mut u);
        (m, u)
    }

    #[test]
    fn free_text_and_rfc_6381_names_of_h264_are_one_family() {
        assert_eq!(
            run(&["H.264"], &["avc1.64001f", "mp4a.40.2"]),
            (vec![], vec![])
        );
    }

    #[test]
    fn a_higher_profile_or_level_than_the_content_does_not_fit() {
        assert!(
            run(&["avc1.4d401e"], &["avc1.64001f"]).0.is_empty(),
            "Main 3.0 into High 3.1"
        );
        assert_eq!(
            run(&["avc1.640028"], &["avc1.64001f"]).0.len(),
            1,
            "level 4.0 into 3.1"
        );
        assert_eq!(
            run(&["avc1.64001f"], &["avc1.4d401f"]).0.len(),
            1,
            "High into Main"
        );
    }

    #[test]
    fn other_families_do_not_fit() {
        assert_eq!(run(&["hvc1.1.6.L93.B0"], &["avc1.64001f"]).0.len(), 1);
        assert_eq!(
            run(&["avc1.64001f", "ac-3"], &["avc1.64001f", "mp4a.40.2"])
                .0
                .len(),
            1
        );
    }

    #[test]
    fn no_codec_is_unverified_not_a_mismatch() {
        assert_eq!(
            run(&[], &["avc1.64001f"]),
            (vec![], vec![Unverified::Codec])
        );
        assert_eq!(
            run(&["FLAC"], &["avc1.64001f"]),
            (vec![], vec![Unverified::Codec])
        );
    }
}
