//! `interlude bench restart`: how long a node with a large embedded event store takes to be ready again,
//! after a clean stop (SIGTERM) and after a crash (SIGKILL).
//!
//! 1. Builds an event store of `--store-mb` (1,000 MB by default) in the data directory: unique impressions
//!    ingested through [`EventStore::ingest`] in large transactions, the same file `interlude serve` opens
//!    (`events.redb` in `events.data_dir`), with the same policy and `[events.store]` settings. Filling through
//!    the store rather than HTTP only saves time; the file is the one the server writes.
//! 2. Starts the real binary (`interlude serve --insecure-dev`, this binary unless `--binary`) on it and
//!    times, from the spawn, until `GET /readyz` answers 200. Each round measures a restart after SIGTERM
//!    (the previous process closed the store: no repair expected) and one after SIGKILL (redb repairs the
//!    file), and the same two on an empty store in its own directory: the baseline, interleaved in the same
//!    round, so the ratio isolates what the store's size costs.
//! 3. Reads the server's own log line of each start ("Opened the event store.": whether redb repaired the
//!    file and how long opening took).
//!
//! The file is read from the page cache when the machine has the memory (as on a node restarted in place);
//! a cold cache adds the time to read it from the disk to the repair.

use std::io::BufRead as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use interlude_events::Envelope;
use interlude_events::contract::{EventSource, EventType};
use interlude_events::testing::event;
use interlude_server::InterludeConfig;
use interlude_store::EventStore;
use serde::Serialize;

