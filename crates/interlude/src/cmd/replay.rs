//! `interlude replay`: shadow replay of the event pipeline (see `interlude_store::replay`).
//!
//! ```text
//! interlude replay --from data/events --config candidate.toml --out replay/candidate [--since T] [--until T]
//! interlude replay --from data/events --config production.toml --out replay/baseline
//! interlude replay diff replay/baseline replay/candidate [--json]
//! ```
//!
//! `--from` is an embedded store directory (read from a copy of its file) or `kafka` (the configured
//! `distributed.kafka` topic, read without joining any consumer group). The candidate's `events.policy` and
//! `events.line_item_cpm` drive processing; the output is a new store and `outcomes.jsonl` in `--out`, never
//! a production store.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, Utc};
use interlude_server::InterludeConfig;
use interlude_store::replay;

/// Flags for `interlude replay`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct ReplayArgs {
    #[command(subcommand)]
    command: Option<ReplayCommand>,
    /// The recorded log: an embedded store directory, or `kafka` for the configured event topic.
    #[arg(long)]
    from: Option<String>,
    /// Where the run's store and outcomes go (a new directory).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Only events received at or after this time (RFC 3339).
    #[arg(long)]
    since: Option<DateTime<Utc>>,
    /// Only events received before this time (RFC 3339).
    #[arg(long)]
    until: Option<DateTime<Utc>>,
}

#[derive(Debug, clap::Subcommand)]
enum ReplayCommand {
    /// Compares two runs of the same log: the report cells that change and the events that explain them.
    Diff {
        /// The baseline run's output directory.
        baseline: PathBuf,
        /// The candidate run's output directory.
        candidate: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn run(args: ReplayArgs, config: InterludeConfig) -> anyhow::Result<()> {
    if let Some(ReplayCommand::Diff {
        baseline,
        candidate,
        json,
    }) = args.command
    {
        let diff = replay::diff(&baseline, &candidate).context("comparing the runs")?;
        if json {
            println!("{}", serde_json::to_string_pretty(&diff)?);
            return Ok(());
        }
        println!(
            "{} records, {} with a different outcome",
            diff.records, diff.changed_outcomes
        );
        for (dimension, cells) in &diff.dimensions {
            for cell in cells {
                println!(
                    "{dimension} {:?}: impressions {} -> {}, completes {} -> {} ({} events explain it)",
                    cell.key,
                    cell.baseline.impressions,
                    cell.candidate.impressions,
                    cell.baseline.completes,
                    cell.candidate.completes,
                    cell.events.len()
                );
                for e in cell.events.iter().take(5) {
                    println!(
                        "    {} ({} of {}): {} -> {}",
                        e.event_id, e.event_type, e.ad_instance_id, e.baseline, e.candidate
                    );
                }
            }
        }
        return Ok(());
    }
    let from = args
        .from
        .context("--from is required (a store directory or `kafka`)")?;
    let out = args.out.context("--out is required (a new directory)")?;
    let records = if from == "kafka" {
        replay::read_kafka_log(&config.distributed.kafka, args.since, args.until)
            .with_context(|| format!("reading topic {}", config.distributed.kafka.topic))?
    } else {
        replay::read_embedded_log(std::path::Path::new(&from), args.since, args.until)
            .with_context(|| format!("reading the event log in {from}"))?
    };
    let prices: std::collections::BTreeMap<String, u64> = config
        .events
        .line_item_cpm
        .iter()
        .map(|(li, cpm)| (li.clone(), (cpm * 1e6).round() as u64))
        .collect();
    let summary = replay::run(&records, &config.events.policy, Arc::new(prices), &out)
        .with_context(|| format!("replaying into {}", out.display()))?;
    println!(
        "replayed {} records into {}: {}",
        summary.records,
        summary.out.display(),
        summary
            .outcomes
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}
