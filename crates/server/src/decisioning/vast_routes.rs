//! `GET /v1/vast?channel=…&duration=…&device=…`: a pod for client-side ad insertion players, as a VAST 4.2
//! document, decided by the same engine (and third-party demand) as the stitcher's pods; and
//! `GET /v1/vmap?channel=…&breaks=start,00:10:00,50%,end&duration=…`: a VMAP 1.0 schedule for VOD-style players,
//! one decided pod per break, inline (`VASTAdData`) or, with `source=tag`, as an `AdTagURI` to `/v1/vast` so
//! the pod is decided when the player reaches the break. A schedule has at most [`MAX_VMAP_BREAKS`] positions.
//!
//! Each ad is an InLine with `sequence` (its place in the pod, VAST 4.2 §3.3.1), its creative's HLS renditions
//! as streaming MediaFiles, and impression and quartile tracking URLs that are signed collector pixels, so the
//! player's beacons are validated, deduplicated with any server-side report and counted by the pipeline. A
//! third-party ad (a bid, a line item's VAST tag) also carries its own impression and tracking URLs.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, RawQuery, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use interlude_decision::{PodAd, PodRequest};
use interlude_events::contract::EventType;
use interlude_events::token::TokenClaims;
use interlude_vast::vmap::{AdBreak, AdSource, AdSourceData, BreakType, TimeOffset};
use interlude_vast::{
    Ad, AdBody, AdCommon, AdSystem, Creative, Delivery, Impression, InLine, Linear, MediaFile,
    MediaFiles, Time, Tracking, TrackingEvent, UniversalAdId, Vast, Vmap,
};
use serde::Deserialize;

use crate::collector::Collector;
use crate::decisioning::decider::Decider;
use crate::decisioning::explain::BreakQuery;

/// Break positions one VMAP request may ask for: each inline break is a full decision, so the list is the
/// request's cost. A long-form programme has a pre-roll, a post-roll and a mid-roll every few minutes.
pub const MAX_VMAP_BREAKS: usize = 50;

#[derive(Clone)]
struct VastState {
    decider: Arc<Decider>,
    collector: Collector,
    /// This server's base URL (VMAP's ad tag URIs).
    base_url: String,
    /// The base of tracking URLs (the beacon listener's when there is one).
    beacon_base_url: String,
}

/// The VAST and VMAP routes: ad tag URIs under `base_url`, tracking pixels under `beacon_base_url`.
pub fn router(
    decider: Arc<Decider>,
    collector: Collector,
    base_url: String,
    beacon_base_url: String,
) -> Router {
    Router::new()
        .route("/v1/vast", get(vast))
        .route("/v1/vmap", get(vmap))
        .with_state(VastState {
            decider,
            collector,
            base_url,
            beacon_base_url,
        })
}

fn time(secs: f64) -> Option<Time> {
    (secs.is_finite() && secs >= 0.0).then(|| Time::from_millis((secs * 1000.0).round() as u64))
}

