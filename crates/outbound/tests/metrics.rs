//! What the client counts: requests by kind and outcome, body bytes, refusals by reason, latency per kind.

mod common;

use common::{RawServer, Reply, answer, config};
use interlude_outbound::{GuardedClient, Kind, telemetry};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

#[test]
fn requests_are_counted_by_kind_and_outcome_with_bytes_and_refusal_reasons() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            let server = RawServer::start(|head| {
                if head.starts_with("GET /missing") {
                    Reply::Bytes(answer("404 Not Found", &[], b"gone"))
                } else {
                    Reply::Bytes(answer("200 OK", &[], b"<VAST/>"))
                }
            })
            .await;
            let client = GuardedClient::new(&config(&[server.allow()])).expect("client");
            telemetry::describe();
            client
                .get_text(&server.url("/tag"), Kind::Vast)
                .await
                .expect("VAST");
            client
                .get_text(&server.url("/tag"), Kind::Vast)
                .await
                .expect("VAST");
            assert!(client.ping(&server.url("/missing")).await.is_ok());
            assert!(client.ping("https://127.0.0.1:9/imp").await.is_err());
        })
    });
    let mut counters = Vec::new();
    let mut histograms = Vec::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let key = key.key();
        let mut labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        labels.sort();
        match value {
            DebugValue::Counter(n) => counters.push((key.name().to_owned(), labels.join(","), n)),
            DebugValue::Histogram(samples) => {
                histograms.push((key.name().to_owned(), labels.join(","), samples.len()))
            }
            DebugValue::Gauge(_) => {}
        }
    }
    counters.sort();
    histograms.sort();
    let counter = |name: &str, labels: &str| {
        counters
            .iter()
            .find(|(n, l, _)| n == name && l == labels)
            .map(|(_, _, v)| *v)
    };
    assert_eq!(
        counter(telemetry::REQUESTS_TOTAL, "kind=vast,outcome=2xx"),
        Some(2),
        "{counters:?}"
    );
    assert_eq!(
        counter(telemetry::REQUESTS_TOTAL, "kind=pixel,outcome=4xx"),
        Some(1),
        "{counters:?}"
    );
    assert_eq!(
        counter(telemetry::REQUESTS_TOTAL, "kind=pixel,outcome=refused"),
        Some(1),
        "{counters:?}"
    );
    assert_eq!(
        counter(telemetry::RESPONSE_BYTES_TOTAL, "kind=vast"),
        Some(14),
        "{counters:?}"
    );
    assert_eq!(
        counter(telemetry::REFUSED_TOTAL, "kind=pixel,reason=address"),
        Some(1),
        "{counters:?}"
    );
    assert_eq!(
        histograms,
        vec![
            (
                telemetry::REQUEST_DURATION_SECONDS.to_owned(),
                "kind=pixel".to_owned(),
                2
            ),
            (
                telemetry::REQUEST_DURATION_SECONDS.to_owned(),
                "kind=vast".to_owned(),
                2
            ),
        ]
    );
}
