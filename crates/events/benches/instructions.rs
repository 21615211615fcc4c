//! The pipeline core and its baseline run once each over the benchmark's two streams, for counting
//! instructions deterministically (the shared machine's wall clock is too noisy to compare small changes):
//!
//! ```sh
//! cargo bench -p interlude-events --bench instructions --no-run
//! valgrind --tool=callgrind --callgrind-out-file=cg.out target/release/deps/instructions-<hash>
//! callgrind_annotate --inclusive=yes cg.out | grep -E '(baseline|process)_run'
//! ```
//!
//! Instructions per event are the inclusive counts of `baseline_run` and `process_run` over the number of
//! reports (100,000 and the known stream's); `pipeline.rs` measures the same in time.
use std::collections::HashSet;

use chrono::{DateTime, TimeDelta, Utc};
use interlude_events::contract::{AdEvent, ConsentFlags, EventSource, EventType, SCHEMA_VERSION};
use interlude_events::{Envelope, MemoryState, Policy, process, validate};
use std::hint::black_box;
const TYPES: [EventType; 6] = [
    EventType::Impression,
    EventType::Start,
    EventType::FirstQuartile,
    EventType::Midpoint,
    EventType::ThirdQuartile,
    EventType::Complete,
];

/// 100,000 reports: 10,000 ad instances × 6 events, 2/3 reported twice (client and server).
fn stream(start: DateTime<Utc>) -> Vec<Envelope> {
    let mut out = Vec::with_capacity(100_000);
    for i in 0..10_000u32 {
        for (k, t) in TYPES.into_iter().enumerate() {
            for source in [EventSource::ServerSide, EventSource::ClientSide] {
                if source == EventSource::ClientSide && i % 3 == 0 {
                    continue;
                }
                let at = start + TimeDelta::seconds(i64::from(i % 3600) + k as i64 * 4);
                out.push(Envelope {
                    event: AdEvent {
                        schema_version: SCHEMA_VERSION.to_owned(),
                        event_id: format!("{i}-{k}-{source:?}"),
                        ad_instance_id: format!("ai-{i}"),
                        event_type: t,
                        error_code: None,
                        source,
                        occurred_at: at,
                        received_at: at,
                        session_id: format!("s-{i}"),
                        viewer_id: None,
                        channel: "live1".to_owned(),
                        live_event_id: None,
                        break_id: None,
                        campaign_id: Some("c1".to_owned()),
                        line_item_id: Some(format!("li{}", i % 20)),
                        creative_id: format!("cr{}", i % 7),
                        device: None,
                        country: None,
                        region: None,
                        consent: ConsentFlags::default(),
                        ad_duration_ms: None,
                        demand: None,
                    },
                    user_agent: Some("AppleCoreMedia/1.0".to_owned()),
                    ip: None,
                });
            }
        }
    }
    out
}

#[inline(never)]
fn baseline_run(events: &[Envelope], policy: &Policy, now: DateTime<Utc>) -> usize {
    let mut seen: HashSet<(String, EventType)> = HashSet::new();
    for e in events {
        if validate(e, policy, now).is_ok() {
            seen.insert((e.event.ad_instance_id.clone(), e.event.event_type));
        }
    }
    seen.len()
}
#[inline(never)]
fn process_run(events: &[Envelope], policy: &Policy, now: DateTime<Utc>) -> usize {
    let mut state = MemoryState::default();
    for e in events {
        black_box(process(&mut state, e, policy, now));
    }
    state.quarantined.len()
}
fn main() {
    let start: DateTime<Utc> = "2026-11-23T18:00:00Z".parse().unwrap_or_default();
    let events = stream(start);
    let policy = Policy::default();
    let now = start + TimeDelta::hours(2);
    black_box(baseline_run(&events, &policy, now));
    black_box(process_run(&events, &policy, now));
    let known = interlude_events::testing::known_stream(5, 8_000);
    black_box(baseline_run(&known.reports, &policy, known.now));
    black_box(process_run(&known.reports, &policy, known.now));
}
