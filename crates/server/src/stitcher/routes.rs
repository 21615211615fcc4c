//! HTTP routes of the stitcher. Thin: parse the request, call [`Stitcher`], map the result.
//!
//! - `POST /v1/sessions` — explicit session start; returns the session's master playlist and tracking URLs.
//! - `GET /v1/channels/{channel}/master.m3u8?device=…` — implicit session start for players without one.
//! - `GET /s/{session}/master.m3u8`, `GET /s/{session}/{rendition}/media.m3u8` — the viewer's playlists.
//! - `GET /s/{session}/manifest.mpd` — the viewer's DASH MPD (channels with a `dash_origin`);
//!   `GET /v1/channels/{channel}/manifest.mpd?device=…` starts a session and redirects there.
//! - `GET /s/{session}/interstitials/{break}/assets.json` — an HLS Interstitials session's asset list for a break
//!   (sessions created with `mode: interstitials`, see `sgai`); `…/{break}/slate.m3u8` its slate asset.
//! - `GET /s/{session}/ads/{ad_instance}/{rendition}/{n}.ts` (`.m4s` for fMP4 ads) — ad segment: server-side
//!   beacons, then a redirect to the creative's segment (or, in proxy mode, the segment itself, retimed).
//! - `GET /s/{session}/ads/{ad_instance}/{rendition}/video-{n}.m4s` (`audio-{n}.m4s`, `video-init.mp4`,
//!   `audio-init.mp4`) — one track of an fMP4 ad, for DASH sessions over CMAF (see `tracks`): the video track's
//!   media segments fire the beacons; `GET /s/{session}/slate-tracks/{rendition}/…` the same for slate.
//! - `GET /s/{session}/slate/{rendition}/{break_msn}/{offset_us}/{duration_us}.ts` (`.m4s` for fMP4) — proxy
//!   mode only: a slate segment retimed to play `offset_us` into the break, cut to `duration_us` when the break
//!   ends sooner.
//! - `GET /v1/sessions/{session}/tracking` — the session's avails and ads for client-side reporting.
//! - `GET /v1/channels/{channel}/origin/{rendition}.m3u8` — the origin's playlist as last fetched, unmodified.
//!
//! Starting a session is bounded: the body of `POST /v1/sessions` ([`MAX_SESSION_BODY_BYTES`], else 413), each
//! string and list of a session request (the `MAX_SESSION_…` constants, else 400 naming the field), the
//! sessions one client address may start per second (`stitcher.session_rate_per_ip`, else 429 with
//! `Retry-After`), and the sessions of the node (`stitcher.max_sessions`, else 503).

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use interlude_decision::ViewerContext;
use serde::{Deserialize, Serialize};

use super::session::SessionMode;
use super::tracking::tracking_document;
use super::{StitchError, Stitcher};
use crate::edge::client::ClientIp;
use crate::error::ApiError;
use crate::privacy::edge::SignalParams;

const M3U8: &str = "application/vnd.apple.mpegurl";

/// Bytes of a `POST /v1/sessions` body, refused with 413 beyond. A typical request is a few hundred bytes;
/// this leaves room for long consent strings and a full audience, not for a megabyte of list entries.
pub const MAX_SESSION_BODY_BYTES: usize = 16 * 1024;

/// Bytes of one string of a session request: the channel, each viewer field, each audience segment, each
/// key and value, each privacy signal but the consent strings. Ids, codes and names fit with room to spare.
pub const MAX_SESSION_STRING_BYTES: usize = 256;

/// Bytes of a consent string (`gdpr_consent`, `gpp`): TCF and GPP strings with vendor sections and publisher
/// restrictions run to a few kilobytes.
pub const MAX_CONSENT_STRING_BYTES: usize = 4096;

/// Audience segments of one session: targeting uses a handful; every one is carried into each decision.
pub const MAX_SESSION_SEGMENTS: usize = 64;

/// Custom key-values of one session.
pub const MAX_SESSION_KEY_VALUES: usize = 32;

