//! Distributed mode end to end, with the real binary and real servers (Redis, PostgreSQL and the
//! Kafka-protocol broker that `scripts/services.sh` starts): a simulated origin, two `interlude serve` nodes
//! and two `interlude process` processors on loopback.
//!
//! - A session created on node A renders the same media playlist on node B, across an ad break (the break's
//!   decision is made once and shared through Redis).
//! - A load of beacons goes through both nodes while one processor is killed with SIGKILL mid-stream and
//!   restarted (its partitions move to the other processor and back: two rebalances). The final report equals
//!   the ground truth exactly: every distinct valid impression once, duplicates and retries not at all, every
//!   invalid event in quarantine once.
//!
//! `DISTRIBUTED_EVENTS` sets the number of ad instances (default 20,000).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::{free_port, spawn};
use interlude_store::testing;

/// One node's (or processor's) configuration: the shared parts are identical on every node.
fn config(
    listen: u16,
    origin: u16,
    pg_url: &str,
    kafka: &interlude_store::KafkaConfig,
    prefix: &str,
) -> String {
    let renditions = |path: &str| common::renditions_toml(origin, path);
    format!(
        r#"
[server]
listen = "127.0.0.1:{listen}"
# Every node behind one load balancer: links are the same whichever node answers.
public_base_url = "http://ads.example.test"

[log]
filter = "warn,interlude=info,interlude_store=info"

[stitcher]
decision_spread_ms = 500

[[stitcher.channels]]
id = "live1"
origin = "http://127.0.0.1:{origin}/live/live1/master.m3u8"
slate = {slate}

[[stitcher.creatives]]
id = "ad15"
duration_secs = 15.0
renditions = {ad15}

[events]
signing_keys = [ {{ id = 1, secret = "distributed-test-signing-key-0123456789" }} ]

[distributed]
enabled = true
redis_url = "{redis}"
postgres_url = "{pg_url}"
key_prefix = "{prefix}"

[distributed.kafka]
brokers = "{brokers}"
topic = "{topic}"
group = "{group}"
partitions = {partitions}
batch_wait_ms = 10

{edge}
"#,
        edge = common::edge_toml(),
        slate = renditions("slate"),
        ad15 = renditions("ads/ad15"),
        redis = testing::redis_url(),
        brokers = kafka.brokers,
        topic = kafka.topic,
        group = kafka.group,
        partitions = kafka.partitions,
    )
}

/// Ad instance `n`'s reports: its impression; every 10th also reported by the other side (a duplicate report
/// of the same impression, its own event id); every 40th breaks the contract (quarantined, once).
fn reports(n: u64, now: chrono::DateTime<chrono::Utc>) -> Vec<serde_json::Value> {
    let report = |id: String, source: &str| {
        serde_json::json!({
            "schema_version": "1.0",
            "event_id": id,
            "ad_instance_id": format!("ai{n}"),
            "event_type": if n % 40 == 0 { "error" } else { "impression" },
            "source": source,
            "occurred_at": now,
            "received_at": now,
            "session_id": format!("s{}", n / 4),
            "channel": "live1",
            "line_item_id": format!("li{}", n % 5),
            "creative_id": "ad15",
            "device": "tv",
        })
    };
    let mut out = vec![report(format!("e{n}"), "server_side")];
    if n % 10 == 5 {
        out.push(report(format!("e{n}-client"), "client_side"));
    }
    out
}

/// Impressions in node `base`'s report (read from PostgreSQL).
async fn counted(http: &reqwest::Client, base: &str, now: chrono::DateTime<chrono::Utc>) -> u64 {
    let time =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let url = format!(
        "{base}/v1/reports?group_by=channel&from={}&to={}",
        time(now - chrono::TimeDelta::hours(1)),
        time(now + chrono::TimeDelta::hours(1)),
    );
    let report: Vec<serde_json::Value> = common::get_json(http, &url).await;
    report
        .iter()
        .map(|r| r["impressions"].as_u64().unwrap())
        .sum()
}

