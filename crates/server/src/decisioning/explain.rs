//! The decision debug endpoint: `GET /v1/decisions/explain?channel=…&duration=…&country=…&device=…` decides a
//! pod for a described viewer, without serving it, and returns every line item's verdict (chosen, targeting
//! miss, out of flight, no servable creative, paced out, capped, or the pod rule that left it out), with third-party
//! demand: each bid's verdict, refused bids and failed tags with why. Bidders are asked, but no win or loss notice is
//! sent: nothing is served.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use interlude_decision::{PodRequest, ViewerContext};
use serde::Deserialize;

use crate::decisioning::decider::Decider;

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
                opt_out_sale: false,
                privacy: Default::default(),
            },
        }
    }
}

/// The debug routes over `decider`.
pub fn router(decider: Arc<Decider>) -> Router {
    Router::new()
        .route("/v1/decisions/explain", get(explain))
        .with_state(decider)
}

async fn explain(State(decider): State<Arc<Decider>>, Query(q): Query<BreakQuery>) -> Response {
    let request = q.into_request(|| "explain".to_owned(), "explain".to_owned());
    Json(decider.decide(&request, true, false).await).into_response()
}
