//! Logging and metrics set-up, done once per process.
//!
//! Logs go through `tracing` (human text by default, JSON lines with `log.format = "json"`); metrics through the
//! `metrics` facade into a Prometheus recorder whose text is served at `GET /metrics`.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

use crate::config::{LogConfig, LogFormat};
use crate::{Error, Result};

/// Latency buckets (seconds) for request and decision histograms: sub-millisecond to several seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0,
];

/// Installs the global `tracing` subscriber. Call once, early; a second call is an error.
pub fn init_logging(config: &LogConfig) -> Result<()> {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.filter))
        .map_err(|e| Error::ConfigValue {
            key: "log.filter".to_owned(),
            reason: e.to_string(),
        })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_span_events(FmtSpan::NONE)
        .with_writer(std::io::stderr);
    let result = match config.format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    result.map_err(|e| Error::Telemetry(e.to_string()))
}

/// Returns the process-wide Prometheus handle, installing the recorder on first use.
///
/// The `metrics` facade has one global recorder per process, so every router in the process (and every test in
/// one test binary) shares it.
pub fn metrics_handle() -> Result<PrometheusHandle> {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), LATENCY_BUCKETS)
        .map_err(|e| Error::Telemetry(e.to_string()))?
        .build_recorder();
    let handle = recorder.handle();
    // Only the first caller installs; a racing second caller gets the first one's handle.
    if HANDLE.set(handle.clone()).is_ok() {
        metrics::set_global_recorder(recorder).map_err(|e| Error::Telemetry(e.to_string()))?;
        spawn_upkeep(handle.clone());
        return Ok(handle);
    }
    HANDLE
        .get()
        .cloned()
        .ok_or_else(|| Error::Telemetry("metrics recorder vanished".to_owned()))
}

/// Histograms are drained on render; upkeep keeps memory bounded when nobody scrapes.
fn spawn_upkeep(handle: PrometheusHandle) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
            loop {
                tick.tick().await;
                handle.run_upkeep();
            }
        });
    }
}
