//! `interlude origin`: a simulated live packager serving a channel of real media with SCTE-35 ad breaks.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use interlude_server::ops::endpoints as ops;
use interlude_server::{Readiness, telemetry};
use interlude_sim::clock::{Clock, ScaledClock, SystemClock};
use interlude_sim::origin::{CueSignal, MarkerDialect, OriginConfig, OriginState, router};

/// Flags for `interlude origin` (override the `[origin]` section of the config).
#[derive(Debug, clap::Args)]
pub(crate) struct OriginArgs {
    /// Listen address.
    #[arg(
        long,
        env = "INTERLUDE_ORIGIN_LISTEN",
        default_value = "127.0.0.1:8081"
    )]
    pub(crate) origin_listen: SocketAddr,
    /// Marker dialect.
    #[arg(long, value_enum)]
    dialect: Option<DialectArg>,
    /// SCTE-35 command carried by the markers.
    #[arg(long, value_enum)]
    signal: Option<SignalArg>,
    /// Seconds between break starts.
    #[arg(long)]
    break_interval_secs: Option<u64>,
    /// Break length in seconds.
    #[arg(long)]
    break_duration_secs: Option<u64>,
    /// Run channel time this many times faster than real time (tests and demos).
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum DialectArg {
    CueOut,
    Daterange,
    Oatcls,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum SignalArg {
    SpliceInsert,
    TimeSignal,
}

impl OriginArgs {
    /// The config with the flags applied, validated.
    pub(crate) fn apply(&self, mut config: OriginConfig) -> anyhow::Result<OriginConfig> {
        if let Some(d) = self.dialect {
            config.dialect = match d {
                DialectArg::CueOut => MarkerDialect::CueOut,
                DialectArg::Daterange => MarkerDialect::Daterange,
                DialectArg::Oatcls => MarkerDialect::Oatcls,
            };
        }
        if let Some(s) = self.signal {
            config.signal = match s {
                SignalArg::SpliceInsert => CueSignal::SpliceInsert,
                SignalArg::TimeSignal => CueSignal::TimeSignal,
            };
        }
        if let Some(v) = self.break_interval_secs {
            config.break_interval_secs = v;
        }
        if let Some(v) = self.break_duration_secs {
            config.break_duration_secs = v;
        }
        config.validate()?;
        Ok(config)
    }

    /// How many times faster than real time the channel runs.
    pub(crate) fn speed(&self) -> f64 {
        self.speed
    }

    /// The clock the flags ask for.
    pub(crate) fn clock(&self) -> anyhow::Result<Arc<dyn Clock>> {
        anyhow::ensure!(
            self.speed.is_finite() && self.speed > 0.0,
            "--speed must be a positive number"
        );
        Ok(if self.speed == 1.0 {
            Arc::new(SystemClock)
        } else {
            Arc::new(ScaledClock::new(chrono::Utc::now(), self.speed))
        })
    }
}

pub(crate) async fn run(
    args: OriginArgs,
    config: OriginConfig,
    grace: Duration,
) -> anyhow::Result<()> {
    let config = args.apply(config)?;
    let state = OriginState::new(config.clone(), args.clock()?);
    let readiness = Readiness::new();
    let metrics = telemetry::metrics_handle()?;
    interlude_sim::origin::describe_metrics();
    let app =
        ops::with_request_metrics(router(state).merge(ops::router(metrics, readiness.clone())));
    tracing::info!(
        master = %format!("http://{}/live/{}/master.m3u8", args.origin_listen, config.channel),
        cmaf_master = %format!(
            "http://{}/live/{}/master.m3u8",
            args.origin_listen,
            interlude_sim::origin::cmaf_channel(&config.channel)
        ),
        dialect = ?config.dialect,
        signal = ?config.signal,
        break_every_secs = config.break_interval_secs,
        break_secs = config.break_duration_secs,
        "Origin serving."
    );
    readiness.set(true);
    ops::serve(app, args.origin_listen, grace, ops::shutdown_signal())
        .await
        .context("serving the origin")?;
    Ok(())
}
