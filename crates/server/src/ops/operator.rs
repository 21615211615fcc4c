//! The operator API for a live event (bearer-authenticated like the admin API):
//!
//! - `POST /v1/ops/channels/{channel}/breaks` `{"duration_secs": 60}` starts a break at the next segment, as a
//!   SCTE-35 `splice_insert` injected into the channel's break model (for an encoder whose cue is missing);
//! - `POST /v1/ops/channels/{channel}/breaks/end` ends the open break at the next segment;
//! - `PUT /v1/ops/channels/{channel}/slate_only` `{"enabled": true}` fills that channel's breaks with slate;
//! - `PUT /v1/ops/line_items/{id}/paused` and `PUT /v1/ops/advertisers/{id}/paused` `{"paused": true}`: kill
//!   switches, honoured by the next decision;
//! - `POST /v1/ops/drain` `{"draining": true}`: readiness goes false and new sessions are refused (503), so the
//!   load balancer moves viewers to other nodes while this one serves the sessions it has;
//! - `GET /v1/ops/state`: the controls in force.
//!
//! Controls live in this process. In a multi-node deployment they travel through the shared store (the
//! distributed-mode issue), which is what "all nodes within a second" needs.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;

use crate::Readiness;
use crate::decisioning::decider::{Controls, Decider};
use crate::stitcher::Stitcher;

#[derive(Clone)]
struct Ops {
    stitcher: Arc<Stitcher>,
    decider: Option<Arc<Decider>>,
    readiness: Readiness,
}

#[derive(Deserialize)]
struct StartBreak {
    duration_secs: f64,
}

#[derive(Deserialize)]
struct Paused {
    paused: bool,
}

#[derive(Deserialize)]
struct Enabled {
    enabled: bool,
}

#[derive(Deserialize)]
struct Draining {
    draining: bool,
}

fn problem(status: StatusCode, message: impl Into<String>) -> Response {
    crate::error::ApiError::client(status, message).into_response()
}

async fn start_break(
    State(ops): State<Ops>,
    Path(channel): Path<String>,
    Json(body): Json<StartBreak>,
) -> Response {
    let Ok(duration) = Duration::try_from_secs_f64(body.duration_secs) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "duration_secs must be a positive number",
        );
    };
    let channel = match ops.stitcher.channel(&channel) {
        Ok(c) => c,
        Err(e) => return problem(StatusCode::NOT_FOUND, e.to_string()),
    };
    match channel.start_break(duration) {
        Some(action) => {
            tracing::info!(channel = %channel.config.id, break_id = %action.break_id, msn = action.msn,
                "Operator started a break.");
            (StatusCode::ACCEPTED, Json(action)).into_response()
        }
        None => problem(
            StatusCode::CONFLICT,
            "a break is already open, or the channel has no window yet",
        ),
    }
}

async fn end_break(State(ops): State<Ops>, Path(channel): Path<String>) -> Response {
    let channel = match ops.stitcher.channel(&channel) {
        Ok(c) => c,
        Err(e) => return problem(StatusCode::NOT_FOUND, e.to_string()),
    };
    match channel.end_break() {
        Some(action) => {
            tracing::info!(channel = %channel.config.id, break_id = %action.break_id, msn = action.msn,
                "Operator ended a break.");
            (StatusCode::ACCEPTED, Json(action)).into_response()
        }
        None => problem(StatusCode::CONFLICT, "no break is open"),
    }
}

fn no_engine() -> Response {
    problem(
        StatusCode::NOT_FOUND,
        "no decision engine is configured (decision.catalog)",
    )
}

/// Adds `key` to the set `pick` chooses in the controls, or removes it.
fn toggle(
    ops: &Ops,
    key: String,
    on: bool,
    pick: impl FnOnce(&mut Controls) -> &mut BTreeSet<String>,
) -> Response {
    let Some(d) = &ops.decider else {
        return no_engine();
    };
    Json(d.control(|c| {
        let set = pick(c);
        if on {
            set.insert(key);
        } else {
            set.remove(&key);
        }
    }))
    .into_response()
}

async fn slate_only(
    State(ops): State<Ops>,
    Path(channel): Path<String>,
    Json(body): Json<Enabled>,
) -> Response {
    if let Err(e) = ops.stitcher.channel(&channel) {
        return problem(StatusCode::NOT_FOUND, e.to_string());
    }
    toggle(&ops, channel, body.enabled, |c| &mut c.slate_only)
}

async fn pause_line_item(
    State(ops): State<Ops>,
    Path(id): Path<String>,
    Json(body): Json<Paused>,
) -> Response {
    let known = ops
        .decider
        .as_ref()
        .is_some_and(|d| d.engine().catalog().line_items.iter().any(|l| l.id == id));
    if ops.decider.is_some() && !known {
        return problem(StatusCode::NOT_FOUND, format!("no line item {id:?}"));
    }
    tracing::info!(line_item = %id, paused = body.paused, "Operator kill switch.");
    toggle(&ops, id, body.paused, |c| &mut c.holds.line_items)
}

async fn pause_advertiser(
    State(ops): State<Ops>,
    Path(id): Path<String>,
    Json(body): Json<Paused>,
) -> Response {
    // A mistyped kill switch must not look applied.
    let known = ops
        .decider
        .as_ref()
        .is_some_and(|d| d.engine().catalog().advertisers.iter().any(|a| a.id == id));
    if ops.decider.is_some() && !known {
        return problem(StatusCode::NOT_FOUND, format!("no advertiser {id:?}"));
    }
    tracing::info!(advertiser = %id, paused = body.paused, "Operator kill switch.");
    toggle(&ops, id, body.paused, |c| &mut c.holds.advertisers)
}

async fn drain(State(ops): State<Ops>, Json(body): Json<Draining>) -> Response {
    ops.stitcher.set_draining(body.draining);
    ops.readiness.set(!body.draining);
    tracing::info!(draining = body.draining, "Operator drain.");
    Json(serde_json::json!({ "draining": body.draining })).into_response()
}

async fn state(State(ops): State<Ops>) -> Response {
    let controls = ops.decider.as_ref().map(|d| d.controls());
    Json(serde_json::json!({
        "ready": ops.readiness.is_ready(),
        "controls": controls,
    }))
    .into_response()
}

/// The operator routes, guarded by the bearer `token`.
pub fn router(
    stitcher: Arc<Stitcher>,
    decider: Option<Arc<Decider>>,
    readiness: Readiness,
    token: &str,
) -> Router {
    let routes = Router::new()
        .route("/v1/ops/channels/{channel}/breaks", post(start_break))
        .route("/v1/ops/channels/{channel}/breaks/end", post(end_break))
        .route("/v1/ops/channels/{channel}/slate_only", put(slate_only))
        .route("/v1/ops/line_items/{id}/paused", put(pause_line_item))
        .route("/v1/ops/advertisers/{id}/paused", put(pause_advertiser))
        .route("/v1/ops/drain", post(drain))
        .route("/v1/ops/state", get(state))
        .with_state(Ops {
            stitcher,
            decider,
            readiness,
        });
    crate::edge::auth::bearer(routes, token)
}
