//! Choosing the rendition of an ad to stitch into one content variant, or saying why none fits.
//!
//! Server-side insertion splices the ad's segments into the content's variant streams, so an ad rendition
//! must be "conditioned" for each variant: same video codec family (and no higher H.264 profile or level
//! than the content's, which the player's decoder was configured for), the same picture size and aspect
//! ratio within a tolerance, the same frame rate, and a bitrate the variant's bandwidth can carry. A
//! creative with no such rendition is not inserted: the result lists every rendition with its reasons,
//! and points at the `Mezzanine` (VAST 4.0, the source meant for server-side transcoding) when there is
//! one, so that the creative can be conditioned for next time.
//!
//! VAST's `MediaFile` carries no frame rate and often no codec; what a rendition does not say is reported
//! as unverified, not as a mismatch. An HLS `MediaFile` (preferred: its segments can be spliced directly)
//! is a master playlist: the caller can expand it into its variant streams (which do carry `FRAME-RATE`,
//! `CODECS`, `RESOLUTION`, `BANDWIDTH`) and run [`select`] again on those.

mod codec;

use std::fmt;

use crate::error_code::VastErrorCode;
use crate::model::{Creative, Delivery, MediaFile};
pub use codec::{AudioCodec, VideoCodec};

/// One variant stream of the content (an HLS `EXT-X-STREAM-INF`).
#[derive(Debug, Clone, PartialEq)]
pub struct ContentVariant {
    /// `BANDWIDTH`, bits per second.
    pub bandwidth: u64,
    /// Picture width in pixels (0 for audio only).
    pub width: u64,
    /// Picture height in pixels (0 for audio only).
    pub height: u64,
    /// `CODECS`, RFC 6381 (`avc1.64001f`, `mp4a.40.2`).
    pub codecs: Vec<String>,
    /// `FRAME-RATE`.
    pub frame_rate: Option<f64>,
}

/// One candidate rendition of an ad.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendition {
    /// Where it is.
    pub uri: String,
    /// MIME type.
    pub mime_type: String,
    /// How it is delivered.
    pub delivery: Delivery,
    /// Peak bits per second, if known.
    pub bandwidth: Option<u64>,
    /// Width in pixels (0: unknown).
    pub width: u64,
    /// Height in pixels (0: unknown).
    pub height: u64,
    /// Codecs, RFC 6381 or the free text of older VAST (`H.264`).
    pub codecs: Vec<String>,
    /// Frames per second, if known.
    pub frame_rate: Option<f64>,
    /// `apiFramework` (VPAID and the like cannot be stitched).
    pub api_framework: Option<String>,
}

impl Rendition {
    /// The rendition a `MediaFile` describes: `maxBitrate` (else `bitrate`) in kbit/s as the bandwidth,
    /// `codec` split at commas, no frame rate (VAST has none).
    pub fn from_media_file(file: &MediaFile) -> Rendition {
        Rendition {
            uri: file.url.clone(),
            mime_type: file.mime_type.clone(),
            delivery: file.delivery,
            bandwidth: file
                .max_bitrate
                .or(file.bitrate)
                .map(|k| k.saturating_mul(1000)),
            width: file.width,
            height: file.height,
            codecs: file
                .codec
                .iter()
                .flat_map(|c| c.split(','))
                .map(|c| c.trim().to_string())
                .filter(|c| !c.is_empty())
                .collect(),
            frame_rate: None,
            api_framework: file.api_framework.clone(),
        }
    }

    /// True for an HLS playlist delivered by streaming.
    pub fn is_hls(&self) -> bool {
        self.delivery == Delivery::Streaming && is_hls_type(&self.mime_type)
    }
}

fn is_hls_type(mime: &str) -> bool {
    [
        "application/x-mpegurl",
        "application/vnd.apple.mpegurl",
        "audio/mpegurl",
    ]
    .iter()
    .any(|t| mime.trim().eq_ignore_ascii_case(t))
}

/// How close is close enough.
#[derive(Debug, Clone, PartialEq)]
pub struct StitchPolicy {
    /// Largest relative difference in width or height (0.10: ±10%).
    pub resolution_tolerance: f64,
    /// Largest relative difference in aspect ratio.
    pub aspect_tolerance: f64,
    /// How far above the variant's bandwidth a rendition may peak (0.10: up to 110%).
    pub bandwidth_headroom: f64,
    /// Largest difference in frames per second.
    pub frame_rate_tolerance: f64,
}

