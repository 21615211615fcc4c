//! Creatives: `Linear` with its `MediaFiles`, `TrackingEvents`, `VideoClicks` and `Icons`; `NonLinearAds`;
//! `CompanionAds` (VAST 4.2 schema types `Creative_Inline_type`, `Linear_Inline_type`,
//! `NonLinearAd_Inline_type`, `CompanionAd_type`, and their Wrapper counterparts, which carry tracking only).

use super::Extension;
use super::tracking::{Click, Tracking, VideoClicks};
use crate::time::{Offset, Time};

/// `Creative` of an InLine ad (`Creative_Inline_type`).
///
/// The schema lets one `Creative` hold a `Linear`, `NonLinearAds` and `CompanionAds` at once; the
/// specification expects one of them. The model follows the schema.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Creative {
    /// `id`.
    pub id: Option<String>,
    /// `sequence`.
    pub sequence: Option<u64>,
    /// `adId` (`AdID` in VAST 2/3; `Video/AdID` in VAST 1).
    pub ad_id: Option<String>,
    /// `apiFramework`.
    pub api_framework: Option<String>,
    /// `UniversalAdId` (4.0; required in 4.1+, written as `unknown` when absent).
    pub universal_ad_ids: Vec<UniversalAdId>,
    /// `CreativeExtensions`, raw.
    pub creative_extensions: Vec<Extension>,
    /// `Linear`.
    pub linear: Option<Linear>,
    /// `NonLinearAds`.
    pub non_linear_ads: Option<NonLinearAds>,
    /// `CompanionAds`.
    pub companion_ads: Option<CompanionAds>,
}

/// `Creative` of a Wrapper (`Creative_Wrapper_type`): tracking and clicks to add to the InLine's.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WrapperCreative {
    /// `id`.
    pub id: Option<String>,
    /// `sequence`.
    pub sequence: Option<u64>,
    /// `adId`.
    pub ad_id: Option<String>,
    /// `apiFramework`.
    pub api_framework: Option<String>,
    /// `Linear` (`Linear_Wrapper_type`).
    pub linear: Option<WrapperLinear>,
    /// `NonLinearAds`.
    pub non_linear_ads: Option<WrapperNonLinearAds>,
    /// `CompanionAds`.
    pub companion_ads: Option<CompanionAds>,
}

/// `UniversalAdId`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UniversalAdId {
    /// `idRegistry` (e.g. `ad-id.org`).
    pub id_registry: String,
    /// The creative's id in that registry (the 4.0 `idValue` attribute, or the element's text since 4.1).
    pub value: String,
}

/// `Linear` of an InLine creative (`Linear_Inline_type`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Linear {
    /// `skipoffset`.
    pub skip_offset: Option<Offset>,
    /// `Duration` (required for a linear creative).
    pub duration: Option<Time>,
    /// `AdParameters`.
    pub ad_parameters: Option<AdParameters>,
    /// `MediaFiles`.
    pub media_files: MediaFiles,
    /// `TrackingEvents`.
    pub tracking: Vec<Tracking>,
    /// `VideoClicks`.
    pub video_clicks: Option<VideoClicks>,
    /// `Icons`.
    pub icons: Vec<Icon>,
}

/// `Linear` of a Wrapper creative (`Linear_Wrapper_type`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WrapperLinear {
    /// `skipoffset`.
    pub skip_offset: Option<Offset>,
    /// `TrackingEvents`.
    pub tracking: Vec<Tracking>,
    /// `VideoClicks` (click tracking to add; a wrapper's `ClickThrough` is not used).
    pub video_clicks: Option<VideoClicks>,
    /// `Icons`.
    pub icons: Vec<Icon>,
}

/// `AdParameters`: data for an interactive creative, passed through unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AdParameters {
    /// `xmlEncoded`.
    pub xml_encoded: Option<bool>,
    /// The text.
    pub value: String,
}

/// `MediaFiles`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MediaFiles {
    /// `ClosedCaptionFiles` (4.1).
    pub closed_caption_files: Vec<ClosedCaptionFile>,
    /// `MediaFile` renditions (at least one required).
    pub media_files: Vec<MediaFile>,
    /// `Mezzanine` (4.0): the high-quality source for server-side transcoding.
    pub mezzanines: Vec<Mezzanine>,
    /// `InteractiveCreativeFile` (4.0, SIMID).
    pub interactive_creative_files: Vec<InteractiveCreativeFile>,
}

