//! OpenRTB 2.6 for the programmatic part of a hybrid pod: the bid request for the time direct-sold demand left
//! open, and the checks a bid must pass before it may compete for a slot. Pure: the server sends the request.
//!
//! The break's remainder is one dynamic-pod impression (OpenRTB 2.6 §3.2.7 `Video`: `podid`, `poddur`, `maxseq`,
//! `podseq`, `slotinpod`, `mincpmpersec`, `rqddurs` for exact-duration buckets), so a bidder may return several
//! bids for it, each with its `dur`. Separation with the ads already in the pod goes out as `bcat`/`badv`, and
//! the content's exclusions as `bcat` too. Bids are first-price (`at` = 1) in the request's currency.
//!
//! Geo is ISO 3166-1 alpha-3 in OpenRTB (§3.2.19) where the platform keeps alpha-2; no IP address, device id or
//! user agent is sent (data minimisation), and the viewer id only with consent.

use crate::supply::{
    DealConfig, InventoryConfig, InventoryKind, Pmp, Publisher, Regs, SupplyChain,
};
use crate::{PodRequest, WonBid};
use serde::{Deserialize, Serialize};

use crate::external::{ExternalAd, pod_ad_from_vast};
use crate::pod::Tier;

/// The protocol version sent in the `x-openrtb-version` header.
pub const OPENRTB_VERSION: &str = "2.6";

/// What the auction may sell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenSlot {
    /// Milliseconds of the break left after direct-sold demand.
    pub duration_ms: u32,
    /// Ads the pod may still take.
    pub max_ads: usize,
    /// Categories that may not be bid (already in the pod, or excluded by the content).
    pub blocked_categories: Vec<String>,
    /// Advertiser domains already in the pod.
    pub blocked_advertisers: Vec<String>,
}

/// Auction settings (the `[decision.demand.auction]` configuration section).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuctionSettings {
    /// `tmax`: milliseconds bidders have to answer.
    pub tmax_ms: u64,
    /// Floor CPM.
    pub floor_cpm: f64,
    /// Currency (ISO 4217).
    pub currency: String,
    /// Shortest ad accepted, seconds.
    pub min_ad_secs: u32,
    /// Longest ad accepted, seconds.
    pub max_ad_secs: u32,
    /// Exact ad durations accepted, seconds (`rqddurs`, for exact-duration buckets); empty: any duration
    /// between `min_ad_secs` and `max_ad_secs` (the two are exclusive in OpenRTB 2.6).
    pub required_durations_secs: Vec<u32>,
    /// Floor per second of ad (`mincpmpersec`), when the floor scales with duration.
    pub min_cpm_per_sec: Option<f64>,
    /// Video placement (`plcmt`, AdCOM Plcmt Subtypes - Video): 1 instream.
    pub placement: u8,
    /// Width and height of the player in device-independent pixels (`w`, `h`).
    pub player_size: (u32, u32),
    /// Taxonomy of categories (`cattax` of `bcat` and of the content): 1 IAB Content Category Taxonomy 1.0,
    /// 2 2.0, 6 Content Taxonomy 3.0, 7 3.1 (AdCOM List: Category Taxonomies).
    pub cattax: u8,
    /// Where the ads run.
    pub inventory: InventoryConfig,
    /// The supply chain sent as `source.schain`; unset: none is sent.
    pub schain: Option<SupplyChain>,
    /// Private marketplace deals offered in every request (`imp.pmp`).
    pub deals: Vec<DealConfig>,
}

impl Default for AuctionSettings {
    fn default() -> Self {
        AuctionSettings {
            tmax_ms: 300,
            floor_cpm: 1.0,
            currency: "USD".to_owned(),
            min_ad_secs: 5,
            max_ad_secs: 60,
            required_durations_secs: Vec::new(),
            min_cpm_per_sec: None,
            placement: 1,
            player_size: (1920, 1080),
            cattax: 1,
            inventory: InventoryConfig::default(),
            schain: None,
            deals: Vec::new(),
        }
    }
}

/// `BidRequest` (§3.2.1), the fields this platform sends.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BidRequest {
    pub id: String,
    pub imp: Vec<Imp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<App>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<App>,
    pub device: Device,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<User>,
    pub at: u8,
    pub tmax: u64,
    pub cur: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bcat: Vec<String>,
    /// Taxonomy of `bcat`.
    pub cattax: u8,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub badv: Vec<String>,
    pub source: Source,
    pub regs: Regs,
}

/// `Imp` (§3.2.4).
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Imp {
    pub id: String,
    pub video: Video,
    pub bidfloor: f64,
    pub bidfloorcur: String,
    pub secure: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pmp: Option<Pmp>,
}

