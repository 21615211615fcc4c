//! The guarded client: reqwest over rustls, with the guard on the URL, every redirect and every resolved
//! address, a body cap per kind, one timeout for the whole exchange, redacted errors and metrics.

use std::cell::RefCell;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use reqwest::header::{HeaderName, HeaderValue};
use reqwest::{Method, StatusCode, Url};

use crate::config::{BodyLimits, Kind, OutboundConfig};
use crate::error::{Error, Refusal, Result};
use crate::policy::{Policy, redact, redact_url};
use crate::resolve::GuardedResolver;
use crate::response::Response;
use crate::telemetry;

tokio::task_local! {
    /// The last redirect target (redacted) followed by the request this task is polling: reqwest reports a
    /// resolver refusal with the first URL, this names the hop it happened on.
    static LAST_HOP: RefCell<Option<String>>;
}

/// The one HTTP client for calls to third parties. Cheap to clone (one `Arc`); clones share connections.
#[derive(Clone, Debug)]
pub struct GuardedClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    policy: Arc<Policy>,
    limits: BodyLimits,
    timeout: Duration,
    connect_timeout: Duration,
}

/// Builds a [`GuardedClient`] from an [`OutboundConfig`] and CA certificates given as bytes.
#[derive(Debug, Clone)]
pub struct GuardedClientBuilder {
    config: OutboundConfig,
    extra_ca_pem: Vec<Vec<u8>>,
}

impl GuardedClientBuilder {
    /// Also trusts the CA certificates of this PEM bundle (beside `ca_file` and the built-in roots).
    pub fn extra_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.extra_ca_pem.push(pem.into());
        self
    }

    /// The client; [`Error::Config`] names the key that is wrong.
    pub fn build(self) -> Result<GuardedClient> {
        let config = &self.config;
        let positive = |key: &str, value: u64| {
            if value == 0 {
                Err(Error::Config {
                    key: format!("outbound.{key}"),
                    reason: "must be greater than 0".to_owned(),
                })
            } else {
                Ok(())
            }
        };
        positive("connect_timeout_ms", config.connect_timeout_ms)?;
        positive("timeout_ms", config.timeout_ms)?;
        for kind in Kind::ALL {
            positive(&format!("max_body.{kind}"), config.max_body.of(kind))?;
        }
        let policy = Arc::new(Policy::new(
            &config.allow,
            config.allow_http,
            config.max_redirects,
        )?);
        let redirect_policy = Arc::clone(&policy);
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(config.built_in_roots)
            .user_agent(config.user_agent.as_str())
            .connect_timeout(config.connect_timeout())
            // Environment proxies would resolve names where the guard cannot see the addresses.
            .no_proxy()
            // A Referer would hand the previous URL, query and all, to the redirect target.
            .referer(false)
            .gzip(true)
            .dns_resolver(Arc::new(GuardedResolver::new(Arc::clone(&policy))))
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                let nth = attempt.previous().len();
                match redirect_policy.check_redirect(attempt.url(), nth) {
                    Ok(()) => {
                        let hop = redact_url(attempt.url());
                        let _ = LAST_HOP.try_with(|last| *last.borrow_mut() = Some(hop));
                        attempt.follow()
                    }
                    Err(refusal) => attempt.error(refusal),
                }
            }));
        let mut bundles = Vec::new();
        if let Some(path) = &config.ca_file {
            bundles.push(("outbound.ca_file", read_ca_file(path)?));
        }
        bundles.extend(self.extra_ca_pem.into_iter().map(|pem| ("extra CA", pem)));
        for (key, pem) in bundles {
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| Error::Config {
                key: key.to_owned(),
                reason: format!("not a PEM certificate bundle: {}", chain(&e)),
            })?;
            if certs.is_empty() {
                return Err(Error::Config {
                    key: key.to_owned(),
                    reason: "no certificate in the PEM bundle".to_owned(),
                });
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(|e| Error::Config {
            key: "outbound".to_owned(),
            reason: chain(&e),
        })?;
        Ok(GuardedClient {
            inner: Arc::new(Inner {
                http,
                policy,
                limits: config.max_body.clone(),
                timeout: config.timeout(),
                connect_timeout: config.connect_timeout(),
            }),
        })
    }
}

