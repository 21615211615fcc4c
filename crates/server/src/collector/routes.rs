//! The collector's HTTP routes: thin — parse the request, build the event(s), append, map the outcome.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use interlude_events::contract::{AdEvent, EventSource};
use interlude_events::token::TokenClaims;
use interlude_events::{Envelope, Outcome};
use interlude_store::Error as StoreError;
use interlude_store::{GroupBy, SubmitError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Collector;
use super::service::TokenLife;
use crate::edge::client::ClientIp;
use crate::error::ApiError;
use crate::privacy::edge::user_agent;

/// The collector's routes: events in (producers authenticated, pixels signed), reads behind the read scope.
pub fn router(collector: Collector) -> Router {
    let reads = Router::new()
        .route("/v1/reports", get(reports))
        .route("/v1/reports/demand", get(demand_report))
        .route("/v1/ledger", get(ledger))
        .route("/v1/quarantine", get(quarantine))
        .route("/v1/ads/{ad_instance_id}/events", get(ad_events))
        .with_state(collector.clone());
    Router::new()
        .route("/v1/events", post(post_events))
        .route("/t/{token}", get(pixel))
        .with_state(collector.clone())
        .merge(crate::edge::auth::guard(reads, (*collector.read).clone()))
}

fn submit_error(e: SubmitError) -> Response {
    ApiError::from(e).into_response()
}

/// What `POST /v1/events` answers: one outcome per event, in order; `accepted` counts those processed.
#[derive(Debug, Serialize)]
struct Accepted {
    accepted: usize,
    outcomes: Vec<Answer>,
}

/// One event's outcome: what the pipeline did with it, or why the edge refused it (not stored, not counted).
/// Both serialise as `{"outcome": …}`.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Answer {
    Processed(Outcome),
    Refused {
        outcome: &'static str,
        reason: String,
    },
}

/// The encoding of an event batch, from its `Content-Type`. Anything else is refused: in particular the types a
/// web page may send cross-site without a CORS preflight (`text/plain`, forms), so a page cannot make its
/// visitors' browsers post events.
fn batch_encoding(headers: &HeaderMap) -> Result<bool, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match content_type.as_str() {
        "application/json" => Ok(false),
        "application/msgpack" | "application/vnd.msgpack" | "application/x-msgpack" => Ok(true),
        other => Err(ApiError::UnsupportedMediaType(format!(
            "Content-Type {other:?}: event batches are application/json or application/msgpack"
        ))),
    }
}

async fn post_events(
    State(c): State<Collector>,
    headers: HeaderMap,
    client: ClientIp,
    body: axum::body::Bytes,
) -> Response {
    let producer = match c.producers.authenticate(&headers) {
        Ok(producer) => producer,
        Err(e) => {
            metrics::counter!(crate::telemetry::metrics::EVENTS_REJECTED_BATCHES).increment(1);
            return e.into_response();
        }
    };
    // The same contract in two encodings: JSON, and MessagePack as the compact binary form for high-volume
    // senders (field names kept, so the compatibility rules of the contract hold for both).
    let msgpack = match batch_encoding(&headers) {
        Ok(msgpack) => msgpack,
        Err(e) => return e.into_response(),
    };
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
    // A server-side report says the stitcher itself delivered the ad, and skips the too-fast quartile check:
    // only a producer trusted to do its own playback accounting may make one.
    // A bid's price feeds the demand reports' spend: only the same trusted producers may state one.
    if !producer.server_side {
        let claim = events.iter().enumerate().find_map(|(i, e)| {
            if e.source == EventSource::ServerSide {
                Some(format!(
                    "events[{i}].source: producer {:?} may not report server_side events",
                    producer.name
                ))
            } else {
                e.demand.as_ref().map(|_| {
                    format!(
                        "events[{i}].demand: producer {:?} may not state a winning bid",
                        producer.name
                    )
                })
            }
        });
        if let Some(detail) = claim {
            metrics::counter!(crate::telemetry::metrics::EVENTS_REJECTED_BATCHES).increment(1);
            tracing::warn!(producer = %producer.name, "Refused server-side claims from a producer not allowed them.");
            return ApiError::Forbidden(detail).into_response();
        }
    }
    let (user_agent, ip) = (user_agent(&headers), client.0);
    let now = (c.clock)();
    // A relay of client beacons may only report ad instances this platform issued to that session: an event
    // for any other is refused alone (the rest of the batch is real viewers' beacons).
    let mut answers: Vec<Option<Answer>> = Vec::with_capacity(events.len());
    let mut batch: Vec<Envelope> = Vec::with_capacity(events.len());
    for mut event in events {
        if producer.verify_instances
            && !c
                .keys
                .verify_instance(&event.session_id, &event.ad_instance_id)
        {
            metrics::counter!(crate::telemetry::metrics::EVENTS_REFUSED_INSTANCES).increment(1);
            answers.push(Some(Answer::Refused {
                outcome: "refused",
                reason: format!(
                    "ad_instance_id {:?} was not issued to session {:?}",
                    event.ad_instance_id, event.session_id
                ),
            }));
            continue;
        }
        event.received_at = now;
        let mut envelope = Envelope {
            event,
            user_agent: user_agent.clone(),
            ip,
        };
        c.minimise(&mut envelope);
        batch.push(envelope);
        answers.push(None);
    }
    let outcomes = if batch.is_empty() {
        Vec::new()
    } else {
        match c.log.append(batch).await {
            Ok(outcomes) => outcomes,
            Err(e) => return submit_error(e),
        }
    };
    let accepted = outcomes.len();
    let mut processed = outcomes.into_iter();
    let outcomes = answers
        .into_iter()
        .filter_map(|a| a.or_else(|| processed.next().map(Answer::Processed)))
        .collect();
    Json(Accepted { accepted, outcomes }).into_response()
}

