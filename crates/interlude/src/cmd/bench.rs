//! `interlude bench stitcher`: the stitcher's playlist benchmark, in one run (and `bench decisions`, the
//! decision herd over HTTP against static bytes from the same server).
//!
//! Starts the simulated origin and the stitcher in this process, creates N sessions (10,000 by default) and
//! measures, with the closed-loop load generator over the same connections count and duration, in alternating
//! slices (A/B/A/B…, [`alternate`]) so machine drift cannot fake the ratio, quoted as the median of the pairs':
//! 1. the baseline — the same server answering `GET /v1/channels/{ch}/origin/0.m3u8`, the unmodified origin
//!    playlist from memory (routing, HTTP and the snapshot lookup, but no per-viewer work);
//! 2. stitched media playlists, each request for one of the N sessions in turn.
//!
//! It prints both rates and their ratio, and the resident memory per idle session (RSS growth while creating
//! the sessions, divided by N). The load generator shares the machine with the server, so absolute rates are
//! lower than on a dedicated load box; the ratio is what compares.

use std::net::SocketAddr;
use std::time::Duration;

use crate::config::AppConfig;
use anyhow::Context;
use futures_util::StreamExt;
use interlude_loadgen::{LoadReport, LoadSpec};

use super::demo::start_stack;
use super::demo_report::Cleanup;
use super::origin::OriginArgs;

/// Which benchmark to run.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum BenchCommand {
    /// Stitched media playlist requests per second for N sessions against the unmodified origin playlist.
    Stitcher(StitcherBenchArgs),
    /// Durable event ingestion over HTTP (group commit, fsync) against the same server not persisting.
    Ingest(IngestBenchArgs),
    /// Pod decisions over HTTP for distinct viewers (`GET /v1/vast`, the break-start herd) against static bytes.
    Decisions(DecisionBenchArgs),
    /// A break's whole audience (100,000 viewers, 10,000 line items with caps) decided at the cue, in the
    /// engine, against the per-line-item counters seam in the same run.
    BreakStart(super::bench_break_start::BreakStartBenchArgs),
    /// Events per second through the event pipeline, embedded against distributed (Kafka + PostgreSQL).
    Pipeline(super::bench_pipeline::PipelineBenchArgs),
    /// The edge under hostile load: playlist p99 during beacon storms (A/B against no storm), sessions one
    /// client can create before 429, and the server's memory after a flood of session creations.
    Edge(super::bench_edge::EdgeBenchArgs),
    /// RSS before, during and 60 s after a burst of sessions and beacons (`--vs` compares another build).
    Memory(super::bench_memory::MemoryBenchArgs),
    /// Time to ready of `interlude serve` on a ~1 GB event store after SIGTERM and after SIGKILL.
    Restart(super::bench_restart::RestartBenchArgs),
}

/// Flags for `interlude bench decisions`.
#[derive(Debug, clap::Args)]
pub(crate) struct DecisionBenchArgs {
    /// Distinct viewers (each request is a new viewer's decision until they wrap).
    #[arg(long, default_value_t = 10_000)]
    viewers: usize,
    /// Concurrent keep-alive connections of the load generator.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Seconds of load for each of the two measurements.
    #[arg(long, default_value_t = 10.0)]
    secs: f64,
    /// Where the server listens.
    #[arg(long, default_value = "127.0.0.1:18182")]
    listen: SocketAddr,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    /// Decide from a generated catalog of this many line items shaped like a large live event's (tiers,
    /// targeting, caps, goals; `bench break-start` describes it), the viewers drawn with matching contexts,
    /// instead of the demo catalog.
    #[arg(long)]
    realistic_catalog: Option<usize>,
    #[command(flatten)]
    origin: OriginArgs,
}

