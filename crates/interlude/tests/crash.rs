//! The crash test of the event pipeline: `interlude serve` (the real binary, on a real data directory) takes a
//! stream of events from concurrent clients while it is killed with SIGKILL several times and restarted.
//! Clients do what players do: a request that fails (connection refused or cut) is sent again until it gets a
//! 2xx. Afterwards every acknowledged event is counted exactly once, and nothing else is: the counted total
//! equals the number of distinct valid events, and the invalid ones are all in quarantine.
//!
//! `CRASH_EVENTS` sets the number of events (default 100,000; the closing note quotes a 1,000,000 run:
//! `CRASH_EVENTS=1000000 cargo test --release -p interlude --test crash -- --nocapture`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::free_port;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

struct Server {
    child: Child,
}

/// Starts `interlude serve` as production runs it: signing keys, producer and read tokens, pseudonym secret.
fn start(port: u16, dir: &std::path::Path) -> Server {
    let config = dir.join("interlude.toml");
    std::fs::write(
        &config,
        format!(
            "[events]\nsigning_keys = [ {{ id = 1, secret = \"crash-test-signing-key-0123456789abcdef\" }} ]\n\n{}",
            common::edge_toml()
        ),
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_interlude"))
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .env("INTERLUDE_PRIVACY_SECRET", common::PRIVACY_SECRET)
        .env("INTERLUDE_SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("INTERLUDE_EVENTS__DATA_DIR", dir)
        .env("INTERLUDE_LOG__FILTER", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Server { child }
}

/// Event `n`: an impression of its own ad instance; every 50th breaks the contract (an error event without its
/// VAST error code) and must be quarantined, once.
fn event(n: u64, now: chrono::DateTime<chrono::Utc>) -> serde_json::Value {
    serde_json::json!({
        "schema_version": "1.0",
        "event_id": format!("e{n}"),
        "ad_instance_id": format!("ai{n}"),
        "event_type": if n % 50 == 0 { "error" } else { "impression" },
        "source": "client_side",
        "occurred_at": now,
        "received_at": now,
        "session_id": format!("s{n}"),
        "channel": "live1",
        "line_item_id": format!("li{}", n % 7),
        "creative_id": "ad15",
        "device": "tv",
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_sigkill_exactly_once() {
    let total: u64 = std::env::var("CRASH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let http = common::reader(Duration::from_secs(10));
    let server = Arc::new(std::sync::Mutex::new(start(port, dir.path())));
    common::wait_ready(&http, &base, 1500, Duration::from_millis(20)).await;

    let next = Arc::new(AtomicU64::new(0));
    let acked = Arc::new(AtomicU64::new(0));
    let retries = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    const BATCH: u64 = 500;
    let started = Instant::now();
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (http, base, next, acked, retries) = (
            http.clone(),
            base.clone(),
            next.clone(),
            acked.clone(),
            retries.clone(),
        );
        clients.push(tokio::spawn(async move {
            loop {
                let first = next.fetch_add(BATCH, Ordering::Relaxed);
                if first >= total {
                    return;
                }
                let now = chrono::Utc::now();
                let batch: Vec<_> = (first..(first + BATCH).min(total))
                    .map(|n| event(n, now))
                    .collect();
                loop {
                    let request = http
                        .post(format!("{base}/v1/events"))
                        .bearer_auth(common::PRODUCER_TOKEN)
                        .header("user-agent", "AppleCoreMedia/1.0")
                        .json(&batch);
                    match request.send().await {
                        Ok(r) if r.status().is_success() => {
                            acked.fetch_add(batch.len() as u64, Ordering::Relaxed);
                            break;
                        }
                        _ => {
                            retries.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
            }
        }));
    }
    // The killer: SIGKILL every ~1.5 s while the load runs, then restart at once.
    let killer = {
        let (server, done, dir, http, base) = (
            server.clone(),
            done.clone(),
            dir.path().to_owned(),
            http.clone(),
            base.clone(),
        );
        tokio::spawn(async move {
            let mut kills = 0;
            while !done.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(1500)).await;
                if done.load(Ordering::Relaxed) {
                    break;
                }
                {
                    let mut s = server.lock().unwrap();
                    s.child.kill().unwrap(); // SIGKILL on Unix
                    s.child.wait().unwrap();
                    *s = start(port, &dir);
                }
                kills += 1;
                common::wait_ready(&http, &base, 1500, Duration::from_millis(20)).await;
            }
            kills
        })
    };
    for c in clients {
        c.await.unwrap();
    }
    done.store(true, Ordering::Relaxed);
    let kills = killer.await.unwrap();
    let elapsed = started.elapsed();
    assert!(
        kills >= 2,
        "the server must have been killed several times, was {kills}"
    );
    assert_eq!(acked.load(Ordering::Relaxed), total);

    let now = chrono::Utc::now();
    let from = (now - chrono::TimeDelta::hours(1)).to_rfc3339();
    let rows: Vec<serde_json::Value> = http
        .get(format!("{base}/v1/reports"))
        .query(&[("group_by", "line_item"), ("from", from.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let counted: u64 = rows
        .iter()
        .map(|r| r["impressions"].as_u64().unwrap())
        .sum();
    let invalid = total.div_ceil(50);
    let quarantine: serde_json::Value = http
        .get(format!("{base}/v1/quarantine"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    eprintln!(
        "crash test: {total} events in {:.1} s, {kills} SIGKILLs, {} resent requests, {counted} counted, quarantine {quarantine}",
        elapsed.as_secs_f64(),
        retries.load(Ordering::Relaxed)
    );
    assert_eq!(
        counted,
        total - invalid,
        "every acknowledged valid event counted exactly once"
    );
    assert_eq!(
        quarantine,
        serde_json::json!({ "contract": invalid }),
        "each invalid event quarantined once"
    );
    server.lock().unwrap().child.kill().unwrap();
}