/// The stitcher's routes. Playlists, segments and tracking carry no credentials: the session id in the path is
/// the capability. Which web origins may call them from a browser is the edge's CORS policy
/// ([`crate::edge::cors`]), applied by the composition root.
pub fn router(stitcher: Arc<Stitcher>) -> Router {
    Router::new()
        .route(
            "/v1/sessions",
            post(create_session).layer(DefaultBodyLimit::max(MAX_SESSION_BODY_BYTES)),
        )
        .route("/v1/sessions/{session}/tracking", get(tracking))
        .route("/v1/channels/{channel}/master.m3u8", get(implicit_session))
        .route(
            "/v1/channels/{channel}/manifest.mpd",
            get(implicit_dash_session),
        )
        .route(
            "/v1/channels/{channel}/origin/{rendition}",
            get(origin_passthrough),
        )
        .route("/s/{session}/master.m3u8", get(master))
        .route("/s/{session}/manifest.mpd", get(dash_manifest))
        .route(
            "/s/{session}/interstitials/{break_id}/assets.json",
            get(asset_list),
        )
        .route(
            "/s/{session}/interstitials/{break_id}/slate.m3u8",
            get(super::sgai::slate_route),
        )
        .route("/s/{session}/{rendition}/media.m3u8", get(media))
        .route(
            "/s/{session}/ads/{ad}/{rendition}/{segment}",
            get(ad_segment),
        )
        .route(
            "/s/{session}/slate/{rendition}/{break_msn}/{offset}/{duration}",
            get(slate_segment),
        )
        .route(
            "/s/{session}/slate-tracks/{rendition}/{file}",
            get(slate_track),
        )
        .with_state(stitcher)
}

/// Body of `POST /v1/sessions`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateSession {
    channel: String,
    #[serde(default)]
    viewer: ViewerContext,
    /// Consent signals and the device id, as the IAB macros name them (see `docs/privacy.md`).
    #[serde(default)]
    privacy: SignalParams,
    /// `stitched` (default) or `interstitials` (HLS Interstitials: the player inserts the ads).
    #[serde(default)]
    mode: SessionMode,
}

/// Answer to `POST /v1/sessions`.
#[derive(Debug, Serialize)]
struct SessionCreated {
    session_id: String,
    master_url: String,
    tracking_url: String,
}

async fn create_session(
    State(stitcher): State<Arc<Stitcher>>,
    client: ClientIp,
    headers: HeaderMap,
    body: Result<Json<CreateSession>, JsonRejection>,
) -> Result<(StatusCode, Json<SessionCreated>), ApiError> {
    // Each rejection keeps its own status: 413 over the body limit, 422 for a well-formed body with a wrong
    // or unknown field, 400 for the rest.
    let Json(body) = body.map_err(|e| ApiError::client(e.status(), e.body_text()))?;
    check_string("channel", Some(&body.channel), MAX_SESSION_STRING_BYTES)?;
    check_viewer(&body.viewer)?;
    check_signals("privacy.", &body.privacy)?;
    stitcher.admit_client(client.0)?;
    let viewer = stitcher.admit_viewer(body.viewer, &body.privacy, &headers, client.0);
    let session = stitcher
        .create_session_in(&body.channel, viewer, body.mode)
        .await?;
    let base = stitcher.base_url();
    Ok((
        StatusCode::CREATED,
        Json(SessionCreated {
            master_url: format!("{base}/s/{}/master.m3u8", session.id),
            tracking_url: format!("{base}/v1/sessions/{}/tracking", session.id),
            session_id: session.id.clone(),
        }),
    ))
}

/// 400 naming `field` when `value` is longer than `max` bytes.
fn check_string(field: &str, value: Option<&str>, max: usize) -> Result<(), ApiError> {
    match value {
        Some(v) if v.len() > max => Err(ApiError::bad_request(format!(
            "{field}: at most {max} bytes, got {}",
            v.len()
        ))),
        _ => Ok(()),
    }
}

/// 400 naming `field` when it has more than `max` entries.
fn check_count(field: &str, len: usize, max: usize) -> Result<(), ApiError> {
    if len > max {
        return Err(ApiError::bad_request(format!(
            "{field}: at most {max} entries, got {len}"
        )));
    }
    Ok(())
}

