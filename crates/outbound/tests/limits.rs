//! Body caps, timeouts, statuses and what errors may say, against a raw HTTP server that sends exactly the bytes
//! each test chooses: lying and huge lengths, endless chunked bodies, a gzip bomb, stalls, non-HTTP answers.

mod common;

use std::io::Write;
use std::time::Duration;

use common::{RawServer, Reply, answer, config};
use interlude_outbound::{BodyLimits, Error, GuardedClient, Kind, OutboundConfig, StatusCode};

fn client_for(server: &RawServer, max_body: BodyLimits) -> GuardedClient {
    GuardedClient::new(&OutboundConfig {
        max_body,
        ..config(&[server.allow()])
    })
    .expect("client")
}

fn small_limits() -> BodyLimits {
    BodyLimits {
        pixel: 1000,
        vast: 1000,
        ..BodyLimits::default()
    }
}

fn chunked(body: &[u8]) -> Vec<u8> {
    let mut out =
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n".to_vec();
    for part in body.chunks(300) {
        out.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        out.extend_from_slice(part);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(data).expect("gzip");
    encoder.finish().expect("gzip")
}

fn assert_too_large(result: Result<bytes::Bytes, Error>, kind: Kind, limit: u64) {
    match result {
        Err(Error::TooLarge {
            kind: k, limit: l, ..
        }) => assert_eq!((k, l), (kind, limit)),
        other => panic!("expected TooLarge, got {other:?}"),
    }
}

#[tokio::test]
async fn body_at_the_cap_is_accepted_and_one_byte_more_is_refused() {
    let server = RawServer::start(|head| {
        let len = if head.starts_with("GET /over") {
            1001
        } else {
            1000
        };
        let body = vec![b'v'; len];
        if head.contains("/chunked") {
            Reply::Bytes(chunked(&body))
        } else {
            Reply::Bytes(answer("200 OK", &[], &body))
        }
    })
    .await;
    let client = client_for(&server, small_limits());
    for path in ["/exact", "/exact/chunked"] {
        let body = client
            .get_bytes(&server.url(path), Kind::Vast)
            .await
            .expect(path);
        assert_eq!(body.len(), 1000, "{path}");
    }
    for path in ["/over", "/over/chunked"] {
        assert_too_large(
            client.get_bytes(&server.url(path), Kind::Vast).await,
            Kind::Vast,
            1000,
        );
    }
}

#[tokio::test]
async fn declared_content_length_above_the_cap_is_refused_before_reading() {
    // 64 MiB declared, then bytes for as long as the client reads: only the header can end this quickly.
    let server = RawServer::start(|_| {
        Reply::Endless(b"HTTP/1.1 200 OK\r\ncontent-length: 67108864\r\n\r\n".to_vec())
    })
    .await;
    let client = client_for(&server, BodyLimits::default());
    assert_too_large(
        client.get_bytes(&server.url("/bid"), Kind::Bid).await,
        Kind::Bid,
        1024 * 1024,
    );
}

#[tokio::test]
async fn endless_chunked_body_stops_at_the_cap() {
    let server = RawServer::start(|_| {
        Reply::EndlessChunked(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec())
    })
    .await;
    let client = client_for(&server, BodyLimits::default());
    assert_too_large(
        client.get_bytes(&server.url("/vast"), Kind::Vast).await,
        Kind::Vast,
        1024 * 1024,
    );
    let playlist = client
        .get_bytes(&server.url("/live.m3u8"), Kind::Playlist)
        .await;
    assert_too_large(playlist, Kind::Playlist, 2 * 1024 * 1024);
}

#[tokio::test]
async fn gzip_is_decoded_and_a_gzip_bomb_stops_at_the_cap() {
    let vast = b"<VAST version=\"4.2\"><Ad id=\"1\"><InLine/></Ad></VAST>".repeat(10);
    let small = gzip(&vast);
    // 16 MiB of zeros compress to about 16 KiB: far under the cap on the wire, far over it decoded.
    let bomb = gzip(&vec![0u8; 16 * 1024 * 1024]);
    assert!(bomb.len() < 1024 * 1024);
    let server = RawServer::start(move |head| {
        let body = if head.starts_with("GET /bomb") {
            &bomb
        } else {
            &small
        };
        Reply::Bytes(answer("200 OK", &[("content-encoding", "gzip")], body))
    })
    .await;
    let client = client_for(&server, BodyLimits::default());
    let text = client
        .get_text(&server.url("/vast"), Kind::Vast)
        .await
        .expect("gzipped VAST");
    assert_eq!(text.as_bytes(), &vast[..]);
    assert_too_large(
        client.get_bytes(&server.url("/bomb"), Kind::Vast).await,
        Kind::Vast,
        1024 * 1024,
    );
}

#[tokio::test]
async fn pixel_body_past_the_cap_is_dropped_and_the_status_kept() {
    let server = RawServer::start(|_| {
        Reply::EndlessChunked(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec())
    })
    .await;
    let client = client_for(&server, BodyLimits::default());
    assert_eq!(
        client.ping(&server.url("/imp?cb=1")).await.expect("ping"),
        StatusCode::OK
    );
    // The same body fetched as a document is an error.
    assert_too_large(
        client.get_bytes(&server.url("/imp"), Kind::Pixel).await,
        Kind::Pixel,
        64 * 1024,
    );
}

#[tokio::test]
async fn silent_server_and_stalled_body_time_out() {
    let silent = RawServer::start(|_| Reply::Silent).await;
    let client = client_for(&silent, BodyLimits::default());
    let err = client
        .get(&silent.url("/vast"), Kind::Vast)
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .expect_err("timeout");
    assert!(
        matches!(&err, Error::Timeout { after, .. } if *after == Duration::from_millis(300)),
        "{err:?}"
    );

    let stalled = RawServer::start(|_| {
        Reply::Stall(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial".to_vec())
    })
    .await;
    let client = GuardedClient::new(&OutboundConfig {
        timeout_ms: 300,
        ..config(&[stalled.allow()])
    })
    .expect("client");
    let err = client
        .get_bytes(&stalled.url("/"), Kind::Vast)
        .await
        .expect_err("timeout");
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
}

#[tokio::test]
async fn non_success_status_is_an_answer_for_send_and_an_error_for_the_helpers() {
    let server = RawServer::start(|_| {
        Reply::Bytes(answer(
            "404 Not Found",
            &[],
            b"secret body of the error page",
        ))
    })
    .await;
    let client = client_for(&server, BodyLimits::default());
    let url = server.url("/vast?ifa=viewer-123&token=abc");
    let response = client.get(&url, Kind::Vast).send().await.expect("answer");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let debug = format!("{response:?}");
    assert!(
        !debug.contains("viewer-123") && !debug.contains("secret"),
        "{debug}"
    );
    let request = format!("{:?}", client.get(&url, Kind::Vast));
    assert!(!request.contains("viewer-123"), "{request}");
    let err = response.require_success().expect_err("404");
    assert_eq!(
        err.to_string(),
        format!("{}: HTTP 404", server.url("/vast?[redacted]"))
    );
    let err = client.get_text(&url, Kind::Vast).await.expect_err("404");
    assert!(matches!(err, Error::Status { status: 404, .. }), "{err:?}");
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(
            !text.contains("viewer-123") && !text.contains("abc") && !text.contains("secret"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn transport_errors_carry_neither_the_answer_nor_the_query() {
    // Not HTTP: a server that leaks a credentials document instead of a status line.
    let server =
        RawServer::start(|_| Reply::Bytes(b"aws_secret_access_key = AKIA-TOP-SECRET\n\n".to_vec()))
            .await;
    let client = client_for(&server, BodyLimits::default());
    let err = client
        .get_text(&server.url("/tag?token=abc"), Kind::Vast)
        .await
        .expect_err("not HTTP");
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(
            !text.contains("AKIA") && !text.contains("token=abc"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn post_sends_the_body_and_headers() {
    let server = RawServer::start(|head| {
        let ok = head.starts_with("POST /bid ")
            && head.to_ascii_lowercase().contains("x-openrtb-version: 2.6")
            && head.contains("content-length: 2");
        if ok {
            Reply::Bytes(answer(
                "200 OK",
                &[("content-type", "application/json")],
                b"{}",
            ))
        } else {
            Reply::Bytes(answer("400 Bad Request", &[], b""))
        }
    })
    .await;
    let client = client_for(&server, BodyLimits::default());
    let response = client
        .post(&server.url("/bid"), Kind::Bid)
        .header("content-type", "application/json")
        .header("x-openrtb-version", "2.6")
        .body("{}")
        .send()
        .await
        .expect("bid");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.header("content-type"), Some("application/json"));

    let err = client
        .get(&server.url("/"), Kind::Vast)
        .header("bad header", "x")
        .send()
        .await
        .expect_err("invalid header");
    assert!(matches!(err, Error::Invalid { .. }), "{err:?}");
}

#[tokio::test]
async fn zero_limits_and_timeouts_are_config_errors_naming_the_key() {
    let err = GuardedClient::new(&OutboundConfig {
        max_body: BodyLimits {
            segment: 0,
            ..BodyLimits::default()
        },
        ..OutboundConfig::default()
    })
    .expect_err("zero cap");
    assert!(
        err.to_string().contains("outbound.max_body.segment"),
        "{err}"
    );
    let err = GuardedClient::new(&OutboundConfig {
        timeout_ms: 0,
        ..OutboundConfig::default()
    })
    .expect_err("zero timeout");
    assert!(err.to_string().contains("outbound.timeout_ms"), "{err}");
}

#[tokio::test]
async fn detached_pings_reach_the_server_in_the_background() {
    let server = RawServer::start(|_| Reply::Bytes(answer("204 No Content", &[], b""))).await;
    let client = client_for(&server, BodyLimits::default());
    client.ping_detached((0..3).map(|i| server.url(&format!("/imp?n={i}"))));
    // Wait for the background tasks, bounded (not a timing assertion: only the count is checked).
    for _ in 0..500 {
        if server.hits() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(server.hits(), 3);
}
