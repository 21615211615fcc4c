//! The dispatcher: takes due pixels from the store, sends them through the guarded client under a global
//! in-flight bound and per-host limits, and writes back what became of them.
//!
//! Three kinds of tasks:
//! - the *leaser* (one) waits for in-flight room, leases that many due pixels, and spawns one *send* each; it
//!   sleeps until the next due time, a poll interval, or an enqueue's wake-up;
//! - a *send* expands the pixel's macros, waits for its host's turn ([`host`]), GETs the URL with the per-send
//!   timeout, and classifies the result ([`retry`]);
//! - the *writer* (one) commits the outcomes in batches (one store transaction for many sends).
//!
//! A pixel is removed only once its outcome is committed: a crash anywhere before leaves it leased, and it is
//! sent again when the lease runs out (at-least-once). Shutdown stops leasing, waits up to
//! `drain_timeout_ms` for the sends in flight, and commits their outcomes.

mod host;
mod retry;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use interlude_outbound::{GuardedClient, Kind, Url};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::config::OutboxConfig;
use crate::error::{Error, Result};
use crate::expand::{Expansion, Firing, expand};
use crate::metrics as m;
use crate::pixel::Pixel;
use crate::store::{Enqueued, Leased, OutboxStore, Outcome, RedbStore};
use host::Hosts;
use retry::{Verdict, backoff, classify};

/// How often the leaser prunes old keys, dead letters and idle hosts, and samples the queue depth.
const MAINTENANCE_EVERY: Duration = Duration::from_secs(30);
/// Outcomes committed per store transaction at most.
const WRITE_BATCH: usize = 1024;

/// The outbox: a queue of pixels and the tasks that fire them. Dropping it without [`Outbox::shutdown`] stops
/// the tasks at their next await; what was in flight is sent again after the lease.
pub struct Outbox<S: OutboxStore> {
    shared: Arc<Shared<S>>,
    leaser: Option<JoinHandle<()>>,
    writer: Option<JoinHandle<()>>,
}

impl<S: OutboxStore> std::fmt::Debug for Outbox<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox").finish_non_exhaustive()
    }
}

struct Shared<S> {
    store: Arc<S>,
    config: OutboxConfig,
    expansion: Expansion,
    client: GuardedClient,
    hosts: Hosts,
    /// In-flight bound; a send holds one permit from lease to outcome.
    room: Arc<Semaphore>,
    /// Ids being sent, so that a lease that ran out during a long wait does not send a pixel twice here.
    in_flight: Mutex<HashSet<u64>>,
    wake: Notify,
    stopping: AtomicBool,
    stop: watch::Sender<bool>,
    outcomes: mpsc::UnboundedSender<Msg>,
}

enum Msg {
    Outcome(Outcome, &'static str),
    Flush(oneshot::Sender<()>),
}

/// What [`Outbox::shutdown`] left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drained {
    /// Sends still in flight when `drain_timeout_ms` ran out (sent again after the restart).
    pub abandoned: usize,
}

impl Outbox<RedbStore> {
    /// Opens the redb queue at `config.path` and starts firing. Call inside a tokio runtime.
    pub fn open(config: OutboxConfig, client: GuardedClient) -> Result<Outbox<RedbStore>> {
        let store = RedbStore::open(&config.path)?;
        Outbox::start(config, Arc::new(store), client)
    }
}

