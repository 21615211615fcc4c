//! `interlude loadgen --viewers N --base URL --channel C`: a simulated audience against a deployment. Each viewer
//! is a player: it creates a session, refreshes its media playlist every `--refresh-ms`, fetches new ad segments
//! (unless `--no-ad-segments`), and with `--client-beacons` reports client-side beacons as it plays each ad,
//! misbehaving as the policy flags say. Viewers arrive over `--ramp-secs` (0: all at once, the break-start
//! herd). A live progress line shows requests/s, errors and latency; the end prints a table per endpoint and the
//! beacon ground truth next to what the collector counted, and `--out FILE` writes all of it as JSON.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use interlude_sim::audience::{
    ClientBeacons, Endpoint, EndpointReport, Stats, Viewer, ViewerTruth,
};
use interlude_sim::beacons::{BeaconPolicy, BeaconTruth};
use serde::Serialize;

/// Flags of the audience mode.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct AudienceArgs {
    /// Simulated viewers (switches `loadgen` from URL load to the audience).
    #[arg(long)]
    pub(crate) viewers: Option<usize>,
    /// The stitcher's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    base: String,
    /// The channel to watch.
    #[arg(long, default_value = "live1")]
    channel: String,
    /// The collector's base URL (client-side beacons, reports); the stitcher's by default.
    #[arg(long)]
    collector: Option<String>,
    /// Milliseconds between playlist refreshes (the target duration).
    #[arg(long, default_value_t = 2_000)]
    refresh_ms: u64,
    /// Seconds over which viewers arrive (0: all at once).
    #[arg(long, default_value_t = 0.0)]
    ramp_secs: f64,
    /// Do not fetch ad segments (no server-side beacons).
    #[arg(long)]
    no_ad_segments: bool,
    /// Report client-side beacons.
    #[arg(long)]
    client_beacons: bool,
    /// Probability a beacon is lost on the device.
    #[arg(long, default_value_t = 0.0)]
    drop: f64,
    /// Probability a beacon is sent twice.
    #[arg(long, default_value_t = 0.0)]
    duplicate: f64,
    /// Attempts per beacon, with exponential backoff.
    #[arg(long, default_value_t = 5)]
    max_attempts: u32,
    /// First retry delay in milliseconds.
    #[arg(long, default_value_t = 200)]
    backoff_ms: u64,
    /// Up to this many milliseconds of late delivery.
    #[arg(long, default_value_t = 0)]
    late_ms: u64,
    /// Viewer clocks off by up to this many milliseconds.
    #[arg(long, default_value_t = 0)]
    skew_ms: u64,
    /// Probability a viewer abandons an ad.
    #[arg(long, default_value_t = 0.0)]
    abandon: f64,
    /// Channel time runs this many times faster than real time (a sped-up simulated origin).
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
}

/// The machine-readable result.
#[derive(Debug, Serialize)]
struct AudienceResult {
    viewers: usize,
    elapsed_secs: f64,
    requests: u64,
    requests_per_sec: f64,
    errors: u64,
    endpoints: std::collections::BTreeMap<&'static str, EndpointReport>,
    ads_started_by_segment: usize,
    beacons: BeaconSummary,
    counted: Option<serde_json::Value>,
}

#[derive(Debug, Serialize)]
struct BeaconSummary {
    played: usize,
    dropped: usize,
    delivered: usize,
    gave_up: usize,
    delivered_impressions: usize,
    requests: u64,
    retries: u64,
    duplicates: u64,
}

