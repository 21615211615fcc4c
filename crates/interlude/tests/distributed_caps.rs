//! Frequency caps under burst in distributed mode, with the real binary and real servers (Redis, PostgreSQL
//! and the Kafka-protocol broker that `scripts/services.sh` starts): two `interlude serve` nodes over one
//! catalog, a cap-1 line item and a house line item. Decisions of one viewer made at once on both nodes each
//! see the viewer's delivered past unchanged; each node reserves its ads in Redis, one atomic script per ad,
//! so the capped line item goes to exactly one of them (issue 21, "Correctness under burst"):
//!
//! - twenty parallel `GET /v1/vast` of one viewer, alternating between the nodes;
//! - six stitched sessions of one viewer, created alternately on the nodes, across the breaks that follow.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::{free_port, spawn};
use interlude_store::testing;

/// A cap-1 line item `capped` and a house line item, one 15 s creative each, on the origin's assets.
fn catalog(origin: u16) -> String {
    let renditions = common::renditions_toml(origin, "ads/ad15");
    format!(
        r#"
[[advertisers]]
id = "brand"
[[advertisers]]
id = "house"
[[campaigns]]
id = "brand-q4"
advertiser = "brand"
[[campaigns]]
id = "house-fill"
advertiser = "house"

[[line_items]]
id = "capped"
campaign = "brand-q4"
tier = "standard"
start = "2020-01-01T00:00:00Z"
end = "2100-01-01T00:00:00Z"
goal = {{ impressions = 1000000 }}
cpm = 20.0
pacing = "asap"
frequency_caps = [{{ max = 1, window_hours = 24 }}]
creatives = ["brand-15"]

[[line_items]]
id = "house"
campaign = "house-fill"
tier = "house"
start = "2020-01-01T00:00:00Z"
end = "2100-01-01T00:00:00Z"
goal = {{ impressions = 1000000 }}
cpm = 0.0
creatives = ["house-15"]

[[creatives]]
id = "brand-15"
advertiser = "brand"
duration_secs = 15.0
approved = true
renditions = {renditions}

[[creatives]]
id = "house-15"
advertiser = "house"
duration_secs = 15.0
approved = true
renditions = {renditions}
"#
    )
}

/// One node's configuration: the shared parts are identical on both.
fn config(
    listen: u16,
    origin: u16,
    catalog: &std::path::Path,
    pg_url: &str,
    kafka: &interlude_store::KafkaConfig,
    prefix: &str,
) -> String {
    let renditions = |path: &str| common::renditions_toml(origin, path);
    format!(
        r#"
[server]
listen = "127.0.0.1:{listen}"
public_base_url = "http://ads.example.test"

[log]
filter = "warn,interlude=info,interlude_store=info"

[stitcher]
decision_spread_ms = 200

[[stitcher.channels]]
id = "live1"
origin = "http://127.0.0.1:{origin}/live/live1/master.m3u8"
slate = {slate}

[decision]
catalog = "{catalog}"
max_ads_per_pod = 1

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
        catalog = catalog.display(),
        edge = common::edge_toml(),
        slate = renditions("slate"),
        redis = testing::redis_url(),
        brokers = kafka.brokers,
        topic = kafka.topic,
        group = kafka.group,
        partitions = kafka.partitions,
    )
}

/// The line items of `session`'s decided breaks, from its tracking document on `node`.
async fn line_items(http: &reqwest::Client, node: &str, session: &str) -> Vec<String> {
    let doc: serde_json::Value =
        common::get_json(http, &format!("{node}/v1/sessions/{session}/tracking")).await;
    doc["avails"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|a| a["ads"].as_array().into_iter().flatten())
        .filter_map(|ad| ad["line_item_id"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_give_a_cap_one_line_item_to_one_viewer_once() {
    let dir = tempfile::tempdir().unwrap();
    let pg_url = testing::pg_fresh_schema().await.unwrap();
    let kafka = testing::kafka_config(2);
    let prefix = testing::redis_prefix();
    let (origin_port, a_port, b_port) = (free_port(), free_port(), free_port());
    let catalog_file = dir.path().join("catalog.toml");
    std::fs::write(&catalog_file, catalog(origin_port)).unwrap();
    let write = |name: &str, listen: u16| {
        let path = dir.path().join(name);
        let text = config(listen, origin_port, &catalog_file, &pg_url, &kafka, &prefix);
        std::fs::write(&path, text).unwrap();
        path
    };
    let (a_conf, b_conf) = (write("a.toml", a_port), write("b.toml", b_port));
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
    let http = common::reader(Duration::from_secs(30));
    let nodes = [
        format!("http://127.0.0.1:{a_port}"),
        format!("http://127.0.0.1:{b_port}"),
    ];
    for node in &nodes {
        common::wait_ready(&http, node, 2400, Duration::from_millis(50)).await;
    }

    // Twenty parallel ad requests of one viewer, half on each node.
    let requests: Vec<_> = (0..20)
        .map(|k| {
            let (http, node) = (http.clone(), nodes[k % 2].clone());
            tokio::spawn(async move {
                common::get_text(
                    &http,
                    &format!(
                        "{node}/v1/vast?channel=live1&duration=15&viewer=viewer-vast&device=tv"
                    ),
                )
                .await
            })
        })
        .collect();
    let mut documents = Vec::new();
    for r in requests {
        documents.push(r.await.unwrap());
    }
    let brand = documents.iter().filter(|d| d.contains("brand-15")).count();
    let house = documents.iter().filter(|d| d.contains("house-15")).count();
    assert_eq!(
        (brand, house),
        (1, 19),
        "the capped ad once, house for the others (brand, house)"
    );

    // Six stitched sessions of one viewer, three on each node, through the breaks that follow.
    let mut sessions = Vec::new();
    for k in 0..6 {
        let node = nodes[k % 2].clone();
        let created: serde_json::Value = http
            .post(format!("{node}/v1/sessions"))
            .json(&serde_json::json!({
                "channel": "live1",
                "viewer": { "viewer_id": "viewer-stitched", "device": "tv" }
            }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        sessions.push((node, created["session_id"].as_str().unwrap().to_owned()));
    }
    let deadline = Instant::now() + Duration::from_secs(90);
    let served = loop {
        let mut served = Vec::new();
        let mut every_session_decided = true;
        for (node, id) in &sessions {
            common::get_text(&http, &format!("{node}/s/{id}/0/media.m3u8")).await;
            let items = line_items(&http, node, id).await;
            every_session_decided &= !items.is_empty();
            served.extend(items);
        }
        if every_session_decided {
            break served;
        }
        assert!(
            Instant::now() < deadline,
            "not every session had a decided break: {served:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    eprintln!("stitched sessions of one viewer on two nodes were served {served:?}");
    let capped = served.iter().filter(|l| *l == "capped").count();
    assert_eq!(
        capped, 1,
        "the capped line item once across both nodes: {served:?}"
    );
}