async fn post_until_accepted(http: &reqwest::Client, url: &str, body: &[serde_json::Value]) {
    let mut delay = Duration::from_millis(20);
    for _ in 0..200 {
        match http
            .post(url)
            .bearer_auth(common::PRODUCER_TOKEN)
            .json(body)
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => return,
            _ => {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_millis(500));
            }
        }
    }
    panic!("a batch was never accepted by {url}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_two_processors_sigkill_exact_counts_and_shared_sessions() {
    let instances: u64 = std::env::var("DISTRIBUTED_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let dir = tempfile::tempdir().unwrap();
    let pg_url = testing::pg_fresh_schema().await.unwrap();
    let kafka = testing::kafka_config(4);
    let prefix = testing::redis_prefix();
    let (origin_port, a_port, b_port) = (free_port(), free_port(), free_port());
    let write = |name: &str, listen: u16| {
        let path = dir.path().join(name);
        std::fs::write(&path, config(listen, origin_port, &pg_url, &kafka, &prefix)).unwrap();
        path
    };
    let (a_conf, b_conf, p_conf) = (
        write("a.toml", a_port),
        write("b.toml", b_port),
        write("p.toml", free_port()),
    );
    let log = |name: &str| dir.path().join(name);
    let _origin = spawn(
        &[
            "origin",
            "--origin-listen",
            &format!("127.0.0.1:{origin_port}"),
            "--break-interval-secs",
            "24",
            "--break-duration-secs",
            "16",
            "--speed",
            "2",
        ],
        &a_conf,
        &log("origin.log"),
    );
    let _a = spawn(&["serve"], &a_conf, &log("a.log"));
    let _b = spawn(&["serve"], &b_conf, &log("b.log"));
    let mut p1 = spawn(&["process", "--report-secs", "1"], &p_conf, &log("p1.log"));
    let _p2 = spawn(&["process", "--report-secs", "1"], &p_conf, &log("p2.log"));
    let http = common::reader(Duration::from_secs(30));
    let (a, b) = (
        format!("http://127.0.0.1:{a_port}"),
        format!("http://127.0.0.1:{b_port}"),
    );
    common::wait_ready(&http, &a, 2400, Duration::from_millis(50)).await;
    common::wait_ready(&http, &b, 2400, Duration::from_millis(50)).await;

    // Beacons through both nodes, with processor 1 killed mid-stream and restarted.
    let now = chrono::Utc::now();
    let batches: Vec<Vec<serde_json::Value>> = (0..instances)
        .collect::<Vec<_>>()
        .chunks(100)
        .map(|c| c.iter().flat_map(|n| reports(*n, now)).collect())
        .collect();
    let total_batches = batches.len();
    let started = Instant::now();
    let mut sent = 0;
    let mut killed = false;
    for (i, group) in batches.chunks(8).enumerate() {
        let posts = group.iter().enumerate().map(|(j, batch)| {
            let node = if (i + j) % 2 == 0 { &a } else { &b };
            let url = format!("{node}/v1/events");
            let http = http.clone();
            async move { post_until_accepted(&http, &url, batch).await }
        });
        futures_util::future::join_all(posts).await;
        // A client that never saw the answer sends a batch again (a retry: same event ids).
        if i % 10 == 3 {
            post_until_accepted(&http, &format!("{b}/v1/events"), &group[0]).await;
        }
        sent += group.len();
        if !killed && sent * 5 >= total_batches * 2 {
            killed = true;
            // Mid-stream: the processors are applying (counts are arriving) when one of them dies.
            while counted(&http, &a, now).await == 0 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            // SIGKILL: no shutdown, no offset commit, a batch possibly half-applied in its transaction.
            p1.0.kill().unwrap();
            p1.0.wait().unwrap();
            tokio::time::sleep(Duration::from_secs(1)).await;
            p1 = spawn(
                &["process", "--report-secs", "1"],
                &p_conf,
                &log("p1-restarted.log"),
            );
        }
    }
    let sent_secs = started.elapsed().as_secs_f64();

    let valid = instances - instances.div_ceil(40);
    let invalid = instances.div_ceil(40);
    let deadline = Instant::now() + Duration::from_secs(180);
    let (impressions, quarantined) = loop {
        let impressions = counted(&http, &a, now).await;
        let quarantine: serde_json::Value =
            common::get_json(&http, &format!("{b}/v1/quarantine")).await;
        let quarantined = quarantine["contract"].as_u64().unwrap_or(0);
        if (impressions >= valid && quarantined >= invalid) || Instant::now() > deadline {
            break (impressions, quarantined);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let total_secs = started.elapsed().as_secs_f64();
    // Let anything still in flight land before the final comparison (a double count would show now).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ledger: Vec<serde_json::Value> = common::get_json(&http, &format!("{a}/v1/ledger")).await;
    let billed: u64 = ledger
        .iter()
        .map(|r| {
            r["original"]["impressions"].as_u64().unwrap()
                + r["corrections"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c["impressions"].as_u64().unwrap())
                    .sum::<u64>()
        })
        .sum();
    eprintln!(
        "distributed: {instances} instances ({} reports incl. duplicates) sent in {sent_secs:.1} s, counted by \
         {total_secs:.1} s: impressions {impressions}/{valid}, quarantined {quarantined}/{invalid}, billed {billed}",
        instances + instances / 10,
    );
    assert_eq!(
        impressions, valid,
        "reports count each valid impression exactly once"
    );
    assert_eq!(
        billed, valid,
        "the ledger bills each valid impression exactly once"
    );
    assert_eq!(quarantined, invalid, "each invalid event quarantined once");
    let restarted = std::fs::read_to_string(log("p1-restarted.log")).unwrap_or_default();
    assert!(
        restarted.contains("Processing events"),
        "the restarted processor rejoined the group: {restarted}"
    );

    // A session created on node A renders identically on node B, across a break.
    let created: serde_json::Value = http
        .post(format!("{a}/v1/sessions"))
        .json(&serde_json::json!({ "channel": "live1", "viewer": { "device": "tv", "country": "FR" } }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["session_id"].as_str().unwrap().to_owned();
    let media = |node: &str| format!("{node}/s/{id}/0/media.m3u8");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let from_a = common::get_text(&http, &media(&a)).await;
        let from_b = common::get_text(&http, &media(&b)).await;
        let again = common::get_text(&http, &media(&a)).await;
        // Compared when node A's window did not move between its two answers (the nodes poll the origin
        // independently, so one may be a segment ahead for a moment).
        if from_a == again && from_a == from_b && from_a.contains("/ads/") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node B never rendered node A's session identically across a break:\nA: {from_a}\nB: {from_b}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    drop(p1);
}
