//! `interlude bench edge`: how the public edge holds under hostile load, measured against the real binary.
//!
//! The server runs as a child process (`interlude demo --viewers 0`, the whole stack on its defaults but the
//! per-address connection cap, since a storm of thousands of devices comes from thousands of addresses and the
//! load generator has one), so its resident memory and its run queue are its own; the load generator shares
//! the machine's cores with it, as in every benchmark here. Three measurements:
//!
//! 1. **Playlists under a beacon storm.** An open-loop probe fetches stitched playlists of watching sessions at
//!    a fixed rate, timed from each request's scheduled send (a stalled server is charged for the wait); its
//!    connections are open before a storm starts, as a watching player's are. Slices
//!    alternate: probe alone, probe during a storm of N keep-alive connections replaying signed impression
//!    pixels as fast as they are answered (a retry storm of buggy devices), probe alone, the next storm size…
//!    so drift cannot fake the ratio. Each storm's p99 is quoted against the unloaded slices' p99.
//! 2. **Sessions one client can create before 429**: one address creating sessions as fast as it can.
//! 3. **Memory after one client's flood of session creations** (1,000,000 attempts by default): the server's
//!    RSS before and after.
//!
//! With `--server-cpus`/`--client-cpus` the server and the load generator run on separate CPUs (`taskset`), as
//! a server and the devices hitting it do; the unloaded slices then measure the server on its CPUs alone too.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::StreamExt;
use interlude_loadgen::{LoadReport, LoadSpec};

use interlude_server::ops::cpus::CpuList;

use super::cpu_split::{self, CpuTicks};

/// Flags for `interlude bench edge`.
#[derive(Debug, clap::Args)]
pub(crate) struct EdgeBenchArgs {
    /// Storm sizes, in concurrent connections replaying beacons.
    #[arg(long, value_delimiter = ',', default_value = "512,2048,9000")]
    storms: Vec<usize>,
    /// Seconds of each slice (probe alone, or probe during a storm).
    #[arg(long, default_value_t = 6.0)]
    secs: f64,
    /// Times the whole A/B sequence is repeated.
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Playlist requests per second of the probe.
    #[arg(long, default_value_t = 200.0)]
    probe_rate: f64,
    /// Session creations one client attempts for the memory measurement.
    #[arg(long, default_value_t = 1_000_000)]
    session_attempts: usize,
    /// Where the server listens (the origin on the next port).
    #[arg(long, default_value = "127.0.0.1:18190")]
    listen: SocketAddr,
    /// Start the server with its beacon listener (`server.beacon_listen`, two ports above `--listen`): the
    /// storm's pixels go there, served by niced threads of their own.
    #[arg(long)]
    beacon_listener: bool,
    /// Niceness of the storm's client threads (0–19). The storm stands for devices whose CPUs are not the
    /// server's: on a machine shared with the server, a niced client takes the CPU the server leaves idle
    /// instead of an equal share of it. 0: the storm competes with the server as any process does.
    #[arg(long, default_value_t = 0)]
    storm_nice: i32,
    /// CPUs the server runs on (a `taskset` list, e.g. `0`), with `--client-cpus`: the load generator (probe
    /// and storm) then runs on the others, standing for devices on machines of their own. Without them, the
    /// server and its clients share every core.
    #[arg(long, requires = "client_cpus")]
    server_cpus: Option<String>,
    /// CPUs the load generator runs on (a `taskset` list, e.g. `1`), with `--server-cpus`.
    #[arg(long, requires = "server_cpus")]
    client_cpus: Option<String>,
    /// The server's `server.beacon_cpus` (with `--beacon-listener`): its beacon threads and store writer on
    /// these CPUs, its other threads off them.
    #[arg(long, requires = "beacon_listener")]
    beacon_cpus: Option<String>,
    /// CPUs of the storm's client threads, apart from the probe's (`--client-cpus`): the devices of a storm
    /// are not the viewers whose playlists are probed.
    #[arg(long)]
    storm_cpus: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// Sessions the probe fetches playlists of.
const PROBE_SESSIONS: usize = 40;

/// The server under test, killed when dropped.
struct Child {
    process: tokio::process::Child,
    pid: u32,
}

impl Child {
    async fn start(
        listen: SocketAddr,
        beacons: Option<(SocketAddr, Option<String>)>,
        cpus: Option<&str>,
        dir: &Path,
    ) -> anyhow::Result<Child> {
        let origin = SocketAddr::new(listen.ip(), listen.port() + 1);
        let log = std::fs::File::create(dir.join("server.log"))?;
        let exe = std::env::current_exe()?;
        // `taskset` (util-linux) starts the server on its CPUs: every thread it makes inherits them.
        let mut command = match cpus {
            Some(cpus) => {
                let mut c = tokio::process::Command::new("taskset");
                c.args(["-c", cpus]).arg(exe);
                c
            }
            None => tokio::process::Command::new(exe),
        };
        if let Some((beacons, beacon_cpus)) = beacons {
            command.env("INTERLUDE_SERVER__BEACON_LISTEN", beacons.to_string());
            if let Some(list) = beacon_cpus {
                command.env("INTERLUDE_SERVER__BEACON_CPUS", list);
            }
        }
        let process = command
            .args(["demo", "--viewers", "0", "--duration-secs", "0", "--listen"])
            .arg(listen.to_string())
            .arg("--origin-listen")
            .arg(origin.to_string())
            .env("INTERLUDE_EVENTS__DATA_DIR", dir.join("events"))
            // Thousands of devices come from thousands of addresses; the load generator has one.
            .env("INTERLUDE_SERVER__MAX_CONNECTIONS_PER_IP", "0")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("starting the server")?;
        let pid = process.id().context("the server exited at once")?;
        Ok(Child { process, pid })
    }

