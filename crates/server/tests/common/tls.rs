//! Third parties over HTTPS on loopback for the tests that go through the guarded client: a CA made at test
//! time (trusted through `outbound.ca_file`), servers that answer what a handler says and record every other
//! request (pixels, notices), and a plain socket that must never be reached (a canary).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;

/// A CA made at test time (its PEM) and a rustls server configuration for 127.0.0.1 signed by it.
pub fn test_ca() -> (String, Arc<rustls::ServerConfig>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "Interlude third-party test CA");
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert.der().clone()], key)
    .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    (issuer.pem(), Arc::new(config))
}

/// What a [`TlsServer`] answers: `(base URL, path, body)` to `Some(document)` (200), or `None` to record the
/// request (path and query) and answer 204.
pub type Handler = Arc<dyn Fn(&str, &str, &[u8]) -> Option<String> + Send + Sync>;

/// A third party on 127.0.0.1 over TLS.
pub struct TlsServer {
    /// Its socket.
    pub addr: SocketAddr,
    /// Requests it recorded (path and query), in arrival order.
    pub hits: Arc<Mutex<Vec<String>>>,
    /// While set, requests it would record are answered 503 instead (an outage) and only counted.
    pub failing: Arc<AtomicBool>,
    /// Requests answered 503 during an outage.
    pub refused: Arc<AtomicUsize>,
}

/// What one connection's requests share.
#[derive(Clone)]
struct Shared {
    base: String,
    handler: Handler,
    hits: Arc<Mutex<Vec<String>>>,
    failing: Arc<AtomicBool>,
    refused: Arc<AtomicUsize>,
    delay: std::time::Duration,
}

impl Shared {
    async fn answer(self, req: hyper::Request<Incoming>) -> hyper::Response<Full<Bytes>> {
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let target = req
            .uri()
            .path_and_query()
            .map_or("/".to_owned(), |p| p.to_string());
        let path = req.uri().path().to_owned();
        let body = req
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let status = match (self.handler)(&self.base, &path, &body) {
            Some(document) => return hyper::Response::new(Full::new(Bytes::from(document))),
            None if self.failing.load(Ordering::SeqCst) => {
                self.refused.fetch_add(1, Ordering::SeqCst);
                hyper::StatusCode::SERVICE_UNAVAILABLE
            }
            None => {
                self.hits.lock().unwrap().push(target);
                hyper::StatusCode::NO_CONTENT
            }
        };
        let mut r = hyper::Response::new(Full::new(Bytes::new()));
        *r.status_mut() = status;
        r
    }
}

impl TlsServer {
    /// Starts serving with `handler`.
    pub async fn start(tls: Arc<rustls::ServerConfig>, handler: Handler) -> TlsServer {
        TlsServer::start_delayed(tls, handler, std::time::Duration::ZERO).await
    }

    /// Starts serving with `handler`, each answer held for `delay` first (a third party slower than its
    /// deadline).
    pub async fn start_delayed(
        tls: Arc<rustls::ServerConfig>,
        handler: Handler,
        delay: std::time::Duration,
    ) -> TlsServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Shared {
            base: format!("https://{addr}"),
            handler,
            hits: Arc::default(),
            failing: Arc::default(),
            refused: Arc::default(),
            delay,
        };
        let server = TlsServer {
            addr,
            hits: shared.hits.clone(),
            failing: shared.failing.clone(),
            refused: shared.refused.clone(),
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, shared) = (acceptor.clone(), shared.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service =
                        hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                            let shared = shared.clone();
                            async move { Ok::<_, Infallible>(shared.answer(req).await) }
                        });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        server
    }

    /// Its base URL.
    pub fn base(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// Recorded hits per path (queries vary: cachebusters).
    pub fn per_path(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for hit in self.hits.lock().unwrap().iter() {
            let path = hit.split('?').next().unwrap_or(hit).to_owned();
            *counts.entry(path).or_insert(0) += 1;
        }
        counts
    }

    /// The recorded hits on `path`, with their queries.
    pub fn hits_on(&self, path: &str) -> Vec<String> {
        self.hits
            .lock()
            .unwrap()
            .iter()
            .filter(|h| h.split('?').next() == Some(path))
            .cloned()
            .collect()
    }
}

/// A loopback socket that only counts connections: nothing may ever reach it.
pub async fn canary() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((_stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    (addr, accepted)
}
