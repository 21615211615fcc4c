//! Load shedding: admission control by endpoint class, with priorities, on two signals.
//!
//! **Queue delay.** A probe task measures how long a task that has just yielded waits before the runtime polls
//! it again: the run-queue delay every request's task pays on top of its own work. Counting requests in flight
//! cannot see this: a storm of cheap beacons on thousands of keep-alive connections keeps few requests in
//! flight at any instant yet fills the run queue, and every playlist waits behind it. When the smoothed delay
//! passes a class's threshold, that class is refused with a probability rising linearly to 1 at five times the
//! threshold (a ramp, so admission does not flap between all and nothing). Playlists, which keep viewers
//! watching, are never refused for delay.
//!
//! **In flight.** One budget of requests in flight for the whole process; each class may use it up to its
//! share, so as work piles up the least important work is refused first and playlists last. Beacons also have
//! a cap of their own (`max_in_flight_beacons`): a retry storm waiting on the event store's commits cannot
//! take the budget playlists need.
//!
//! | class | paths | refused for delay at | in flight < | when refused |
//! |---|---|---|---|---|
//! | playlist | `/s/…`, `/v1/channels/…`, `/v1/sessions…` | never | 100% of the budget | 503, `Retry-After: 1` |
//! | beacon | `/t/…`, `/v1/events` | the threshold | 85%, and the beacon cap | 503, `Retry-After: 2`, after [`REFUSED_BEACON_PAUSE`] (players retry later; the pipeline deduplicates) |
//! | decision | `/v1/vast`, `/v1/vmap`, `/v1/decisions/…` | the threshold | 70% | an empty VAST 4.2 response (no ads) at once, instead of a timeout |
//! | admin | `/v1/admin/…`, `/v1/ops/…`, everything else | half the threshold | 50% | 503 |
//!
//! Stitcher pod decisions are not HTTP requests: they have their own concurrency bound and fall back to slate
//! on timeout. `/healthz` and `/readyz` are never refused, nor are `/metrics` and the dashboard's data
//! (`/v1/dashboard/…`, behind the read token): an overloaded node must stay observable. Every refusal is
//! counted in `http_shed_total{class,reason}`; `http_in_flight` and `http_queue_delay_seconds` are the gauges.
//!
//! A request is admitted only once its whole body has arrived (at most [`MAX_BUFFERED_BODY_BYTES`], within
//! [`BODY_READ_TIMEOUT`]): the budget counts work, and a client trickling a body must not hold a slot while
//! doing nothing. Over the size: 413; too slow: 408.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, HttpBody};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};

use crate::ServerConfig;
use crate::telemetry::metrics::{HTTP_IN_FLIGHT, HTTP_QUEUE_DELAY, HTTP_SHED};

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
            || path.starts_with("/v1/conditioned/")
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

    /// The queue delay at which it starts being refused, for a configured `threshold`; `None`: never.
    fn delay_tolerance(self, threshold: Duration) -> Option<Duration> {
        match self {
            Class::Playlist => None,
            Class::Beacon | Class::Decision => Some(threshold),
            Class::Admin => Some(threshold / 2),
        }
    }
}

/// Why a request was refused (the `reason` label of `http_shed_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The process's in-flight budget, at the class's share.
    Budget,
    /// The beacons' own in-flight cap.
    BeaconCap,
    /// The run queue's delay.
    QueueDelay,
}

impl Refusal {
    fn name(self) -> &'static str {
        match self {
            Refusal::Budget => "budget",
            Refusal::BeaconCap => "beacon_cap",
            Refusal::QueueDelay => "queue_delay",
        }
    }
}

/// How admission decides, from `[server]` (see [`ServerConfig`] for each setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShedPolicy {
    /// Requests in flight, every class together.
    pub max_in_flight: usize,
    /// Beacon requests in flight; 0: only the shared budget.
    pub max_in_flight_beacons: usize,
    /// Smoothed queue delay at which beacons and decisions start being refused; `None`: never for delay.
    pub queue_delay_threshold: Option<Duration>,
}