    /// Resident set size in bytes, from `/proc`.
    fn rss(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }

    fn alive(&mut self) -> bool {
        matches!(self.process.try_wait(), Ok(None))
    }
}

pub(crate) async fn run(args: EdgeBenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.secs > 0.0, "--secs must be positive");
    let dir = tempfile::tempdir()?;
    let beacon_listen = args
        .beacon_listener
        .then(|| SocketAddr::new(args.listen.ip(), args.listen.port() + 2));
    if let Some(cpus) = &args.client_cpus {
        pin_this_process(cpus)?;
    }
    let storm_cpus = args
        .storm_cpus
        .as_deref()
        .map(|list| CpuList::parse("--storm-cpus", list))
        .transpose()?;
    let mut child = Child::start(
        args.listen,
        beacon_listen.map(|a| (a, args.beacon_cpus.clone())),
        args.server_cpus.as_deref(),
        dir.path(),
    )
    .await?;
    let base = format!("http://{}", args.listen);
    let beacon_base = beacon_listen.map_or_else(|| base.clone(), |a| format!("http://{a}"));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let channel = interlude_sim::origin::OriginConfig::default().channel;
    wait_ready(&http, &base, &channel, &mut child, dir.path()).await?;
    let rss_idle = child.rss();

    // Watching sessions for the probe, and signed pixels for the storm.
    let mut playlists = Vec::new();
    for i in 0..PROBE_SESSIONS {
        let id = create_session(&http, &base, &channel, i).await?;
        let url = format!("{base}/s/{id}/0/media.m3u8");
        http.get(&url).send().await?.error_for_status()?;
        playlists.push(url);
    }
    let pixels = pixel_urls(&http, &base, &beacon_base, &channel).await?;

    let slice = Duration::from_secs_f64(args.secs);
    let probe_spec = |targets: &Vec<String>| LoadSpec {
        targets: targets.clone(),
        connections: 4,
        duration: slice,
        timeout: Duration::from_secs(10),
    };
    let mut unloaded: Vec<LoadReport> = Vec::new();
    let mut stormed: BTreeMap<usize, Vec<(LoadReport, LoadReport)>> = BTreeMap::new();
    // What the server's CPUs did during each kind of slice: on loopback the kernel's network work for the
    // storm's connections lands on them too, which no priority of the server's threads defers (only CPUs of
    // their own for the beacons, `--beacon-cpus`, keep it off the playlists').
    let server_cpus = args
        .server_cpus
        .as_deref()
        .map(|list| CpuList::parse("--server-cpus", list))
        .transpose()?;
    let client_cpus = args
        .client_cpus
        .as_deref()
        .map(|list| CpuList::parse("--client-cpus", list))
        .transpose()?;
    let server_pid = child.pid;
    let ticks = || cpu_split::sample(server_cpus.as_ref().map(CpuList::cpus), server_pid);
    // The load generator's CPUs too: a busy client delays the probe's own reads and inflates what it measures.
    let client_ticks =
        || cpu_split::sample(client_cpus.as_ref().map(CpuList::cpus), std::process::id());
    let mut unloaded_cpu = CpuTicks::default();
    let mut stormed_cpu: BTreeMap<usize, CpuTicks> = BTreeMap::new();
    let mut stormed_client_cpu: BTreeMap<usize, CpuTicks> = BTreeMap::new();
    for _ in 0..args.rounds.max(1) {
        for &connections in &args.storms {
            let before = ticks();
            unloaded
                .push(interlude_loadgen::paced(&probe_spec(&playlists), args.probe_rate).await?);
            unloaded_cpu += ticks() - before;
            let storm_spec = LoadSpec {
                targets: pixels.clone(),
                connections,
                duration: slice + Duration::from_secs(2),
                timeout: Duration::from_secs(10),
            };
            // The probe's connections are open before the storm's (a watching player already has one), and
            // the storm outlasts the probe.
            let (probe_targets, rate) = (probe_spec(&playlists), args.probe_rate);
            let probe =
                tokio::spawn(async move { interlude_loadgen::paced(&probe_targets, rate).await });
            tokio::time::sleep(Duration::from_millis(200)).await;
            let storm = storm_thread(storm_spec, args.storm_nice, storm_cpus.clone());
            let (before, client_before) = (ticks(), client_ticks());
            let probe = probe.await??;
            *stormed_cpu.entry(connections).or_default() += ticks() - before;
            *stormed_client_cpu.entry(connections).or_default() += client_ticks() - client_before;
            let storm = storm.await??;
            stormed.entry(connections).or_default().push((probe, storm));
            anyhow::ensure!(
                child.alive(),
                "the server died during a storm of {connections}"
            );
        }
    }
    let shed = shed_counts(&http, &base).await;

