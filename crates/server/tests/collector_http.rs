//! The collector over HTTP, on a real listener and a real on-disk store: the known stream posted in batches by
//! concurrent clients (with the User-Agent of each report), reports and ledger read back through the API and
//! compared with the ground truth exactly; tracking pixels with genuine and tampered tokens.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;

use interlude_events::Counts;
use interlude_events::contract::EventType;
use interlude_events::testing::known_stream;
use interlude_events::token::TokenClaims;
use interlude_server::collector::{Collector, EventsConfig, router};
use interlude_server::edge::auth::{Producers, Scope};
use interlude_server::edge::{EdgeConfig, Producer};

/// The token of the test's server-side producer.
const STITCHER_TOKEN: &str = "collector-test-stitcher-token-0123456789";

async fn serve(collector: Collector) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router(collector)).await });
    base
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posted_known_stream_is_counted_exactly() {
    let stream = known_stream(11, 600);
    let dir = tempfile::tempdir().unwrap();
    let config = EventsConfig {
        data_dir: dir.path().to_owned(),
        ..EventsConfig::default()
    };
    let now = stream.now;
    // The known stream holds server-side reports too: its producer is a stitcher, allowed to make them.
    let edge = EdgeConfig {
        producers: vec![Producer {
            name: "stitchers".into(),
            token: STITCHER_TOKEN.into(),
            server_side: true,
        }],
        ..EdgeConfig::default()
    };
    let collector = Collector::open(&config, Arc::new(move || now))
        .unwrap()
        .with_access(Producers::from_config(&edge, false), Scope::open());
    let base = serve(collector).await;
    let http = reqwest::Client::new();

    // Consecutive reports with the same User-Agent go in one request; four clients post concurrently, but each
    // client posts its requests in order, so the late tail stays late.
    let mut requests: Vec<(Option<String>, Vec<serde_json::Value>)> = Vec::new();
    for r in &stream.reports {
        match requests.last_mut() {
            Some((agent, batch)) if *agent == r.user_agent && batch.len() < 200 => {
                batch.push(serde_json::to_value(&r.event).unwrap());
            }
            _ => requests.push((
                r.user_agent.clone(),
                vec![serde_json::to_value(&r.event).unwrap()],
            )),
        }
    }
    let late_from = requests.len() - requests.len() / 20;
    let (on_time, late) = requests.split_at(late_from);
    let mut clients = Vec::new();
    for k in 0..4 {
        let mine: Vec<_> = on_time.iter().skip(k).step_by(4).cloned().collect();
        let (http, base) = (http.clone(), base.clone());
        clients.push(tokio::spawn(async move {
            for (agent, batch) in mine {
                let mut request = http
                    .post(format!("{base}/v1/events"))
                    .bearer_auth(STITCHER_TOKEN)
                    .json(&batch);
                if let Some(agent) = agent {
                    request = request.header("user-agent", agent);
                }
                let response = request.send().await.unwrap();
                assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
            }
        }));
    }
    for c in clients {
        c.await.unwrap();
    }
    for (agent, batch) in late {
        let mut request = http
            .post(format!("{base}/v1/events"))
            .bearer_auth(STITCHER_TOKEN)
            .json(batch);
        if let Some(agent) = agent {
            request = request.header("user-agent", agent);
        }
        assert_eq!(request.send().await.unwrap().status(), 200);
    }

    let from = (now - chrono::TimeDelta::days(3)).to_rfc3339();
    let rows: Vec<serde_json::Value> = http
        .get(format!("{base}/v1/reports"))
        .query(&[
            ("group_by", "line_item"),
            ("from", from.as_str()),
            ("to", now.to_rfc3339().as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let reported: BTreeMap<String, Counts> = rows
        .iter()
        .map(|r| {
            let c = Counts {
                impressions: r["impressions"].as_u64().unwrap(),
                starts: r["starts"].as_u64().unwrap(),
                first_quartiles: r["first_quartiles"].as_u64().unwrap(),
                midpoints: r["midpoints"].as_u64().unwrap(),
                third_quartiles: r["third_quartiles"].as_u64().unwrap(),
                completes: r["completes"].as_u64().unwrap(),
                clicks: r["clicks"].as_u64().unwrap(),
                errors: r["errors"].as_u64().unwrap(),
            };
            (r["key"].as_str().unwrap().to_owned(), c)
        })
        .collect();
    assert_eq!(reported, stream.truth, "reports over HTTP");

    let csv = http
        .get(format!(
            "{base}/v1/reports?group_by=line_item&format=csv&from={}",
            urlencode(&from)
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(csv.starts_with("key,impressions,"), "{csv}");
    assert_eq!(csv.lines().count(), stream.truth.len() + 1);

    let quarantine: BTreeMap<String, u64> = http
        .get(format!("{base}/v1/quarantine"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let expected: BTreeMap<String, u64> = stream
        .quarantine
        .iter()
        .map(|(k, v)| ((*k).to_owned(), *v))
        .collect();
    assert_eq!(quarantine, expected);

    // The same contract as MessagePack: a resent batch is recognised as retries, so nothing changes.
    let last: Vec<interlude_events::contract::AdEvent> = stream
        .reports
        .iter()
        .rev()
        .take(50)
        .map(|r| r.event.clone())
        .collect();
    let packed = rmp_serde::to_vec_named(&last).unwrap();
    let answer: serde_json::Value = http
        .post(format!("{base}/v1/events"))
        .bearer_auth(STITCHER_TOKEN)
        .header("content-type", "application/msgpack")
        .body(packed)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["accepted"], 50);
    let outcomes = answer["outcomes"].as_array().unwrap();
    assert!(outcomes.iter().all(|o| o["outcome"] == "retry"), "{answer}");

    let bad = http
        .post(format!("{base}/v1/events"))
        .bearer_auth(STITCHER_TOKEN)
        .header("content-type", "application/json")
        .body("[{\"event_id\": 1}]")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("invalid event batch"));
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pixels_count_once_and_tampered_tokens_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = EventsConfig {
        data_dir: dir.path().to_owned(),
        ..EventsConfig::default()
    };
    let collector = Collector::open(&config, Arc::new(chrono::Utc::now))
        .unwrap()
        .with_access(Producers::insecure_dev(), Scope::open());
    let claims = TokenClaims {
        ad_instance_id: "ai-1".into(),
        event_type: EventType::Impression,
        session_id: "s-1".into(),
        creative_id: "ad15".into(),
        line_item_id: Some("li-1".into()),
        channel: "live1".into(),
        issued_at: u32::try_from(chrono::Utc::now().timestamp()).unwrap(),
        demand: None,
    };
    let path = collector.tracking_path(&claims).unwrap();
    let store = collector.embedded().expect("embedded store");
    let base = serve(collector).await;
    let http = reqwest::Client::new();
    for _ in 0..3 {
        let r = http
            .get(format!("{base}{path}"))
            .header("user-agent", "AppleCoreMedia/1.0")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
    }
    let mut tampered = path.clone().into_bytes();
    let i = tampered.len() - 5;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let r = http
        .get(format!("{base}{}", String::from_utf8(tampered).unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let now = chrono::Utc::now();
    let rows = store
        .report(
            interlude_store::GroupBy::LineItem,
            now - chrono::TimeDelta::hours(1),
            now + chrono::TimeDelta::hours(1),
        )
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0].counts.impressions, 1,
        "three fires of one pixel are one impression"
    );
    assert_eq!(
        store.stats().unwrap().logged,
        1,
        "a fire again is a retry of the same report (same event id): logged once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saturated_store_answers_503_with_retry_after_and_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let config = EventsConfig {
        data_dir: dir.path().to_owned(),
        queue_batches: 1,
        ..EventsConfig::default()
    };
    let collector = Collector::open(&config, Arc::new(chrono::Utc::now))
        .unwrap()
        .with_access(Producers::insecure_dev(), Scope::open());
    let store = collector.embedded().expect("embedded store");
    let base = serve(collector).await;
    let http = reqwest::Client::new();
    let mut storm = Vec::new();
    for c in 0..48 {
        let (http, base) = (http.clone(), base.clone());
        storm.push(tokio::spawn(async move {
            let now = chrono::Utc::now();
            let batch: Vec<_> = (0..500)
                .map(|n| {
                    serde_json::json!({ "schema_version": "1.0", "event_id": format!("c{c}-{n}"),
                        "ad_instance_id": format!("c{c}-ai{n}"), "event_type": "impression", "source": "client_side",
                        "occurred_at": now, "received_at": now, "session_id": format!("c{c}-s{n}"), "channel": "live1",
                        "line_item_id": "li", "creative_id": "cr" })
                })
                .collect();
            let r = http.post(format!("{base}/v1/events")).json(&batch).send().await.unwrap();
            let retry_after = r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
            (r.status().as_u16(), retry_after)
        }));
    }
    let mut accepted = 0u64;
    let mut busy = 0;
    for s in storm {
        match s.await.unwrap() {
            (200, _) => accepted += 500,
            (503, Some(after)) => {
                assert_eq!(after, "1");
                busy += 1;
            }
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert!(
        busy > 0,
        "48 concurrent batches against a queue of one must be pushed back"
    );
    assert!(accepted > 0);
    let now = chrono::Utc::now();
    let counted: u64 = store
        .report(
            interlude_store::GroupBy::LineItem,
            now - chrono::TimeDelta::hours(1),
            now + chrono::TimeDelta::hours(1),
        )
        .unwrap()
        .iter()
        .map(|r| r.counts.impressions)
        .sum();
    assert_eq!(
        counted, accepted,
        "exactly the acknowledged events are counted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_server_side_beacons_is_stored_completely() {
    use interlude_events::{AdEvent, EventType, ServerSideReport};
    use interlude_server::collector::PipelineBeaconSink;
    use interlude_server::stitcher::beacons::BeaconSink;
    let dir = tempfile::tempdir().unwrap();
    let config = EventsConfig {
        data_dir: dir.path().to_owned(),
        queue_batches: 4,
        ..EventsConfig::default()
    };
    let collector = Collector::open(&config, Arc::new(chrono::Utc::now))
        .unwrap()
        .with_access(Producers::insecure_dev(), Scope::open());
    let sink = PipelineBeaconSink::new(&collector);
    let now = chrono::Utc::now();
    // A break start: 20,000 viewers' first ad segments within a moment, each an impression and a start, and
    // every tenth segment fetched twice (a player retry).
    for n in 0..20_000u32 {
        for _ in 0..(1 + u32::from(n % 10 == 0)) {
            for event_type in [EventType::Impression, EventType::Start] {
                sink.emit(AdEvent::server_side(ServerSideReport {
                    ad_instance_id: format!("ai{n}"),
                    event_type,
                    session_id: format!("s{n}"),
                    channel: "live1".into(),
                    break_id: "b1".into(),
                    creative_id: "ad15".into(),
                    line_item_id: Some("li1".into()),
                    occurred_at: now,
                    viewer_id: None,
                    consent: Default::default(),
                    demand: None,
                }));
            }
        }
    }
    let store = collector.embedded().expect("embedded store");
    let counted = || {
        store
            .report(
                interlude_store::GroupBy::LineItem,
                now - chrono::TimeDelta::hours(1),
                now + chrono::TimeDelta::hours(1),
            )
            .unwrap()
            .iter()
            .map(|r| (r.counts.impressions, r.counts.starts))
            .next()
            .unwrap_or_default()
    };
    // Generous: a debug build on a loaded 2-core machine commits slowly; the check is completeness, not speed.
    for _ in 0..1200 {
        if counted() == (20_000, 20_000) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        counted(),
        (20_000, 20_000),
        "every beacon stored once, retries deduplicated"
    );
}

/// A captured pixel URL replayed after its dedup keys could have expired is refused, not counted again; a token
/// claiming to be issued in the future is refused; the event time comes from the token's window, not the
/// client.
#[tokio::test]
async fn an_expired_pixel_is_refused_so_a_replay_counts_once() {
    use std::sync::atomic::{AtomicI64, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let config = EventsConfig {
        data_dir: dir.path().to_owned(),
        ..EventsConfig::default()
    };
    let start = chrono::Utc::now();
    let offset = Arc::new(AtomicI64::new(0));
    let clock = {
        let offset = offset.clone();
        Arc::new(move || start + chrono::TimeDelta::seconds(offset.load(Ordering::Relaxed)))
    };
    let collector = Collector::open(&config, clock)
        .unwrap()
        .with_access(Producers::insecure_dev(), Scope::open());
    let claims = |issued_at: chrono::DateTime<chrono::Utc>| TokenClaims {
        ad_instance_id: "ai-replayed".into(),
        event_type: EventType::Impression,
        session_id: "s-1".into(),
        creative_id: "ad15".into(),
        line_item_id: Some("li-1".into()),
        channel: "live1".into(),
        issued_at: u32::try_from(issued_at.timestamp()).unwrap(),
        demand: None,
    };
    let path = collector.tracking_path(&claims(start)).unwrap();
    let future = collector
        .tracking_path(&claims(start + chrono::TimeDelta::hours(1)))
        .unwrap();
    let store = collector.embedded().expect("embedded store");
    let base = serve(collector).await;
    let http = reqwest::Client::new();
    let fire = |path: String| {
        let http = http.clone();
        let url = format!("{base}{path}");
        async move { http.get(url).send().await.unwrap() }
    };
    assert_eq!(fire(path.clone()).await.status(), 204);
    let future = fire(future).await;
    assert_eq!(future.status(), 403);
    assert!(future.text().await.unwrap().contains("in the future"));
    // Two days later (the default dedup window is 48 h): the same URL again.
    offset.store(49 * 3600, Ordering::Relaxed);
    let replay = fire(path).await;
    assert_eq!(replay.status(), 403);
    assert!(replay.text().await.unwrap().contains("expired"));
    let rows = store
        .report(
            interlude_store::GroupBy::LineItem,
            start - chrono::TimeDelta::hours(1),
            start + chrono::TimeDelta::hours(60),
        )
        .unwrap();
    let counted: u64 = rows.iter().map(|r| r.counts.impressions).sum();
    assert_eq!(counted, 1, "one fire counted, the replay refused");
    assert_eq!(
        store.stats().unwrap().logged,
        1,
        "refused fires are not logged"
    );
}