impl From<&ServerConfig> for ShedPolicy {
    fn from(config: &ServerConfig) -> Self {
        ShedPolicy {
            max_in_flight: config.max_in_flight,
            max_in_flight_beacons: config.max_in_flight_beacons,
            queue_delay_threshold: (config.shed_queue_delay_ms > 0)
                .then(|| Duration::from_millis(config.shed_queue_delay_ms)),
        }
    }
}

impl ShedPolicy {
    /// Only an in-flight budget of `capacity`: no beacon cap, no delay signal.
    pub fn in_flight(capacity: usize) -> ShedPolicy {
        ShedPolicy {
            max_in_flight: capacity,
            max_in_flight_beacons: 0,
            queue_delay_threshold: None,
        }
    }
}

/// How often the queue delay is probed.
const PROBE_INTERVAL: Duration = Duration::from_millis(5);

/// The run queue's delay, smoothed; fed by a probe task started on first use.
#[derive(Debug, Default)]
pub struct QueueDelay {
    smoothed_ns: AtomicU64,
    probing: AtomicBool,
}

impl QueueDelay {
    /// The smoothed delay.
    pub fn get(&self) -> Duration {
        Duration::from_nanos(self.smoothed_ns.load(Ordering::Relaxed))
    }

    /// Folds one sample in: a rise is taken at half weight at once, a fall at an eighth, so a storm is seen
    /// within a probe or two while one quiet probe does not reopen the gates.
    pub fn record(&self, sample: Duration) {
        let sample = u64::try_from(sample.as_nanos()).unwrap_or(u64::MAX);
        let old = self.smoothed_ns.load(Ordering::Relaxed);
        let new = if sample >= old {
            old + (sample - old) / 2
        } else {
            old - (old - sample) / 8
        };
        self.smoothed_ns.store(new, Ordering::Relaxed);
        metrics::gauge!(HTTP_QUEUE_DELAY).set(Duration::from_nanos(new).as_secs_f64());
    }

    /// Starts the probe on the current runtime, once; a no-op outside a runtime (it is retried on next use).
    fn ensure_probe(self: &Arc<Self>) {
        if self.probing.load(Ordering::Relaxed) || self.probing.swap(true, Ordering::AcqRel) {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(probe(Arc::downgrade(self)));
            }
            Err(_) => self.probing.store(false, Ordering::Release),
        }
    }
}

/// Measures, every [`PROBE_INTERVAL`], how long a yielded task waits to be polled again; ends when the
/// admission layer it serves is dropped.
async fn probe(delay: Weak<QueueDelay>) {
    loop {
        tokio::time::sleep(PROBE_INTERVAL).await;
        let yielded = Instant::now();
        tokio::task::yield_now().await;
        let waited = yielded.elapsed();
        match delay.upgrade() {
            Some(delay) => delay.record(waited),
            None => return,
        }
    }
}

/// The process's admission state.
#[derive(Debug)]
pub struct Budget {
    policy: ShedPolicy,
    in_flight: AtomicUsize,
    beacons_in_flight: AtomicUsize,
    delay: Arc<QueueDelay>,
    /// A counter hashed into the uniform draws of the delay ramp.
    draws: AtomicU64,
}

/// A request admitted: its slots are released when dropped.
pub struct Admitted {
    budget: Arc<Budget>,
    beacon: bool,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        if self.beacon {
            self.budget.beacons_in_flight.fetch_sub(1, Ordering::AcqRel);
        }
        let now = self.budget.in_flight.fetch_sub(1, Ordering::AcqRel) - 1;
        metrics::gauge!(HTTP_IN_FLIGHT).set(now as f64);
    }
}

/// Takes one slot under `limit`, or says no.
fn take(counter: &AtomicUsize, limit: usize) -> Option<usize> {
    let mut current = counter.load(Ordering::Acquire);
    loop {
        if current >= limit {
            return None;
        }
        match counter.compare_exchange_weak(
            current,
            current + 1,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => return Some(current + 1),
            Err(actual) => current = actual,
        }
    }
}

impl Budget {
    /// The admission state for `policy`.
    pub fn new(policy: ShedPolicy) -> Arc<Budget> {
        Arc::new(Budget {
            policy: ShedPolicy {
                max_in_flight: policy.max_in_flight.max(1),
                ..policy
            },
            in_flight: AtomicUsize::new(0),
            beacons_in_flight: AtomicUsize::new(0),
            delay: Arc::new(QueueDelay::default()),
            draws: AtomicU64::new(0),
        })
    }