/// The bounds on a session's viewer, fields named as in the `POST /v1/sessions` body.
fn check_viewer(viewer: &ViewerContext) -> Result<(), ApiError> {
    let max = MAX_SESSION_STRING_BYTES;
    for (field, value) in [
        ("viewer.viewer_id", &viewer.viewer_id),
        ("viewer.device", &viewer.device),
        ("viewer.platform", &viewer.platform),
        ("viewer.country", &viewer.country),
        ("viewer.region", &viewer.region),
        ("viewer.content_id", &viewer.content_id),
        ("viewer.genre", &viewer.genre),
        ("viewer.timezone", &viewer.timezone),
    ] {
        check_string(field, value.as_deref(), max)?;
    }
    check_count(
        "viewer.segments",
        viewer.segments.len(),
        MAX_SESSION_SEGMENTS,
    )?;
    for (i, segment) in viewer.segments.iter().enumerate() {
        check_string(&format!("viewer.segments[{i}]"), Some(segment), max)?;
    }
    check_count(
        "viewer.key_values",
        viewer.key_values.len(),
        MAX_SESSION_KEY_VALUES,
    )?;
    for (i, (key, value)) in viewer.key_values.iter().enumerate() {
        check_string(&format!("viewer.key_values[{i}]"), Some(key), max)?;
        check_string(&format!("viewer.key_values[{i}]"), Some(value), max)?;
    }
    Ok(())
}

/// The bounds on consent signals, fields named with `prefix` (`privacy.` in the body, none in a query).
fn check_signals(prefix: &str, signals: &SignalParams) -> Result<(), ApiError> {
    for (field, value, max) in [
        ("gdpr", &signals.gdpr, MAX_SESSION_STRING_BYTES),
        (
            "gdpr_consent",
            &signals.gdpr_consent,
            MAX_CONSENT_STRING_BYTES,
        ),
        ("gpp", &signals.gpp, MAX_CONSENT_STRING_BYTES),
        ("gpp_sid", &signals.gpp_sid, MAX_SESSION_STRING_BYTES),
        ("us_privacy", &signals.us_privacy, MAX_SESSION_STRING_BYTES),
        ("lmt", &signals.lmt, MAX_SESSION_STRING_BYTES),
        ("coppa", &signals.coppa, MAX_SESSION_STRING_BYTES),
        ("device_id", &signals.device_id, MAX_SESSION_STRING_BYTES),
    ] {
        check_string(&format!("{prefix}{field}"), value.as_deref(), max)?;
    }
    Ok(())
}

/// Viewer context from query parameters, for the implicit form.
#[derive(Debug, Deserialize, Default)]
struct ViewerQuery {
    device: Option<String>,
    platform: Option<String>,
    country: Option<String>,
    region: Option<String>,
    content: Option<String>,
    genre: Option<String>,
    consent: Option<bool>,
    viewer: Option<String>,
    /// IANA time zone for daypart targeting.
    tz: Option<String>,
    /// Consent signals (IAB macro names) and the device's advertising id.
    gdpr: Option<String>,
    gdpr_consent: Option<String>,
    gpp: Option<String>,
    gpp_sid: Option<String>,
    us_privacy: Option<String>,
    lmt: Option<String>,
    coppa: Option<String>,
    device_id: Option<String>,
    /// `stitched` (default) or `interstitials`.
    mode: Option<SessionMode>,
}

async fn implicit_session(
    State(stitcher): State<Arc<Stitcher>>,
    Path(channel): Path<String>,
    client: ClientIp,
    headers: HeaderMap,
    Query(q): Query<ViewerQuery>,
) -> Result<Response, ApiError> {
    let session = session_from_query(&stitcher, &channel, client.0, &headers, q).await?;
    master_response(&stitcher, &session.id).await
}

/// `GET /v1/channels/{channel}/manifest.mpd?…`: a new DASH session, redirected to its own MPD URL (a DASH
/// player refreshes the MPD at the URL it ends up on).
async fn implicit_dash_session(
    State(stitcher): State<Arc<Stitcher>>,
    Path(channel): Path<String>,
    client: ClientIp,
    headers: HeaderMap,
    Query(q): Query<ViewerQuery>,
) -> Result<Response, ApiError> {
    let session = session_from_query(&stitcher, &channel, client.0, &headers, q).await?;
    let url = format!("{}/s/{}/manifest.mpd", stitcher.base_url(), session.id);
    Ok(Redirect::temporary(&url).into_response())
}