pub(crate) async fn run(
    args: AudienceArgs,
    viewers: usize,
    duration: Duration,
    json: Option<std::path::PathBuf>,
) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("Mozilla/5.0 (SMART-TV; Linux) interlude-audience")
        .pool_max_idle_per_host(1024)
        .build()
        .context("building the HTTP client")?;
    let collector = args.collector.clone().unwrap_or_else(|| args.base.clone());
    let stats = Arc::new(Stats::default());
    let stop = Arc::new(AtomicBool::new(false));
    let policy = BeaconPolicy {
        drop: args.drop,
        duplicate: args.duplicate,
        max_attempts: args.max_attempts,
        backoff: Duration::from_millis(args.backoff_ms),
        late: Duration::from_millis(args.late_ms),
        clock_skew: Duration::from_millis(args.skew_ms),
        abandon: args.abandon,
    };
    let started = Instant::now();
    let speed = args.speed;
    let epoch = chrono::Utc::now();
    let clock: interlude_events::Clock = Arc::new(move || {
        let real = started.elapsed().as_secs_f64() * speed;
        epoch + chrono::TimeDelta::microseconds((real * 1e6) as i64)
    });
    let bar = indicatif::ProgressBar::new_spinner();
    bar.enable_steady_tick(Duration::from_millis(200));
    let ramp = Duration::try_from_secs_f64(args.ramp_secs.max(0.0)).unwrap_or_default();
    let mut handles = Vec::with_capacity(viewers);
    let spawner = {
        let (http, stats, stop, args) = (http.clone(), stats.clone(), stop.clone(), args.clone());
        let collector = collector.clone();
        tokio::spawn(async move {
            for v in 0..viewers {
                if !ramp.is_zero() {
                    let due = ramp.mul_f64(v as f64 / viewers.max(1) as f64);
                    tokio::time::sleep_until((started + due).into()).await;
                }
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let client = args.client_beacons.then(|| ClientBeacons {
                    policy: policy.clone(),
                    seed: v as u64,
                    speed: args.speed,
                    clock: clock.clone(),
                    fetch_ad_segments: !args.no_ad_segments,
                    collector: collector.clone(),
                });
                handles.push(tokio::spawn(interlude_sim::audience::watch_with(Viewer {
                    http: http.clone(),
                    base: args.base.clone(),
                    channel: args.channel.clone(),
                    rendition: v % 2,
                    refresh: Duration::from_millis(args.refresh_ms),
                    stop: stop.clone(),
                    client,
                    stats: Some(stats.clone()),
                    viewer_id: None,
                })));
            }
            handles
        })
    };
    let deadline = started + duration;
    let mut last = (Instant::now(), 0u64);
    while Instant::now() < deadline {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            () = interlude_server::ops::endpoints::shutdown_signal() => break,
        }
        let requests = stats.requests();
        let rate = (requests - last.1) as f64 / last.0.elapsed().as_secs_f64().max(1e-3);
        last = (Instant::now(), requests);
        let p = stats.report(Endpoint::Playlist);
        bar.set_message(format!(
            "{:>6.0}/s  requests {requests}  errors {}  playlist p50 {:.1} ms p99 {:.1} ms  {:.0} s",
            rate,
            stats.errors(),
            p.p50_us as f64 / 1000.0,
            p.p99_us as f64 / 1000.0,
            started.elapsed().as_secs_f64()
        ));
    }
    stop.store(true, Ordering::Relaxed);
    bar.finish_and_clear();
    let elapsed = started.elapsed().as_secs_f64();
    let mut truth = BeaconTruth::default();
    let mut started_ads = std::collections::HashSet::new();
    for h in spawner.await.context("the viewer spawner failed")? {
        let t: ViewerTruth = h.await.unwrap_or_default();
        truth.merge(t.beacons);
        started_ads.extend(t.ads_started);
    }
    let counted = reqwest::get(format!("{collector}/v1/reports?group_by=channel"))
        .await
        .ok()
        .and_then(|r| r.status().is_success().then_some(r));
    let counted = match counted {
        Some(r) => r.json::<serde_json::Value>().await.ok(),
        None => None,
    };
    let requests = stats.requests();
    let result = AudienceResult {
        viewers,
        elapsed_secs: elapsed,
        requests,
        requests_per_sec: requests as f64 / elapsed.max(1e-3),
        errors: stats.errors(),
        endpoints: Endpoint::ALL
            .iter()
            .map(|&e| (e.name(), stats.report(e)))
            .collect(),
        ads_started_by_segment: started_ads.len(),
        beacons: BeaconSummary {
            played: truth.played.len(),
            dropped: truth.dropped.len(),
            delivered: truth.delivered.len(),
            gave_up: truth.gave_up.len(),
            delivered_impressions: truth
                .delivered_of(interlude_events::contract::EventType::Impression),
            requests: truth.requests,
            retries: truth.retries,
            duplicates: truth.duplicates,
        },
        counted,
    };
    print_summary(&result);
    if let Some(path) = json {
        std::fs::write(&path, serde_json::to_string_pretty(&result)?)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("result written to {}", path.display());
    }
    Ok(())
}

fn print_summary(r: &AudienceResult) {
    println!(
        "{} viewers, {:.1} s: {} requests ({:.0}/s), {} errors",
        r.viewers, r.elapsed_secs, r.requests, r.requests_per_sec, r.errors
    );
    println!(
        "{:<12} {:>10} {:>8} {:>10} {:>10} {:>10} {:>10}",
        "endpoint", "ok", "errors", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms"
    );
    for (name, e) in &r.endpoints {
        let ms = |us: u64| us as f64 / 1000.0;
        println!(
            "{:<12} {:>10} {:>8} {:>10.2} {:>10.2} {:>10.2} {:>10.2}",
            name,
            e.ok,
            e.errors,
            ms(e.p50_us),
            ms(e.p90_us),
            ms(e.p99_us),
            ms(e.p999_us)
        );
    }
    let b = &r.beacons;
    println!(
        "ads started (first segment fetched): {}; client beacons played {}, dropped on device {}, delivered {} \
         ({} impressions), gave up {}; {} beacon requests, {} retries, {} duplicates",
        r.ads_started_by_segment,
        b.played,
        b.dropped,
        b.delivered,
        b.delivered_impressions,
        b.gave_up,
        b.requests,
        b.retries,
        b.duplicates
    );
    if let Some(c) = &r.counted {
        println!("collector report by channel: {c}");
    }
}
