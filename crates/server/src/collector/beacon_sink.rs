//! The stitcher's server-side beacons into the pipeline ([`PipelineBeaconSink`]), and the third parties'
//! pixels of those the pipeline counted into the outbox.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use interlude_events::contract::AdEvent;
use interlude_events::{Envelope, Outcome};
use interlude_outbox::{Enqueued, Pixel};
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
/// With an outbox, each beacon carries the third parties' pixels it stands for. They are queued (durably,
/// held) before the beacon is submitted and released once it is stored: a pixel fires once per (ad instance,
/// event, URL) whichever report of the event came first (a segment fetched again, another rendition's
/// segment, the player's own beacon), by the outbox's deduplication, shared by every node in PostgreSQL in
/// distributed mode; a quarantined beacon's pixels are cancelled. Queueing first is what makes them
/// at-least-once: a crash after the beacon is stored cannot lose them, it only delays them to the hold's end.
pub struct PipelineBeaconSink {
    tx: mpsc::Sender<(Envelope, Vec<Pixel>)>,
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

/// Beacons buffered at most while the store catches up.
const BEACON_BUFFER: usize = 100_000;
/// Beacons per submitted batch at most.
const BEACON_BATCH: usize = 2_000;
/// How long a beacon's pixels wait, queued, for its outcome before firing anyway, beyond the longest a batch
/// waits for a busy store (`events.beacon_wait_secs`): a crash delays a third party's pixel by about that, a
/// slow store never makes one fire before its beacon's outcome is known.
const PIXEL_HOLD_MARGIN: Duration = Duration::from_secs(30);

/// Where batches go: the embedded store's committer, or any event log (Kafka in distributed mode).
struct Target {
    log: Arc<dyn EventLog>,
    committer: Option<Committer>,
    wait: Duration,
    outbox: Option<Arc<PixelOutbox>>,
}

impl Target {
    /// Submits `batch`, waiting for a busy or unhealthy store until `deadline`; counts and logs a loss. The
    /// beacons' pixels are queued first, held (the wait and [`PIXEL_HOLD_MARGIN`]); once the batch's outcomes
    /// are known, those of the beacons the pipeline took (counted, logged for a distributed count, or a report
    /// of an event counted already) are released to fire now and those of quarantined beacons are cancelled.
    /// A crash between the two still fires them, when the hold ends: the pixels of a stored beacon are never
    /// lost.
    async fn submit(&self, batch: Vec<(Envelope, Vec<Pixel>)>, deadline: Instant) {
        let n = batch.len();
        let (envelopes, pixels): (Vec<Envelope>, Vec<Vec<Pixel>>) = batch.into_iter().unzip();
        let held = self.hold(pixels).await;
        let result = match &self.committer {
            Some(committer) => committer.submit_wait(envelopes, deadline).await,
            None => self.append_wait(envelopes, deadline).await,
        };
        let outcomes = match result {
            Ok(outcomes) => outcomes,
            Err(e) => {
                metrics::counter!(crate::telemetry::metrics::STITCHER_BEACONS_LOST)
                    .increment(n as u64);
                // The segments were served: their pixels still fire, when the hold ends.
                tracing::warn!(error = %e, beacons = n, "Server-side beacons not stored.");
                return;
            }
        };
        let Some(outbox) = &self.outbox else { return };
        let (mut release, mut cancel) = (Vec::new(), Vec::new());
        for (outcome, pixels) in outcomes.iter().zip(held) {
            match outcome {
                Outcome::Quarantined(_) => cancel.extend(pixels),
                _ => release.extend(pixels.into_iter().map(|(id, _)| id)),
            }
        }
        if let Err(e) = outbox.release(release).await {
            tracing::warn!(error = %e, "Held pixels of counted beacons not released; they fire when the hold ends.");
        }
        if let Err(e) = outbox.cancel(cancel, "beacon quarantined").await {
            tracing::warn!(error = %e, "Held pixels of quarantined beacons not cancelled.");
        }
    }

