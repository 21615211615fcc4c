//! A known stream through the pipeline core: 30 % of reports retried, client and server both reporting most
//! ads, reports shuffled out of order, a tail of late events from an hour already final, and 5 % invalid
//! traffic. Every report count must equal the ground truth computed here, exactly.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, TimeDelta, Utc};
use interlude_events::contract::{AdEvent, ConsentFlags, EventSource, EventType, SCHEMA_VERSION};
use interlude_events::pipeline::{Counts, Envelope, MemoryState, Outcome, Policy, process};

/// A small deterministic generator (xorshift64*), so the stream is the same on every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn event(
    id: String,
    instance: &str,
    t: EventType,
    source: EventSource,
    at: DateTime<Utc>,
    li: usize,
) -> AdEvent {
    AdEvent {
        schema_version: SCHEMA_VERSION.to_owned(),
        event_id: id,
        ad_instance_id: instance.to_owned(),
        event_type: t,
        error_code: None,
        source,
        occurred_at: at,
        received_at: at,
        session_id: format!("s-{instance}"),
        viewer_id: None,
        channel: "live1".to_owned(),
        live_event_id: Some("final-2026".to_owned()),
        break_id: None,
        campaign_id: Some(format!("c{}", li % 2)),
        line_item_id: Some(format!("li{li}")),
        creative_id: format!("cr{}", li % 3),
        device: Some("tv".to_owned()),
        country: Some("FR".to_owned()),
        region: None,
        consent: ConsentFlags::default(),
    }
}

const PROGRESS: [EventType; 6] = [
    EventType::Impression,
    EventType::Start,
    EventType::FirstQuartile,
    EventType::Midpoint,
    EventType::ThirdQuartile,
    EventType::Complete,
];

#[test]
fn every_count_matches_the_ground_truth() {
    let mut rng = Rng(0x1D7E_4C0D_E5EE_D001);
    let start: DateTime<Utc> = "2026-11-23T18:00:00Z".parse().unwrap_or_default();
    let now = start + TimeDelta::hours(3) + TimeDelta::minutes(10);
    let mut truth: BTreeMap<String, Counts> = BTreeMap::new();
    let mut reports: Vec<Envelope> = Vec::new();
    let mut late: Vec<Envelope> = Vec::new();
    let envelope = |event| Envelope {
        event,
        user_agent: Some("AppleCoreMedia/1.0".into()),
        ip: None,
    };

    for i in 0..3_000u64 {
        let instance = format!("ai{i}");
        let li = rng.below(5) as usize;
        // Spread over three hours of event time; the first 60 instances are held back and sent last, late.
        let at = start + TimeDelta::seconds(rng.below(3 * 3600) as i64);
        let is_late = i < 60;
        let at = if is_late {
            start + TimeDelta::seconds(rng.below(1800) as i64)
        } else {
            at
        };
        let played = 2 + rng.below(5) as usize; // impression + start at least, up to complete
        for (k, &t) in PROGRESS.iter().take(played).enumerate() {
            truth
                .entry(format!("li{li}"))
                .or_default()
                .add(&Counts::one(t));
            let when = at + TimeDelta::seconds(k as i64 * 4);
            let mut sends = vec![event(
                format!("{instance}-s{k}"),
                &instance,
                t,
                EventSource::ServerSide,
                when,
                li,
            )];
            if rng.chance(70) {
                sends.push(event(
                    format!("{instance}-c{k}"),
                    &instance,
                    t,
                    EventSource::ClientSide,
                    when,
                    li,
                ));
            }
            for e in sends {
                let retried = rng.chance(30);
                let target = if is_late { &mut late } else { &mut reports };
                if retried {
                    target.push(envelope(e.clone()));
                }
                target.push(envelope(e));
            }
        }
    }
    // Out of order: a full shuffle of the on-time reports.
    for i in (1..reports.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        reports.swap(i, j);
    }
    // 5 % invalid traffic, of every kind, spread through the stream.
    let invalid_count = reports.len() / 20;
    let mut expected_quarantine: HashMap<&str, u64> = HashMap::new();
    for n in 0..invalid_count {
        let at = start + TimeDelta::seconds(rng.below(3 * 3600) as i64);
        let mut e = event(
            format!("bad{n}"),
            &format!("bad-ai{n}"),
            EventType::Impression,
            EventSource::ClientSide,
            at,
            0,
        );
        let mut env = envelope(e.clone());
        let kind = match n % 4 {
            0 => {
                env.user_agent = Some("Mozilla/5.0 (compatible; Googlebot/2.1)".into());
                "bot_user_agent"
            }
            1 => {
                e.occurred_at = now + TimeDelta::hours(1);
                env.event = e;
                "from_the_future"
            }
            2 => {
                e.occurred_at = now - TimeDelta::hours(49);
                env.event = e;
                "too_old"
            }
            _ => {
                e.event_type = EventType::Error; // without its error code
                env.event = e;
                "contract"
            }
        };
        *expected_quarantine.entry(kind).or_default() += 1;
        let at = rng.below(reports.len() as u64) as usize;
        reports.insert(at, env);
    }
    reports.extend(late);

    let policy = Policy::default();
    let mut state = MemoryState::default();
    let (mut counted, mut corrections) = (0u64, 0u64);
    for r in &reports {
        if let Outcome::Counted { correction } = process(&mut state, r, &policy, now) {
            counted += 1;
            corrections += u64::from(correction);
        }
    }

    // Per line item, from the windows (reporting) and from the ledger (billing: originals + corrections).
    let mut by_window: BTreeMap<String, Counts> = BTreeMap::new();
    for (key, c) in &state.windows {
        by_window
            .entry(key.line_item_id.clone())
            .or_default()
            .add(c);
    }
    let mut by_ledger: BTreeMap<String, Counts> = BTreeMap::new();
    for (key, (original, fixes)) in &state.ledger {
        let total = by_ledger.entry(key.line_item_id.clone()).or_default();
        total.add(original);
        fixes.iter().for_each(|f| total.add(f));
    }
    assert_eq!(by_window, truth, "reporting windows");
    assert_eq!(by_ledger, truth, "billing ledger");
    let truth_total: u64 = truth
        .values()
        .map(|c| {
            c.impressions
                + c.starts
                + c.first_quartiles
                + c.midpoints
                + c.third_quartiles
                + c.completes
        })
        .sum();
    assert_eq!(counted, truth_total);
    assert!(
        corrections > 0,
        "the late tail must be booked as corrections of final hours"
    );
    let quarantined: HashMap<&str, u64> = state
        .quarantined
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    assert_eq!(
        quarantined, expected_quarantine,
        "every invalid event quarantined with its reason"
    );
}