impl Default for StitchPolicy {
    fn default() -> StitchPolicy {
        StitchPolicy {
            resolution_tolerance: 0.10,
            aspect_tolerance: 0.02,
            bandwidth_headroom: 0.10,
            frame_rate_tolerance: 0.05,
        }
    }
}

/// Why a rendition cannot be stitched into the variant.
#[derive(Debug, Clone, PartialEq)]
pub enum Mismatch {
    /// Not a container the stitcher can splice (HLS, MPEG-TS or MP4).
    Container {
        /// Its MIME type.
        mime_type: String,
    },
    /// An interactive unit (VPAID and the like) that needs a client-side runtime.
    Interactive {
        /// Its `apiFramework` (or MIME type).
        framework: String,
    },
    /// Another codec family, or a higher H.264 profile or level than the content's.
    Codec {
        /// The ad's.
        ad: String,
        /// The content's.
        content: String,
    },
    /// Another picture size or aspect ratio.
    Resolution {
        /// The ad's (width, height).
        ad: (u64, u64),
        /// The content's.
        content: (u64, u64),
    },
    /// Another frame rate.
    FrameRate {
        /// The ad's.
        ad: f64,
        /// The content's.
        content: f64,
    },
    /// More bits per second than the variant carries.
    Bandwidth {
        /// The ad's peak.
        ad: u64,
        /// The variant's.
        content: u64,
    },
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mismatch::Container { mime_type } => {
                write!(f, "container {mime_type:?} cannot be stitched")
            }
            Mismatch::Interactive { framework } => {
                write!(f, "interactive creative ({framework}) needs a client")
            }
            Mismatch::Codec { ad, content } => {
                write!(f, "codec {ad} does not match the content's {content}")
            }
            Mismatch::Resolution { ad, content } => write!(
                f,
                "resolution {}x{} does not match the content's {}x{}",
                ad.0, ad.1, content.0, content.1
            ),
            Mismatch::FrameRate { ad, content } => {
                write!(
                    f,
                    "frame rate {ad} fps does not match the content's {content} fps"
                )
            }
            Mismatch::Bandwidth { ad, content } => {
                write!(f, "peak {ad} bit/s exceeds the variant's {content} bit/s")
            }
        }
    }
}

/// A property that could not be checked because the rendition or the variant does not state it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unverified {
    /// No recognisable codec.
    Codec,
    /// No picture size.
    Resolution,
    /// No frame rate.
    FrameRate,
    /// No bitrate.
    Bandwidth,
}

/// A rendition left out, with every reason.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    /// Its index among the candidates.
    pub index: usize,
    /// Its URI.
    pub uri: String,
    /// Why.
    pub mismatches: Vec<Mismatch>,
}

/// The outcome for one creative and one variant.
#[derive(Debug, Clone, PartialEq)]
pub enum Selection {
    /// This rendition can be stitched.
    Selected {
        /// Its index among the candidates.
        index: usize,
        /// The rendition.
        rendition: Rendition,
        /// What could not be checked.
        unverified: Vec<Unverified>,
    },
    /// Nothing fits: do not insert the creative.
    NotConditioned {
        /// Every candidate, with its reasons.
        rejected: Vec<Rejected>,
        /// A `Mezzanine` URI to condition the creative from, if the VAST offers one.
        mezzanine: Option<String>,
    },
}

impl Selection {
    /// The chosen rendition, if any.
    pub fn rendition(&self) -> Option<&Rendition> {
        match self {
            Selection::Selected { rendition, .. } => Some(rendition),
            Selection::NotConditioned { .. } => None,
        }
    }

    /// The VAST error code to report through the ad's Error URIs when it is not inserted (VAST 4.2
    /// §2.3.6.3): 407 when a `Mezzanine` is offered and the ad waits for its transcode ("Mezzanine is being
    /// downloaded for the first time; the ad will not be served until it is transcoded"), otherwise 403
    /// ("couldn't find a MediaFile that is supported"); none when a rendition was selected.
    pub fn vast_error_code(&self) -> Option<VastErrorCode> {
        match self {
            Selection::Selected { .. } => None,
            Selection::NotConditioned {
                mezzanine: Some(_), ..
            } => Some(VastErrorCode::MezzanineDownloading),
            Selection::NotConditioned { .. } => Some(VastErrorCode::NoSupportedMediaFile),
        }
    }
}

