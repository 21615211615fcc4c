//! `interlude bench memory`: does the memory a burst took come back once the burst is over?
//!
//! Starts the simulated origin and the server in this process (as `bench stitcher` does), with a short session
//! lifetime (`--session-ttl-secs`, 10 s), and measures the resident set size (RSS):
//! 1. the baseline, once the server serves its first playlist;
//! 2. the warm baseline: after a warm-up through the same routes (`--warmup-sessions`, `--warmup-beacons`: a
//!    tenth and a fifth of the burst by default) and once its sessions have expired. A serving node's page
//!    caches are full (bounded by configuration: the event store's `cache_mb`, 16 MiB each for the session
//!    and outbox files) and its allocator has its working set; a process that has served nothing has
//!    neither, so the cold baseline charges the burst for the caches a minute of normal traffic fills too.
//!    Both ratios are reported;
//! 3. a burst through the real HTTP routes, two floods at once: `--sessions` viewers (100,000) each starting a
//!    session (`POST /v1/sessions`), fetching their stitched media playlist and the first ad segment in it
//!    (a server-side beacon), and `--beacons` client-side beacons (`POST /v1/events`, 100 a request, every
//!    request sent twice as a player's retry would);
//! 4. then nothing: the sessions expire, and RSS is sampled once a second for `--observe-secs` (60).
//!
//! It reports both baselines, the peak (the kernel's high-water mark), RSS at the end of the observation and its
//! ratio to each baseline (issue 20: within 1.2× after 60 s), and, with jemalloc, the allocator's own account
//! (live bytes against resident pages) to tell memory the program still holds from memory the allocator kept.
//!
//! The allocator is fixed when the binary is built, so one process measures one allocator. `--vs BINARY`
//! compares two builds in one run: this binary and BINARY (e.g. built with `--no-default-features`, the system
//! allocator) each run the bench in a process of their own, in turn (A B A B … for `--rounds` pairs), and the
//! RSS figures are compared pair by pair. The load generator runs in the measured process too: its memory is
//! in both sides of every ratio.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::alloc;
use crate::config::AppConfig;

use super::bench::{create_session, wait_for};
use super::demo::start_stack;
use super::demo_report::Cleanup;
use super::origin::OriginArgs;

/// Client-side beacons per `POST /v1/events`.
const BEACONS_PER_REQUEST: u64 = 100;

/// Flags for `interlude bench memory`.
#[derive(Debug, clap::Args)]
pub(crate) struct MemoryBenchArgs {
    /// Viewers in the burst: each starts a session, fetches its media playlist and the first ad segment in it.
    #[arg(long, default_value_t = 100_000)]
    sessions: usize,
    /// Client-side beacons posted during the burst (100 a request, each request sent twice).
    #[arg(long, default_value_t = 500_000)]
    beacons: u64,
    /// Viewers of the warm-up before the warm baseline (0 with `--warmup-beacons 0`: no warm-up).
    #[arg(long, default_value_t = 10_000)]
    warmup_sessions: usize,
    /// Client-side beacons of the warm-up.
    #[arg(long, default_value_t = 100_000)]
    warmup_beacons: u64,
    /// Concurrent clients of each flood.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Seconds a session lives without a playlist request (`stitcher.session_ttl_secs` for this run).
    #[arg(long, default_value_t = 10)]
    session_ttl_secs: u64,
    /// Seconds RSS is sampled, once a second, after the burst.
    #[arg(long, default_value_t = 60)]
    observe_secs: u64,
    /// redb's page cache of the event store, in MiB (default: `events.store.cache_mb` of the configuration).
    #[arg(long)]
    cache_mb: Option<usize>,
    /// Where the server listens.
    #[arg(long, default_value = "127.0.0.1:18184")]
    listen: SocketAddr,
    /// Another `interlude` binary to compare with (e.g. one built with `--no-default-features`): this binary
    /// and that one then run the bench in turn, each in a process of its own, and the figures are paired.
    #[arg(long)]
    vs: Option<PathBuf>,
    /// Pairs of runs (A then B) with `--vs`.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    origin: OriginArgs,
}

