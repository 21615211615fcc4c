//! The event collector and the reporting endpoints, over the embedded event store or, in distributed mode, the
//! Kafka event log (appends) and PostgreSQL (reports).
//!
//! - `POST /v1/events` — an array of [`AdEvent`]s as JSON, or as MessagePack with `Content-Type:
//!   application/msgpack`; answered after the batch is durably committed (group commit), with what happened to
//!   each; 503 + `Retry-After` when the store is saturated.
//! - `GET /t/{token}` — a tracking pixel: the signed token says which ad instance and event; 204 once stored.
//! - `GET /v1/reports?group_by=line_item&from=…&to=…&format=json|csv` — counts from the one-minute windows.
//! - `GET /v1/ledger` — the billing ledger per line item and hour, with its appended corrections.
//! - `GET /v1/quarantine` — quarantined events per reason.
//!
//! The stitcher's server-side beacons enter the same pipeline through [`PipelineBeaconSink`].

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use interlude_events::Counters;
use interlude_events::contract::AdEvent;
use interlude_events::token::{Keyring, TokenClaims};
use interlude_events::{Envelope, Outcome, Policy};
use interlude_store::Error as StoreError;
use interlude_store::kafka::KafkaLog;
use interlude_store::pg::PgStore;
use interlude_store::redis::RedisCounters;
use interlude_store::{Committer, EventLog, EventStore, GroupBy, ReportStore, Sink, SubmitError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::stitcher::beacons::BeaconSink;

/// The `[events]` configuration section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventsConfig {
    /// Directory of the embedded store (created if missing).
    pub data_dir: PathBuf,
    /// Token signing keys; the last one signs, all verify. Empty: a fixed development key (logged as a warning).
    pub signing_keys: Vec<SigningKey>,
    /// Validation rules.
    pub policy: Policy,
    /// Requests waiting for a commit at most; beyond, the collector answers 503 with Retry-After.
    pub queue_batches: usize,
    /// CPM per line item (currency units per thousand impressions) for spend in reports and the ledger, until
    /// the decision engine's catalog provides prices.
    pub line_item_cpm: std::collections::BTreeMap<String, f64>,
}

/// One token signing key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningKey {
    /// Key id (0–255), carried in every token.
    pub id: u8,
    /// The secret (at least 32 characters).
    pub secret: String,
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig {
            data_dir: PathBuf::from("data/events"),
            signing_keys: Vec::new(),
            policy: Policy::default(),
            queue_batches: interlude_store::committer::DEFAULT_QUEUE,
            line_item_cpm: std::collections::BTreeMap::new(),
        }
    }
}

impl EventsConfig {
    /// The keyring the configuration describes.
    pub fn keyring(&self) -> Keyring {
        let mut keys = self.signing_keys.iter();
        let Some(first) = keys.next() else {
            tracing::warn!(
                "No events.signing_keys configured: using the public development key; tokens are forgeable."
            );
            return Keyring::new(0, b"interlude-development-key-do-not-use".to_vec());
        };
        let mut ring = Keyring::new(first.id, first.secret.as_bytes().to_vec());
        for key in keys {
            ring.rotate(key.id, key.secret.as_bytes().to_vec());
        }
        ring
    }

    /// Checks what types cannot; errors name the key.
    pub fn validate(&self) -> Result<(), crate::error::ConfigError> {
        for (li, cpm) in &self.line_item_cpm {
            if !(cpm.is_finite() && *cpm >= 0.0) {
                return Err(crate::error::ConfigError::new(
                    format!("events.line_item_cpm.{li}"),
                    "must be a non-negative number",
                ));
            }
        }
        for (i, key) in self.signing_keys.iter().enumerate() {
            if key.secret.len() < 32 {
                return Err(crate::error::ConfigError::new(
                    format!("events.signing_keys[{i}].secret"),
                    "must be at least 32 characters",
                ));
            }
        }
        Ok(())
    }
}

