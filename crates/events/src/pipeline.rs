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

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;

use chrono::{DateTime, TimeDelta, Utc};
use hashbrown::HashTable;
use serde::Serialize;

use crate::aggregate::{Counts, Delivered, DemandKey, LedgerKey, WindowCell, WindowKey, floor};
use crate::contract::{AdEvent, EventType};
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
    /// Adds a programmatic ad's counted event to its bidder's hour ([`DemandKey`]).
    fn add_demand(&mut self, key: DemandKey, delivered: Delivered);
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
    if let Some(demand) = &event.demand {
        let price = if event.event_type == EventType::Impression {
            demand.price_cpm_micros
        } else {
            0
        };
        state.add_demand(
            DemandKey::of(demand, event.occurred_at),
            Delivered {
                counts,
                price_cpm_micros_sum: price,
            },
        );
    }
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

/// In-memory state for tests and benchmarks (no expiry: they are short).
///
/// Built for the benchmark's hot loop: every key (event id, ad instance, session minute, window cell, ledger
/// hour) is interned in a [`Keys`] table, its bytes appended to one buffer, so a new key costs no allocation of
/// its own, and each key is hashed once per lookup (foldhash, fixed seed: fine for tests and benchmarks, not
/// for state an attacker can fill). The ad instance looked up last is remembered, so an impression's rate
/// check and its billing mark find it with one hash.
#[derive(Debug, Default)]
pub struct MemoryState {
    event_ids: Keys,
    /// Ad instances; per instance, when each event type was counted (by [`EventType::code`]).
    instances: Keys,
    counted: Vec<[Option<DateTime<Utc>>; EventType::ALL.len()]>,
    /// The instance [`Self::instance`] found last.
    last_instance: Cell<Option<u32>>,
    /// Window cells ([`window_key`]) and their counts.
    windows: Keys,
    window_counts: Vec<Counts>,
    /// Ledger hours (line item ‖ hour): the original counts and the corrections appended after the hour was
    /// final.
    ledger: Keys,
    ledger_rows: Vec<(Counts, Vec<Counts>)>,
    /// Session minutes (session ‖ minute) and their impressions.
    sessions: Keys,
    session_counts: Vec<u64>,
    /// Where keys are assembled before a lookup (reused: no allocation per event).
    scratch: Vec<u8>,
    /// Quarantined events by reason ([`Quarantine::kind`]).
    pub quarantined: HashMap<String, u64>,
    /// Impressions per (viewer, line item, hour).
    pub viewer_impressions: HashMap<(String, String, i64), u64>,
    /// Programmatic delivery per bidder hour.
    pub demand: BTreeMap<DemandKey, Delivered>,
    max_event_time: Option<DateTime<Utc>>,
}

/// Distinct byte strings numbered in insertion order: the bytes back to back in one buffer, a hash table of
/// (hash, number) over them. Numbers index the owner's parallel vectors of values.
#[derive(Default)]
struct Keys {
    bytes: Vec<u8>,
    /// Where each key ends in `bytes` (it starts where the previous one ends).
    ends: Vec<usize>,
    table: HashTable<(u64, u32)>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("len", &self.ends.len())
            .finish_non_exhaustive()
    }
}

/// The hash of a key (fixed seed, so runs are reproducible).
fn key_hash(key: &[u8]) -> u64 {
    foldhash::fast::FixedState::with_seed(0x1D7E).hash_one(key)
}

impl Keys {
    fn key(&self, n: u32) -> &[u8] {
        let n = n as usize;
        let start = match n.checked_sub(1) {
            Some(p) => self.ends[p],
            None => 0,
        };
        &self.bytes[start..self.ends[n]]
    }

    fn find(&self, hash: u64, key: &[u8]) -> Option<u32> {
        self.table
            .find(hash, |&(h, n)| h == hash && self.key(n) == key)
            .map(|&(_, n)| n)
    }

    /// The number of `key`, and whether it was added now.
    fn intern(&mut self, key: &[u8]) -> (u32, bool) {
        let hash = key_hash(key);
        if let Some(n) = self.find(hash, key) {
            return (n, false);
        }
        // More than 4 billion keys do not fit a test's memory anyway.
        let n = u32::try_from(self.ends.len()).unwrap_or(u32::MAX);
        self.bytes.extend_from_slice(key);
        self.ends.push(self.bytes.len());
        self.table.insert_unique(hash, (hash, n), |&(h, _)| h);
        (n, true)
    }

    fn iter(&self) -> impl Iterator<Item = &[u8]> {
        (0..self.ends.len()).map(|n| self.key(n as u32))
    }
}