/// `Video` (§3.2.7) with the 2.6 pod fields.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Video {
    pub mimes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minduration: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maxduration: Option<u32>,
    /// Exact durations accepted (exclusive with `minduration`/`maxduration`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rqddurs: Vec<u32>,
    /// Placement (AdCOM Plcmt Subtypes - Video): 1 instream.
    pub plcmt: u8,
    pub w: u32,
    pub h: u32,
    /// 1: linear.
    pub linearity: u8,
    /// -1: generic mid-roll (a live break).
    pub startdelay: i32,
    /// 3 VAST 3.0, 6 VAST 2.0 wrapper, 7 VAST 4.0, 8 VAST 4.0 wrapper (§5.8 / AdCOM Creative Subtypes).
    pub protocols: Vec<u8>,
    /// Dynamic pod id.
    pub podid: String,
    /// Seconds of the pod.
    pub poddur: u32,
    /// Most ads in the pod.
    pub maxseq: u32,
    /// 0: any position in the pod (the direct ads may precede).
    pub podseq: i8,
    /// 0: any slot.
    pub slotinpod: i8,
    /// Floor per second of ad, when the floor scales with duration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mincpmpersec: Option<f64>,
}

/// `App` (§3.2.14), also `Site` (§3.2.13): the fields this platform sends are common to both but `bundle`
/// (apps) and `page` (sites).
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct App {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publisher: Option<Publisher>,
    pub content: Content,
}

/// `Content` (§3.2.16).
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Content {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub genre: Option<String>,
    /// The live event or programme (the viewer's content id when known, else the channel).
    pub title: String,
    /// 1: live stream.
    pub livestream: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contentrating: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cat: Vec<String>,
    pub cattax: u8,
    pub channel: Channel,
}

/// `Channel` (§3.2.23, new in 2.6).
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Channel {
    pub id: String,
    pub name: String,
}

/// `Device` (§3.2.18).
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Device {
    /// AdCOM device type: 2 PC, 3 connected TV, 4 phone, 5 tablet, 7 set-top box.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub devicetype: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub geo: Option<Geo>,
    /// Limit ad tracking: 1 when the viewer did not consent.
    pub lmt: u8,
}

/// `Geo` (§3.2.19).
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Geo {
    /// ISO 3166-1 alpha-3.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// `User` (§3.2.20).
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The TCF v2 TC string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent: Option<String>,
}

/// `Source` (§3.2.2).
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Source {
    /// Transaction id, shared by every bidder's copy of the request.
    pub tid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schain: Option<SupplyChain>,
}

/// `BidResponse` (§4.2.1); unknown fields are ignored.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct BidResponse {
    pub id: String,
    pub seatbid: Vec<SeatBid>,
    /// The bidder's id of its response (`${AUCTION_BID_ID}`).
    pub bidid: Option<String>,
    pub cur: Option<String>,
    /// No-bid reason.
    pub nbr: Option<u32>,
}

/// `SeatBid` (§4.2.2).
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct SeatBid {
    pub bid: Vec<Bid>,
    pub seat: Option<String>,
}

/// `Bid` (§4.2.3).
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Bid {
    pub id: String,
    pub impid: String,
    pub price: f64,
    pub adm: Option<String>,
    pub nurl: Option<String>,
    pub burl: Option<String>,
    pub lurl: Option<String>,
    /// The bidder's ad id (`${AUCTION_AD_ID}`).
    pub adid: Option<String>,
    /// The deal the bid is for (`imp.pmp.deals[].id`).
    pub dealid: Option<String>,
    pub adomain: Vec<String>,
    pub cat: Vec<String>,
    pub crid: Option<String>,
    /// Seconds (2.6).
    pub dur: Option<u32>,
}

/// AdCOM device type for our device classes.
fn device_type(device: Option<&str>) -> Option<u8> {
    match device? {
        "desktop" | "pc" => Some(2),
        "tv" | "ctv" => Some(3),
        "mobile" | "phone" => Some(4),
        "tablet" => Some(5),
        "stb" => Some(7),
        _ => None,
    }
}

fn alpha3(alpha2: &str) -> Option<String> {
    isocountry::CountryCode::for_alpha2_caseless(alpha2)
        .ok()
        .map(|c| c.alpha3().to_owned())
}