/// Flags for `interlude bench restart`.
#[derive(Debug, clap::Args)]
pub(crate) struct RestartBenchArgs {
    /// Size of the event store to build, in MB (10^6 bytes) written in its file.
    #[arg(long, default_value_t = 1000)]
    store_mb: u64,
    /// Rounds; each restarts the node once after SIGTERM and once after SIGKILL, on the large store and on an
    /// empty one.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Work directory (the large store in `large/`, the empty one in `empty/`). Kept, and a large store already
    /// there of at least `--store-mb` is reused; without it, a fresh temporary directory is removed at the end.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The `interlude` binary to restart (default: this one).
    #[arg(long)]
    binary: Option<PathBuf>,
    /// Where the restarted server listens.
    #[arg(long, default_value = "127.0.0.1:18186")]
    listen: SocketAddr,
    /// Seconds to wait for readiness before giving up on a start.
    #[arg(long, default_value_t = 300)]
    timeout_secs: u64,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// How one start went.
#[derive(Debug, Clone, Serialize)]
struct Start {
    /// Seconds from the spawn to the first 200 of `/readyz`.
    ready_secs: f64,
    /// What the server logged of opening its event store.
    repaired: Option<bool>,
    open_secs: Option<f64>,
    /// Seconds from SIGTERM to the exit of the process that was stopped before this start (SIGTERM starts).
    previous_stop_secs: Option<f64>,
}

/// min / median / max.
#[derive(Debug, Clone, Copy, Serialize)]
struct Spread {
    min: f64,
    median: f64,
    max: f64,
}

fn spread(values: impl IntoIterator<Item = f64>) -> Option<Spread> {
    let mut v: Vec<f64> = values.into_iter().collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Some(Spread {
        min: v[0],
        median,
        max: v[n - 1],
    })
}

/// The starts of one kind, summarised.
#[derive(Debug, Clone, Serialize)]
struct Kind {
    ready_secs: Option<Spread>,
    open_secs: Option<Spread>,
    repaired: usize,
    starts: Vec<Start>,
}

impl Kind {
    fn of(starts: Vec<Start>) -> Kind {
        Kind {
            ready_secs: spread(starts.iter().map(|s| s.ready_secs)),
            open_secs: spread(starts.iter().filter_map(|s| s.open_secs)),
            repaired: starts.iter().filter(|s| s.repaired == Some(true)).count(),
            starts,
        }
    }
}

/// One store's restarts.
#[derive(Debug, Default)]
struct Restarts {
    after_sigterm: Vec<Start>,
    after_sigkill: Vec<Start>,
}

pub(crate) async fn run(args: RestartBenchArgs, config: InterludeConfig) -> anyhow::Result<()> {
    let (root, temporary) = match &args.dir {
        Some(dir) => (dir.clone(), false),
        None => (
            std::env::temp_dir().join(format!("interlude-bench-restart-{}", std::process::id())),
            true,
        ),
    };
    let dir = root.clone();
    let result = tokio::task::spawn_blocking(move || measure(&args, &config, &dir))
        .await
        .context("the benchmark thread")?;
    if temporary {
        let _ = std::fs::remove_dir_all(&root);
    }
    result?.print()
}

struct Report {
    json: bool,
    /// Bytes written in the store's file, and the file's length (redb grows it ahead of use).
    store_bytes: u64,
    file_bytes: u64,
    events: u64,
    fill_secs: f64,
    large: Restarts,
    empty: Restarts,
}

impl Report {
    fn print(self) -> anyhow::Result<()> {
        let large_term = Kind::of(self.large.after_sigterm);
        let large_kill = Kind::of(self.large.after_sigkill);
        let empty_term = Kind::of(self.empty.after_sigterm);
        let empty_kill = Kind::of(self.empty.after_sigkill);
        let ratio = |a: &Kind, b: &Kind| match (a.ready_secs, b.ready_secs) {
            (Some(a), Some(b)) => Some(a.median / b.median.max(f64::MIN_POSITIVE)),
            _ => None,
        };
        let ratios = serde_json::json!({
            "after_sigterm_large_to_empty": ratio(&large_term, &empty_term),
            "after_sigkill_large_to_empty": ratio(&large_kill, &empty_kill),
            "large_after_sigkill_to_after_sigterm": ratio(&large_kill, &large_term),
        });
        if self.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "store_bytes": self.store_bytes,
                    "file_bytes": self.file_bytes,
                    "events": self.events,
                    "fill_secs": self.fill_secs,
                    "large": { "after_sigterm": large_term, "after_sigkill": large_kill },
                    "empty": { "after_sigterm": empty_term, "after_sigkill": empty_kill },
                    "median_ratios": ratios,
                }))?
            );
            return Ok(());
        }
        println!(
            "Restart to ready: event store of {:.0} MB written in a {:.0} MB file ({} events, built in {:.0} s) against an empty one",
            self.store_bytes as f64 / 1e6,
            self.file_bytes as f64 / 1e6,
            self.events,
            self.fill_secs
        );
        let show = |s: Option<Spread>| {
            s.map_or("-".to_owned(), |s| {
                format!("{:.3} / {:.3} / {:.3}", s.min, s.median, s.max)
            })
        };
        println!(
            "  {:<26} {:>27}  {:>27}  repaired",
            "", "ready s (min/median/max)", "store open s (min/med/max)"
        );
        for (name, kind) in [
            ("large, after SIGTERM", &large_term),
            ("large, after SIGKILL", &large_kill),
            ("empty, after SIGTERM", &empty_term),
            ("empty, after SIGKILL", &empty_kill),
        ] {
            println!(
                "  {name:<26} {:>27}  {:>27}  {}/{}",
                show(kind.ready_secs),
                show(kind.open_secs),
                kind.repaired,
                kind.starts.len()
            );
        }
        let stops = spread(
            large_term
                .starts
                .iter()
                .filter_map(|s| s.previous_stop_secs),
        );
        println!(
            "  SIGTERM to exit, large store: {} s (min/median/max)",
            show(stops)
        );
        let f = |k: &str| ratios[k].as_f64().unwrap_or(f64::NAN);
        println!(
            "  median ready, large/empty: after SIGTERM {:.2}, after SIGKILL {:.2}; large after SIGKILL/after SIGTERM {:.2}",
            f("after_sigterm_large_to_empty"),
            f("after_sigkill_large_to_empty"),
            f("large_after_sigkill_to_after_sigterm"),
        );
        Ok(())
    }
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Bytes of `path` actually written on the disk. redb grows its file ahead of use (doubling), so the
/// length alone overstates the data by up to half; the store is sized by what it holds.
#[cfg(unix)]
fn file_data(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata(path)
        .map(|m| m.blocks().saturating_mul(512).min(m.len()))
        .unwrap_or(0)
}

/// Bytes of `path` (its length, where the allocated size is not known).
#[cfg(not(unix))]
fn file_data(path: &Path) -> u64 {
    file_len(path)
}

