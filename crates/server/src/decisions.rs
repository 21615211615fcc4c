//! The decision debug endpoint: `GET /v1/decisions/explain?channel=…&duration=…&country=…&device=…` decides a
//! pod for a described viewer, without serving it, and returns every line item's verdict (chosen, targeting
//! miss, out of flight, no servable creative, paced out, capped, or the pod rule that left it out).

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use interlude_decision::engine::Engine;
use interlude_stitch::{PodRequest, ViewerContext};
use serde::Deserialize;

/// A viewer and a break, described in a query string (the explain and VAST endpoints).
#[derive(Debug, Deserialize)]
pub(crate) struct BreakQuery {
    channel: String,
    /// Break length in seconds.
    duration: f64,
    #[serde(default)]
    session: Option<String>,
    #[serde(default)]
    viewer: Option<String>,
    #[serde(default)]
    device: Option<String>,
    #[serde(default)]
    platform: Option<String>,
    #[serde(default)]
    country: Option<String>,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    genre: Option<String>,
    /// Comma-separated audience segments.
    #[serde(default)]
    segments: Option<String>,
    /// IANA time zone, for daypart targeting.
    #[serde(default)]
    tz: Option<String>,
    /// Custom key-values, `key:value` pairs separated by commas.
    #[serde(default)]
    kv: Option<String>,
    /// Consent to personalised advertising.
    #[serde(default)]
    consent: Option<bool>,
}

impl BreakQuery {
    /// The pod request it describes; `session` when the query names none.
    pub(crate) fn into_request(
        self,
        session: impl FnOnce() -> String,
        break_id: String,
    ) -> PodRequest {
        PodRequest {
            channel: self.channel,
            session_id: self.session.unwrap_or_else(session),
            break_id,
            duration_secs: Some(self.duration),
            viewer: ViewerContext {
                viewer_id: self.viewer,
                device: self.device,
                platform: self.platform,
                country: self.country,
                region: self.region,
                content_id: self.content,
                genre: self.genre,
                consent: self.consent,
                segments: self
                    .segments
                    .map(|s| s.split(',').map(str::to_owned).collect())
                    .unwrap_or_default(),
                timezone: self.tz,
                key_values: self
                    .kv
                    .iter()
                    .flat_map(|kv| kv.split(','))
                    .filter_map(|pair| pair.split_once(':'))
                    .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                    .collect(),
            },
        }
    }
}

#[derive(Clone)]
struct ExplainState {
    engine: Arc<Engine>,
    clock: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>,
}

/// The debug routes over `engine`.
pub fn router(engine: Arc<Engine>, clock: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>) -> Router {
    Router::new()
        .route("/v1/decisions/explain", get(explain))
        .with_state(ExplainState { engine, clock })
}

async fn explain(State(s): State<ExplainState>, Query(q): Query<BreakQuery>) -> Response {
    let request = q.into_request(|| "explain".to_owned(), "explain".to_owned());
    Json(s.engine.decide(&request, (s.clock)(), true)).into_response()
}
