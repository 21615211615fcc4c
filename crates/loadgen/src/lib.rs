//! A closed-loop HTTP load generator: N keep-alive connections, each sending requests back to back over a list
//! of target URLs, for a fixed time; latency recorded in an HDR histogram per connection and merged at the end.
//!
//! Two variants serve benchmarks of behaviour under someone else's load: [`flood`] (counts only, for storms
//! of thousands of connections) and [`paced`] (an open-loop probe at a fixed rate, timed from each request's
//! scheduled send so a stalled server is charged for the wait).
//!
//! This is the tool behind `interlude loadgen` and the stitcher's playlist benchmark (which runs it against the
//! stitched and the unmodified playlists in one run and quotes the ratio). It only ever targets addresses the
//! caller passes; tests and benchmarks pass loopback addresses of servers they started themselves.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpStream;

/// What to load and how hard.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// Target URLs (`http://host:port/path`), cycled through by every connection.
    pub targets: Vec<String>,
    /// Concurrent keep-alive connections.
    pub connections: usize,
    /// How long to send.
    pub duration: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
}

/// Why a load run could not start.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A target is not a plain `http://host:port/path` URL.
    #[error("target {url:?} is not an http://host:port/path URL: {reason}")]
    BadTarget {
        /// The target.
        url: String,
        /// Why.
        reason: String,
    },
    /// No targets were given.
    #[error("no targets to load")]
    NoTargets,
    /// A paced run's rate is not a positive number.
    #[error("a paced run needs a positive rate, not {0}")]
    BadRate(f64),
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Percentiles {
    /// Median.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// Maximum.
    pub max_us: u64,
}

/// The outcome of a run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LoadReport {
    /// Requests answered (any status).
    pub requests: u64,
    /// Requests answered with a 2xx or 3xx status.
    pub ok: u64,
    /// Answers by status code, and transport errors under `"error: …"` (connect, connection closed, body,
    /// timeout).
    pub by_status: BTreeMap<String, u64>,
    /// Response body bytes read.
    pub bytes: u64,
    /// Wall time of the run in seconds.
    pub elapsed_secs: f64,
    /// Requests per second.
    pub requests_per_sec: f64,
    /// Latency of answered requests.
    pub latency: Percentiles,
}

struct Target {
    authority: String,
    path_and_query: String,
}

fn parse_target(url: &str) -> Result<Target, LoadError> {
    let bad = |reason: &str| LoadError::BadTarget {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| bad("only http:// is supported"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(bad("no host"));
    }
    Ok(Target {
        authority: authority.to_owned(),
        path_and_query: path.to_owned(),
    })
}

/// How requests are sent.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    /// Each connection sends its next request as soon as the last is answered; latency recorded.
    Closed,
    /// Like `Closed`, counting answers only: thousands of connections without a histogram each.
    Flood,
    /// Open loop at a fixed total rate, latency measured from each request's *scheduled* time, so a server
    /// that stalls is charged for the requests it kept waiting (no coordinated omission).
    Paced { per_sec: f64 },
}

/// Runs the load and reports.
pub async fn run(spec: &LoadSpec) -> Result<LoadReport, LoadError> {
    drive(spec, Mode::Closed).await
}

/// Like [`run`] but without latency histograms: for storms of thousands of connections whose answers are
/// counted, not timed. The report's latency percentiles are zero.
pub async fn flood(spec: &LoadSpec) -> Result<LoadReport, LoadError> {
    drive(spec, Mode::Flood).await
}

/// Sends `per_sec` requests a second in all, spread over `spec.connections` connections, whatever the
/// answers' speed (an open-loop probe, for latency under someone else's load). Each connection sends every
/// `connections / per_sec` seconds; a late answer makes the next request late, and that lateness is in the
/// recorded latency.
pub async fn paced(spec: &LoadSpec, per_sec: f64) -> Result<LoadReport, LoadError> {
    if !(per_sec.is_finite() && per_sec > 0.0) {
        return Err(LoadError::BadRate(per_sec));
    }
    drive(spec, Mode::Paced { per_sec }).await
}