/// Fills the store in `dir` with unique impressions until its file reaches `bytes`. Events and seconds.
fn fill(dir: &Path, bytes: u64, config: &InterludeConfig) -> anyhow::Result<(u64, f64)> {
    const PER_COMMIT: u64 = 20_000;
    let started = Instant::now();
    let store = EventStore::open_with(dir, config.events.policy.clone(), &config.events.store)
        .with_context(|| format!("opening the store in {}", dir.display()))?;
    let path = dir.join(interlude_store::embedded::FILE_NAME);
    // Ids unique to this fill: topping up a store filled before must add events, not retries (which the store
    // answers without writing).
    let run = chrono::Utc::now().timestamp_millis();
    let mut n = 0u64;
    let mut last_report = Instant::now();
    while file_data(&path) < bytes {
        // Receipt time now: the events are inside the dedup horizon and the retention of a default config.
        let now = chrono::Utc::now();
        let batch: Vec<Envelope> = (n..n + PER_COMMIT)
            .map(|i| {
                let li = (i % 20) as usize;
                let mut e = event(
                    format!("restart-{run}-{i}"),
                    &format!("restart-{run}-ai{i}"),
                    EventType::Impression,
                    EventSource::ClientSide,
                    now,
                    li,
                );
                e.session_id = format!("restart-{run}-s{}", i / 8);
                Envelope {
                    event: e,
                    user_agent: None,
                    ip: None,
                }
            })
            .collect();
        store.ingest(&batch, now).context("filling the store")?;
        n += PER_COMMIT;
        if last_report.elapsed() > Duration::from_secs(10) {
            last_report = Instant::now();
            eprintln!(
                "bench restart: {n} events, {:.0} MB of {:.0} MB",
                file_data(&path) as f64 / 1e6,
                bytes as f64 / 1e6
            );
        }
    }
    store.close().context("closing the filled store")?;
    Ok((n, started.elapsed().as_secs_f64()))
}

/// A running `interlude serve`, its log in a file.
struct Node {
    child: Child,
    log: PathBuf,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Runner<'a> {
    binary: PathBuf,
    listen: SocketAddr,
    timeout: Duration,
    logs: &'a Path,
    starts: usize,
}

impl Runner<'_> {
    /// Starts the binary on `data_dir` and waits for `/readyz`. The node and seconds to ready.
    fn start(&mut self, data_dir: &Path) -> anyhow::Result<(Node, f64)> {
        self.starts += 1;
        let log = self.logs.join(format!("start-{}.log", self.starts));
        let file = std::fs::File::create(&log).context("creating a log file")?;
        let started = Instant::now();
        let child = Command::new(&self.binary)
            .args(["--log-format", "json", "serve", "--insecure-dev"])
            .env("INTERLUDE_SERVER__LISTEN", self.listen.to_string())
            .env("INTERLUDE_EVENTS__DATA_DIR", data_dir)
            .env("INTERLUDE_LOG__FILTER", "info")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        let mut node = Node { child, log };
        let url = format!("http://{}/readyz", self.listen);
        loop {
            if ready(&url) {
                return Ok((node, started.elapsed().as_secs_f64()));
            }
            if let Some(status) = node.child.try_wait()? {
                anyhow::bail!(
                    "the server exited ({status}) before it was ready; see {}",
                    node.log.display()
                );
            }
            anyhow::ensure!(
                started.elapsed() < self.timeout,
                "the server was not ready within {:?}; see {}",
                self.timeout,
                node.log.display()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Whether `GET url` answers 200, over a plain blocking socket (no client to build per poll).
fn ready(url: &str) -> bool {
    use std::io::{Read as _, Write as _};
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let Ok(addr) = host.parse::<SocketAddr>() else {
        return false;
    };
    let Ok(mut stream) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200))
    else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}

/// SIGTERM, then waits for the exit; the seconds it took.
fn terminate(mut node: Node) -> anyhow::Result<f64> {
    let started = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &node.child.id().to_string()])
        .status()
        .context("running kill -TERM")?;
    anyhow::ensure!(status.success(), "kill -TERM failed");
    let exited = node.child.wait().context("waiting for the server")?;
    anyhow::ensure!(
        exited.success(),
        "the server did not exit cleanly on SIGTERM ({exited}); see {}",
        node.log.display()
    );
    Ok(started.elapsed().as_secs_f64())
}

