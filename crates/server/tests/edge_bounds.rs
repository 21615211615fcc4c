//! The edge's resource bounds, each refusal seen from a client over real sockets: session bodies (413) and
//! fields (400 naming the field), the per-address session rate (429 with `Retry-After`) and the node's
//! session cap (503), a client that never finishes its request head (disconnected, while others are
//! served), and the per-address connection cap.
//!
//! No timing is asserted: the one timeout test waits for the server to close, bounded by a generous limit.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use interlude_server::ops::endpoints::{ConnectionLimits, serve_on_with_limits};
use interlude_server::stitcher::beacons::MemoryBeaconSink;
use interlude_server::stitcher::config::{ChannelConfig, RenditionConfig, StitcherConfig};
use interlude_server::stitcher::pods::ConfiguredPodSource;
use interlude_server::stitcher::{Stitcher, routes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Far beyond anything the server should take to close a connection that timed out after a second.
const GENEROUS: Duration = Duration::from_secs(60);

/// A stitcher with one channel whose origin is never polled (sessions start without it), served through
/// the listener with `limits`: the whole path a client's connection takes, shedding included.
async fn serve(config: StitcherConfig, limits: ConnectionLimits) -> SocketAddr {
    let config = StitcherConfig {
        channels: vec![ChannelConfig {
            id: "live1".to_owned(),
            origin: "http://127.0.0.1:9/live1/master.m3u8".to_owned(),
            poll_interval_ms: None,
            origin_timeout_ms: 2_000,
            stale_after_secs: 30,
            slate: vec![RenditionConfig {
                bandwidth: 800_000,
                resolution: None,
                playlist: "http://127.0.0.1:9/slate.m3u8".to_owned(),
            }],
            dash_origin: None,
            dash_ad_codecs: "avc1.4d401e,mp4a.40.2".to_owned(),
        }],
        ..config
    };
    let stitcher = Stitcher::builder(
        config.clone(),
        "http://stitcher.test".to_owned(),
        Arc::new(ConfiguredPodSource::new(&[], 0.5)),
        Arc::new(MemoryBeaconSink::default()),
        Arc::new(chrono::Utc::now),
    )
    .build()
    .unwrap();
    let router = interlude_server::ops::shedding::with_shedding(
        routes::router(stitcher),
        interlude_server::ops::shedding::ShedPolicy::in_flight(100),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve_on_with_limits(
        listener,
        router,
        Duration::from_secs(1),
        std::future::pending(),
        limits,
    ));
    addr
}

/// No per-address session limit unless a test sets one.
fn unlimited() -> StitcherConfig {
    StitcherConfig {
        session_rate_per_ip: 0.0,
        ..StitcherConfig::default()
    }
}

/// A client whose connections come from `from` (any 127/8 address reaches a loopback listener).
fn client_from(from: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(from.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

async fn post_session(
    http: &reqwest::Client,
    addr: SocketAddr,
    body: String,
) -> (u16, Option<String>, String) {
    let response = http
        .post(format!("http://{addr}/v1/sessions"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, retry_after, response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_session_body_is_refused_with_413() {
    let addr = serve(unlimited(), ConnectionLimits::default()).await;
    let http = reqwest::Client::new();
    // The body that was accepted before: two megabytes, 190k list entries.
    let segments = vec!["seg01"; 190_000];
    let body =
        serde_json::json!({ "channel": "live1", "viewer": { "segments": segments } }).to_string();
    assert!(body.len() > 1_000_000);
    let (status, _, text) = post_session(&http, addr, body).await;
    assert_eq!(status, 413, "{text}");
    // Just over the route's limit, well-formed otherwise.
    let padding = "x".repeat(routes::MAX_SESSION_BODY_BYTES);
    let body = format!(r#"{{"channel":"live1","viewer":{{"device":"{padding}"}}}}"#);
    let (status, _, text) = post_session(&http, addr, body).await;
    assert_eq!(status, 413, "{text}");
    let (status, _, text) = post_session(&http, addr, r#"{"channel":"live1"}"#.to_owned()).await;
    assert_eq!(status, 201, "a normal session still starts: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_fields_over_their_bounds_are_refused_naming_the_field() {
    let addr = serve(unlimited(), ConnectionLimits::default()).await;
    let http = reqwest::Client::new();
    let long = "x".repeat(routes::MAX_SESSION_STRING_BYTES + 1);
    let segments = vec!["sports"; routes::MAX_SESSION_SEGMENTS + 1];
    let key_values = vec![["k", "v"]; routes::MAX_SESSION_KEY_VALUES + 1];
    let consent = "C".repeat(routes::MAX_CONSENT_STRING_BYTES + 1);
    for (body, field) in [
        (
            serde_json::json!({ "channel": long }),
            "channel: at most 256 bytes",
        ),
        (
            serde_json::json!({ "channel": "live1", "viewer": { "segments": segments } }),
            "viewer.segments: at most 64 entries, got 65",
        ),
        (
            serde_json::json!({ "channel": "live1", "viewer": { "segments": ["ok", long] } }),
            "viewer.segments[1]",
        ),
        (
            serde_json::json!({ "channel": "live1", "viewer": { "key_values": key_values } }),
            "viewer.key_values: at most 32 entries",
        ),
        (
            serde_json::json!({ "channel": "live1", "viewer": { "genre": long } }),
            "viewer.genre",
        ),
        (
            serde_json::json!({ "channel": "live1", "privacy": { "gdpr_consent": consent } }),
            "privacy.gdpr_consent: at most 4096 bytes",
        ),
    ] {
        let (status, _, text) = post_session(&http, addr, body.to_string()).await;
        assert_eq!(status, 400, "{field}: {text}");
        assert!(text.contains(field), "expected {field:?} in {text}");
    }
    // The implicit form names its query parameter.
    let response = http
        .get(format!(
            "http://{addr}/v1/channels/live1/master.m3u8?device={long}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let text = response.text().await.unwrap();
    assert!(text.contains("device: at most 256 bytes"), "{text}");
    // A consent string of a realistic size passes.
    let consent = "C".repeat(2_000);
    let body = serde_json::json!({ "channel": "live1", "privacy": { "gdpr": "1", "gdpr_consent": consent } });
    let (status, _, text) = post_session(&http, addr, body.to_string()).await;
    assert_eq!(status, 201, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_over_its_session_rate_gets_429_with_retry_after_and_others_do_not() {
    let config = StitcherConfig {
        // Two at once, then one every 100 s: the third is refused however slow the test runs.
        session_rate_per_ip: 0.01,
        session_burst_per_ip: 2,
        ..StitcherConfig::default()
    };
    let addr = serve(config, ConnectionLimits::default()).await;
    let one = client_from("127.0.0.1");
    let body = || r#"{"channel":"live1"}"#.to_owned();
    for _ in 0..2 {
        let (status, _, text) = post_session(&one, addr, body()).await;
        assert_eq!(status, 201, "{text}");
    }
    let (status, retry_after, text) = post_session(&one, addr, body()).await;
    assert_eq!(status, 429, "{text}");
    let retry_after: u64 = retry_after.expect("a Retry-After header").parse().unwrap();
    assert!(retry_after >= 1);
    // The implicit form draws on the same allowance.
    let response = one
        .get(format!("http://{addr}/v1/channels/live1/master.m3u8"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    // Another address has its own.
    let other = client_from("127.0.0.2");
    let (status, _, text) = post_session(&other, addr, body()).await;
    assert_eq!(status, 201, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_at_its_session_cap_answers_503() {
    let config = StitcherConfig {
        max_sessions: 3,
        ..unlimited()
    };
    let addr = serve(config, ConnectionLimits::default()).await;
    let http = reqwest::Client::new();
    for _ in 0..3 {
        let (status, _, text) =
            post_session(&http, addr, r#"{"channel":"live1"}"#.to_owned()).await;
        assert_eq!(status, 201, "{text}");
    }
    let (status, retry_after, text) =
        post_session(&http, addr, r#"{"channel":"live1"}"#.to_owned()).await;
    assert_eq!(status, 503, "{text}");
    assert!(retry_after.is_some());
    assert!(text.contains("session cap"), "{text}");
}

/// Reads until the server closes the connection (or resets it); what it sent before that.
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let mut buf = [0u8; 1024];
    tokio::time::timeout(GENEROUS, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("the server closed the connection");
    received
}

/// Sends one request on `stream` and reads its status line.
async fn request_on(stream: &mut TcpStream) -> String {
    stream
        .write_all(b"GET /v1/sessions/none/tracking HTTP/1.1\r\nhost: t\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 512];
    let n = tokio::time::timeout(GENEROUS, stream.read(&mut buf))
        .await
        .expect("an answer")
        .unwrap();
    String::from_utf8_lossy(&buf[..n])
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_finishes_its_header_is_disconnected_while_others_are_served() {
    let limits = ConnectionLimits {
        header_read_timeout: Some(Duration::from_secs(1)),
        ..ConnectionLimits::default()
    };
    let addr = serve(unlimited(), limits).await;
    let mut half = TcpStream::connect(addr).await.unwrap();
    half.write_all(b"GET /v1/sessions/none/tracking HTTP/1.1\r\nhost: t\r\nx-slow: ")
        .await
        .unwrap();
    let mut silent = TcpStream::connect(addr).await.unwrap();

    let (status, _, text) = post_session(
        &reqwest::Client::new(),
        addr,
        r#"{"channel":"live1"}"#.to_owned(),
    )
    .await;
    assert_eq!(status, 201, "served meanwhile: {text}");

    let answered = read_until_closed(&mut half).await;
    assert!(
        !String::from_utf8_lossy(&answered).contains(" 404 "),
        "the half request was never served: {}",
        String::from_utf8_lossy(&answered)
    );
    let answered = read_until_closed(&mut silent).await;
    assert!(answered.is_empty(), "nothing sent, nothing answered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_per_address_cap_are_closed_at_once() {
    let limits = ConnectionLimits {
        max_connections_per_ip: 2,
        ..ConnectionLimits::default()
    };
    let addr = serve(unlimited(), limits).await;
    let mut first = TcpStream::connect(addr).await.unwrap();
    let mut second = TcpStream::connect(addr).await.unwrap();
    assert_eq!(request_on(&mut first).await, "HTTP/1.1 404 Not Found");
    assert_eq!(request_on(&mut second).await, "HTTP/1.1 404 Not Found");

    let mut third = TcpStream::connect(addr).await.unwrap();
    // The request may or may not be written before the server closes; either way it gets no answer.
    let _ = third
        .write_all(b"GET /v1/sessions/none/tracking HTTP/1.1\r\nhost: t\r\n\r\n")
        .await;
    let answered = read_until_closed(&mut third).await;
    assert!(
        answered.is_empty(),
        "{}",
        String::from_utf8_lossy(&answered)
    );

    // Another address is not affected.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let mut elsewhere = socket.connect(addr).await.unwrap();
    assert_eq!(request_on(&mut elsewhere).await, "HTTP/1.1 404 Not Found");

    // A closed connection frees its place (once the server has seen it close).
    drop(first);
    let served = tokio::time::timeout(GENEROUS, async {
        loop {
            let mut again = TcpStream::connect(addr).await.unwrap();
            let _ = again
                .write_all(b"GET /v1/sessions/none/tracking HTTP/1.1\r\nhost: t\r\n\r\n")
                .await;
            let mut buf = [0u8; 64];
            if let Ok(n) = again.read(&mut buf).await {
                if n > 0 {
                    return String::from_utf8_lossy(&buf[..n]).into_owned();
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("a place comes free");
    assert!(served.starts_with("HTTP/1.1 404"), "{served}");
    drop(second);
}