    // One client creating sessions as fast as it can.
    let (created, refused_at, rate_window) = session_burst(&http, &base, &channel).await?;
    // One client's flood of session creations, and the server's memory after it.
    let rss_before_flood = child.rss();
    let flood_started = Instant::now();
    let flood = session_flood(&base, &channel, args.session_attempts).await?;
    let flood_secs = flood_started.elapsed().as_secs_f64();
    let rss_after_flood = child.rss();
    anyhow::ensure!(child.alive(), "the server died during the session flood");

    let p99s = |reports: &mut dyn Iterator<Item = &LoadReport>| {
        let mut v: Vec<u64> = reports.map(|r| r.latency.p99_us).collect();
        v.sort_unstable();
        v
    };
    let unloaded_p99 = p99s(&mut unloaded.iter());
    let unloaded_median = median(&unloaded_p99);
    let storms: Vec<serde_json::Value> = stormed
        .iter()
        .map(|(connections, runs)| {
            let probe_p99 = p99s(&mut runs.iter().map(|(p, _)| p));
            let beacons_ok: u64 = runs.iter().map(|(_, s)| s.ok).sum();
            let secs: f64 = runs.iter().map(|(_, s)| s.elapsed_secs).sum();
            let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
            for (_, s) in runs {
                for (k, v) in &s.by_status {
                    *statuses.entry(k.clone()).or_default() += v;
                }
            }
            serde_json::json!({
                "connections": connections,
                "playlist_p99_us_per_slice": probe_p99,
                "playlist_p99_us_median": median(&probe_p99),
                "ratio_to_unloaded": median(&probe_p99) as f64 / unloaded_median.max(1) as f64,
                "playlist_errors": runs.iter().map(|(p, _)| p.requests - p.ok).sum::<u64>(),
                "beacon_answers_by_status": statuses,
                "beacons_accepted_per_sec": beacons_ok as f64 / secs.max(f64::EPSILON),
                "server_cpus_during_probe": stormed_cpu.get(connections).map(CpuTicks::shares),
                "client_cpus_during_probe": stormed_client_cpu.get(connections).map(CpuTicks::shares),
            })
        })
        .collect();
    let result = serde_json::json!({
        "probe": { "rate_per_sec": args.probe_rate, "sessions": PROBE_SESSIONS, "slice_secs": args.secs, "rounds": args.rounds },
        "beacon_listener": args.beacon_listener,
        "storm_nice": args.storm_nice,
        "server_cpus": args.server_cpus,
        "client_cpus": args.client_cpus,
        "beacon_cpus": args.beacon_cpus,
        "storm_cpus": args.storm_cpus,
        "unloaded_playlist_p99_us_per_slice": unloaded_p99,
        "unloaded_playlist_p99_us_median": unloaded_median,
        "unloaded_server_cpus": unloaded_cpu.shares(),
        "storms": storms,
        "shed_total_by_class_and_reason": shed,
        "sessions_one_client": {
            "created_before_first_429": created,
            "first_429_after_secs": refused_at,
            "created_per_sec_over_the_window": rate_window,
        },
        "session_flood": {
            "attempts": args.session_attempts,
            "seconds": flood_secs,
            "answers_by_status": flood,
            "server_rss_idle_bytes": rss_idle,
            "server_rss_before_bytes": rss_before_flood,
            "server_rss_after_bytes": rss_after_flood,
        },
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
        return Ok(());
    }
    println!(
        "Edge under hostile load (server: interlude demo as a child process, pid {})",
        child.pid
    );
    println!(
        "  playlist probe {} req/s over {PROBE_SESSIONS} sessions, {} s slices, {} rounds; beacon listener {}; storm client nice {}; CPUs server {} (beacons {}) / clients {} (storm {})",
        args.probe_rate,
        args.secs,
        args.rounds,
        args.beacon_listener,
        args.storm_nice,
        args.server_cpus.as_deref().unwrap_or("all"),
        args.beacon_cpus.as_deref().unwrap_or("any"),
        args.client_cpus.as_deref().unwrap_or("all"),
        args.storm_cpus.as_deref().unwrap_or("any")
    );
    println!(
        "  unloaded playlist p99 (median of slices): {unloaded_median} µs  {unloaded_p99:?}; server CPUs {}",
        unloaded_cpu.shares()
    );
    for storm in &storms {
        println!(
            "  storm of {:>5} connections: playlist p99 {} µs = {:.2}× unloaded; beacons accepted {:.0}/s; answers {}",
            storm["connections"],
            storm["playlist_p99_us_median"],
            storm["ratio_to_unloaded"].as_f64().unwrap_or(0.0),
            storm["beacons_accepted_per_sec"].as_f64().unwrap_or(0.0),
            storm["beacon_answers_by_status"]
        );
        println!(
            "      server CPUs during the probe: {}",
            storm["server_cpus_during_probe"]
        );
        println!(
            "      client CPUs during the probe (process = the load generator): {}",
            storm["client_cpus_during_probe"]
        );
    }
    println!("  shed: {shed:?}");
    println!(
        "  one client: {created} sessions before the first 429 (after {refused_at:.2} s); {rate_window:.1} sessions/s over the window"
    );
    println!(
        "  session flood: {} attempts in {flood_secs:.1} s, answers {}; server RSS {} → {} MiB (idle at start {} MiB)",
        args.session_attempts,
        serde_json::to_string(&flood)?,
        mib(rss_before_flood),
        mib(rss_after_flood),
        mib(rss_idle)
    );
    Ok(())
}

/// Moves every thread of this process (the probe's and the storm's runtimes inherit it) to `cpus`.
fn pin_this_process(cpus: &str) -> anyhow::Result<()> {
    let done = std::process::Command::new("taskset")
        .args(["-a", "-p", "-c", cpus])
        .arg(std::process::id().to_string())
        .stdout(Stdio::null())
        .status()
        .context("running taskset (util-linux) to pin the load generator")?;
    anyhow::ensure!(done.success(), "taskset -a -p -c {cpus} failed: {done}");
    Ok(())
}

fn mib(bytes: Option<u64>) -> String {
    bytes.map_or("?".to_owned(), |b| format!("{:.0}", b as f64 / 1048576.0))
}

fn median(sorted: &[u64]) -> u64 {
    sorted.get(sorted.len() / 2).copied().unwrap_or(0)
}

async fn wait_ready(
    http: &reqwest::Client,
    base: &str,
    channel: &str,
    child: &mut Child,
    dir: &Path,
) -> anyhow::Result<()> {
    let origin = format!("{base}/v1/channels/{channel}/origin/0.m3u8");
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if !child.alive() {
            let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
            anyhow::bail!("the server exited:\n{log}");
        }
        if http
            .get(&origin)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    anyhow::bail!("the server never served {origin}")
}

fn session_body(channel: &str, i: usize) -> serde_json::Value {
    serde_json::json!({
        "channel": channel,
        "viewer": { "device": "tv", "platform": "bench", "viewer_id": format!("edge-{i}") }
    })
}

async fn create_session(
    http: &reqwest::Client,
    base: &str,
    channel: &str,
    i: usize,
) -> anyhow::Result<String> {
    let created: serde_json::Value = http
        .post(format!("{base}/v1/sessions"))
        .json(&session_body(channel, i))
        .send()
        .await?
        .error_for_status()
        .context("creating a probe session")?
        .json()
        .await?;
    created["session_id"]
        .as_str()
        .map(str::to_owned)
        .context("no session_id in the answer")
}

/// Signed impression and quartile pixels of this server's ads, from client-side decisions.
/// Runs the storm on a runtime and thread of its own (its threads at `nice`), so that the probe's own
/// runtime never waits behind the storm's tasks: the probe measures the server, not its client.
fn storm_thread(
    spec: LoadSpec,
    nice: i32,
    cpus: Option<CpuList>,
) -> tokio::sync::oneshot::Receiver<anyhow::Result<LoadReport>> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let nice = nice.clamp(0, 19);
    std::thread::spawn(move || {
        let report = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("storm")
            .on_thread_start(move || {
                interlude_server::ops::beacon_listener::lower_thread_priority(nice);
                if let Some(cpus) = &cpus {
                    interlude_server::ops::cpus::run_on(cpus);
                }
            })
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|runtime| {
                interlude_server::ops::beacon_listener::lower_thread_priority(nice);
                runtime
                    .block_on(interlude_loadgen::flood(&spec))
                    .map_err(anyhow::Error::from)
            });
        let _ = tx.send(report);
    });
    rx
}