/// Flags for `interlude bench ingest`.
#[derive(Debug, clap::Args)]
pub(crate) struct IngestBenchArgs {
    /// Concurrent clients.
    #[arg(long, default_value_t = 32)]
    pub(crate) clients: usize,
    /// Events per request.
    #[arg(long, default_value_t = 100)]
    pub(crate) batch: usize,
    /// Seconds of load for each of the two measurements.
    #[arg(long, default_value_t = 10.0)]
    pub(crate) secs: f64,
    /// Slices each measurement is cut into, taken in turn (not persisting, durable, not persisting, …), so
    /// that a machine whose speed drifts during the run moves both alike.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) rounds: u32,
    /// Number events, sessions and instances in order (`run-1`, `run-2`, …) instead of random UUIDs: every
    /// dedup insert then lands on the last page of its B-tree. Only for comparing with figures taken before
    /// the bench used the ids players send.
    #[arg(long)]
    pub(crate) ordered_ids: bool,
    /// Events stored in the durable store before it is measured (random ids, as the clients send them): a
    /// store holding a day of keys, not an empty one. 0: start empty.
    #[arg(long, default_value_t = 0)]
    pub(crate) prefill: u64,
    /// Print the result as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Flags for `interlude bench stitcher`.
#[derive(Debug, clap::Args)]
pub(crate) struct StitcherBenchArgs {
    /// Sessions to create.
    #[arg(long, default_value_t = 10_000)]
    sessions: usize,
    /// Concurrent keep-alive connections of the load generator.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Seconds of load for each of the two measurements.
    #[arg(long, default_value_t = 10.0)]
    secs: f64,
    /// Where the stitcher listens.
    #[arg(long, default_value = "127.0.0.1:18180")]
    listen: SocketAddr,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    origin: OriginArgs,
}

pub(crate) async fn run(command: BenchCommand, config: AppConfig) -> anyhow::Result<()> {
    match command {
        BenchCommand::Stitcher(args) => stitcher(args, config).await,
        BenchCommand::Ingest(args) => super::bench_ingest::run(args, config.interlude).await,
        BenchCommand::Decisions(args) => decisions(args, config).await,
        BenchCommand::BreakStart(args) => super::bench_break_start::run(args).await,
        BenchCommand::Pipeline(args) => super::bench_pipeline::run(args).await,
        BenchCommand::Edge(args) => super::bench_edge::run(args).await,
        BenchCommand::Memory(args) => super::bench_memory::run(args, config).await,
        BenchCommand::Restart(args) => super::bench_restart::run(args, config.interlude).await,
    }
}

/// Writes a generated catalog of `line_items` (active now) for the decision benchmark and points `config` at
/// it; returns its path and one `/v1/vast` query per viewer, with the contexts the catalog targets.
fn realistic_catalog(
    config: &mut AppConfig,
    line_items: usize,
    viewers: usize,
) -> anyhow::Result<(std::path::PathBuf, Vec<String>)> {
    use interlude_decision::testing;
    let now = chrono::Utc::now();
    let catalog = testing::realistic_catalog(now, line_items, 7);
    let herd = testing::herd(&catalog, viewers, now, 11);
    let path = std::env::temp_dir().join(format!(
        "interlude-{}-bench-catalog.toml",
        std::process::id()
    ));
    std::fs::write(&path, toml::to_string(&catalog)?)
        .with_context(|| format!("writing {}", path.display()))?;
    config.interlude.decision.catalog = Some(path.clone());
    let queries = herd
        .requests
        .iter()
        .map(|r| {
            let v = &r.viewer;
            let mut q = url::form_urlencoded::Serializer::new(String::new());
            q.append_pair("channel", &r.channel);
            q.append_pair("duration", "120");
            q.append_pair("session", &r.session_id);
            for (key, value) in [
                ("viewer", &v.viewer_id),
                ("device", &v.device),
                ("platform", &v.platform),
                ("country", &v.country),
                ("region", &v.region),
                ("content", &v.content_id),
                ("genre", &v.genre),
                ("tz", &v.timezone),
            ] {
                if let Some(value) = value {
                    q.append_pair(key, value);
                }
            }
            if !v.segments.is_empty() {
                q.append_pair("segments", &v.segments.join(","));
            }
            if !v.key_values.is_empty() {
                let kv: Vec<String> = v
                    .key_values
                    .iter()
                    .map(|(k, x)| format!("{k}:{x}"))
                    .collect();
                q.append_pair("kv", &kv.join(","));
            }
            if let Some(consent) = v.consent {
                q.append_pair("consent", if consent { "true" } else { "false" });
            }
            q.finish()
        })
        .collect();
    Ok((path, queries))
}

/// Resident set size of this process in bytes (Linux), if known.
fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

async fn stitcher(args: StitcherBenchArgs, mut config: AppConfig) -> anyhow::Result<()> {
    // Breaks most of the time, so stitched windows carry ad segments and discontinuities.
    if config.origin == interlude_sim::origin::OriginConfig::default() {
        config.origin.break_interval_secs = 30;
        config.origin.break_duration_secs = 20;
        config.origin.first_break_secs = 0;
    }
    config.origin = args.origin.apply(config.origin)?;
    // Every session comes from this one load generator's address: the per-address creation limit (an edge
    // defence) would measure itself, not the stitcher.
    config.interlude.stitcher.session_rate_per_ip = 0.0;
    let stack = start_stack(&mut config, &args.origin, args.listen, false, None).await?;
    // The run's event store goes when the run ends, as the demo's does.
    let _cleanup = Cleanup(stack.temporary.clone());
    let base = format!("http://{}", args.listen);
    let channel = config.origin.channel.clone();
    let http = reqwest::Client::new();
    let passthrough = format!("{base}/v1/channels/{channel}/origin/0.m3u8");
    wait_for(&http, &passthrough).await?;

    let rss_before = rss_bytes();
    let sessions: Vec<String> = futures_util::stream::iter(0..args.sessions)
        .map(|i| {
            let (http, base, channel) = (http.clone(), base.clone(), channel.clone());
            async move { create_session(&http, &base, &channel, i).await }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    let rss_after = rss_bytes();
    let per_session = match (rss_before, rss_after) {
        (Some(b), Some(a)) => Some(a.saturating_sub(b) as f64 / args.sessions.max(1) as f64),
        _ => None,
    };
    let stitched: Vec<String> = sessions
        .iter()
        .map(|id| format!("{base}/s/{id}/0/media.m3u8"))
        .collect();
    // Every session's playlist once, so the first measured requests do not pay for first-time decisions.
    load(stitched.clone(), 16, 1.0).await?;

    let sample_url = stitched.first().cloned().unwrap_or_default();
    let paired = alternate(&[passthrough], &stitched, args.connections, args.secs).await?;
    let (baseline, stitch) = (paired.baseline(), paired.measured());
    // What a stitched window looked like at the end, to show the measurement included break content.
    let sample = http
        .get(&sample_url)
        .send()
        .await
        .context("sampling a playlist")?
        .text()
        .await?;
    let ads_in_sample = sample
        .lines()
        .filter(|l| l.contains("/ads/") || l.contains("/slate"))
        .count();
    let ratio = paired.median_ratio();
    let result = serde_json::json!({
        "pairs": paired.ratios(),
        "sessions": args.sessions,
        "connections": args.connections,
        "seconds_each": args.secs,
        "passthrough": baseline,
        "stitched": stitch,
        "ratio": ratio,
        "rss_bytes_per_idle_session": per_session,
        "ad_or_slate_segments_in_a_sample_window": ads_in_sample,
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
        return Ok(());
    }
    println!(
        "Stitcher playlist benchmark: {} sessions, {} connections, {} s each",
        args.sessions, args.connections, args.secs
    );
    for (name, r) in [
        ("origin passthrough", &baseline),
        ("stitched playlists", &stitch),
    ] {
        println!(
            "  {name:<20} {:>9.0} req/s  ok {:>8}/{:<8} p50 {} µs  p99 {} µs  p99.9 {} µs  {:.0} B/resp",
            r.requests_per_sec,
            r.ok,
            r.requests,
            r.latency.p50_us,
            r.latency.p99_us,
            r.latency.p999_us,
            r.bytes as f64 / r.requests.max(1) as f64
        );
    }
    println!(
        "  ratio stitched/passthrough  {ratio:.2} (median of {} A/B pairs; per pair {:.2?})",
        paired.pairs.len(),
        paired.ratios()
    );
    println!("  ad/slate segments in a stitched window sampled at the end: {ads_in_sample}");
    match per_session {
        Some(bytes) => println!(
            "  memory per idle session     {:.0} bytes (RSS growth / sessions)",
            bytes
        ),
        None => println!("  memory per idle session     unknown (no /proc/self/statm)"),
    }
    Ok(())
}

/// The decision herd over HTTP: every request decides a pod (targeting, pacing, caps, separation, pod
/// construction) for one of N viewers and writes it as VAST 4.2 with signed tracking pixels. The baseline is the
/// same server answering with static bytes (the OpenAPI document), so the ratio isolates the decision's cost.
async fn decisions(args: DecisionBenchArgs, mut config: AppConfig) -> anyhow::Result<()> {
    config.origin = args.origin.apply(config.origin)?;
    let realistic = match args.realistic_catalog {
        Some(line_items) => Some(realistic_catalog(&mut config, line_items, args.viewers)?),
        None => None,
    };
    // Every request comes from this one load generator's address.
    config.interlude.stitcher.session_rate_per_ip = 0.0;
    // Capacity is measured: a closed loop at saturation queues by design, and shedding it (the default 5 ms
    // run-queue threshold) would measure the shedder. A configured threshold is kept.
    if config.interlude.server.shed_queue_delay_ms
        == interlude_server::config::ServerConfig::default().shed_queue_delay_ms
    {
        config.interlude.server.shed_queue_delay_ms = 0;
    }
    let stack = start_stack(&mut config, &args.origin, args.listen, false, None).await;
    if let Some((path, _)) = &realistic {
        let _ = std::fs::remove_file(path);
    }
    let stack = stack?;
    let _cleanup = Cleanup(stack.temporary.clone());
    let base = format!("http://{}", args.listen);
    let channel = config.origin.channel.clone();
    let http = reqwest::Client::new();
    let static_url = format!("{base}/v1/openapi.json");
    wait_for(&http, &static_url).await?;
    let (devices, countries) = (["tv", "mobile", "desktop"], ["FR", "DE", "GB", "US", "BE"]);
    let viewers: Vec<String> = match &realistic {
        Some((_, queries)) => queries
            .iter()
            .map(|q| format!("{base}/v1/vast?{q}"))
            .collect(),
        None => (0..args.viewers)
            .map(|i| {
                format!(
                    "{base}/v1/vast?channel={channel}&duration=120&device={}&country={}&session=bench-{i}&viewer=v{i}",
                    devices[i % devices.len()],
                    countries[i % countries.len()]
                )
            })
            .collect(),
    };
    let sample = http
        .get(&viewers[0])
        .send()
        .await
        .context("a first decision")?
        .text()
        .await?;
    let ads = interlude_vast::parse_vast(&sample)
        .map(|v| v.ads.len())
        .unwrap_or(0);
    anyhow::ensure!(ads > 0, "the first decision returned no ads:\n{sample}");
    let paired = alternate(&[static_url], &viewers, args.connections, args.secs).await?;
    let (baseline, decided) = (paired.baseline(), paired.measured());
    let ratio = paired.median_ratio();
    let result = serde_json::json!({
        "pairs": paired.ratios(),
        "viewers": args.viewers,
        "connections": args.connections,
        "seconds_each": args.secs,
        "ads_in_a_sample_pod": ads,
        "static": baseline,
        "decisions": decided,
        "ratio": ratio,
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
        return Ok(());
    }
    println!(
        "Decision herd over HTTP: {} viewers, {} connections, {} s each ({ads} ads in a sample pod)",
        args.viewers, args.connections, args.secs
    );
    for (name, r) in [("static bytes", &baseline), ("GET /v1/vast", &decided)] {
        println!(
            "  {name:<14} {:>9.0} req/s  p50 {} µs  p99 {} µs  p99.9 {} µs  {:.0} B/resp",
            r.requests_per_sec,
            r.latency.p50_us,
            r.latency.p99_us,
            r.latency.p999_us,
            r.bytes as f64 / r.requests.max(1) as f64
        );
    }
    println!(
        "  ratio decisions/static  {ratio:.2} (median of {} A/B pairs; per pair {:.2?})",
        paired.pairs.len(),
        paired.ratios()
    );
    Ok(())
}

pub(super) async fn wait_for(http: &reqwest::Client, url: &str) -> anyhow::Result<()> {
    for _ in 0..100 {
        if http
            .get(url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("the stitcher never served {url}")
}

pub(super) async fn create_session(
    http: &reqwest::Client,
    base: &str,
    channel: &str,
    i: usize,
) -> anyhow::Result<String> {
    let body = serde_json::json!({
        "channel": channel,
        "viewer": { "device": if i % 3 == 0 { "mobile" } else { "tv" }, "platform": "bench", "viewer_id": format!("v{i}") }
    });
    let response = http
        .post(format!("{base}/v1/sessions"))
        .json(&body)
        .send()
        .await
        .context("creating a session")?;
    anyhow::ensure!(
        response.status().is_success(),
        "session creation answered {}",
        response.status()
    );
    let created: serde_json::Value = response.json().await.context("reading the session")?;
    created["session_id"]
        .as_str()
        .map(str::to_owned)
        .context("no session_id in the answer")
}

/// Slices of a baseline (A) and a measured case (B), alternated A/B/A/B so that drift of the machine (a
/// neighbour, frequency scaling, the page cache) moves both sides of a pair alike.
struct Paired {
    pairs: Vec<(LoadReport, LoadReport)>,
}

/// Seconds of one slice: short enough for several pairs, long enough for the connections to settle.
const SLICE_SECS: f64 = 2.0;

/// Runs `baseline` and `measured` in alternating slices for `secs` each in all.
async fn alternate(
    baseline: &[String],
    measured: &[String],
    connections: usize,
    secs: f64,
) -> anyhow::Result<Paired> {
    anyhow::ensure!(secs > 0.0, "--secs must be positive");
    let count = (secs / SLICE_SECS).ceil().max(2.0) as usize;
    let slice = secs / count as f64;
    let mut pairs = Vec::with_capacity(count);
    for _ in 0..count {
        let a = load(baseline.to_vec(), connections, slice).await?;
        let b = load(measured.to_vec(), connections, slice).await?;
        pairs.push((a, b));
    }
    Ok(Paired { pairs })
}

impl Paired {
    /// B's rate over A's, pair by pair.
    fn ratios(&self) -> Vec<f64> {
        self.pairs
            .iter()
            .map(|(a, b)| b.requests_per_sec / a.requests_per_sec.max(f64::MIN_POSITIVE))
            .collect()
    }

    /// The median of the pairs' ratios.
    fn median_ratio(&self) -> f64 {
        let mut r = self.ratios();
        r.sort_by(f64::total_cmp);
        r.get(r.len() / 2).copied().unwrap_or(0.0)
    }

    fn baseline(&self) -> LoadReport {
        combine(self.pairs.iter().map(|(a, _)| a))
    }

    fn measured(&self) -> LoadReport {
        combine(self.pairs.iter().map(|(_, b)| b))
    }
}

/// Slices as one report: counts and time summed; each latency percentile the median of the slices' (slices
/// cannot be merged exactly without their histograms).
fn combine<'a>(slices: impl Iterator<Item = &'a LoadReport>) -> LoadReport {
    let slices: Vec<&LoadReport> = slices.collect();
    let median = |f: fn(&LoadReport) -> u64| {
        let mut v: Vec<u64> = slices.iter().map(|r| f(r)).collect();
        v.sort_unstable();
        v.get(v.len() / 2).copied().unwrap_or(0)
    };
    let mut by_status = std::collections::BTreeMap::new();
    for r in &slices {
        for (k, v) in &r.by_status {
            *by_status.entry(k.clone()).or_insert(0) += v;
        }
    }
    let requests: u64 = slices.iter().map(|r| r.requests).sum();
    let elapsed: f64 = slices.iter().map(|r| r.elapsed_secs).sum();
    LoadReport {
        requests,
        ok: slices.iter().map(|r| r.ok).sum(),
        by_status,
        bytes: slices.iter().map(|r| r.bytes).sum(),
        elapsed_secs: elapsed,
        requests_per_sec: requests as f64 / elapsed.max(f64::EPSILON),
        latency: interlude_loadgen::Percentiles {
            p50_us: median(|r| r.latency.p50_us),
            p90_us: median(|r| r.latency.p90_us),
            p99_us: median(|r| r.latency.p99_us),
            p999_us: median(|r| r.latency.p999_us),
            max_us: slices.iter().map(|r| r.latency.max_us).max().unwrap_or(0),
        },
    }
}

async fn load(targets: Vec<String>, connections: usize, secs: f64) -> anyhow::Result<LoadReport> {
    let spec = LoadSpec {
        targets,
        connections,
        duration: Duration::try_from_secs_f64(secs).context("bad duration")?,
        timeout: Duration::from_secs(5),
    };
    let report = interlude_loadgen::run(&spec).await?;
    anyhow::ensure!(
        report.ok == report.requests && report.requests > 0,
        "load run had failures: {:?}",
        report.by_status
    );
    Ok(report)
}