/// Appends `field` with its length, so a key of several fields has one reading.
fn push_field(out: &mut Vec<u8>, field: &str) {
    out.extend_from_slice(&(field.len() as u32).to_le_bytes());
    out.extend_from_slice(field.as_bytes());
}

/// Reads a [`push_field`] field from the front of `bytes`.
fn take_field(bytes: &mut &[u8]) -> String {
    let (len, rest) = bytes.split_at_checked(4).unwrap_or_default();
    let len = u32::from_le_bytes(len.try_into().unwrap_or_default()) as usize;
    let (field, rest) = rest.split_at_checked(len).unwrap_or_default();
    *bytes = rest;
    String::from_utf8_lossy(field).into_owned()
}

/// Reads the trailing `i64` of a key.
fn take_i64(bytes: &[u8]) -> i64 {
    let tail = bytes
        .get(bytes.len().saturating_sub(8)..)
        .unwrap_or_default();
    i64::from_le_bytes(tail.try_into().unwrap_or_default())
}

/// The key of a window cell: its minute, then each dimension with its length.
fn window_key(cell: &WindowCell<'_>, out: &mut Vec<u8>) {
    out.clear();
    for field in [
        cell.campaign_id,
        cell.line_item_id,
        cell.creative_id,
        cell.channel,
        cell.live_event_id,
    ] {
        push_field(out, field);
    }
    out.extend_from_slice(&cell.minute.to_le_bytes());
}

impl MemoryState {
    /// The window cells.
    pub fn windows(&self) -> BTreeMap<WindowKey, Counts> {
        self.windows
            .iter()
            .zip(&self.window_counts)
            .map(|(mut key, c)| {
                let minute = take_i64(key);
                (
                    WindowKey {
                        minute,
                        campaign_id: take_field(&mut key),
                        line_item_id: take_field(&mut key),
                        creative_id: take_field(&mut key),
                        channel: take_field(&mut key),
                        live_event_id: take_field(&mut key),
                    },
                    *c,
                )
            })
            .collect()
    }

    /// The ledger: original counts per line item and hour, and the corrections appended after the hour was
    /// final.
    pub fn ledger(&self) -> BTreeMap<LedgerKey, (Counts, Vec<Counts>)> {
        self.ledger
            .iter()
            .zip(&self.ledger_rows)
            .map(|(mut key, row)| {
                let hour = take_i64(key);
                (
                    LedgerKey {
                        line_item_id: take_field(&mut key),
                        hour,
                    },
                    row.clone(),
                )
            })
            .collect()
    }

    /// Impressions per (session, minute).
    pub fn session_minutes(&self) -> HashMap<(String, i64), u64> {
        self.sessions
            .iter()
            .zip(&self.session_counts)
            .map(|(mut key, n)| {
                let minute = take_i64(key);
                ((take_field(&mut key), minute), *n)
            })
            .collect()
    }

    /// The number of ad instance `id`, if it was counted for any type: the last one found, or by hash.
    fn instance(&self, id: &str) -> Option<u32> {
        if let Some(n) = self.last_instance.get() {
            if self.instances.key(n) == id.as_bytes() {
                return Some(n);
            }
        }
        let found = self.instances.find(key_hash(id.as_bytes()), id.as_bytes());
        if found.is_some() {
            self.last_instance.set(found);
        }
        found
    }
}