/// The collector's shared state.
#[derive(Clone)]
pub struct Collector {
    privacy: Option<Arc<crate::privacy::edge::EdgePrivacy>>,
    shared_counters: Option<Arc<RedisCounters>>,
    reports: Arc<dyn ReportStore>,
    /// The embedded store, when this collector has one (erasure scans it; tests read it).
    embedded: Option<Arc<EventStore>>,
    log: Arc<dyn EventLog>,
    counters: Arc<dyn Counters>,
    keys: Arc<Keyring>,
    clock: interlude_events::Clock,
}

fn prices_of(config: &EventsConfig) -> Arc<dyn interlude_events::Prices> {
    let prices: std::collections::BTreeMap<String, u64> = config
        .line_item_cpm
        .iter()
        .map(|(li, cpm)| (li.clone(), (cpm * 1e6).round() as u64))
        .collect();
    Arc::new(prices)
}

impl Collector {
    /// Opens the store and starts its committer.
    pub fn open(config: &EventsConfig, clock: interlude_events::Clock) -> Result<Self, StoreError> {
        Self::with_sink(config, clock, |store| Sink::Store(store.clone()))
    }

    /// A collector that validates and answers but stores nothing: the baseline of the ingestion benchmark.
    /// Reports of it are empty.
    pub fn discarding(
        config: &EventsConfig,
        clock: interlude_events::Clock,
    ) -> Result<Self, StoreError> {
        Self::with_sink(config, clock, |_| Sink::Discard(config.policy.clone()))
    }

    fn with_sink(
        config: &EventsConfig,
        clock: interlude_events::Clock,
        sink: impl FnOnce(&Arc<EventStore>) -> Sink,
    ) -> Result<Self, StoreError> {
        let store = Arc::new(EventStore::open(&config.data_dir, config.policy.clone())?);
        store.set_prices(prices_of(config));
        let committer = Committer::start_sink(sink(&store), clock.clone(), config.queue_batches);
        Ok(Collector {
            privacy: None,
            shared_counters: None,
            counters: store.clone(),
            reports: store.clone(),
            embedded: Some(store),
            log: Arc::new(committer),
            keys: Arc::new(config.keyring()),
            clock,
        })
    }

    /// A collector of distributed mode: appends to the Kafka event log (creating its topics if needed), reads
    /// reports from PostgreSQL and pacing/frequency counts from Redis.
    pub async fn distributed(
        config: &EventsConfig,
        distributed: &interlude_store::DistributedConfig,
        clock: interlude_events::Clock,
    ) -> Result<Self, StoreError> {
        let pg =
            Arc::new(PgStore::connect(&distributed.postgres_url, config.policy.clone()).await?);
        pg.set_prices(prices_of(config));
        distributed.kafka.ensure_topics().await?;
        let log = KafkaLog::new(&distributed.kafka, config.policy.clone())?;
        let counters = RedisCounters::connect(
            &distributed.redis_url,
            &distributed.key_prefix,
            config.policy.frequency_window_days,
        )
        .await?;
        counters.refresh().await?;
        // Detached: the refresher holds a weak reference and ends with the counters.
        drop(counters.start_refresh(std::time::Duration::from_secs(1)));
        Ok(Collector {
            privacy: None,
            shared_counters: Some(counters.clone()),
            reports: pg,
            embedded: None,
            log: Arc::new(log),
            counters,
            keys: Arc::new(config.keyring()),
            clock,
        })
    }

    /// Minimises every beacon at the edge with `privacy` (truncated address, coarse geo, device class, no
    /// viewer id without consent).
    pub fn with_privacy(mut self, privacy: Arc<crate::privacy::edge::EdgePrivacy>) -> Self {
        self.privacy = Some(privacy);
        self
    }

    fn minimise(&self, envelope: &mut Envelope) {
        match &self.privacy {
            Some(p) => p.minimise(envelope),
            None => crate::privacy::edge::minimise_ids(
                &mut envelope.event.viewer_id,
                &envelope.event.consent,
            ),
        }
    }

