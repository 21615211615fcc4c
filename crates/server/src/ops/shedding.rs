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

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
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

async fn admission(State(budget): State<Arc<Budget>>, request: Request, next: Next) -> Response {
    // Health and metrics always answer: a load balancer must see an overloaded node as alive.
    if matches!(request.uri().path(), "/healthz" | "/readyz" | "/metrics") {
        return next.run(request).await;
    }
    let class = Class::of(request.uri().path());
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
}
