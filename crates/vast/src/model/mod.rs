//! The typed VAST document: one model for VAST 1.0 to 4.3, shaped after the IAB's VAST 4.2 schema
//! (`vast_4.2.xsd`: `Inline_type`, `Wrapper_type`, `AdDefinitionBase_type`, …) and the element definitions of
//! the VAST 4.2/4.3 specification, so that every version reads into it and the writer can produce 4.2 from
//! it. Names follow the standard's spelling (`InLine`, `MediaFile`, `AdServingId`).
//!
//! What the model keeps from a document:
//! - every element and attribute of the 4.x schema, typed (times, percentages, integers, enumerations);
//! - elements of earlier versions, mapped to their 4.x successor (VAST 1 `Video` becomes a linear creative,
//!   `fullscreen` becomes `playerExpand`, a 4.0 `idValue` becomes the `UniversalAdId` text);
//! - `Extensions`/`CreativeExtensions` as raw XML;
//! - elements it does not know, as raw XML with the place they came from ([`UnknownElement`]).
//!
//! What it drops, and why: attributes it does not know (the 4.2 schema admits none), comments and
//! processing instructions, placeholders the schema requires but that mean "nothing" (an `Impression` of
//! `about:blank`, a `UniversalAdId` of `unknown`), which the writer puts back; elements outside any `Ad`
//! (the 4.2 root has room for `Ad` and `Error` only), and the namespace declarations of ancestors: raw XML
//! kept from a document that uses a prefix declared above it (on the root, say) is written without that
//! declaration.
//!
//! Where 4.1 made required what 4.0 left optional, the reader fills in a documented default instead of
//! failing: `width`/`height` 0 and `delivery` progressive for a bare 4.0 `Mezzanine` or a `NonLinear`
//! without a size, an empty `type`.

mod creative;
mod tracking;

pub use creative::*;
pub use tracking::*;

/// A VAST document: a pod or stand-alone ads, or a no-ad response carrying only `Error` URIs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Vast {
    /// The `version` the document declared (`"1.0"` for a VAST 1 `VideoAdServingTemplate`); the writer
    /// always declares 4.2.
    pub version: String,
    /// The ads, in document order. Ads with a `sequence` form a pod.
    pub ads: Vec<Ad>,
    /// Root-level `Error` URIs, pinged when there is no ad; only allowed when `ads` is empty.
    pub errors: Vec<String>,
}

impl Vast {
    /// The ads that form the pod (those with a `sequence`), in `sequence` order.
    pub fn pod(&self) -> Vec<&Ad> {
        let mut pod: Vec<&Ad> = self.ads.iter().filter(|a| a.sequence.is_some()).collect();
        pod.sort_by_key(|a| a.sequence);
        pod
    }

    /// The stand-alone ads (without a `sequence`), usable as a buffet when a pod ad fails.
    pub fn standalone(&self) -> impl Iterator<Item = &Ad> {
        self.ads.iter().filter(|a| a.sequence.is_none())
    }
}

/// One `Ad`: an [`InLine`] ad or a [`Wrapper`] pointing to another VAST document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ad {
    /// `id`.
    pub id: Option<String>,
    /// `sequence`: the ad's place in a pod (1-based).
    pub sequence: Option<u64>,
    /// `conditionalAd` (4.1).
    pub conditional_ad: Option<bool>,
    /// `adType` (4.1): video, audio or hybrid.
    pub ad_type: Option<AdType>,
    /// The ad itself.
    pub body: AdBody,
}

impl Ad {
    /// The InLine ad, if this is one.
    pub fn inline(&self) -> Option<&InLine> {
        match &self.body {
            AdBody::InLine(i) => Some(i),
            AdBody::Wrapper(_) => None,
        }
    }

    /// The Wrapper, if this is one.
    pub fn wrapper(&self) -> Option<&Wrapper> {
        match &self.body {
            AdBody::Wrapper(w) => Some(w),
            AdBody::InLine(_) => None,
        }
    }

    /// The parts InLine and Wrapper share.
    pub fn common(&self) -> &AdCommon {
        match &self.body {
            AdBody::InLine(i) => &i.common,
            AdBody::Wrapper(w) => &w.common,
        }
    }

