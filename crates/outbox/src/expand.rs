//! From a stored [`Pixel`] to the request that fires it: VAST macros (through `interlude_vast::macros`,
//! RFC 3986 encoding), OpenRTB 2.6 §4.4 substitution macros (`${AUCTION_PRICE}` …, implemented here: the VAST
//! crate knows only VAST's), and the `X-Device-*` headers of VAST 4.3 §1.1.3.
//!
//! Pure: the time and the random cachebuster are parameters ([`Firing`]).
//!
//! Consent: without it ([`crate::Device::share`] false) no header carries the viewer's user agent or address,
//! `[DEVICEUA]` and `[DEVICEIP]` become `-2` ("value is known, but information can't be shared because of
//! policy", VAST 4.3 §6.1), and `[CLIENTUA]` names no player (`unknown <vast_client>`).

use std::time::SystemTime;

use interlude_vast::Time;
use interlude_vast::macros::{self, Macro, MacroValues, Unfilled};

use crate::config::UnfilledMacros;
use crate::pixel::{Auction, Pixel};

/// What varies per firing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Firing {
    /// Now: `[TIMESTAMP]`.
    pub at: SystemTime,
    /// A random number: `[CACHEBUSTING]` (its last 8 decimal digits).
    pub cachebuster: u32,
}

/// Settings of expansion, from [`crate::OutboxConfig`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expansion {
    /// Known VAST macros with no value.
    pub unfilled: UnfilledMacros,
    /// `[SERVERUA]`.
    pub server_ua: String,
    /// The client part of `[CLIENTUA]`.
    pub vast_client: String,
    /// Whether to also send `X-Forwarded-For`.
    pub x_forwarded_for: bool,
}

impl Expansion {
    /// The settings of `config`.
    pub fn from_config(config: &crate::OutboxConfig) -> Expansion {
        Expansion {
            unfilled: config.unfilled_macros,
            server_ua: config.server_ua.clone(),
            vast_client: config.vast_client.clone(),
            x_forwarded_for: config.x_forwarded_for,
        }
    }
}

/// The request that fires a pixel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fire {
    /// The URL, macros expanded.
    pub url: String,
    /// Headers to send (name, value).
    pub headers: Vec<(&'static str, String)>,
}

/// `-2`: withheld by policy (VAST 4.3 §6.1).
const WITHHELD: &str = "-2";

/// Expands `pixel` for one firing.
pub fn expand(pixel: &Pixel, firing: Firing, settings: &Expansion) -> Fire {
    let ctx = &pixel.context;
    let device = &ctx.device;
    let mut v = MacroValues::new();
    // Extra macros first: the ones the context knows below take precedence.
    for (name, value) in &ctx.macros {
        if let Some(m) = Macro::from_name(name) {
            if device.share || !crate::pixel::DEVICE_MACROS.contains(&name.as_str()) {
                v.set(m, value.as_str());
            }
        }
    }
    v.set_timestamp(firing.at, ctx.utc_offset_minutes)
        .set_cachebusting(firing.cachebuster)
        .set(Macro::ServerSide, ctx.server_side.value())
        .set(Macro::ServerUa, settings.server_ua.as_str());
    let player = device
        .player
        .as_deref()
        .filter(|_| device.share)
        .unwrap_or("unknown");
    v.set(
        Macro::ClientUa,
        format!("{player} {}", settings.vast_client).trim_end(),
    );
    if device.share {
        if let Some(ua) = &device.user_agent {
            v.set(Macro::DeviceUa, ua.as_str());
        }
        if let Some(ip) = device.ip {
            v.set(Macro::DeviceIp, ip.to_string());
        }
    } else {
        v.set(Macro::DeviceUa, WITHHELD)
            .set(Macro::DeviceIp, WITHHELD);
    }
    for (m, ms) in [
        (Macro::ContentPlayhead, ctx.content_playhead_ms),
        (Macro::MediaPlayhead, ctx.media_playhead_ms),
        (Macro::AdPlayhead, ctx.ad_playhead_ms),
    ] {
        if let Some(ms) = ms {
            v.set_time(m, Time::from_millis(ms));
        }
    }
    if let Some(id) = &ctx.ad_serving_id {
        v.set(Macro::AdServingId, id.as_str());
    }
    for (m, n) in [
        (Macro::AdCount, ctx.ad_count),
        (Macro::PodSequence, ctx.pod_sequence),
        (Macro::Reason, ctx.reason),
    ] {
        if let Some(n) = n {
            v.set(m, n.to_string());
        }
    }
    if let Some(p) = ctx.break_position {
        v.set(Macro::BreakPosition, p.value());
    }
    if let Some(code) = ctx.error_code {
        v.set(Macro::ErrorCode, code.to_string());
    }
    let unfilled = match settings.unfilled {
        UnfilledMacros::Unknown => Unfilled::NotSupported, // `-1` in the VAST crate's naming.
        UnfilledMacros::Keep => Unfilled::Keep,
    };
    let url = expand_openrtb(
        &pixel.url_template,
        ctx.auction.as_ref(),
        ctx.event_time_ms,
        ctx.reason,
    );
    let url = macros::expand(&url, &v, unfilled);
    let mut headers = Vec::new();
    if device.share {
        if let Some(ua) = &device.user_agent {
            headers.push(("x-device-user-agent", ua.clone()));
        }
        if let Some(ip) = device.ip {
            headers.push(("x-device-ip", ip.to_string()));
            if settings.x_forwarded_for {
                headers.push(("x-forwarded-for", ip.to_string()));
            }
        }
    }
    Fire { url, headers }
}