    /// The queue-delay signal this budget reads.
    pub fn queue_delay(&self) -> &Arc<QueueDelay> {
        &self.delay
    }

    /// Admits a request of `class`, or says why not.
    pub fn admit(self: &Arc<Self>, class: Class) -> Result<Admitted, Refusal> {
        let refused = |reason: Refusal| {
            metrics::counter!(HTTP_SHED, "class" => class.name(), "reason" => reason.name())
                .increment(1);
            reason
        };
        if let Some(threshold) = self.policy.queue_delay_threshold {
            self.delay.ensure_probe();
            if let Some(start) = class.delay_tolerance(threshold)
                && self.refuse_for_delay(start)
            {
                return Err(refused(Refusal::QueueDelay));
            }
        }
        let beacon = class == Class::Beacon && self.policy.max_in_flight_beacons > 0;
        if beacon && take(&self.beacons_in_flight, self.policy.max_in_flight_beacons).is_none() {
            return Err(refused(Refusal::BeaconCap));
        }
        let limit = (self.policy.max_in_flight * class.share() / 100).max(1);
        match take(&self.in_flight, limit) {
            Some(now) => {
                metrics::gauge!(HTTP_IN_FLIGHT).set(now as f64);
                Ok(Admitted {
                    budget: self.clone(),
                    beacon,
                })
            }
            None => {
                if beacon {
                    self.beacons_in_flight.fetch_sub(1, Ordering::AcqRel);
                }
                Err(refused(Refusal::Budget))
            }
        }
    }

    /// Whether to refuse a request whose class tolerates `start` of delay: never below it, always from five
    /// times it, in between with a probability rising linearly.
    fn refuse_for_delay(&self, start: Duration) -> bool {
        let delay = self.delay.get();
        if delay <= start {
            return false;
        }
        let span = start.saturating_mul(4).as_nanos().max(1) as f64;
        let p = ((delay - start).as_nanos() as f64 / span).min(1.0);
        p >= 1.0 || self.uniform() < p
    }

