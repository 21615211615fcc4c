//! Validation of one event before it may be counted: the contract's own rules, the clock checks, and the
//! checks on the sender that only the edge can make (general invalid traffic: bots, data-center ranges). Every
//! refusal is a [`Quarantine`] reason, kept with the event.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::contract::{AdEvent, EventType, SCHEMA_VERSION};

/// Why an event was quarantined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Quarantine {
    /// It does not follow the contract.
    #[error("contract: {detail}")]
    Contract {
        /// What is wrong.
        detail: String,
    },
    /// It claims to have happened in the future beyond the allowed clock skew.
    #[error("occurred {ahead_secs} s in the future")]
    FromTheFuture {
        /// Seconds ahead of the collector's clock.
        ahead_secs: i64,
    },
    /// It is older than the dedup window, so it could no longer be deduplicated.
    #[error("occurred {age_secs} s ago, beyond the dedup window")]
    TooOld {
        /// Its age in seconds.
        age_secs: i64,
    },
    /// Sent by a known bot or crawler (IAB/MRC general invalid traffic).
    #[error("bot user agent matching {pattern:?}")]
    BotUserAgent {
        /// The pattern it matched.
        pattern: String,
    },
    /// A progress event arrived sooner after the ad's start than the ad can play to that point.
    #[error("{event} {elapsed_ms} ms after start, the ad needs {needed_ms} ms")]
    TooFast {
        /// The event.
        event: String,
        /// Milliseconds since the start was reported.
        elapsed_ms: i64,
        /// Milliseconds the ad needs to reach that point, less the slack.
        needed_ms: i64,
    },
    /// A session reported more impressions in one minute than a viewer can watch.
    #[error("session impression {count} within one minute (at most {max})")]
    ImpossibleRate {
        /// The impression's rank within the minute.
        count: u64,
        /// The policy's maximum.
        max: u64,
    },
    /// Sent from a configured data-center range (general invalid traffic).
    #[error("data-center address in {range}")]
    DataCenter {
        /// The range.
        range: String,
    },
}

impl Quarantine {
    /// The reason's stable name (its serde tag): a bounded set, safe as a metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            Quarantine::Contract { .. } => "contract",
            Quarantine::FromTheFuture { .. } => "from_the_future",
            Quarantine::TooOld { .. } => "too_old",
            Quarantine::BotUserAgent { .. } => "bot_user_agent",
            Quarantine::TooFast { .. } => "too_fast",
            Quarantine::ImpossibleRate { .. } => "impossible_rate",
            Quarantine::DataCenter { .. } => "data_center",
        }
    }
}

/// An IPv4 or IPv6 range, `address/prefix`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IpRange {
    base: IpAddr,
    prefix: u8,
}

impl TryFrom<String> for IpRange {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        let (addr, prefix) = text
            .split_once('/')
            .ok_or(format!("{text:?} is not address/prefix"))?;
        let base: IpAddr = addr
            .parse()
            .map_err(|_| format!("{addr:?} is not an IP address"))?;
        let prefix: u8 = prefix
            .parse()
            .map_err(|_| format!("{prefix:?} is not a prefix length"))?;
        let max = if base.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(format!("prefix /{prefix} is longer than {max} bits"));
        }
        Ok(IpRange { base, prefix })
    }
}

impl From<IpRange> for String {
    fn from(r: IpRange) -> String {
        format!("{}/{}", r.base, r.prefix)
    }
}

impl IpRange {
    /// Whether `ip` is in the range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let bits = |ip: IpAddr| -> (u128, u32) {
            match ip {
                IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
                IpAddr::V6(v6) => (u128::from(v6), 128),
            }
        };
        let ((base, width), (addr, addr_width)) = (bits(self.base), bits(ip));
        if width != addr_width {
            return false;
        }
        let shift = width - u32::from(self.prefix);
        shift >= width || (base >> shift) == (addr >> shift)
    }
}

