//! What the outbox fires: a [`Pixel`] is one URL template of one ad instance for one event, with the
//! [`PixelContext`] its macros need.
//!
//! The template is kept as the third party wrote it (macros unexpanded): the deduplication key is
//! (`ad_instance_id`, `event`, `url_template`), so a beacon retried by a player or a batch replayed by the
//! collector enqueues nothing new, and `[TIMESTAMP]`/`[CACHEBUSTING]` are filled when the URL is fired
//! ([`crate::expand`]), as VAST 4.3 §6 asks ("the date and time at which the URI using this macro is accessed").
//!
//! Viewer data (user agent, address, player identifier) is kept only when the context says consent allows
//! sharing it: [`Pixel::minimised`] drops it otherwise, before anything is written to the queue.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The event a pixel reports: a VAST tracking event (VAST 4.2 §3.14.1), `<Impression>`, `<ClickTracking>`,
/// `<Error>`, or an OpenRTB notice (2.6 §3.2.10: `nurl` win, `burl` billing, `lurl` loss).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PixelEvent {
    /// `<Impression>`.
    Impression,
    /// `start`.
    Start,
    /// `firstQuartile`.
    FirstQuartile,
    /// `midpoint`.
    Midpoint,
    /// `thirdQuartile`.
    ThirdQuartile,
    /// `complete`.
    Complete,
    /// `<ClickTracking>`.
    Click,
    /// `<Error>` (with `[ERRORCODE]`).
    Error,
    /// OpenRTB win notice.
    Nurl,
    /// OpenRTB billing notice.
    Burl,
    /// OpenRTB loss notice (with `${AUCTION_LOSS}`).
    Lurl,
}

impl PixelEvent {
    /// Every event.
    pub const ALL: [PixelEvent; 11] = [
        PixelEvent::Impression,
        PixelEvent::Start,
        PixelEvent::FirstQuartile,
        PixelEvent::Midpoint,
        PixelEvent::ThirdQuartile,
        PixelEvent::Complete,
        PixelEvent::Click,
        PixelEvent::Error,
        PixelEvent::Nurl,
        PixelEvent::Burl,
        PixelEvent::Lurl,
    ];

    /// The name as VAST and OpenRTB spell it (also the `event` label of the metrics).
    pub const fn as_str(self) -> &'static str {
        match self {
            PixelEvent::Impression => "impression",
            PixelEvent::Start => "start",
            PixelEvent::FirstQuartile => "firstQuartile",
            PixelEvent::Midpoint => "midpoint",
            PixelEvent::ThirdQuartile => "thirdQuartile",
            PixelEvent::Complete => "complete",
            PixelEvent::Click => "click",
            PixelEvent::Error => "error",
            PixelEvent::Nurl => "nurl",
            PixelEvent::Burl => "burl",
            PixelEvent::Lurl => "lurl",
        }
    }
}

impl std::fmt::Display for PixelEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who decided to fire: the `[SERVERSIDE]` macro (IAB VAST 4.x macro list).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerSide {
    /// `1`: the server fires on behalf of a client that told it to (a player's beacon, an SGAI report).
    OnBehalfOfClient,
    /// `2`: the server fires on its own decision (SSAI counting from segment delivery, auction notices).
    #[default]
    OwnDecision,
}

impl ServerSide {
    /// The macro value.
    pub const fn value(self) -> &'static str {
        match self {
            ServerSide::OnBehalfOfClient => "1",
            ServerSide::OwnDecision => "2",
        }
    }
}

/// `[BREAKPOSITION]` (IAB VAST 4.x macro list).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakPosition {
    /// `1`.
    PreRoll,
    /// `2`.
    MidRoll,
    /// `3`.
    PostRoll,
    /// `4`.
    Standalone,
    /// `0`: none of the above.
    Other,
}

impl BreakPosition {
    /// The macro value.
    pub const fn value(self) -> &'static str {
        match self {
            BreakPosition::PreRoll => "1",
            BreakPosition::MidRoll => "2",
            BreakPosition::PostRoll => "3",
            BreakPosition::Standalone => "4",
            BreakPosition::Other => "0",
        }
    }
}