/// A session from the implicit form's query; the query's fields are bounded like the body's, and named as
/// the query names them.
async fn session_from_query(
    stitcher: &Arc<Stitcher>,
    channel: &str,
    client: Option<IpAddr>,
    headers: &HeaderMap,
    q: ViewerQuery,
) -> Result<Arc<super::session::Session>, ApiError> {
    for (field, value) in [
        ("device", &q.device),
        ("platform", &q.platform),
        ("country", &q.country),
        ("region", &q.region),
        ("content", &q.content),
        ("genre", &q.genre),
        ("viewer", &q.viewer),
        ("tz", &q.tz),
    ] {
        check_string(field, value.as_deref(), MAX_SESSION_STRING_BYTES)?;
    }
    let mode = q.mode;
    let signals = SignalParams {
        gdpr: q.gdpr,
        gdpr_consent: q.gdpr_consent,
        gpp: q.gpp,
        gpp_sid: q.gpp_sid,
        us_privacy: q.us_privacy,
        lmt: q.lmt,
        coppa: q.coppa,
        device_id: q.device_id,
    };
    let viewer = ViewerContext {
        viewer_id: q.viewer,
        device: q.device,
        platform: q.platform,
        country: q.country,
        region: q.region,
        content_id: q.content,
        genre: q.genre,
        consent: q.consent,
        segments: Vec::new(),
        timezone: q.tz,
        key_values: Vec::new(),
        opt_out_sale: false,
        privacy: Default::default(),
    };
    check_signals("", &signals)?;
    stitcher.admit_client(client)?;
    let viewer = stitcher.admit_viewer(viewer, &signals, headers, client);
    Ok(stitcher
        .create_session_in(channel, viewer, mode.unwrap_or_default())
        .await?)
}

async fn master(
    State(stitcher): State<Arc<Stitcher>>,
    Path(session): Path<String>,
) -> Result<Response, ApiError> {
    master_response(&stitcher, &session).await
}