/// The bid request for `slot` of `request`'s break; `id` is unique per auction.
pub fn bid_request(
    id: &str,
    request: &PodRequest,
    slot: &OpenSlot,
    settings: &AuctionSettings,
) -> BidRequest {
    let v = &request.viewer;
    // An opt-out of sale or sharing (US state laws) withholds user data from bidders like a refusal does.
    let consented = v.consent.unwrap_or(false) && !v.opt_out_sale;
    let poddur = slot.duration_ms / 1000;
    let exact = !settings.required_durations_secs.is_empty();
    let inv = &settings.inventory;
    let placement = App {
        id: inv.id.clone(),
        name: inv.name.clone(),
        bundle: inv
            .bundle
            .clone()
            .filter(|_| inv.kind == InventoryKind::App),
        domain: inv.domain.clone(),
        page: inv.page.clone().filter(|_| inv.kind == InventoryKind::Site),
        publisher: Publisher::of(inv),
        content: Content {
            id: v.content_id.clone(),
            genre: v.genre.clone(),
            title: v
                .content_id
                .clone()
                .unwrap_or_else(|| request.channel.clone()),
            livestream: 1,
            contentrating: inv.content_rating.clone(),
            language: inv.content_language.clone(),
            cat: inv.content_categories.clone(),
            cattax: settings.cattax,
            channel: Channel {
                id: request.channel.clone(),
                name: request.channel.clone(),
            },
        },
    };
    let pmp = (!settings.deals.is_empty()).then(|| Pmp {
        private_auction: 0,
        deals: settings
            .deals
            .iter()
            .map(|d| crate::supply::Deal {
                id: d.id.clone(),
                bidfloor: d.floor_cpm,
                bidfloorcur: settings.currency.clone(),
                wseat: d.seats.clone(),
            })
            .collect(),
    });
    let (site, app) = match inv.kind {
        InventoryKind::App => (None, Some(placement)),
        InventoryKind::Site => (Some(placement), None),
    };
    let user = User {
        id: v.viewer_id.clone().filter(|_| consented),
        // The consent string itself is no personal data: bidders need it to know what they may do.
        consent: v.privacy.tc_string.clone(),
    };
    BidRequest {
        id: id.to_owned(),
        imp: vec![Imp {
            id: "1".to_owned(),
            video: Video {
                mimes: vec!["application/x-mpegURL".to_owned()],
                minduration: (!exact).then_some(settings.min_ad_secs),
                maxduration: (!exact).then_some(settings.max_ad_secs.min(poddur)),
                rqddurs: settings
                    .required_durations_secs
                    .iter()
                    .copied()
                    .filter(|d| *d <= poddur)
                    .collect(),
                plcmt: settings.placement,
                w: settings.player_size.0,
                h: settings.player_size.1,
                linearity: 1,
                startdelay: -1,
                protocols: vec![3, 6, 7, 8],
                podid: request.break_id.clone(),
                poddur,
                maxseq: u32::try_from(slot.max_ads).unwrap_or(u32::MAX),
                podseq: 0,
                slotinpod: 0,
                mincpmpersec: settings.min_cpm_per_sec,
            },
            bidfloor: settings.floor_cpm,
            bidfloorcur: settings.currency.clone(),
            secure: 1,
            pmp,
        }],
        site,
        app,
        device: Device {
            devicetype: device_type(v.device.as_deref()),
            os: v.platform.clone(),
            geo: v.country.as_deref().map(|c| Geo {
                country: alpha3(c),
                region: v.region.clone(),
            }),
            lmt: u8::from(!consented),
        },
        user: (user.id.is_some() || user.consent.is_some()).then_some(user),
        at: 1,
        tmax: settings.tmax_ms,
        cur: vec![settings.currency.clone()],
        bcat: slot.blocked_categories.clone(),
        cattax: settings.cattax,
        badv: slot.blocked_advertisers.clone(),
        source: Source {
            tid: id.to_owned(),
            schain: settings.schain.clone(),
        },
        regs: Regs::of(&v.privacy),
    }
}

/// A bid that passed the checks, ready to compete in the pod.
#[derive(Debug, Clone, PartialEq)]
pub struct AcceptedBid {
    /// The seat (bidder name when the response names none).
    pub seat: String,
    /// The bid.
    pub bid: Bid,
    /// Its ad, offered to the pod.
    pub ad: ExternalAd,
}

