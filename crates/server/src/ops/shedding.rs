//! Load shedding: admission control by endpoint class, with priorities.
//!
//! One budget of requests in flight for the whole process; each class may use it up to its share, so as load
//! rises the least important work is refused first and playlists, which keep viewers watching, last:
//!
//! | class | paths | admitted while in flight < | when refused |
//! |---|---|---|---|
//! | playlist | `/s/…`, `/v1/channels/…`, `/v1/sessions…` | 100% of the budget | 503, `Retry-After: 1` |
//! | beacon | `/t/…`, `/v1/events` | 85% | 503, `Retry-After: 2` (players retry later; the pipeline deduplicates) |
//! | decision | `/v1/vast`, `/v1/vmap`, `/v1/decisions/…` | 70% | an empty VAST 4.2 response (no ads) at once, instead of a timeout |
//! | admin | `/v1/admin/…`, `/v1/ops/…`, everything else | 50% | 503 |
//!
//! Stitcher pod decisions are not HTTP requests: they have their own concurrency bound and fall back to slate
//! on timeout. `/healthz`, `/readyz` and `/metrics` are never refused. Every refusal is counted in
//! `http_shed_total{class}`; `http_in_flight` is the gauge.
//!
//! A request is admitted only once its whole body has arrived (at most [`MAX_BUFFERED_BODY_BYTES`], within
//! [`BODY_READ_TIMEOUT`]): the budget counts work, and a client trickling a body must not hold a slot while
//! doing nothing. Over the size: 413; too slow: 408.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, HttpBody};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};

/// An endpoint class, by priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Playlists and sessions.
    Playlist,
    /// Beacons and event batches.
    Beacon,
    /// Ad decisions for client-side players.
    Decision,
    /// Admin, operator and everything else.
    Admin,
}

impl Class {
    /// The class of a request path.
    pub fn of(path: &str) -> Class {
        if path.starts_with("/s/")
            || path.starts_with("/v1/channels/")
            || path.starts_with("/v1/sessions")
        {
            Class::Playlist
        } else if path.starts_with("/t/") || path == "/v1/events" {
            Class::Beacon
        } else if path == "/v1/vast" || path == "/v1/vmap" || path.starts_with("/v1/decisions/") {
            Class::Decision
        } else {
            Class::Admin
        }
    }

    /// Its name in metrics.
    pub fn name(self) -> &'static str {
        match self {
            Class::Playlist => "playlist",
            Class::Beacon => "beacon",
            Class::Decision => "decision",
            Class::Admin => "admin",
        }
    }

    /// The share of the budget it may use, in percent.
    fn share(self) -> usize {
        match self {
            Class::Playlist => 100,
            Class::Beacon => 85,
            Class::Decision => 70,
            Class::Admin => 50,
        }
    }
}

/// The process's admission budget.
#[derive(Debug)]
pub struct Budget {
    capacity: usize,
    in_flight: AtomicUsize,
}

/// A request admitted: its slot is released when dropped.
pub struct Admitted(Arc<Budget>);

impl Drop for Admitted {
    fn drop(&mut self) {
        let now = self.0.in_flight.fetch_sub(1, Ordering::AcqRel) - 1;
        metrics::gauge!(crate::telemetry::metrics::HTTP_IN_FLIGHT).set(now as f64);
    }
}

impl Budget {
    /// A budget of `capacity` requests in flight.
    pub fn new(capacity: usize) -> Arc<Budget> {
        Arc::new(Budget {
            capacity: capacity.max(1),
            in_flight: AtomicUsize::new(0),
        })
    }

