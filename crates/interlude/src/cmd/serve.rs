//! `interlude serve`: the ad-insertion server, as the composition root builds it.

use std::sync::Arc;

use interlude_server::ops::endpoints as ops;
use interlude_server::stitcher::Clock;
use interlude_server::{App, InterludeConfig};

/// Flags for `interlude serve` (per-run knobs; the deployment itself is described by the config file).
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// Listen address, overriding `server.listen`.
    #[arg(long, env = "INTERLUDE_LISTEN")]
    pub(crate) listen: Option<std::net::SocketAddr>,
    /// Run without secrets for local development: the public development signing key and pseudonym secret
    /// when none are configured, read routes open and anonymous client-side event posts accepted when no
    /// tokens are configured. Never in production: anyone can forge tracking URLs.
    #[arg(long)]
    pub(crate) insecure_dev: bool,
}

pub(crate) async fn run(args: ServeArgs, mut config: InterludeConfig) -> anyhow::Result<()> {
    if let Some(listen) = args.listen {
        config.server.listen = listen;
    }
    config.server.insecure_dev = args.insecure_dev;
    if args.insecure_dev {
        tracing::warn!(
            "--insecure-dev: development secrets and open routes; never use this in production."
        );
    }
    let clock: Clock = Arc::new(chrono::Utc::now);
    let app = App::build(&config, clock).await?;
    tracing::info!(listen = %config.server.listen, base_url = %config.server.base_url(),
        channels = config.stitcher.channels.len(), "Serving.");
    // On SIGTERM or Ctrl-C: not ready, stop accepting, drain HTTP (`server.shutdown_grace_secs`), submit the
    // buffered beacons, then commit what the event store has queued and close it (App::serve_on).
    app.serve(ops::shutdown_signal()).await?;
    tracing::info!("Stopped.");
    Ok(())
}
