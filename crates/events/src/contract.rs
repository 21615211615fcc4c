//! The ad event data contract, version [`SCHEMA_VERSION`]: what every producer (stitcher, players, third
//! parties) sends and every consumer (billing, reporting, pacing) reads. Documented in `docs/events.md`; the
//! JSON Schema in `docs/events.schema.json` is generated from these types, and a test fails when a change would
//! break an existing consumer (a field removed or retyped, an enum value removed).
//!
//! Event names follow VAST 4.2 §3.14.1 tracking events; error codes are VAST's (§2.3.6). Counting rules (an
//! impression is "begin to render", client and server reports of one ad instance are one impression) follow the
//! IAB/MRC guidelines summarised in DOMAIN.md.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The contract version. Additive changes (new optional fields, new enum values) keep the major version; a
/// breaking change needs a new major version and a migration for consumers.
pub const SCHEMA_VERSION: &str = "1.1";

/// What happened.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum EventType {
    /// The ad began to render (the billable impression).
    Impression,
    /// Playback of the creative started.
    Start,
    /// 25 % played.
    FirstQuartile,
    /// 50 % played.
    Midpoint,
    /// 75 % played.
    ThirdQuartile,
    /// Played to the end.
    Complete,
    /// The viewer clicked through.
    Click,
    /// Playback failed; `error_code` says why.
    Error,
    /// The viewer paused.
    Pause,
    /// The viewer resumed.
    Resume,
    /// The viewer muted.
    Mute,
    /// The viewer unmuted.
    Unmute,
}

impl EventType {
    /// Every event type, in contract order.
    pub const ALL: [EventType; 12] = [
        EventType::Impression,
        EventType::Start,
        EventType::FirstQuartile,
        EventType::Midpoint,
        EventType::ThirdQuartile,
        EventType::Complete,
        EventType::Click,
        EventType::Error,
        EventType::Pause,
        EventType::Resume,
        EventType::Mute,
        EventType::Unmute,
    ];

    /// The VAST tracking event name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Impression => "impression",
            EventType::Start => "start",
            EventType::FirstQuartile => "firstQuartile",
            EventType::Midpoint => "midpoint",
            EventType::ThirdQuartile => "thirdQuartile",
            EventType::Complete => "complete",
            EventType::Click => "click",
            EventType::Error => "error",
            EventType::Pause => "pause",
            EventType::Resume => "resume",
            EventType::Mute => "mute",
            EventType::Unmute => "unmute",
        }
    }

    /// The type named `name` (VAST spelling).
    pub fn parse(name: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// A compact code for binary encodings and token payloads; stable across versions.
    pub fn code(self) -> u8 {
        match self {
            EventType::Impression => 0,
            EventType::Start => 1,
            EventType::FirstQuartile => 2,
            EventType::Midpoint => 3,
            EventType::ThirdQuartile => 4,
            EventType::Complete => 5,
            EventType::Click => 6,
            EventType::Error => 7,
            EventType::Pause => 8,
            EventType::Resume => 9,
            EventType::Mute => 10,
            EventType::Unmute => 11,
        }
    }

    /// The type with compact code `code`.
    pub fn from_code(code: u8) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.code() == code)
    }
}

/// Who reported the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventSource {
    /// The stitcher, when a session fetched the ad segment the event stands for.
    ServerSide,
    /// The player, reporting itself.
    ClientSide,
    /// A third party (verification vendor, SSP) relaying an event.
    ThirdParty,
}

/// The viewer's consent as the session recorded it (IAB TCF / US privacy signals reduced to what we act on).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentFlags {
    /// Whether the pseudonymous viewer id may be stored (frequency capping across sessions).
    pub store_viewer_id: bool,
    /// Whether the event may be used for personalised targeting and audience building.
    pub personalisation: bool,
    /// Whether the viewer opted out of the sale/sharing of personal data (US state laws).
    pub opt_out_sale: bool,
}

/// One ad event, as stored in the event log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AdEvent {
    /// Contract version the producer wrote ([`SCHEMA_VERSION`]).
    pub schema_version: String,
    /// Unique per report (a retry of the same report keeps it): idempotency key of ingestion.
    pub event_id: String,
    /// One ad in one pod for one viewer: with `event_type`, the billing deduplication key.
    pub ad_instance_id: String,
    /// What happened.
    pub event_type: EventType,
    /// VAST error code (e.g. 400 linear error, 402 timeout of media file URI), for `error` events only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<u16>,
    /// Who reported it.
    pub source: EventSource,
    /// When it happened, by the reporter's clock (event time).
    pub occurred_at: DateTime<Utc>,
    /// When the collector received it (processing time).
    pub received_at: DateTime<Utc>,
    /// The stitcher session.
    pub session_id: String,
    /// Pseudonymous viewer id; absent without consent to store it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub viewer_id: Option<String>,
    /// The channel.
    pub channel: String,
    /// The live event (match, concert) the break belongs to, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live_event_id: Option<String>,
    /// The break (avail).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub break_id: Option<String>,
    /// Campaign, when the ad came from the decision engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign_id: Option<String>,
    /// Line item, when the ad came from the decision engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line_item_id: Option<String>,
    /// Creative.
    pub creative_id: String,
    /// Device class (`tv`, `mobile`, `desktop`, `tablet`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// ISO 3166-1 alpha-2 country: geography is kept coarse on purpose (data minimisation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// ISO 3166-2 subdivision (region/state), when consented and known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Consent as recorded for the session.
    #[serde(default)]
    pub consent: ConsentFlags,
    /// The creative's duration in milliseconds, when the reporter knows it (the stitcher does): lets validation
    /// reject quartiles reported faster than the ad can play.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ad_duration_ms: Option<u32>,
    /// For a programmatic ad, the bid it came from: what demand reports group impressions and spend by.
    /// Only a producer trusted with `server_side` events may send it (it carries a price).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub demand: Option<Demand>,
}

