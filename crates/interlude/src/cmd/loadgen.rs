//! `interlude loadgen`: closed-loop HTTP load against URLs the operator names (loopback in tests and benches),
//! or with `--viewers N` a simulated audience of players (see [`super::audience`]).

use std::time::Duration;

use anyhow::Context;
use interlude_loadgen::{LoadReport, LoadSpec};

/// Flags for `interlude loadgen`.
#[derive(Debug, clap::Args)]
pub(crate) struct LoadgenArgs {
    /// Target URLs (http://host:port/path), cycled through by every connection.
    #[arg(required_unless_present = "viewers")]
    targets: Vec<String>,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Seconds to run.
    #[arg(long, short = 'd', default_value_t = 10.0)]
    duration_secs: f64,
    /// Per-request timeout in milliseconds.
    #[arg(long, default_value_t = 5_000)]
    timeout_ms: u64,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Write the result as JSON to this file.
    #[arg(long)]
    out: Option<std::path::PathBuf>,
    /// The audience mode.
    #[command(flatten)]
    audience: super::audience::AudienceArgs,
}

pub(crate) async fn run(args: LoadgenArgs) -> anyhow::Result<()> {
    let duration = Duration::try_from_secs_f64(args.duration_secs)
        .context("--duration-secs must be a positive number")?;
    if let Some(viewers) = args.audience.viewers {
        return super::audience::run(args.audience, viewers, duration, args.out).await;
    }
    let spec = LoadSpec {
        targets: args.targets,
        connections: args.connections,
        duration,
        timeout: Duration::from_millis(args.timeout_ms),
    };
    let report = interlude_loadgen::run(&spec).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    if let Some(path) = args.out {
        std::fs::write(&path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

pub(crate) fn print_table(report: &LoadReport) {
    let l = &report.latency;
    println!(
        "requests   {:>12}   ({:.0}/s over {:.1} s)",
        report.requests, report.requests_per_sec, report.elapsed_secs
    );
    println!("ok (2xx/3xx) {:>10}", report.ok);
    for (status, count) in &report.by_status {
        println!("  {status:<8} {count:>12}");
    }
    println!(
        "latency µs  p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
        l.p50_us, l.p90_us, l.p99_us, l.p999_us, l.max_us
    );
}