/// The viewer's device, forwarded (as `X-Device-*` headers and `[DEVICEUA]`/`[DEVICEIP]`) only when `share`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Device {
    /// Whether the viewer's consent allows passing the user agent and address to the third party (the
    /// caller's reading of its consent decision). `false` drops the three fields below before enqueueing.
    pub share: bool,
    /// The viewer's `User-Agent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// The viewer's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpAddr>,
    /// The player and its VAST client, as `[CLIENTUA]` wants them (`MyPlayer/7.1 MyPlayerVastPlugin/1.1.2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub player: Option<String>,
}

/// The auction a notice belongs to: the OpenRTB 2.6 §4.4 substitution macros. Unknown values are replaced by
/// nothing, as §4.4 says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Auction {
    /// `${AUCTION_ID}`: `BidRequest.id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `${AUCTION_BID_ID}`: `BidResponse.bidid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bid_id: Option<String>,
    /// `${AUCTION_IMP_ID}`: `imp.id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imp_id: Option<String>,
    /// `${AUCTION_SEAT_ID}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seat_id: Option<String>,
    /// `${AUCTION_AD_ID}`: `bid.adid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ad_id: Option<String>,
    /// `${AUCTION_PRICE}`: clearing price in the bid's currency and units, already formatted (integer math is
    /// the caller's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<String>,
    /// `${AUCTION_CURRENCY}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// `${AUCTION_MBR}`: clearing price / bid price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mbr: Option<String>,
    /// `${AUCTION_LOSS}`: loss reason code (OpenRTB 3.0 list, e.g. 102 lost to a higher bid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<u32>,
    /// `${AUCTION_MIN_TO_WIN}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_to_win: Option<String>,
    /// `${AUCTION_MULTIPLIER}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiplier: Option<String>,
}

/// What the macros of one pixel need. Everything is optional: what is unknown is left to the unfilled-macro
/// policy ([`crate::UnfilledMacros`]) for VAST macros and replaced by nothing for OpenRTB ones.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PixelContext {
    /// When the event happened, in milliseconds since the epoch (`${AUCTION_IMP_TS}`); `[TIMESTAMP]` is the time
    /// of firing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_time_ms: Option<u64>,
    /// Zone of `[TIMESTAMP]`, in minutes east of UTC.
    #[serde(default)]
    pub utc_offset_minutes: i32,
    /// `[SERVERSIDE]`.
    #[serde(default)]
    pub server_side: ServerSide,
    /// `[CONTENTPLAYHEAD]`, milliseconds into the content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_playhead_ms: Option<u64>,
    /// `[MEDIAPLAYHEAD]`, milliseconds into the content (its VAST 4.1+ name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_playhead_ms: Option<u64>,
    /// `[ADPLAYHEAD]`, milliseconds into the ad.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ad_playhead_ms: Option<u64>,
    /// `[ADSERVINGID]`: the ad's `<AdServingId>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ad_serving_id: Option<String>,
    /// `[ADCOUNT]`: InLine ads played in this chain, this one included (1 for a lone ad).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ad_count: Option<u32>,
    /// `[PODSEQUENCE]`: the `sequence` attribute of the `<Ad>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_sequence: Option<u32>,
    /// `[BREAKPOSITION]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub break_position: Option<BreakPosition>,
    /// `[ERRORCODE]`: the VAST error code of an `<Error>` pixel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<u16>,
    /// `[REASON]`: the reason code of the URI (`verificationNotExecuted`), and for an `lurl` the loss reason
    /// when `auction.loss` is unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<u32>,
    /// The viewer's device and whether it may be shared.
    #[serde(default)]
    pub device: Device,
    /// The auction, for OpenRTB notices (and VAST from a winning bid's `adm`, which may carry the same macros).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auction: Option<Auction>,
    /// Other IAB macros by name without brackets (`GDPRCONSENT`, `UNIVERSALADID`, …), values unencoded.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub macros: BTreeMap<String, String>,
}

/// IAB macros that describe the viewer's device: dropped from [`PixelContext::macros`] without consent.
pub(crate) const DEVICE_MACROS: &[&str] = &[
    "DEVICEUA", "DEVICEIP", "IFA", "IFATYPE", "LATLONG", "CLIENTUA",
];

