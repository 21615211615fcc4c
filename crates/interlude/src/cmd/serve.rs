//! `interlude serve`: the ad-insertion server, as the composition root builds it.

use std::sync::Arc;
use std::time::Duration;

use interlude_server::ops::endpoints as ops;
use interlude_server::stitcher::Clock;
use interlude_server::{App, InterludeConfig};

/// Flags for `interlude serve` (per-run knobs; the deployment itself is described by the config file).
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// Listen address, overriding `server.listen`.
    #[arg(long, env = "INTERLUDE_LISTEN")]
    pub(crate) listen: Option<std::net::SocketAddr>,
}

pub(crate) async fn run(args: ServeArgs, mut config: InterludeConfig) -> anyhow::Result<()> {
    if let Some(listen) = args.listen {
        config.server.listen = listen;
    }
    let clock: Clock = Arc::new(chrono::Utc::now);
    let app = App::build(&config, clock).await?;
    let router = app.router()?;
    tracing::info!(listen = %config.server.listen, base_url = %config.server.base_url(),
        channels = config.stitcher.channels.len(), "Serving.");
    app.readiness.set(true);
    ops::serve_with_limits(
        router,
        config.server.listen,
        Duration::from_secs(config.server.shutdown_grace_secs),
        ops::shutdown_signal(),
        ops::ConnectionLimits::from(&config.server),
    )
    .await?;
    Ok(())
}