/// Why a bid did not win: the OpenRTB 2.6 loss reason codes (§5.25, "List: Loss Reason Codes") this
/// platform reports in `${AUCTION_LOSS}`. A bidder cut off at `tmax` gets no loss notice: its bids (and their
/// `lurl`) never arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LossReason {
    /// 3: Invalid Bid Response (unknown `impid`, another currency).
    InvalidBidResponse,
    /// 4: Invalid Deal ID (a deal not offered, or not to this seat).
    InvalidDealId,
    /// 5: Invalid Auction ID (the response answers another request).
    InvalidAuctionId,
    /// 7: Missing Markup (no `adm`: markup served on win is not supported).
    MissingMarkup,
    /// 100: Bid was Below Auction Floor.
    BelowAuctionFloor,
    /// 101: Bid was Below Deal Floor.
    BelowDealFloor,
    /// 102: Lost to Higher Bid.
    LostToHigherBid,
    /// 103: Lost to a Bid for a PMP Deal.
    LostToPmpDeal,
    /// 200: Creative Filtered - General (markup unreadable, wrappers unresolved, too long for the pod).
    CreativeFiltered,
    /// 204: Creative Filtered - Incorrect Creative Format (no stitchable HLS rendition, no duration).
    IncorrectCreativeFormat,
    /// 205: Creative Filtered - Advertiser Exclusions (`badv`).
    AdvertiserExclusions,
    /// 209: Creative Filtered - Category Exclusions (`bcat`).
    CategoryExclusions,
}

impl LossReason {
    /// The code (`${AUCTION_LOSS}`).
    pub const fn code(self) -> u32 {
        match self {
            LossReason::InvalidBidResponse => 3,
            LossReason::InvalidDealId => 4,
            LossReason::InvalidAuctionId => 5,
            LossReason::MissingMarkup => 7,
            LossReason::BelowAuctionFloor => 100,
            LossReason::BelowDealFloor => 101,
            LossReason::LostToHigherBid => 102,
            LossReason::LostToPmpDeal => 103,
            LossReason::CreativeFiltered => 200,
            LossReason::IncorrectCreativeFormat => 204,
            LossReason::AdvertiserExclusions => 205,
            LossReason::CategoryExclusions => 209,
        }
    }
}

/// A bid refused before the pod saw it, or a bidder that gave none.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RefusedBid {
    /// `bid:<seat>:<bid id>`, or `bidder:<name>` for a bidder that failed.
    pub id: String,
    /// Why.
    pub reason: String,
    /// The loss reason its bidder is told, for a refused bid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss: Option<LossReason>,
    /// The refused bid's identity and `lurl` (in [`WonBid::burl`]'s place none: a refused bid bills
    /// nothing), for its loss notice.
    #[serde(skip)]
    pub notice: Option<(WonBid, Option<String>)>,
}

impl RefusedBid {
    /// A bidder that failed as a whole (no answer within `tmax`, HTTP error, unreadable response).
    pub fn bidder(name: &str, reason: String) -> RefusedBid {
        RefusedBid {
            id: format!("bidder:{name}"),
            reason,
            loss: None,
            notice: None,
        }
    }
}

/// The identity and macro values of `bid` from `seat` in `response` to `request`.
fn bid_of(
    bidder: &str,
    request: &BidRequest,
    response: &BidResponse,
    seat: &str,
    bid: &Bid,
) -> WonBid {
    WonBid {
        auction_id: request.id.clone(),
        bidder: bidder.to_owned(),
        seat: seat.to_owned(),
        deal_id: bid.dealid.clone(),
        bid_id: bid.id.clone(),
        imp_id: bid.impid.clone(),
        response_bid_id: response.bidid.clone(),
        ad_id: bid.adid.clone(),
        price: bid.price,
        currency: request
            .cur
            .first()
            .cloned()
            .unwrap_or_else(|| "USD".to_owned()),
        burl: bid.burl.clone(),
        nurl: bid.nurl.clone(),
        lurl: bid.lurl.clone(),
    }
}