/// One decided ad as a VAST InLine ad.
fn inline_ad(s: &VastState, ad: &PodAd, sequence: u64, session: &str, channel: &str) -> Ad {
    let now = s.decider.now();
    let pixel = |event: EventType| {
        let claims = TokenClaims {
            ad_instance_id: ad.ad_instance_id.clone(),
            event_type: event,
            session_id: session.to_owned(),
            creative_id: ad.creative_id.clone(),
            line_item_id: ad.line_item_id.clone(),
            channel: channel.to_owned(),
            issued_at: u32::try_from(now.timestamp()).unwrap_or(0),
            demand: ad.bid.as_ref().map(super::demand::of_bid),
        };
        s.collector
            .tracking_path(&claims)
            .map(|p| format!("{}{p}", s.beacon_base_url))
    };
    let tracking = [
        (EventType::Start, TrackingEvent::Start),
        (EventType::FirstQuartile, TrackingEvent::FirstQuartile),
        (EventType::Midpoint, TrackingEvent::Midpoint),
        (EventType::ThirdQuartile, TrackingEvent::ThirdQuartile),
        (EventType::Complete, TrackingEvent::Complete),
    ]
    .into_iter()
    .filter_map(|(ours, theirs)| {
        Some(Tracking {
            event: theirs,
            offset: None,
            url: pixel(ours)?,
        })
    })
    .chain(ad.tracking_urls.iter().filter_map(|(event, url)| {
        Some(Tracking {
            event: TrackingEvent::parse(event)?,
            offset: None,
            url: url.clone(),
        })
    }))
    .collect();
    let media_files = ad
        .renditions
        .iter()
        .map(|r| MediaFile {
            delivery: Delivery::Streaming,
            mime_type: "application/x-mpegURL".to_owned(),
            width: r.resolution.map_or(0, |(w, _)| u64::from(w)),
            height: r.resolution.map_or(0, |(_, h)| u64::from(h)),
            bitrate: Some(r.bandwidth / 1000),
            url: r.playlist_url.clone(),
            ..MediaFile::default()
        })
        // An ad offered as files (a direct-sold MP4, or a third party's) plays as it is on the client: its
        // progressive files, never a mezzanine (the transcoding master, VAST 4.2 §3.9.3).
        .chain(
            ad.source
                .iter()
                .flat_map(|s| s.files.iter())
                .filter(|f| f.progressive && !f.mezzanine && f.api_framework.is_none())
                .filter(|f| f.mime_type.starts_with("video/"))
                .map(|f| MediaFile {
                    delivery: Delivery::Progressive,
                    mime_type: f.mime_type.clone(),
                    width: f.width,
                    height: f.height,
                    bitrate: f.bitrate_kbps,
                    url: f.uri.clone(),
                    ..MediaFile::default()
                }),
        )
        .collect();
    let common = AdCommon {
        ad_system: Some(AdSystem {
            name: "Interlude".to_owned(),
            version: Some(env!("CARGO_PKG_VERSION").to_owned()),
        }),
        impressions: pixel(EventType::Impression)
            .into_iter()
            .chain(crate::pixels::client_impression_urls(ad))
            .map(|url| Impression { id: None, url })
            .collect(),
        ..AdCommon::default()
    };
    Ad {
        id: Some(ad.ad_instance_id.clone()),
        sequence: Some(sequence),
        conditional_ad: None,
        ad_type: None,
        body: AdBody::InLine(Box::new(InLine {
            common,
            ad_title: Some(ad.creative_id.clone()),
            creatives: vec![Creative {
                id: Some(ad.creative_id.clone()),
                ad_id: Some(ad.creative_id.clone()),
                universal_ad_ids: vec![UniversalAdId {
                    id_registry: "interlude".to_owned(),
                    value: ad.creative_id.clone(),
                }],
                linear: Some(Linear {
                    duration: time(ad.duration_secs),
                    media_files: MediaFiles {
                        media_files,
                        ..MediaFiles::default()
                    },
                    tracking,
                    ..Linear::default()
                }),
                ..Creative::default()
            }],
            ..InLine::default()
        })),
    }
}

/// The pod `request` gets, as a VAST document.
///
/// Each ad's instance id is issued for the request's session (a MAC over both, as the stitcher does), so a
/// producer relaying this player's beacons through `POST /v1/events` can report these ads and no others.
async fn decide_vast(s: &VastState, request: &PodRequest) -> Vast {
    let mut decision = s.decider.decide(request, false, true).await.decision;
    // The pod goes to the player as it is: every ad in it is served (its VAST is the creative check).
    for ad in &decision.pod.ads {
        interlude_decision::PodSource::served(s.decider.as_ref(), ad);
    }
    for ad in &mut decision.pod.ads {
        ad.ad_instance_id = s
            .collector
            .issue_instance(&request.session_id, &ad.ad_instance_id);
    }
    Vast {
        version: interlude_vast::WRITTEN_VERSION.to_owned(),
        ads: decision
            .pod
            .ads
            .iter()
            .enumerate()
            .map(|(i, ad)| inline_ad(s, ad, i as u64 + 1, &request.session_id, &request.channel))
            .collect(),
        errors: Vec::new(),
    }
}

fn xml_response(written: interlude_vast::Result<String>) -> Response {
    match written {
        Ok(xml) => {
            let mut response = xml.into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/xml"),
            );
            response
        }
        Err(e) => crate::error::ApiError::internal(e).into_response(),
    }
}