    /// Admits a request of `class`, or refuses it.
    pub fn admit(self: &Arc<Self>, class: Class) -> Option<Admitted> {
        let limit = (self.capacity * class.share() / 100).max(1);
        let mut current = self.in_flight.load(Ordering::Acquire);
        loop {
            if current >= limit {
                metrics::counter!(crate::telemetry::metrics::HTTP_SHED, "class" => class.name())
                    .increment(1);
                return None;
            }
            match self.in_flight.compare_exchange_weak(
                current,
                current + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    metrics::gauge!(crate::telemetry::metrics::HTTP_IN_FLIGHT)
                        .set((current + 1) as f64);
                    return Some(Admitted(self.clone()));
                }
                Err(actual) => current = actual,
            }
        }
    }
}

/// The answer to a refused request of `class`.
fn refused(class: Class) -> Response {
    let retry_after = |secs: &'static str| {
        let mut r = (StatusCode::SERVICE_UNAVAILABLE, "overloaded: retry later\n").into_response();
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static(secs));
        r
    };
    match class {
        Class::Playlist => retry_after("1"),
        Class::Beacon => retry_after("2"),
        // A valid "no ad" answer now beats a pod after the player's own timeout.
        Class::Decision => (
            [(header::CONTENT_TYPE, "application/xml")],
            "<VAST version=\"4.2\"/>\n",
        )
            .into_response(),
        Class::Admin => (StatusCode::SERVICE_UNAVAILABLE, "overloaded\n").into_response(),
    }
}

/// Bytes of a request body read before admission: axum's own default limit for extractors, which no route
/// raises, so a larger body could not be used anyway.
pub const MAX_BUFFERED_BODY_BYTES: usize = 2 * 1024 * 1024;

/// Time a client has to send its whole request body, once its head is in.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The request with its body read into memory, or the answer to a body too large (413), too slow (408) or
/// broken off (400).
async fn read_body(request: Request) -> Result<Request, Response> {
    let (parts, body) = request.into_parts();
    if body.size_hint().exact() == Some(0) {
        return Ok(Request::from_parts(parts, body));
    }
    // A declared length over the limit is refused before a byte is read.
    if body.size_hint().lower() > MAX_BUFFERED_BODY_BYTES as u64 {
        return Err(too_large());
    }
    let limited = http_body_util::Limited::new(body, MAX_BUFFERED_BODY_BYTES);
    match tokio::time::timeout(BODY_READ_TIMEOUT, http_body_util::BodyExt::collect(limited)).await {
        Ok(Ok(collected)) => Ok(Request::from_parts(parts, Body::from(collected.to_bytes()))),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Ok(Err(e)) => Err(crate::error::ApiError::bad_request(format!(
            "the request body could not be read: {e}"
        ))
        .into_response()),
        Err(_) => Err(crate::error::ApiError::RequestTimeout(format!(
            "the request body did not arrive within {} s",
            BODY_READ_TIMEOUT.as_secs()
        ))
        .into_response()),
    }
}

fn too_large() -> Response {
    crate::error::ApiError::PayloadTooLarge(format!(
        "the request body is over {MAX_BUFFERED_BODY_BYTES} bytes"
    ))
    .into_response()
}

async fn admission(State(budget): State<Arc<Budget>>, request: Request, next: Next) -> Response {
    // Health and metrics always answer: a load balancer must see an overloaded node as alive.
    if matches!(request.uri().path(), "/healthz" | "/readyz" | "/metrics") {
        return next.run(request).await;
    }
    let class = Class::of(request.uri().path());
    // The body first: a slot is for work, not for waiting on the client.
    let request = match read_body(request).await {
        Ok(request) => request,
        Err(refused) => return refused,
    };
    match budget.admit(class) {
        Some(_slot) => next.run(request).await,
        None => refused(class),
    }
}

