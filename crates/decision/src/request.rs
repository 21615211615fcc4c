//! Where pods come from: the seam between the stitcher and ad decisioning.
//!
//! The stitcher asks a [`PodSource`] once per viewer per break, when the channel first sees the break — never on
//! a player's request path. The decision engine implements it; tests and the demo use a configured source.

use serde::{Deserialize, Serialize};

/// What is known about the viewer when a pod is decided. Pseudonymous: no raw IP or device id reaches here.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ViewerContext {
    /// Pseudonymous viewer id (absent without consent).
    pub viewer_id: Option<String>,
    /// Device class: `tv`, `mobile`, `desktop`, `tablet`, …
    pub device: Option<String>,
    /// Platform: `ios`, `android`, `web`, `roku`, `tvos`, …
    pub platform: Option<String>,
    /// ISO 3166-1 alpha-2 country.
    pub country: Option<String>,
    /// Region (ISO 3166-2 subdivision) or DMA code.
    pub region: Option<String>,
    /// Content being watched (live event id, programme), beyond the channel itself.
    pub content_id: Option<String>,
    /// Content genre.
    pub genre: Option<String>,
    /// Whether the viewer consented to personalised advertising.
    pub consent: Option<bool>,
    /// Audience segments.
    pub segments: Vec<String>,
    /// The viewer's IANA time zone (`Europe/Paris`), for daypart targeting; UTC when absent.
    pub timezone: Option<String>,
    /// Custom key-values (publisher-defined targeting keys).
    pub key_values: Vec<(String, String)>,
    /// Whether the viewer opted out of the sale or sharing of personal data (US state laws): no user data in
    /// bid requests, carried on the viewer's events.
    pub opt_out_sale: bool,
    /// The privacy signals the player sent, as the privacy edge validated them: passed on to bidders
    /// (OpenRTB 2.6 `regs`, `user.consent`) so they can apply the same rules.
    pub privacy: PrivacySignals,
}

/// Privacy signals passed on to third parties (OpenRTB 2.6 §3.2.3 `Regs`, §3.2.20 `User.consent`). Only
/// strings that parse (TCF v2, US Privacy, GPP) are kept: a player's unexpanded macro is no signal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrivacySignals {
    /// Whether GDPR applies, as the consent decision took it (`regs.gdpr`); unknown when the edge did not
    /// decide.
    pub gdpr: Option<bool>,
    /// The TCF v2 TC string (`user.consent`).
    pub tc_string: Option<String>,
    /// The US Privacy string (`regs.us_privacy`).
    pub us_privacy: Option<String>,
    /// The GPP string (`regs.gpp`).
    pub gpp: Option<String>,
    /// The applicable GPP section ids (`regs.gpp_sid`).
    pub gpp_sid: Vec<u16>,
    /// Subject to COPPA: the player said so, or the content is child-directed (`regs.coppa`).
    pub coppa: bool,
}

/// A request for one viewer's pod for one break.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PodRequest {
    /// The channel.
    pub channel: String,
    /// The session asking.
    pub session_id: String,
    /// The break's id.
    pub break_id: String,
    /// The break's planned duration in seconds, when signalled.
    pub duration_secs: Option<f64>,
    /// The viewer.
    pub viewer: ViewerContext,
}

/// One rendition of a creative, as an HLS media playlist.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreativeRendition {
    /// Peak bandwidth in bits per second.
    pub bandwidth: u64,
    /// Width and height in pixels, when video.
    pub resolution: Option<(u32, u32)>,
    /// URL of the rendition's media playlist.
    pub playlist_url: String,
}

/// A file of a creative that a conditioner may transcode into stitchable renditions: a VAST 4 `Mezzanine`
/// (IAB VAST 4.2 §3.9.2) or a progressive `MediaFile` (§3.9.1). Carried as the VAST described it; which one
/// to use is the conditioner's choice.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SourceFile {
    /// Where it is.
    pub uri: String,
    /// `type`, lower case (may be empty for a mezzanine).
    pub mime_type: String,
    /// `delivery="progressive"`.
    pub progressive: bool,
    /// Width in pixels (0: unknown).
    pub width: u64,
    /// Height in pixels (0: unknown).
    pub height: u64,
    /// `maxBitrate`, else `bitrate`, kbit/s.
    pub bitrate_kbps: Option<u64>,
    /// `fileSize`, bytes.
    pub file_size: Option<u64>,
    /// From `Mezzanine` rather than `MediaFile`.
    pub mezzanine: bool,
    /// `apiFramework`, when set (an interactive unit, never a source).
    pub api_framework: Option<String>,
}

/// What a creative without HLS renditions offers for conditioning (transcoding to the channel's renditions
/// before it can be stitched): the ids that name it across ad servers and its source files.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConditioningSource {
    /// VAST 4 `UniversalAdId`: `idRegistry` and value (IAB VAST 4.2 §3.7.1).
    pub universal_ad_id: Option<(String, String)>,
    /// `Creative@adId`.
    pub ad_id: Option<String>,
    /// `Creative@id`.
    pub creative_id: Option<String>,
    /// Mezzanines first, then media files, in document order.
    pub files: Vec<SourceFile>,
}