/// The session's DASH MPD (see `dash`).
async fn dash_manifest(
    State(stitcher): State<Arc<Stitcher>>,
    Path(session): Path<String>,
) -> Result<Response, ApiError> {
    let session = stitcher.session(&session).await?;
    let text = stitcher.dash_manifest(&session).await?;
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/dash+xml"),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}

async fn master_response(stitcher: &Stitcher, session_id: &str) -> Result<Response, ApiError> {
    let session = stitcher.session(session_id).await?;
    let text = stitcher.master_playlist(&session)?;
    Ok(playlist_response(text))
}

async fn media(
    State(stitcher): State<Arc<Stitcher>>,
    Path((session, rendition)): Path<(String, usize)>,
) -> Result<Response, ApiError> {
    let session = stitcher.session(&session).await?;
    if session.mode == SessionMode::Interstitials {
        return Ok(playlist_response(
            stitcher.interstitial_playlist(&session, rendition)?,
        ));
    }
    stitcher.decide_pending(&session).await;
    let mut out = String::with_capacity(2048);
    stitcher
        .media_playlist(&session, rendition, &mut out)
        .await?;
    Ok(playlist_response(out))
}

/// The asset list of an interstitial break (see `sgai`).
async fn asset_list(
    State(stitcher): State<Arc<Stitcher>>,
    Path((session, break_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let session = stitcher.session(&session).await?;
    let list = stitcher.asset_list(&session, &break_id).await?;
    let mut response = Json(list).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}

async fn ad_segment(
    State(stitcher): State<Arc<Stitcher>>,
    Path((session, ad, rendition, segment)): Path<(String, String, usize, String)>,
) -> Result<Response, ApiError> {
    // One track of an fMP4 ad, for DASH (`video-3.m4s`, `audio-init.mp4`, see `tracks`).
    if let Some((kind, file)) = super::tracks::parse_track_file(&segment) {
        let session = stitcher.session(&session).await?;
        let bytes = stitcher
            .ad_track_segment(&session, &ad, rendition, &segment)
            .await?;
        // The video track's media segments are the ones that fire beacons.
        if kind == super::tracks::TrackKind::Video && file != super::tracks::TrackFile::Init {
            metrics::counter!(crate::telemetry::metrics::STITCHER_AD_SEGMENTS_SERVED, "channel" => session.channel.clone())
                .increment(1);
        }
        return Ok(segment_response(bytes, track_content_type(kind, file)));
    }
    // `.m4s` for fragmented MP4 ads (the playlist names them by their container).
    let index: usize = segment
        .strip_suffix(".ts")
        .or_else(|| segment.strip_suffix(".m4s"))
        .and_then(|n| n.parse().ok())
        .ok_or(StitchError::UnknownAdSegment)?;
    let session = stitcher.session(&session).await?;
    // Counted once served: each should come back as counted beacons (the drop alert compares the two).
    let served = || {
        metrics::counter!(crate::telemetry::metrics::STITCHER_AD_SEGMENTS_SERVED, "channel" => session.channel.clone())
            .increment(1);
    };
    if stitcher.proxies_segments() {
        let bytes = stitcher
            .proxied_ad_segment(&session, &ad, rendition, index)
            .await?;
        served();
        let fmp4 = segment.ends_with(".m4s");
        return Ok(segment_response(
            bytes,
            if fmp4 {
                "video/iso.segment"
            } else {
                "video/mp2t"
            },
        ));
    }
    let url = stitcher.ad_segment(&session, &ad, rendition, index)?;
    served();
    Ok(Redirect::temporary(&url).into_response())
}

/// `GET /s/{session}/slate-tracks/{rendition}/{file}`: one track of the channel's fMP4 slate (DASH over CMAF).
async fn slate_track(
    State(stitcher): State<Arc<Stitcher>>,
    Path((session, rendition, file)): Path<(String, usize, String)>,
) -> Result<Response, ApiError> {
    let (kind, part) =
        super::tracks::parse_track_file(&file).ok_or(StitchError::UnknownAdSegment)?;
    let session = stitcher.session(&session).await?;
    let bytes = stitcher
        .slate_track_segment(&session, rendition, &file)
        .await?;
    Ok(segment_response(bytes, track_content_type(kind, part)))
}

/// RFC 4337 / ISO/IEC 23009-1 Annex C: `video/mp4` and `audio/mp4` for init segments, `video/iso.segment`
/// for media segments (what the muxed `.m4s` route serves).
fn track_content_type(
    kind: super::tracks::TrackKind,
    file: super::tracks::TrackFile,
) -> &'static str {
    match (kind, file) {
        (super::tracks::TrackKind::Video, super::tracks::TrackFile::Init) => "video/mp4",
        (super::tracks::TrackKind::Audio, super::tracks::TrackFile::Init) => "audio/mp4",
        _ => "video/iso.segment",
    }
}

async fn slate_segment(
    State(stitcher): State<Arc<Stitcher>>,
    Path((session, rendition, break_msn, offset, duration)): Path<(
        String,
        usize,
        u64,
        u64,
        String,
    )>,
) -> Result<Response, ApiError> {
    let fmp4 = duration.ends_with(".m4s");
    let duration: u64 = duration
        .strip_suffix(".ts")
        .or_else(|| duration.strip_suffix(".m4s"))
        .and_then(|n| n.parse().ok())
        .ok_or(StitchError::UnknownAdSegment)?;
    let session = stitcher.session(&session).await?;
    let bytes = stitcher
        .proxied_slate_segment(&session, rendition, break_msn, offset, duration)
        .await?;
    Ok(segment_response(
        bytes,
        if fmp4 {
            "video/iso.segment"
        } else {
            "video/mp2t"
        },
    ))
}

fn segment_response(bytes: bytes::Bytes, content_type: &'static str) -> Response {
    let mut response = Response::new(bytes.into());
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Retimed for one break of one channel: the same for every viewer of that break, so a shared cache may keep
    // it briefly, but never beyond the break.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    response
}

async fn tracking(
    State(stitcher): State<Arc<Stitcher>>,
    Path(session): Path<String>,
) -> Result<Response, ApiError> {
    let session = stitcher.session(&session).await?;
    Ok(Json(tracking_document(&stitcher, &session)?).into_response())
}

async fn origin_passthrough(
    State(stitcher): State<Arc<Stitcher>>,
    Path((channel, rendition)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let index: usize = rendition
        .strip_suffix(".m3u8")
        .and_then(|n| n.parse().ok())
        .ok_or(StitchError::UnknownRendition(usize::MAX))?;
    let snapshot = stitcher.channel(&channel)?.snapshot();
    let raw = snapshot
        .renditions
        .get(index)
        .ok_or(StitchError::UnknownRendition(index))?
        .raw
        .clone();
    Ok(playlist_response(raw))
}

fn playlist_response(body: impl Into<axum::body::Body>) -> Response {
    let mut response = Response::new(body.into());
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(M3U8));
    // Per-viewer playlists must never be cached by a CDN or shared cache.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    response
}
