//! The stitcher's server-side beacons into the pipeline ([`PipelineBeaconSink`]), and the third parties'
//! pixels of those the pipeline counted into the outbox.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use interlude_events::contract::AdEvent;
use interlude_events::{Envelope, Outcome};
use interlude_outbox::Pixel;
use interlude_store::{Committer, EventLog, SubmitError};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::Collector;
use crate::pixels::PixelOutbox;
use crate::stitcher::beacons::BeaconSink;

/// Feeds the stitcher's server-side beacons into the pipeline without blocking the segment request: beacons go
/// into a bounded buffer, and one task submits what has gathered as one batch (a break start for a large
/// audience is thousands of beacons a second, which would otherwise be thousands of tiny batches).
///
/// A beacon is a billing record nobody will send again (the player fetched its segment; there is no client
/// retry), so a batch the store turns away — busy, or unhealthy while the committer reopens the file after a
/// full disk — is not dropped but submitted again until `events.beacon_wait_secs` has passed. With the
/// embedded store that is [`Committer::submit_wait`], the store's way to submit durably with back-pressure:
/// the one submitting task waits, so the buffer absorbs the stall, and the segment request never does (a
/// viewer's video must not wait for the event store). Only a full buffer or a batch still refused at its
/// deadline loses beacons, and each loss is counted (`stitcher_beacons_lost_total`,
/// `events_submit_wait_timeouts_total`) and logged. [`PipelineBeaconSink::close`] drains the buffer at
/// shutdown.
///
/// With an outbox, each beacon carries the third parties' pixels it stands for, and those of the beacons the
/// pipeline *counted* are queued for firing once their batch is stored: a segment fetched again is the same
/// report (a retry) and a report of an event already counted (the player's own beacon, another rendition's
/// segment) a duplicate, and neither fires anything; a quarantined beacon fires nothing either. With a
/// distributed log the count happens downstream, so a logged beacon's pixels are queued, and the outbox's
/// deduplication by (ad instance, event, URL), shared by every node in PostgreSQL, keeps it to one firing.
pub struct PipelineBeaconSink {
    tx: mpsc::Sender<(Envelope, Vec<Pixel>)>,
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

/// Beacons buffered at most while the store catches up.
const BEACON_BUFFER: usize = 100_000;
/// Beacons per submitted batch at most.
const BEACON_BATCH: usize = 2_000;

/// Where batches go: the embedded store's committer, or any event log (Kafka in distributed mode).
struct Target {
    log: Arc<dyn EventLog>,
    committer: Option<Committer>,
    wait: Duration,
    outbox: Option<Arc<PixelOutbox>>,
}

impl Target {
    /// Submits `batch`, waiting for a busy or unhealthy store until `deadline`; counts and logs a loss. Then
    /// queues the pixels of the beacons that counted.
    async fn submit(&self, batch: Vec<(Envelope, Vec<Pixel>)>, deadline: Instant) {
        let n = batch.len();
        let (envelopes, pixels): (Vec<Envelope>, Vec<Vec<Pixel>>) = batch.into_iter().unzip();
        let result = match &self.committer {
            Some(committer) => committer.submit_wait(envelopes, deadline).await,
            None => self.append_wait(envelopes, deadline).await,
        };
        let outcomes = match result {
            Ok(outcomes) => outcomes,
            Err(e) => {
                metrics::counter!(crate::telemetry::metrics::STITCHER_BEACONS_LOST)
                    .increment(n as u64);
                tracing::warn!(error = %e, beacons = n, "Server-side beacons not stored.");
                return;
            }
        };
        let Some(outbox) = &self.outbox else { return };
        let fire: Vec<Pixel> = outcomes
            .iter()
            .zip(pixels)
            .filter(|(outcome, _)| matches!(outcome, Outcome::Counted { .. } | Outcome::Logged))
            .flat_map(|(_, pixels)| pixels)
            .collect();
        if fire.is_empty() {
            return;
        }
        let queued = fire.len();
        // The beacon is stored and counted already; a pixel not queued now is not fired (the failure is
        // counted in `outbox_store_errors_total`).
        if let Err(e) = outbox.enqueue(fire).await {
            tracing::warn!(error = %e, pixels = queued, "Third-party pixels of counted beacons not queued.");
        }
    }