/// One ad chosen for a viewer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PodAd {
    /// Unique id of this ad in this pod for this viewer; every beacon carries it.
    pub ad_instance_id: String,
    /// The creative.
    pub creative_id: String,
    /// Campaign, when the ad came from the catalog.
    pub campaign_id: Option<String>,
    /// Line item, when the ad came from the catalog.
    pub line_item_id: Option<String>,
    /// Duration in seconds as declared by the ad server.
    pub duration_secs: f64,
    /// The creative's renditions.
    pub renditions: Vec<CreativeRendition>,
    /// Third-party impression URLs to call when the impression is counted.
    pub impression_urls: Vec<String>,
    /// Third-party tracking URLs by VAST event name (`start`, `firstQuartile`, …, `complete`).
    #[serde(default)]
    pub tracking_urls: Vec<(String, String)>,
    /// For a programmatic ad, the bid it won with: whom its notices go to and their macros' values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bid: Option<WonBid>,
    /// For a creative offered only as files to transcode (no HLS renditions), what conditioning needs; the
    /// stitcher resolves it to the conditioned renditions, or skips the ad until they are ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Box<ConditioningSource>>,
}

/// The bid behind a programmatic ad: who is told of the win and billed (`nurl`, `burl`), and the values of
/// the OpenRTB 2.6 §4.4 substitution macros of those notices. Bids are told apart by seat, bid id and imp id
/// (§4.2.3: `Bid.id` is the bidder's, unique within its response), never by creative: two bids may carry the
/// same creative.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WonBid {
    /// `BidRequest.id` (`${AUCTION_ID}`).
    pub auction_id: String,
    /// The bidder asked, as configured (demand reports group by it).
    #[serde(default)]
    pub bidder: String,
    /// The seat (`${AUCTION_SEAT_ID}`): `SeatBid.seat`, or the bidder's name when its response names none.
    pub seat: String,
    /// `Bid.id`.
    pub bid_id: String,
    /// `Bid.dealid`: the private-marketplace deal the bid was for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deal_id: Option<String>,
    /// `Bid.impid` (`${AUCTION_IMP_ID}`).
    pub imp_id: String,
    /// `BidResponse.bidid` (`${AUCTION_BID_ID}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_bid_id: Option<String>,
    /// `Bid.adid` (`${AUCTION_AD_ID}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ad_id: Option<String>,
    /// Clearing price, CPM in `currency` (`${AUCTION_PRICE}`): the bid's own price, the auction being
    /// first-price (`at` = 1).
    pub price: f64,
    /// ISO 4217 (`${AUCTION_CURRENCY}`).
    pub currency: String,
    /// `Bid.burl`, macros unexpanded: the billing notice, fired once when the impression is counted (§4.3.1
    /// "Billing notice", kept apart from the ad's `<Impression>` URLs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burl: Option<String>,
    /// `Bid.nurl`, macros unexpanded: the win notice, fired once the pod holding the ad is the viewer's (the
    /// stitcher has its creative's segments and the decision is stored), see [`PodSource::served`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nurl: Option<String>,
    /// `Bid.lurl`, macros unexpanded: the loss notice of a bid chosen for a pod and then left out of it (its
    /// creative would not stitch), see [`PodSource::dropped`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lurl: Option<String>,
}

/// A decided pod, in play order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Pod {
    /// The ads.
    pub ads: Vec<PodAd>,
}

/// Why no pod could be had.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PodError {
    /// The source did not answer in time.
    #[error("pod source timed out after {0} ms")]
    Timeout(u64),
    /// The source failed.
    #[error("pod source failed: {0}")]
    Failed(String),
}

/// A boxed future, so sources can be used as trait objects.
pub type PodFuture<'a> = interlude_events::BoxFuture<'a, Result<Pod, PodError>>;

/// Decides pods. Implemented by the decision engine; asked once per viewer per break.
pub trait PodSource: Send + Sync {
    /// Decides the pod for one viewer and one break.
    fn pod(&self, request: PodRequest) -> PodFuture<'_>;

    /// Told that `ad`, from a pod this source decided, is served: its creative is usable and its pod is the
    /// viewer's (stored, and won against any other node's decision). A pod decided but not served (a node that
    /// lost the race, a creative that would not stitch) never gets this call. It may come more than once for
    /// one ad (a node adopting a stored decision after a restart says it again), so what it triggers must be
    /// idempotent. Must not block.
    fn served(&self, ad: &PodAd) {
        let _ = ad;
    }

    /// Told that `ad`, from a pod this source decided, is left out of the pod the viewer gets (its creative
    /// would not stitch, or is not conditioned yet): what it reserved (goal, the viewer's caps) is given
    /// back, so an ad that cannot play does not hold its line item off the next viewers. Must not block.
    fn dropped(&self, ad: &PodAd) {
        let _ = ad;
    }

    /// Told that the viewer of `ad`, from a pod this source decided, left before it played (the session
    /// expired): what it reserved goes back now instead of at its TTL, counted as undelivered. Told for every
    /// ad of the session's pods; one already delivered keeps its count. Must not block.
    fn abandoned(&self, ad: &PodAd) {
        let _ = ad;
    }
}