    /// The parts InLine and Wrapper share, mutably.
    pub fn common_mut(&mut self) -> &mut AdCommon {
        match &mut self.body {
            AdBody::InLine(i) => &mut i.common,
            AdBody::Wrapper(w) => &mut w.common,
        }
    }
}

/// `InLine` or `Wrapper`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdBody {
    /// An ad with its creatives.
    InLine(Box<InLine>),
    /// A redirect to another VAST document, with tracking to add to what it returns.
    Wrapper(Box<Wrapper>),
}

/// `adType` (4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AdType {
    /// `video`.
    Video,
    /// `audio`.
    Audio,
    /// `hybrid`.
    Hybrid,
}

impl AdType {
    /// The attribute value.
    pub const fn as_str(self) -> &'static str {
        match self {
            AdType::Video => "video",
            AdType::Audio => "audio",
            AdType::Hybrid => "hybrid",
        }
    }
}

/// The elements InLine and Wrapper share (the schema's `AdDefinitionBase_type`, plus `AdVerifications`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AdCommon {
    /// `AdSystem`, required.
    pub ad_system: Option<AdSystem>,
    /// `Error` URIs, pinged with `[ERRORCODE]` when the ad fails.
    pub errors: Vec<String>,
    /// `Impression` URIs. An `about:blank` placeholder is not kept.
    pub impressions: Vec<Impression>,
    /// `Pricing`.
    pub pricing: Option<Pricing>,
    /// `ViewableImpression`.
    pub viewable_impression: Option<ViewableImpression>,
    /// `AdVerifications` (OMID).
    pub ad_verifications: Vec<Verification>,
    /// `Extensions`, raw.
    pub extensions: Vec<Extension>,
    /// Elements this model does not know, found anywhere inside the InLine/Wrapper.
    pub unknown: Vec<UnknownElement>,
}

/// `InLine`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InLine {
    /// Shared with Wrapper.
    pub common: AdCommon,
    /// `AdServingId` (4.1; required in 4.1+). Written empty when unknown (VAST ≤ 4.0 sources).
    pub ad_serving_id: Option<String>,
    /// `AdTitle`.
    pub ad_title: Option<String>,
    /// `Advertiser`.
    pub advertiser: Option<String>,
    /// `Category`.
    pub categories: Vec<Category>,
    /// `Creatives`.
    pub creatives: Vec<Creative>,
    /// `Description`.
    pub description: Option<String>,
    /// `Expires` (4.1): seconds the response may be cached.
    pub expires: Option<u64>,
    /// `Survey` (deprecated in 4.1 but still in the schema).
    pub survey: Option<Survey>,
}

/// `Wrapper`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Wrapper {
    /// Shared with InLine.
    pub common: AdCommon,
    /// `followAdditionalWrappers` (default true).
    pub follow_additional_wrappers: Option<bool>,
    /// `allowMultipleAds` (default false).
    pub allow_multiple_ads: Option<bool>,
    /// `fallbackOnNoAd`.
    pub fallback_on_no_ad: Option<bool>,
    /// `BlockedAdCategories` (4.1).
    pub blocked_ad_categories: Vec<BlockedAdCategories>,
    /// `Creatives`: tracking to merge into the InLine's creatives.
    pub creatives: Vec<WrapperCreative>,
    /// `VASTAdTagURI`: the next document.
    pub vast_ad_tag_uri: String,
}

/// `AdSystem`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AdSystem {
    /// The ad server's name.
    pub name: String,
    /// `version`.
    pub version: Option<String>,
}

/// `Impression`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Impression {
    /// `id`.
    pub id: Option<String>,
    /// The tracking URI.
    pub url: String,
}

/// `Pricing`. One whose price is not a decimal (often an unexpanded auction macro) or whose `model` or
/// `currency` is missing or malformed is kept as an unknown element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pricing {
    /// `model`.
    pub model: PricingModel,
    /// `currency`, ISO 4217 (three letters).
    pub currency: String,
    /// The price, an `xs:decimal` as written (the writer checks code-built values).
    pub value: String,
}

