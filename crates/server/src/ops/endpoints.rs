//! Operational endpoints served by every Interlude process, and the request-metrics layer.
//!
//! - `GET /metrics`: Prometheus text exposition of everything recorded through the `metrics` facade.
//! - `GET /healthz`: liveness; 200 while the process can answer at all (a restart would not help a full disk,
//!   so the store's health is not part of it).
//! - `GET /readyz`: readiness; 200 only once the process is ready for traffic, not draining, and its embedded
//!   event store commits; 503 otherwise, so a load balancer stops sending new viewers (and their beacons) to a
//!   node that is starting up, being drained, or cannot store events, and sends them again once it recovers.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use interlude_store::Health;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use super::connections::ConnectionLimits;
use crate::{Error, Result};

/// Whether this process should receive traffic: a flag the process sets (started, draining), and the health
/// of the embedded event store when it has one. Cheap to clone; all clones share one state.
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    ready: Arc<AtomicBool>,
    store: Arc<OnceLock<watch::Receiver<Health>>>,
}

impl Readiness {
    /// A flag that starts not ready.
    pub fn new() -> Self {
        Self::default()
    }

    /// Marks the process ready (or not, e.g. when draining).
    pub fn set(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    /// Makes readiness follow the embedded event store's health too (`EventStore::health`): not ready while
    /// it cannot commit, ready again once the committer has reopened it. Only the first store counts (a
    /// process has one).
    pub fn follow_store(&self, health: watch::Receiver<Health>) {
        if self.store.set(health).is_err() {
            tracing::warn!("Readiness already follows an event store; the second one is ignored.");
        }
    }

    /// The current state: set ready, and the store (if followed) healthy.
    pub fn is_ready(&self) -> bool {
        self.not_ready_because().is_none()
    }

    /// Why the process is not ready, if it is not.
    pub fn not_ready_because(&self) -> Option<&'static str> {
        if !self.ready.load(Ordering::Acquire) {
            return Some("starting or draining");
        }
        let health = self.store.get()?;
        // A watch borrow reads the latest value without waiting: the store updates it on every change.
        match &*health.borrow() {
            Health::Healthy => None,
            Health::Unhealthy { .. } => Some("event store unhealthy"),
            Health::Closed => Some("event store closed"),
        }
    }
}

#[derive(Clone)]
struct OpsState {
    metrics: PrometheusHandle,
    readiness: Readiness,
}

/// The `/metrics`, `/healthz` and `/readyz` routes, all open (for processes on an internal network: the
/// simulated origin, the event processor). The server guards `/metrics` with the read scope, so it serves
/// [`metrics_router`] and [`health_router`] apart.
pub fn router(metrics: PrometheusHandle, readiness: Readiness) -> Router {
    metrics_router(metrics.clone(), readiness.clone()).merge(health_router(metrics, readiness))
}

/// `/metrics` alone.
pub fn metrics_router(metrics: PrometheusHandle, readiness: Readiness) -> Router {
    Router::new()
        .route("/metrics", get(render_metrics))
        .with_state(OpsState { metrics, readiness })
}

/// `/healthz` and `/readyz`: open to every caller (load balancers, orchestrators).
pub fn health_router(metrics: PrometheusHandle, readiness: Readiness) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(OpsState { metrics, readiness })
}

async fn render_metrics(State(state): State<OpsState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

async fn ready(State(state): State<OpsState>) -> Response {
    match state.readiness.not_ready_because() {
        None => (StatusCode::OK, "ready\n").into_response(),
        // The reason is fixed text (never the store's error, which names files) for whoever looks at a probe.
        Some(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        )
            .into_response(),
    }
}

/// Wraps a router so every request is counted (`http_requests_total`) and timed
/// (`http_request_duration_seconds`) by its route template, never by its raw path: raw paths carry session ids
/// and would explode the metric's cardinality.
pub fn with_request_metrics(router: Router) -> Router {
    router.layer(middleware::from_fn(track_request))
}

async fn track_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let elapsed = started.elapsed().as_secs_f64();
    metrics::counter!(crate::telemetry::metrics::HTTP_REQUESTS, "route" => route.clone(), "method" => method, "status" => status)
        .increment(1);
    metrics::histogram!(crate::telemetry::metrics::HTTP_REQUEST_DURATION, "route" => route)
        .record(elapsed);
    response
}

/// Binds `addr`, serves `router` until `shutdown` resolves, then gives in-flight requests `grace` to finish;
/// with the default connection limits of `[server]` (see [`serve_with_limits`]).
pub async fn serve(
    router: Router,
    addr: SocketAddr,
    grace: Duration,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    serve_with_limits(router, addr, grace, shutdown, ConnectionLimits::default()).await
}

/// Like [`serve`], under `limits` (header read and idle timeouts, connection caps: see
/// [`super::connections`]).
pub async fn serve_with_limits(
    router: Router,
    addr: SocketAddr,
    grace: Duration,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    limits: ConnectionLimits,
) -> Result<()> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })?;
    serve_on_with_limits(listener, router, grace, shutdown, limits).await
}

/// Like [`serve`] on an already bound listener (tests bind port 0 and read the address first).
pub async fn serve_on(
    listener: TcpListener,
    router: Router,
    grace: Duration,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    serve_on_with_limits(
        listener,
        router,
        grace,
        shutdown,
        ConnectionLimits::default(),
    )
    .await
}

/// Like [`serve_with_limits`] on an already bound listener. Requests carry the peer address as
/// `ConnectInfo<SocketAddr>`.
pub async fn serve_on_with_limits(
    listener: TcpListener,
    router: Router,
    grace: Duration,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    limits: ConnectionLimits,
) -> Result<()> {
    super::connections::serve(listener, router, grace, shutdown, limits).await
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("Shutdown signal received.");
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn get_text(router: &Router, path: &str) -> (StatusCode, String) {
        let response = router
            .clone()
            .oneshot(Request::builder().uri(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn readyz_follows_the_readiness_flag() {
        let readiness = Readiness::new();
        let router = router(
            crate::telemetry::metrics_handle().unwrap(),
            readiness.clone(),
        );
        assert_eq!(
            get_text(&router, "/readyz").await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        readiness.set(true);
        assert_eq!(get_text(&router, "/readyz").await.0, StatusCode::OK);
        assert_eq!(get_text(&router, "/healthz").await.0, StatusCode::OK);
    }

    #[tokio::test]
    async fn metrics_count_requests_by_route_template() {
        let ops = router(
            crate::telemetry::metrics_handle().unwrap(),
            Readiness::new(),
        );
        let app = with_request_metrics(
            Router::new()
                .route("/v1/sessions/{id}", get(|| async { "x" }))
                .merge(ops),
        );
        get_text(&app, "/v1/sessions/abc123").await;
        let (status, text) = get_text(&app, "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(text.contains("route=\"/v1/sessions/{id}\""), "{text}");
        assert!(
            !text.contains("abc123"),
            "raw path leaked into metrics: {text}"
        );
    }
}