/// One run's figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct MemoryRun {
    /// `jemalloc` or `system`.
    allocator: String,
    sessions: usize,
    session_ttl_secs: u64,
    cache_mb: usize,
    /// Seconds the burst took.
    burst_secs: f64,
    /// Sessions created, playlists served, ad segments fetched (server-side beacons), beacons acknowledged.
    sessions_created: u64,
    playlists: u64,
    ad_segments: u64,
    beacons_acknowledged: u64,
    /// Requests of the burst that failed (any non-success answer or transport error).
    failures: u64,
    /// RSS before the burst.
    baseline_rss_bytes: u64,
    /// The warm-up's size, and RSS once it is over and its sessions expired (none without a warm-up).
    #[serde(default)]
    warmup_sessions: usize,
    #[serde(default)]
    warmup_beacons: u64,
    #[serde(default)]
    warm_baseline_rss_bytes: Option<u64>,
    /// `end_rss_bytes / warm_baseline_rss_bytes`.
    #[serde(default)]
    ratio_to_warm_baseline: Option<f64>,
    /// jemalloc's account at the warm baseline.
    #[serde(default)]
    allocator_warm: Option<alloc::Stats>,
    /// The kernel's RSS high-water mark (`VmHWM`) at the end.
    peak_rss_bytes: u64,
    /// RSS once a second after the burst, the last one at `--observe-secs`.
    samples_rss_bytes: Vec<u64>,
    /// RSS at the end of the observation.
    end_rss_bytes: u64,
    /// `end_rss_bytes / baseline_rss_bytes`.
    ratio_to_baseline: f64,
    /// Seconds after the burst at which the node held no session any more.
    sessions_gone_after_secs: Option<u64>,
    /// jemalloc's account before the burst and at the end (none with the system allocator).
    allocator_baseline: Option<alloc::Stats>,
    allocator_end: Option<alloc::Stats>,
}

pub(crate) async fn run(args: MemoryBenchArgs, config: AppConfig) -> anyhow::Result<()> {
    if let Some(other) = args.vs.clone() {
        return compare(&args, &other).await;
    }
    let json = args.json;
    let result = measure(args, config).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        print_run(&result);
    }
    Ok(())
}

