//! `interlude serve`: the ad-insertion server.

use std::time::Duration;

use interlude_server::{InterludeConfig, Readiness, ops, telemetry};

/// Flags for `interlude serve` (per-run knobs; the deployment itself is described by the config file).
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// Listen address, overriding `server.listen`.
    #[arg(long, env = "INTERLUDE_LISTEN")]
    listen: Option<std::net::SocketAddr>,
}

pub(crate) async fn run(args: ServeArgs, mut config: InterludeConfig) -> anyhow::Result<()> {
    if let Some(listen) = args.listen {
        config.server.listen = listen;
    }
    let readiness = Readiness::new();
    let router =
        ops::with_request_metrics(ops::router(telemetry::metrics_handle()?, readiness.clone()));
    tracing::info!(listen = %config.server.listen, base_url = %config.server.base_url(), "Serving.");
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