    /// Queues each beacon's pixels held; per beacon, the ids (and pixels) queued. A pixel seen before (the same
    /// ad instance, event and URL) is queued once; a pixel the outbox could not take is logged and counted
    /// (`outbox_store_errors_total`) and not fired.
    async fn hold(&self, pixels: Vec<Vec<Pixel>>) -> Vec<Vec<(u64, Pixel)>> {
        let Some(outbox) = &self.outbox else {
            return pixels.iter().map(|_| Vec::new()).collect();
        };
        let sizes: Vec<usize> = pixels.iter().map(Vec::len).collect();
        let all: Vec<Pixel> = pixels.into_iter().flatten().collect();
        let answers = match outbox
            .enqueue_held(all.clone(), self.wait + PIXEL_HOLD_MARGIN)
            .await
        {
            Ok(answers) => answers,
            Err(e) => {
                tracing::warn!(error = %e, pixels = all.len(), "Third-party pixels of server-side beacons not queued.");
                Vec::new()
            }
        };
        let mut queued = all
            .into_iter()
            .zip(
                answers
                    .into_iter()
                    .chain(std::iter::repeat(Enqueued::Duplicate)),
            )
            .map(|(pixel, answer)| match answer {
                Enqueued::Queued(id) => Some((id, pixel)),
                Enqueued::Duplicate => None,
            });
        sizes
            .into_iter()
            .map(|k| queued.by_ref().take(k).flatten().collect())
            .collect()
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use chrono::{TimeDelta, Utc};
    use interlude_events::{EventSource, EventType};
    use interlude_outbox::{OutboxConfig, PixelEvent};

    use crate::collector::EventsConfig;

    /// A pixel server on loopback counting hits per path.
    async fn pixel_server() -> (String, Arc<Mutex<Vec<String>>>) {
        let hits: Arc<Mutex<Vec<String>>> = Arc::default();
        let seen = hits.clone();
        let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(uri.path().to_owned());
                axum::http::StatusCode::NO_CONTENT
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (base, hits)
    }

    /// The server's beacon fires its pixels whoever reported the event first (the player's own report
    /// counted before it, or the same segment fetched twice: once); a quarantined beacon's pixels go to the
    /// dead letters unfired.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pixels_fire_once_per_event_whoever_reported_it_first_and_never_for_a_quarantined_beacon()
     {
        let (base, hits) = pixel_server().await;
        let dir = tempfile::tempdir().unwrap();
        let now = Utc::now();
        let collector = Collector::open(
            &EventsConfig {
                data_dir: dir.path().join("events"),
                ..EventsConfig::default()
            },
            Arc::new(move || now),
        )
        .unwrap();
        let client = interlude_outbound::GuardedClient::new(&interlude_outbound::OutboundConfig {
            allow: vec!["127.0.0.0/8".into()],
            ..interlude_outbound::OutboundConfig::default()
        })
        .unwrap();
        let outbox = Arc::new(
            PixelOutbox::embedded(
                &OutboxConfig::default(),
                &dir.path().join("outbox.redb"),
                client,
            )
            .unwrap(),
        );
        let sink = PipelineBeaconSink::with_outbox(&collector, Some(outbox.clone()));
        let ids = AtomicUsize::new(0);
        let event = |instance: &str, source: EventSource| {
            let id = format!("e{}", ids.fetch_add(1, Ordering::Relaxed));
            interlude_events::testing::event(id, instance, EventType::Impression, source, now, 0)
        };
        let pixel = |instance: &str, path: &str| {
            vec![Pixel::new(
                instance,
                PixelEvent::Impression,
                format!("{base}{path}"),
            )]
        };
        // a: the player's report is counted first; the server's beacon of it comes second.
        let first = collector
            .log
            .append(vec![Envelope {
                event: event("ai-a", EventSource::ClientSide),
                user_agent: None,
                ip: None,
            }])
            .await
            .unwrap();
        assert!(matches!(first[0], Outcome::Counted { .. }), "{first:?}");
        sink.emit_with_pixels(event("ai-a", EventSource::ServerSide), pixel("ai-a", "/a"));
        // b: its segment fetched twice (both renditions).
        for _ in 0..2 {
            sink.emit_with_pixels(event("ai-b", EventSource::ServerSide), pixel("ai-b", "/b"));
        }
        // c: from the future, quarantined.
        let mut future = event("ai-c", EventSource::ServerSide);
        future.occurred_at = now + TimeDelta::days(1);
        sink.emit_with_pixels(future, pixel("ai-c", "/c"));
        sink.close().await;

        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while hits.lock().unwrap().len() < 2 {
            assert!(
                std::time::Instant::now() < deadline,
                "{:?}",
                hits.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let dead = outbox.dead_letters(10).await.unwrap();
        outbox.shutdown().await;
        collector.shutdown().await.unwrap();
        let mut got = hits.lock().unwrap().clone();
        got.sort();
        assert_eq!(got, ["/a", "/b"]);
        assert_eq!(dead.len(), 1, "{dead:?}");
        assert!(dead[0].pixel.url_template.ends_with("/c"), "{dead:?}");
        assert_eq!(dead[0].reason, "beacon quarantined");
    }
}