/// The OpenRTB 2.6 §4.4 macros this crate fills.
const OPENRTB: &[&str] = &[
    "AUCTION_ID",
    "AUCTION_BID_ID",
    "AUCTION_IMP_ID",
    "AUCTION_SEAT_ID",
    "AUCTION_AD_ID",
    "AUCTION_PRICE",
    "AUCTION_CURRENCY",
    "AUCTION_MBR",
    "AUCTION_LOSS",
    "AUCTION_MIN_TO_WIN",
    "AUCTION_MULTIPLIER",
    "AUCTION_IMP_TS",
];

fn openrtb_value(
    name: &str,
    auction: Option<&Auction>,
    event_time_ms: Option<u64>,
    reason: Option<u32>,
) -> Option<String> {
    let a = auction;
    let text = |f: fn(&Auction) -> &Option<String>| a.and_then(|a| f(a).clone());
    match name {
        "AUCTION_ID" => text(|a| &a.id),
        "AUCTION_BID_ID" => text(|a| &a.bid_id),
        "AUCTION_IMP_ID" => text(|a| &a.imp_id),
        "AUCTION_SEAT_ID" => text(|a| &a.seat_id),
        "AUCTION_AD_ID" => text(|a| &a.ad_id),
        "AUCTION_PRICE" => text(|a| &a.price),
        "AUCTION_CURRENCY" => text(|a| &a.currency),
        "AUCTION_MBR" => text(|a| &a.mbr),
        "AUCTION_MIN_TO_WIN" => text(|a| &a.min_to_win),
        "AUCTION_MULTIPLIER" => text(|a| &a.multiplier),
        "AUCTION_LOSS" => a.and_then(|a| a.loss).or(reason).map(|c| c.to_string()),
        "AUCTION_IMP_TS" => event_time_ms.map(|t| t.to_string()),
        _ => None,
    }
}