/// Checks a bidder's response against the request it answers and turns each acceptable bid into an ad for
/// the pod. `markup` gives a bid's `adm` (VAST) as one InLine ad, wrappers resolved if the caller can. Each
/// refused bid says which loss reason its bidder is told.
pub fn accept_bids(
    bidder: &str,
    request: &BidRequest,
    response: BidResponse,
    mut markup: impl FnMut(&Bid) -> Result<interlude_vast::Ad, String>,
) -> (Vec<AcceptedBid>, Vec<RefusedBid>) {
    let (mut accepted, mut refused) = (Vec::new(), Vec::new());
    let currency = request.cur.first().map_or("USD", String::as_str);
    let poddur_ms = request.imp.first().map_or(0, |i| i.video.poddur) * 1000;
    for seatbid in &response.seatbid {
        let seat = seatbid.seat.clone().unwrap_or_else(|| bidder.to_owned());
        for bid in &seatbid.bid {
            let id = format!("bid:{seat}:{}", bid.id);
            let imp = request.imp.iter().find(|i| i.id == bid.impid);
            let outcome = (|| {
                use LossReason as L;
                if response.id != request.id {
                    return Err((
                        format!("answers request {:?}, not {:?}", response.id, request.id),
                        L::InvalidAuctionId,
                    ));
                }
                if response.cur.as_deref().is_some_and(|c| c != currency) {
                    return Err((
                        format!("currency {:?}, not {currency}", response.cur),
                        L::InvalidBidResponse,
                    ));
                }
                let Some(imp) = imp else {
                    return Err((
                        format!("unknown impid {:?}", bid.impid),
                        L::InvalidBidResponse,
                    ));
                };
                let (floor, below) = floor_of(imp, bid, &seat)?;
                if !(bid.price.is_finite() && bid.price >= floor) {
                    return Err((
                        format!("price {} below the floor {floor}", bid.price),
                        below,
                    ));
                }
                if let Some(c) = bid.cat.iter().find(|c| request.bcat.contains(c)) {
                    return Err((format!("blocked category {c:?}"), L::CategoryExclusions));
                }
                if let Some(d) = bid.adomain.iter().find(|d| request.badv.contains(d)) {
                    return Err((format!("blocked advertiser {d:?}"), L::AdvertiserExclusions));
                }
                if bid.adm.is_none() {
                    return Err((
                        "no adm (markup by nurl is not supported)".to_owned(),
                        L::MissingMarkup,
                    ));
                }
                let vast_ad = markup(bid).map_err(|e| (e, L::CreativeFiltered))?;
                let mut ad = pod_ad_from_vast(&vast_ad)
                    .map_err(|e| (e.to_string(), L::IncorrectCreativeFormat))?;
                let duration_ms = (ad.duration_secs * 1000.0).round() as u32;
                if duration_ms > poddur_ms {
                    return Err((
                        format!("{duration_ms} ms does not fit the pod's {poddur_ms} ms"),
                        L::CreativeFiltered,
                    ));
                }
                ad.bid = Some(bid_of(bidder, request, &response, &seat, bid));
                Ok(ExternalAd {
                    id: id.clone(),
                    line_item_id: None,
                    // Deal bids rank ahead of the open auction.
                    tier: if bid.dealid.is_some() {
                        Tier::PrivateMarketplace
                    } else {
                        Tier::Programmatic
                    },
                    value: bid.price,
                    duration_ms,
                    advertiser: bid.adomain.first().cloned().unwrap_or_else(|| id.clone()),
                    categories: bid.cat.clone(),
                    ad,
                })
            })();
            match outcome {
                Ok(ad) => accepted.push(AcceptedBid {
                    seat: seat.clone(),
                    bid: bid.clone(),
                    ad,
                }),
                Err((reason, loss)) => {
                    let mut notice = bid_of(bidder, request, &response, &seat, bid);
                    notice.burl = None;
                    refused.push(RefusedBid {
                        id,
                        reason,
                        loss: Some(loss),
                        notice: Some((notice, bid.lurl.clone())),
                    });
                }
            }
        }
    }
    (accepted, refused)
}