/// `MediaFile`: one rendition of a linear creative.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MediaFile {
    /// `id`.
    pub id: Option<String>,
    /// `delivery`; read as progressive when a (broken) document leaves it out.
    pub delivery: Delivery,
    /// `type`: MIME type (`video/mp4`, `application/x-mpegURL`, …).
    pub mime_type: String,
    /// `width` in pixels; 0 for audio or when the document left it out (the 4.2 schema requires the
    /// attribute and documents 0 for "no picture").
    pub width: u64,
    /// `height` in pixels; 0 for audio or when left out.
    pub height: u64,
    /// `codec` (RFC 6381 string in 4.x; free text such as `H.264` in older documents).
    pub codec: Option<String>,
    /// `bitrate` in kbit/s.
    pub bitrate: Option<u64>,
    /// `minBitrate` in kbit/s (adaptive streaming).
    pub min_bitrate: Option<u64>,
    /// `maxBitrate` in kbit/s (adaptive streaming).
    pub max_bitrate: Option<u64>,
    /// `scalable`.
    pub scalable: Option<bool>,
    /// `maintainAspectRatio`.
    pub maintain_aspect_ratio: Option<bool>,
    /// `fileSize` in bytes (4.1).
    pub file_size: Option<u64>,
    /// `mediaType` (4.1, e.g. `2D`).
    pub media_type: Option<String>,
    /// `apiFramework` (`VPAID` for interactive files, deprecated since 4.1).
    pub api_framework: Option<String>,
    /// The file's URI.
    pub url: String,
}

/// `delivery` of a `MediaFile` or `Mezzanine`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Delivery {
    /// `progressive`: a plain HTTP download.
    #[default]
    Progressive,
    /// `streaming`: HLS, DASH or another streaming protocol.
    Streaming,
}

impl Delivery {
    /// The attribute value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Delivery::Progressive => "progressive",
            Delivery::Streaming => "streaming",
        }
    }
}

/// `Mezzanine` (4.0).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Mezzanine {
    /// `id`.
    pub id: Option<String>,
    /// `delivery`.
    pub delivery: Delivery,
    /// `type` (empty when the document left it out).
    pub mime_type: String,
    /// `width`; 0 when left out.
    pub width: u64,
    /// `height`; 0 when left out.
    pub height: u64,
    /// `codec`.
    pub codec: Option<String>,
    /// `fileSize`.
    pub file_size: Option<u64>,
    /// `mediaType`.
    pub media_type: Option<String>,
    /// The file's URI.
    pub url: String,
}

/// `InteractiveCreativeFile` (4.0).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InteractiveCreativeFile {
    /// `type`.
    pub mime_type: Option<String>,
    /// `apiFramework` (`SIMID`).
    pub api_framework: Option<String>,
    /// `variableDuration`.
    pub variable_duration: Option<bool>,
    /// The file's URI.
    pub url: String,
}

/// `ClosedCaptionFile` (4.1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClosedCaptionFile {
    /// `type`.
    pub mime_type: Option<String>,
    /// `language`.
    pub language: Option<String>,
    /// The file's URI.
    pub url: String,
}

/// The resources of an icon, non-linear ad or companion (`CreativeResource_type`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Resources {
    /// `HTMLResource`: HTML snippets.
    pub html: Vec<String>,
    /// `IFrameResource` URIs.
    pub iframe: Vec<String>,
    /// `StaticResource` files.
    pub static_resources: Vec<StaticResource>,
}

impl Resources {
    /// True when there is no resource.
    pub fn is_empty(&self) -> bool {
        self.html.is_empty() && self.iframe.is_empty() && self.static_resources.is_empty()
    }
}

/// `StaticResource`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StaticResource {
    /// `creativeType` (MIME type).
    pub creative_type: String,
    /// The file's URI.
    pub url: String,
}

/// `Icon` (`Icon_type`), e.g. the AdChoices icon.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Icon {
    /// `program` (e.g. `AdChoices`).
    pub program: Option<String>,
    /// `width`.
    pub width: Option<u64>,
    /// `height`.
    pub height: Option<u64>,
    /// `xPosition`: pixels, `left` or `right`.
    pub x_position: Option<String>,
    /// `yPosition`: pixels, `top` or `bottom`.
    pub y_position: Option<String>,
    /// `duration`.
    pub duration: Option<Time>,
    /// `offset`.
    pub offset: Option<Time>,
    /// `apiFramework`.
    pub api_framework: Option<String>,
    /// `pxratio` (`xs:decimal`).
    pub pxratio: Option<String>,
    /// The icon's resources.
    pub resources: Resources,
    /// `IconClicks`.
    pub icon_clicks: Option<IconClicks>,
    /// `IconViewTracking` URIs.
    pub view_tracking: Vec<String>,
}

/// `IconClicks`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IconClicks {
    /// `IconClickFallbackImages` (4.1).
    pub fallback_images: Vec<IconClickFallbackImage>,
    /// `IconClickThrough`.
    pub click_through: Option<String>,
    /// `IconClickTracking`.
    pub click_tracking: Vec<Click>,
}

