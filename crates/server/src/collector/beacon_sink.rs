//! The stitcher's server-side beacons into the pipeline ([`PipelineBeaconSink`]).

use interlude_events::Envelope;
use interlude_events::contract::AdEvent;
use interlude_store::SubmitError;

use super::Collector;
use crate::stitcher::beacons::BeaconSink;

/// Feeds the stitcher's server-side beacons into the pipeline without blocking the segment request: beacons go
/// into a bounded buffer, and one task submits what has gathered as one batch (a break start for a large
/// audience is thousands of beacons a second, which would otherwise be thousands of tiny batches). A batch the
/// store turns away as busy is retried; only a full buffer loses beacons, and each loss is counted and logged.
pub struct PipelineBeaconSink {
    tx: tokio::sync::mpsc::Sender<Envelope>,
}

/// Beacons buffered at most while the store catches up.
const BEACON_BUFFER: usize = 100_000;
/// Beacons per submitted batch at most.
const BEACON_BATCH: usize = 2_000;

impl PipelineBeaconSink {
    /// A sink into `collector`'s pipeline (spawns its submitting task).
    pub fn new(collector: &Collector) -> Self {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Envelope>(BEACON_BUFFER);
        let log = collector.log.clone();
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BEACON_BATCH);
            while rx.recv_many(&mut batch, BEACON_BATCH).await > 0 {
                let mut delay = std::time::Duration::from_millis(10);
                loop {
                    match log.append(batch.clone()).await {
                        Ok(_) => break,
                        Err(SubmitError::Busy) if delay < std::time::Duration::from_secs(5) => {
                            tokio::time::sleep(delay).await;
                            delay *= 2;
                        }
                        Err(e) => {
                            metrics::counter!(crate::telemetry::metrics::STITCHER_BEACONS_LOST)
                                .increment(batch.len() as u64);
                            tracing::warn!(error = %e, beacons = batch.len(), "Server-side beacons not stored.");
                            break;
                        }
                    }
                }
                batch.clear();
            }
        });
        PipelineBeaconSink { tx }
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
            tracing::warn!("Server-side beacon buffer full; beacon not stored.");
        }
    }
}
