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

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use crate::aggregate::{Counts, LedgerKey, WindowCell, WindowKey, floor};
use crate::contract::{AdEvent, EventType};
use crate::shared::FastHash;
use crate::validate::{Envelope, Policy, Quarantine, check_event, edge_check};

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
    /// Records `event_id`, to be kept for the dedup window from `kept_from` (its event time, or the receipt
    /// time of an event already outside the window); false if it was already recorded.
    fn record_event_id(&mut self, event_id: &str, kept_from: DateTime<Utc>) -> bool;
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
    fn add_window(&mut self, cell: WindowCell<'_>, counts: Counts);
    /// Adds to the hour of `line_item_id` starting at `hour` in the ledger; `correction` entries are
    /// appended, never merged into the original.
    fn add_ledger(&mut self, line_item_id: &str, hour: i64, counts: Counts, correction: bool);
    /// Counts one impression of `line_item_id` for `viewer_id` in the hour starting at `hour` (frequency caps).
    fn add_viewer_impression(&mut self, viewer_id: &str, line_item_id: &str, hour: i64);
    /// Keeps a quarantined event with its reason.
    fn quarantine(&mut self, event: &AdEvent, reason: &Quarantine);
    /// Latest event time seen.
    fn max_event_time(&self) -> Option<DateTime<Utc>>;
    /// Sets the latest event time seen.
    fn set_max_event_time(&mut self, t: DateTime<Utc>);
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
    process_checked(
        state,
        &envelope.event,
        edge_check(envelope, policy),
        policy,
        now,
    )
}

/// Processes one event whose sender checks the caller already ran: `edge` is the verdict of [`edge_check`]
/// (a store that logs that verdict with the event computes it once, for the log and for processing).
pub fn process_with_edge(
    state: &mut impl PipelineState,
    event: &AdEvent,
    edge: Option<Quarantine>,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Outcome {
    process_checked(state, event, edge, policy, now)
}

/// Processes one event read back from a distributed event log: the record carries the collector's verdict of
/// [`edge_check`] (`edge`) instead of the sender's user agent and address, and `now` is the collector's
/// receipt time, so processing (and any later replay) is deterministic.
pub fn process_logged(
    state: &mut impl PipelineState,
    event: &AdEvent,
    edge: Option<Quarantine>,
    policy: &Policy,
) -> Outcome {
    process_checked(state, event, edge, policy, event.received_at)
}

fn process_checked(
    state: &mut impl PipelineState,
    event: &AdEvent,
    edge: Option<Quarantine>,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Outcome {
    // A retried report is recognised before validation, so a resent invalid event is not quarantined twice.
    let id_ok = !event.event_id.is_empty() && event.event_id.len() <= 256;
    // The id is kept for the dedup window from its event time; an event already outside the window is kept
    // from now instead, or expiry would drop its id at once and each retry of it would be quarantined again.
    let window_start = now - TimeDelta::hours(policy.dedup_window_hours);
    let kept_from = if event.occurred_at < window_start {
        now
    } else {
        event.occurred_at
    };
    if id_ok && !state.record_event_id(&event.event_id, kept_from) {
        return Outcome::Retry;
    }
    let checked = check_event(event, policy, now).and_then(|()| edge.map_or(Ok(()), Err));
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
    let line_item_id = event.line_item_id.as_deref().unwrap_or_default();
    state.add_window(
        WindowCell {
            minute: floor(event.occurred_at, 60),
            campaign_id: event.campaign_id.as_deref().unwrap_or_default(),
            line_item_id,
            creative_id: &event.creative_id,
            channel: &event.channel,
            live_event_id: event.live_event_id.as_deref().unwrap_or_default(),
        },
        counts,
    );
    let hour = floor(event.occurred_at, 3600);
    let watermark = state
        .max_event_time()
        .map(|t| t - TimeDelta::minutes(policy.allowed_lateness_mins));
    let correction = watermark.is_some_and(|w| w.timestamp() >= hour + 3600);
    state.add_ledger(line_item_id, hour, counts, correction);
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

/// In-memory state for tests and benchmarks (no expiry: they are short). Looked up by reference: an event
/// allocates only for what it adds (its event id, a new ad instance, session or cell). Its maps use
/// [`crate::FastHasher`]: fine for tests and benchmarks, not for state an attacker can fill.
#[derive(Debug, Default)]
pub struct MemoryState {
    event_ids: HashSet<String, FastHash>,
    /// Per ad instance, when each event type was counted (by [`EventType::code`]).
    counted: HashMap<String, [Option<DateTime<Utc>>; EventType::ALL.len()], FastHash>,
    windows: HashMap<WindowKey, Counts, FastHash>,
    /// Per line item and hour: the original counts and the corrections appended after the hour was final.
    ledger: HashMap<String, LedgerHours, FastHash>,
    /// Quarantined events by reason ([`Quarantine::kind`]).
    pub quarantined: HashMap<String, u64>,
    /// Impressions per session and minute.
    session_minutes: HashMap<String, HashMap<i64, u64, FastHash>, FastHash>,
    /// Impressions per (viewer, line item, hour).
    pub viewer_impressions: HashMap<(String, String, i64), u64>,
    max_event_time: Option<DateTime<Utc>>,
}

/// One line item's ledger: per hour, the original counts and the corrections.
type LedgerHours = HashMap<i64, (Counts, Vec<Counts>)>;

/// A window key either owned or borrowed, so the window map can be searched with a [`WindowCell`].
trait CellKey {
    fn cell(&self) -> WindowCell<'_>;
}

impl CellKey for WindowKey {
    fn cell(&self) -> WindowCell<'_> {
        WindowKey::cell(self)
    }
}

impl CellKey for WindowCell<'_> {
    fn cell(&self) -> WindowCell<'_> {
        *self
    }
}