async fn vast(State(s): State<VastState>, Query(q): Query<BreakQuery>) -> Response {
    // The break is named by the second: a client-side player's pod is not tied to a live break, and every
    // request of the same second shares one break plan (with a realistic catalog, planning costs far more
    // than a viewer's decision). Ad instance ids stay apart by the session, a fresh one unless the player
    // names its own (a player naming the same session twice in one second is retrying).
    let request = q.into_request(
        || format!("csai-{}", uuid::Uuid::new_v4().simple()),
        format!("vast-{}", s.decider.now().timestamp()),
    );
    xml_response(interlude_vast::write_vast(&decide_vast(&s, &request).await))
}

/// The schedule part of a VMAP request.
#[derive(Debug, Deserialize)]
struct Schedule {
    /// Comma-separated break positions: `start`, `end`, `HH:MM:SS[.mmm]`, `n%` or `#n`.
    breaks: String,
    /// `inline` (default): each break's pod in the document; `tag`: a `/v1/vast` URL per break.
    #[serde(default)]
    source: Option<String>,
}

async fn vmap(
    State(s): State<VastState>,
    Query(schedule): Query<Schedule>,
    Query(q): Query<BreakQuery>,
    RawQuery(raw): RawQuery,
) -> Response {
    // Counted before anything is parsed or decided.
    let asked = schedule.breaks.split(',').count();
    if asked > MAX_VMAP_BREAKS {
        return crate::error::ApiError::bad_request(format!(
            "breaks: at most {MAX_VMAP_BREAKS} positions, got {asked}"
        ))
        .into_response();
    }
    let offsets: Result<Vec<TimeOffset>, String> = schedule
        .breaks
        .split(',')
        .map(|b| TimeOffset::parse(b).map_err(|e| format!("breaks: {b:?}: {e}")))
        .collect();
    let offsets = match offsets {
        Ok(o) if !o.is_empty() => o,
        Ok(_) => return crate::error::ApiError::bad_request("breaks: none given").into_response(),
        Err(e) => return crate::error::ApiError::bad_request(e.to_string()).into_response(),
    };
    let by_tag = match schedule.source.as_deref() {
        None | Some("inline") => false,
        Some("tag") => true,
        Some(other) => {
            return crate::error::ApiError::bad_request(format!(
                "source: {other:?} is neither inline nor tag"
            ))
            .into_response();
        }
    };
    let session = format!("csai-{}", uuid::Uuid::new_v4().simple());
    let template = q.into_request(|| session.clone(), String::new());
    let mut ad_breaks = Vec::new();
    for (n, offset) in offsets.into_iter().enumerate() {
        let break_id = format!("vmap-{}-{n}", template.session_id);
        let data = if by_tag {
            // The player asks when it reaches the break: the decision then sees up-to-date caps and pacing.
            let query: String =
                url::form_urlencoded::parse(raw.as_deref().unwrap_or("").as_bytes())
                    .filter(|(k, _)| !matches!(k.as_ref(), "breaks" | "source" | "session"))
                    .fold(
                        url::form_urlencoded::Serializer::new(String::new()),
                        |mut q, (k, v)| {
                            q.append_pair(&k, &v);
                            q
                        },
                    )
                    .append_pair("session", &template.session_id)
                    .finish();
            AdSourceData::AdTagUri {
                template_type: "vast4".to_owned(),
                uri: format!("{}/v1/vast?{query}", s.base_url),
            }
        } else {
            let request = PodRequest {
                break_id: break_id.clone(),
                ..template.clone()
            };
            AdSourceData::VastAdData(Box::new(decide_vast(&s, &request).await))
        };
        ad_breaks.push(AdBreak {
            time_offset: offset,
            break_types: vec![BreakType::Linear],
            break_id: Some(break_id.clone()),
            repeat_after: None,
            ad_source: Some(AdSource {
                id: Some(break_id),
                allow_multiple_ads: Some(true),
                follow_redirects: Some(true),
                data,
            }),
            tracking: Vec::new(),
            extensions: Vec::new(),
        });
    }
    xml_response(interlude_vast::write_vmap(&Vmap {
        version: "1.0".to_owned(),
        ad_breaks,
        extensions: Vec::new(),
    }))
}
