//! TLS against real HTTPS servers (hyper over tokio-rustls) whose certificates come from CAs generated at test
//! time: trusted only through the extra CA bundle, refused otherwise; HTTP/2 and HTTP/1.1 by ALPN.

mod common;

use common::{Canary, TestCa, TlsServer, config};
use interlude_outbound::{Error, GuardedClient, Kind, OutboundConfig, Refusal, Version};

const BOTH: &[&[u8]] = &[b"h2", b"http/1.1"];

#[tokio::test]
async fn server_of_the_extra_ca_is_trusted_and_speaks_http2() {
    let ca = TestCa::new("Interlude test CA");
    let server = TlsServer::start(ca.server_config(BOTH)).await;
    let client = GuardedClient::builder(config(&[server.allow()]))
        .extra_ca_pem(ca.pem())
        .build()
        .expect("client");
    let response = client
        .get(&server.url("/vast?id=1"), Kind::Vast)
        .send()
        .await
        .expect("trusted server");
    assert_eq!(response.text(), "hello over tls");
    assert_eq!(response.version(), Version::HTTP_2);
    assert_eq!(response.header("x-version"), Some("HTTP/2.0"));
}

#[tokio::test]
async fn http1_only_server_is_spoken_to_in_http1() {
    let ca = TestCa::new("Interlude test CA");
    let server = TlsServer::start(ca.server_config(&[b"http/1.1"])).await;
    let client = GuardedClient::builder(config(&[server.allow()]))
        .extra_ca_pem(ca.pem())
        .build()
        .expect("client");
    let response = client
        .get(&server.url("/"), Kind::Playlist)
        .send()
        .await
        .expect("HTTP/1.1");
    assert_eq!(response.version(), Version::HTTP_11);
    assert_eq!(response.header("x-version"), Some("HTTP/1.1"));
}

#[tokio::test]
async fn ca_file_in_the_config_is_trusted() {
    let ca = TestCa::new("Interlude file CA");
    let server = TlsServer::start(ca.server_config(BOTH)).await;
    let path =
        std::env::temp_dir().join(format!("interlude-outbound-ca-{}.pem", server.addr.port()));
    std::fs::write(&path, ca.pem()).expect("write CA file");
    let client = GuardedClient::new(&OutboundConfig {
        ca_file: Some(path.clone()),
        built_in_roots: false,
        ..config(&[server.allow()])
    });
    let _ = std::fs::remove_file(&path);
    let text = client
        .expect("client")
        .get_text(&server.url("/"), Kind::Vast)
        .await
        .expect("trusted by file");
    assert_eq!(text, "hello over tls");
}

#[tokio::test]
async fn server_of_an_unknown_ca_is_refused_at_the_handshake() {
    let trusted = TestCa::new("Interlude trusted CA");
    let rogue = TestCa::new("Interlude rogue CA");
    let server = TlsServer::start(rogue.server_config(BOTH)).await;
    // Trusts the built-in roots and another test CA, not the server's.
    let client = GuardedClient::builder(config(&[server.allow()]))
        .extra_ca_pem(trusted.pem())
        .build()
        .expect("client");
    let err = client
        .get_text(&server.url("/?token=abc"), Kind::Vast)
        .await
        .expect_err("untrusted");
    match &err {
        Error::Transport { reason, url } => {
            assert!(reason.contains("certificate"), "{reason}");
            assert!(!url.contains("abc"), "{url}");
        }
        other => panic!("expected a TLS failure, got {other:?}"),
    }
    assert_eq!(server.handshakes(), 0);
}

#[tokio::test]
async fn https_to_an_unlisted_loopback_server_is_refused_like_http() {
    let ca = TestCa::new("Interlude test CA");
    let server = TlsServer::start(ca.server_config(BOTH)).await;
    let canary = Canary::start().await;
    let client = GuardedClient::builder(OutboundConfig::default())
        .extra_ca_pem(ca.pem())
        .build()
        .expect("client");
    let err = client
        .get_text(&server.url("/"), Kind::Vast)
        .await
        .expect_err("refused");
    assert!(
        matches!(
            err,
            Error::Refused {
                reason: Refusal::Address { .. },
                ..
            }
        ),
        "{err:?}"
    );
    let err = client
        .get_text(&format!("https://localhost:{}/", canary.port), Kind::Vast)
        .await
        .expect_err("refused");
    assert!(
        matches!(
            err,
            Error::Refused {
                reason: Refusal::Address { .. },
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(server.handshakes(), 0);
    assert_eq!(canary.connections(), 0);
}

#[tokio::test]
async fn unreadable_or_empty_ca_bundles_are_config_errors() {
    let err = GuardedClient::new(&OutboundConfig {
        ca_file: Some("/nonexistent/interlude-ca.pem".into()),
        ..OutboundConfig::default()
    })
    .expect_err("missing file");
    assert!(err.to_string().contains("outbound.ca_file"), "{err}");
    let err = GuardedClient::builder(OutboundConfig::default())
        .extra_ca_pem("not a certificate")
        .build()
        .expect_err("no certificate");
    assert!(matches!(err, Error::Config { .. }), "{err:?}");
}
