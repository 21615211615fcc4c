//! `GET /v1/vast?channel=…&duration=…&device=…`: a pod for client-side ad insertion players, as a VAST 4.2
//! document, decided by the same engine as the stitcher's pods.
//!
//! Each ad is an InLine with `sequence` (its place in the pod, VAST 4.2 §3.3.1), its creative's HLS renditions
//! as streaming MediaFiles, and impression and quartile tracking URLs that are signed collector pixels, so the
//! player's beacons are validated, deduplicated with any server-side report and counted by the pipeline.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use interlude_decision::engine::Engine;
use interlude_events::contract::EventType;
use interlude_events::token::TokenClaims;
use interlude_stitch::PodAd;
use interlude_vast::{
    Ad, AdBody, AdCommon, AdSystem, Creative, Delivery, Impression, InLine, Linear, MediaFile,
    MediaFiles, Time, Tracking, TrackingEvent, UniversalAdId, Vast,
};

use crate::collector::Collector;
use crate::decisions::BreakQuery;

#[derive(Clone)]
struct VastState {
    engine: Arc<Engine>,
    collector: Collector,
    base_url: String,
    clock: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>,
}

/// The VAST route.
pub fn router(
    engine: Arc<Engine>,
    collector: Collector,
    base_url: String,
    clock: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>,
) -> Router {
    Router::new()
        .route("/v1/vast", get(vast))
        .with_state(VastState {
            engine,
            collector,
            base_url,
            clock,
        })
}

fn time(secs: f64) -> Option<Time> {
    let ms = (secs * 1000.0).round() as u64;
    Time::parse(&format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    ))
    .ok()
}

/// One decided ad as a VAST InLine ad.
fn inline_ad(s: &VastState, ad: &PodAd, sequence: u64, session: &str, channel: &str) -> Ad {
    let now = (s.clock)();
    let pixel = |event: EventType| {
        let claims = TokenClaims {
            ad_instance_id: ad.ad_instance_id.clone(),
            event_type: event,
            session_id: session.to_owned(),
            creative_id: ad.creative_id.clone(),
            line_item_id: ad.line_item_id.clone(),
            channel: channel.to_owned(),
            issued_at: u32::try_from(now.timestamp()).unwrap_or(0),
        };
        s.collector
            .tracking_path(&claims)
            .map(|p| format!("{}{p}", s.base_url))
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
        .collect();
    let common = AdCommon {
        ad_system: Some(AdSystem {
            name: "Interlude".to_owned(),
            version: Some(env!("CARGO_PKG_VERSION").to_owned()),
        }),
        impressions: pixel(EventType::Impression)
            .map(|url| Impression { id: None, url })
            .into_iter()
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

async fn vast(State(s): State<VastState>, Query(q): Query<BreakQuery>) -> Response {
    let request = q.into_request(
        || format!("csai-{}", uuid::Uuid::new_v4().simple()),
        format!("vast-{}", (s.clock)().timestamp_millis()),
    );
    let (session, channel) = (request.session_id.clone(), request.channel.clone());
    let decision = s.engine.decide(&request, (s.clock)(), false);
    let document = Vast {
        version: interlude_vast::WRITTEN_VERSION.to_owned(),
        ads: decision
            .pod
            .ads
            .iter()
            .enumerate()
            .map(|(i, ad)| inline_ad(&s, ad, i as u64 + 1, &session, &channel))
            .collect(),
        errors: Vec::new(),
    };
    match interlude_vast::write_vast(&document) {
        Ok(xml) => {
            let mut response = xml.into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/xml"),
            );
            response
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}
