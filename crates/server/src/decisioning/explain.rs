//! The decision debug endpoint: `GET /v1/decisions/explain?channel=…&duration=…&country=…&device=…` decides a
//! pod for a described viewer, without serving it, and returns every line item's verdict (chosen, targeting
//! miss, out of flight, no servable creative, paced out, capped, or the pod rule that left it out), with third-party
//! demand: each bid's verdict, refused bids and failed tags with why; with conditioning on, whether each chosen ad
//! that needs conditioning is ready for the channel, or why the stitcher would skip it. Bidders are asked (each
//! call a new auction id), but no win or loss notice and no VAST error pixel is sent, no conditioning is queued
//! and no auction outcome is reported: nothing is served.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use interlude_condition::NotReadyReason;
use interlude_decision::{PodRequest, ViewerContext};
use serde::{Deserialize, Serialize};

use crate::conditioning::Conditioning;
use crate::decisioning::decider::Decider;
use crate::stitcher::Stitcher;

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

/// What the explainer reads.
#[derive(Clone)]
struct Explainer {
    decider: Arc<Decider>,
    /// Conditioning and the channels, to say whether each chosen ad without HLS renditions is ready.
    conditioning: Option<(Arc<Conditioning>, Arc<Stitcher>)>,
}

/// The debug routes over `decider`.
pub fn router(decider: Arc<Decider>) -> Router {
    router_with_conditioning(decider, None)
}

/// The debug routes over `decider`; with `conditioning`, each chosen ad that needs conditioning is listed
/// under `conditioning` with its readiness for the channel (`READY`, or the reason the stitcher would skip it:
/// `NEW_CREATIVE`, `TRANSCODE_IN_PROGRESS`, `TRANSCODE_ERROR`, `NO_VARIANT_MATCH`). Nothing is queued.
pub fn router_with_conditioning(
    decider: Arc<Decider>,
    conditioning: Option<(Arc<Conditioning>, Arc<Stitcher>)>,
) -> Router {
    Router::new()
        .route("/v1/decisions/explain", get(explain))
        .with_state(Explainer {
            decider,
            conditioning,
        })
}

/// One chosen ad that needs conditioning, and whether it is ready for the channel.
#[derive(Debug, Serialize)]
struct ConditioningVerdict {
    creative_id: String,
    line_item_id: Option<String>,
    readiness: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
}

async fn explain(State(x): State<Explainer>, Query(q): Query<BreakQuery>) -> Response {
    // A session of its own per call: the auction id (session and break) is then new each time, as bidders
    // expect of every request.
    let session = format!("explain-{}", uuid::Uuid::new_v4().simple());
    let request = q.into_request(|| session.clone(), "explain".to_owned());
    let decided = x.decider.decide(&request, true, false).await;
    let Some((conditioning, stitcher)) = &x.conditioning else {
        return Json(decided).into_response();
    };
    let mut verdicts = Vec::new();
    for ad in &decided.decision.pod.ads {
        let Some(source) = &ad.source else { continue };
        let (readiness, detail) = match stitcher.channel(&request.channel) {
            Ok(channel) => match conditioning
                .readiness(&request.channel, &channel.snapshot(), source)
                .await
            {
                Ok(()) => ("READY", None),
                Err(reason) => {
                    let detail = match &reason {
                        NotReadyReason::TranscodeError(why) => Some(why.clone()),
                        _ => None,
                    };
                    (reason.code(), detail)
                }
            },
            Err(e) => ("NO_VARIANT_MATCH", Some(e.to_string())),
        };
        verdicts.push(ConditioningVerdict {
            creative_id: ad.creative_id.clone(),
            line_item_id: ad.line_item_id.clone(),
            readiness,
            detail,
        });
    }
    let mut body = serde_json::to_value(&decided).unwrap_or_default();
    if let Some(map) = body.as_object_mut() {
        map.insert(
            "conditioning".to_owned(),
            serde_json::to_value(verdicts).unwrap_or_default(),
        );
    }
    Json(body).into_response()
}
