//! Client-side beacon reporting as real players do it, misbehaviour included: events lost before they are sent,
//! sent late, sent twice, sent from a skewed clock, retried with exponential backoff (honouring `Retry-After`)
//! when the collector answers an error or the connection fails. The reporter keeps the ground truth: what the
//! viewer played, what it never sent, and what the collector acknowledged at least once, which is exactly what
//! an exactly-once pipeline must count.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use interlude_events::contract::{AdEvent, ConsentFlags, EventSource, EventType, SCHEMA_VERSION};
use serde::Serialize;

use crate::audience::{Endpoint, Stats};

/// How a simulated player misbehaves when it reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BeaconPolicy {
    /// Probability that an event is lost on the device and never sent.
    pub drop: f64,
    /// Probability that an event is sent a second time (a separate request, same event id).
    pub duplicate: f64,
    /// Attempts per send, the first included; failures are retried with exponential backoff.
    pub max_attempts: u32,
    /// First retry delay (doubled at each retry, ±50% jitter), unless the server says `Retry-After`.
    pub backoff: Duration,
    /// Up to this much extra delay before an event is sent (late delivery).
    pub late: Duration,
    /// The viewer's clock is off by up to this much either way (`occurred_at` is the viewer's clock).
    pub clock_skew: Duration,
    /// Probability that the viewer abandons an ad, at a random point before its end.
    pub abandon: f64,
}

impl Default for BeaconPolicy {
    /// A well-behaved player: everything sent once, three attempts, 200 ms backoff.
    fn default() -> Self {
        BeaconPolicy {
            drop: 0.0,
            duplicate: 0.0,
            max_attempts: 3,
            backoff: Duration::from_millis(200),
            late: Duration::ZERO,
            clock_skew: Duration::ZERO,
            abandon: 0.0,
        }
    }
}

/// A deterministic random source (SplitMix64): a run is reproducible from its seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Uniform in [0, `max`].
    pub fn upto(&mut self, max: Duration) -> Duration {
        max.mul_f64(self.unit())
    }
}

/// What the audience really did with its beacons, by (ad instance, event type).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct BeaconTruth {
    /// Events the viewers reached while playing.
    pub played: BTreeSet<(String, String)>,
    /// Played events lost on the device, never sent.
    pub dropped: BTreeSet<(String, String)>,
    /// Events the collector acknowledged at least once: the count an exactly-once pipeline must report.
    pub delivered: BTreeSet<(String, String)>,
    /// Events never acknowledged although sent (every attempt failed).
    pub gave_up: BTreeSet<(String, String)>,
    /// HTTP requests sent (attempts, retries and duplicates included).
    pub requests: u64,
    /// Retries after a failure.
    pub retries: u64,
    /// Deliberate duplicate sends.
    pub duplicates: u64,
}

impl BeaconTruth {
    /// Delivered events of one type.
    pub fn delivered_of(&self, event: EventType) -> usize {
        self.delivered
            .iter()
            .filter(|(_, e)| e == event.as_str())
            .count()
    }

    /// Merges another viewer's truth.
    pub fn merge(&mut self, other: BeaconTruth) {
        self.played.extend(other.played);
        self.dropped.extend(other.dropped);
        self.delivered.extend(other.delivered);
        self.gave_up.extend(other.gave_up);
        self.requests += other.requests;
        self.retries += other.retries;
        self.duplicates += other.duplicates;
    }
}

/// The ad an event is about, as the tracking document describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct PlayedAd {
    /// Ad instance id.
    pub ad_instance_id: String,
    /// Creative.
    pub creative_id: String,
    /// Line item, when known.
    pub line_item_id: Option<String>,
    /// Campaign, when known.
    pub campaign_id: Option<String>,
    /// Duration.
    pub duration: Duration,
    /// Break id.
    pub break_id: Option<String>,
}

/// One viewer's reporter: sends events to `{base}/v1/events` under `policy`.
pub struct Reporter {
    http: reqwest::Client,
    url: String,
    session: String,
    channel: String,
    policy: BeaconPolicy,
    skew: TimeDelta,
    rng: Mutex<Rng>,
    truth: Arc<Mutex<BeaconTruth>>,
    stats: Option<Arc<Stats>>,
}

impl Reporter {
    /// A reporter for one session.
    pub fn new(
        http: reqwest::Client,
        base: &str,
        session: String,
        channel: String,
        policy: BeaconPolicy,
        seed: u64,
        stats: Option<Arc<Stats>>,
    ) -> Self {
        let mut rng = Rng::new(seed);
        let skew_ms = policy.clock_skew.as_millis() as f64 * (2.0 * rng.unit() - 1.0);
        Reporter {
            http,
            url: format!("{base}/v1/events"),
            session,
            channel,
            skew: TimeDelta::milliseconds(skew_ms as i64),
            policy,
            rng: Mutex::new(rng),
            truth: Arc::default(),
            stats,
        }
    }

    /// The ground truth so far.
    pub fn truth(&self) -> BeaconTruth {
        self.truth.lock().map(|t| t.clone()).unwrap_or_default()
    }

