//! Every metric the server records, declared once with its description (the names are the Prometheus names;
//! call sites use these constants, never literals), and the in-process registry the dashboard reads.
//!
//! The `metrics` facade has one global recorder. Ours fans every measurement out to two sinks: the
//! Prometheus exporter (`GET /metrics`) and [`Live`], atomics the dashboard reads directly — counters and
//! gauges as numbers, histograms as counts per fixed bucket — instead of rendering the text exposition and
//! parsing it back every second.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use metrics::{
    Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit,
    describe_counter, describe_gauge, describe_histogram,
};
use metrics_util::registry::{Registry, Storage};

/// Requests answered, by route, method and status.
pub const HTTP_REQUESTS: &str = "http_requests_total";
/// Request latency, by route.
pub const HTTP_REQUEST_DURATION: &str = "http_request_duration_seconds";
/// Requests in flight.
pub const HTTP_IN_FLIGHT: &str = "http_in_flight";
/// Gauge: the run queue's smoothed delay, the load signal of shedding (`ops::shedding`).
pub const HTTP_QUEUE_DELAY: &str = "http_queue_delay_seconds";
/// Requests refused by load shedding, by class.
pub const HTTP_SHED: &str = "http_shed_total";
/// Connections closed as soon as accepted, by reason (`total`, `per_ip`).
pub const HTTP_CONNECTIONS_REFUSED: &str = "http_connections_refused_total";
/// Connections open.
pub const HTTP_CONNECTIONS_OPEN: &str = "http_connections_open";
/// Sessions refused, by reason (`rate`: the client's creation rate; `cap`: the node's session cap).
pub const STITCHER_SESSIONS_REFUSED: &str = "stitcher_sessions_refused_total";
/// Break decisions not scheduled at a break's start because the session had not asked for a playlist
/// recently (decided on request if it comes back).
pub const STITCHER_DECISIONS_SKIPPED_IDLE: &str = "stitcher_decisions_skipped_idle_total";
/// Ads of a decided pod left out because their creative is not conditioned for the channel yet, by reason
/// (`NEW_CREATIVE`, `TRANSCODE_IN_PROGRESS`, `TRANSCODE_ERROR`, `NO_VARIANT_MATCH`).
pub const STITCHER_CREATIVES_SKIPPED: &str = "stitcher_creatives_skipped_total";
/// Conditioning jobs submitted by the stitcher and the condition API, by origin (`stitcher`, `api`).
pub const CONDITION_JOBS_SUBMITTED: &str = "condition_jobs_submitted_total";
/// Live sessions, by channel.
pub const STITCHER_SESSIONS: &str = "stitcher_sessions";
/// Sessions created, by channel.
pub const STITCHER_SESSIONS_CREATED: &str = "stitcher_sessions_created_total";
/// Sessions another node created, adopted by this one.
pub const STITCHER_SESSIONS_ADOPTED: &str = "stitcher_sessions_adopted_total";
/// Failures of the shared session store (the node degrades to local behaviour).
pub const STITCHER_SHARED_ERRORS: &str = "stitcher_shared_errors_total";
/// Origin playlist refreshes, by channel and outcome.
pub const STITCHER_ORIGIN_REFRESHES: &str = "stitcher_origin_refreshes_total";
/// Origin refresh latency, by channel.
pub const STITCHER_ORIGIN_REFRESH_DURATION: &str = "stitcher_origin_refresh_seconds";
/// Ad breaks detected, by channel.
pub const STITCHER_BREAKS_DETECTED: &str = "stitcher_breaks_detected_total";
/// Pod decision latency, by channel.
pub const STITCHER_DECISION_DURATION: &str = "stitcher_decision_seconds";
/// Pod decisions that failed (slate instead).
pub const STITCHER_DECISION_ERRORS: &str = "stitcher_decision_errors_total";
/// Pod decisions that timed out (slate instead).
pub const STITCHER_DECISION_TIMEOUTS: &str = "stitcher_decision_timeouts_total";
/// Decisions made while a viewer's playlist request waited (late: the break was not decided ahead).
pub const STITCHER_DECISIONS_ON_REQUEST: &str = "stitcher_decisions_on_request_total";
/// Decisions made ahead, between a break's cue and the viewer's first playlist that shows it, by channel.
pub const STITCHER_DECISIONS_AHEAD: &str = "stitcher_decisions_ahead_total";
/// Breaks a render fixed undecided whose pod another node had stored first (adopted before answering).
pub const STITCHER_FIXED_REPLACED: &str = "stitcher_fixed_decisions_replaced_total";
/// Seconds of breaks given to ads and to slate, by channel and kind.
pub const STITCHER_BREAK_SECONDS: &str = "stitcher_break_seconds_total";
/// Ad segments served, by channel.
pub const STITCHER_AD_SEGMENTS_SERVED: &str = "stitcher_ad_segments_served_total";
/// Server-side beacons emitted, by event.
pub const STITCHER_SERVER_BEACONS: &str = "stitcher_server_beacons_total";
/// Server-side beacons that could not be stored.
pub const STITCHER_BEACONS_LOST: &str = "stitcher_beacons_lost_total";
/// Segments fetched for proxy delivery, by outcome.
pub const STITCHER_PROXY_FETCHES: &str = "stitcher_proxy_fetches_total";
/// Event batches refused as malformed.
pub const EVENTS_REJECTED_BATCHES: &str = "events_rejected_batches_total";
/// Tracking tokens refused (bad signature, malformed).
pub const EVENTS_REJECTED_TOKENS: &str = "events_rejected_tokens_total";
/// Posted events refused because their ad instance was not issued to their session by this platform.
pub const EVENTS_REFUSED_INSTANCES: &str = "events_refused_instances_total";
/// Event batches refused because the store was busy (503).
pub const EVENTS_BUSY_REJECTIONS: &str = "events_busy_rejections_total";
/// Event batches refused because the store was unavailable (unhealthy, or closing) (503).
pub const EVENTS_UNAVAILABLE_REJECTIONS: &str = "events_unavailable_rejections_total";
/// Catalog versions that went live.
pub const DECISION_CATALOG_RELOADS: &str = "decision_catalog_reloads_total";
/// Catalog versions refused (the previous one keeps serving).
pub const DECISION_CATALOG_RELOAD_ERRORS: &str = "decision_catalog_reload_errors_total";
/// Bidder responses, by bidder and outcome.
pub const DECISION_BIDDER_RESPONSES: &str = "decision_bidder_responses_total";
/// Erasure requests carried out.
pub const PRIVACY_ERASURES: &str = "privacy_erasures_total";
/// Reports of an event already counted (recorded by the event store).
pub const EVENTS_DUPLICATES: &str = "events_duplicates_total";
/// The same report again (recorded by the event store).
pub const EVENTS_RETRIES: &str = "events_retries_total";
/// Event-time lag of the newest committed event (recorded by the event store).
pub const EVENTS_LAG: &str = "events_lag_seconds";

