//! `interlude condition`: creative conditioning workers without the rest of the server. In distributed mode
//! every node queues its new creatives in the PostgreSQL job table (`FOR UPDATE SKIP LOCKED`) and any number
//! of these workers, on machines with cores to spare, take them; nodes then set `condition.workers = 0`.
//! Outputs go to `condition.root`, a directory the serving nodes (or the CDN behind
//! `condition.public_base_url`) must see. Embedded mode's redb queue can be opened by one process only, so
//! there the server's own pool does the work.

use std::sync::Arc;

use anyhow::Context;
use interlude_server::InterludeConfig;
use interlude_server::ops::endpoints as ops;
use interlude_server::stitcher::Clock;

/// Flags for `interlude condition`.
#[derive(Debug, clap::Args)]
pub(crate) struct ConditionArgs {
    /// Jobs run at once, overriding `condition.workers` (at least 1 here).
    #[arg(long, env = "INTERLUDE_CONDITION_WORKERS")]
    workers: Option<usize>,
}

pub(crate) async fn run(args: ConditionArgs, mut config: InterludeConfig) -> anyhow::Result<()> {
    config.condition.enabled = true;
    config.condition.workers = args.workers.unwrap_or(config.condition.workers).max(1);
    config.validate()?;
    let clock: Clock = Arc::new(chrono::Utc::now);
    let conditioning = interlude_server::app::conditioning(&config, clock)
        .await?
        .context("conditioning did not start")?;
    tracing::info!(
        workers = config.condition.workers,
        root = %conditioning.root().display(),
        distributed = config.distributed.enabled,
        "Conditioning workers running."
    );
    ops::shutdown_signal().await;
    // A job stopped here resumes from its last finished rendition on whichever worker claims it next.
    conditioning.shutdown().await;
    tracing::info!("Stopped.");
    Ok(())
}