/// Signed tracking pixels of decided ads, as the server hands them out (under `beacon_base`).
async fn pixel_urls(
    http: &reqwest::Client,
    base: &str,
    beacon_base: &str,
    channel: &str,
) -> anyhow::Result<Vec<String>> {
    let mut urls = Vec::new();
    let prefix = format!("{beacon_base}/t/");
    for i in 0..20 {
        let vast = http
            .get(format!(
                "{base}/v1/vast?channel={channel}&duration=60&session=edge-{i}&viewer=edge-{i}"
            ))
            .send()
            .await?
            .text()
            .await?;
        let mut rest = vast.as_str();
        while let Some(at) = rest.find(&prefix) {
            let tail = &rest[at..];
            let end = tail
                .find(|c: char| c == ']' || c == '<' || c == '"' || c.is_whitespace())
                .unwrap_or(tail.len());
            urls.push(tail[..end].replace("&amp;", "&"));
            rest = &tail[end..];
        }
    }
    anyhow::ensure!(!urls.is_empty(), "no tracking pixels in the decisions");
    Ok(urls)
}

/// One client creating sessions back to back: how many before the first 429, when, and the rate of
/// creations over a five-second window.
async fn session_burst(
    http: &reqwest::Client,
    base: &str,
    channel: &str,
) -> anyhow::Result<(u64, f64, f64)> {
    let started = Instant::now();
    let window = Duration::from_secs(5);
    let (mut created, mut before_refusal, mut refused_at) = (0u64, None, None);
    let mut i = 1_000_000;
    while started.elapsed() < window {
        i += 1;
        let status = http
            .post(format!("{base}/v1/sessions"))
            .json(&session_body(channel, i))
            .send()
            .await?
            .status();
        if status.is_success() {
            created += 1;
        } else if status == reqwest::StatusCode::TOO_MANY_REQUESTS && refused_at.is_none() {
            refused_at = Some(started.elapsed().as_secs_f64());
            before_refusal = Some(created);
        }
    }
    Ok((
        before_refusal.unwrap_or(created),
        refused_at.unwrap_or(f64::NAN),
        created as f64 / window.as_secs_f64(),
    ))
}