/// One URL to fire for one event of one ad instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pixel {
    /// The ad instance (one ad in one pod for one viewer), as in the event contract.
    pub ad_instance_id: String,
    /// The event.
    pub event: PixelEvent,
    /// The URL as the third party wrote it, macros unexpanded.
    pub url_template: String,
    /// What the macros need.
    #[serde(default)]
    pub context: PixelContext,
}

/// The deduplication key: SHA-256 of (`ad_instance_id`, `event`, `url_template`), fields length-prefixed so
/// that no two triples share an encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DedupKey(pub [u8; 32]);

impl Pixel {
    /// A pixel with an empty context.
    pub fn new(
        ad_instance_id: impl Into<String>,
        event: PixelEvent,
        url_template: impl Into<String>,
    ) -> Pixel {
        Pixel {
            ad_instance_id: ad_instance_id.into(),
            event,
            url_template: url_template.into(),
            context: PixelContext::default(),
        }
    }

    /// The same pixel with `context`.
    pub fn with_context(mut self, context: PixelContext) -> Pixel {
        self.context = context;
        self
    }

    /// The deduplication key.
    pub fn dedup_key(&self) -> DedupKey {
        let mut hash = Sha256::new();
        for field in [
            self.ad_instance_id.as_bytes(),
            self.event.as_str().as_bytes(),
            self.url_template.as_bytes(),
        ] {
            hash.update((field.len() as u64).to_be_bytes());
            hash.update(field);
        }
        DedupKey(hash.finalize().into())
    }

    /// The pixel without viewer data its consent does not allow to share: what the queue may hold.
    pub fn minimised(mut self) -> Pixel {
        if !self.context.device.share {
            self.strip_device();
        }
        self
    }

    /// The pixel without any viewer data, whatever the consent: what a dead letter keeps.
    pub fn without_device(mut self) -> Pixel {
        self.strip_device();
        self
    }

    fn strip_device(&mut self) {
        let device = &mut self.context.device;
        device.user_agent = None;
        device.ip = None;
        device.player = None;
        self.context
            .macros
            .retain(|name, _| !DEVICE_MACROS.contains(&name.as_str()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedup_key_depends_on_the_three_fields_only() {
        let a = Pixel::new("ai-1", PixelEvent::Impression, "https://t/i");
        let mut b = a.clone();
        b.context.ad_count = Some(3);
        assert_eq!(a.dedup_key(), b.dedup_key());
        let c = Pixel::new("ai-1", PixelEvent::Start, "https://t/i");
        assert_ne!(a.dedup_key(), c.dedup_key());
        // Length prefixes: moving a character from one field to the next changes the key.
        let d = Pixel::new("ai-", PixelEvent::Impression, "1https://t/i");
        assert_ne!(a.dedup_key(), d.dedup_key());
    }

    #[test]
    fn minimised_drops_device_data_without_consent() {
        let mut p = Pixel::new("ai", PixelEvent::Impression, "https://t/");
        p.context.device = Device {
            share: false,
            user_agent: Some("UA".into()),
            ip: Some("203.0.113.9".parse().expect("ip")),
            player: Some("P/1".into()),
        };
        p.context
            .macros
            .insert("DEVICEIP".into(), "203.0.113.9".into());
        p.context.macros.insert("GDPRCONSENT".into(), "CO".into());
        let m = p.clone().minimised();
        assert_eq!(m.context.device.user_agent, None);
        assert_eq!(m.context.device.ip, None);
        assert_eq!(m.context.device.player, None);
        assert_eq!(m.context.macros.len(), 1);
        p.context.device.share = true;
        assert_eq!(p.clone().minimised(), p);
        assert_eq!(p.without_device().context.device.ip, None);
    }

    #[test]
    fn events_are_spelled_as_vast_and_openrtb_spell_them() {
        let names: Vec<&str> = PixelEvent::ALL.iter().map(|e| e.as_str()).collect();
        assert!(names.contains(&"firstQuartile"));
        for e in PixelEvent::ALL {
            let json = serde_json::to_string(&e).expect("json");
            assert_eq!(json, format!("\"{}\"", e.as_str()));
        }
    }
}