    /// Removes the viewer ids `ids` from every store of the event pipeline; one receipt line per store.
    pub async fn forget_viewers(
        &self,
        ids: &[String],
    ) -> Result<Vec<serde_json::Value>, StoreError> {
        let mut lines = vec![self.reports.forget_viewers(ids).await?];
        if let Some(counters) = &self.shared_counters {
            let n = counters.forget_viewers(ids).await?;
            lines.push(serde_json::json!({
                "store": "redis frequency counters",
                "action": "deleted",
                "viewers_with_counts": n,
            }));
        }
        lines.push(serde_json::json!({
            "store": "dedup state and aggregates",
            "action": "none needed: keyed by event, ad instance, session and line item ids, never by viewer",
        }));
        Ok(lines)
    }

    /// The shared frequency counters, in distributed mode.
    pub fn shared_counters(&self) -> Option<&Arc<RedisCounters>> {
        self.shared_counters.as_ref()
    }

    /// Enforces retention every `every`: raw events and quarantined events older than their data class allows
    /// are removed (embedded store) or deleted (PostgreSQL quarantine; the Kafka log ages out by its topic
    /// retention).
    pub fn start_retention(
        &self,
        retention: crate::privacy::edge::Retention,
        every: std::time::Duration,
    ) {
        let (reports, clock) = (self.reports.clone(), self.clock.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let now = clock();
                let log_before =
                    now - chrono::TimeDelta::days(i64::from(retention.raw_events_days));
                let quarantine_before =
                    now - chrono::TimeDelta::days(i64::from(retention.quarantine_days));
                let result = reports
                    .clone()
                    .compact(log_before, quarantine_before, now)
                    .await;
                match result {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(removed = n, "Retention: expired events removed."),
                    Err(e) => tracing::warn!(error = %e, "Retention sweep failed; retried later."),
                }
            }
        });
    }

    /// The embedded store, when this collector has one.
    pub fn embedded(&self) -> Option<Arc<EventStore>> {
        self.embedded.clone()
    }

    /// Where reports are read.
    pub fn reports(&self) -> &Arc<dyn ReportStore> {
        &self.reports
    }

    /// The live delivery counts pacing and frequency caps read.
    pub fn counters(&self) -> Arc<dyn Counters> {
        self.counters.clone()
    }

    /// A tracking URL path (`/t/{token}`) for `claims`.
    pub fn tracking_path(&self, claims: &TokenClaims) -> Option<String> {
        self.keys.sign(claims).ok().map(|t| format!("/t/{t}"))
    }
}

/// The collector's routes.
pub fn router(collector: Collector) -> Router {
    Router::new()
        .route("/v1/events", post(post_events))
        .route("/t/{token}", get(pixel))
        .route("/v1/reports", get(reports))
        .route("/v1/ledger", get(ledger))
        .route("/v1/quarantine", get(quarantine))
        .route("/v1/ads/{ad_instance_id}/events", get(ad_events))
        .with_state(collector)
}

use crate::privacy::edge::sender;

fn submit_error(e: SubmitError) -> Response {
    ApiError::from(e).into_response()
}

/// What `POST /v1/events` answers.
#[derive(Debug, Serialize)]
struct Accepted {
    accepted: usize,
    outcomes: Vec<Outcome>,
}

async fn post_events(
    State(c): State<Collector>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    // The same contract in two encodings: JSON, and MessagePack as the compact binary form for high-volume
    // senders (field names kept, so the compatibility rules of the contract hold for both).
    let msgpack = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.starts_with("application/msgpack") || v.starts_with("application/vnd.msgpack")
        });
    let parsed: Result<Vec<AdEvent>, String> = if msgpack {
        rmp_serde::from_slice(&body).map_err(|e| e.to_string())
    } else {
        serde_json::from_slice(&body).map_err(|e| e.to_string())
    };
    let events: Vec<AdEvent> = match parsed {
        Ok(events) => events,
        Err(e) => {
            metrics::counter!(crate::telemetry::metrics::EVENTS_REJECTED_BATCHES).increment(1);
            return ApiError::bad_request(format!("invalid event batch: {e}")).into_response();
        }
    };
    let (user_agent, ip) = sender(&headers);
    let now = (c.clock)();
    let batch: Vec<Envelope> = events
        .into_iter()
        .map(|mut event| {
            event.received_at = now;
            let mut envelope = Envelope {
                event,
                user_agent: user_agent.clone(),
                ip,
            };
            c.minimise(&mut envelope);
            envelope
        })
        .collect();
    match c.log.append(batch).await {
        Ok(outcomes) => Json(Accepted {
            accepted: outcomes.len(),
            outcomes,
        })
        .into_response(),
        Err(e) => submit_error(e),
    }
}