impl<S: OutboxStore> Outbox<S> {
    /// Starts firing what `store` holds, through `client` (whose guard, TLS trust and body cap apply; the
    /// per-send timeout is `config.timeout_ms`). Call inside a tokio runtime.
    pub fn start(config: OutboxConfig, store: Arc<S>, client: GuardedClient) -> Result<Outbox<S>> {
        config.validate()?;
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            store,
            expansion: Expansion::from_config(&config),
            room: Arc::new(Semaphore::new(config.max_in_flight)),
            config,
            client,
            hosts: Hosts::default(),
            in_flight: Mutex::new(HashSet::new()),
            wake: Notify::new(),
            stopping: AtomicBool::new(false),
            stop: watch::channel(false).0,
            outcomes: tx,
        });
        let writer = tokio::spawn(write_outcomes(Arc::clone(&shared), rx));
        let leaser = tokio::spawn(lease_and_send(Arc::clone(&shared)));
        Ok(Outbox {
            shared,
            leaser: Some(leaser),
            writer: Some(writer),
        })
    }

    /// Queues `pixels` (durably, deduplicated) and wakes the dispatcher; one answer per pixel, in order.
    pub async fn enqueue(&self, pixels: Vec<Pixel>) -> Result<Vec<Enqueued>> {
        let answers = self.enqueue_due(pixels, SystemTime::now()).await?;
        if answers.iter().any(|a| matches!(a, Enqueued::Queued(_))) {
            self.shared.wake.notify_one();
        }
        Ok(answers)
    }

    /// Queues `pixels` (durably, deduplicated) to fire only once `hold` has passed, unless
    /// [`Outbox::release`]d sooner or [`Outbox::cancel`]led: for pixels whose firing depends on an outcome not
    /// known yet (a beacon not yet counted), so a crash before the outcome still fires them (at-least-once),
    /// late. One answer per pixel, in order.
    pub async fn enqueue_held(&self, pixels: Vec<Pixel>, hold: Duration) -> Result<Vec<Enqueued>> {
        // Queued as of the end of the hold: the store takes that as the due time (and, harmlessly, as the
        // deduplication key's time).
        self.enqueue_due(pixels, SystemTime::now() + hold).await
    }

    async fn enqueue_due(&self, pixels: Vec<Pixel>, due: SystemTime) -> Result<Vec<Enqueued>> {
        if self.shared.stopping.load(Ordering::SeqCst) {
            return Err(Error::Closed);
        }
        let events: Vec<&'static str> = pixels.iter().map(|p| p.event.as_str()).collect();
        let answers = self
            .shared
            .store
            .enqueue(pixels, due)
            .await
            .inspect_err(|_| {
                metrics::counter!(m::STORE_ERRORS_TOTAL, "op" => "enqueue").increment(1)
            })?;
        for (event, answer) in events.into_iter().zip(&answers) {
            match answer {
                Enqueued::Queued(_) => metrics::counter!(m::ENQUEUED_TOTAL, "event" => event),
                Enqueued::Duplicate => metrics::counter!(m::DUPLICATES_TOTAL, "event" => event),
            }
            .increment(1);
        }
        Ok(answers)
    }

    /// Makes held pixels (ids from [`Outbox::enqueue_held`]) due now and wakes the dispatcher. An id no longer
    /// queued is ignored.
    pub async fn release(&self, ids: Vec<u64>) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let now = SystemTime::now();
        let outcomes = ids
            .into_iter()
            .map(|id| Outcome::Defer { id, due: now })
            .collect();
        self.complete(outcomes, "release").await?;
        self.shared.wake.notify_one();
        Ok(())
    }

    /// Gives up held pixels (ids from [`Outbox::enqueue_held`], with the pixels) without firing them: they go
    /// to the dead letters with `reason`, where an operator sees what was not fired and why.
    pub async fn cancel(&self, held: Vec<(u64, Pixel)>, reason: &str) -> Result<()> {
        if held.is_empty() {
            return Ok(());
        }
        for (_, pixel) in &held {
            metrics::counter!(m::DEAD_LETTERED_TOTAL, "event" => pixel.event.as_str(), "reason" => "cancelled")
                .increment(1);
        }
        let outcomes = held
            .into_iter()
            .map(|(id, pixel)| Outcome::Dead {
                id,
                pixel: Box::new(pixel),
                attempts: 0,
                reason: reason.to_owned(),
            })
            .collect();
        self.complete(outcomes, "cancel").await
    }

    async fn complete(&self, outcomes: Vec<Outcome>, op: &'static str) -> Result<()> {
        self.shared
            .store
            .complete(outcomes, SystemTime::now())
            .await
            .inspect_err(|_| metrics::counter!(m::STORE_ERRORS_TOTAL, "op" => op).increment(1))
    }

    /// The store, e.g. to read the dead letters or the depth.
    pub fn store(&self) -> &Arc<S> {
        &self.shared.store
    }

    /// Stops taking pixels, waits up to `drain_timeout_ms` for the sends in flight and commits their outcomes.
    pub async fn shutdown(mut self) -> Drained {
        let shared = Arc::clone(&self.shared);
        shared.stopping.store(true, Ordering::SeqCst);
        shared.stop.send_replace(true);
        if let Some(leaser) = self.leaser.take() {
            let _ = leaser.await;
        }
        let all = u32::try_from(shared.config.max_in_flight).unwrap_or(u32::MAX);
        let drain = Duration::from_millis(shared.config.drain_timeout_ms);
        let drained = tokio::time::timeout(drain, shared.room.acquire_many(all)).await;
        let abandoned = match drained {
            Ok(_) => 0,
            Err(_) => shared.config.max_in_flight - shared.room.available_permits(),
        };
        let (done, flushed) = oneshot::channel();
        if shared.outcomes.send(Msg::Flush(done)).is_ok() {
            let _ = flushed.await;
        }
        if let Some(writer) = self.writer.take() {
            writer.abort();
        }
        info!(abandoned, "Outbox stopped.");
        Drained { abandoned }
    }
}

