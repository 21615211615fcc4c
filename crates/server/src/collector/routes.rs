//! The collector's HTTP routes: thin — parse the request, build the event(s), append, map the outcome.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use interlude_events::contract::AdEvent;
use interlude_events::token::TokenClaims;
use interlude_events::{Envelope, Outcome};
use interlude_store::Error as StoreError;
use interlude_store::{GroupBy, SubmitError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Collector;
use crate::error::ApiError;

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
