//! Logging and metrics set-up, done once per process.
//!
//! Logs go through `tracing` (human text by default, JSON lines with `log.format = "json"`); metrics through the
//! `metrics` facade into a Prometheus recorder whose text is served at `GET /metrics`, and into the live
//! registry the dashboard reads ([`metrics`] declares every name; the event store's are in
//! `interlude_store::metrics`).

pub mod metrics;

use std::sync::{Arc, OnceLock};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

use crate::config::{LogConfig, LogFormat};
use crate::{Error, Result};

/// Installs the global `tracing` subscriber. Call once, early; a second call is an error. Human logs are
/// coloured only on a terminal and never with `NO_COLOR` set (see [`colour_logs`]).
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
        .with_ansi(colour_logs(
            std::io::IsTerminal::is_terminal(&std::io::stderr()),
            std::env::var_os("NO_COLOR").as_deref(),
        ))
        .with_writer(std::io::stderr);
    let result = match config.format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    result.map_err(|e| Error::Telemetry(e.to_string()))
}

/// Whether log lines carry ANSI colours: only when they go to a terminal (escape codes in a redirected log
/// file or a pipe are noise), and not when `NO_COLOR` is set to a non-empty value (<https://no-color.org>).
pub fn colour_logs(terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Returns the process-wide Prometheus handle, installing the recorder on first use.
///
/// The `metrics` facade has one global recorder per process, so every router in the process (and every test in
/// one test binary) shares it.
pub fn metrics_handle() -> Result<PrometheusHandle> {
    Ok(installed()?.0.clone())
}

/// The live registry every metric is also recorded into (the dashboard's source), installing the recorder
/// on first use.
pub fn live_metrics() -> Result<Arc<metrics::Live>> {
    Ok(installed()?.1.clone())
}

fn installed() -> Result<&'static (PrometheusHandle, Arc<metrics::Live>)> {
    static INSTALLED: OnceLock<(PrometheusHandle, Arc<metrics::Live>)> = OnceLock::new();
    if let Some(installed) = INSTALLED.get() {
        return Ok(installed);
    }
    let prometheus = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Suffix("_seconds".to_owned()),
            metrics::LATENCY_BUCKETS,
        )
        .map_err(|e| Error::Telemetry(e.to_string()))?
        .build_recorder();
    let handle = prometheus.handle();
    let live = Arc::new(metrics::Live::default());
    let recorder = metrics::FanOut {
        prometheus,
        live: live.clone(),
    };
    // Only the first caller installs; a racing second caller gets the first one's handles.
    if INSTALLED.set((handle.clone(), live)).is_ok() {
        ::metrics::set_global_recorder(recorder).map_err(|e| Error::Telemetry(e.to_string()))?;
        metrics::describe();
        // The event store records its own metrics (health, disk, commits, waits); it declares them, the
        // server registers them, once, with the server's own.
        interlude_store::metrics::describe();
        // So are the outbox's (pixels queued, fired, failed, retried, dead-lettered; queue depth).
        interlude_outbox::metrics::describe();
        spawn_upkeep(handle);
    }
    INSTALLED
        .get()
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

#[cfg(test)]
mod tests {
    use super::colour_logs;
    use std::ffi::OsStr;

    #[test]
    fn logs_are_coloured_only_on_a_terminal_without_no_color() {
        assert!(colour_logs(true, None));
        // An empty NO_COLOR does not count as set (no-color.org).
        assert!(colour_logs(true, Some(OsStr::new(""))));
        assert!(!colour_logs(true, Some(OsStr::new("1"))));
        assert!(!colour_logs(false, None));
        assert!(!colour_logs(false, Some(OsStr::new("1"))));
    }
}
