//! The `interlude` command: every Interlude role in one binary.
//!
//! `serve` runs the ad-insertion server, `origin` a simulated live packager, `demo` the whole loop on a laptop,
//! `loadgen` an HTTP load generator, `bench` the end-to-end benchmarks, `scte35` a cue codec tool, and `config`
//! prints the effective configuration.

mod alloc;
mod cmd;
mod config;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use config::AppConfig;
use interlude_server::LogFormat;

/// Server-side ad insertion and exactly-once ad event counting for live streams.
#[derive(Debug, Parser)]
#[command(name = "interlude", version, about)]
struct Cli {
    /// Configuration file (TOML). Without one, built-in defaults apply; `INTERLUDE_<SECTION>__<KEY>` variables
    /// override either.
    #[arg(long, short = 'c', global = true, env = "INTERLUDE_CONFIG")]
    config: Option<PathBuf>,
    /// Log format: human-readable text or one JSON object per line.
    #[arg(long, global = true, env = "INTERLUDE_LOG_FORMAT", value_enum)]
    log_format: Option<LogFormatArg>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormatArg {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the ad-insertion server (stitcher, ad API, collector, admin, metrics).
    Serve(cmd::serve::ServeArgs),
    /// Run one event processor of distributed mode (Kafka log → PostgreSQL, exactly once).
    Process(cmd::process::ProcessArgs),
    /// Run creative conditioning workers on the shared job queue (distributed mode: PostgreSQL).
    Condition(cmd::condition::ConditionArgs),
    /// Shadow replay: reprocess recorded events with a candidate configuration; `replay diff` explains changes.
    Replay(cmd::replay::ReplayArgs),
    /// The whole loop on one machine: origin, stitcher, simulated viewers, counted beacons.
    Demo(cmd::demo::DemoArgs),
    /// Run a simulated live origin: an HLS channel of real media with SCTE-35 ad breaks on a schedule.
    Origin(cmd::origin::OriginArgs),
    /// Closed-loop HTTP load against the given URLs, with latency percentiles.
    Loadgen(cmd::loadgen::LoadgenArgs),
    /// Benchmarks that start what they measure and quote a ratio against a baseline from the same run.
    Bench {
        #[command(subcommand)]
        command: cmd::bench::BenchCommand,
    },
    /// SCTE-35 cue tools: decode, encode, list the cues of a transport stream.
    Scte35 {
        #[command(subcommand)]
        command: cmd::scte35::Scte35Command,
    },
    /// The event contract: compatibility of a schema change, and old events against today's contract.
    Contract {
        #[command(subcommand)]
        command: cmd::contract::ContractCommand,
    },
    /// Print the effective configuration (defaults + file + environment) as TOML, or the error in it.
    Config,
    /// The embedded event store offline: verify it, export what it holds.
    Store {
        #[command(subcommand)]
        command: cmd::store::StoreCommand,
    },
}

fn main() -> ExitCode {
    alloc::keep_small_pages();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    // The codec tools need no configuration, so a broken config file does not stand in their way.
    if let Command::Scte35 { command } = cli.command {
        return cmd::scte35::run(command);
    }
    if let Command::Contract { command } = cli.command {
        return cmd::contract::run(command);
    }
    let mut config = AppConfig::load(cli.config.as_deref()).context("loading configuration")?;
    if let Some(format) = cli.log_format {
        config.log.format = match format {
            LogFormatArg::Human => LogFormat::Human,
            LogFormatArg::Json => LogFormat::Json,
        };
    }
    match cli.command {
        Command::Config => {
            print!("{}", config.to_toml()?);
            Ok(())
        }
        Command::Scte35 { command } => cmd::scte35::run(command),
        Command::Contract { command } => cmd::contract::run(command),
        Command::Demo(args) => {
            interlude_server::telemetry::init_logging(&config.log)?;
            keep_off_beacon_cpus(&config.server)?;
            runtime()?.block_on(cmd::demo::run(args, config))
        }
        Command::Origin(args) => {
            interlude_server::telemetry::init_logging(&config.log)?;
            let grace = std::time::Duration::from_secs(config.server.shutdown_grace_secs);
            runtime()?.block_on(cmd::origin::run(args, config.origin, grace))
        }
        Command::Loadgen(args) => runtime()?.block_on(cmd::loadgen::run(args)),
        Command::Bench { command } => runtime()?.block_on(cmd::bench::run(command, config)),
        Command::Replay(args) => cmd::replay::run(args, config.interlude),
        Command::Condition(args) => {
            interlude_server::telemetry::init_logging(&config.log)?;
            runtime()?.block_on(cmd::condition::run(args, config.interlude))
        }
        Command::Process(args) => {
            interlude_server::telemetry::init_logging(&config.log)?;
            runtime()?.block_on(cmd::process::run(args, config.interlude))
        }
        Command::Store { command } => {
            if cmd::store::run(command, config.events.data_dir.clone())? {
                Ok(())
            } else {
                anyhow::bail!("the store is damaged (see the report)")
            }
        }
        Command::Serve(args) => {
            interlude_server::telemetry::init_logging(&config.log)?;
            keep_off_beacon_cpus(&config.server)?;
            runtime()?.block_on(cmd::serve::run(args, config.interlude))
        }
    }
}

/// With `server.beacon_cpus` (and the beacon listener on), keeps this thread off those CPUs before the runtime
/// starts, so its workers and every other thread but the beacon listener's and the store writer's (which pin
/// themselves there) inherit the other CPUs.
fn keep_off_beacon_cpus(server: &interlude_server::config::ServerConfig) -> anyhow::Result<()> {
    if let Some(cpus) = server.beacon_cpus_list()? {
        interlude_server::ops::cpus::keep_off(&cpus);
    }
    Ok(())
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