fn read_ca_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::Config {
        key: "outbound.ca_file".to_owned(),
        reason: format!("cannot read {}: {e}", path.display()),
    })
}

impl GuardedClient {
    /// A client with `config` (reads `ca_file` if set).
    pub fn new(config: &OutboundConfig) -> Result<GuardedClient> {
        GuardedClient::builder(config.clone()).build()
    }

    /// A builder, to add CA certificates given as bytes.
    pub fn builder(config: OutboundConfig) -> GuardedClientBuilder {
        GuardedClientBuilder {
            config,
            extra_ca_pem: Vec::new(),
        }
    }

    /// A request with `method` to `url`; `kind` picks the body cap and labels the metrics.
    pub fn request(&self, method: Method, url: &str, kind: Kind) -> Request {
        Request {
            client: self.clone(),
            kind,
            url: url.to_owned(),
            builder: self.inner.http.request(method, url),
            timeout: None,
        }
    }

    /// A GET request.
    pub fn get(&self, url: &str, kind: Kind) -> Request {
        self.request(Method::GET, url, kind)
    }

    /// A POST request.
    pub fn post(&self, url: &str, kind: Kind) -> Request {
        self.request(Method::POST, url, kind)
    }

    /// GET `url` and its body, failing with [`Error::Status`] unless the answer is 2xx.
    pub async fn get_bytes(&self, url: &str, kind: Kind) -> Result<Bytes> {
        Ok(self
            .get(url, kind)
            .send()
            .await?
            .require_success()?
            .into_body())
    }

    /// GET `url` and its body as text (invalid UTF-8 replaced), failing unless the answer is 2xx.
    pub async fn get_text(&self, url: &str, kind: Kind) -> Result<String> {
        Ok(self.get(url, kind).send().await?.require_success()?.text())
    }

    /// GET a tracking pixel or notice: the status, the body read up to the pixel cap and discarded.
    pub async fn ping(&self, url: &str) -> Result<StatusCode> {
        self.get(url, Kind::Pixel).send_for_status().await
    }

    /// Pings each URL in its own background task (fire and forget, each bounded by the timeout); failures are
    /// logged at debug level and counted. Does nothing outside a tokio runtime.
    pub fn ping_detached(&self, urls: impl IntoIterator<Item = String>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::debug!("No tokio runtime; pixels not sent.");
            return;
        };
        for url in urls {
            let client = self.clone();
            // A failure is already logged (debug) and counted by the send.
            runtime.spawn(async move { client.ping(&url).await });
        }
    }

    /// Whether the guard lets `url` be requested, without connecting. Host names are only judged by the
    /// allowlist here (their addresses are judged when resolved); useful to validate configured URLs at load.
    pub fn check(&self, url: &str) -> Result<()> {
        let parsed = Url::parse(url).map_err(|e| Error::Invalid {
            url: redact(url),
            reason: e.to_string(),
        })?;
        self.inner
            .policy
            .check_url(&parsed)
            .map_err(|reason| Error::Refused {
                url: redact_url(&parsed),
                reason,
            })
    }
}

/// One request being built. Nothing is sent until [`Request::send`] or [`Request::send_for_status`].
pub struct Request {
    client: GuardedClient,
    kind: Kind,
    url: String,
    builder: reqwest::RequestBuilder,
    timeout: Option<Duration>,
}

/// Redacted: the URL's query and the headers may carry viewer ids or tokens.
impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("kind", &self.kind)
            .field("url", &redact(&self.url))
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// What [`read_body`] does past the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Overflow {
    /// Fail with [`Error::TooLarge`].
    Fail,
    /// Stop reading and keep the answer (pixels: only the status matters).
    Stop,
}