impl<S: OutboxStore> Drop for Outbox<S> {
    fn drop(&mut self) {
        for task in [self.leaser.take(), self.writer.take()]
            .into_iter()
            .flatten()
        {
            task.abort();
        }
    }
}

async fn lease_and_send<S: OutboxStore>(shared: Arc<Shared<S>>) {
    let poll = Duration::from_millis(shared.config.poll_ms);
    let mut stop = shared.stop.subscribe();
    let mut maintained = tokio::time::Instant::now();
    maintain(&shared).await;
    while !*stop.borrow_and_update() {
        // Room for at least one send, then as much more as is free, up to a batch.
        let first = tokio::select! {
            permit = Arc::clone(&shared.room).acquire_owned() => permit,
            _ = stop.changed() => return,
        };
        let Ok(first) = first else { return };
        let mut permits = vec![first];
        while permits.len() < shared.config.batch {
            match Arc::clone(&shared.room).try_acquire_owned() {
                Ok(p) => permits.push(p),
                Err(_) => break,
            }
        }
        let wanted = permits.len();
        let leased = match shared
            .store
            .lease(SystemTime::now(), wanted, shared.config.lease())
            .await
        {
            Ok(leased) => leased,
            Err(e) => {
                metrics::counter!(m::STORE_ERRORS_TOTAL, "op" => "lease").increment(1);
                warn!(error = %e, "Outbox lease failed; retrying.");
                drop(permits);
                sleep_or_wake(&shared, &mut stop, poll).await;
                continue;
            }
        };
        let got = leased.len();
        for item in leased {
            let fresh = shared
                .in_flight
                .lock()
                .map(|mut ids| ids.insert(item.id))
                .unwrap_or(true);
            if !fresh {
                continue;
            }
            let Some(permit) = permits.pop() else { break };
            metrics::gauge!(m::IN_FLIGHT).increment(1.0);
            tokio::spawn(send(Arc::clone(&shared), item, permit));
        }
        drop(permits);
        if maintained.elapsed() >= MAINTENANCE_EVERY {
            maintained = tokio::time::Instant::now();
            maintain(&shared).await;
        }
        if got < wanted {
            let until_due = match shared.store.next_due().await {
                Ok(Some(due)) => due
                    .duration_since(SystemTime::now())
                    .unwrap_or(Duration::ZERO),
                _ => poll,
            };
            sleep_or_wake(&shared, &mut stop, until_due.min(poll)).await;
        }
    }
}