/// `Pricing@model`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PricingModel {
    /// Cost per click.
    Cpc,
    /// Cost per mille.
    Cpm,
    /// Cost per engagement.
    Cpe,
    /// Cost per view.
    Cpv,
}

impl PricingModel {
    /// The attribute value, lower case.
    pub const fn as_str(self) -> &'static str {
        match self {
            PricingModel::Cpc => "cpc",
            PricingModel::Cpm => "cpm",
            PricingModel::Cpe => "cpe",
            PricingModel::Cpv => "cpv",
        }
    }
}

/// `ViewableImpression`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ViewableImpression {
    /// `id`.
    pub id: Option<String>,
    /// `Viewable` URIs.
    pub viewable: Vec<String>,
    /// `NotViewable` URIs.
    pub not_viewable: Vec<String>,
    /// `ViewUndetermined` URIs.
    pub view_undetermined: Vec<String>,
}

/// `Category`. One without `authority` is kept as an unknown element.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Category {
    /// `authority`: the taxonomy's URI.
    pub authority: String,
    /// The category code.
    pub value: String,
}

/// `BlockedAdCategories`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BlockedAdCategories {
    /// `authority`.
    pub authority: Option<String>,
    /// The blocked codes, as written.
    pub value: String,
}

/// `Survey`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Survey {
    /// `type` (MIME type).
    pub mime_type: Option<String>,
    /// The survey URI.
    pub url: String,
}

/// `Verification` inside `AdVerifications`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Verification {
    /// `vendor`.
    pub vendor: Option<String>,
    /// `JavaScriptResource` elements.
    pub javascript_resources: Vec<JavaScriptResource>,
    /// `ExecutableResource` elements.
    pub executable_resources: Vec<ExecutableResource>,
    /// `TrackingEvents` (`verificationNotExecuted`, …).
    pub tracking: Vec<VerificationTracking>,
    /// `VerificationParameters`, opaque to the player.
    pub verification_parameters: Option<String>,
}

/// `JavaScriptResource`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JavaScriptResource {
    /// `apiFramework` (`omid`).
    pub api_framework: Option<String>,
    /// `browserOptional`.
    pub browser_optional: Option<bool>,
    /// The script URI.
    pub url: String,
}

/// `ExecutableResource`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExecutableResource {
    /// `apiFramework`.
    pub api_framework: Option<String>,
    /// `type`.
    pub resource_type: Option<String>,
    /// The resource URI.
    pub url: String,
}

/// `Tracking` inside a `Verification` (any event name;).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VerificationTracking {
    /// `event`.
    pub event: String,
    /// The URI.
    pub url: String,
}

/// One `Extension`: its `type` and its content as raw XML, kept byte for byte (trimmed).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Extension {
    /// `type`.
    pub extension_type: Option<String>,
    /// The content between `<Extension>` and `</Extension>`: elements only (the schema allows no text).
    pub xml: String,
}

/// An element the model does not know, kept as raw XML.
///
/// The 4.2 schema has no room for unknown elements except inside `Extension`, so the writer carries them
/// in one `Extension` of type [`UNKNOWN_ELEMENTS_EXTENSION`] on their ad, and the parser puts them back
/// here: they survive any number of round trips.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UnknownElement {
    /// Where it was, relative to the `InLine`/`Wrapper` (e.g. `Creatives/Creative[1]/Linear`; empty for a
    /// direct child).
    pub parent: String,
    /// The element, start tag to end tag, as it was in the document.
    pub xml: String,
}

/// The `Extension@type` that carries [`UnknownElement`]s through a VAST 4.2 document.
pub const UNKNOWN_ELEMENTS_EXTENSION: &str = "interlude-unknown-elements";

/// The `Impression` URI the 4.2 schema documents as "nothing to track"; read as no impression, written when
/// an ad has none.
pub(crate) const NO_IMPRESSION: &str = "about:blank";

/// The `UniversalAdId` registry and value VAST 4.1 defines for "no id"; read as no id, written when a
/// creative has none.
pub(crate) const UNKNOWN_ID: &str = "unknown";
