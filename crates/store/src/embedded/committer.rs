//! Group commit: concurrent producers (HTTP requests, the stitcher's beacons) hand batches to one writer thread,
//! which processes everything waiting in one transaction and one fsync, then answers each producer.
//!
//! The queue is bounded: when it is full, [`Committer::submit`] fails at once with [`SubmitError::Busy`] and the
//! collector answers 503 with Retry-After, so a retry storm cannot grow memory without bound. Producers that
//! must not drop what they hold (the stitcher's beacons) use [`Committer::submit_wait`], which retries until a
//! deadline.
//!
//! The writer thread also keeps the store healthy: after a commit fails on I/O it reopens the database with
//! backoff (answering batches meanwhile with [`crate::Error::Unavailable`]), and between commits it expires
//! dedup keys in chunks that grow with the backlog — on a timer too, so expiry does not wait for traffic.
//! [`Committer::shutdown`] stops intake, commits what is queued and closes the store.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use interlude_events::{BoxFuture, Envelope, Outcome, Policy, check_event};
use tokio::sync::oneshot;

use super::ingest::Prepared;
use super::maintenance::{MAX_CHUNK, MIN_CHUNK};
use super::{EventStore, StoreError};
use crate::log::{EventLog, SubmitError};
use crate::metrics as m;

/// Why a queued batch was not committed, as the writer thread tells it.
#[derive(Debug)]
enum Failed {
    /// The store cannot commit now (I/O failure, reopening): try again.
    Unavailable(String),
    /// The commit failed for another reason.
    Commit(String),
}

/// The outcomes, or why not and the batch back (so a waiting producer retries without a copy).
type Reply = oneshot::Sender<Result<Vec<Outcome>, (Failed, Prepared)>>;

enum Job {
    Batch(Prepared, Reply),
    Stop(oneshot::Sender<Result<(), String>>),
}

/// The producers' handle.
#[derive(Debug, Clone)]
pub struct Committer {
    tx: SyncSender<Job>,
    shared: Arc<Shared>,
}

struct Shared {
    stopping: AtomicBool,
    /// Told of each commit's counted impressions, once set.
    on_counted: std::sync::OnceLock<crate::OnCounted>,
    store: Option<Arc<EventStore>>,
    /// The edge checks' rules, run by producers before queueing ([`Prepared`]).
    policy: Policy,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("stopping", &self.stopping)
            .field("on_counted", &self.on_counted.get().is_some())
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

/// Batches (not events) waiting at most by default; each request is one batch.
pub const DEFAULT_QUEUE: usize = 4096;
/// Events per transaction at most, so one commit stays short.
const MAX_EVENTS_PER_COMMIT: usize = 20_000;
/// Expiry runs at least this often, traffic or not.
const EXPIRY_EVERY: Duration = Duration::from_secs(10);
/// Reopen attempts after an I/O failure back off up to this.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Where committed batches go.
#[derive(Debug, Clone)]
pub enum Sink {
    /// The durable store.
    Store(Arc<EventStore>),
    /// Nowhere: batches are validated and answered but not stored. Only for measuring what durability costs
    /// (`interlude bench ingest`); never configured in production.
    Discard(Policy),
}

impl Sink {
    fn store(&self) -> Option<&Arc<EventStore>> {
        match self {
            Sink::Store(s) => Some(s),
            Sink::Discard(_) => None,
        }
    }

    fn policy(&self) -> &Policy {
        match self {
            Sink::Store(s) => s.policy(),
            Sink::Discard(policy) => policy,
        }
    }

    fn ingest(&self, parts: &[&Prepared], now: DateTime<Utc>) -> Result<Vec<Outcome>, StoreError> {
        match self {
            Sink::Store(store) => store.ingest_prepared(parts, now),
            // `validate`, with the edge verdicts the producers computed (as for the store).
            Sink::Discard(policy) => Ok(parts
                .iter()
                .flat_map(|p| p.envelopes().iter().zip(p.edges()))
                .map(|(e, edge)| {
                    match check_event(&e.event, policy, now)
                        .and_then(|()| edge.clone().map_or(Ok(()), Err))
                    {
                        Ok(()) => Outcome::Counted { correction: false },
                        Err(q) => Outcome::Quarantined(q),
                    }
                })
                .collect()),
        }
    }
}

/// Dedup-key expiry between commits: a chunk per run, doubling while runs come back full (a backlog), halving
/// back when they do not; due again at once while there is a backlog, else after [`EXPIRY_EVERY`].
struct Expiry {
    next: Instant,
    chunk: usize,
}

impl Expiry {
    fn until_due(&self) -> Duration {
        self.next.saturating_duration_since(Instant::now())
    }