async fn sleep_or_wake<S>(shared: &Shared<S>, stop: &mut watch::Receiver<bool>, at_most: Duration) {
    if at_most.is_zero() {
        return;
    }
    tokio::select! {
        () = shared.wake.notified() => {}
        () = tokio::time::sleep(at_most) => {}
        _ = stop.changed() => {}
    }
}

async fn maintain<S: OutboxStore>(shared: &Shared<S>) {
    let now = SystemTime::now();
    let keys_before = now
        .checked_sub(Duration::from_secs(shared.config.dedup_retention_secs))
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let dead_before = now
        .checked_sub(Duration::from_secs(
            shared.config.dead_letter_retention_secs,
        ))
        .unwrap_or(SystemTime::UNIX_EPOCH);
    match shared.store.prune(keys_before, dead_before).await {
        Ok(p) if p.keys + p.dead > 0 => debug!(keys = p.keys, dead = p.dead, "Outbox pruned."),
        Ok(_) => {}
        Err(e) => {
            metrics::counter!(m::STORE_ERRORS_TOTAL, "op" => "prune").increment(1);
            warn!(error = %e, "Outbox prune failed.");
        }
    }
    if let Ok(depth) = shared.store.depth().await {
        metrics::gauge!(m::QUEUE_DEPTH).set(depth as f64);
    }
    shared.hosts.forget_idle();
}

/// `host` and `host:port` of a URL, for the per-host limits.
fn host_of(url: &str) -> Option<(String, String)> {
    let url = Url::parse(url).ok()?;
    let host = url.host_str()?.to_owned();
    let port = url.port_or_known_default()?;
    // `host_str` keeps the brackets of an IPv6 literal.
    let host_port = format!("{host}:{port}");
    Some((host, host_port))
}

async fn send<S: OutboxStore>(shared: Arc<Shared<S>>, item: Leased, permit: OwnedSemaphorePermit) {
    let config = &shared.config;
    let event = item.pixel.event.as_str();
    let fire = expand(
        &item.pixel,
        Firing {
            at: SystemTime::now(),
            cachebuster: fastrand::u32(..),
        },
        &shared.expansion,
    );
    let attempts = item.attempts.saturating_add(1);
    let outcome = match host_of(&fire.url) {
        None => Outcome::Dead {
            id: item.id,
            pixel: Box::new(item.pixel),
            attempts,
            reason: format!("invalid URL {}", interlude_outbound::redact(&fire.url)),
        },
        Some((host, host_port)) => {
            let limits = shared.hosts.get(config, &host, &host_port);
            match limits.turn(config.max_waiting_per_host).await {
                None => {
                    metrics::counter!(m::DEFERRED_TOTAL).increment(1);
                    Outcome::Defer {
                        id: item.id,
                        due: SystemTime::now() + Duration::from_millis(config.defer_ms),
                    }
                }
                Some(turn) => {
                    let started = tokio::time::Instant::now();
                    let mut request = shared
                        .client
                        .get(&fire.url, Kind::Pixel)
                        .timeout(config.timeout());
                    for (name, value) in fire.headers {
                        request = request.header(name, value);
                    }
                    let result = request.send_for_status().await;
                    drop(turn);
                    metrics::histogram!(m::SEND_DURATION_SECONDS, "host" => host_port)
                        .record(started.elapsed().as_secs_f64());
                    outcome_of(config, item, attempts, classify(&result))
                }
            }
        }
    };
    let _ = shared.outcomes.send(Msg::Outcome(outcome, event));
    // The permit goes back once the outcome is queued for the writer; the id leaves `in_flight` on commit.
    drop(permit);
    metrics::gauge!(m::IN_FLIGHT).decrement(1.0);
}

