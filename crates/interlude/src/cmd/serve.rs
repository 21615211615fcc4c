//! `interlude serve`: the ad-insertion server.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use interlude_server::collector::{Collector, PipelineBeaconSink};
use interlude_server::stitcher::beacons::BeaconSink;
use interlude_server::stitcher::pods::ConfiguredPodSource;
use interlude_server::stitcher::session::MemorySessionStore;
use interlude_server::stitcher::{Clock, Stitcher, routes};
use interlude_server::{InterludeConfig, Readiness, ops, telemetry};

/// Flags for `interlude serve` (per-run knobs; the deployment itself is described by the config file).
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// Listen address, overriding `server.listen`.
    #[arg(long, env = "INTERLUDE_LISTEN")]
    pub(crate) listen: Option<std::net::SocketAddr>,
}

/// Builds the stitcher from the configuration, with the in-process pod source, its beacons going to `beacons`.
pub(crate) fn stitcher(
    config: &InterludeConfig,
    clock: Clock,
    beacons: Arc<dyn BeaconSink>,
) -> Arc<Stitcher> {
    let pods = Arc::new(ConfiguredPodSource::new(
        &config.stitcher.creatives,
        config.stitcher.tolerance_ms as f64 / 1000.0,
    ));
    Stitcher::new(
        config.stitcher.clone(),
        config.server.base_url(),
        Arc::new(MemorySessionStore::default()),
        pods,
        beacons,
        clock,
    )
}

/// Opens the event store and its collector, and the beacon sink that feeds the stitcher's beacons into it.
pub(crate) fn collector(
    config: &InterludeConfig,
    clock: Clock,
) -> anyhow::Result<(Collector, Arc<dyn BeaconSink>)> {
    let collector = Collector::open(&config.events, clock).with_context(|| {
        format!(
            "opening the event store in {}",
            config.events.data_dir.display()
        )
    })?;
    let sink: Arc<dyn BeaconSink> = Arc::new(PipelineBeaconSink::new(&collector));
    Ok((collector, sink))
}

pub(crate) async fn run(args: ServeArgs, mut config: InterludeConfig) -> anyhow::Result<()> {
    if let Some(listen) = args.listen {
        config.server.listen = listen;
    }
    let clock: Clock = Arc::new(chrono::Utc::now);
    let (collector, sink) = collector(&config, clock.clone())?;
    let stitcher = stitcher(&config, clock, sink);
    stitcher.start();
    let readiness = Readiness::new();
    let router = ops::with_request_metrics(
        routes::router(stitcher)
            .merge(interlude_server::collector::router(collector))
            .merge(ops::router(telemetry::metrics_handle()?, readiness.clone())),
    );
    tracing::info!(listen = %config.server.listen, base_url = %config.server.base_url(),
        channels = config.stitcher.channels.len(), "Serving.");
    readiness.set(true);
    ops::serve(
        router,
        config.server.listen,
        Duration::from_secs(config.server.shutdown_grace_secs),
        ops::shutdown_signal(),
    )
    .await?;
    Ok(())
}
