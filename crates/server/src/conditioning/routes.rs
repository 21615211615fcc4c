//! The conditioning routes.
//!
//! - `GET /v1/conditioned/{*path}` serves the outputs under the conditioning root (segments, playlists,
//!   MPDs): where the ad segment route redirects players (or what it proxies). Outputs are content-addressed
//!   and never change under their path, so they are cacheable; work, partial and quarantined directories
//!   (their names start with `.`) are never served.
//! - `POST /v1/creatives/condition` (admin scope) conditions ahead of an event: a list of media URLs and/or a
//!   VAST tag (fetched and resolved through the guarded outbound client), for every channel or the channels
//!   named; answers 202 with the jobs queued and what was refused.
//! - `GET /v1/creatives/condition[?creative=<key>]` (admin scope): the jobs and their state.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use interlude_condition::{JobRecord, JobState};
use interlude_decision::{ConditioningSource, SourceFile};
use interlude_outbound::GuardedClient;
use interlude_vast::ResolveConfig;
use serde::{Deserialize, Serialize};

use super::Conditioning;
use crate::error::ApiError;
use crate::stitcher::Stitcher;

/// Largest body of a condition request: a list of URLs, not media.
pub const MAX_CONDITION_BODY_BYTES: usize = 64 * 1024;
/// Most sources one request may name.
pub const MAX_SOURCES: usize = 100;
/// Most jobs one status answer lists.
pub const MAX_LISTED: usize = 1_000;

/// What the condition API needs.
#[derive(Clone)]
pub struct ConditionApi {
    /// The conditioner.
    pub conditioning: Arc<Conditioning>,
    /// The channels (their variant sets).
    pub stitcher: Arc<Stitcher>,
    /// Fetches VAST tags.
    pub http: GuardedClient,
    /// Wrapper resolution limits.
    pub resolve: ResolveConfig,
}

/// The route serving conditioned outputs (open: players fetch them).
pub fn media_router(conditioning: Arc<Conditioning>) -> Router {
    Router::new()
        .route("/v1/conditioned/{*path}", get(media))
        .with_state(conditioning)
}

/// The condition API, guarded by the admin `token`.
pub fn api_router(api: ConditionApi, token: &str) -> Router {
    let routes = Router::new()
        .route(
            "/v1/creatives/condition",
            get(status)
                .post(condition)
                .layer(DefaultBodyLimit::max(MAX_CONDITION_BODY_BYTES)),
        )
        .with_state(api);
    crate::edge::auth::bearer(routes, token)
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("m3u8") => "application/vnd.apple.mpegurl",
        Some("ts") => "video/mp2t",
        Some("mpd") => "application/dash+xml",
        Some("mp4" | "m4s") => "video/mp4",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

/// Whether `path` names a published output: plain components, none hidden.
fn servable(path: &str) -> bool {
    !path.is_empty()
        && path.split('/').all(|c| {
            !c.is_empty()
                && !c.starts_with('.')
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        })
}

async fn media(State(c): State<Arc<Conditioning>>, Path(path): Path<String>) -> Response {
    if !servable(&path) {
        return ApiError::NotFound("no such conditioned file".into()).into_response();
    }
    match tokio::fs::read(c.root().join(&path)).await {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, content_type(&path)),
                (header::CACHE_CONTROL, "public, max-age=86400, immutable"),
            ],
            bytes,
        )
            .into_response(),
        Err(_) => ApiError::NotFound("no such conditioned file".into()).into_response(),
    }
}

/// A condition request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionRequest {
    /// Source files to condition (each its own creative, keyed by URL).
    #[serde(default)]
    pub media_urls: Vec<String>,
    /// A VAST tag whose InLine ads are conditioned.
    #[serde(default)]
    pub vast_tag: Option<String>,
    /// The channels to condition for; empty: every channel.
    #[serde(default)]
    pub channels: Vec<String>,
}

/// One job, as the API shows it.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct JobStatus {
    /// Job id (`<variant set hash>/<creative key>`).
    pub job: String,
    /// The creative's key.
    pub creative: String,
    /// The source file.
    pub source: String,
    /// `queued`, `running`, `ready` or `failed`.
    pub state: String,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Renditions finished.
    pub renditions_done: usize,
    /// Renditions of the variant set.
    pub renditions: usize,
    /// Times a worker took it.
    pub attempts: u32,
    /// When it is needed, ms since the epoch (none: ahead of time).
    pub deadline_ms: Option<u64>,
    /// When it was submitted.
    pub submitted_ms: u64,
    /// When it became ready.
    pub ready_ms: Option<u64>,
}

impl From<&JobRecord> for JobStatus {
    fn from(r: &JobRecord) -> Self {
        let (state, reason) = match &r.state {
            JobState::Queued => ("queued", None),
            JobState::Running { .. } => ("running", None),
            JobState::Ready => ("ready", None),
            JobState::Failed { reason, .. } => ("failed", Some(reason.clone())),
        };
        JobStatus {
            job: r.id.clone(),
            creative: r.spec.creative.as_str().to_owned(),
            source: interlude_outbound::redact(&r.spec.source.uri),
            state: state.to_owned(),
            reason,
            renditions_done: r.renditions.len(),
            renditions: r.spec.recipe.variant_set.renditions.len(),
            attempts: r.attempts,
            deadline_ms: r.deadline_ms,
            submitted_ms: r.submitted_ms,
            ready_ms: r.ready_ms,
        }
    }
}