impl PipelineState for MemoryState {
    fn record_event_id(&mut self, event_id: &str, _: DateTime<Utc>) -> bool {
        self.event_ids.intern(event_id.as_bytes()).1
    }
    fn bump_session_minute(&mut self, session_id: &str, minute: i64) -> u64 {
        self.scratch.clear();
        push_field(&mut self.scratch, session_id);
        self.scratch.extend_from_slice(&minute.to_le_bytes());
        let (n, new) = self.sessions.intern(&self.scratch);
        if new {
            self.session_counts.push(0);
        }
        let count = &mut self.session_counts[n as usize];
        *count += 1;
        *count
    }
    fn counted_at(&self, ad_instance_id: &str, event_type: EventType) -> Option<DateTime<Utc>> {
        let n = self.instance(ad_instance_id)?;
        self.counted[n as usize]
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
        let n = match self.instance(ad_instance_id) {
            Some(n) => n,
            None => {
                let (n, _) = self.instances.intern(ad_instance_id.as_bytes());
                self.counted.push(Default::default());
                self.last_instance.set(Some(n));
                n
            }
        };
        match self.counted[n as usize].get_mut(usize::from(event_type.code())) {
            Some(slot @ None) => {
                *slot = Some(occurred_at);
                true
            }
            _ => false,
        }
    }
    fn add_window(&mut self, cell: WindowCell<'_>, counts: Counts) {
        window_key(&cell, &mut self.scratch);
        let (n, new) = self.windows.intern(&self.scratch);
        if new {
            self.window_counts.push(counts);
        } else {
            self.window_counts[n as usize].add(&counts);
        }
    }
    fn add_ledger(&mut self, line_item_id: &str, hour: i64, counts: Counts, correction: bool) {
        self.scratch.clear();
        push_field(&mut self.scratch, line_item_id);
        self.scratch.extend_from_slice(&hour.to_le_bytes());
        let (n, new) = self.ledger.intern(&self.scratch);
        if new {
            self.ledger_rows.push(Default::default());
        }
        let row = &mut self.ledger_rows[n as usize];
        if correction {
            row.1.push(counts);
        } else {
            row.0.add(&counts);
        }
    }
    fn add_demand(&mut self, key: DemandKey, delivered: Delivered) {
        self.demand.entry(key).or_default().add(&delivered);
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
    fn a_programmatic_ads_events_land_in_its_bidder_hour_and_only_the_impression_is_priced() {
        let t0 = DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        let demand = crate::contract::Demand {
            bidder: "dsp".into(),
            seat: "s1".into(),
            deal_id: Some("d1".into()),
            price_cpm_micros: 2_500_000,
            currency: "EUR".into(),
        };
        let mut state = MemoryState::default();
        for (id, t) in [
            ("i", EventType::Impression),
            ("i", EventType::Impression),
            ("i-again", EventType::Impression),
            ("c", EventType::Click),
        ] {
            let mut e = event(id.into(), "ai", t, EventSource::ServerSide, t0, 1);
            e.demand = Some(demand.clone());
            let envelope = Envelope {
                event: e,
                user_agent: None,
                ip: None,
            };
            process(&mut state, &envelope, &Policy::default(), t0);
        }
        let key = DemandKey::of(&demand, t0);
        assert_eq!(key.hour, 1_800_000_000 / 3600 * 3600);
        let cell = state.demand[&key];
        assert_eq!((cell.counts.impressions, cell.counts.clicks), (1, 1));
        assert_eq!(cell.spend_micros(), 2_500, "one impression at CPM 2.50");
        assert_eq!(state.demand.len(), 1);
    }

    /// The interned keys read back as they went in, whatever bytes the dimensions hold (a separator, an
    /// empty field, one that is a prefix of another).
    #[test]
    fn memory_state_reads_back_its_cells_hours_and_sessions() {
        let mut state = MemoryState::default();
        let cells = [
            WindowCell {
                minute: -60,
                campaign_id: "c\u{1f}1",
                line_item_id: "",
                creative_id: "cr",
                channel: "live",
                live_event_id: "",
            },
            WindowCell {
                minute: 120,
                campaign_id: "c",
                line_item_id: "\u{1f}1",
                creative_id: "cr",
                channel: "live",
                live_event_id: "x",
            },
        ];
        let counts = Counts::one(EventType::Impression);
        for (n, cell) in cells.iter().enumerate() {
            for _ in 0..=n {
                state.add_window(*cell, counts);
            }
        }
        let windows = state.windows();
        assert_eq!(windows.len(), 2);
        for (n, cell) in cells.iter().enumerate() {
            assert_eq!(
                windows.get(&cell.to_key()).map(|c| c.impressions),
                Some(n as u64 + 1)
            );
        }
        state.add_ledger("li", 3600, counts, false);
        state.add_ledger("li", 3600, counts, true);
        state.add_ledger("li2", -3600, counts, false);
        let ledger = state.ledger();
        let key = |li: &str, hour| LedgerKey {
            line_item_id: li.into(),
            hour,
        };
        assert_eq!(ledger.get(&key("li", 3600)), Some(&(counts, vec![counts])));
        assert_eq!(ledger.get(&key("li2", -3600)), Some(&(counts, vec![])));
        assert_eq!(state.bump_session_minute("s", 60), 1);
        assert_eq!(state.bump_session_minute("s", 60), 2);
        assert_eq!(state.bump_session_minute("s", 120), 1);
        assert_eq!(state.session_minutes().get(&("s".to_owned(), 60)), Some(&2));
        assert!(state.mark_counted("ai", EventType::Start, DateTime::UNIX_EPOCH));
        assert!(!state.mark_counted("ai", EventType::Start, DateTime::UNIX_EPOCH));
        assert_eq!(state.counted_at("ai2", EventType::Start), None);
        assert_eq!(
            state.counted_at("ai", EventType::Start),
            Some(DateTime::UNIX_EPOCH)
        );
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
