//! Real counterparts for the client's tests, all on loopback: a canary that counts connections, a raw HTTP/1.1
//! server whose every byte the test chooses (lying lengths, endless bodies, stalls), and an HTTPS server (hyper,
//! HTTP/1.1 and HTTP/2) whose certificate comes from a CA generated at test time.

#![allow(dead_code, unreachable_pub)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use interlude_outbound::OutboundConfig;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A config for tests: the given allowlist, plain http allowed to it.
pub fn config(allow: &[String]) -> OutboundConfig {
    OutboundConfig {
        allow: allow.to_vec(),
        ..OutboundConfig::default()
    }
}

/// A listener on 127.0.0.1 (and [::1] on the same port where IPv6 is up) that counts every connection it
/// accepts and answers `canary`. A guarded request that must not reach loopback must leave the count at 0.
pub struct Canary {
    /// The port on both addresses.
    pub port: u16,
    accepted: Arc<AtomicUsize>,
}

impl Canary {
    pub async fn start() -> Canary {
        let v4 = TcpListener::bind("127.0.0.1:0").await.expect("bind canary");
        let port = v4.local_addr().expect("canary address").port();
        let accepted = Arc::new(AtomicUsize::new(0));
        spawn_canary(v4, Arc::clone(&accepted));
        if let Ok(v6) = TcpListener::bind(("::1", port)).await {
            spawn_canary(v6, Arc::clone(&accepted));
        }
        Canary { port, accepted }
    }

    /// Connections accepted so far. The count is taken before the canary answers, so once a client has seen
    /// the answer (or the connection end) its connection is counted.
    pub fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

fn spawn_canary(listener: TcpListener, accepted: Arc<AtomicUsize>) {
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            accepted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let _ = read_head(&mut stream).await;
                let _ = stream
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\nconnection: close\r\n\r\ncanary",
                    )
                    .await;
            });
        }
    });
}

/// What the raw server sends after reading a request head.
pub enum Reply {
    /// These bytes, then close.
    Bytes(Vec<u8>),
    /// This head (status line and headers, with the blank line), then chunks of 64 KiB of `x` until the
    /// client goes away.
    EndlessChunked(Vec<u8>),
    /// This head, then raw bytes of `x` until the client goes away (for a lying or huge `Content-Length`).
    Endless(Vec<u8>),
    /// This head, then nothing, the connection held open.
    Stall(Vec<u8>),
    /// Nothing at all, the connection held open.
    Silent,
}

/// A raw HTTP/1.1 server on 127.0.0.1; `hits` counts the requests it read.
pub struct RawServer {
    pub addr: SocketAddr,
    hits: Arc<AtomicUsize>,
}

impl RawServer {
    pub async fn start<F>(respond: F) -> RawServer
    where
        F: Fn(&str) -> Reply + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind server");
        let addr = listener.local_addr().expect("server address");
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&hits);
        let respond = Arc::new(respond);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let respond = Arc::clone(&respond);
                let counter = Arc::clone(&counter);
                tokio::spawn(async move {
                    let Some(head) = read_head(&mut stream).await else {
                        return;
                    };
                    counter.fetch_add(1, Ordering::SeqCst);
                    serve(&mut stream, respond(&head)).await;
                });
            }
        });
        RawServer { addr, hits }
    }

    /// `http://127.0.0.1:port` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// This server's socket as an allowlist entry.
    pub fn allow(&self) -> String {
        self.addr.to_string()
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

async fn serve(stream: &mut TcpStream, reply: Reply) {
    match reply {
        Reply::Bytes(bytes) => {
            let _ = stream.write_all(&bytes).await;
            let _ = stream.shutdown().await;
        }
        Reply::EndlessChunked(head) => {
            if stream.write_all(&head).await.is_err() {
                return;
            }
            let mut chunk = format!("{:x}\r\n", 64 * 1024).into_bytes();
            chunk.extend(std::iter::repeat_n(b'x', 64 * 1024));
            chunk.extend_from_slice(b"\r\n");
            while stream.write_all(&chunk).await.is_ok() {}
        }
        Reply::Endless(head) => {
            if stream.write_all(&head).await.is_err() {
                return;
            }
            let block = vec![b'x'; 64 * 1024];
            while stream.write_all(&block).await.is_ok() {}
        }
        Reply::Stall(head) => {
            let _ = stream.write_all(&head).await;
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
        Reply::Silent => tokio::time::sleep(Duration::from_secs(60)).await,
    }
}

/// The request head (up to the blank line), or `None` if the peer closed first or it is over 64 KiB.
async fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut byte).await.ok()?;
        if n == 0 || buf.len() > 64 * 1024 {
            return None;
        }
        buf.extend_from_slice(&byte[..n]);
    }
    Some(String::from_utf8_lossy(&buf).into_owned())
}

/// The path of a request head's request line.
pub fn path_of(head: &str) -> &str {
    head.split(' ').nth(1).unwrap_or("")
}

/// A complete HTTP/1.1 answer with a `Content-Length`.
pub fn answer(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\n", body.len());
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("connection: close\r\n\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// A CA made at test time, for a server certificate the client trusts only through the extra CA bundle.
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

    /// The CA certificate in PEM.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A rustls server config with a certificate for 127.0.0.1 and localhost signed by this CA, offering
    /// `alpn` (e.g. `h2` and `http/1.1`).
    pub fn server_config(&self, alpn: &[&[u8]]) -> Arc<rustls::ServerConfig> {
        let key = KeyPair::generate().expect("server key");
        let params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("server params");
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
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }
}

/// An HTTPS server (hyper, HTTP/1.1 and HTTP/2 by ALPN) on 127.0.0.1 answering `hello over tls` with the
/// protocol version in `x-version`; `handshakes` counts completed TLS handshakes.
pub struct TlsServer {
    pub addr: SocketAddr,
    handshakes: Arc<AtomicUsize>,
}

impl TlsServer {
    pub async fn start(config: Arc<rustls::ServerConfig>) -> TlsServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind TLS server");
        let addr = listener.local_addr().expect("TLS server address");
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let handshakes = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&handshakes);
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let counter = Arc::clone(&counter);
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    counter.fetch_add(1, Ordering::SeqCst);
                    let service =
                        hyper::service::service_fn(|request: hyper::Request<Incoming>| {
                            let version = format!("{:?}", request.version());
                            async move {
                                let mut response = hyper::Response::new(Full::new(
                                    Bytes::from_static(b"hello over tls"),
                                ));
                                if let Ok(value) = version.parse() {
                                    response.headers_mut().insert("x-version", value);
                                }
                                Ok::<_, Infallible>(response)
                            }
                        });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        TlsServer { addr, handshakes }
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }

    pub fn allow(&self) -> String {
        self.addr.to_string()
    }

    pub fn handshakes(&self) -> usize {
        self.handshakes.load(Ordering::SeqCst)
    }
}