    fn run_if_due(&mut self, store: &EventStore, now: DateTime<Utc>) {
        if Instant::now() < self.next {
            return;
        }
        match store.expire(now, self.chunk) {
            Ok(n) if n >= self.chunk => {
                self.chunk = (self.chunk * 2).min(MAX_CHUNK);
                self.next = Instant::now();
            }
            Ok(_) => {
                self.chunk = (self.chunk / 2).max(MIN_CHUNK);
                self.next = Instant::now() + EXPIRY_EVERY;
            }
            Err(e) => {
                tracing::warn!(error = %e, "Dedup key expiry failed; retried later.");
                self.next = Instant::now() + EXPIRY_EVERY;
            }
        }
    }
}

/// The writer thread.
struct Writer {
    shared: Arc<Shared>,
    sink: Sink,
    clock: interlude_events::Clock,
    rx: Receiver<Job>,
    expiry: Expiry,
}

impl Writer {
    fn run(mut self) {
        let stop = loop {
            if let Some(stop) = self.recover() {
                break Some(stop);
            }
            let wait = match self.sink.store() {
                Some(_) => self.expiry.until_due(),
                None => Duration::from_secs(3600),
            };
            let first = match self.rx.recv_timeout(wait) {
                Ok(Job::Batch(batch, reply)) => (batch, reply),
                Ok(Job::Stop(reply)) => break Some(reply),
                Err(RecvTimeoutError::Timeout) => {
                    self.maintain();
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break None,
            };
            let mut events = first.0.len();
            let mut waiting = vec![first];
            let mut stop = None;
            while events < MAX_EVENTS_PER_COMMIT {
                match self.rx.try_recv() {
                    Ok(Job::Batch(batch, reply)) => {
                        events += batch.len();
                        waiting.push((batch, reply));
                    }
                    Ok(Job::Stop(reply)) => {
                        stop = Some(reply);
                        break;
                    }
                    Err(_) => break,
                }
            }
            self.commit(waiting);
            if stop.is_some() {
                break stop;
            }
            self.maintain();
        };
        let Some(reply) = stop else { return };
        let closed = match self.sink.store() {
            Some(store) => store.close().map_err(|e| e.to_string()),
            None => Ok(()),
        };
        let _ = reply.send(closed);
    }

    fn maintain(&mut self) {
        if let Some(store) = self.sink.store() {
            self.expiry.run_if_due(store, (self.clock)());
        }
    }

    /// While the store is unhealthy: reopens it with backoff, answering batches that arrive meanwhile. A stop
    /// request ends the wait.
    fn recover(&mut self) -> Option<oneshot::Sender<Result<(), String>>> {
        let store = self.sink.store()?.clone();
        let mut backoff = Duration::from_millis(50);
        while !store.is_healthy() {
            let until = Instant::now() + backoff;
            loop {
                match self
                    .rx
                    .recv_timeout(until.saturating_duration_since(Instant::now()))
                {
                    Ok(Job::Batch(batch, reply)) => {
                        let _ = reply.send(Err((
                            Failed::Unavailable("event store unhealthy; reopening".into()),
                            batch,
                        )));
                    }
                    Ok(Job::Stop(reply)) => return Some(reply),
                    Err(RecvTimeoutError::Timeout) => break,
                    Err(RecvTimeoutError::Disconnected) => return None,
                }
            }
            match store.recover() {
                Ok(()) => return None,
                Err(e) => {
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "Event store still failing.");
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
        None
    }

    fn commit(&mut self, waiting: Vec<(Prepared, Reply)>) {
        let parts: Vec<&Prepared> = waiting.iter().map(|(b, _)| b).collect();
        let events: usize = parts.iter().map(|p| p.len()).sum();
        let now = (self.clock)();
        let started = Instant::now();
        let result = self.sink.ingest(&parts, now);
        metrics::histogram!(m::COMMIT_SECONDS).record(started.elapsed().as_secs_f64());
        match result {
            Ok(outcomes) => {
                metrics::counter!(m::COMMITTED).increment(events as u64);
                record_outcomes(&parts, &outcomes, now);
                if let Some(on_counted) = self.shared.on_counted.get() {
                    let events = parts
                        .iter()
                        .flat_map(|p| p.envelopes().iter().map(|e| &e.event));
                    let counted = crate::applied::counted_impressions(events.zip(&outcomes));
                    if !counted.is_empty() {
                        on_counted(&counted);
                    }
                }
                let mut outcomes = outcomes.into_iter();
                for (b, reply) in waiting {
                    let _ = reply.send(Ok(outcomes.by_ref().take(b.len()).collect()));
                }
            }
            Err(e) => {
                metrics::counter!(m::COMMIT_FAILURES).increment(events as u64);
                tracing::error!(error = %e, events, "Event commit failed; batch not acknowledged.");
                let io = self.sink.store().is_some_and(|s| s.note_failure(&e));
                for (batch, reply) in waiting {
                    let message = e.to_string();
                    let failed = if io {
                        Failed::Unavailable(message)
                    } else {
                        Failed::Commit(message)
                    };
                    let _ = reply.send(Err((failed, batch)));
                }
            }
        }
    }
}

impl Committer {
    /// Starts the writer thread over `store`; `clock` stamps validation time.
    pub fn start(store: Arc<EventStore>, clock: interlude_events::Clock) -> Self {
        Self::start_sink(Sink::Store(store), clock, DEFAULT_QUEUE)
    }

    /// Starts the writer thread over any sink, with at most `queue` batches waiting.
    pub fn start_sink(sink: Sink, clock: interlude_events::Clock, queue: usize) -> Self {
        Self::start_sink_with(sink, clock, queue, Box::new(|| {}))
    }

    /// As [`Committer::start_sink`], running `setup` first on the writer thread (e.g. to lower its CPU
    /// priority, so that a storm's commits yield to latency-sensitive threads).
    pub fn start_sink_with(
        sink: Sink,
        clock: interlude_events::Clock,
        queue: usize,
        setup: Box<dyn FnOnce() + Send>,
    ) -> Self {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Job>(queue.max(1));
        let shared = Arc::new(Shared {
            stopping: AtomicBool::new(false),
            on_counted: std::sync::OnceLock::new(),
            store: sink.store().cloned(),
            policy: sink.policy().clone(),
        });
        let writer = Writer {
            shared: shared.clone(),
            sink,
            clock,
            rx,
            expiry: Expiry {
                next: Instant::now(),
                chunk: MIN_CHUNK,
            },
        };
        std::thread::Builder::new()
            .name("event-committer".into())
            .spawn(move || {
                setup();
                writer.run()
            })
            .map_err(|e| tracing::error!(error = %e, "Could not start the event committer."))
            .ok();
        Committer { tx, shared }
    }

    /// Tells `f` of the impressions each later commit counts (see [`crate::OnCounted`]); only the first call
    /// takes effect.
    pub fn on_counted(&self, f: crate::OnCounted) {
        let _ = self.shared.on_counted.set(f);
    }

    /// Queues `batch` and waits until it is durably committed. Fails at once with [`SubmitError::Busy`] when
    /// the queue is full, and with [`crate::Error::Unavailable`] while the store is unhealthy.
    pub async fn submit(&self, batch: Vec<Envelope>) -> Result<Vec<Outcome>, SubmitError> {
        self.submit_prepared(self.prepare(batch))
            .await
            .map_err(|(e, _)| e)
    }

    /// Runs what needs no store state on the caller's thread, in parallel with the writer: the edge checks,
    /// and the log records' encoding when there is a store to log to.
    fn prepare(&self, batch: Vec<Envelope>) -> Prepared {
        Prepared::new(batch, &self.shared.policy, self.shared.store.is_some())
    }

    /// [`Self::submit`] of a prepared batch; on failure the batch comes back when it can be retried as is.
    async fn submit_prepared(
        &self,
        batch: Prepared,
    ) -> Result<Vec<Outcome>, (SubmitError, Option<Prepared>)> {
        if self.shared.stopping.load(Ordering::Acquire) {
            return Err((SubmitError::Stopped, None));
        }
        if let Some(store) = &self.shared.store {
            if !store.is_healthy() {
                let unhealthy = StoreError::Unavailable("event store unhealthy; reopening".into());
                return Err((SubmitError::Store(unhealthy), Some(batch)));
            }
        }
        let (reply, answer) = oneshot::channel();
        if let Err(e) = self.tx.try_send(Job::Batch(batch, reply)) {
            return Err(match e {
                TrySendError::Full(Job::Batch(batch, _)) => (SubmitError::Busy, Some(batch)),
                TrySendError::Full(_) => (SubmitError::Busy, None),
                TrySendError::Disconnected(_) => (SubmitError::Stopped, None),
            });
        }
        match answer.await.map_err(|_| (SubmitError::Stopped, None))? {
            Ok(outcomes) => Ok(outcomes),
            Err((Failed::Unavailable(e), batch)) => {
                Err((SubmitError::Store(StoreError::Unavailable(e)), Some(batch)))
            }
            Err((Failed::Commit(e), batch)) => {
                Err((SubmitError::Store(StoreError::Commit(e)), Some(batch)))
            }
        }
    }

    /// [`Self::submit`], retried with backoff while the store is busy or unavailable, until `deadline`: for
    /// producers that would otherwise drop what they hold (the stitcher's beacons). The batch is prepared
    /// once and comes back from each refusal, so a retry copies nothing. Each submission that had to wait is
    /// counted ([`crate::metrics::SUBMIT_WAITS`]), and each given up at its deadline
    /// ([`crate::metrics::SUBMIT_WAIT_TIMEOUTS`]), which then returns the last error.
    pub async fn submit_wait(
        &self,
        batch: Vec<Envelope>,
        deadline: tokio::time::Instant,
    ) -> Result<Vec<Outcome>, SubmitError> {
        let mut delay = Duration::from_millis(10);
        let mut waited = false;
        let mut batch = self.prepare(batch);
        loop {
            let error = match self.submit_prepared(batch).await {
                Ok(outcomes) => return Ok(outcomes),
                Err((
                    e @ (SubmitError::Busy | SubmitError::Store(StoreError::Unavailable(_))),
                    Some(back),
                )) => {
                    batch = back;
                    e
                }
                Err((e, _)) => return Err(e),
            };
            if !waited {
                waited = true;
                metrics::counter!(m::SUBMIT_WAITS).increment(1);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                metrics::counter!(m::SUBMIT_WAIT_TIMEOUTS).increment(1);
                return Err(error);
            }
            tokio::time::sleep(delay.min(deadline - now)).await;
            delay = (delay * 2).min(Duration::from_secs(1));
        }
    }

    /// Graceful shutdown: stops intake (later submissions fail with [`SubmitError::Stopped`]), commits what is
    /// queued, closes the store (so the next open needs no repair) and returns once it is closed.
    pub async fn shutdown(&self) -> Result<(), StoreError> {
        self.shared.stopping.store(true, Ordering::Release);
        let (reply, done) = oneshot::channel();
        let tx = self.tx.clone();
        // The queue may be full: wait for room off the runtime.
        let sent = tokio::task::spawn_blocking(move || tx.send(Job::Stop(reply)).is_ok()).await?;
        if sent {
            if let Ok(result) = done.await {
                return result.map_err(StoreError::Commit);
            }
        }
        // The writer is gone already (stopped before): close the store directly.
        match &self.shared.store {
            Some(store) => store.close(),
            None => Ok(()),
        }
    }
}

/// Outcome counts and the event-time lag of a committed batch (what the dashboard and alerts read).
fn record_outcomes(parts: &[&Prepared], outcomes: &[Outcome], now: DateTime<Utc>) {
    let (mut duplicates, mut retries) = (0u64, 0u64);
    for o in outcomes {
        match o {
            Outcome::Duplicate => duplicates += 1,
            Outcome::Retry => retries += 1,
            _ => {}
        }
    }
    metrics::counter!("events_duplicates_total").increment(duplicates);
    metrics::counter!("events_retries_total").increment(retries);
    if let Some(newest) = parts
        .iter()
        .flat_map(|p| p.envelopes().iter())
        .map(|e| e.event.occurred_at)
        .max()
    {
        let lag = (now - newest).num_milliseconds().max(0) as f64 / 1000.0;
        metrics::gauge!("events_lag_seconds").set(lag);
    }
}

impl EventLog for Committer {
    fn append(&self, batch: Vec<Envelope>) -> BoxFuture<'_, Result<Vec<Outcome>, SubmitError>> {
        Box::pin(self.submit(batch))
    }
}