    /// What [`Committer::submit_wait`] does, for an event log without a committer: retry with backoff while
    /// the log is busy, until `deadline`.
    async fn append_wait(
        &self,
        batch: Vec<Envelope>,
        deadline: Instant,
    ) -> Result<Vec<Outcome>, SubmitError> {
        let mut delay = Duration::from_millis(10);
        loop {
            match self.log.append(batch.clone()).await {
                Ok(outcomes) => return Ok(outcomes),
                Err(SubmitError::Busy) if Instant::now() + delay < deadline => {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(1));
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl PipelineBeaconSink {
    /// A sink into `collector`'s pipeline (spawns its submitting task); beacons' pixels are dropped.
    pub fn new(collector: &Collector) -> Self {
        Self::with_outbox(collector, None)
    }

    /// A sink into `collector`'s pipeline that queues the pixels of counted beacons in `outbox` (spawns its
    /// submitting task).
    pub fn with_outbox(collector: &Collector, outbox: Option<Arc<PixelOutbox>>) -> Self {
        let (tx, mut rx) = mpsc::channel::<(Envelope, Vec<Pixel>)>(BEACON_BUFFER);
        let (stop, mut stopped) = watch::channel(false);
        let target = Target {
            log: collector.log.clone(),
            committer: collector.committer.clone(),
            wait: collector.beacon_wait,
            outbox,
        };
        let task = tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BEACON_BATCH);
            // Once closing, the whole drain shares one deadline, so an unhealthy store cannot hold shutdown
            // for one wait per batch.
            let mut drain_deadline: Option<Instant> = None;
            loop {
                let n = match drain_deadline {
                    Some(_) => rx.recv_many(&mut batch, BEACON_BATCH).await,
                    None => tokio::select! {
                        // `recv_many` is cancel safe: nothing received is lost when the stop wins.
                        n = rx.recv_many(&mut batch, BEACON_BATCH) => n,
                        _ = stopped.wait_for(|s| *s) => {
                            // Later beacons are refused (and counted lost); what is buffered is still stored.
                            rx.close();
                            drain_deadline = Some(Instant::now() + target.wait);
                            continue;
                        }
                    },
                };
                if n == 0 {
                    break;
                }
                let deadline = drain_deadline.unwrap_or_else(|| Instant::now() + target.wait);
                target.submit(std::mem::take(&mut batch), deadline).await;
                batch.reserve(BEACON_BATCH);
            }
        });
        PipelineBeaconSink {
            tx,
            stop,
            task: Mutex::new(Some(task)),
        }
    }

    /// Stops taking beacons and returns once every buffered one has been submitted (stored, or counted lost
    /// after `events.beacon_wait_secs`) and the pixels of those counted are queued. Shutdown calls it after
    /// the HTTP server has drained, before the store's committer and the outbox shut down, so the last
    /// segments' beacons are committed and their pixels queued too.
    pub async fn close(&self) {
        self.stop.send_replace(true);
        let task = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "The server-side beacon task failed.");
            }
        }
    }
}

impl BeaconSink for PipelineBeaconSink {
    fn emit(&self, event: AdEvent) {
        self.emit_with_pixels(event, Vec::new());
    }

    fn emit_with_pixels(&self, event: AdEvent, pixels: Vec<Pixel>) {
        metrics::counter!(crate::telemetry::metrics::STITCHER_SERVER_BEACONS, "event" => event.event_type.as_str())
            .increment(1);
        let envelope = Envelope {
            event,
            user_agent: None,
            ip: None,
        };
        if self.tx.try_send((envelope, pixels)).is_err() {
            metrics::counter!(crate::telemetry::metrics::STITCHER_BEACONS_LOST).increment(1);
            tracing::warn!("Server-side beacon buffer full or closed; beacon not stored.");
        }
    }
}