impl<'a> Borrow<dyn CellKey + 'a> for WindowKey {
    fn borrow(&self) -> &(dyn CellKey + 'a) {
        self
    }
}

// The same hash as `WindowKey`'s, which hashes its cell.
impl Hash for dyn CellKey + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.cell().hash(state);
    }
}

impl PartialEq for dyn CellKey + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.cell() == other.cell()
    }
}

impl Eq for dyn CellKey + '_ {}

impl MemoryState {
    /// The window cells.
    pub fn windows(&self) -> BTreeMap<WindowKey, Counts> {
        self.windows.iter().map(|(k, c)| (k.clone(), *c)).collect()
    }

    /// The ledger: original counts per line item and hour, and the corrections appended after the hour was
    /// final.
    pub fn ledger(&self) -> BTreeMap<LedgerKey, (Counts, Vec<Counts>)> {
        self.ledger
            .iter()
            .flat_map(|(li, hours)| {
                hours.iter().map(move |(hour, row)| {
                    (
                        LedgerKey {
                            line_item_id: li.clone(),
                            hour: *hour,
                        },
                        row.clone(),
                    )
                })
            })
            .collect()
    }

    /// Impressions per (session, minute).
    pub fn session_minutes(&self) -> HashMap<(String, i64), u64> {
        self.session_minutes
            .iter()
            .flat_map(|(s, m)| m.iter().map(move |(minute, n)| ((s.clone(), *minute), *n)))
            .collect()
    }
}

impl PipelineState for MemoryState {
    fn record_event_id(&mut self, event_id: &str, _: DateTime<Utc>) -> bool {
        if self.event_ids.contains(event_id) {
            return false;
        }
        self.event_ids.insert(event_id.to_owned())
    }
    fn bump_session_minute(&mut self, session_id: &str, minute: i64) -> u64 {
        let minutes = match self.session_minutes.get_mut(session_id) {
            Some(m) => m,
            None => self
                .session_minutes
                .entry(session_id.to_owned())
                .or_default(),
        };
        let n = minutes.entry(minute).or_default();
        *n += 1;
        *n
    }
    fn counted_at(&self, ad_instance_id: &str, event_type: EventType) -> Option<DateTime<Utc>> {
        self.counted
            .get(ad_instance_id)?
            .get(usize::from(event_type.code()))
            .copied()
            .flatten()
    }
    fn mark_counted(
        &mut self,
        ad_instance_id: &str,
        event_type: EventType,
        occurred_at: DateTime<Utc>,
    ) -> bool {
        let types = match self.counted.get_mut(ad_instance_id) {
            Some(t) => t,
            None => self.counted.entry(ad_instance_id.to_owned()).or_default(),
        };
        match types.get_mut(usize::from(event_type.code())) {
            Some(slot @ None) => {
                *slot = Some(occurred_at);
                true
            }
            _ => false,
        }
    }
    fn add_window(&mut self, cell: WindowCell<'_>, counts: Counts) {
        match self.windows.get_mut(&cell as &dyn CellKey) {
            Some(c) => c.add(&counts),
            None => {
                self.windows.insert(cell.to_key(), counts);
            }
        }
    }
    fn add_ledger(&mut self, line_item_id: &str, hour: i64, counts: Counts, correction: bool) {
        let hours = match self.ledger.get_mut(line_item_id) {
            Some(h) => h,
            None => self.ledger.entry(line_item_id.to_owned()).or_default(),
        };
        let entry = hours.entry(hour).or_default();
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
        let kind = reason.kind();
        match self.quarantined.get_mut(kind) {
            Some(n) => *n += 1,
            None => {
                self.quarantined.insert(kind.to_owned(), 1);
            }
        }
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
    use crate::testing::event;

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