/// The event a pixel fire stands for. Its id derives from the token, so every fire of the same URL is the same
/// report (a retry), whatever the client's clock says.
fn pixel_event(claims: TokenClaims, token: &str, now: DateTime<Utc>) -> AdEvent {
    let digest = Sha256::digest(token.as_bytes());
    let event_id: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    AdEvent::from_token(claims, format!("t-{event_id}"), now)
}

async fn pixel(
    State(c): State<Collector>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    let claims = match c.keys.verify(&token) {
        Ok(claims) => claims,
        Err(e) => {
            metrics::counter!(crate::telemetry::metrics::EVENTS_REJECTED_TOKENS).increment(1);
            tracing::debug!(error = %e, "Rejected tracking token.");
            return ApiError::Forbidden(e.to_string()).into_response();
        }
    };
    let (user_agent, ip) = sender(&headers);
    let event = pixel_event(claims, &token, (c.clock)());
    let mut envelope = Envelope {
        event,
        user_agent,
        ip,
    };
    c.minimise(&mut envelope);
    match c.log.append(vec![envelope]).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => submit_error(e),
    }
}

/// Query of `GET /v1/reports`.
#[derive(Debug, Deserialize)]
struct ReportQuery {
    group_by: GroupBy,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    #[serde(default)]
    format: Option<String>,
}

fn store_error(e: StoreError) -> Response {
    ApiError::from(e).into_response()
}

async fn reports(State(c): State<Collector>, Query(q): Query<ReportQuery>) -> Response {
    let to =
        q.to.unwrap_or_else(|| (c.clock)() + chrono::TimeDelta::minutes(1));
    let from = q.from.unwrap_or(to - chrono::TimeDelta::days(2));
    let rows = match c.reports.report(q.group_by, from, to).await {
        Ok(rows) => rows,
        Err(e) => return store_error(e),
    };
    if q.format.as_deref() != Some("csv") {
        return Json(rows).into_response();
    }
    let mut csv = String::from(
        "key,impressions,starts,first_quartiles,midpoints,third_quartiles,completes,clicks,errors,completion_rate,spend\n",
    );
    for r in rows {
        let c = r.counts;
        let key = if r.key.contains([',', '"', '\n']) {
            format!("\"{}\"", r.key.replace('"', "\"\""))
        } else {
            r.key
        };
        csv.push_str(&key);
        for n in c.as_array() {
            csv.push_str(&format!(",{n}"));
        }
        csv.push_str(&format!(
            ",{:.4},{}.{:06}\n",
            r.completion_rate,
            r.spend_micros / 1_000_000,
            r.spend_micros % 1_000_000
        ));
    }
    ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], csv).into_response()
}

async fn ledger(State(c): State<Collector>) -> Response {
    match c.reports.ledger().await {
        Ok(rows) => Json(rows).into_response(),
        Err(e) => store_error(e),
    }
}

/// The event types counted for one ad instance.
async fn ad_events(
    State(c): State<Collector>,
    axum::extract::Path(ad_instance_id): axum::extract::Path<String>,
) -> Response {
    match c.reports.counted_events(&ad_instance_id).await {
        Ok(types) => Json(serde_json::json!({
            "ad_instance_id": ad_instance_id,
            "counted": types.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
        }))
        .into_response(),
        Err(e) => store_error(e),
    }
}

async fn quarantine(State(c): State<Collector>) -> Response {
    match c.reports.quarantine_counts().await {
        Ok(counts) => Json(counts).into_response(),
        Err(e) => store_error(e),
    }
}

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
