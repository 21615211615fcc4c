//! A known stream of reports with its ground truth, for tests and benchmarks of every pipeline layer (core,
//! store, HTTP collector, crash test): reports retried (30 %), client and server both reporting most ads,
//! shuffled out of order, a tail of late events from the stream's first half hour, and 5 % invalid traffic of
//! four kinds. Deterministic for a seed.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, TimeDelta, Utc};

use crate::aggregate::Counts;
use crate::contract::{AdEvent, ConsentFlags, EventSource, EventType, SCHEMA_VERSION};
use crate::validate::Envelope;

/// The stream and what counting it must give.
#[derive(Debug, Clone)]
pub struct KnownStream {
    /// Reports in sending order.
    pub reports: Vec<Envelope>,
    /// Counts per line item that billing and reporting must show.
    pub truth: BTreeMap<String, Counts>,
    /// Quarantined events per reason.
    pub quarantine: HashMap<&'static str, u64>,
    /// The collector's clock for validation.
    pub now: DateTime<Utc>,
}

/// A small deterministic generator (xorshift64*), so a stream is the same on every run.
pub struct Rng(pub u64);
impl Rng {
    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    /// True `percent` % of the time.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// A report of ad instance `instance` on line item `li`.
pub fn event(
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
        ad_duration_ms: None,
        demand: None,
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

/// `instances` ad instances' worth of reports (about 12 per instance), from seed `seed`.
pub fn known_stream(seed: u64, instances: u64) -> KnownStream {
    let mut rng = Rng(seed);
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

    for i in 0..instances {
        let instance = format!("ai{i}");
        let li = rng.below(5) as usize;
        // Spread over three hours of event time; the first 60 instances are held back and sent last, late.
        let at = start + TimeDelta::seconds(rng.below(3 * 3600) as i64);
        let is_late = i < instances / 50;
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
    let mut quarantine: HashMap<&'static str, u64> = HashMap::new();
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
        *quarantine.entry(kind).or_default() += 1;
        let at = rng.below(reports.len() as u64) as usize;
        reports.insert(at, env);
    }
    reports.extend(late);

    KnownStream {
        reports,
        truth,
        quarantine,
        now,
    }
}
