//! Which events a fetched ad segment stands for (server-side beacons).
//!
//! An SSAI server fires beacons when the player actually requests an ad segment, never when it fetches the
//! playlist (MediaTailor does the same). Segment `n` of an ad stands for the events whose threshold (0 %,
//! 25 %, 50 %, 75 % of the ad's duration, and its end) falls within that segment's time span, so each event
//! belongs to exactly one segment and no per-viewer playback state is needed: a retried fetch re-emits the
//! same events with the same ad instance id, and the event pipeline deduplicates them on
//! `(ad_instance_id, event)`. Thresholds follow the IAB/MRC quartile definitions (≥ 25 % played, …).

use interlude_events::EventType;

/// The events a fetch of segment `index` (spanning `start..end` microseconds of an ad lasting `total`)
/// stands for; `last` when it is the ad's final segment.
pub fn events_for_segment(
    index: usize,
    start: u64,
    end: u64,
    total: u64,
    last: bool,
) -> Vec<EventType> {
    let mut events = Vec::new();
    if index == 0 {
        events.push(EventType::Impression);
        events.push(EventType::Start);
    }
    for (fraction_pct, event) in [
        (25, EventType::FirstQuartile),
        (50, EventType::Midpoint),
        (75, EventType::ThirdQuartile),
    ] {
        let threshold = total * fraction_pct / 100;
        if threshold >= start && threshold < end {
            events.push(event);
        }
    }
    if last {
        events.push(EventType::Complete);
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;
    use EventType::*;

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
