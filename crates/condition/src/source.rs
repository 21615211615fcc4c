//! Choosing the file to transcode among a VAST ad's media files.
//!
//! VAST 4.0 added `Mezzanine` (IAB VAST 4.2 §3.9.2): the raw, high-quality file meant for exactly this,
//! server-side transcoding, so a mezzanine is taken first. Without one, the best progressive `MediaFile` in a
//! container ffmpeg reads (MP4, MOV, WebM, Matroska, MPEG-TS, …) is used: the most pixels, then the highest
//! bitrate, then the largest file. Streaming files (HLS, DASH) are already segmented for some other ladder, and
//! interactive files (VPAID, SIMID) are not video, so neither is a source.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One file of a creative that might be transcoded.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SourceCandidate {
    /// Where it is.
    pub uri: String,
    /// `type` (may be empty for a mezzanine).
    pub mime_type: String,
    /// `delivery="progressive"` (a mezzanine counts as progressive unless it says otherwise).
    pub progressive: bool,
    /// Width in pixels (0: unknown).
    pub width: u64,
    /// Height in pixels (0: unknown).
    pub height: u64,
    /// `bitrate` or `maxBitrate`, kbit/s.
    pub bitrate_kbps: Option<u64>,
    /// `fileSize` in bytes.
    pub file_size: Option<u64>,
    /// From `Mezzanine` rather than `MediaFile`.
    pub mezzanine: bool,
    /// `apiFramework`, when set (an interactive unit).
    pub api_framework: Option<String>,
}

impl SourceCandidate {
    /// The candidate a VAST `MediaFile` describes.
    pub fn from_media_file(f: &interlude_vast::MediaFile) -> SourceCandidate {
        SourceCandidate {
            uri: f.url.trim().to_owned(),
            mime_type: f.mime_type.trim().to_ascii_lowercase(),
            progressive: f.delivery == interlude_vast::Delivery::Progressive,
            width: f.width,
            height: f.height,
            bitrate_kbps: f.max_bitrate.or(f.bitrate),
            file_size: f.file_size,
            mezzanine: false,
            api_framework: f.api_framework.clone(),
        }
    }

    /// The candidate a VAST `Mezzanine` describes.
    pub fn from_mezzanine(m: &interlude_vast::Mezzanine) -> SourceCandidate {
        SourceCandidate {
            uri: m.url.trim().to_owned(),
            mime_type: m.mime_type.trim().to_ascii_lowercase(),
            progressive: m.delivery == interlude_vast::Delivery::Progressive,
            width: m.width,
            height: m.height,
            bitrate_kbps: None,
            file_size: m.file_size,
            mezzanine: true,
            api_framework: None,
        }
    }

    /// Why this file cannot be a source, if it cannot.
    pub fn refusal(&self) -> Option<String> {
        if self.uri.is_empty() {
            return Some("no URI".into());
        }
        if let Some(f) = &self.api_framework {
            return Some(format!("interactive ({f})"));
        }
        if !self.progressive {
            return Some("streaming delivery".into());
        }
        // A mezzanine's type is optional in VAST 4; ffmpeg probes the file anyway.
        if self.mezzanine && self.mime_type.is_empty() {
            return None;
        }
        if !TRANSCODABLE.contains(&self.mime_type.as_str()) {
            return Some(format!("type {:?} is not a video file", self.mime_type));
        }
        None
    }

    fn quality(&self) -> (bool, u64, u64, u64) {
        (
            self.mezzanine,
            self.width.saturating_mul(self.height),
            self.bitrate_kbps.unwrap_or(0),
            self.file_size.unwrap_or(0),
        )
    }
}

/// Progressive video types ffmpeg demuxes.
const TRANSCODABLE: [&str; 10] = [
    "video/mp4",
    "video/quicktime",
    "video/webm",
    "video/x-matroska",
    "video/mp2t",
    "video/mpeg",
    "video/ogg",
    "video/x-m4v",
    "video/3gpp",
    "video/x-msvideo",
];

/// Every file of a creative's `Linear`: mezzanines first, then media files, in document order.
pub fn candidates(creative: &interlude_vast::Creative) -> Vec<SourceCandidate> {
    let Some(linear) = &creative.linear else {
        return Vec::new();
    };
    let files = &linear.media_files;
    files
        .mezzanines
        .iter()
        .map(SourceCandidate::from_mezzanine)
        .chain(
            files
                .media_files
                .iter()
                .map(SourceCandidate::from_media_file),
        )
        .collect()
}

