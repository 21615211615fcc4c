//! Server-side ad beacons: which events a fetched ad segment stands for, and where they go.
//!
//! An SSAI server fires beacons when the player actually requests an ad segment, never when it fetches the
//! playlist (MediaTailor does the same; DOMAIN.md). Segment `n` of an ad stands for the events whose threshold
//! (0 %, 25 %, 50 %, 75 % of the ad's duration, and its end) falls within that segment's time span, so each event
//! belongs to exactly one segment and no per-viewer playback state is needed: a retried fetch re-emits the same
//! events with the same ad instance id, and the event pipeline deduplicates them on `(ad_instance_id, event)`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use serde::Serialize;

/// An ad event type, as VAST names its tracking events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum AdEventType {
    /// Counted impression (IAB: begin to render).
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
}

impl AdEventType {
    /// The VAST tracking event name.
    pub fn as_str(self) -> &'static str {
        match self {
            AdEventType::Impression => "impression",
            AdEventType::Start => "start",
            AdEventType::FirstQuartile => "firstQuartile",
            AdEventType::Midpoint => "midpoint",
            AdEventType::ThirdQuartile => "thirdQuartile",
            AdEventType::Complete => "complete",
        }
    }
}

/// The events a fetch of segment `index` (spanning `start..end` microseconds of an ad lasting `total`) stands for.
pub fn events_for_segment(
    index: usize,
    start: u64,
    end: u64,
    total: u64,
    last: bool,
) -> Vec<AdEventType> {
    let mut events = Vec::new();
    if index == 0 {
        events.push(AdEventType::Impression);
        events.push(AdEventType::Start);
    }
    for (fraction_pct, event) in [
        (25, AdEventType::FirstQuartile),
        (50, AdEventType::Midpoint),
        (75, AdEventType::ThirdQuartile),
    ] {
        let threshold = total * fraction_pct / 100;
        if threshold >= start && threshold < end {
            events.push(event);
        }
    }
    if last {
        events.push(AdEventType::Complete);
    }
    events
}

/// One server-side beacon.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AdBeacon {
    /// The ad instance (one ad in one pod for one viewer): the deduplication key with `event`.
    pub ad_instance_id: String,
    /// The event.
    pub event: AdEventType,
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
    /// The session's consent, carried on the event.
    pub consent: interlude_events::contract::ConsentFlags,
}

/// Receives the stitcher's server-side beacons. The event pipeline implements it; it must not block.
pub trait BeaconSink: Send + Sync {
    /// Takes one beacon.
    fn emit(&self, beacon: AdBeacon);
}

/// A sink that keeps beacons in memory (tests, the demo before the pipeline is wired) and counts them.
#[derive(Debug, Default)]
pub struct MemoryBeaconSink {
    beacons: Mutex<Vec<AdBeacon>>,
    total: AtomicU64,
}

impl MemoryBeaconSink {
    /// Everything received so far.
    pub fn beacons(&self) -> Vec<AdBeacon> {
        self.beacons.lock().map(|b| b.clone()).unwrap_or_default()
    }

    /// How many beacons were received.
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }
}

impl BeaconSink for MemoryBeaconSink {
    fn emit(&self, beacon: AdBeacon) {
        metrics::counter!("stitcher_server_beacons_total", "event" => beacon.event.as_str())
            .increment(1);
        self.total.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut beacons) = self.beacons.lock() {
            beacons.push(beacon);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AdEventType::*;

    #[test]
    fn each_event_belongs_to_exactly_one_segment_of_a_15s_ad() {
        // 2 s segments and a final 1 s one: 15 s.
        let durations = [2, 2, 2, 2, 2, 2, 2, 1].map(|s: u64| s * 1_000_000);
        let total: u64 = durations.iter().sum();
        let mut start = 0;
        let mut all = Vec::new();
        for (i, d) in durations.iter().enumerate() {
            let events = events_for_segment(i, start, start + d, total, i == durations.len() - 1);
            all.push(events);
            start += d;
        }
        assert_eq!(all[0], vec![Impression, Start]);
        assert_eq!(all[1], vec![FirstQuartile], "3.75 s falls in 2..4 s");
        assert_eq!(all[3], vec![Midpoint], "7.5 s falls in 6..8 s");
        assert_eq!(all[5], vec![ThirdQuartile], "11.25 s falls in 10..12 s");
        assert_eq!(all[7], vec![Complete]);
        let count: usize = all.iter().map(Vec::len).sum();
        assert_eq!(count, 6);
    }

    #[test]
    fn a_single_segment_ad_fires_everything_once() {
        let events = events_for_segment(0, 0, 5_000_000, 5_000_000, true);
        assert_eq!(
            events,
            vec![
                Impression,
                Start,
                FirstQuartile,
                Midpoint,
                ThirdQuartile,
                Complete
            ]
        );
    }
}
