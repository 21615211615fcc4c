//! Metric names of the outbox, declared once here with their descriptions ([`describe`]).
//!
//! Labels: `event` is [`crate::PixelEvent::as_str`]; `host` is the `host:port` a pixel is sent to; `reason`
//! of failures is the status class (`4xx`, `5xx`) or the client's error outcome (`timeout`, `transport`,
//! `refused`, …); `reason` of dead letters is `rejected` (a definitive refusal) or `exhausted` (attempts used up).

/// Counter, label `event`: pixels queued (duplicates not counted).
pub const ENQUEUED_TOTAL: &str = "outbox_pixels_enqueued_total";
/// Counter, label `event`: pixels not queued because their key was seen before.
pub const DUPLICATES_TOTAL: &str = "outbox_pixels_duplicate_total";
/// Counter, label `event`: pixels delivered (a 2xx or 3xx answer).
pub const FIRED_TOTAL: &str = "outbox_pixels_fired_total";
/// Counter, label `reason`: sends that failed (every attempt counts).
pub const FAILED_TOTAL: &str = "outbox_send_failures_total";
/// Counter, label `event`: pixels put back for another attempt after a failure.
pub const RETRIED_TOTAL: &str = "outbox_pixels_retried_total";
/// Counter, labels `event` and `reason`: pixels given up and moved to the dead letters.
pub const DEAD_LETTERED_TOTAL: &str = "outbox_pixels_dead_lettered_total";
/// Counter: pixels put back unsent because their host had too many waiting.
pub const DEFERRED_TOTAL: &str = "outbox_pixels_deferred_total";
/// Gauge: pixels in the queue (leased ones included).
pub const QUEUE_DEPTH: &str = "outbox_queue_depth";
/// Gauge: sends in flight (including those waiting for their host's turn).
pub const IN_FLIGHT: &str = "outbox_in_flight";
/// Histogram, label `host`: seconds from sending a pixel to its answer or error.
pub const SEND_DURATION_SECONDS: &str = "outbox_send_duration_seconds";
/// Counter, label `op`: failed store operations (the dispatcher retries them).
pub const STORE_ERRORS_TOTAL: &str = "outbox_store_errors_total";

/// Describes the metrics to the installed recorder; call once after installing it.
pub fn describe() {
    metrics::describe_counter!(ENQUEUED_TOTAL, "Pixels queued for firing, by event.");
    metrics::describe_counter!(
        DUPLICATES_TOTAL,
        "Pixels not queued because the same ad instance, event and URL was queued before, by event."
    );
    metrics::describe_counter!(
        FIRED_TOTAL,
        "Pixels delivered to the third party (2xx or 3xx), by event."
    );
    metrics::describe_counter!(
        FAILED_TOTAL,
        "Pixel sends that failed, by status class or error."
    );
    metrics::describe_counter!(
        RETRIED_TOTAL,
        "Pixels put back for another attempt after a failed send, by event."
    );
    metrics::describe_counter!(
        DEAD_LETTERED_TOTAL,
        "Pixels given up (rejected, or attempts exhausted) and kept as dead letters, by event and reason."
    );
    metrics::describe_counter!(
        DEFERRED_TOTAL,
        "Pixels put back unsent because too many sends were waiting for their host."
    );
    metrics::describe_gauge!(QUEUE_DEPTH, "Pixels in the outbox queue.");
    metrics::describe_gauge!(IN_FLIGHT, "Pixel sends in flight.");
    metrics::describe_histogram!(
        SEND_DURATION_SECONDS,
        metrics::Unit::Seconds,
        "Duration of pixel sends, from sending to the answer or error, by host."
    );
    metrics::describe_counter!(
        STORE_ERRORS_TOTAL,
        "Failed outbox store operations, by operation."
    );
}