/// `router` behind admission control with `capacity` requests in flight.
pub fn with_shedding(router: Router, capacity: usize) -> Router {
    router.layer(middleware::from_fn_with_state(
        Budget::new(capacity),
        admission,
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn lower_classes_are_refused_first() {
        let budget = Budget::new(10);
        let held: Vec<Admitted> = (0..5)
            .map(|_| budget.admit(Class::Admin).unwrap())
            .collect();
        assert!(budget.admit(Class::Admin).is_none(), "admin stops at 50%");
        let mut more: Vec<Admitted> = (0..2)
            .map(|_| budget.admit(Class::Decision).unwrap())
            .collect();
        assert!(
            budget.admit(Class::Decision).is_none(),
            "decisions stop at 70%"
        );
        more.push(budget.admit(Class::Beacon).unwrap());
        assert!(budget.admit(Class::Beacon).is_none(), "beacons stop at 85%");
        more.push(budget.admit(Class::Playlist).unwrap());
        more.push(budget.admit(Class::Playlist).unwrap());
        assert!(
            budget.admit(Class::Playlist).is_none(),
            "the budget is spent"
        );
        drop(held);
        // Five in flight again: decisions (70%) are admitted, admin (50%) still is not.
        assert!(budget.admit(Class::Admin).is_none());
        assert!(
            budget.admit(Class::Decision).is_some(),
            "released slots are reused"
        );
        drop(more);
    }

    #[test]
    fn paths_map_to_classes() {
        assert_eq!(Class::of("/s/abc/0/media.m3u8"), Class::Playlist);
        assert_eq!(Class::of("/v1/channels/live1/master.m3u8"), Class::Playlist);
        assert_eq!(Class::of("/t/token"), Class::Beacon);
        assert_eq!(Class::of("/v1/events"), Class::Beacon);
        assert_eq!(Class::of("/v1/vast"), Class::Decision);
        assert_eq!(Class::of("/v1/admin/catalog"), Class::Admin);
    }

    /// A client still sending its body holds no slot: with a budget of one, another request is served
    /// meanwhile, and the slow one is served once its body is in.
    #[tokio::test]
    async fn a_slot_is_taken_only_once_the_body_is_in() {
        use axum::routing::post;
        use tower::ServiceExt;

        let app = with_shedding(
            Router::new().route("/v1/events", post(|body: String| async move { body })),
            1,
        );
        let (chunks, rx) = tokio::sync::mpsc::channel::<&'static str>(1);
        let (polled_tx, polled) = tokio::sync::oneshot::channel::<()>();
        let polled_tx = std::sync::Mutex::new(Some(polled_tx));
        let stream = futures_util::stream::unfold(rx, move |mut rx| {
            if let Some(tx) = polled_tx.lock().unwrap().take() {
                let _ = tx.send(());
            }
            async move {
                rx.recv()
                    .await
                    .map(|chunk| (Ok::<_, std::convert::Infallible>(chunk), rx))
            }
        });
        let slow = tokio::spawn(
            app.clone().oneshot(
                Request::post("/v1/events")
                    .body(Body::from_stream(stream))
                    .unwrap(),
            ),
        );
        // The body is being read (by admission: no handler runs before it is whole).
        polled.await.unwrap();
        let other = app
            .clone()
            .oneshot(
                Request::post("/v1/events")
                    .body(Body::from("fast"))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(other.status(), StatusCode::OK, "the slot was free");
        chunks.send("slow").await.unwrap();
        drop(chunks);
        let slow = slow.await.unwrap().unwrap();
        assert_eq!(slow.status(), StatusCode::OK);
        let body = http_body_util::BodyExt::collect(slow.into_body())
            .await
            .unwrap()
            .to_bytes();
        assert_eq!(&body[..], b"slow");
    }

    #[tokio::test]
    async fn a_declared_body_over_the_limit_is_refused_before_it_is_read() {
        use tower::ServiceExt;

        let app = with_shedding(
            Router::new().route("/v1/events", axum::routing::post(|| async { "read" })),
            10,
        );
        let response = app
            .oneshot(
                Request::post("/v1/events")
                    .header(header::CONTENT_LENGTH, MAX_BUFFERED_BODY_BYTES + 1)
                    .body(Body::from(vec![b'x'; MAX_BUFFERED_BODY_BYTES + 1]))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }
}