/// Describes every metric above to the recorder (`# HELP` lines); call once after installing it.
pub fn describe() {
    for (name, help) in [
        (
            HTTP_REQUESTS,
            "Requests answered, by route, method and status.",
        ),
        (
            HTTP_SHED,
            "Requests refused by load shedding, by class and reason (budget, beacon_cap, queue_delay).",
        ),
        (
            HTTP_CONNECTIONS_REFUSED,
            "Connections closed as soon as accepted, by reason.",
        ),
        (STITCHER_SESSIONS_REFUSED, "Sessions refused, by reason."),
        (
            STITCHER_DECISIONS_SKIPPED_IDLE,
            "Break decisions not scheduled for sessions idle at the break's start.",
        ),
        (
            STITCHER_CREATIVES_SKIPPED,
            "Ads left out of a pod because their creative is not conditioned yet, by reason.",
        ),
        (
            CONDITION_JOBS_SUBMITTED,
            "Creative conditioning jobs submitted, by origin (stitcher, api).",
        ),
        (STITCHER_SESSIONS_CREATED, "Sessions created, by channel."),
        (
            STITCHER_SESSIONS_ADOPTED,
            "Sessions another node created, adopted by this one.",
        ),
        (
            STITCHER_SHARED_ERRORS,
            "Failures of the shared session store.",
        ),
        (
            STITCHER_ORIGIN_REFRESHES,
            "Origin playlist refreshes, by channel and outcome.",
        ),
        (STITCHER_BREAKS_DETECTED, "Ad breaks detected, by channel."),
        (
            STITCHER_DECISION_ERRORS,
            "Pod decisions that failed (slate instead).",
        ),
        (
            STITCHER_DECISION_TIMEOUTS,
            "Pod decisions that timed out (slate instead).",
        ),
        (
            STITCHER_DECISIONS_ON_REQUEST,
            "Decisions a playlist request waited for.",
        ),
        (
            STITCHER_DECISIONS_AHEAD,
            "Decisions made ahead, from the cue, before any playlist request needed them.",
        ),
        (
            STITCHER_FIXED_REPLACED,
            "Breaks a render fixed undecided whose pod another node had stored first (adopted).",
        ),
        (
            STITCHER_BREAK_SECONDS,
            "Seconds of breaks given to ads and to slate, by channel and kind.",
        ),
        (
            STITCHER_AD_SEGMENTS_SERVED,
            "Ad segments served, by channel.",
        ),
        (
            STITCHER_SERVER_BEACONS,
            "Server-side beacons emitted, by event.",
        ),
        (
            STITCHER_BEACONS_LOST,
            "Server-side beacons that could not be stored.",
        ),
        (
            STITCHER_PROXY_FETCHES,
            "Segments fetched for proxy delivery, by outcome.",
        ),
        (
            EVENTS_REJECTED_BATCHES,
            "Event batches refused as malformed.",
        ),
        (EVENTS_REJECTED_TOKENS, "Tracking tokens refused."),
        (
            EVENTS_REFUSED_INSTANCES,
            "Posted events refused: ad instance not issued to their session.",
        ),
        (
            EVENTS_BUSY_REJECTIONS,
            "Event batches refused because the store was busy.",
        ),
        (
            EVENTS_UNAVAILABLE_REJECTIONS,
            "Event batches refused because the store was unavailable (unhealthy or closing).",
        ),
        (DECISION_CATALOG_RELOADS, "Catalog versions that went live."),
        (DECISION_CATALOG_RELOAD_ERRORS, "Catalog versions refused."),
        (
            DECISION_BIDDER_RESPONSES,
            "Bidder responses, by bidder and outcome.",
        ),
        (PRIVACY_ERASURES, "Erasure requests carried out."),
    ] {
        describe_counter!(name, help);
    }
    for (name, help) in [
        (HTTP_IN_FLIGHT, "Requests in flight."),
        (
            HTTP_QUEUE_DELAY,
            "How long a ready task waits for the runtime (smoothed): the load signal of shedding.",
        ),
        (HTTP_CONNECTIONS_OPEN, "Connections open."),
        (STITCHER_SESSIONS, "Live sessions, by channel."),
    ] {
        describe_gauge!(name, help);
    }
    for (name, help) in [
        (HTTP_REQUEST_DURATION, "Request latency, by route."),
        (
            STITCHER_ORIGIN_REFRESH_DURATION,
            "Origin refresh latency, by channel.",
        ),
        (
            STITCHER_DECISION_DURATION,
            "Pod decision latency, by channel.",
        ),
    ] {
        describe_histogram!(name, Unit::Seconds, help);
    }
}