/// Picks the best of `candidates` for `variant`: HLS first, then the fewest unchecked properties, then
/// the closest picture size, then the highest bitrate within the variant's bandwidth.
pub fn select(
    candidates: &[Rendition],
    variant: &ContentVariant,
    policy: &StitchPolicy,
) -> Selection {
    let mut best: Option<(usize, Vec<Unverified>)> = None;
    let mut rejected = Vec::new();
    for (index, r) in candidates.iter().enumerate() {
        let (mismatches, unverified) = check(r, variant, policy);
        if !mismatches.is_empty() {
            rejected.push(Rejected {
                index,
                uri: r.uri.clone(),
                mismatches,
            });
            continue;
        }
        let better = match &best {
            None => true,
            Some((b, b_unverified)) => {
                let key = |r: &Rendition, u: &[Unverified]| {
                    (
                        !r.is_hls(),
                        u.len(),
                        r.height.abs_diff(variant.height),
                        u64::MAX - r.bandwidth.unwrap_or(0),
                    )
                };
                candidates
                    .get(*b)
                    .is_some_and(|b| key(r, &unverified) < key(b, b_unverified))
            }
        };
        if better {
            best = Some((index, unverified));
        }
    }
    match best.and_then(|(index, unverified)| {
        candidates
            .get(index)
            .map(|r| (index, r.clone(), unverified))
    }) {
        Some((index, rendition, unverified)) => Selection::Selected {
            index,
            rendition,
            unverified,
        },
        None => Selection::NotConditioned {
            rejected,
            mezzanine: None,
        },
    }
}

/// [`select`] over the `MediaFile`s of a creative's `Linear`; a creative without one is not conditioned.
pub fn select_media_file(
    creative: &Creative,
    variant: &ContentVariant,
    policy: &StitchPolicy,
) -> Selection {
    let Some(linear) = &creative.linear else {
        return Selection::NotConditioned {
            rejected: Vec::new(),
            mezzanine: None,
        };
    };
    let candidates: Vec<Rendition> = linear
        .media_files
        .media_files
        .iter()
        .map(Rendition::from_media_file)
        .collect();
    match select(&candidates, variant, policy) {
        Selection::NotConditioned { rejected, .. } => Selection::NotConditioned {
            rejected,
            mezzanine: linear.media_files.mezzanines.first().map(|m| m.url.clone()),
        },
        selected => selected,
    }
}

fn check(r: &Rendition, v: &ContentVariant, p: &StitchPolicy) -> (Vec<Mismatch>, Vec<Unverified>) {
    let mut mismatches = Vec::new();
    let mut unverified = Vec::new();
    let mime = r.mime_type.trim().to_ascii_lowercase();
    if let Some(framework) = &r.api_framework {
        mismatches.push(Mismatch::Interactive {
            framework: framework.clone(),
        });
    } else if mime.contains("javascript") || mime.contains("shockwave") {
        mismatches.push(Mismatch::Interactive {
            framework: mime.clone(),
        });
    } else if !(is_hls_type(&mime) || mime == "video/mp2t" || mime == "video/mp4") {
        mismatches.push(Mismatch::Container { mime_type: mime });
    }
    codec::check(&r.codecs, &v.codecs, &mut mismatches, &mut unverified);
    if v.width > 0 && v.height > 0 {
        if r.width == 0 || r.height == 0 {
            unverified.push(Unverified::Resolution);
        } else if !resolution_fits(r, v, p) {
            mismatches.push(Mismatch::Resolution {
                ad: (r.width, r.height),
                content: (v.width, v.height),
            });
        }
        match (r.frame_rate, v.frame_rate) {
            (Some(a), Some(c)) if (a - c).abs() > p.frame_rate_tolerance => {
                mismatches.push(Mismatch::FrameRate { ad: a, content: c });
            }
            (Some(_), Some(_)) => {}
            _ => unverified.push(Unverified::FrameRate),
        }
    }
    match r.bandwidth {
        Some(b) if (b as f64) > (v.bandwidth as f64) * (1.0 + p.bandwidth_headroom) => {
            mismatches.push(Mismatch::Bandwidth {
                ad: b,
                content: v.bandwidth,
            });
        }
        Some(_) => {}
        None => unverified.push(Unverified::Bandwidth),
    }
    (mismatches, unverified)
}

fn resolution_fits(r: &Rendition, v: &ContentVariant, p: &StitchPolicy) -> bool {
    let rel = |a: u64, b: u64| (a as f64 - b as f64).abs() / b as f64;
    let aspect = |w: u64, h: u64| w as f64 / h as f64;
    let aspect_diff =
        (aspect(r.width, r.height) - aspect(v.width, v.height)).abs() / aspect(v.width, v.height);
    rel(r.width, v.width) <= p.resolution_tolerance
        && rel(r.height, v.height) <= p.resolution_tolerance
        && aspect_diff <= p.aspect_tolerance
}
