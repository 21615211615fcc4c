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

/// The viewer and break to explain.
#[derive(Debug, Deserialize)]
struct ExplainQuery {
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

async fn explain(State(s): State<ExplainState>, Query(q): Query<ExplainQuery>) -> Response {
    let request = PodRequest {
        channel: q.channel,
        session_id: q.session.unwrap_or_else(|| "explain".to_owned()),
        break_id: "explain".to_owned(),
        duration_secs: Some(q.duration),
        viewer: ViewerContext {
            viewer_id: q.viewer,
            device: q.device,
            platform: q.platform,
            country: q.country,
            region: q.region,
            content_id: q.content,
            genre: q.genre,
            consent: None,
            segments: q
                .segments
                .map(|s| s.split(',').map(str::to_owned).collect())
                .unwrap_or_default(),
        },
    };
    Json(s.engine.decide(&request, (s.clock)(), true)).into_response()
}