fn outcome_of(config: &OutboxConfig, item: Leased, attempts: u32, verdict: Verdict) -> Outcome {
    match verdict {
        Verdict::Delivered => Outcome::Delivered { id: item.id },
        Verdict::Reject { error } => {
            metrics::counter!(m::FAILED_TOTAL, "reason" => reject_label(&error)).increment(1);
            Outcome::Dead {
                id: item.id,
                pixel: Box::new(item.pixel),
                attempts,
                reason: format!("rejected: {error}"),
            }
        }
        Verdict::Retry { label, error } => {
            metrics::counter!(m::FAILED_TOTAL, "reason" => label).increment(1);
            if attempts >= config.max_attempts {
                Outcome::Dead {
                    id: item.id,
                    pixel: Box::new(item.pixel),
                    attempts,
                    reason: format!("{attempts} attempts, last: {error}"),
                }
            } else {
                let delay = backoff(
                    attempts,
                    Duration::from_millis(config.backoff_base_ms),
                    Duration::from_millis(config.backoff_max_ms),
                    fastrand::f64(),
                );
                Outcome::Retry {
                    id: item.id,
                    attempts,
                    due: SystemTime::now() + delay,
                    error,
                }
            }
        }
    }
}

fn reject_label(error: &str) -> &'static str {
    if error.starts_with("HTTP 4") {
        "4xx"
    } else if error.starts_with("refused") {
        "refused"
    } else {
        "invalid"
    }
}

async fn write_outcomes<S: OutboxStore>(
    shared: Arc<Shared<S>>,
    mut rx: mpsc::UnboundedReceiver<Msg>,
) {
    let mut batch: Vec<(Outcome, &'static str)> = Vec::new();
    let mut flushes = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Outcome(o, event) => batch.push((o, event)),
                Msg::Flush(done) => flushes.push(done),
            }
            if batch.len() < WRITE_BATCH {
                next = rx.try_recv().ok();
            }
        }
        commit(&shared, &mut batch).await;
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
    }
}

/// Commits `batch`, retrying until the store takes it (outcomes are not dropped: a lost one means a resend).
async fn commit<S: OutboxStore>(shared: &Shared<S>, batch: &mut Vec<(Outcome, &'static str)>) {
    if batch.is_empty() {
        return;
    }
    let outcomes: Vec<Outcome> = batch.iter().map(|(o, _)| o.clone()).collect();
    let mut delay = Duration::from_millis(50);
    loop {
        match shared
            .store
            .complete(outcomes.clone(), SystemTime::now())
            .await
        {
            Ok(()) => break,
            Err(e) => {
                metrics::counter!(m::STORE_ERRORS_TOTAL, "op" => "complete").increment(1);
                warn!(error = %e, "Outbox could not record send outcomes; retrying.");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
    if let Ok(mut ids) = shared.in_flight.lock() {
        for (o, _) in batch.iter() {
            ids.remove(&o.id());
        }
    }
    for (o, event) in batch.drain(..) {
        match o {
            Outcome::Delivered { .. } => {
                metrics::counter!(m::FIRED_TOTAL, "event" => event).increment(1)
            }
            Outcome::Retry { .. } => {
                metrics::counter!(m::RETRIED_TOTAL, "event" => event).increment(1)
            }
            Outcome::Defer { .. } => {}
            Outcome::Dead { reason, .. } => {
                let why = if reason.starts_with("rejected") || reason.starts_with("invalid") {
                    "rejected"
                } else {
                    "exhausted"
                };
                metrics::counter!(m::DEAD_LETTERED_TOTAL, "event" => event, "reason" => why)
                    .increment(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_keyed_with_their_port() {
        assert_eq!(
            host_of("https://ads.example.com/i?x=1"),
            Some(("ads.example.com".into(), "ads.example.com:443".into()))
        );
        assert_eq!(
            host_of("http://127.0.0.1:8080/"),
            Some(("127.0.0.1".into(), "127.0.0.1:8080".into()))
        );
        assert_eq!(
            host_of("https://[2001:db8::1]/"),
            Some(("[2001:db8::1]".into(), "[2001:db8::1]:443".into()))
        );
        assert_eq!(host_of("not a url"), None);
    }
}
