//! The SSRF guard against real sockets: a loopback canary never receives a connection unless the allowlist
//! re-opens it, whatever spelling, name or redirect leads there. Each refusal has a control showing the same
//! URL does reach the canary once allowed, so a count of 0 means "refused", not "unreachable".

mod common;

use common::{Canary, RawServer, Reply, answer, config, path_of};
use interlude_outbound::{Error, GuardedClient, Kind, OutboundConfig, Refusal};

fn client(config: OutboundConfig) -> GuardedClient {
    GuardedClient::new(&config).expect("client")
}

/// `allow_http` on, so the refusal comes from the address guard and not from the scheme rule.
fn open_http(allow: &[&str]) -> GuardedClient {
    let allow: Vec<String> = allow.iter().map(|s| (*s).to_owned()).collect();
    client(OutboundConfig {
        allow_http: true,
        ..config(&allow)
    })
}

async fn get(client: &GuardedClient, url: &str) -> Result<String, Error> {
    client.get_text(url, Kind::Vast).await
}

fn assert_address_refused(result: Result<String, Error>, url: &str) {
    match result {
        Err(Error::Refused {
            reason: Refusal::Address { .. },
            ..
        }) => {}
        other => panic!("{url}: expected an address refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn loopback_literal_is_refused_unless_allowlisted() {
    let canary = Canary::start().await;
    let url = format!("http://127.0.0.1:{}/admin", canary.port);
    assert_address_refused(get(&open_http(&[]), &url).await, &url);
    assert_eq!(canary.connections(), 0);

    let allowed = open_http(&[&format!("127.0.0.1:{}", canary.port)]);
    assert_eq!(get(&allowed, &url).await.expect("allowlisted"), "canary");
    assert_eq!(canary.connections(), 1);
}

#[tokio::test]
async fn localhost_is_refused_by_the_resolver_on_the_address_it_resolves_to() {
    let canary = Canary::start().await;
    let url = format!("http://localhost:{}/admin", canary.port);
    match get(&open_http(&[]), &url).await {
        Err(Error::Refused {
            reason:
                Refusal::Address {
                    host: Some(host),
                    addr,
                    ..
                },
            ..
        }) => {
            assert_eq!(host, "localhost");
            assert!(addr.is_loopback(), "{addr}");
        }
        other => panic!("expected a resolver refusal, got {other:?}"),
    }
    assert_eq!(canary.connections(), 0);

    // The socket entry of the canary does not open names: the resolver cannot see ports.
    let by_socket = open_http(&[&format!("127.0.0.1:{}", canary.port)]);
    assert_address_refused(get(&by_socket, &url).await, &url);
    assert_eq!(canary.connections(), 0);

    assert_eq!(
        get(&open_http(&["localhost"]), &url)
            .await
            .expect("allowlisted"),
        "canary"
    );
    assert!(canary.connections() >= 1);
}

#[tokio::test]
async fn ipv4_mapped_ipv6_literal_is_judged_as_the_ipv4_address() {
    let canary = Canary::start().await;
    let url = format!("http://[::ffff:127.0.0.1]:{}/", canary.port);
    assert_address_refused(get(&open_http(&[]), &url).await, &url);
    assert_eq!(canary.connections(), 0);

    assert_eq!(
        get(&open_http(&["127.0.0.1"]), &url)
            .await
            .expect("allowlisted"),
        "canary"
    );
    assert_eq!(canary.connections(), 1);
}

#[tokio::test]
async fn decimal_octal_hex_and_short_ipv4_forms_are_refused() {
    let canary = Canary::start().await;
    let port = canary.port;
    let urls = [
        format!("http://2130706433:{port}/"),
        format!("http://0x7f000001:{port}/"),
        format!("http://0177.0.0.1:{port}/"),
        format!("http://0x7f.0.0.1:{port}/"),
        format!("http://127.1:{port}/"),
        format!("http://[::1]:{port}/"),
        format!("http://[0:0:0:0:0:ffff:7f00:1]:{port}/"),
    ];
    let guarded = open_http(&[]);
    for url in &urls {
        assert_address_refused(get(&guarded, url).await, url);
    }
    assert_eq!(canary.connections(), 0);

    // The same spellings do reach the canary once loopback is allowed (IPv6 loopback only where it is up).
    let allowed = open_http(&["127.0.0.0/8"]);
    for url in &urls[..5] {
        assert_eq!(get(&allowed, url).await.expect(url), "canary");
    }
    assert_eq!(canary.connections(), 5);
}

#[tokio::test]
async fn unspecified_addresses_are_refused() {
    let canary = Canary::start().await;
    let guarded = open_http(&[]);
    for url in [
        format!("http://0.0.0.0:{}/", canary.port),
        format!("http://0:{}/", canary.port),
        format!("http://[::]:{}/", canary.port),
    ] {
        assert_address_refused(get(&guarded, &url).await, &url);
    }
    assert_eq!(canary.connections(), 0);

    // On Linux a connection to 0.0.0.0 lands on the local host: what the guard prevents.
    let url = format!("http://0.0.0.0:{}/", canary.port);
    assert_eq!(
        get(&open_http(&["0.0.0.0"]), &url)
            .await
            .expect("allowlisted"),
        "canary"
    );
    assert_eq!(canary.connections(), 1);
}

#[tokio::test]
async fn redirect_from_an_allowed_server_to_loopback_is_refused() {
    let canary = Canary::start().await;
    let target = format!("http://127.0.0.1:{}/internal?token=secret", canary.port);
    let location = target.clone();
    let server = RawServer::start(move |_| {
        Reply::Bytes(answer("302 Found", &[("location", &location)], b""))
    })
    .await;
    let guarded = open_http(&[&server.allow()]);
    let err = get(&guarded, &server.url("/tag"))
        .await
        .expect_err("redirect refused");
    match &err {
        Error::Refused {
            reason: Refusal::Redirect { to, reason },
            ..
        } => {
            assert_eq!(
                to,
                &format!("http://127.0.0.1:{}/internal?[redacted]", canary.port)
            );
            assert!(matches!(**reason, Refusal::Address { .. }), "{reason:?}");
        }
        other => panic!("expected a redirect refusal, got {other:?}"),
    }
    assert!(!err.to_string().contains("secret"), "{err}");
    assert_eq!(server.hits(), 1);
    assert_eq!(canary.connections(), 0);

    // Control: with the canary allowed too, the redirect is followed to it.
    let both = open_http(&[&server.allow(), &format!("127.0.0.1:{}", canary.port)]);
    assert_eq!(
        get(&both, &server.url("/tag")).await.expect("followed"),
        "canary"
    );
    assert_eq!(canary.connections(), 1);
}

#[tokio::test]
async fn redirect_to_a_name_resolving_to_loopback_is_refused_by_the_resolver() {
    let canary = Canary::start().await;
    let location = format!("http://localhost:{}/internal", canary.port);
    let server = RawServer::start(move |_| {
        Reply::Bytes(answer(
            "307 Temporary Redirect",
            &[("location", &location)],
            b"",
        ))
    })
    .await;
    let err = get(&open_http(&[&server.allow()]), &server.url("/tag"))
        .await
        .expect_err("refused");
    match &err {
        Error::Refused {
            reason: Refusal::Redirect { reason, .. },
            ..
        } => assert!(
            matches!(&**reason, Refusal::Address { host: Some(h), .. } if h == "localhost"),
            "{reason:?}"
        ),
        other => panic!("expected a redirect refusal, got {other:?}"),
    }
    assert_eq!(canary.connections(), 0);
}

#[tokio::test]
async fn redirect_to_plain_http_of_an_unlisted_host_is_refused_without_allow_http() {
    let canary = Canary::start().await;
    let location = format!("http://localhost:{}/", canary.port);
    let server = RawServer::start(move |_| {
        Reply::Bytes(answer("302 Found", &[("location", &location)], b""))
    })
    .await;
    let strict = client(config(&[server.allow()]));
    let err = get(&strict, &server.url("/")).await.expect_err("refused");
    assert!(
        matches!(&err, Error::Refused { reason: Refusal::Redirect { reason, .. }, .. }
            if matches!(**reason, Refusal::Scheme { .. })),
        "{err:?}"
    );
    assert_eq!(canary.connections(), 0);
}

#[tokio::test]
async fn redirects_past_the_limit_are_refused_and_those_within_are_followed() {
    // /0 -> /1 -> /2 -> ... forever.
    let server = RawServer::start(|head| {
        let n: usize = path_of(head).trim_start_matches('/').parse().unwrap_or(0);
        Reply::Bytes(answer(
            "302 Found",
            &[("location", &format!("/{}", n + 1))],
            b"",
        ))
    })
    .await;
    let limited = client(OutboundConfig {
        max_redirects: 3,
        ..config(&[server.allow()])
    });
    let err = get(&limited, &server.url("/0"))
        .await
        .expect_err("too many");
    assert!(
        matches!(
            err,
            Error::Refused {
                reason: Refusal::TooManyRedirects { limit: 3 },
                ..
            }
        ),
        "{err:?}"
    );
    // The first request and three redirects.
    assert_eq!(server.hits(), 4);

    let finite = RawServer::start(|head| match path_of(head) {
        "/a" => Reply::Bytes(answer("301 Moved Permanently", &[("location", "/b")], b"")),
        "/b" => Reply::Bytes(answer("302 Found", &[("location", "/c?x=1")], b"")),
        _ => Reply::Bytes(answer("200 OK", &[], b"<VAST/>")),
    })
    .await;
    let followed = client(OutboundConfig {
        max_redirects: 2,
        ..config(&[finite.allow()])
    });
    let response = followed
        .get(&finite.url("/a"), Kind::Vast)
        .send()
        .await
        .expect("two redirects");
    assert_eq!(response.text(), "<VAST/>");
    assert_eq!(response.url().path(), "/c");
    assert_eq!(response.redacted_url(), finite.url("/a"));
}

#[tokio::test]
async fn zero_redirects_refuses_the_first() {
    let server =
        RawServer::start(|_| Reply::Bytes(answer("302 Found", &[("location", "/next")], b"")))
            .await;
    let none = client(OutboundConfig {
        max_redirects: 0,
        ..config(&[server.allow()])
    });
    let err = get(&none, &server.url("/")).await.expect_err("refused");
    assert!(
        matches!(
            err,
            Error::Refused {
                reason: Refusal::TooManyRedirects { limit: 0 },
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn plain_http_to_an_allowlisted_host_needs_no_allow_http_but_other_ports_stay_closed() {
    let server = RawServer::start(|_| Reply::Bytes(answer("200 OK", &[], b"ok"))).await;
    let canary = Canary::start().await;
    let strict = client(config(&[server.allow()]));
    assert_eq!(
        get(&strict, &server.url("/")).await.expect("allowlisted"),
        "ok"
    );
    let other_port = format!("http://127.0.0.1:{}/", canary.port);
    assert_address_refused(get(&strict, &other_port).await, &other_port);
    assert_eq!(canary.connections(), 0);
}

#[tokio::test]
async fn check_tells_without_connecting() {
    let canary = Canary::start().await;
    let guarded = client(OutboundConfig::default());
    assert!(guarded.check("https://ads.example.com/vast").is_ok());
    assert!(matches!(
        guarded.check(&format!("https://127.0.0.1:{}/", canary.port)),
        Err(Error::Refused { .. })
    ));
    assert!(matches!(
        guarded.check("not a url"),
        Err(Error::Invalid { .. })
    ));
    assert_eq!(canary.connections(), 0);
}