/// The floor `bid` must reach in `imp`, and the loss reason when it does not: its deal's floor for a bid on
/// a deal offered in the request (an unknown deal id is an invalid response), else the imp's.
fn floor_of(imp: &Imp, bid: &Bid, seat: &str) -> Result<(f64, LossReason), (String, LossReason)> {
    let Some(deal_id) = &bid.dealid else {
        return Ok((imp.bidfloor, LossReason::BelowAuctionFloor));
    };
    let deal =
        imp.pmp.iter().flat_map(|p| p.deals.iter()).find(|d| {
            &d.id == deal_id && (d.wseat.is_empty() || d.wseat.iter().any(|w| w == seat))
        });
    match deal {
        Some(d) => Ok((d.bidfloor, LossReason::BelowDealFloor)),
        None => Err((
            format!("deal {deal_id:?} not offered to seat {seat:?}"),
            LossReason::InvalidDealId,
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use crate::ViewerContext;

    use super::*;

    fn request() -> BidRequest {
        let pod = PodRequest {
            channel: "live1".into(),
            session_id: "s1".into(),
            break_id: "b7".into(),
            duration_secs: Some(90.0),
            viewer: ViewerContext {
                viewer_id: Some("v1".into()),
                device: Some("tv".into()),
                country: Some("FR".into()),
                consent: Some(false),
                ..ViewerContext::default()
            },
        };
        let slot = OpenSlot {
            duration_ms: 45_500,
            max_ads: 3,
            blocked_categories: vec!["IAB8-5".into()],
            blocked_advertisers: vec!["carco.example".into()],
        };
        bid_request("auction-1", &pod, &slot, &AuctionSettings::default())
    }

    #[test]
    fn the_request_carries_the_pod_fields_and_no_personal_data_without_consent() {
        let r = request();
        let json = serde_json::to_value(&r).unwrap();
        let video = &json["imp"][0]["video"];
        assert_eq!(video["podid"], "b7");
        assert_eq!(video["poddur"], 45);
        assert_eq!(video["maxseq"], 3);
        assert_eq!(video["maxduration"], 45);
        assert_eq!(video["plcmt"], 1);
        assert_eq!(
            (video["w"].as_u64(), video["h"].as_u64()),
            (Some(1920), Some(1080))
        );
        assert!(video.get("rqddurs").is_none() && video.get("mincpmpersec").is_none());
        assert_eq!(json["app"]["content"]["livestream"], 1);
        assert_eq!(json["app"]["content"]["channel"]["id"], "live1");
        assert_eq!(json["cattax"], 1);
        assert!(json.get("site").is_none());
        assert_eq!(json["regs"]["coppa"], 0);
        assert!(json["source"].get("schain").is_none());
        assert!(json["imp"][0].get("pmp").is_none());
        assert_eq!(json["device"]["geo"]["country"], "FRA");
        assert_eq!(json["device"]["devicetype"], 3);
        assert_eq!(json["device"]["lmt"], 1);
        assert!(json.get("user").is_none(), "{json}");
        assert_eq!(json["bcat"][0], "IAB8-5");
        assert_eq!(json["tmax"], 300);
    }

    #[test]
    fn a_complete_request_carries_privacy_supply_chain_inventory_and_deals() {
        let settings: AuctionSettings = toml::from_str(
            r#"
            required_durations_secs = [15, 30, 60]
            min_cpm_per_sec = 0.5
            player_size = [1280, 720]
            cattax = 2
            [inventory]
            kind = "site"
            id = "site-1"
            page = "https://tv.example/live"
            bundle = "com.example.tv"
            publisher_id = "pub-1"
            publisher_name = "Example TV"
            content_rating = "TV-PG"
            [schain]
            complete = 1
            nodes = [ { asi = "interlude.example", sid = "pub-1" } ]
            [[deals]]
            id = "deal-9"
            floor_cpm = 15.0
            seats = ["dsp1"]
            "#,
        )
        .unwrap();
        let pod = PodRequest {
            channel: "live1".into(),
            session_id: "s1".into(),
            break_id: "b7".into(),
            duration_secs: Some(45.0),
            viewer: ViewerContext {
                viewer_id: Some("v1".into()),
                consent: Some(true),
                content_id: Some("final-2026".into()),
                privacy: crate::PrivacySignals {
                    gdpr: Some(true),
                    tc_string: Some("CPXxRfAPXxRfAAfKABENB".into()),
                    us_privacy: Some("1YNN".into()),
                    gpp: Some("DBABMA~CPXxRfAPXxRfAAfKABENB".into()),
                    gpp_sid: vec![2, 6],
                    coppa: true,
                },
                ..ViewerContext::default()
            },
        };
        let slot = OpenSlot {
            duration_ms: 45_000,
            max_ads: 2,
            blocked_categories: Vec::new(),
            blocked_advertisers: Vec::new(),
        };
        let json = serde_json::to_value(bid_request("a-2", &pod, &slot, &settings)).unwrap();
        let regs = &json["regs"];
        assert_eq!(
            (regs["gdpr"].as_u64(), regs["coppa"].as_u64()),
            (Some(1), Some(1))
        );
        assert_eq!(regs["us_privacy"], "1YNN");
        assert_eq!(regs["gpp"], "DBABMA~CPXxRfAPXxRfAAfKABENB");
        assert_eq!(regs["gpp_sid"], serde_json::json!([2, 6]));
        assert_eq!(json["user"]["consent"], "CPXxRfAPXxRfAAfKABENB");
        assert_eq!(json["user"]["id"], "v1");
        assert_eq!(json["source"]["schain"]["nodes"][0]["sid"], "pub-1");
        assert_eq!(json["source"]["schain"]["nodes"][0]["hp"], 1);
        assert!(json.get("app").is_none());
        let site = &json["site"];
        assert_eq!(site["id"], "site-1");
        assert_eq!(site["page"], "https://tv.example/live");
        assert!(site.get("bundle").is_none(), "a site has no bundle");
        assert_eq!(site["publisher"]["id"], "pub-1");
        assert_eq!(site["content"]["title"], "final-2026");
        assert_eq!(site["content"]["contentrating"], "TV-PG");
        assert_eq!(site["content"]["cattax"], 2);
        let video = &json["imp"][0]["video"];
        assert_eq!(
            video["rqddurs"],
            serde_json::json!([15, 30]),
            "60 s does not fit"
        );
        assert!(video.get("minduration").is_none() && video.get("maxduration").is_none());
        assert_eq!(video["mincpmpersec"], 0.5);
        assert_eq!(
            (video["w"].as_u64(), video["h"].as_u64()),
            (Some(1280), Some(720))
        );
        let deal = &json["imp"][0]["pmp"]["deals"][0];
        assert_eq!(deal["id"], "deal-9");
        assert_eq!(deal["bidfloor"], 15.0);
        assert_eq!(deal["wseat"][0], "dsp1");
    }

    #[test]
    fn deal_bids_meet_their_deals_floor() {
        let mut r = request();
        r.imp[0].pmp = Some(Pmp {
            private_auction: 0,
            deals: vec![crate::supply::Deal {
                id: "d1".into(),
                bidfloor: 0.5,
                bidfloorcur: "USD".into(),
                wseat: vec!["dsp1".into()],
            }],
        });
        let bid = |id: &str, price: f64, deal: Option<&str>| Bid {
            id: id.into(),
            impid: "1".into(),
            price,
            adm: Some(HLS_AD.into()),
            dealid: deal.map(str::to_owned),
            ..Bid::default()
        };
        let response = |seat: &str| BidResponse {
            id: "auction-1".into(),
            seatbid: vec![SeatBid {
                seat: Some(seat.into()),
                bid: vec![
                    bid("deal-cheap", 0.75, Some("d1")),
                    bid("deal-too-cheap", 0.25, Some("d1")),
                    bid("no-such-deal", 20.0, Some("d2")),
                ],
            }],
            ..BidResponse::default()
        };
        let (accepted, refused) = accept_bids("dsp1", &r, response("dsp1"), parse);
        assert_eq!(accepted.len(), 1, "{refused:?}");
        assert_eq!(
            accepted[0].bid.id, "deal-cheap",
            "below the open floor, above the deal's"
        );
        assert_eq!(
            accepted[0].ad.tier,
            Tier::PrivateMarketplace,
            "ahead of the open auction"
        );
        let codes: Vec<u32> = refused
            .iter()
            .filter_map(|r| r.loss.map(LossReason::code))
            .collect();
        assert_eq!(codes, [101, 4]);
        // Another seat may not bid on a deal for dsp1.
        let (accepted, refused) = accept_bids("dsp2", &r, response("dsp2"), parse);
        assert!(accepted.is_empty());
        assert!(
            refused
                .iter()
                .all(|r| r.loss == Some(LossReason::InvalidDealId))
        );
    }

    const HLS_AD: &str = r#"<VAST version="4.2"><Ad id="x"><InLine><AdSystem>dsp</AdSystem><AdTitle>t</AdTitle>
        <Impression><![CDATA[https://dsp.example/imp]]></Impression><Creatives><Creative><Linear>
        <Duration>00:00:15</Duration><MediaFiles><MediaFile delivery="streaming" type="application/x-mpegURL"
        width="1280" height="720"><![CDATA[https://dsp.example/ad.m3u8]]></MediaFile></MediaFiles></Linear>
        </Creative></Creatives></InLine></Ad></VAST>"#;

    /// Markup offering only a progressive MP4 (the usual programmatic creative).
    const MP4_AD: &str = r#"<VAST version="4.2"><Ad id="y"><InLine><AdSystem>dsp</AdSystem><AdTitle>t</AdTitle>
        <Impression><![CDATA[https://dsp.example/imp]]></Impression><Creatives><Creative id="c9">
        <UniversalAdId idRegistry="ad-id.org">DSPX0009000H</UniversalAdId><Linear>
        <Duration>00:00:15</Duration><MediaFiles><MediaFile delivery="progressive" type="video/mp4"
        width="1920" height="1080"><![CDATA[https://dsp.example/ad.mp4]]></MediaFile></MediaFiles></Linear>
        </Creative></Creatives></InLine></Ad></VAST>"#;

    /// A bid whose creative is new to us (an MP4 to condition) is accepted with what conditioning needs: the
    /// stitcher skips it for this pod as `NEW_CREATIVE` and queues it, so the DSP's next bid with it can play.
    #[test]
    fn a_bid_with_an_mp4_creative_carries_its_conditioning_source() {
        let response = BidResponse {
            id: "auction-1".into(),
            seatbid: vec![SeatBid {
                seat: Some("dsp1".into()),
                bid: vec![Bid {
                    id: "mp4".into(),
                    impid: "1".into(),
                    price: 12.5,
                    adm: Some(MP4_AD.into()),
                    ..Bid::default()
                }],
            }],
            ..BidResponse::default()
        };
        let (accepted, refused) = accept_bids("dsp1", &request(), response, parse);
        assert_eq!(accepted.len(), 1, "{refused:?}");
        let ad = &accepted[0].ad.ad;
        assert!(ad.renditions.is_empty());
        let source = ad.source.as_deref().expect("a conditioning source");
        assert_eq!(
            source.universal_ad_id,
            Some(("ad-id.org".to_owned(), "DSPX0009000H".to_owned()))
        );
        assert_eq!(source.files[0].uri, "https://dsp.example/ad.mp4");
        assert!(ad.bid.is_some(), "still billed and notified as a bid");
    }

    fn parse(bid: &Bid) -> Result<interlude_vast::Ad, String> {
        let adm = bid.adm.as_deref().unwrap_or_default();
        let mut v = interlude_vast::parse_vast(adm).map_err(|e| e.to_string())?;
        if v.ads.is_empty() {
            return Err("no ad".into());
        }
        Ok(v.ads.remove(0))
    }

    #[test]
    fn bids_are_checked_against_the_request() {
        let r = request();
        let bid = |id: &str, price: f64, cat: &[&str], adomain: &[&str]| Bid {
            id: id.into(),
            impid: "1".into(),
            price,
            adm: Some(HLS_AD.into()),
            adomain: adomain.iter().map(|s| s.to_string()).collect(),
            cat: cat.iter().map(|s| s.to_string()).collect(),
            ..Bid::default()
        };
        let response = BidResponse {
            id: "auction-1".into(),
            seatbid: vec![SeatBid {
                seat: Some("dsp1".into()),
                bid: vec![
                    bid("ok", 12.5, &["IAB19"], &["shoes.example"]),
                    bid("cheap", 0.5, &[], &[]),
                    bid("beer", 20.0, &["IAB8-5"], &[]),
                    bid("rival", 20.0, &[], &["carco.example"]),
                    Bid {
                        adm: None,
                        ..bid("nomarkup", 9.0, &[], &[])
                    },
                ],
            }],
            ..BidResponse::default()
        };
        let (accepted, refused) = accept_bids("dsp1", &r, response, parse);
        assert_eq!(accepted.len(), 1, "{refused:?}");
        let ad = &accepted[0].ad;
        assert_eq!(ad.id, "bid:dsp1:ok");
        assert_eq!(ad.duration_ms, 15_000);
        assert_eq!(ad.advertiser, "shoes.example");
        assert_eq!(ad.tier, Tier::Programmatic);
        let reasons: Vec<&str> = refused.iter().map(|r| r.reason.as_str()).collect();
        assert!(reasons[0].contains("below the floor"), "{reasons:?}");
        assert!(reasons[1].contains("blocked category"), "{reasons:?}");
        assert!(reasons[2].contains("blocked advertiser"), "{reasons:?}");
        assert!(reasons[3].contains("no adm"), "{reasons:?}");
        // Each with the OpenRTB 2.6 loss reason code its bidder is told, and its own bid's identity.
        let codes: Vec<u32> = refused
            .iter()
            .map(|r| r.loss.map_or(0, LossReason::code))
            .collect();
        assert_eq!(codes, [100, 209, 205, 7]);
        let (cheap, _) = refused[0].notice.clone().unwrap();
        assert_eq!(
            (
                cheap.seat.as_str(),
                cheap.bid_id.as_str(),
                cheap.imp_id.as_str()
            ),
            ("dsp1", "cheap", "1")
        );
        assert_eq!(cheap.burl, None, "a refused bid bills nothing");
        let won = accepted[0].ad.ad.bid.clone().unwrap();
        assert_eq!((won.bid_id.as_str(), won.price), ("ok", 12.5));

        let wrong = BidResponse {
            id: "other".into(),
            seatbid: vec![SeatBid {
                seat: None,
                bid: vec![bid("ok", 12.5, &[], &[])],
            }],
            ..BidResponse::default()
        };
        let (accepted, refused) = accept_bids("dsp2", &r, wrong, parse);
        assert!(accepted.is_empty());
        assert_eq!(refused[0].id, "bid:dsp2:ok");
        assert_eq!(refused[0].loss.map(LossReason::code), Some(5));
    }
}