/// The validation rules, from configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// Seconds an event may claim to be ahead of the collector's clock.
    pub max_future_skew_secs: i64,
    /// Hours a billing dedup key is kept; older events are quarantined as too old to deduplicate.
    pub dedup_window_hours: i64,
    /// Minutes of event time the watermark trails the latest event (allowed lateness).
    pub allowed_lateness_mins: i64,
    /// Case-insensitive substrings of user agents of bots and crawlers.
    pub bot_user_agents: Vec<String>,
    /// Data-center address ranges whose traffic is invalid.
    pub data_center_ranges: Vec<IpRange>,
    /// Days per-viewer impression counts (frequency caps) are kept.
    pub frequency_window_days: i64,
    /// Impressions one session can plausibly render in one minute of event time (a live pod of 6 s ads is 10);
    /// more is invalid traffic.
    pub max_session_impressions_per_minute: u64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_future_skew_secs: 300,
            dedup_window_hours: 48,
            allowed_lateness_mins: 5,
            // A seed list in the spirit of the IAB/ABC spiders and bots list (which is licensed, not shipped).
            bot_user_agents: [
                "bot",
                "crawler",
                "spider",
                "headlesschrome",
                "curl/",
                "python-requests",
                "wget",
            ]
            .map(str::to_owned)
            .to_vec(),
            data_center_ranges: Vec::new(),
            max_session_impressions_per_minute: 12,
            frequency_window_days: 30,
        }
    }
}

/// An event with what the collector knew about its sender. User agent and address are used to validate and
/// then forgotten: they are not part of the stored event (data minimisation).
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// The event.
    pub event: AdEvent,
    /// The sender's user agent, for client-side events.
    pub user_agent: Option<String>,
    /// The sender's address, for client-side events.
    pub ip: Option<IpAddr>,
}

/// Validation that needs no state: [`check_event`] and the sender checks of [`edge_check`].
pub fn validate(
    envelope: &Envelope,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Result<(), Quarantine> {
    check_event(&envelope.event, policy, now)?;
    match edge_check(envelope, policy) {
        Some(reason) => Err(reason),
        None => Ok(()),
    }
}

/// The checks on the event itself: the contract ([`contract_check`]) and its time against `now` (not from
/// the future beyond the allowed skew, not older than the dedup window).
pub fn check_event(event: &AdEvent, policy: &Policy, now: DateTime<Utc>) -> Result<(), Quarantine> {
    contract_check(event)?;
    let ahead = (event.occurred_at - now).num_seconds();
    if ahead > policy.max_future_skew_secs {
        return Err(Quarantine::FromTheFuture { ahead_secs: ahead });
    }
    let age = (now - event.occurred_at).num_seconds();
    if age > policy.dedup_window_hours * 3600 {
        return Err(Quarantine::TooOld { age_secs: age });
    }
    Ok(())
}

/// The contract's own rules, independent of time and sender: a `1.x` schema version, the ids present and
/// bounded, an error code on error events only. What `interlude contract diff --events` checks old events
/// against.
pub fn contract_check(event: &AdEvent) -> Result<(), Quarantine> {
    let contract = |detail: &str| Quarantine::Contract {
        detail: detail.to_owned(),
    };
    if !event.schema_version.starts_with("1.") {
        return Err(Quarantine::Contract {
            detail: format!(
                "schema_version {:?} is not {SCHEMA_VERSION}-compatible",
                event.schema_version
            ),
        });
    }
    for (name, value) in [
        ("event_id", &event.event_id),
        ("ad_instance_id", &event.ad_instance_id),
        ("session_id", &event.session_id),
        ("channel", &event.channel),
        ("creative_id", &event.creative_id),
    ] {
        if value.is_empty() || value.len() > 256 {
            return Err(contract(&format!("{name} must be 1 to 256 characters")));
        }
    }
    if let Some(demand) = &event.demand {
        for (name, value) in [
            ("demand.bidder", Some(&demand.bidder)),
            ("demand.seat", Some(&demand.seat)),
            ("demand.deal_id", demand.deal_id.as_ref()),
        ] {
            if value.is_some_and(|v| v.is_empty() || v.len() > 256) {
                return Err(contract(&format!("{name} must be 1 to 256 characters")));
            }
        }
        if demand.currency.len() != 3 || !demand.currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(contract(
                "demand.currency must be an ISO 4217 code (three capitals)",
            ));
        }
    }
    match (event.event_type, event.error_code) {
        (EventType::Error, None) => return Err(contract("error events need error_code")),
        (EventType::Error, Some(code)) if !(100..=999).contains(&code) => {
            return Err(contract("error_code must be a VAST error code (100-999)"));
        }
        (t, Some(_)) if t != EventType::Error => {
            return Err(contract("error_code on a non-error event"));
        }
        _ => {}
    }
    Ok(())
}

