//! The stitcher's server-side beacons into the pipeline ([`PipelineBeaconSink`]).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use interlude_events::Envelope;
use interlude_events::contract::AdEvent;
use interlude_store::{Committer, EventLog, SubmitError};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::Collector;
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
pub struct PipelineBeaconSink {
    tx: mpsc::Sender<Envelope>,
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
}

impl Target {
    /// Submits `batch`, waiting for a busy or unhealthy store until `deadline`; counts and logs a loss.
    async fn submit(&self, batch: Vec<Envelope>, deadline: Instant) {
        let n = batch.len();
        let result = match &self.committer {
            Some(committer) => committer.submit_wait(batch, deadline).await.map(drop),
            None => self.append_wait(batch, deadline).await,
        };
        if let Err(e) = result {
            metrics::counter!(crate::telemetry::metrics::STITCHER_BEACONS_LOST).increment(n as u64);
            tracing::warn!(error = %e, beacons = n, "Server-side beacons not stored.");
        }
    }

    /// What [`Committer::submit_wait`] does, for an event log without a committer: retry with backoff while
    /// the log is busy, until `deadline`.
    async fn append_wait(
        &self,
        batch: Vec<Envelope>,
        deadline: Instant,
    ) -> Result<(), SubmitError> {
        let mut delay = Duration::from_millis(10);
        loop {
            match self.log.append(batch.clone()).await {
                Ok(_) => return Ok(()),
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
    /// A sink into `collector`'s pipeline (spawns its submitting task).
    pub fn new(collector: &Collector) -> Self {
        let (tx, mut rx) = mpsc::channel::<Envelope>(BEACON_BUFFER);
        let (stop, mut stopped) = watch::channel(false);
        let target = Target {
            log: collector.log.clone(),
            committer: collector.committer.clone(),
            wait: collector.beacon_wait,
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
    /// after `events.beacon_wait_secs`). Shutdown calls it after the HTTP server has drained, before the
    /// store's committer shuts down, so the last segments' beacons are committed too.
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
        metrics::counter!(crate::telemetry::metrics::STITCHER_SERVER_BEACONS, "event" => event.event_type.as_str())
            .increment(1);
        let envelope = Envelope {
            event,
            user_agent: None,
            ip: None,
        };
        if self.tx.try_send(envelope).is_err() {
            metrics::counter!(crate::telemetry::metrics::STITCHER_BEACONS_LOST).increment(1);
            tracing::warn!("Server-side beacon buffer full or closed; beacon not stored.");
        }
    }
}