/// `IconClickFallbackImage` (4.1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IconClickFallbackImage {
    /// `width`.
    pub width: Option<u64>,
    /// `height`.
    pub height: Option<u64>,
    /// `AltText`.
    pub alt_text: Option<String>,
    /// `StaticResource` URI.
    pub static_resource: Option<String>,
}

/// `NonLinearAds` of an InLine creative.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NonLinearAds {
    /// `TrackingEvents`.
    pub tracking: Vec<Tracking>,
    /// `NonLinear` ads.
    pub non_linears: Vec<NonLinear>,
}

/// `NonLinear` of an InLine creative (`NonLinearAd_Inline_type`): an overlay.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NonLinear {
    /// `id`.
    pub id: Option<String>,
    /// `width` (required by the schema; 0 when the document left it out).
    pub width: u64,
    /// `height` (required by the schema; 0 when left out).
    pub height: u64,
    /// `expandedWidth`.
    pub expanded_width: Option<u64>,
    /// `expandedHeight`.
    pub expanded_height: Option<u64>,
    /// `scalable`.
    pub scalable: Option<bool>,
    /// `maintainAspectRatio`.
    pub maintain_aspect_ratio: Option<bool>,
    /// `minSuggestedDuration`.
    pub min_suggested_duration: Option<Time>,
    /// `apiFramework`.
    pub api_framework: Option<String>,
    /// The overlay's resources.
    pub resources: Resources,
    /// `AdParameters`.
    pub ad_parameters: Option<AdParameters>,
    /// `NonLinearClickThrough`.
    pub click_through: Option<String>,
    /// `NonLinearClickTracking`.
    pub click_tracking: Vec<Click>,
}

/// `NonLinearAds` of a Wrapper creative.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WrapperNonLinearAds {
    /// `TrackingEvents`.
    pub tracking: Vec<Tracking>,
    /// `NonLinear` entries: only click tracking (`NonLinearAd_Base_type`).
    pub non_linears: Vec<WrapperNonLinear>,
}

/// `NonLinear` of a Wrapper creative.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WrapperNonLinear {
    /// `NonLinearClickTracking` (the 4.2 schema allows one).
    pub click_tracking: Option<Click>,
}

/// `CompanionAds` (`CompanionAds_Collection_type`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CompanionAds {
    /// `required`.
    pub required: Option<CompanionRequired>,
    /// `Companion` ads.
    pub companions: Vec<Companion>,
}

/// `CompanionAds@required`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompanionRequired {
    /// `all`.
    All,
    /// `any`.
    Any,
    /// `none`.
    None,
}

impl CompanionRequired {
    /// The attribute value.
    pub const fn as_str(self) -> &'static str {
        match self {
            CompanionRequired::All => "all",
            CompanionRequired::Any => "any",
            CompanionRequired::None => "none",
        }
    }
}

/// `Companion` (`CompanionAd_type`): a display ad shown alongside.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Companion {
    /// `id`.
    pub id: Option<String>,
    /// `width` (required by the schema; 0 when the document left it out).
    pub width: u64,
    /// `height` (required by the schema; 0 when left out).
    pub height: u64,
    /// `assetWidth`.
    pub asset_width: Option<u64>,
    /// `assetHeight`.
    pub asset_height: Option<u64>,
    /// `expandedWidth`.
    pub expanded_width: Option<u64>,
    /// `expandedHeight`.
    pub expanded_height: Option<u64>,
    /// `apiFramework`.
    pub api_framework: Option<String>,
    /// `adSlotId`.
    pub ad_slot_id: Option<String>,
    /// `pxratio` (`xs:decimal`).
    pub pxratio: Option<String>,
    /// `renderingMode` (4.1).
    pub rendering_mode: Option<RenderingMode>,
    /// The companion's resources.
    pub resources: Resources,
    /// `AdParameters`.
    pub ad_parameters: Option<AdParameters>,
    /// `AltText`.
    pub alt_text: Option<String>,
    /// `CompanionClickThrough`.
    pub click_through: Option<String>,
    /// `CompanionClickTracking` (the 4.2 schema requires an `id`; written empty when absent).
    pub click_tracking: Vec<Click>,
    /// `CreativeExtensions`, raw.
    pub creative_extensions: Vec<Extension>,
    /// `TrackingEvents` (`creativeView`).
    pub tracking: Vec<Tracking>,
}

/// `Companion@renderingMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RenderingMode {
    /// `default`.
    Default,
    /// `end-card`.
    EndCard,
    /// `concurrent`.
    Concurrent,
}

impl RenderingMode {
    /// The attribute value.
    pub const fn as_str(self) -> &'static str {
        match self {
            RenderingMode::Default => "default",
            RenderingMode::EndCard => "end-card",
            RenderingMode::Concurrent => "concurrent",
        }
    }
}