impl Request {
    /// Adds a header (an invalid one fails the send with [`Error::Invalid`]).
    pub fn header<K, V>(mut self, key: K, value: V) -> Request
    where
        HeaderName: TryFrom<K>,
        <HeaderName as TryFrom<K>>::Error: Into<http::Error>,
        HeaderValue: TryFrom<V>,
        <HeaderValue as TryFrom<V>>::Error: Into<http::Error>,
    {
        self.builder = self.builder.header(key, value);
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Bytes>) -> Request {
        self.builder = self.builder.body(reqwest::Body::from(body.into()));
        self
    }

    /// Replaces the configured whole-request timeout for this request (e.g. an OpenRTB `tmax`).
    pub fn timeout(mut self, timeout: Duration) -> Request {
        self.timeout = Some(timeout);
        self
    }

    /// Sends the request and reads the whole body under the cap of its kind. Any status is an answer (see
    /// [`Response::require_success`]).
    pub async fn send(self) -> Result<Response> {
        let kind = self.kind;
        let started = Instant::now();
        let result = self.exchange(Overflow::Fail).await;
        record(
            kind,
            started,
            result.as_ref().map(|r| (r.status, r.received)),
        );
        result
    }

    /// Sends the request and returns only the status; the body is read up to the cap and discarded, a larger
    /// body is not an error (pixels and notices).
    pub async fn send_for_status(self) -> Result<StatusCode> {
        let kind = self.kind;
        let started = Instant::now();
        let result = self.exchange(Overflow::Stop).await;
        record(
            kind,
            started,
            result.as_ref().map(|r| (r.status, r.received)),
        );
        result.map(|r| r.status)
    }

    async fn exchange(self, overflow: Overflow) -> Result<Response> {
        let inner = &self.client.inner;
        let request = self.builder.build().map_err(|e| Error::Invalid {
            url: redact(&self.url),
            reason: chain(&e.without_url()),
        })?;
        let url = redact_url(request.url());
        inner
            .policy
            .check_url(request.url())
            .map_err(|reason| Error::Refused {
                url: url.clone(),
                reason,
            })?;
        let limit = inner.limits.of(self.kind);
        let after = self.timeout.unwrap_or(inner.timeout);
        let exchange = async {
            let response = inner
                .http
                .execute(request)
                .await
                .map_err(|e| transport_error(e, &url, inner.connect_timeout))?;
            let (status, version, headers) = (
                response.status(),
                response.version(),
                response.headers().clone(),
            );
            let final_url = response.url().clone();
            let (body, received) =
                read_body(response, limit, overflow)
                    .await
                    .map_err(|e| match e {
                        ReadError::TooLarge => Error::TooLarge {
                            url: url.clone(),
                            kind: self.kind,
                            limit,
                        },
                        ReadError::Transport(e) => transport_error(e, &url, inner.connect_timeout),
                    })?;
            Ok(Response {
                status,
                version,
                headers,
                url: final_url,
                redacted: url.clone(),
                body,
                received,
            })
        };
        let exchange = LAST_HOP.scope(RefCell::new(None), exchange);
        match tokio::time::timeout(after, exchange).await {
            Ok(result) => result,
            Err(_) => Err(Error::Timeout {
                url: url.clone(),
                after,
            }),
        }
    }
}

/// Counts one request in the metrics.
fn record(kind: Kind, started: Instant, result: Result<(StatusCode, u64), &Error>) {
    let kind_label = kind.as_str();
    let outcome = match &result {
        Ok((status, _)) => status_class(*status),
        Err(e) => e.outcome(),
    };
    metrics::counter!(telemetry::REQUESTS_TOTAL, "kind" => kind_label, "outcome" => outcome)
        .increment(1);
    metrics::histogram!(telemetry::REQUEST_DURATION_SECONDS, "kind" => kind_label)
        .record(started.elapsed().as_secs_f64());
    match result {
        Ok((_, bytes)) => {
            metrics::counter!(telemetry::RESPONSE_BYTES_TOTAL, "kind" => kind_label)
                .increment(bytes);
        }
        Err(Error::Refused { url, reason }) => {
            metrics::counter!(telemetry::REFUSED_TOTAL, "kind" => kind_label, "reason" => reason.label())
                .increment(1);
            tracing::debug!(%url, %reason, kind = kind_label, "Refused an outbound request.");
        }
        Err(error) => tracing::debug!(%error, kind = kind_label, "Outbound request failed."),
    }
}

fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

enum ReadError {
    TooLarge,
    Transport(reqwest::Error),
}

/// The body and the bytes received, read chunk by chunk (decompressed when the server gzipped it) and stopped
/// as soon as it passes `limit`; a declared `Content-Length` above `limit` stops it before reading. With
/// [`Overflow::Stop`] nothing is kept.
async fn read_body(
    mut response: reqwest::Response,
    limit: u64,
    overflow: Overflow,
) -> Result<(Bytes, u64), ReadError> {
    let declared = response.content_length();
    if declared.is_some_and(|len| len > limit) {
        return match overflow {
            Overflow::Fail => Err(ReadError::TooLarge),
            Overflow::Stop => Ok((Bytes::new(), 0)),
        };
    }
    let capacity = declared.unwrap_or(8 * 1024).min(limit);
    let mut body = BytesMut::with_capacity(usize::try_from(capacity).unwrap_or(8 * 1024));
    let mut read: u64 = 0;
    while let Some(chunk) = response.chunk().await.map_err(ReadError::Transport)? {
        read = read.saturating_add(chunk.len() as u64);
        if read > limit {
            return match overflow {
                Overflow::Fail => Err(ReadError::TooLarge),
                Overflow::Stop => Ok((Bytes::new(), read)),
            };
        }
        if overflow == Overflow::Fail {
            body.extend_from_slice(&chunk);
        }
    }
    Ok((body.freeze(), read))
}

/// An error of reqwest as ours: a refusal of the guard (resolver or redirect policy) found in the chain, a
/// connect timeout, or the transport's message without the URL.
///
/// Called inside the request's [`LAST_HOP`] scope.
fn transport_error(error: reqwest::Error, url: &str, connect_timeout: Duration) -> Error {
    if let Some(refusal) = find_refusal(&error) {
        let last_hop = LAST_HOP
            .try_with(|last| last.borrow().clone())
            .ok()
            .flatten();
        let reason = match (refusal, last_hop) {
            (Refusal::Redirect { .. } | Refusal::TooManyRedirects { .. }, _) => refusal.clone(),
            // The resolver refused a hop reached by redirect: say so.
            (_, Some(hop)) => Refusal::Redirect {
                to: hop,
                reason: Box::new(refusal.clone()),
            },
            (_, None) => refusal.clone(),
        };
        return Error::Refused {
            url: url.to_owned(),
            reason,
        };
    }
    if error.is_timeout() {
        return Error::Timeout {
            url: url.to_owned(),
            after: connect_timeout,
        };
    }
    Error::Transport {
        url: url.to_owned(),
        reason: chain(&error.without_url()),
    }
}

fn find_refusal<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a Refusal> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(refusal) = e.downcast_ref::<Refusal>() {
            return Some(refusal);
        }
        // io::Error's source() skips the error it wraps.
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            if let Some(refusal) = inner.downcast_ref::<Refusal>() {
                return Some(refusal);
            }
        }
        current = e.source();
    }
    None
}

/// The messages of an error and its sources, joined with `: `, repeats dropped.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut current = error.source();
    while let Some(e) = current {
        let message = e.to_string();
        if !out.contains(&message) {
            out.push_str(": ");
            out.push_str(&message);
        }
        current = e.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>(_: &T) {}
    fn assert_send_sync<T: Send + Sync + Clone>() {}

    /// Callers spawn these futures and put them behind `impl Future + Send` traits (VAST's `Fetcher`).
    #[test]
    fn client_is_shareable_and_its_futures_are_send() {
        assert_send_sync::<GuardedClient>();
        assert_send_sync::<Response>();
        let client = GuardedClient::new(&OutboundConfig::default()).expect("client");
        assert_send(&client.get_text("https://ads.example.com/", Kind::Vast));
        assert_send(&client.get("https://ads.example.com/", Kind::Bid).send());
        assert_send(&client.ping("https://ads.example.com/imp"));
    }
}
