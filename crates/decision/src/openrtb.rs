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

/// Auction settings (the `[decision.auction]` configuration section).
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
}

impl Default for AuctionSettings {
    fn default() -> Self {
        AuctionSettings {
            tmax_ms: 300,
            floor_cpm: 1.0,
            currency: "USD".to_owned(),
            min_ad_secs: 5,
            max_ad_secs: 60,
        }
    }
}

/// `BidRequest` (§3.2.1), the fields this platform sends.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BidRequest {
    pub id: String,
    pub imp: Vec<Imp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app: Option<App>,
    pub device: Device,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<User>,
    pub at: u8,
    pub tmax: u64,
    pub cur: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bcat: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub badv: Vec<String>,
    pub source: Source,
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
}

/// `Video` (§3.2.7) with the 2.6 pod fields.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Video {
    pub mimes: Vec<String>,
    pub minduration: u32,
    pub maxduration: u32,
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
    pub mincpmpersec: f64,
}

/// `App` (§3.2.14).
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct App {
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
    /// 1: live stream.
    pub livestream: u8,
    pub channel: Channel,
}

/// `Channel` (§3.2.23, new in 2.6).
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Channel {
    pub id: String,
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
    pub id: String,
}

/// `Source` (§3.2.2).
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Source {
    /// Transaction id, shared by every bidder's copy of the request.
    pub tid: String,
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
    BidRequest {
        id: id.to_owned(),
        imp: vec![Imp {
            id: "1".to_owned(),
            video: Video {
                mimes: vec!["application/x-mpegURL".to_owned()],
                minduration: settings.min_ad_secs,
                maxduration: settings.max_ad_secs.min(poddur),
                linearity: 1,
                startdelay: -1,
                protocols: vec![3, 6, 7, 8],
                podid: request.break_id.clone(),
                poddur,
                maxseq: u32::try_from(slot.max_ads).unwrap_or(u32::MAX),
                podseq: 0,
                slotinpod: 0,
                mincpmpersec: 0.0,
            },
            bidfloor: settings.floor_cpm,
            bidfloorcur: settings.currency.clone(),
            secure: 1,
        }],
        app: Some(App {
            content: Content {
                id: v.content_id.clone(),
                genre: v.genre.clone(),
                livestream: 1,
                channel: Channel {
                    id: request.channel.clone(),
                },
            },
        }),
        device: Device {
            devicetype: device_type(v.device.as_deref()),
            os: v.platform.clone(),
            geo: v.country.as_deref().map(|c| Geo {
                country: alpha3(c),
                region: v.region.clone(),
            }),
            lmt: u8::from(!consented),
        },
        user: v
            .viewer_id
            .clone()
            .filter(|_| consented)
            .map(|id| User { id }),
        at: 1,
        tmax: settings.tmax_ms,
        cur: vec![settings.currency.clone()],
        bcat: slot.blocked_categories.clone(),
        badv: slot.blocked_advertisers.clone(),
        source: Source { tid: id.to_owned() },
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

/// A bid refused before the pod saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefusedBid {
    /// `bid:<seat>:<bid id>`.
    pub id: String,
    /// Why.
    pub reason: String,
}

/// Checks a bidder's response against the request it answers and turns each acceptable bid into an ad for
/// the pod. `markup` gives a bid's `adm` (VAST) as one InLine ad, wrappers resolved if the caller can.
pub fn accept_bids(
    bidder: &str,
    request: &BidRequest,
    response: BidResponse,
    mut markup: impl FnMut(&Bid) -> Result<interlude_vast::Ad, String>,
) -> (Vec<AcceptedBid>, Vec<RefusedBid>) {
    let (mut accepted, mut refused) = (Vec::new(), Vec::new());
    let currency = request.cur.first().map_or("USD", String::as_str);
    let floor = request.imp.first().map_or(0.0, |i| i.bidfloor);
    let poddur_ms = request.imp.first().map_or(0, |i| i.video.poddur) * 1000;
    for seatbid in response.seatbid {
        let seat = seatbid.seat.clone().unwrap_or_else(|| bidder.to_owned());
        for bid in seatbid.bid {
            let id = format!("bid:{seat}:{}", bid.id);
            let refuse = |reason: String| RefusedBid {
                id: id.clone(),
                reason,
            };
            let outcome = (|| {
                if response.id != request.id {
                    return Err(format!(
                        "answers request {:?}, not {:?}",
                        response.id, request.id
                    ));
                }
                if response.cur.as_deref().is_some_and(|c| c != currency) {
                    return Err(format!("currency {:?}, not {currency}", response.cur));
                }
                if !request.imp.iter().any(|i| i.id == bid.impid) {
                    return Err(format!("unknown impid {:?}", bid.impid));
                }
                if !(bid.price.is_finite() && bid.price >= floor) {
                    return Err(format!("price {} below the floor {floor}", bid.price));
                }
                if let Some(c) = bid.cat.iter().find(|c| request.bcat.contains(c)) {
                    return Err(format!("blocked category {c:?}"));
                }
                if let Some(d) = bid.adomain.iter().find(|d| request.badv.contains(d)) {
                    return Err(format!("blocked advertiser {d:?}"));
                }
                if bid.adm.is_none() {
                    return Err("no adm (markup by nurl is not supported)".to_owned());
                }
                let vast_ad = markup(&bid)?;
                let mut ad = pod_ad_from_vast(&vast_ad).map_err(|e| e.to_string())?;
                ad.bid = Some(WonBid {
                    auction_id: request.id.clone(),
                    seat: seat.clone(),
                    bid_id: bid.id.clone(),
                    imp_id: bid.impid.clone(),
                    response_bid_id: response.bidid.clone(),
                    ad_id: bid.adid.clone(),
                    price: bid.price,
                    currency: currency.to_owned(),
                    burl: bid.burl.clone(),
                });
                let duration_ms = (ad.duration_secs * 1000.0).round() as u32;
                if duration_ms > poddur_ms {
                    return Err(format!(
                        "{duration_ms} ms does not fit the pod's {poddur_ms} ms"
                    ));
                }
                Ok(ExternalAd {
                    id: id.clone(),
                    line_item_id: None,
                    tier: Tier::Programmatic,
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
                    bid,
                    ad,
                }),
                Err(reason) => refused.push(refuse(reason)),
            }
        }
    }
    (accepted, refused)
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
        assert_eq!(json["device"]["geo"]["country"], "FRA");
        assert_eq!(json["device"]["devicetype"], 3);
        assert_eq!(json["device"]["lmt"], 1);
        assert!(json.get("user").is_none(), "{json}");
        assert_eq!(json["bcat"][0], "IAB8-5");
        assert_eq!(json["tmax"], 300);
    }

    const HLS_AD: &str = r#"<VAST version="4.2"><Ad id="x"><InLine><AdSystem>dsp</AdSystem><AdTitle>t</AdTitle>
        <Impression><![CDATA[https://dsp.example/imp]]></Impression><Creatives><Creative><Linear>
        <Duration>00:00:15</Duration><MediaFiles><MediaFile delivery="streaming" type="application/x-mpegURL"
        width="1280" height="720"><![CDATA[https://dsp.example/ad.m3u8]]></MediaFile></MediaFiles></Linear>
        </Creative></Creatives></InLine></Ad></VAST>"#;

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
    }
}