/// The winning bid behind a programmatic ad (OpenRTB 2.6 §3.2.1 `seat`, §3.2.11 `dealid`, §3.2.12 `price`).
/// Added in contract 1.1; optional, so 1.0 producers and consumers are unaffected.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Demand {
    /// The bidder (DSP) as configured here (`[[decisioning.bidders]] name`).
    pub bidder: String,
    /// The seat that bid (`SeatBid.seat`; the bidder's name when its response names none).
    pub seat: String,
    /// The private-marketplace deal the bid was for (`Bid.dealid`); none in the open auction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deal_id: Option<String>,
    /// The clearing price, CPM in millionths of `currency` (first-price: the bid's own price).
    pub price_cpm_micros: u64,
    /// ISO 4217.
    pub currency: String,
}

/// The contract's JSON Schema, as written to `docs/events.schema.json`.
pub fn json_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(AdEvent);
    serde_json::to_value(schema).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_and_codes_round_trip() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
            assert_eq!(EventType::from_code(t.code()), Some(t));
            let json = serde_json::to_string(&t).unwrap_or_default();
            assert_eq!(
                json,
                format!("\"{}\"", t.as_str()),
                "serde uses the VAST name"
            );
        }
        assert_eq!(EventType::parse("creativeView"), None);
    }
}

/// What a server firing a beacon on a viewer's behalf knows of it: the stitcher, when the player fetches the
/// ad segment the event stands for.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerSideReport {
    /// The ad instance (one ad in one pod for one viewer).
    pub ad_instance_id: String,
    /// The event.
    pub event_type: EventType,
    /// The session.
    pub session_id: String,
    /// The channel.
    pub channel: String,
    /// The break.
    pub break_id: String,
    /// The creative.
    pub creative_id: String,
    /// The line item, when known.
    pub line_item_id: Option<String>,
    /// When the triggering request arrived.
    pub occurred_at: DateTime<Utc>,
    /// The session's pseudonymous viewer id (present only with consent to store it).
    pub viewer_id: Option<String>,
    /// The session's consent.
    pub consent: ConsentFlags,
    /// The winning bid, for a programmatic ad.
    pub demand: Option<Demand>,
}

impl AdEvent {
    /// The event a server-side beacon reports. Its id is deterministic (`ss-{instance}-{type}`): a retried
    /// segment fetch is the same report, deduplicated as a retry.
    pub fn server_side(report: ServerSideReport) -> AdEvent {
        AdEvent {
            schema_version: SCHEMA_VERSION.to_owned(),
            event_id: format!(
                "ss-{}-{}",
                report.ad_instance_id,
                report.event_type.as_str()
            ),
            ad_instance_id: report.ad_instance_id,
            event_type: report.event_type,
            error_code: None,
            source: EventSource::ServerSide,
            occurred_at: report.occurred_at,
            received_at: report.occurred_at,
            session_id: report.session_id,
            viewer_id: report.viewer_id,
            channel: report.channel,
            live_event_id: None,
            break_id: Some(report.break_id),
            campaign_id: None,
            line_item_id: report.line_item_id,
            creative_id: report.creative_id,
            device: None,
            country: None,
            region: None,
            consent: report.consent,
            ad_duration_ms: None,
            demand: report.demand,
        }
    }

    /// The event a tracking pixel fire stands for: `claims` from the verified token, `event_id` derived from
    /// the token (so every fire of the same URL is the same report), received `now`.
    pub fn from_token(claims: crate::TokenClaims, event_id: String, now: DateTime<Utc>) -> AdEvent {
        AdEvent {
            schema_version: SCHEMA_VERSION.to_owned(),
            event_id,
            ad_instance_id: claims.ad_instance_id,
            event_type: claims.event_type,
            // VAST 900, "undefined error": a pixel says an error happened, not which.
            error_code: (claims.event_type == EventType::Error).then_some(900),
            source: EventSource::ClientSide,
            occurred_at: now,
            received_at: now,
            session_id: claims.session_id,
            viewer_id: None,
            channel: claims.channel,
            live_event_id: None,
            break_id: None,
            campaign_id: None,
            line_item_id: claims.line_item_id,
            creative_id: claims.creative_id,
            device: None,
            country: None,
            region: None,
            consent: ConsentFlags::default(),
            ad_duration_ms: None,
            demand: claims.demand,
        }
    }
}
