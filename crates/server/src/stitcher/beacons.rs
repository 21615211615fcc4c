//! Where the stitcher's server-side beacons go: a [`BeaconSink`] takes each as the event it reports
//! ([`AdEvent::server_side`]), with the third parties' pixels to fire once it is counted; which events a
//! segment fetch stands for is the pure `interlude_stitch::beacons::events_for_segment`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use interlude_events::AdEvent;
use interlude_outbox::Pixel;

/// Receives the stitcher's server-side beacons. The event pipeline implements it; it must not block.
pub trait BeaconSink: Send + Sync {
    /// Takes one beacon, as the event it reports.
    fn emit(&self, event: AdEvent);

    /// Takes one beacon with the third parties' pixels it stands for (the ad's `<Impression>` or `<Tracking>`
    /// URLs for that event), to be fired once the pipeline has counted the event. A sink without an outbox
    /// drops the pixels.
    fn emit_with_pixels(&self, event: AdEvent, pixels: Vec<Pixel>) {
        let _ = pixels;
        self.emit(event);
    }
}

/// A sink that keeps beacons in memory (tests, the demo before the pipeline is wired) and counts them.
#[derive(Debug, Default)]
pub struct MemoryBeaconSink {
    beacons: Mutex<Vec<AdEvent>>,
    pixels: Mutex<Vec<Pixel>>,
    total: AtomicU64,
}

impl MemoryBeaconSink {
    /// Everything received so far.
    pub fn beacons(&self) -> Vec<AdEvent> {
        self.beacons.lock().map(|b| b.clone()).unwrap_or_default()
    }

    /// The third-party pixels received with the beacons.
    pub fn pixels(&self) -> Vec<Pixel> {
        self.pixels.lock().map(|p| p.clone()).unwrap_or_default()
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

    fn emit_with_pixels(&self, event: AdEvent, pixels: Vec<Pixel>) {
        if let Ok(mut kept) = self.pixels.lock() {
            kept.extend(pixels);
        }
        self.emit(event);
    }
}