/// Latency buckets (seconds) for every histogram: sub-millisecond to several seconds.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0,
];

/// A histogram as counts per [`LATENCY_BUCKETS`] bucket (the last slot counts values above the last bound).
#[derive(Debug, Default)]
pub struct Buckets {
    counts: [AtomicU64; LATENCY_BUCKETS.len() + 1],
}

impl Buckets {
    fn observe(&self, value: f64) {
        let i = LATENCY_BUCKETS
            .iter()
            .position(|b| value <= *b)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
    }

    /// The counts per bucket, now.
    pub fn counts(&self) -> [u64; LATENCY_BUCKETS.len() + 1] {
        std::array::from_fn(|i| self.counts[i].load(Ordering::Relaxed))
    }
}

impl metrics::HistogramFn for Buckets {
    fn record(&self, value: f64) {
        self.observe(value);
    }
}

/// The storage of [`Live`]: atomics for counters and gauges, [`Buckets`] for histograms.
#[derive(Debug, Default, Clone, Copy)]
pub struct LiveStorage;

impl Storage<Key> for LiveStorage {
    type Counter = Arc<AtomicU64>;
    type Gauge = Arc<AtomicU64>;
    type Histogram = Arc<Buckets>;

    fn counter(&self, _: &Key) -> Self::Counter {
        Arc::new(AtomicU64::new(0))
    }

