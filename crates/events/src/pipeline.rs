//! What happens to one accepted event, as a pure function over the pipeline's state: validate it (or quarantine
//! it with a reason), drop a retried report by its event id, count each `(ad_instance_id, event_type)` once for
//! billing, and add it to its one-minute window and its line item's hourly ledger.
//!
//! The state lives behind [`PipelineState`]; the store adapter implements it inside one write transaction per
//! batch, so the dedup mark and the counts it guards are committed together or not at all (and survive a
//! crash together). Tests and benchmarks use [`MemoryState`].
//!
//! Windows use event time (`occurred_at`). The watermark is the latest event time seen minus the allowed
//! lateness; an hour of the billing ledger is final once the watermark passes its end, and an event for a
//! final hour is booked as an append-only correction of that hour, never dropped and never rewriting it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;

use chrono::{DateTime, TimeDelta, Utc};
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

/// Counts of one aggregate cell.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Impressions.
    pub impressions: u64,
    /// Starts.
    pub starts: u64,
    /// First quartiles.
    pub first_quartiles: u64,
    /// Midpoints.
    pub midpoints: u64,
    /// Third quartiles.
    pub third_quartiles: u64,
    /// Completes.
    pub completes: u64,
    /// Clicks.
    pub clicks: u64,
    /// Errors.
    pub errors: u64,
}

impl Counts {
    /// One event of type `t` (pause/resume/mute are not aggregated).
    pub fn one(t: EventType) -> Counts {
        let mut c = Counts::default();
        match t {
            EventType::Impression => c.impressions = 1,
            EventType::Start => c.starts = 1,
            EventType::FirstQuartile => c.first_quartiles = 1,
            EventType::Midpoint => c.midpoints = 1,
            EventType::ThirdQuartile => c.third_quartiles = 1,
            EventType::Complete => c.completes = 1,
            EventType::Click => c.clicks = 1,
            EventType::Error => c.errors = 1,
            EventType::Pause | EventType::Resume | EventType::Mute | EventType::Unmute => {}
        }
        c
    }

    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &Counts) {
        self.impressions += other.impressions;
        self.starts += other.starts;
        self.first_quartiles += other.first_quartiles;
        self.midpoints += other.midpoints;
        self.third_quartiles += other.third_quartiles;
        self.completes += other.completes;
        self.clicks += other.clicks;
        self.errors += other.errors;
    }

    /// The counts in a fixed order (impressions, starts, the three quartiles, completes, clicks, errors): the
    /// column order of CSV reports and of the store's encoding.
    pub fn as_array(&self) -> [u64; 8] {
        [
            self.impressions,
            self.starts,
            self.first_quartiles,
            self.midpoints,
            self.third_quartiles,
            self.completes,
            self.clicks,
            self.errors,
        ]
    }

    /// Completes over impressions (0 without impressions).
    pub fn completion_rate(&self) -> f64 {
        if self.impressions == 0 {
            0.0
        } else {
            self.completes as f64 / self.impressions as f64
        }
    }
}

/// The dimensions of a one-minute window cell.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct WindowKey {
    /// Start of the minute, seconds since the Unix epoch.
    pub minute: i64,
    /// Campaign ("" when unknown).
    pub campaign_id: String,
    /// Line item ("" when unknown).
    pub line_item_id: String,
    /// Creative.
    pub creative_id: String,
    /// Channel.
    pub channel: String,
    /// Live event ("" when unknown).
    pub live_event_id: String,
}

/// Where a counted event lands in the hourly billing ledger.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LedgerKey {
    /// Line item ("" when unknown).
    pub line_item_id: String,
    /// Start of the hour, seconds since the Unix epoch.
    pub hour: i64,
}

/// What processing did with an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Counted.
    Counted {
        /// Booked as a correction of a final ledger hour.
        correction: bool,
    },
    /// The same report again (same event id): nothing changes.
    Retry,
    /// Another report of an event already counted (same ad instance and type): kept in the log, not counted.
    Duplicate,
    /// Quarantined.
    Quarantined(Quarantine),
    /// Durably appended to a distributed event log; a processor downstream dedups and counts it.
    Logged,
}