/// A field of `/proc/self/status` in bytes (`VmRSS`, `VmHWM`), if known (Linux).
fn status_bytes(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn rss() -> anyhow::Result<u64> {
    status_bytes("VmRSS:").context("no VmRSS in /proc/self/status (Linux only)")
}

/// What the floods did.
#[derive(Default)]
struct Tally {
    sessions: AtomicU64,
    playlists: AtomicU64,
    ad_segments: AtomicU64,
    beacons: AtomicU64,
    failures: AtomicU64,
}

async fn measure(args: MemoryBenchArgs, mut config: AppConfig) -> anyhow::Result<MemoryRun> {
    // Breaks two thirds of the time from the start, so most viewers find an ad segment to fetch.
    if config.origin == interlude_sim::origin::OriginConfig::default() {
        config.origin.break_interval_secs = 30;
        config.origin.break_duration_secs = 20;
        config.origin.first_break_secs = 0;
    }
    config.origin = args.origin.apply(config.origin)?;
    // One load generator's address starts every session: the per-address limit would measure itself.
    config.interlude.stitcher.session_rate_per_ip = 0.0;
    config.interlude.stitcher.session_ttl_secs = args.session_ttl_secs.max(1);
    config.interlude.stitcher.max_sessions = config
        .interlude
        .stitcher
        .max_sessions
        .max(args.sessions + 1);
    if let Some(mb) = args.cache_mb {
        config.interlude.events.store.cache_mb = mb;
    }
    let cache_mb = config.interlude.events.store.cache_mb;
    let stack = start_stack(&mut config, &args.origin, args.listen, false, None).await?;
    // The run's event store goes when the run ends, as the demo's does (each run left up to a GB behind).
    let _cleanup = Cleanup(stack.temporary.clone());
    let base = format!("http://{}", args.listen);
    let channel = config.origin.channel.clone();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .context("building the HTTP client")?;
    wait_for(
        &http,
        &format!("{base}/v1/channels/{channel}/origin/0.m3u8"),
    )
    .await?;
    // Let the first origin polls and start-up work settle before the baseline.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let baseline = rss()?;
    let allocator_baseline = alloc::stats();

    let live_sessions = || -> usize {
        stack
            .stitcher
            .channel_summaries()
            .iter()
            .map(|c| c.sessions)
            .sum()
    };
    let warm_baseline = if args.warmup_sessions > 0 || args.warmup_beacons > 0 {
        let warmup = Flood {
            viewers: 0..args.warmup_sessions,
            beacons: args.warmup_beacons,
            prefix: "warm",
        };
        let tally = Tally::default();
        warmup
            .run(&http, &base, &channel, args.concurrency, &tally)
            .await;
        // Its sessions expire (checked once a second, up to three lifetimes), then the node settles.
        let deadline = Instant::now() + Duration::from_secs(args.session_ttl_secs.max(1) * 3 + 30);
        while live_sessions() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
        Some((rss()?, alloc::stats()))
    } else {
        None
    };
    let (warm_baseline, allocator_warm) = match warm_baseline {
        Some((rss, stats)) => (Some(rss), stats),
        None => (None, None),
    };

    let tally = Tally::default();
    let started = Instant::now();
    let burst = Flood {
        viewers: args.warmup_sessions..args.warmup_sessions + args.sessions,
        beacons: args.beacons,
        prefix: "mem",
    };
    burst
        .run(&http, &base, &channel, args.concurrency, &tally)
        .await;
    let burst_secs = started.elapsed().as_secs_f64();
    drop(http);

    let mut samples = Vec::new();
    let mut sessions_gone_after_secs = None;
    let after = tokio::time::Instant::now();
    for second in 1..=args.observe_secs.max(1) {
        tokio::time::sleep_until(after + Duration::from_secs(second)).await;
        samples.push(rss()?);
        if live_sessions() == 0 && sessions_gone_after_secs.is_none() {
            sessions_gone_after_secs = Some(second);
        }
    }
    let end = samples.last().copied().unwrap_or(baseline);
    let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let run = MemoryRun {
        allocator: alloc::name().to_owned(),
        sessions: args.sessions,
        session_ttl_secs: args.session_ttl_secs,
        cache_mb,
        burst_secs,
        sessions_created: n(&tally.sessions),
        playlists: n(&tally.playlists),
        ad_segments: n(&tally.ad_segments),
        beacons_acknowledged: n(&tally.beacons),
        failures: n(&tally.failures),
        baseline_rss_bytes: baseline,
        warmup_sessions: args.warmup_sessions,
        warmup_beacons: args.warmup_beacons,
        warm_baseline_rss_bytes: warm_baseline,
        ratio_to_warm_baseline: warm_baseline.map(|w| end as f64 / w.max(1) as f64),
        allocator_warm,
        peak_rss_bytes: status_bytes("VmHWM:").unwrap_or(0),
        samples_rss_bytes: samples,
        end_rss_bytes: end,
        ratio_to_baseline: end as f64 / baseline.max(1) as f64,
        sessions_gone_after_secs,
        allocator_baseline,
        allocator_end: alloc::stats(),
    };
    // A burst that mostly failed measured nothing: say so instead of printing a flattering figure.
    let requests = run.sessions_created + run.beacons_acknowledged / BEACONS_PER_REQUEST;
    anyhow::ensure!(
        run.failures * 100 <= requests.max(1),
        "over 1% of the burst's requests failed ({} of {requests})",
        run.failures
    );
    Ok(run)
}

/// Viewers (by index: each index one viewer id) and unique client-side beacons sent at once, by
/// `concurrency` clients of each kind.
struct Flood {
    viewers: std::ops::Range<usize>,
    beacons: u64,
    /// Beacon event ids start with it, so a burst's beacons are new, not retries of a warm-up's.
    prefix: &'static str,
}

impl Flood {
    async fn run(
        &self,
        http: &reqwest::Client,
        base: &str,
        channel: &str,
        concurrency: usize,
        tally: &Tally,
    ) {
        let viewers = futures_util::stream::iter(self.viewers.clone())
            .map(|i| viewer(http, base, channel, i, tally))
            .buffer_unordered(concurrency.max(1))
            .collect::<Vec<()>>();
        let next = AtomicU64::new(0);
        let beacon_clients = futures_util::future::join_all(
            (0..concurrency.max(1))
                .map(|_| beacons(http, base, self.beacons, self.prefix, &next, tally)),
        );
        tokio::join!(viewers, beacon_clients);
    }
}

/// One viewer: starts a session, fetches its media playlist and the first ad segment in it (the server
/// records the impression and redirects to the creative, which is not followed).
async fn viewer(http: &reqwest::Client, base: &str, channel: &str, i: usize, tally: &Tally) {
    let Ok(id) = create_session(http, base, channel, i).await else {
        tally.failures.fetch_add(1, Ordering::Relaxed);
        return;
    };
    tally.sessions.fetch_add(1, Ordering::Relaxed);
    let playlist = match http.get(format!("{base}/s/{id}/0/media.m3u8")).send().await {
        Ok(r) if r.status().is_success() => r.text().await.unwrap_or_default(),
        _ => {
            tally.failures.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    tally.playlists.fetch_add(1, Ordering::Relaxed);
    // Segment lines may be absolute (the public base URL): keep the path from the session on.
    let Some(path) = playlist
        .lines()
        .find(|l| !l.starts_with('#') && l.contains("/ads/"))
        .and_then(|l| l.find("/s/").map(|at| l[at..].to_owned()))
    else {
        return;
    };
    match http.get(format!("{base}{path}")).send().await {
        Ok(r) if r.status().is_success() || r.status().is_redirection() => {
            tally.ad_segments.fetch_add(1, Ordering::Relaxed);
        }
        _ => {
            tally.failures.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One beacon client: posts batches of unique client-side impressions until `total` are taken, each batch
/// twice (the second a retry the collector must recognise).
async fn beacons(
    http: &reqwest::Client,
    base: &str,
    total: u64,
    prefix: &str,
    next: &AtomicU64,
    tally: &Tally,
) {
    loop {
        let first = next.fetch_add(BEACONS_PER_REQUEST, Ordering::Relaxed);
        if first >= total {
            return;
        }
        let now = chrono::Utc::now();
        let events: Vec<_> = (first..(first + BEACONS_PER_REQUEST).min(total))
            .map(|n| {
                serde_json::json!({
                    "schema_version": "1.0", "event_id": format!("{prefix}-{n}"), "ad_instance_id": format!("{prefix}-ai{n}"),
                    "event_type": "impression", "source": "client_side", "occurred_at": now, "received_at": now,
                    "session_id": format!("{prefix}-s{}", n / 4), "channel": "live1", "line_item_id": format!("li{}", n % 20),
                    "creative_id": format!("cr{}", n % 7), "device": "tv", "country": "FR"
                })
            })
            .collect();
        let body = match serde_json::to_vec(&events) {
            Ok(body) => body,
            Err(_) => return,
        };
        for attempt in 0..2 {
            let answered = http
                .post(format!("{base}/v1/events"))
                .header("user-agent", "AppleCoreMedia/1.0")
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await;
            match answered {
                Ok(r) if r.status().is_success() => {
                    if attempt == 0 {
                        tally
                            .beacons
                            .fetch_add(events.len() as u64, Ordering::Relaxed);
                    }
                }
                _ => {
                    tally.failures.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn print_run(r: &MemoryRun) {
    println!(
        "Memory after a burst ({}): {} sessions (TTL {} s), {} beacons, redb cache {} MiB",
        r.allocator, r.sessions, r.session_ttl_secs, r.beacons_acknowledged, r.cache_mb
    );
    println!(
        "  burst {:.1} s: {} sessions, {} playlists, {} ad segments, {} beacons acknowledged, {} failures",
        r.burst_secs,
        r.sessions_created,
        r.playlists,
        r.ad_segments,
        r.beacons_acknowledged,
        r.failures
    );
    println!(
        "  baseline RSS         {:>8.1} MiB",
        mb(r.baseline_rss_bytes)
    );
    if let Some(warm) = r.warm_baseline_rss_bytes {
        println!(
            "  warm baseline RSS    {:>8.1} MiB  (after {} viewers and {} beacons, sessions expired)",
            mb(warm),
            r.warmup_sessions,
            r.warmup_beacons
        );
    }
    println!("  peak RSS             {:>8.1} MiB", mb(r.peak_rss_bytes));
    let marks: Vec<String> = r
        .samples_rss_bytes
        .iter()
        .enumerate()
        .filter(|(i, _)| (i + 1) % 10 == 0)
        .map(|(i, b)| format!("{} s {:.0}", i + 1, mb(*b)))
        .collect();
    println!("  RSS after the burst  {} (MiB)", marks.join(", "));
    println!(
        "  RSS at {} s          {:>8.1} MiB  = {:.2}× the baseline",
        r.samples_rss_bytes.len(),
        mb(r.end_rss_bytes),
        r.ratio_to_baseline
    );
    if let Some(ratio) = r.ratio_to_warm_baseline {
        println!("                                     = {ratio:.2}× the warm baseline");
    }
    match r.sessions_gone_after_secs {
        Some(s) => println!("  sessions all expired {s} s after the burst"),
        None => println!("  sessions still live at the end of the observation"),
    }
    if let (Some(b), Some(e)) = (r.allocator_baseline, r.allocator_end) {
        println!(
            "  jemalloc live/resident  baseline {:.1}/{:.1} MiB, end {:.1}/{:.1} MiB (background threads: {})",
            mb(b.allocated),
            mb(b.resident),
            mb(e.allocated),
            mb(e.resident),
            e.background_threads
        );
        if let Some(w) = r.allocator_warm {
            println!(
                "  jemalloc live/resident  warm baseline {:.1}/{:.1} MiB",
                mb(w.allocated),
                mb(w.resident)
            );
        }
    }
}

/// This process's arguments for a child run: everything but `--vs` and `--rounds`, plus `--json`.
fn child_args() -> Vec<OsString> {
    let mut out = Vec::new();
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        let text = arg.to_string_lossy();
        if text == "--vs" || text == "--rounds" {
            args.next();
            continue;
        }
        if text.starts_with("--vs=") || text.starts_with("--rounds=") || text == "--json" {
            continue;
        }
        out.push(arg);
    }
    out.push("--json".into());
    out
}

/// Runs the bench in a child process of `binary` and reads its figures.
async fn child(binary: &std::path::Path) -> anyhow::Result<MemoryRun> {
    let mut command = std::process::Command::new(binary);
    command
        .args(child_args())
        .stderr(std::process::Stdio::inherit());
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .context("waiting for the child run")?
        .with_context(|| format!("running {}", binary.display()))?;
    anyhow::ensure!(
        output.status.success(),
        "{} bench memory failed: {}",
        binary.display(),
        output.status
    );
    serde_json::from_slice(&output.stdout)
        .with_context(|| format!("reading the figures of {}", binary.display()))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// This binary (A) against `other` (B), A B A B …, each run in a process of its own.
async fn compare(args: &MemoryBenchArgs, other: &std::path::Path) -> anyhow::Result<()> {
    let this = std::env::current_exe().context("locating this binary")?;
    let mut pairs = Vec::new();
    for round in 0..args.rounds.max(1) {
        eprintln!(
            "bench memory: round {} of {}: A = {}",
            round + 1,
            args.rounds.max(1),
            this.display()
        );
        let a = child(&this).await?;
        eprintln!(
            "bench memory: round {} of {}: B = {}",
            round + 1,
            args.rounds.max(1),
            other.display()
        );
        let b = child(other).await?;
        pairs.push((a, b));
    }
    let end_ratio = median(
        pairs
            .iter()
            .map(|(a, b)| a.end_rss_bytes as f64 / b.end_rss_bytes.max(1) as f64)
            .collect(),
    );
    let side = |pick: fn(&(MemoryRun, MemoryRun)) -> &MemoryRun| {
        serde_json::json!({
            "allocator": pairs.first().map(|p| pick(p).allocator.clone()),
            "median_baseline_rss_bytes": median(pairs.iter().map(|p| pick(p).baseline_rss_bytes as f64).collect()),
            "median_peak_rss_bytes": median(pairs.iter().map(|p| pick(p).peak_rss_bytes as f64).collect()),
            "median_end_rss_bytes": median(pairs.iter().map(|p| pick(p).end_rss_bytes as f64).collect()),
            "median_ratio_to_baseline": median(pairs.iter().map(|p| pick(p).ratio_to_baseline).collect()),
            "median_ratio_to_warm_baseline": median(pairs.iter().filter_map(|p| pick(p).ratio_to_warm_baseline).collect()),
        })
    };
    let (a, b) = (side(|p| &p.0), side(|p| &p.1));
    if args.json {
        let runs: Vec<_> = pairs.iter().map(|(a, b)| [a, b]).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "a": a, "b": b, "median_end_rss_ratio_a_to_b": end_ratio, "runs": runs,
            }))?
        );
        return Ok(());
    }
    for (i, (ra, rb)) in pairs.iter().enumerate() {
        println!("Round {}", i + 1);
        print_run(ra);
        print_run(rb);
    }
    println!(
        "Summary ({} rounds, A = this binary, B = --vs):",
        pairs.len()
    );
    for (name, side) in [("A", &a), ("B", &b)] {
        let f = |k: &str| side[k].as_f64().unwrap_or(f64::NAN);
        println!(
            "  {name} {:<9} baseline {:>7.1} MiB  peak {:>7.1} MiB  end {:>7.1} MiB  end/baseline {:.2}  end/warm baseline {:.2}",
            side["allocator"].as_str().unwrap_or("?"),
            f("median_baseline_rss_bytes") / 1048576.0,
            f("median_peak_rss_bytes") / 1048576.0,
            f("median_end_rss_bytes") / 1048576.0,
            f("median_ratio_to_baseline"),
            f("median_ratio_to_warm_baseline"),
        );
    }
    println!("  RSS at the end, A/B (median of pairs): {end_ratio:.2}");
    Ok(())
}