    fn gauge(&self, _: &Key) -> Self::Gauge {
        Arc::new(AtomicU64::new(0))
    }

    fn histogram(&self, _: &Key) -> Self::Histogram {
        Arc::new(Buckets::default())
    }
}

/// The live values of every metric, for the dashboard.
pub struct Live {
    registry: Registry<Key, LiveStorage>,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live").finish_non_exhaustive()
    }
}

impl Default for Live {
    fn default() -> Self {
        Live {
            registry: Registry::new(LiveStorage),
        }
    }
}

fn labels_match(key: &Key, want: &[(&str, &str)]) -> bool {
    want.iter()
        .all(|(k, v)| key.labels().any(|l| l.key() == *k && l.value() == *v))
}

impl Live {
    /// The sum of counter `name` over the series whose labels include `labels`.
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        let mut total = 0;
        self.registry.visit_counters(|key, value| {
            if key.name() == name && labels_match(key, labels) {
                total += value.load(Ordering::Relaxed);
            }
        });
        total
    }

    /// Counter `name` summed per value of its label `by`.
    pub fn counter_by(&self, name: &str, by: &str) -> std::collections::BTreeMap<String, u64> {
        self.counter_by_labels(name, by, &[])
    }

    /// Counter `name` over the series whose labels include `labels`, summed per value of its label `by`.
    pub fn counter_by_labels(
        &self,
        name: &str,
        by: &str,
        labels: &[(&str, &str)],
    ) -> std::collections::BTreeMap<String, u64> {
        let mut out = std::collections::BTreeMap::new();
        self.registry.visit_counters(|key, value| {
            if key.name() != name || !labels_match(key, labels) {
                return;
            }
            if let Some(label) = key.labels().find(|l| l.key() == by) {
                *out.entry(label.value().to_owned()).or_default() += value.load(Ordering::Relaxed);
            }
        });
        out
    }

    /// Gauge `name` (the first series), if recorded.
    pub fn gauge(&self, name: &str) -> Option<f64> {
        let mut found = None;
        self.registry.visit_gauges(|key, value| {
            if key.name() == name && found.is_none() {
                found = Some(f64::from_bits(value.load(Ordering::Relaxed)));
            }
        });
        found
    }

    /// Histogram `name`'s bucket counts summed over the series `keep` accepts.
    pub fn buckets(
        &self,
        name: &str,
        keep: impl Fn(&Key) -> bool,
    ) -> [u64; LATENCY_BUCKETS.len() + 1] {
        let mut total = [0; LATENCY_BUCKETS.len() + 1];
        self.registry.visit_histograms(|key, h| {
            if key.name() == name && keep(key) {
                for (t, c) in total.iter_mut().zip(h.counts()) {
                    *t += c;
                }
            }
        });
        total
    }
}

impl Live {
    /// Histogram `name`'s bucket counts per value of its label `by`.
    pub fn buckets_by(
        &self,
        name: &str,
        by: &str,
    ) -> std::collections::BTreeMap<String, [u64; LATENCY_BUCKETS.len() + 1]> {
        let mut out: std::collections::BTreeMap<String, [u64; LATENCY_BUCKETS.len() + 1]> =
            std::collections::BTreeMap::new();
        self.registry.visit_histograms(|key, h| {
            if key.name() != name {
                return;
            }
            if let Some(label) = key.labels().find(|l| l.key() == by) {
                let total = out
                    .entry(label.value().to_owned())
                    .or_insert([0; LATENCY_BUCKETS.len() + 1]);
                for (t, c) in total.iter_mut().zip(h.counts()) {
                    *t += c;
                }
            }
        });
        out
    }
}

/// The `q` quantile of a bucketed histogram, interpolated linearly within its bucket (as Prometheus'
/// `histogram_quantile` does), in the histogram's unit; `None` without observations or when it falls above
/// the last bound.
pub fn quantile(counts: &[u64; LATENCY_BUCKETS.len() + 1], q: f64) -> Option<f64> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = q * total as f64;
    let mut below = 0u64;
    for (i, &n) in counts.iter().enumerate() {
        if (below + n) as f64 >= rank && n > 0 {
            let upper = *LATENCY_BUCKETS.get(i)?;
            let lower = if i == 0 { 0.0 } else { LATENCY_BUCKETS[i - 1] };
            return Some(lower + (upper - lower) * (rank - below as f64) / n as f64);
        }
        below += n;
    }
    None
}