/// The state the pipeline reads and updates; one implementation per store, all updates of one call to
/// [`process`] committed atomically by the caller.
pub trait PipelineState {
    /// Records `event_id`; false if it was already recorded.
    fn record_event_id(&mut self, event_id: &str, occurred_at: DateTime<Utc>) -> bool;
    /// Counts one more impression of `session_id` in the minute starting at `minute`; returns the new count.
    fn bump_session_minute(&mut self, session_id: &str, minute: i64) -> u64;
    /// When `(ad_instance_id, event_type)` was counted (its event time), if it was.
    fn counted_at(&self, ad_instance_id: &str, event_type: EventType) -> Option<DateTime<Utc>>;
    /// Marks `(ad_instance_id, event_type)` counted; false if it already was.
    fn mark_counted(
        &mut self,
        ad_instance_id: &str,
        event_type: EventType,
        occurred_at: DateTime<Utc>,
    ) -> bool;
    /// Adds to a window cell.
    fn add_window(&mut self, key: WindowKey, counts: Counts);
    /// Adds to the ledger hour; `correction` entries are appended, never merged into the original.
    fn add_ledger(&mut self, key: LedgerKey, counts: Counts, correction: bool);
    /// Counts one impression of `line_item_id` for `viewer_id` in the hour starting at `hour` (frequency caps).
    fn add_viewer_impression(&mut self, viewer_id: &str, line_item_id: &str, hour: i64);
    /// Keeps a quarantined event with its reason.
    fn quarantine(&mut self, event: &AdEvent, reason: &Quarantine);
    /// Latest event time seen.
    fn max_event_time(&self) -> Option<DateTime<Utc>>;
    /// Sets the latest event time seen.
    fn set_max_event_time(&mut self, t: DateTime<Utc>);
}

fn floor(t: DateTime<Utc>, secs: i64) -> i64 {
    t.timestamp().div_euclid(secs) * secs
}