/// What a condition request did.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct ConditionAnswer {
    /// Jobs queued (or found), one per source and channel.
    pub jobs: Vec<QueuedJob>,
    /// Sources or channels that could not be conditioned, with why.
    pub refused: Vec<Refused>,
}

/// A job for one channel.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct QueuedJob {
    /// The channel.
    pub channel: String,
    /// The job.
    #[serde(flatten)]
    pub status: JobStatus,
}

/// Something refused.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Refused {
    /// The source (URL, VAST ad) or channel.
    pub what: String,
    /// Why.
    pub reason: String,
}

fn refused(what: impl Into<String>, reason: impl Into<String>) -> Refused {
    Refused {
        what: what.into(),
        reason: reason.into(),
    }
}

async fn condition(
    State(api): State<ConditionApi>,
    Json(request): Json<ConditionRequest>,
) -> Result<(StatusCode, Json<ConditionAnswer>), ApiError> {
    if request.media_urls.is_empty() && request.vast_tag.is_none() {
        return Err(ApiError::bad_request(
            "name media_urls, a vast_tag, or both",
        ));
    }
    if request.media_urls.len() > MAX_SOURCES {
        return Err(ApiError::bad_request(format!(
            "at most {MAX_SOURCES} media_urls"
        )));
    }
    let mut answer = ConditionAnswer {
        jobs: Vec::new(),
        refused: Vec::new(),
    };
    let mut sources: Vec<(String, ConditioningSource)> = Vec::new();
    for url in &request.media_urls {
        if let Err(e) = api.http.check(url) {
            answer.refused.push(refused(url.clone(), e.to_string()));
            continue;
        }
        // A file named by an operator: ffmpeg probes it whatever its type (a mezzanine's may be unknown).
        sources.push((
            url.clone(),
            ConditioningSource {
                files: vec![SourceFile {
                    uri: url.clone(),
                    progressive: true,
                    mezzanine: true,
                    ..SourceFile::default()
                }],
                ..ConditioningSource::default()
            },
        ));
    }
    if let Some(tag) = &request.vast_tag {
        let fetcher = crate::decisioning::decider::HttpFetcher::new(api.http.clone());
        let resolved = interlude_vast::resolve_tag(tag, &fetcher, &api.resolve).await;
        for f in &resolved.failures {
            answer.refused.push(refused(
                tag.clone(),
                format!("VAST error {}: {}", f.code.code(), f.detail),
            ));
        }
        for (i, ad) in resolved.vast.ads.iter().take(MAX_SOURCES).enumerate() {
            let what = format!("{tag} ad {}", ad.id.as_deref().unwrap_or(&i.to_string()));
            match interlude_decision::external::pod_ad_from_vast(ad) {
                Ok(p) => match p.source {
                    Some(source) => sources.push((what, *source)),
                    None => answer.refused.push(refused(
                        what,
                        "already HLS: stitched as it is, nothing to condition",
                    )),
                },
                Err(e) => answer.refused.push(refused(what, e.to_string())),
            }
        }
    }
    let channels: Vec<String> = if request.channels.is_empty() {
        api.stitcher.channel_ids()
    } else {
        request.channels.clone()
    };
    for channel in &channels {
        let set = match api.stitcher.channel(channel) {
            Ok(c) => api.conditioning.variant_set(channel, &c.snapshot()),
            Err(e) => Err(e.to_string()),
        };
        let set = match set {
            Ok(set) => set,
            Err(why) => {
                answer
                    .refused
                    .push(refused(format!("channel {channel}"), why));
                continue;
            }
        };
        for (what, source) in &sources {
            match api.conditioning.precondition(source, &set, "api").await {
                Ok(rec) => answer.jobs.push(QueuedJob {
                    channel: channel.clone(),
                    status: JobStatus::from(&rec),
                }),
                Err(interlude_condition::Error::Queue(e)) => {
                    return Err(ApiError::unavailable(
                        format!("conditioning queue: {e}"),
                        Some(1),
                    ));
                }
                Err(e) => answer.refused.push(refused(what.clone(), e.to_string())),
            }
        }
    }
    Ok((StatusCode::ACCEPTED, Json(answer)))
}

/// Filter of the status route.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusQuery {
    /// A creative key (`uaid:<registry>:<value>`, `creative:<id>`, `url:<digest>`).
    #[serde(default)]
    pub creative: Option<String>,
}

async fn status(
    State(api): State<ConditionApi>,
    Query(q): Query<StatusQuery>,
) -> Result<Json<Vec<JobStatus>>, ApiError> {
    let jobs = api
        .conditioning
        .conditioner()
        .queue()
        .list()
        .await
        .map_err(|e| ApiError::unavailable(format!("conditioning queue: {e}"), Some(1)))?;
    Ok(Json(
        jobs.iter()
            .filter(|r| {
                q.creative
                    .as_deref()
                    .is_none_or(|c| r.spec.creative.as_str() == c)
            })
            .take(MAX_LISTED)
            .map(JobStatus::from)
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_published_outputs_are_servable() {
        assert!(servable(
            "uaid_ad-id_org_X-1a2b/feedface/640x360_25_410k/ts/000.ts"
        ));
        for bad in [
            "",
            "../secret",
            "a/../../b",
            ".work/x/source",
            "id/hash/.640x360_25_410k.partial/ts/000.ts",
            "a//b",
            "a/b c",
        ] {
            assert!(!servable(bad), "{bad:?} must not be served");
        }
        assert_eq!(
            content_type("x/ts/index.m3u8"),
            "application/vnd.apple.mpegurl"
        );
        assert_eq!(content_type("x/ts/000.ts"), "video/mp2t");
    }
}
