//! Where the stitcher's server-side beacons go: a [`BeaconSink`] takes each as the event it reports
//! ([`AdEvent::server_side`]); which events a segment fetch stands for is the pure
//! `interlude_stitch::beacons::events_for_segment`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use interlude_events::AdEvent;

/// Receives the stitcher's server-side beacons. The event pipeline implements it; it must not block.
pub trait BeaconSink: Send + Sync {
    /// Takes one beacon, as the event it reports.
    fn emit(&self, event: AdEvent);
}

/// A sink that keeps beacons in memory (tests, the demo before the pipeline is wired) and counts them.
#[derive(Debug, Default)]
pub struct MemoryBeaconSink {
    beacons: Mutex<Vec<AdEvent>>,
    total: AtomicU64,
}

impl MemoryBeaconSink {
    /// Everything received so far.
    pub fn beacons(&self) -> Vec<AdEvent> {
        self.beacons.lock().map(|b| b.clone()).unwrap_or_default()
    }

    /// How many beacons were received.
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }
}

impl BeaconSink for MemoryBeaconSink {
    fn emit(&self, event: AdEvent) {
        metrics::counter!(crate::telemetry::metrics::STITCHER_SERVER_BEACONS, "event" => event.event_type.as_str())
            .increment(1);
        self.total.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut beacons) = self.beacons.lock() {
            beacons.push(event);
        }
    }
}
