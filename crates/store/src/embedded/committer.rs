//! Group commit: concurrent producers (HTTP requests, the stitcher's beacons) hand batches to one writer task,
//! which processes everything waiting in one transaction and one fsync, then answers each producer.
//!
//! The queue is bounded: when it is full, [`Committer::submit`] fails at once with [`SubmitError::Busy`] and the
//! collector answers 503 with Retry-After, so a retry storm cannot grow memory without bound.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use interlude_events::{Envelope, Outcome, Policy, validate};
use tokio::sync::{mpsc, oneshot};

use interlude_events::BoxFuture;

use super::{EventStore, StoreError};
use crate::log::{EventLog, SubmitError};

type Reply = oneshot::Sender<Result<Vec<Outcome>, String>>;

/// The producers' handle.
#[derive(Debug, Clone)]
pub struct Committer {
    tx: mpsc::Sender<(Vec<Envelope>, Reply)>,
}

/// Batches (not events) waiting at most by default; each request is one batch.
pub const DEFAULT_QUEUE: usize = 4096;
/// Events per transaction at most, so one commit stays short.
const MAX_EVENTS_PER_COMMIT: usize = 20_000;

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
    fn ingest(&self, batch: &[Envelope], now: DateTime<Utc>) -> Result<Vec<Outcome>, StoreError> {
        match self {
            Sink::Store(store) => store.ingest(batch, now),
            Sink::Discard(policy) => Ok(batch
                .iter()
                .map(|e| match validate(e, policy, now) {
                    Ok(()) => Outcome::Counted { correction: false },
                    Err(q) => Outcome::Quarantined(q),
                })
                .collect()),
        }
    }
}

impl Committer {
    /// Starts the writer task over `store`; `clock` stamps validation time.
    pub fn start(store: Arc<EventStore>, clock: interlude_events::Clock) -> Self {
        Self::start_sink(Sink::Store(store), clock, DEFAULT_QUEUE)
    }

    /// Starts the writer task over any sink, with at most `queue` batches waiting.
    pub fn start_sink(store: Sink, clock: interlude_events::Clock, queue: usize) -> Self {
        let (tx, mut rx) = mpsc::channel::<(Vec<Envelope>, Reply)>(queue.max(1));
        std::thread::Builder::new()
            .name("event-committer".into())
            .spawn(move || {
                let mut last_sweep = std::time::Instant::now();
                while let Some(first) = rx.blocking_recv() {
                    // Dedup keys leave the window continuously; sweep a bounded slice between batches.
                    if let (Sink::Store(store), true) = (&store, last_sweep.elapsed() > std::time::Duration::from_secs(10)) {
                        last_sweep = std::time::Instant::now();
                        if let Err(e) = store.expire(clock(), 100_000) {
                            tracing::warn!(error = %e, "Dedup key expiry failed; retried later.");
                        }
                    }
                    let mut waiting = vec![first];
                    let mut events = waiting[0].0.len();
                    while events < MAX_EVENTS_PER_COMMIT {
                        match rx.try_recv() {
                            Ok(next) => {
                                events += next.0.len();
                                waiting.push(next);
                            }
                            Err(_) => break,
                        }
                    }
                    let batch: Vec<Envelope> = waiting.iter().flat_map(|(b, _)| b.iter().cloned()).collect();
                    let started = std::time::Instant::now();
                    let result = store.ingest(&batch, clock());
                    metrics::histogram!("events_commit_seconds").record(started.elapsed().as_secs_f64());
                    match result {
                        Ok(outcomes) => {
                            metrics::counter!("events_committed_total").increment(batch.len() as u64);
                            record_outcomes(&batch, &outcomes, clock());
                            let mut outcomes = outcomes.into_iter();
                            for (b, reply) in waiting {
                                let _ = reply.send(Ok(outcomes.by_ref().take(b.len()).collect()));
                            }
                        }
                        Err(e) => {
                            metrics::counter!("events_commit_failures_total").increment(batch.len() as u64);
                            tracing::error!(error = %e, events = batch.len(), "Event commit failed; batch not acknowledged.");
                            for (_, reply) in waiting {
                                let _ = reply.send(Err(e.to_string()));
                            }
                        }
                    }
                }
            })
            .map_err(|e| tracing::error!(error = %e, "Could not start the event committer."))
            .ok();
        Committer { tx }
    }

    /// Queues `batch` and waits until it is durably committed.
    pub async fn submit(&self, batch: Vec<Envelope>) -> Result<Vec<Outcome>, SubmitError> {
        let (reply, answer) = oneshot::channel();
        self.tx.try_send((batch, reply)).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => SubmitError::Busy,
            mpsc::error::TrySendError::Closed(_) => SubmitError::Stopped,
        })?;
        answer
            .await
            .map_err(|_| SubmitError::Stopped)?
            .map_err(|e| SubmitError::Store(StoreError::Commit(e)))
    }
}

/// Outcome counts and the event-time lag of a committed batch (what the dashboard and alerts read).
fn record_outcomes(batch: &[Envelope], outcomes: &[Outcome], now: DateTime<Utc>) {
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
    if let Some(newest) = batch.iter().map(|e| e.event.occurred_at).max() {
        let lag = (now - newest).num_milliseconds().max(0) as f64 / 1000.0;
        metrics::gauge!("events_lag_seconds").set(lag);
    }
}

impl EventLog for Committer {
    fn append(&self, batch: Vec<Envelope>) -> BoxFuture<'_, Result<Vec<Outcome>, SubmitError>> {
        Box::pin(self.submit(batch))
    }
}