/// Replaces `${NAME}` for the OpenRTB 2.6 §4.4 names (`AUCTION_ID` … `AUCTION_IMP_TS`): the value
/// percent-encoded (ids are the bidder's and may hold any character), nothing when unknown (§4.4: "the macro
/// will simply be removed"). `${NAME:ALG}` forms (encoded values, algorithms agreed between the parties) and
/// unknown names are left as they are.
pub fn expand_openrtb(
    template: &str,
    auction: Option<&Auction>,
    event_time_ms: Option<u64>,
    reason: Option<u32>,
) -> String {
    if !template.contains("${") {
        return template.to_owned();
    }
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find("${") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let name_len = after
            .bytes()
            .take_while(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_')
            .count();
        let name = &after[..name_len];
        if after[name_len..].starts_with('}') && OPENRTB.contains(&name) {
            if let Some(value) = openrtb_value(name, auction, event_time_ms, reason) {
                out.push_str(&macros::percent_encode(&value));
            }
            rest = &after[name_len + 1..];
        } else {
            out.push_str("${");
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pixel::{BreakPosition, Device, PixelEvent, ServerSide};

    fn settings() -> Expansion {
        Expansion::from_config(&crate::OutboxConfig {
            server_ua: "Interlude/1 (+https://example.invalid)".into(),
            vast_client: "Interlude/1".into(),
            ..crate::OutboxConfig::default()
        })
    }

    fn firing() -> Firing {
        // 2016-01-17T13:15:07.127Z, the IAB macro list's example instant.
        Firing {
            at: macros::system_time_from_millis(1_453_036_507_127),
            cachebuster: 42,
        }
    }

    #[test]
    fn vast_macros_are_filled_from_the_context_and_the_firing() {
        let mut p = Pixel::new(
            "ai",
            PixelEvent::FirstQuartile,
            "https://t.example/q?t=[TIMESTAMP]&cb=[CACHEBUSTING]&ss=[SERVERSIDE]&cp=[CONTENTPLAYHEAD]\
             &mp=[MEDIAPLAYHEAD]&id=[ADSERVINGID]&n=[ADCOUNT]&seq=[PODSEQUENCE]&bp=[BREAKPOSITION]\
             &su=[SERVERUA]&g=[GDPRCONSENT]&x=[UNKNOWNTHING]",
        );
        p.context.utc_offset_minutes = -300;
        p.context.server_side = ServerSide::OnBehalfOfClient;
        p.context.content_playhead_ms = Some(321_123);
        p.context.media_playhead_ms = Some(3_600_000);
        p.context.ad_serving_id = Some("Srv-47ed3bac".into());
        p.context.ad_count = Some(2);
        p.context.pod_sequence = Some(1);
        p.context.break_position = Some(BreakPosition::MidRoll);
        let fire = expand(&p, firing(), &settings());
        assert_eq!(
            fire.url,
            "https://t.example/q?t=2016-01-17T08%3A15%3A07.127-05%3A00&cb=00000042&ss=1&cp=00%3A05%3A21.123\
             &mp=01%3A00%3A00.000&id=Srv-47ed3bac&n=2&seq=1&bp=2\
             &su=Interlude%2F1%20%28%2Bhttps%3A%2F%2Fexample.invalid%29&g=-1&x=[UNKNOWNTHING]"
        );
        assert!(fire.headers.is_empty());
    }

    #[test]
    fn device_data_goes_out_only_with_consent() {
        let template = "https://t/i?ua=[DEVICEUA]&ip=[DEVICEIP]&c=[CLIENTUA]";
        let mut p = Pixel::new("ai", PixelEvent::Impression, template);
        p.context.device = Device {
            share: true,
            user_agent: Some("Mozilla/5.0 (X11; Linux)".into()),
            ip: Some("2001:db8::7".parse().expect("ip")),
            player: Some("MyPlayer/7.1".into()),
        };
        p.context.macros.insert("IFA".into(), "abc".into());
        let fire = expand(&p, firing(), &settings());
        assert_eq!(
            fire.url,
            "https://t/i?ua=Mozilla%2F5.0%20%28X11%3B%20Linux%29&ip=2001%3Adb8%3A%3A7\
             &c=MyPlayer%2F7.1%20Interlude%2F1"
        );
        assert_eq!(
            fire.headers,
            vec![
                ("x-device-user-agent", "Mozilla/5.0 (X11; Linux)".to_owned()),
                ("x-device-ip", "2001:db8::7".to_owned()),
                ("x-forwarded-for", "2001:db8::7".to_owned()),
            ]
        );

        p.context.device.share = false;
        let fire = expand(&p, firing(), &settings());
        assert_eq!(
            fire.url,
            "https://t/i?ua=-2&ip=-2&c=unknown%20Interlude%2F1"
        );
        assert!(fire.headers.is_empty());
        let with_ifa = Pixel::new("ai", PixelEvent::Impression, "https://t/?i=[IFA]")
            .with_context(p.context.clone());
        assert_eq!(
            expand(&with_ifa, firing(), &settings()).url,
            "https://t/?i=-1"
        );
    }

    #[test]
    fn openrtb_macros_are_filled_encoded_or_removed() {
        let mut p = Pixel::new(
            "ai",
            PixelEvent::Lurl,
            "https://dsp.example/l?a=${AUCTION_ID}&b=${AUCTION_BID_ID}&i=${AUCTION_IMP_ID}&p=${AUCTION_PRICE}\
             &l=${AUCTION_LOSS}&c=${AUCTION_CURRENCY}&m=${AUCTION_MIN_TO_WIN}&e=${AUCTION_PRICE:B64}\
             &u=${NOT_A_MACRO}&ts=${AUCTION_IMP_TS}&x=$&y=${",
        );
        p.context.auction = Some(Auction {
            id: Some("req 1&2".into()),
            bid_id: Some("bid-9".into()),
            imp_id: Some("1".into()),
            price: Some("1.25".into()),
            loss: Some(102),
            ..Auction::default()
        });
        p.context.event_time_ms = Some(1_700_000_000_123);
        let fire = expand(&p, firing(), &settings());
        assert_eq!(
            fire.url,
            "https://dsp.example/l?a=req%201%262&b=bid-9&i=1&p=1.25&l=102&c=&m=&e=${AUCTION_PRICE:B64}\
             &u=${NOT_A_MACRO}&ts=1700000000123&x=$&y=${"
        );
    }

    #[test]
    fn error_code_and_lurl_reason() {
        let mut p = Pixel::new(
            "ai",
            PixelEvent::Error,
            "https://e/?c=[ERRORCODE]&r=[REASON]",
        );
        p.context.error_code = Some(402);
        p.context.reason = Some(3);
        assert_eq!(
            expand(&p, firing(), &settings()).url,
            "https://e/?c=402&r=3"
        );
        let mut l = Pixel::new("ai", PixelEvent::Lurl, "https://d/?l=${AUCTION_LOSS}");
        l.context.reason = Some(100);
        assert_eq!(expand(&l, firing(), &settings()).url, "https://d/?l=100");
    }

    #[test]
    fn keep_policy_leaves_unfilled_macros() {
        let p = Pixel::new("ai", PixelEvent::Start, "https://t/?g=[GDPRCONSENT]");
        let s = Expansion {
            unfilled: UnfilledMacros::Keep,
            ..settings()
        };
        assert_eq!(expand(&p, firing(), &s).url, "https://t/?g=[GDPRCONSENT]");
    }
}
