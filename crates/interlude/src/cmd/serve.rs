//! `interlude serve`: the ad-insertion server.

use std::sync::Arc;
use std::time::Duration;

use interlude_server::stitcher::beacons::MemoryBeaconSink;
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

/// Builds the stitcher from the configuration, with the in-process adapters.
pub(crate) fn stitcher(
    config: &InterludeConfig,
    clock: Clock,
) -> (Arc<Stitcher>, Arc<MemoryBeaconSink>) {
    let beacons = Arc::new(MemoryBeaconSink::default());
    let pods = Arc::new(ConfiguredPodSource::new(
        &config.stitcher.creatives,
        config.stitcher.tolerance_ms as f64 / 1000.0,
    ));
    let stitcher = Stitcher::new(
        config.stitcher.clone(),
        config.server.base_url(),
        Arc::new(MemorySessionStore::default()),
        pods,
        beacons.clone(),
        clock,
    );
    (stitcher, beacons)
}

pub(crate) async fn run(args: ServeArgs, mut config: InterludeConfig) -> anyhow::Result<()> {
    if let Some(listen) = args.listen {
        config.server.listen = listen;
    }
    let (stitcher, _beacons) = stitcher(&config, Arc::new(chrono::Utc::now));
    stitcher.start();
    let readiness = Readiness::new();
    let router = ops::with_request_metrics(
        routes::router(stitcher)
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
