//! The dedup + aggregate core in events per second per core (`process` over in-memory state), next to a
//! baseline from the same run: validation alone plus one hash-set insert per event (the least a deduplicating
//! counter must do). Two streams: a regular one (100,000 reports of 10,000 ad instances) and the known stream
//! of the tests (retries, client and server reports, out of order, late and invalid events).
//!
//! `cargo bench -p interlude-events --bench pipeline -- --warm-up-time 1 --measurement-time 3`

use std::collections::HashSet;
use std::hint::black_box;

use chrono::{DateTime, TimeDelta, Utc};
use criterion::{BatchSize, Criterion, Throughput, criterion_main};
use interlude_events::contract::{AdEvent, ConsentFlags, EventSource, EventType, SCHEMA_VERSION};
use interlude_events::testing::known_stream;
use interlude_events::{Envelope, MemoryState, Policy, process, validate};

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

fn bench(c: &mut Criterion) {
    let start: DateTime<Utc> = "2026-11-23T18:00:00Z".parse().unwrap_or_default();
    let regular = stream(start);
    group(
        c,
        "pipeline_100k_reports",
        &regular,
        start + TimeDelta::hours(2),
    );
    let known = known_stream(5, 8_000);
    group(
        c,
        &format!("pipeline_known_stream_{}_reports", known.reports.len()),
        &known.reports,
        known.now,
    );
}

fn group(c: &mut Criterion, name: &str, events: &[Envelope], now: DateTime<Utc>) {
    let policy = Policy::default();
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(events.len() as u64));
    group.sample_size(10);
    group.bench_function("baseline_validate_and_hashset", |b| {
        b.iter_batched(
            HashSet::new,
            |mut seen: HashSet<(String, EventType)>| {
                for e in events {
                    if validate(e, &policy, now).is_ok() {
                        seen.insert((e.event.ad_instance_id.clone(), e.event.event_type));
                    }
                }
                black_box(seen.len())
            },
            BatchSize::LargeInput,
        )
    });
    group.bench_function("process_dedup_aggregate", |b| {
        b.iter_batched(
            MemoryState::default,
            |mut state| {
                for e in events {
                    black_box(process(&mut state, e, &policy, now));
                }
                state
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

/// criterion's macro generates an undocumented `pub fn`.
mod group {
    #![allow(missing_docs, unreachable_pub)]
    criterion::criterion_group!(benches, super::bench);
}
criterion_main!(group::benches);