/// Validation that needs no state.
pub fn validate(
    envelope: &Envelope,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Result<(), Quarantine> {
    contract_check(&envelope.event)?;
    let event = &envelope.event;
    let ahead = (event.occurred_at - now).num_seconds();
    if ahead > policy.max_future_skew_secs {
        return Err(Quarantine::FromTheFuture { ahead_secs: ahead });
    }
    let age = (now - event.occurred_at).num_seconds();
    if age > policy.dedup_window_hours * 3600 {
        return Err(Quarantine::TooOld { age_secs: age });
    }
    match edge_check(envelope, policy) {
        Some(reason) => Err(reason),
        None => Ok(()),
    }
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
        let agent = agent.to_ascii_lowercase();
        if let Some(pattern) = policy
            .bot_user_agents
            .iter()
            .find(|p| agent.contains(&p.to_ascii_lowercase()))
        {
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

/// Quartiles cannot come faster than the ad plays: with the creative's duration and the instance's start
/// known, a progress event earlier than `fraction × duration` after the start (less 10 % and 2 s of slack for
/// clock granularity and segment-level server-side reporting) is invalid traffic. Without either, or when the
/// start arrives after the quartile (out of order), there is nothing to check. Server-side events are exempt:
/// the stitcher reports a quartile when its segment is fetched, and players prefetch segments ahead of playback.
fn plausible(state: &impl PipelineState, event: &AdEvent) -> Result<(), Quarantine> {
    if event.source == crate::contract::EventSource::ServerSide {
        return Ok(());
    }
    let fraction = match event.event_type {
        EventType::FirstQuartile => 0.25,
        EventType::Midpoint => 0.5,
        EventType::ThirdQuartile => 0.75,
        EventType::Complete => 1.0,
        _ => return Ok(()),
    };
    let (Some(duration), Some(started)) = (
        event.ad_duration_ms,
        state.counted_at(&event.ad_instance_id, EventType::Start),
    ) else {
        return Ok(());
    };
    let needed_ms = (f64::from(duration) * fraction * 0.9) as i64 - 2_000;
    let elapsed_ms = (event.occurred_at - started).num_milliseconds();
    if elapsed_ms < needed_ms {
        return Err(Quarantine::TooFast {
            event: event.event_type.as_str().to_owned(),
            elapsed_ms,
            needed_ms,
        });
    }
    Ok(())
}

/// Processes one event against `state`.
pub fn process(
    state: &mut impl PipelineState,
    envelope: &Envelope,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Outcome {
    process_checked(state, envelope, policy, now, None)
}

/// Processes one event read back from a distributed event log: the record carries the collector's verdict of
/// [`edge_check`] (`edge`) instead of the sender's user agent and address, and `now` is the collector's
/// receipt time, so processing (and any later replay) is deterministic.
pub fn process_logged(
    state: &mut impl PipelineState,
    event: AdEvent,
    edge: Option<Quarantine>,
    policy: &Policy,
) -> Outcome {
    let now = event.received_at;
    let envelope = Envelope {
        event,
        user_agent: None,
        ip: None,
    };
    process_checked(state, &envelope, policy, now, edge)
}

fn process_checked(
    state: &mut impl PipelineState,
    envelope: &Envelope,
    policy: &Policy,
    now: DateTime<Utc>,
    edge: Option<Quarantine>,
) -> Outcome {
    let event = &envelope.event;
    // A retried report is recognised before validation, so a resent invalid event is not quarantined twice.
    let id_ok = !event.event_id.is_empty() && event.event_id.len() <= 256;
    if id_ok && !state.record_event_id(&event.event_id, event.occurred_at) {
        return Outcome::Retry;
    }
    let checked = validate(envelope, policy, now).and_then(|()| edge.map_or(Ok(()), Err));
    if let Err(reason) = checked {
        state.quarantine(event, &reason);
        return Outcome::Quarantined(reason);
    }
    if event.event_type == EventType::Impression {
        // Counted before the billing dedup on purpose: a client and a server report of one impression are two
        // reports, but the rate is about distinct ads, so only the first report of an instance bumps it.
        if state
            .counted_at(&event.ad_instance_id, EventType::Impression)
            .is_none()
        {
            let count = state.bump_session_minute(&event.session_id, floor(event.occurred_at, 60));
            if count > policy.max_session_impressions_per_minute {
                let reason = Quarantine::ImpossibleRate {
                    count,
                    max: policy.max_session_impressions_per_minute,
                };
                state.quarantine(event, &reason);
                return Outcome::Quarantined(reason);
            }
        }
    }
    if let Err(reason) = plausible(state, event) {
        state.quarantine(event, &reason);
        return Outcome::Quarantined(reason);
    }
    if !state.mark_counted(&event.ad_instance_id, event.event_type, event.occurred_at) {
        return Outcome::Duplicate;
    }
    let counts = Counts::one(event.event_type);
    state.add_window(
        WindowKey {
            minute: floor(event.occurred_at, 60),
            campaign_id: event.campaign_id.clone().unwrap_or_default(),
            line_item_id: event.line_item_id.clone().unwrap_or_default(),
            creative_id: event.creative_id.clone(),
            channel: event.channel.clone(),
            live_event_id: event.live_event_id.clone().unwrap_or_default(),
        },
        counts,
    );
    let hour = floor(event.occurred_at, 3600);
    let watermark = state
        .max_event_time()
        .map(|t| t - TimeDelta::minutes(policy.allowed_lateness_mins));
    let correction = watermark.is_some_and(|w| w.timestamp() >= hour + 3600);
    state.add_ledger(
        LedgerKey {
            line_item_id: event.line_item_id.clone().unwrap_or_default(),
            hour,
        },
        counts,
        correction,
    );
    // Frequency capping needs the viewer across sessions: only with consent to store the pseudonymous id.
    if let (EventType::Impression, Some(viewer), true) = (
        event.event_type,
        &event.viewer_id,
        event.consent.store_viewer_id,
    ) {
        state.add_viewer_impression(
            viewer,
            event.line_item_id.as_deref().unwrap_or_default(),
            hour,
        );
    }
    if state.max_event_time().is_none_or(|t| event.occurred_at > t) {
        state.set_max_event_time(event.occurred_at);
    }
    Outcome::Counted { correction }
}

/// Live delivery counts, read by the decision engine for pacing and frequency caps; the event store updates
/// them in the same transaction as the billing counts, so pacing never sees an event billing does not.
pub trait Counters: Send + Sync {
    /// Impressions delivered by `line_item_id` in event time at or after `since` (whole hours: `since` is
    /// floored to its hour).
    fn delivered(&self, line_item_id: &str, since: DateTime<Utc>) -> u64;
    /// Impressions of `line_item_id` shown to `viewer_id` at or after `since` (floored to the hour).
    fn viewer_impressions(&self, viewer_id: &str, line_item_id: &str, since: DateTime<Utc>) -> u64;
    /// Loads what [`Counters::viewer_impressions`] will need for `viewer_id`, just before that viewer's
    /// decision: remote stores fetch it here so the engine's reads stay synchronous; local ones need nothing.
    fn prefetch<'a>(
        &'a self,
        _viewer_id: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>> {
        Box::pin(std::future::ready(()))
    }
}

/// Line-item prices, for spend in reports and the ledger: the decision engine's catalog implements it; until
/// then a map from configuration does.
pub trait Prices: Send + Sync {
    /// CPM of `line_item_id` in millionths of the currency unit, if priced.
    fn cpm_micros(&self, line_item_id: &str) -> Option<u64>;
}

impl Prices for BTreeMap<String, u64> {
    fn cpm_micros(&self, line_item_id: &str) -> Option<u64> {
        self.get(line_item_id).copied()
    }
}

/// Spend of `impressions` at `cpm_micros`, in millionths of the currency unit (CPM is per thousand).
pub fn spend_micros(impressions: u64, cpm_micros: u64) -> u64 {
    u64::try_from(u128::from(impressions) * u128::from(cpm_micros) / 1000).unwrap_or(u64::MAX)
}

/// In-memory state for tests and benchmarks (no expiry: they are short).
#[derive(Debug, Default)]
pub struct MemoryState {
    event_ids: HashSet<String>,
    counted: HashMap<(String, EventType), DateTime<Utc>>,
    /// Window cells.
    pub windows: BTreeMap<WindowKey, Counts>,
    /// Ledger: original counts per hour, and the corrections appended after the hour was final.
    pub ledger: BTreeMap<LedgerKey, (Counts, Vec<Counts>)>,
    /// Quarantined events by reason text.
    pub quarantined: HashMap<String, u64>,
    /// Impressions per (session, minute).
    pub session_minutes: HashMap<(String, i64), u64>,
    /// Impressions per (viewer, line item, hour).
    pub viewer_impressions: HashMap<(String, String, i64), u64>,
    max_event_time: Option<DateTime<Utc>>,
}

impl PipelineState for MemoryState {
    fn record_event_id(&mut self, event_id: &str, _: DateTime<Utc>) -> bool {
        self.event_ids.insert(event_id.to_owned())
    }
    fn bump_session_minute(&mut self, session_id: &str, minute: i64) -> u64 {
        let n = self
            .session_minutes
            .entry((session_id.to_owned(), minute))
            .or_default();
        *n += 1;
        *n
    }
    fn counted_at(&self, ad_instance_id: &str, event_type: EventType) -> Option<DateTime<Utc>> {
        self.counted
            .get(&(ad_instance_id.to_owned(), event_type))
            .copied()
    }
    fn mark_counted(
        &mut self,
        ad_instance_id: &str,
        event_type: EventType,
        occurred_at: DateTime<Utc>,
    ) -> bool {
        match self.counted.entry((ad_instance_id.to_owned(), event_type)) {
            std::collections::hash_map::Entry::Occupied(_) => false,
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(occurred_at);
                true
            }
        }
    }
    fn add_window(&mut self, key: WindowKey, counts: Counts) {
        self.windows.entry(key).or_default().add(&counts);
    }
    fn add_ledger(&mut self, key: LedgerKey, counts: Counts, correction: bool) {
        let entry = self.ledger.entry(key).or_default();
        if correction {
            entry.1.push(counts);
        } else {
            entry.0.add(&counts);
        }
    }
    fn add_viewer_impression(&mut self, viewer_id: &str, line_item_id: &str, hour: i64) {
        *self
            .viewer_impressions
            .entry((viewer_id.to_owned(), line_item_id.to_owned(), hour))
            .or_default() += 1;
    }

    fn quarantine(&mut self, _: &AdEvent, reason: &Quarantine) {
        let kind = serde_json::to_value(reason)
            .ok()
            .and_then(|v| v["reason"].as_str().map(str::to_owned))
            .unwrap_or_default();
        *self.quarantined.entry(kind).or_default() += 1;
    }
    fn max_event_time(&self) -> Option<DateTime<Utc>> {
        self.max_event_time
    }
    fn set_max_event_time(&mut self, t: DateTime<Utc>) {
        self.max_event_time = Some(t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::EventSource;
    use crate::known_stream::event;

    #[test]
    fn quartiles_faster_than_the_ad_are_quarantined() {
        let t0: DateTime<Utc> = "2026-11-23T18:00:00Z".parse().unwrap_or_default();
        let now = t0 + TimeDelta::minutes(5);
        let report = |t: EventType, secs: i64| {
            let mut e = event(
                format!("e-{}", t.as_str()),
                "ai",
                t,
                EventSource::ClientSide,
                t0 + TimeDelta::seconds(secs),
                1,
            );
            e.ad_duration_ms = Some(30_000);
            Envelope {
                event: e,
                user_agent: None,
                ip: None,
            }
        };
        let mut state = MemoryState::default();
        let policy = Policy::default();
        assert_eq!(
            process(&mut state, &report(EventType::Start, 0), &policy, now),
            Outcome::Counted { correction: false }
        );
        // A midpoint of a 30 s ad 3 s after its start: the ad cannot have played that far.
        let fast = process(&mut state, &report(EventType::Midpoint, 3), &policy, now);
        assert!(
            matches!(fast, Outcome::Quarantined(Quarantine::TooFast { .. })),
            "{fast:?}"
        );
        // 14 s is within the slack of 15 s.
        let fine = process(
            &mut state,
            &report(EventType::FirstQuartile, 7),
            &policy,
            now,
        );
        assert_eq!(fine, Outcome::Counted { correction: false });
        assert_eq!(state.quarantined.get("too_fast"), Some(&1));
    }

    #[test]
    fn a_session_rendering_impossibly_many_ads_a_minute_is_invalid() {
        let t0: DateTime<Utc> = "2026-11-23T18:00:00Z".parse().unwrap_or_default();
        let mut state = MemoryState::default();
        let policy = Policy::default();
        let mut outcomes = Vec::new();
        for n in 0..15 {
            let mut e = event(
                format!("e{n}"),
                &format!("ai{n}"),
                EventType::Impression,
                EventSource::ClientSide,
                t0,
                1,
            );
            e.session_id = "bot-session".into();
            let server = Envelope {
                event: e.clone(),
                user_agent: None,
                ip: None,
            };
            e.event_id = format!("e{n}-again");
            let client = Envelope {
                event: e,
                user_agent: None,
                ip: None,
            };
            outcomes.push(process(&mut state, &server, &policy, t0));
            // The other report of the same impression is a duplicate, not a second ad for the rate.
            assert_ne!(
                process(&mut state, &client, &policy, t0),
                Outcome::Counted { correction: false }
            );
        }
        let counted = outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::Counted { .. }))
            .count();
        assert_eq!(counted, 12);
        // Three ads too many, each reported twice: both reports of an invalid impression are quarantined.
        assert_eq!(state.quarantined.get("impossible_rate"), Some(&6));
    }
}
