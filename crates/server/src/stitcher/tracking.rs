//! The client-side tracking document: a session's avails and ads with their times, for players that report
//! their own beacons (`GET /v1/sessions/{id}/tracking`).

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use interlude_stitch::pod::micros_to_secs;
use serde::Serialize;

use super::session::Session;
use super::{StitchError, Stitcher};

/// The document.
#[derive(Debug, Serialize)]
pub struct TrackingDocument {
    /// Session id.
    pub session_id: String,
    /// Breaks the session has a decision for, oldest first.
    pub avails: Vec<Avail>,
}

/// One break as the viewer sees it.
#[derive(Debug, Serialize)]
pub struct Avail {
    /// Break id.
    pub avail_id: String,
    /// Program date time of the break start, when the origin provides one.
    pub start_time: Option<String>,
    /// Planned duration, when signalled.
    pub planned_duration_secs: Option<f64>,
    /// Actual duration, once ended.
    pub duration_secs: Option<f64>,
    /// The ads in play order.
    pub ads: Vec<TrackedAd>,
}

/// One ad of an avail.
#[derive(Debug, Serialize)]
pub struct TrackedAd {
    /// Ad instance id: report it with every beacon.
    pub ad_instance_id: String,
    /// Creative id.
    pub creative_id: String,
    /// Line item, when the ad came from the catalog (report it with client-side events).
    pub line_item_id: Option<String>,
    /// Campaign, when the ad came from the catalog.
    pub campaign_id: Option<String>,
    /// Seconds from the break start.
    pub offset_secs: f64,
    /// Program date time of the ad start, when known.
    pub start_time: Option<String>,
    /// Duration in seconds.
    pub duration_secs: f64,
    /// Tracking events and when they are due, in seconds from the ad start.
    pub tracking_events: Vec<TrackingEvent>,
}

/// One tracking event of an ad.
#[derive(Debug, Serialize)]
pub struct TrackingEvent {
    /// VAST event name.
    pub event_type: &'static str,
    /// Seconds from the ad start when it is due.
    pub offset_secs: f64,
    /// Third-party URLs the player calls; empty for a stitched session, whose pixels the server fires.
    pub beacon_urls: Vec<String>,
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Builds the document from the session's decisions and the channel's breaks.
pub(crate) fn tracking_document(
    stitcher: &Stitcher,
    session: &Session,
) -> Result<TrackingDocument, StitchError> {
    let snapshot = stitcher.channel(&session.channel)?.snapshot();
    // The server fires the third parties' pixels of a stitched session's ads itself, when it counts the
    // event from the segment fetch (`crate::pixels`): a player given them too would fire them a second time.
    // An interstitials session's player fetches the ads itself and nothing is fired for it server-side.
    let server_fires = session.mode != super::session::SessionMode::Interstitials;
    let mut avails = Vec::new();
    for tracked in snapshot.breaks.iter() {
        let Some(decision) = session.decision(&tracked.id) else {
            continue;
        };
        if decision.plan.is_none() {
            continue;
        }
        let mut ads = Vec::new();
        // Ads play back to back from the break start, in pod order; slate follows them.
        let mut offset = 0u64;
        for resolved in &decision.ads {
            let ad_micros: u64 = resolved.segment_micros.iter().sum();
            let duration = micros_to_secs(ad_micros);
            let start = tracked.start_pdt.and_then(|pdt| {
                pdt.checked_add_signed(TimeDelta::microseconds(i64::try_from(offset).unwrap_or(0)))
            });
            let events = [
                ("impression", 0.0),
                ("start", 0.0),
                ("firstQuartile", 0.25),
                ("midpoint", 0.5),
                ("thirdQuartile", 0.75),
                ("complete", 1.0),
            ];
            ads.push(TrackedAd {
                ad_instance_id: resolved.ad.ad_instance_id.clone(),
                creative_id: resolved.ad.creative_id.clone(),
                line_item_id: resolved.ad.line_item_id.clone(),
                campaign_id: resolved.ad.campaign_id.clone(),
                offset_secs: micros_to_secs(offset),
                start_time: start.map(iso),
                duration_secs: duration,
                tracking_events: events
                    .iter()
                    .map(|&(event_type, f)| TrackingEvent {
                        event_type,
                        offset_secs: duration * f,
                        beacon_urls: if event_type == "impression" && !server_fires {
                            crate::pixels::client_impression_urls(&resolved.ad)
                        } else {
                            Vec::new()
                        },
                    })
                    .collect(),
            });
            offset += ad_micros;
        }
        avails.push(Avail {
            avail_id: tracked.id.clone(),
            start_time: tracked.start_pdt.map(iso),
            planned_duration_secs: tracked.planned_micros.map(micros_to_secs),
            duration_secs: tracked
                .is_ended()
                .then(|| micros_to_secs(tracked.elapsed_micros())),
            ads,
        });
    }
    Ok(TrackingDocument {
        session_id: session.id.clone(),
        avails,
    })
}
