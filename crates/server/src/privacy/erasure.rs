//! The data subject's right to erasure: `DELETE /v1/viewers/{id}` (bearer `decision.admin_token`).
//!
//! `{id}` is the device id the viewer (or the publisher on their behalf) knows — its pseudonyms are derived
//! for every salt epoch within the longest retention, since the stores only ever saw pseudonyms — or, with
//! `?pseudonym=true`, one pseudonym as found in a report. Every store is cleaned: this node's sessions, the
//! shared sessions and their decisions (Redis), the frequency counters (embedded store, PostgreSQL, Redis),
//! the viewer's cap holds of pending reservations (Redis, or this process), and the viewer id inside logged and quarantined events (the events stay: they are billing data, and
//! without the id they are anonymous). Aggregates hold no viewer ids and do not change. The answer is a
//! receipt naming each store and what was done there; the Kafka raw log, which cannot be rewritten, is listed
//! with the date its retention removes the last record.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::delete;
use axum::{Json, Router};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::collector::Collector;
use crate::privacy::edge::{EdgePrivacy, Retention};
use crate::stitcher::Stitcher;

/// What deletion needs.
#[derive(Clone)]
pub struct Erasure {
    /// The stitcher (sessions).
    pub stitcher: Arc<Stitcher>,
    /// The collector (event stores, counters).
    pub collector: Collector,
    /// Pseudonym derivation.
    pub privacy: Arc<EdgePrivacy>,
    /// Retention, for how far back pseudonyms are derived and for the raw log's deadline.
    pub retention: Retention,
    /// Days frequency counts are kept (pseudonyms are derived at least that far back).
    pub frequency_window_days: u32,
    /// Whether the raw log is a Kafka topic (distributed mode).
    pub kafka_log: bool,
    /// The clock.
    pub clock: interlude_events::Clock,
    /// The decision engine's reservations (their cap holds name the viewer), when decisioning from a catalog.
    pub reservations: Option<Arc<dyn interlude_decision::reservation::Reservations>>,
}

#[derive(Debug, Deserialize)]
struct Params {
    #[serde(default)]
    pseudonym: bool,
}

/// The erasure route, guarded by `token`.
pub fn router(erasure: Erasure, token: &str) -> Router {
    crate::edge::auth::bearer(
        Router::new()
            .route("/v1/viewers/{id}", delete(forget))
            .with_state(erasure),
        token,
    )
}

impl Erasure {
    /// Forgets `id` everywhere; the receipt.
    pub async fn forget(&self, id: &str, is_pseudonym: bool) -> Result<serde_json::Value, String> {
        let requested_at = (self.clock)();
        let days = self
            .retention
            .raw_events_days
            .max(self.retention.quarantine_days)
            .max(self.frequency_window_days);
        let mut ids = if is_pseudonym {
            vec![id.to_owned()]
        } else {
            self.privacy.pseudonyms_over(id, days)
        };
        // Events from before minimisation, or from a sender that reported the id as is.
        if !is_pseudonym {
            ids.push(id.to_owned());
        }
        let mut stores = Vec::new();
        let (local, shared) = self.stitcher.forget_viewers(&ids).await?;
        stores.push(serde_json::json!({
            "store": "sessions on this node", "action": "deleted", "sessions": local,
        }));
        if self.stitcher.shared_sessions().is_some() {
            stores.push(serde_json::json!({
                "store": "shared sessions and break decisions (redis)", "action": "deleted", "sessions": shared,
            }));
        }
        if let Some(reservations) = self.reservations.clone() {
            let forget = ids.clone();
            // The store answers synchronously (the engine reserves on a CPU thread).
            let holds = tokio::task::spawn_blocking(move || reservations.forget_viewers(&forget))
                .await
                .map_err(|e| e.to_string())?;
            stores.push(serde_json::json!({
                "store": "cap holds of pending reservations", "action": "deleted", "holds": holds,
            }));
        }
        stores.extend(
            self.collector
                .forget_viewers(&ids)
                .await
                .map_err(|e| e.to_string())?,
        );
        let mut retained = Vec::new();
        if self.kafka_log {
            retained.push(serde_json::json!({
                "store": "kafka raw event log",
                "why": "append-only; records age out by the topic's retention (set retention.ms to privacy.retention.raw_events_days)",
                "until": requested_at + chrono::TimeDelta::days(i64::from(self.retention.raw_events_days)),
            }));
        }
        let subject: String = Sha256::digest(id.as_bytes())
            .iter()
            .take(16)
            .map(|b| format!("{b:02x}"))
            .collect();
        metrics::counter!(crate::telemetry::metrics::PRIVACY_ERASURES).increment(1);
        Ok(serde_json::json!({
            "receipt_id": uuid::Uuid::new_v4().to_string(),
            // The receipt does not repeat the identifier: a digest lets the requester match it.
            "subject_sha256_128": subject,
            "identifiers_checked": ids.len(),
            "requested_at": requested_at,
            "completed_at": (self.clock)(),
            "stores": stores,
            "retained": retained,
            "aggregates": "unchanged: reports and the billing ledger hold no viewer ids",
        }))
    }
}

async fn forget(
    State(erasure): State<Erasure>,
    Path(id): Path<String>,
    Query(params): Query<Params>,
) -> Response {
    if id.trim().is_empty() || id.len() > 256 {
        return crate::error::ApiError::bad_request("viewer id must be 1 to 256 characters")
            .into_response();
    }
    match erasure.forget(&id, params.pseudonym).await {
        Ok(receipt) => Json(receipt).into_response(),
        Err(e) => {
            // The store's text stays in the log: a client learns only that it must retry.
            tracing::error!(error = %e, "Erasure incomplete.");
            crate::error::ApiError::unavailable("erasure incomplete, retry", Some(5))
                .into_response()
        }
    }
}
