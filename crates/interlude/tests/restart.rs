//! A restarted node keeps its viewers: `interlude serve` (embedded mode, the real binary) is stopped with
//! SIGTERM in the middle of an ad break and started again on the same data directory; the session it created
//! is still served, with the same pod for the break (same ad instances, same segment lines), instead of 404.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{free_port, spawn};

fn config(listen: u16, origin: u16, data: &std::path::Path) -> String {
    let renditions = |path: &str| common::renditions_toml(origin, path);
    format!(
        r#"
[server]
listen = "127.0.0.1:{listen}"
public_base_url = "http://ads.example.test"

[log]
filter = "warn,interlude=info"

[stitcher]
decision_spread_ms = 200

[[stitcher.channels]]
id = "live1"
origin = "http://127.0.0.1:{origin}/live/live1/master.m3u8"
slate = {slate}

[[stitcher.creatives]]
id = "ad15"
duration_secs = 15.0
renditions = {ad15}

[events]
data_dir = {data:?}
signing_keys = [ {{ id = 1, secret = "restart-test-signing-key-0123456789abcdef" }} ]

{edge}
"#,
        slate = renditions("slate"),
        ad15 = renditions("ads/ad15"),
        edge = common::edge_toml(),
    )
}

/// The ad segment lines of a media playlist (they name the session's ad instances).
fn ad_lines(playlist: &str) -> Vec<String> {
    playlist
        .lines()
        .filter(|l| l.contains("/ads/"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_serves_its_sessions_the_same_pod() {
    let dir = tempfile::tempdir().unwrap();
    let (port, origin_port) = (free_port(), free_port());
    let conf = dir.path().join("interlude.toml");
    std::fs::write(&conf, config(port, origin_port, &dir.path().join("data"))).unwrap();
    let _origin = spawn(
        &[
            "origin",
            "--origin-listen",
            &format!("127.0.0.1:{origin_port}"),
            "--break-interval-secs",
            "40",
            "--break-duration-secs",
            "30",
        ],
        &conf,
        &dir.path().join("origin.log"),
    );
    let mut node = spawn(&["serve"], &conf, &dir.path().join("serve-1.log"));
    let base = format!("http://127.0.0.1:{port}");
    let http = common::reader(Duration::from_secs(10));
    common::wait_ready(&http, &base, 2400, Duration::from_millis(50)).await;

    // Ready, the node may still be reading the channel's origin for the first time: the session is created
    // once it has (once CI saw an empty answer here at the very start of a loaded run).
    let deadline = Instant::now() + Duration::from_secs(60);
    let created: serde_json::Value = loop {
        let r = http
            .post(format!("{base}/v1/sessions"))
            .json(&serde_json::json!({ "channel": "live1", "viewer": { "device": "tv" } }))
            .send()
            .await
            .unwrap();
        let status = r.status();
        let body = r.text().await.unwrap_or_default();
        if status.is_success() {
            break serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
        }
        assert!(
            Instant::now() < deadline,
            "no session: {status} {body}; the node's log: {}",
            std::fs::read_to_string(dir.path().join("serve-1.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let id = created["session_id"].as_str().unwrap().to_owned();
    let media = format!("{base}/s/{id}/0/media.m3u8");
    // Wait for a break to start in the session's playlist: its first ad segment there, so its ads stay in the
    // window across the restart (a break first seen by its last segment can slide out while the node
    // restarts, which under load it did).
    let deadline = Instant::now() + Duration::from_secs(90);
    let before = loop {
        let playlist = common::get_text(&http, &media).await;
        let ads = ad_lines(&playlist);
        if ads.iter().any(|line| line.ends_with("/0.ts")) {
            break ads;
        }
        assert!(Instant::now() < deadline, "no break reached: {playlist}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };

    // SIGTERM (graceful), then the same binary on the same data directory.
    let pid = node.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let stopped = node.0.wait().unwrap();
    assert!(
        stopped.success(),
        "serve exits cleanly on SIGTERM: {stopped:?}"
    );
    drop(node);
    let _node = spawn(&["serve"], &conf, &dir.path().join("serve-2.log"));
    common::wait_ready(&http, &base, 2400, Duration::from_millis(50)).await;

    // Ready comes before the first origin poll: until then the channel answers 502 (not the session's
    // fault). A lost session would answer 404.
    let deadline = Instant::now() + Duration::from_secs(60);
    let answer = loop {
        let answer = http.get(&media).send().await.unwrap();
        if answer.status() != 502 || Instant::now() > deadline {
            break answer;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(answer.status(), 200, "the session survived the restart");
    let after = ad_lines(&answer.text().await.unwrap());
    // The break is still in the window (30 s long). Ad segment lines name the session's ad instances, which
    // a new decision would draw afresh: sharing them means the restarted node serves the pod decided before.
    let instance = |line: &String| {
        line.split("/ads/")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .map(str::to_owned)
    };
    let before_ads: std::collections::BTreeSet<_> = before.iter().filter_map(instance).collect();
    let after_ads: std::collections::BTreeSet<_> = after.iter().filter_map(instance).collect();
    assert!(
        !after_ads.is_disjoint(&before_ads),
        "the same pod after the restart:\nbefore {before:?}\nafter {after:?}"
    );
}