/// The checks that need the sender's user agent and address, which are not stored: the collector runs them
/// at the edge and a distributed log carries only their verdict (see [`process_logged`]).
pub fn edge_check(envelope: &Envelope, policy: &Policy) -> Option<Quarantine> {
    if let Some(agent) = &envelope.user_agent {
        if let Some(pattern) = bot_pattern(agent, &policy.bot_user_agents) {
            return Some(Quarantine::BotUserAgent {
                pattern: pattern.clone(),
            });
        }
    }
    let ip = envelope.ip?;
    policy
        .data_center_ranges
        .iter()
        .find(|r| r.contains(ip))
        .map(|range| Quarantine::DataCenter {
            range: String::from(range.clone()),
        })
}

/// The first of `patterns` (in their order) that `agent` contains, ignoring ASCII case. One pass over the
/// agent, allocation-free: a table of the patterns' first two bytes (case-folded and hashed; one-byte
/// patterns in a table of their own) says at which positions a pattern may start, and only there are the
/// patterns compared. A player's user agent matches none, so nearly every byte costs one table look-up — far
/// cheaper than searching the agent once per pattern.
fn bot_pattern<'p>(agent: &str, patterns: &'p [String]) -> Option<&'p String> {
    // The earliest pattern (by index) found so far; an empty pattern is contained in every agent.
    let mut best = patterns.iter().position(|p| p.is_empty());
    let (mut pairs, mut singles) = ([false; 256], [false; 256]);
    let mut any_single = false;
    for p in patterns {
        match p.as_bytes() {
            [] => {}
            [a] => {
                singles[usize::from(fold(*a))] = true;
                any_single = true;
            }
            [a, b, ..] => pairs[usize::from(pair(fold(*a), fold(*b)))] = true,
        }
    }
    let hay = agent.as_bytes();
    let mut next = hay.first().map_or(0, |&b| fold(b));
    for i in 0..hay.len() {
        let here = next;
        next = hay.get(i + 1).map_or(0, |&b| fold(b));
        let maybe =
            pairs[usize::from(pair(here, next))] || (any_single && singles[usize::from(here)]);
        if !maybe {
            continue;
        }
        let rest = &hay[i..];
        let limit = best.unwrap_or(patterns.len());
        if let Some(j) = patterns[..limit].iter().position(|p| {
            rest.get(..p.len())
                .is_some_and(|h| h.eq_ignore_ascii_case(p.as_bytes()))
        }) {
            best = Some(j);
            if j == 0 {
                break;
            }
        }
    }
    best.and_then(|j| patterns.get(j))
}

/// A case fold good enough for a filter: equal ignoring ASCII case implies equal folds (letters differ from
/// their other case in bit 5 only; other bytes must be equal anyway). Distinct bytes may fold together, which
/// costs a comparison, never a miss.
fn fold(b: u8) -> u8 {
    b | 0x20
}

/// The table index of a pattern starting with folded bytes `a`, `b`.
fn pair(a: u8, b: u8) -> u8 {
    a.wrapping_mul(31).wrapping_add(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The definition `bot_pattern` implements: the first pattern whose lowercase form the lowercase agent
    /// contains.
    fn reference<'p>(agent: &str, patterns: &'p [String]) -> Option<&'p String> {
        let agent = agent.to_ascii_lowercase();
        patterns
            .iter()
            .find(|p| agent.contains(&p.to_ascii_lowercase()))
    }

    #[test]
    fn the_first_listed_pattern_wins_wherever_it_occurs() {
        let patterns: Vec<String> = ["spider", "bot", ""].map(str::to_owned).to_vec();
        assert_eq!(
            bot_pattern("a Bot and a SPIDER", &patterns).map(String::as_str),
            Some("spider")
        );
        assert_eq!(
            bot_pattern("AppleCoreMedia/1.0", &patterns[..2]).map(String::as_str),
            None
        );
        assert_eq!(
            bot_pattern("AppleCoreMedia/1.0", &patterns).map(String::as_str),
            Some("")
        );
    }

    proptest! {
        #[test]
        fn bot_pattern_is_case_insensitive_containment(
            agent in "[aAbB/ é.]{0,40}",
            patterns in proptest::collection::vec("[aAbBé/]{0,4}", 0..8),
        ) {
            prop_assert_eq!(bot_pattern(&agent, &patterns), reference(&agent, &patterns));
        }
    }
}