/// The recorder installed process-wide: the Prometheus exporter's, and [`Live`] beside it.
pub(crate) struct FanOut {
    pub(crate) prometheus: metrics_exporter_prometheus::PrometheusRecorder,
    pub(crate) live: Arc<Live>,
}

impl Recorder for FanOut {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.prometheus.describe_counter(key, unit, description);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.prometheus.describe_gauge(key, unit, description);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.prometheus.describe_histogram(key, unit, description);
    }

    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        let live = self.live.registry.get_or_create_counter(key, |c| c.clone());
        Counter::from_arc(Arc::new(Both(
            self.prometheus.register_counter(key, metadata),
            live,
        )))
    }

    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        let live = self.live.registry.get_or_create_gauge(key, |g| g.clone());
        Gauge::from_arc(Arc::new(Both(
            self.prometheus.register_gauge(key, metadata),
            live,
        )))
    }

    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
        let live = self
            .live
            .registry
            .get_or_create_histogram(key, |h| h.clone());
        Histogram::from_arc(Arc::new(Both(
            self.prometheus.register_histogram(key, metadata),
            live,
        )))
    }
}

/// One measurement handed to both sinks.
struct Both<P, L>(P, L);

impl metrics::CounterFn for Both<Counter, Arc<AtomicU64>> {
    fn increment(&self, value: u64) {
        self.0.increment(value);
        metrics::CounterFn::increment(&*self.1, value);
    }

    fn absolute(&self, value: u64) {
        self.0.absolute(value);
        metrics::CounterFn::absolute(&*self.1, value);
    }
}

impl metrics::GaugeFn for Both<Gauge, Arc<AtomicU64>> {
    fn increment(&self, value: f64) {
        self.0.increment(value);
        metrics::GaugeFn::increment(&*self.1, value);
    }

    fn decrement(&self, value: f64) {
        self.0.decrement(value);
        metrics::GaugeFn::decrement(&*self.1, value);
    }

    fn set(&self, value: f64) {
        self.0.set(value);
        metrics::GaugeFn::set(&*self.1, value);
    }
}

impl metrics::HistogramFn for Both<Histogram, Arc<Buckets>> {
    fn record(&self, value: f64) {
        self.0.record(value);
        self.1.observe(value);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn quantiles_interpolate_within_buckets() {
        let mut counts = [0u64; LATENCY_BUCKETS.len() + 1];
        // 50 observations in (0.005, 0.01], 50 in (0.01, 0.025].
        counts[6] = 50;
        counts[7] = 50;
        let p50 = quantile(&counts, 0.5).unwrap();
        assert!((p50 - 0.01).abs() < 1e-12, "{p50}");
        let p99 = quantile(&counts, 0.99).unwrap();
        assert!((p99 - (0.01 + 0.015 * 49.0 / 50.0)).abs() < 1e-12, "{p99}");
        assert_eq!(quantile(&[0; LATENCY_BUCKETS.len() + 1], 0.5), None);
    }

    #[test]
    fn live_reads_what_was_recorded_by_labels() {
        let live = Arc::new(Live::default());
        let recorder = FanOut {
            prometheus: metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder(),
            live: live.clone(),
        };
        metrics::with_local_recorder(&recorder, || {
            metrics::counter!(HTTP_SHED, "class" => "beacon").increment(3);
            metrics::counter!(HTTP_SHED, "class" => "admin").increment(1);
            metrics::histogram!(HTTP_REQUEST_DURATION, "route" => "/a").record(0.003);
        });
        assert_eq!(live.counter(HTTP_SHED, &[]), 4);
        assert_eq!(live.counter(HTTP_SHED, &[("class", "beacon")]), 3);
        assert_eq!(live.counter_by(HTTP_SHED, "class")["admin"], 1);
        let buckets = live.buckets(HTTP_REQUEST_DURATION, |_| true);
        assert_eq!(buckets.iter().sum::<u64>(), 1);
    }
}