    fn rng<T>(&self, f: impl FnOnce(&mut Rng) -> T) -> T {
        match self.rng.lock() {
            Ok(mut r) => f(&mut r),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    fn record(&self, f: impl FnOnce(&mut BeaconTruth)) {
        if let Ok(mut t) = self.truth.lock() {
            f(&mut t);
        }
    }

    /// Plays `ad` from its start: each event is reached at its point of the ad (time runs `speed` times
    /// faster than real time), unless the viewer abandons first, and is reported under the policy. `now`
    /// is the channel's clock.
    pub async fn play(
        &self,
        ad: &PlayedAd,
        speed: f64,
        now: &(dyn Fn() -> DateTime<Utc> + Send + Sync),
    ) {
        let events = [
            (EventType::Impression, 0.0),
            (EventType::Start, 0.0),
            (EventType::FirstQuartile, 0.25),
            (EventType::Midpoint, 0.5),
            (EventType::ThirdQuartile, 0.75),
            (EventType::Complete, 1.0),
        ];
        let abandon_at = self
            .rng(|r| r.chance(self.policy.abandon).then(|| r.unit()))
            .unwrap_or(f64::INFINITY);
        let mut elapsed = 0.0;
        let mut sends = Vec::new();
        for (event, at) in events {
            if at > abandon_at {
                break;
            }
            let wait = (at - elapsed) * ad.duration.as_secs_f64() / speed.max(1e-6);
            elapsed = at;
            if wait > 0.0 {
                tokio::time::sleep(Duration::from_secs_f64(wait)).await;
            }
            let key = (ad.ad_instance_id.clone(), event.as_str().to_owned());
            self.record(|t| {
                t.played.insert(key.clone());
            });
            if self.rng(|r| r.chance(self.policy.drop)) {
                self.record(|t| {
                    t.dropped.insert(key);
                });
                continue;
            }
            let report = self.event(ad, event, now() + self.skew);
            // Reports go out on their own so a slow retry does not hold the playback clock.
            sends.push(async move { self.deliver(report, key).await });
        }
        futures_util::future::join_all(sends).await;
    }

    fn event(&self, ad: &PlayedAd, event: EventType, at: DateTime<Utc>) -> AdEvent {
        let id = self.rng(|r| format!("{:016x}{:016x}", r.next_u64(), r.next_u64()));
        AdEvent {
            schema_version: SCHEMA_VERSION.to_owned(),
            event_id: id,
            ad_instance_id: ad.ad_instance_id.clone(),
            event_type: event,
            error_code: None,
            source: EventSource::ClientSide,
            occurred_at: at,
            received_at: at,
            session_id: self.session.clone(),
            viewer_id: None,
            channel: self.channel.clone(),
            live_event_id: None,
            break_id: ad.break_id.clone(),
            campaign_id: ad.campaign_id.clone(),
            line_item_id: ad.line_item_id.clone(),
            creative_id: ad.creative_id.clone(),
            device: Some("tv".to_owned()),
            country: None,
            region: None,
            consent: ConsentFlags::default(),
            ad_duration_ms: u32::try_from(ad.duration.as_millis()).ok(),
            demand: None,
        }
    }

    /// Sends one event (late, duplicated and retried as the policy says) and records whether it got through.
    async fn deliver(&self, event: AdEvent, key: (String, String)) {
        let late = self.rng(|r| r.upto(self.policy.late));
        if !late.is_zero() {
            tokio::time::sleep(late).await;
        }
        let copies = if self.rng(|r| r.chance(self.policy.duplicate)) {
            2
        } else {
            1
        };
        let mut acknowledged = false;
        for copy in 0..copies {
            if copy > 0 {
                self.record(|t| t.duplicates += 1);
            }
            acknowledged |= self.send_with_retries(&event).await;
        }
        self.record(|t| {
            if acknowledged {
                t.delivered.insert(key);
            } else {
                t.gave_up.insert(key);
            }
        });
    }

    async fn send_with_retries(&self, event: &AdEvent) -> bool {
        let body = std::slice::from_ref(event);
        let mut backoff = self.policy.backoff;
        for attempt in 0..self.policy.max_attempts.max(1) {
            if attempt > 0 {
                self.record(|t| t.retries += 1);
            }
            self.record(|t| t.requests += 1);
            let started = std::time::Instant::now();
            let sent = self.http.post(&self.url).json(body).send().await;
            if let Some(s) = &self.stats {
                let ok = sent.as_ref().is_ok_and(|r| r.status().is_success());
                s.record(Endpoint::Events, ok, started.elapsed());
            }
            let retry_after = match sent {
                Ok(r) if r.status().is_success() => return true,
                Ok(r) => r
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs),
                Err(_) => None,
            };
            let jitter = self.rng(|r| 0.5 + r.unit());
            let wait = retry_after.unwrap_or(backoff.mul_f64(jitter));
            tokio::time::sleep(wait).await;
            backoff = backoff.saturating_mul(2);
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generator_is_reproducible_and_spread() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        assert_eq!(a.next_u64(), b.next_u64());
        let mut r = Rng::new(1);
        let hits = (0..10_000).filter(|_| r.chance(0.3)).count();
        assert!((2_700..3_300).contains(&hits), "{hits}");
    }
}
