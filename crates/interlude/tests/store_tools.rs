//! `interlude store verify|export`, the real binary on a real store file: a clean store verifies (exit 0), a
//! flipped byte is named by table and reason (exit 1), and what still decodes exports as JSON lines.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use interlude_events::contract::AdEvent;
use interlude_events::{Envelope, Policy};
use interlude_store::EventStore;

fn store_with_events(dir: &std::path::Path) {
    let t0: chrono::DateTime<chrono::Utc> = "2026-11-23T18:00:00Z".parse().unwrap();
    let batch: Vec<Envelope> = (0..50u32)
        .map(|n| {
            let event: AdEvent = serde_json::from_value(serde_json::json!({
                "schema_version": "1.0",
                "event_id": format!("tool-{n:04}"),
                "ad_instance_id": format!("ai{n}"),
                "event_type": "impression",
                "source": "server_side",
                "occurred_at": t0,
                "received_at": t0,
                "session_id": format!("s{n}"),
                "channel": "live1",
                "line_item_id": "li1",
                "creative_id": "ad15",
            }))
            .unwrap();
            Envelope {
                event,
                user_agent: None,
                ip: None,
            }
        })
        .collect();
    let store = EventStore::open(dir, Policy::default()).unwrap();
    store
        .ingest(&batch, t0 + chrono::TimeDelta::minutes(1))
        .unwrap();
    store.close().unwrap();
}

fn interlude(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_interlude"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

#[test]
fn verify_names_the_damage_and_export_salvages_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    store_with_events(dir.path());
    let path = dir.path().to_str().unwrap();

    let clean = interlude(&["store", "verify", "--dir", path]);
    assert!(clean.status.success(), "{clean:?}");
    let report: serde_json::Value = serde_json::from_slice(&clean.stdout).unwrap();
    assert_eq!(report["checksums_ok"], true);
    assert_eq!(report["damage"], serde_json::json!([]));

    // One byte of one log record: the length of its event_id (the compact record stores the id after its
    // length, a byte of 9), made a varint that runs far past the record.
    let file = dir.path().join("events.redb");
    let mut bytes = std::fs::read(&file).unwrap();
    let needle = b"\x09tool-0025";
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("the record is in the file");
    bytes[at] = 0xff;
    std::fs::write(&file, &bytes).unwrap();

    let damaged = interlude(&["store", "verify", "--dir", path]);
    assert!(!damaged.status.success(), "a damaged store fails verify");
    let report: serde_json::Value = serde_json::from_slice(&damaged.stdout).unwrap();
    let damage = report["damage"].as_array().unwrap();
    assert!(
        damage
            .iter()
            .any(|d| d["table"] == "log" && d["key"].is_string()),
        "{report}"
    );

    let out = dir.path().join("export.jsonl");
    let export = interlude(&[
        "store",
        "export",
        "--dir",
        path,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(export.status.success(), "{export:?}");
    let lines = std::fs::read_to_string(&out).unwrap();
    let counted = lines
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["kind"] == "counted")
        .count();
    assert_eq!(counted, 50, "every counted key exported");
}