/// The file to transcode: a mezzanine if there is one, else the highest-quality progressive file; ties go to
/// the earlier file. [`Error::NoSource`] lists why each file was refused.
pub fn choose(candidates: &[SourceCandidate]) -> Result<&SourceCandidate> {
    let mut best: Option<&SourceCandidate> = None;
    let mut reasons = Vec::new();
    for c in candidates {
        if let Some(why) = c.refusal() {
            reasons.push(format!("{}: {why}", c.uri));
            continue;
        }
        if best.is_none_or(|b| c.quality() > b.quality()) {
            best = Some(c);
        }
    }
    best.ok_or_else(|| Error::NoSource {
        candidates: candidates.len(),
        reasons: if reasons.is_empty() {
            "none offered".into()
        } else {
            reasons.join("; ")
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn file(uri: &str, mime: &str, w: u64, h: u64, kbps: u64) -> SourceCandidate {
        SourceCandidate {
            uri: uri.into(),
            mime_type: mime.into(),
            progressive: true,
            width: w,
            height: h,
            bitrate_kbps: Some(kbps),
            ..SourceCandidate::default()
        }
    }

    #[test]
    fn mezzanine_wins_over_a_larger_media_file() {
        let mezz = SourceCandidate {
            mezzanine: true,
            ..file("mezz.mov", "", 1280, 720, 0)
        };
        let files = [file("big.mp4", "video/mp4", 1920, 1080, 8000), mezz];
        assert_eq!(
            choose(&files).map(|c| c.uri.as_str()).ok(),
            Some("mezz.mov")
        );
    }

    #[test]
    fn highest_quality_progressive_is_taken() {
        let files = [
            file("low.mp4", "video/mp4", 640, 360, 800),
            file("hls.m3u8", "application/x-mpegurl", 1920, 1080, 6000),
            file("hi.webm", "video/webm", 1280, 720, 2000),
            file("hi-more.mp4", "video/mp4", 1280, 720, 2500),
        ];
        assert_eq!(
            choose(&files).map(|c| c.uri.as_str()).ok(),
            Some("hi-more.mp4")
        );
    }

    #[test]
    fn vpaid_and_streaming_only_creative_has_no_source() {
        let vpaid = SourceCandidate {
            api_framework: Some("VPAID".into()),
            ..file("unit.js", "application/javascript", 640, 360, 0)
        };
        let hls = SourceCandidate {
            progressive: false,
            ..file("ad.m3u8", "application/x-mpegurl", 1280, 720, 3000)
        };
        let err = choose(&[vpaid, hls])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("interactive (VPAID)") && err.contains("streaming"),
            "{err}"
        );
    }

    #[test]
    fn reads_mezzanine_and_media_files_from_vast() {
        let xml = r#"<VAST version="4.1"><Ad id="1"><InLine><AdSystem>x</AdSystem><AdTitle>t</AdTitle>
          <Impression>https://t.example/i</Impression><Creatives><Creative id="c1">
          <UniversalAdId idRegistry="ad-id.org">ABCD0001000H</UniversalAdId>
          <Linear><Duration>00:00:15</Duration><MediaFiles>
          <MediaFile delivery="progressive" type="video/mp4" width="640" height="360" bitrate="900">https://cdn.example/a.mp4</MediaFile>
          <Mezzanine delivery="progressive" type="video/quicktime" width="1920" height="1080">https://cdn.example/m.mov</Mezzanine>
          </MediaFiles></Linear></Creative></Creatives></InLine></Ad></VAST>"#;
        let vast = interlude_vast::parse_vast(xml).expect("valid VAST 4.1");
        let creative = vast
            .ads
            .iter()
            .find_map(|a| match &a.body {
                interlude_vast::AdBody::InLine(i) => i.creatives.first().cloned(),
                _ => None,
            })
            .expect("one creative");
        let found = candidates(&creative);
        assert_eq!(found.len(), 2);
        assert_eq!(
            choose(&found).map(|c| c.uri.as_str()).ok(),
            Some("https://cdn.example/m.mov")
        );
    }

    proptest! {
        #[test]
        fn choice_is_never_refused_and_never_beaten(
            files in proptest::collection::vec(
                (any::<bool>(), 0u64..4000, 0u64..3000, proptest::option::of(0u64..20_000),
                 proptest::sample::select(vec!["video/mp4", "video/webm", "application/x-mpegurl", ""]), any::<bool>()),
                0..8)
        ) {
            let cands: Vec<SourceCandidate> = files.iter().enumerate().map(|(i, (mezz, w, h, kbps, mime, prog))| SourceCandidate {
                uri: format!("f{i}"), mime_type: (*mime).into(), progressive: *prog, width: *w, height: *h,
                bitrate_kbps: *kbps, mezzanine: *mezz, ..SourceCandidate::default()
            }).collect();
            match choose(&cands) {
                Ok(c) => {
                    prop_assert!(c.refusal().is_none());
                    for o in cands.iter().filter(|o| o.refusal().is_none()) {
                        prop_assert!(o.quality() <= c.quality());
                    }
                }
                Err(_) => prop_assert!(cands.iter().all(|c| c.refusal().is_some())),
            }
        }
    }
}