/// The event a pixel fire stands for. Its id derives from the token, so every fire of the same URL is the same
/// report (a retry), whatever the client's clock says. It occurred when fired, but never before the token was
/// issued nor after it expired: the token, not the client, bounds the event time.
fn pixel_event(claims: TokenClaims, token: &str, now: DateTime<Utc>, life: TokenLife) -> AdEvent {
    let digest = Sha256::digest(token.as_bytes());
    let event_id: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    let issued = DateTime::<Utc>::from_timestamp(i64::from(claims.issued_at), 0).unwrap_or(now);
    let occurred = now.clamp(
        issued,
        issued + chrono::TimeDelta::seconds(life.max_age_secs),
    );
    let mut event = AdEvent::from_token(claims, format!("t-{event_id}"), now);
    event.occurred_at = occurred;
    event
}

/// Why a verified token no longer counts: expired (its dedup keys may be gone, so counting it again could
/// double-bill) or issued in the future (a clock or a forgery).
fn token_age_error(claims: &TokenClaims, now: DateTime<Utc>, life: TokenLife) -> Option<String> {
    let age = now.timestamp() - i64::from(claims.issued_at);
    if age > life.max_age_secs {
        return Some(format!(
            "tracking token expired: issued {age} s ago, honoured for {} s",
            life.max_age_secs
        ));
    }
    if -age > life.future_skew_secs {
        return Some(format!("tracking token issued {} s in the future", -age));
    }
    None
}

async fn pixel(
    State(c): State<Collector>,
    Path(token): Path<String>,
    headers: HeaderMap,
    client: ClientIp,
) -> Response {
    let claims = match c.keys.verify(&token) {
        Ok(claims) => claims,
        Err(e) => {
            metrics::counter!(crate::telemetry::metrics::EVENTS_REJECTED_TOKENS).increment(1);
            tracing::debug!(error = %e, "Rejected tracking token.");
            return ApiError::Forbidden(e.to_string()).into_response();
        }
    };
    let now = (c.clock)();
    if let Some(reason) = token_age_error(&claims, now, c.token_life) {
        metrics::counter!(crate::telemetry::metrics::EVENTS_REJECTED_TOKENS).increment(1);
        tracing::debug!(%reason, "Refused tracking token.");
        return ApiError::Forbidden(reason).into_response();
    }
    let (user_agent, ip) = (user_agent(&headers), client.0);
    let event = pixel_event(claims, &token, now, c.token_life);
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

/// Query of `GET /v1/reports/demand`.
#[derive(Debug, Deserialize)]
struct DemandQuery {
    group_by: interlude_store::DemandGroupBy,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
}

/// Bidders, seats or deals: auction outcomes (requests, no bids, timeouts, errors, bids, wins, losses) and the
/// counted delivery of the ads they won, with spend at the clearing prices per currency. Cells are whole hours:
/// those starting in `[from, to)`, by default the two days up to the current hour included.
async fn demand_report(State(c): State<Collector>, Query(q): Query<DemandQuery>) -> Response {
    let to =
        q.to.unwrap_or_else(|| (c.clock)() + chrono::TimeDelta::hours(1));
    let from = q.from.unwrap_or(to - chrono::TimeDelta::days(2));
    match c.reports.demand_report(q.group_by, from, to).await {
        Ok(rows) => Json(rows).into_response(),
        Err(e) => store_error(e),
    }
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