    /// A uniform draw in [0, 1): splitmix64 over a shared counter (no allocation, no lock, no dependency).
    fn uniform(&self) -> f64 {
        let mut z = self
            .draws
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
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
    // Health, metrics and the dashboard's data always answer: a load balancer must see an overloaded node as
    // alive, and its operators must see why it is overloaded.
    let path = request.uri().path();
    if matches!(path, "/healthz" | "/readyz" | "/metrics") || path.starts_with("/v1/dashboard/") {
        return next.run(request).await;
    }
    let class = Class::of(request.uri().path());
    // The body first: a slot is for work, not for waiting on the client.
    let request = match read_body(request).await {
        Ok(request) => request,
        Err(refused) => return refused,
    };
    match budget.admit(class) {
        Ok(_slot) => next.run(request).await,
        Err(_) if class == Class::Beacon => {
            // Held before it is answered: a device in a retry loop (or a replaying bot) on a keep-alive
            // connection would otherwise send its next beacon at once, and a storm refused in microseconds is
            // still a storm. A parked task costs a timer, not CPU; the connection cap bounds how many wait.
            tokio::time::sleep(REFUSED_BEACON_PAUSE).await;
            refused(class)
        }
        Err(_) => refused(class),
    }
}

/// How long a refused beacon waits for its 503: each storming connection is slowed to one refused beacon per
/// pause. A player's beacons are fire-and-forget, so no viewer waits on it.
pub const REFUSED_BEACON_PAUSE: Duration = Duration::from_secs(1);

/// `router` behind admission control by `policy`.
pub fn with_shedding(router: Router, policy: ShedPolicy) -> Router {
    router.layer(middleware::from_fn_with_state(
        Budget::new(policy),
        admission,
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn lower_classes_are_refused_first() {
        let budget = Budget::new(ShedPolicy::in_flight(10));
        let held: Vec<Admitted> = (0..5)
            .map(|_| budget.admit(Class::Admin).unwrap())
            .collect();
        assert!(budget.admit(Class::Admin).is_err(), "admin stops at 50%");
        let mut more: Vec<Admitted> = (0..2)
            .map(|_| budget.admit(Class::Decision).unwrap())
            .collect();
        assert!(
            budget.admit(Class::Decision).is_err(),
            "decisions stop at 70%"
        );
        more.push(budget.admit(Class::Beacon).unwrap());
        assert!(budget.admit(Class::Beacon).is_err(), "beacons stop at 85%");
        more.push(budget.admit(Class::Playlist).unwrap());
        more.push(budget.admit(Class::Playlist).unwrap());
        assert!(
            budget.admit(Class::Playlist).is_err(),
            "the budget is spent"
        );
        drop(held);
        // Five in flight again: decisions (70%) are admitted, admin (50%) still is not.
        assert!(budget.admit(Class::Admin).is_err());
        assert!(
            budget.admit(Class::Decision).is_ok(),
            "released slots are reused"
        );
        drop(more);
    }

    #[test]
    fn beacons_have_a_cap_of_their_own() {
        let budget = Budget::new(ShedPolicy {
            max_in_flight_beacons: 3,
            ..ShedPolicy::in_flight(100)
        });
        let beacons: Vec<Admitted> = (0..3)
            .map(|_| budget.admit(Class::Beacon).unwrap())
            .collect();
        assert_eq!(budget.admit(Class::Beacon).err(), Some(Refusal::BeaconCap));
        // The shared budget is far from spent: playlists and decisions still get in.
        let playlist = budget.admit(Class::Playlist).unwrap();
        let decision = budget.admit(Class::Decision).unwrap();
        drop(beacons);
        assert!(budget.admit(Class::Beacon).is_ok(), "the cap frees up");
        drop((playlist, decision));
        assert_eq!(budget.in_flight.load(Ordering::Acquire), 0);
        assert_eq!(budget.beacons_in_flight.load(Ordering::Acquire), 0);
    }

    #[test]
    fn a_beacon_refused_by_the_budget_gives_back_its_beacon_slot() {
        let budget = Budget::new(ShedPolicy {
            max_in_flight_beacons: 10,
            ..ShedPolicy::in_flight(2)
        });
        let held = budget.admit(Class::Playlist).unwrap();
        let held2 = budget.admit(Class::Playlist).unwrap();
        assert_eq!(budget.admit(Class::Beacon).err(), Some(Refusal::Budget));
        assert_eq!(budget.beacons_in_flight.load(Ordering::Acquire), 0);
        drop((held, held2));
    }

    /// Admissions out of `n` attempts of `class` at a smoothed queue delay of `delay`.
    fn admitted_at(delay: Duration, class: Class, n: usize) -> usize {
        let budget = Budget::new(ShedPolicy {
            queue_delay_threshold: Some(Duration::from_millis(4)),
            ..ShedPolicy::in_flight(1_000_000)
        });
        // Straight to the value: a rise is taken at half weight, so record until it converges.
        for _ in 0..64 {
            budget.delay.record(delay);
        }
        (0..n).filter(|_| budget.admit(class).is_ok()).count()
    }

    #[test]
    fn queue_delay_refuses_by_class_on_a_ramp_and_never_playlists() {
        let ms = Duration::from_millis;
        // Below the threshold (4 ms) everyone gets in; admin is refused from half of it.
        assert_eq!(admitted_at(ms(3), Class::Beacon, 1000), 1000);
        assert_eq!(admitted_at(ms(3), Class::Decision, 1000), 1000);
        assert!(admitted_at(ms(3), Class::Admin, 1000) < 1000);
        // Half way up the beacon ramp (4 ms → 20 ms): about half refused.
        let half = admitted_at(ms(12), Class::Beacon, 10_000);
        assert!((4_000..6_000).contains(&half), "{half} of 10000 admitted");
        // Past five times the threshold: all refused.
        assert_eq!(admitted_at(ms(25), Class::Beacon, 1000), 0);
        assert_eq!(admitted_at(ms(25), Class::Admin, 1000), 0);
        // Playlists do not read the delay at all.
        assert_eq!(
            admitted_at(Duration::from_secs(2), Class::Playlist, 1000),
            1000
        );
    }

    #[test]
    fn a_falling_delay_is_forgotten_slowly_and_a_rising_one_seen_at_once() {
        let delay = QueueDelay::default();
        delay.record(Duration::from_millis(40));
        assert_eq!(
            delay.get(),
            Duration::from_millis(20),
            "half of a rise at once"
        );
        delay.record(Duration::ZERO);
        assert_eq!(
            delay.get(),
            Duration::from_micros(17_500),
            "an eighth of a fall"
        );
    }

    /// The probe measures the run queue: while a task holds the only worker thread, the probe cannot run, and
    /// the delay it then records is at least the time it was kept waiting.
    #[tokio::test(flavor = "current_thread")]
    async fn the_probe_sees_a_blocked_runtime() {
        let budget = Budget::new(ShedPolicy {
            queue_delay_threshold: Some(Duration::from_millis(4)),
            ..ShedPolicy::in_flight(10)
        });
        let _ = budget.admit(Class::Playlist);
        // Let the probe reach its yield, then hog the thread as a storm of ready tasks would.
        let deadline = Instant::now() + Duration::from_secs(10);
        while budget.queue_delay().get() < Duration::from_millis(20) {
            tokio::time::sleep(Duration::from_millis(1)).await;
            tokio::spawn(async { std::thread::sleep(Duration::from_millis(50)) });
            assert!(
                Instant::now() < deadline,
                "the probe never saw the blocked thread"
            );
        }
        assert_eq!(
            budget.admit(Class::Beacon).err(),
            Some(Refusal::QueueDelay),
            "at 20 ms, five times the threshold, beacons are refused"
        );
        assert!(budget.admit(Class::Playlist).is_ok());
    }

    #[test]
    fn paths_map_to_classes() {
        assert_eq!(Class::of("/s/abc/0/media.m3u8"), Class::Playlist);
        assert_eq!(Class::of("/v1/channels/live1/master.m3u8"), Class::Playlist);
        assert_eq!(Class::of("/t/token"), Class::Beacon);
        assert_eq!(Class::of("/v1/events"), Class::Beacon);
        assert_eq!(
            Class::of("/v1/conditioned/uaid_x/abc/640x360_25_410k/ts/000.ts"),
            Class::Playlist
        );
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
            ShedPolicy::in_flight(1),
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

    /// A refused beacon is answered only after a pause (a storming connection is slowed to one refusal per
    /// pause); the 503 still comes, with its Retry-After.
    #[tokio::test]
    async fn a_refused_beacon_is_held_before_its_answer() {
        use tower::ServiceExt;

        let (release, held) = tokio::sync::oneshot::channel::<()>();
        let held = Arc::new(std::sync::Mutex::new(Some(held)));
        let app = with_shedding(
            Router::new().route(
                "/t/{token}",
                axum::routing::get(move || {
                    let wait = held.lock().unwrap().take();
                    async move {
                        if let Some(wait) = wait {
                            let _ = wait.await;
                        }
                        StatusCode::NO_CONTENT
                    }
                }),
            ),
            ShedPolicy {
                max_in_flight_beacons: 1,
                ..ShedPolicy::in_flight(100)
            },
        );
        let get = || Request::get("/t/x").body(Body::empty()).unwrap();
        let first = tokio::spawn(app.clone().oneshot(get()));
        // Until the first beacon holds the only beacon slot, a second one would be admitted.
        let refused = loop {
            tokio::task::yield_now().await;
            let sent = Instant::now();
            let response = app.clone().oneshot(get()).await.unwrap();
            if response.status() == StatusCode::SERVICE_UNAVAILABLE {
                break (response, sent.elapsed());
            }
        };
        assert!(
            refused.1 >= REFUSED_BEACON_PAUSE,
            "answered after {:?}",
            refused.1
        );
        assert_eq!(refused.0.headers()[header::RETRY_AFTER], "2");
        release.send(()).unwrap();
        assert_eq!(
            first.await.unwrap().unwrap().status(),
            StatusCode::NO_CONTENT
        );
    }

    #[tokio::test]
    async fn a_declared_body_over_the_limit_is_refused_before_it_is_read() {
        use tower::ServiceExt;

        let app = with_shedding(
            Router::new().route("/v1/events", axum::routing::post(|| async { "read" })),
            ShedPolicy::in_flight(10),
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