async fn drive(spec: &LoadSpec, mode: Mode) -> Result<LoadReport, LoadError> {
    if spec.targets.is_empty() {
        return Err(LoadError::NoTargets);
    }
    let targets: Arc<Vec<Target>> = Arc::new(
        spec.targets
            .iter()
            .map(|t| parse_target(t))
            .collect::<Result<_, _>>()?,
    );
    let stop = Arc::new(AtomicBool::new(false));
    let cursor = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let connections = spec.connections.max(1);
    let mut workers = Vec::with_capacity(connections);
    for index in 0..connections {
        let (targets, stop, cursor, timeout) =
            (targets.clone(), stop.clone(), cursor.clone(), spec.timeout);
        let schedule = match mode {
            Mode::Paced { per_sec } => {
                let period = Duration::from_secs_f64(connections as f64 / per_sec);
                // Connections take turns, evenly spread over one period.
                Some((
                    started + period.mul_f64(index as f64 / connections as f64),
                    period,
                ))
            }
            Mode::Closed | Mode::Flood => None,
        };
        let record = mode != Mode::Flood;
        workers.push(tokio::spawn(async move {
            worker(&targets, &stop, &cursor, timeout, record, schedule).await
        }));
    }
    tokio::time::sleep(spec.duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut total = WorkerStats::new(true);
    for w in workers {
        if let Ok(stats) = w.await {
            total.merge(&stats);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let histogram = total.histogram.as_ref();
    let q = |p: f64| histogram.map_or(0, |h| h.value_at_quantile(p));
    Ok(LoadReport {
        requests: total.requests,
        ok: total.ok,
        by_status: total.by_status,
        bytes: total.bytes,
        elapsed_secs: elapsed,
        requests_per_sec: total.requests as f64 / elapsed.max(f64::EPSILON),
        latency: Percentiles {
            p50_us: q(0.5),
            p90_us: q(0.9),
            p99_us: q(0.99),
            p999_us: q(0.999),
            max_us: histogram.map_or(0, Histogram::max),
        },
    })
}

struct WorkerStats {
    requests: u64,
    ok: u64,
    bytes: u64,
    by_status: BTreeMap<String, u64>,
    histogram: Option<Histogram<u64>>,
}

impl WorkerStats {
    fn new(record: bool) -> Self {
        // 1 µs to 60 s at 3 significant figures (about 200 KB); the bounds are constants, so creation cannot
        // fail.
        #[allow(clippy::expect_used)]
        let histogram = record
            .then(|| Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds"));
        WorkerStats {
            requests: 0,
            ok: 0,
            bytes: 0,
            by_status: BTreeMap::new(),
            histogram,
        }
    }

    fn merge(&mut self, other: &WorkerStats) {
        self.requests += other.requests;
        self.ok += other.ok;
        self.bytes += other.bytes;
        for (k, v) in &other.by_status {
            *self.by_status.entry(k.clone()).or_default() += v;
        }
        if let (Some(mine), Some(theirs)) = (self.histogram.as_mut(), other.histogram.as_ref()) {
            let _ = mine.add(theirs);
        }
    }

    fn count(&mut self, key: &str) {
        *self.by_status.entry(key.to_owned()).or_default() += 1;
    }
}

type Sender = http1::SendRequest<Empty<Bytes>>;

async fn connect(authority: &str) -> Option<Sender> {
    let stream = TcpStream::connect(authority).await.ok()?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await.ok()?;
    tokio::spawn(conn);
    Some(sender)
}

/// One connection's loop; `schedule` (first send, period) makes it open-loop.
async fn worker(
    targets: &[Target],
    stop: &AtomicBool,
    cursor: &AtomicU64,
    timeout: Duration,
    record: bool,
    schedule: Option<(Instant, Duration)>,
) -> WorkerStats {
    let mut stats = WorkerStats::new(record);
    let mut conns: BTreeMap<String, Sender> = BTreeMap::new();
    let mut next_send = schedule.map(|(first, _)| first);
    while !stop.load(Ordering::Relaxed) {
        // Open loop: wait for this request's slot; its latency counts from the slot, not from the send.
        let due = match (next_send, schedule) {
            (Some(due), Some((_, period))) => {
                tokio::time::sleep_until(due.into()).await;
                next_send = Some(due + period);
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                Some(due)
            }
            _ => None,
        };
        let i = cursor.fetch_add(1, Ordering::Relaxed) as usize % targets.len();
        let target = &targets[i];
        if conns.get(&target.authority).is_none_or(Sender::is_closed) {
            match connect(&target.authority).await {
                Some(s) => {
                    conns.insert(target.authority.clone(), s);
                }
                None => {
                    stats.count("error: connect");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            }
        }
        let Some(sender) = conns.get_mut(&target.authority) else {
            continue;
        };
        let Ok(request) = Request::get(target.path_and_query.as_str())
            .header(hyper::header::HOST, target.authority.as_str())
            .body(Empty::<Bytes>::new())
        else {
            stats.count("error");
            continue;
        };
        let sent = due.unwrap_or_else(Instant::now);
        let outcome = tokio::time::timeout(timeout, async {
            let response = sender
                .send_request(request)
                .await
                .map_err(|_| "error: connection closed")?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|_| "error: body")?
                .to_bytes();
            Ok::<_, &'static str>((status, body.len()))
        })
        .await
        .unwrap_or(Err("error: timeout"));
        match outcome {
            Ok((status, len)) => {
                if let Some(histogram) = stats.histogram.as_mut() {
                    let micros = u64::try_from(sent.elapsed().as_micros())
                        .unwrap_or(u64::MAX)
                        .max(1);
                    let _ = histogram.record(micros.min(60_000_000));
                }
                stats.requests += 1;
                stats.bytes += len as u64;
                if status.is_success() || status.is_redirection() {
                    stats.ok += 1;
                }
                stats.count(status.as_str());
            }
            Err(kind) => {
                stats.count(kind);
                conns.remove(&target.authority);
            }
        }
    }
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_every_answer_by_status_against_a_local_server() {
        let app = axum::Router::new()
            .route("/ok", axum::routing::get(|| async { "hello" }))
            .route(
                "/missing",
                axum::routing::get(|| async { (axum::http::StatusCode::NOT_FOUND, "no") }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let spec = LoadSpec {
            targets: vec![
                format!("http://{addr}/ok"),
                format!("http://{addr}/missing"),
            ],
            connections: 4,
            duration: Duration::from_millis(300),
            timeout: Duration::from_secs(2),
        };
        let report = run(&spec).await.unwrap();
        assert!(report.requests > 10, "{report:?}");
        let ok = report.by_status.get("200").copied().unwrap_or(0);
        let missing = report.by_status.get("404").copied().unwrap_or(0);
        assert_eq!(ok + missing, report.requests);
        assert_eq!(report.ok, ok);
        // Targets alternate, so both were hit about equally.
        assert!(
            ok.abs_diff(missing) <= spec.connections as u64,
            "{ok} vs {missing}"
        );
        assert_eq!(report.bytes, ok * 5 + missing * 2);
        assert!(report.latency.p50_us <= report.latency.p99_us);
    }

    /// A paced probe sends at its rate whatever the server's speed, and charges a stall to the requests
    /// scheduled during it.
    #[tokio::test]
    async fn a_paced_probe_keeps_its_rate_and_counts_a_stall_in_latency() {
        let stalled = Arc::new(AtomicBool::new(true));
        let gate = stalled.clone();
        let app = axum::Router::new().route(
            "/p",
            axum::routing::get(move || {
                let gate = gate.clone();
                async move {
                    // The first answer waits 300 ms; every later one is immediate.
                    if gate.swap(false, Ordering::AcqRel) {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                    }
                    "p"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let spec = LoadSpec {
            targets: vec![format!("http://{addr}/p")],
            connections: 1,
            duration: Duration::from_millis(1000),
            timeout: Duration::from_secs(2),
        };
        let report = paced(&spec, 50.0).await.unwrap();
        assert!(!stalled.load(Ordering::Acquire));
        // One connection at 50/s over 1 s: about 50 requests (the stall delays, it does not skip them).
        assert!((25..=52).contains(&report.requests), "{report:?}");
        // Requests scheduled during the stall waited for it: more than the first one is slow.
        assert!(report.latency.max_us >= 250_000, "{report:?}");
        assert!(report.latency.p90_us >= 50_000, "{report:?}");
        assert!(matches!(
            paced(&spec, 0.0).await,
            Err(LoadError::BadRate(_))
        ));
    }

    #[tokio::test]
    async fn a_flood_counts_answers_without_timing_them() {
        let app = axum::Router::new().route("/f", axum::routing::get(|| async { "f" }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let spec = LoadSpec {
            targets: vec![format!("http://{addr}/f")],
            connections: 64,
            duration: Duration::from_millis(300),
            timeout: Duration::from_secs(2),
        };
        let report = flood(&spec).await.unwrap();
        assert!(report.ok > 64, "{report:?}");
        assert_eq!(report.latency.max_us, 0);
    }

    #[test]
    fn rejects_targets_it_cannot_load() {
        assert!(matches!(
            parse_target("https://x/"),
            Err(LoadError::BadTarget { .. })
        ));
        assert!(matches!(
            parse_target("http:///x"),
            Err(LoadError::BadTarget { .. })
        ));
        let t = parse_target("http://127.0.0.1:8080").unwrap();
        assert_eq!(
            (t.authority.as_str(), t.path_and_query.as_str()),
            ("127.0.0.1:8080", "/")
        );
    }
}
