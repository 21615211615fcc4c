//! Real counterparts standing in for third parties: an HTTP(S) server on 127.0.0.1 (hyper, HTTP/1.1 and
//! HTTP/2; TLS by tokio-rustls with a CA made at test time) that records every hit, counts hits per pixel key
//! (path and query without the cachebuster), measures how many requests it serves at once, and answers what
//! the test decides.

#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::HeaderMap;
use hyper_util::rt::{TokioExecutor, TokioIo};
use interlude_outbound::{GuardedClient, OutboundConfig};
use interlude_outbox::OutboxConfig;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;

/// One request the server saw.
#[derive(Debug, Clone)]
pub struct Hit {
    /// Path and query as received.
    pub target: String,
    /// Path and query without the `cb` parameter: the pixel it is.
    pub key: String,
    /// The request headers.
    pub headers: HeaderMap,
    /// When it arrived.
    pub at: Instant,
}

/// How to answer: a status after a delay.
#[derive(Debug, Clone, Copy)]
pub struct Reply {
    pub status: u16,
    pub delay: Duration,
}

impl Reply {
    pub fn ok() -> Reply {
        Reply {
            status: 204,
            delay: Duration::ZERO,
        }
    }

    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            delay: Duration::ZERO,
        }
    }

    pub fn after(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

type Respond = dyn Fn(&Hit, usize) -> Reply + Send + Sync;

struct State {
    hits: Mutex<Vec<Hit>>,
    per_key: Mutex<HashMap<String, usize>>,
    current: AtomicUsize,
    max_current: AtomicUsize,
    respond: Box<Respond>,
}

/// A third party's pixel server. `respond(hit, n)` gets the hit and how many hits its key had before it.
pub struct PixelServer {
    pub addr: SocketAddr,
    tls: bool,
    state: Arc<State>,
}

impl PixelServer {
    pub async fn start<F>(respond: F) -> PixelServer
    where
        F: Fn(&Hit, usize) -> Reply + Send + Sync + 'static,
    {
        PixelServer::start_with(None, respond).await
    }

    pub async fn start_tls<F>(config: Arc<rustls::ServerConfig>, respond: F) -> PixelServer
    where
        F: Fn(&Hit, usize) -> Reply + Send + Sync + 'static,
    {
        PixelServer::start_with(Some(config), respond).await
    }

    async fn start_with<F>(tls: Option<Arc<rustls::ServerConfig>>, respond: F) -> PixelServer
    where
        F: Fn(&Hit, usize) -> Reply + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let state = Arc::new(State {
            hits: Mutex::new(Vec::new()),
            per_key: Mutex::new(HashMap::new()),
            current: AtomicUsize::new(0),
            max_current: AtomicUsize::new(0),
            respond: Box::new(respond),
        });
        let serving = Arc::clone(&state);
        let acceptor = tls.clone().map(tokio_rustls::TlsAcceptor::from);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = Arc::clone(&serving);
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let state = Arc::clone(&state);
                        async move { Ok::<_, Infallible>(handle(&state, req).await) }
                    });
                    let builder =
                        hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    match acceptor {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                let _ = builder
                                    .serve_connection(TokioIo::new(stream), service)
                                    .await;
                            }
                        }
                        None => {
                            let _ = builder
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        }
                    }
                });
            }
        });
        PixelServer {
            addr,
            tls: tls.is_some(),
            state,
        }
    }

    /// `http(s)://127.0.0.1:port` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}{path}", self.addr)
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.state.hits.lock().expect("hits").clone()
    }

    pub fn total(&self) -> usize {
        self.state.hits.lock().expect("hits").len()
    }

    pub fn counts(&self) -> HashMap<String, usize> {
        self.state.per_key.lock().expect("counts").clone()
    }

    pub fn max_concurrent(&self) -> usize {
        self.state.max_current.load(Ordering::SeqCst)
    }

    pub fn in_progress(&self) -> usize {
        self.state.current.load(Ordering::SeqCst)
    }
}

fn key_of(target: &str) -> String {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("cb="))
        .collect();
    if kept.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", kept.join("&"))
    }
}

async fn handle(state: &State, req: hyper::Request<Incoming>) -> hyper::Response<Full<Bytes>> {
    let now = state.current.fetch_add(1, Ordering::SeqCst) + 1;
    state.max_current.fetch_max(now, Ordering::SeqCst);
    let target = req
        .uri()
        .path_and_query()
        .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
    let hit = Hit {
        key: key_of(&target),
        target,
        headers: req.headers().clone(),
        at: Instant::now(),
    };
    let before = {
        let mut per_key = state.per_key.lock().expect("counts");
        let n = per_key.entry(hit.key.clone()).or_insert(0);
        *n += 1;
        *n - 1
    };
    let reply = (state.respond)(&hit, before);
    state.hits.lock().expect("hits").push(hit);
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    state.current.fetch_sub(1, Ordering::SeqCst);
    hyper::Response::builder()
        .status(reply.status)
        .body(Full::new(Bytes::from_static(b"")))
        .expect("response")
}

/// The guarded client of the tests: 127.0.0.1 allowlisted (plain http to it allowed), `extra_ca` trusted.
pub fn client(extra_ca: Option<String>) -> GuardedClient {
    let mut builder = GuardedClient::builder(OutboundConfig {
        allow: vec!["127.0.0.1".to_owned()],
        ..OutboundConfig::default()
    });
    if let Some(pem) = extra_ca {
        builder = builder.extra_ca_pem(pem);
    }
    builder.build().expect("client")
}

/// A config for tests: quick polls and retries, a short lease.
pub fn config() -> OutboxConfig {
    OutboxConfig {
        timeout_ms: 2_000,
        lease_ms: 3_000,
        poll_ms: 50,
        backoff_base_ms: 20,
        backoff_max_ms: 200,
        drain_timeout_ms: 5_000,
        ..OutboxConfig::default()
    }
}

/// Waits until `done()` holds, failing after `secs` seconds with `what`.
pub async fn wait_for(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A CA made at test time.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("CA key");
        TestCa {
            issuer: CertifiedIssuer::self_signed(params, key).expect("CA certificate"),
        }
    }

    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server config with a certificate for 127.0.0.1 signed by this CA, offering HTTP/2 and HTTP/1.1.
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let key = KeyPair::generate().expect("server key");
        let params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("server params");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("server certificate");
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key)
        .expect("server TLS config");
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Arc::new(config)
    }
}