/// SIGKILL, then waits for the exit.
fn kill(mut node: Node) -> anyhow::Result<()> {
    node.child.kill().context("SIGKILL")?;
    node.child.wait().context("waiting for the server")?;
    Ok(())
}

/// What the server logged of opening the event store: (repaired, seconds).
fn opened(log: &Path) -> (Option<bool>, Option<f64>) {
    let Ok(file) = std::fs::File::open(log) else {
        return (None, None);
    };
    for line in std::io::BufReader::new(file).lines().map_while(Result::ok) {
        let Ok(record) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        let is_event_store = record["message"] == "Opened the event store."
            && record["path"]
                .as_str()
                .is_some_and(|p| p.ends_with(interlude_store::embedded::FILE_NAME));
        if is_event_store {
            return (record["repaired"].as_bool(), record["seconds"].as_f64());
        }
    }
    (None, None)
}

/// One round on the store in `dir`, whose last process stopped cleanly: a start after SIGTERM (then SIGKILL
/// it), a start after SIGKILL (then SIGTERM it).
fn round(
    runner: &mut Runner<'_>,
    dir: &Path,
    into: &mut Restarts,
    stop: f64,
) -> anyhow::Result<f64> {
    let (node, ready_secs) = runner.start(dir)?;
    let (repaired, open_secs) = opened(&node.log);
    into.after_sigterm.push(Start {
        ready_secs,
        repaired,
        open_secs,
        previous_stop_secs: Some(stop),
    });
    kill(node)?;
    let (node, ready_secs) = runner.start(dir)?;
    let (repaired, open_secs) = opened(&node.log);
    into.after_sigkill.push(Start {
        ready_secs,
        repaired,
        open_secs,
        previous_stop_secs: None,
    });
    terminate(node)
}

fn measure(
    args: &RestartBenchArgs,
    config: &InterludeConfig,
    root: &Path,
) -> anyhow::Result<Report> {
    let (large, empty, logs) = (root.join("large"), root.join("empty"), root.join("logs"));
    for dir in [&large, &logs] {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    // The empty store starts empty every time the benchmark runs.
    let _ = std::fs::remove_dir_all(&empty);
    let target = args.store_mb.saturating_mul(1_000_000);
    let file = large.join(interlude_store::embedded::FILE_NAME);
    let (events, fill_secs) = if file_data(&file) >= target {
        eprintln!(
            "bench restart: reusing {} ({:.0} MB)",
            file.display(),
            file_data(&file) as f64 / 1e6
        );
        (0, 0.0)
    } else {
        eprintln!(
            "bench restart: building a {} MB event store in {}",
            args.store_mb,
            large.display()
        );
        fill(&large, target, config)?
    };
    let binary = match &args.binary {
        Some(b) => b.clone(),
        None => std::env::current_exe().context("locating this binary")?,
    };
    let mut runner = Runner {
        binary,
        listen: args.listen,
        timeout: Duration::from_secs(args.timeout_secs),
        logs: &logs,
        starts: 0,
    };
    // A first start and SIGTERM of each, not counted: the server creates its other files (sessions, outbox)
    // and the page cache holds the file as it will for every measured start.
    let mut stops = Vec::new();
    for dir in [&large, &empty] {
        let (node, _) = runner.start(dir)?;
        stops.push(terminate(node)?);
    }
    let (mut large_stop, mut empty_stop) = (stops[0], stops[1]);
    let (mut on_large, mut on_empty) = (Restarts::default(), Restarts::default());
    for r in 0..args.runs.max(1) {
        eprintln!("bench restart: round {} of {}", r + 1, args.runs.max(1));
        large_stop = round(&mut runner, &large, &mut on_large, large_stop)?;
        empty_stop = round(&mut runner, &empty, &mut on_empty, empty_stop)?;
    }
    Ok(Report {
        json: args.json,
        store_bytes: file_data(&file),
        file_bytes: file_len(&file),
        events,
        fill_secs,
        large: on_large,
        empty: on_empty,
    })
}