/// `attempts` session creations from one client over 64 connections; answers by status.
async fn session_flood(
    base: &str,
    channel: &str,
    attempts: usize,
) -> anyhow::Result<BTreeMap<String, u64>> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(64)
        .build()?;
    let url = format!("{base}/v1/sessions");
    let counts = futures_util::stream::iter(0..attempts)
        .map(|i| {
            let request = http.post(&url).json(&session_body(channel, 2_000_000 + i));
            async move {
                match request.send().await {
                    Ok(r) => r.status().as_u16().to_string(),
                    Err(_) => "error".to_owned(),
                }
            }
        })
        .buffer_unordered(64)
        .fold(BTreeMap::new(), |mut counts, status| async move {
            *counts.entry(status).or_insert(0u64) += 1;
            counts
        })
        .await;
    Ok(counts)
}

/// `http_shed_total` by its labels, from the server's `/metrics` (open: the demo runs in development mode).
async fn shed_counts(http: &reqwest::Client, base: &str) -> BTreeMap<String, f64> {
    let Ok(text) = async {
        http.get(format!("{base}/metrics"))
            .send()
            .await?
            .text()
            .await
    }
    .await
    else {
        return BTreeMap::new();
    };
    text.lines()
        .filter(|l| l.starts_with("http_shed_total{"))
        .filter_map(|l| {
            let (labels, value) = l.rsplit_once(' ')?;
            Some((
                labels.trim_start_matches("http_shed_total").to_owned(),
                value.parse().ok()?,
            ))
        })
        .collect()
}
