//! Metric names of outbound requests, declared once here with their descriptions ([`describe`]).
//!
//! Labels: `kind` is [`crate::Kind::as_str`]; `outcome` is the status class of an answer (`2xx`, `3xx`, `4xx`,
//! `5xx`, `1xx`) or the error ([`crate::Error::outcome`]: `refused`, `too_large`, `timeout`, `transport`,
//! `invalid`).

/// Counter, labels `kind` and `outcome`: outbound requests by how they ended.
pub const REQUESTS_TOTAL: &str = "outbound_requests_total";
/// Histogram, label `kind`: seconds from sending to the last body byte (or the error).
pub const REQUEST_DURATION_SECONDS: &str = "outbound_request_duration_seconds";
/// Counter, label `kind`: body bytes received (after decompression).
pub const RESPONSE_BYTES_TOTAL: &str = "outbound_response_bytes_total";
/// Counter, labels `kind` and `reason` (`scheme`, `no_host`, `port`, `address`, `too_many_redirects`,
/// `redirect`): requests the guard refused.
pub const REFUSED_TOTAL: &str = "outbound_refused_total";

/// Describes the metrics to the installed recorder; call once after installing it.
pub fn describe() {
    metrics::describe_counter!(
        REQUESTS_TOTAL,
        "Outbound requests to third parties, by kind and outcome (status class or error)."
    );
    metrics::describe_histogram!(
        REQUEST_DURATION_SECONDS,
        metrics::Unit::Seconds,
        "Duration of outbound requests, from sending to the last body byte, by kind."
    );
    metrics::describe_counter!(
        RESPONSE_BYTES_TOTAL,
        metrics::Unit::Bytes,
        "Body bytes received from third parties after decompression, by kind."
    );
    metrics::describe_counter!(
        REFUSED_TOTAL,
        "Outbound requests refused by the SSRF guard, by kind and reason."
    );
}
