//! Simulated viewers: each starts a session, refreshes its media playlist every target duration, and fetches
//! every new ad segment (not content bytes), as a player would. Each keeps the ground truth of what it really
//! fetched, so a run can check the server's counts exactly.
//!
//! With [`ClientBeacons`], a viewer also reports client-side beacons as it plays each ad (impression, start,
//! quartiles, complete), misbehaving as its [`BeaconPolicy`](crate::beacons::BeaconPolicy) says, and keeps the
//! [`BeaconTruth`] to check the pipeline's counts against.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use crate::beacons::{BeaconPolicy, BeaconTruth, PlayedAd, Reporter};

/// What one viewer did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ViewerTruth {
    /// Playlist refreshes that succeeded.
    pub playlists: u64,
    /// Playlist refreshes that failed.
    pub playlist_errors: u64,
    /// Ad segments fetched.
    pub ad_segments: u64,
    /// Ad instances whose first segment was fetched: each should count one impression.
    pub ads_started: HashSet<String>,
    /// Client-side beacons, when the viewer reports them.
    pub beacons: BeaconTruth,
}

/// What an audience's requests met, per endpoint: counts and a latency histogram, shared by all viewers.
#[derive(Default)]
pub struct Stats {
    endpoints: [EndpointStats; 4],
}

#[derive(Default)]
struct EndpointStats {
    ok: AtomicU64,
    errors: AtomicU64,
    latency: Mutex<Option<hdrhistogram::Histogram<u64>>>,
}

/// The endpoints a viewer calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// Media playlist refreshes (and the session creation).
    Playlist,
    /// Ad segment fetches.
    AdSegment,
    /// Tracking document fetches.
    Tracking,
    /// Client-side beacon posts.
    Events,
}

impl Endpoint {
    /// Every endpoint.
    pub const ALL: [Endpoint; 4] = [
        Endpoint::Playlist,
        Endpoint::AdSegment,
        Endpoint::Tracking,
        Endpoint::Events,
    ];

    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::Playlist => "playlist",
            Endpoint::AdSegment => "ad_segment",
            Endpoint::Tracking => "tracking",
            Endpoint::Events => "events",
        }
    }
}

/// One endpoint's figures.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct EndpointReport {
    /// Successful requests.
    pub ok: u64,
    /// Failed requests (transport errors and error statuses).
    pub errors: u64,
    /// Latency percentiles in microseconds.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
}

impl Stats {
    /// Records one request.
    pub fn record(&self, endpoint: Endpoint, ok: bool, latency: Duration) {
        let e = &self.endpoints[endpoint as usize];
        if ok {
            e.ok.fetch_add(1, Ordering::Relaxed);
        } else {
            e.errors.fetch_add(1, Ordering::Relaxed);
        }
        if let Ok(mut h) = e.latency.lock() {
            if h.is_none() {
                *h = hdrhistogram::Histogram::new_with_bounds(1, 60_000_000, 3).ok();
            }
            if let Some(h) = h.as_mut() {
                let _ = h.record((latency.as_micros() as u64).clamp(1, 60_000_000));
            }
        }
    }

    /// Requests so far (successful and failed) across endpoints.
    pub fn requests(&self) -> u64 {
        self.endpoints
            .iter()
            .map(|e| e.ok.load(Ordering::Relaxed) + e.errors.load(Ordering::Relaxed))
            .sum()
    }

    /// Failed requests so far.
    pub fn errors(&self) -> u64 {
        self.endpoints
            .iter()
            .map(|e| e.errors.load(Ordering::Relaxed))
            .sum()
    }

    /// The figures of one endpoint.
    pub fn report(&self, endpoint: Endpoint) -> EndpointReport {
        let e = &self.endpoints[endpoint as usize];
        let q = |h: &hdrhistogram::Histogram<u64>, q: f64| h.value_at_quantile(q);
        let latency = e.latency.lock().ok();
        let h = latency.as_ref().and_then(|h| h.as_ref());
        EndpointReport {
            ok: e.ok.load(Ordering::Relaxed),
            errors: e.errors.load(Ordering::Relaxed),
            p50_us: h.map_or(0, |h| q(h, 0.5)),
            p90_us: h.map_or(0, |h| q(h, 0.9)),
            p99_us: h.map_or(0, |h| q(h, 0.99)),
            p999_us: h.map_or(0, |h| q(h, 0.999)),
        }
    }
}

/// Times `request` and records it under `endpoint` when `stats` is given.
async fn timed<T, E>(
    stats: Option<&Stats>,
    endpoint: Endpoint,
    request: impl std::future::Future<Output = Result<T, E>>,
    ok: impl FnOnce(&T) -> bool,
) -> Result<T, E> {
    let started = std::time::Instant::now();
    let out = request.await;
    if let Some(s) = stats {
        s.record(endpoint, out.as_ref().is_ok_and(ok), started.elapsed());
    }
    out
}

/// Client-side reporting for a viewer.
#[derive(Clone)]
pub struct ClientBeacons {
    /// How the player misbehaves.
    pub policy: BeaconPolicy,
    /// Seed of the viewer's random choices.
    pub seed: u64,
    /// Channel time runs this many times faster than real time.
    pub speed: f64,
    /// The channel's clock (event times).
    pub clock: interlude_events::Clock,
    /// Whether the viewer also fetches the ad segments (server-side beacons then count too).
    pub fetch_ad_segments: bool,
    /// Base URL of the collector the events go to (`{collector}/v1/events`).
    pub collector: String,
}

/// One viewer of `channel` on the stitcher at `base` (e.g. `http://127.0.0.1:8080`), until `stop` is set;
/// `viewer_id` is the player's own id, sent with the session (frequency caps count viewers by it).
pub async fn watch(
    http: reqwest::Client,
    base: String,
    channel: String,
    rendition: usize,
    refresh: Duration,
    stop: Arc<AtomicBool>,
    viewer_id: Option<String>,
) -> ViewerTruth {
    watch_with(Viewer {
        http,
        base,
        channel,
        rendition,
        refresh,
        stop,
        client: None,
        stats: None,
        viewer_id,
    })
    .await
}

/// Everything one viewer needs.
pub struct Viewer {
    /// The HTTP client (shared by an audience).
    pub http: reqwest::Client,
    /// The stitcher's base URL.
    pub base: String,
    /// The channel.
    pub channel: String,
    /// Content rendition the player picks.
    pub rendition: usize,
    /// Playlist refresh interval.
    pub refresh: Duration,
    /// Set to end the viewing.
    pub stop: Arc<AtomicBool>,
    /// Client-side beacon reporting, if any.
    pub client: Option<ClientBeacons>,
    /// Where to record request figures, if anywhere.
    pub stats: Option<Arc<Stats>>,
    /// The player's own id, sent with the session; without one, no frequency cap can count the viewer.
    pub viewer_id: Option<String>,
}

/// As [`watch`], reporting client-side beacons when the viewer has a `client`. Ads being played when `stop`
/// is set play to their end (or abandonment) and report before this returns.
pub async fn watch_with(viewer: Viewer) -> ViewerTruth {
    let Viewer {
        http,
        base,
        channel,
        rendition,
        refresh,
        stop,
        client,
        stats,
        viewer_id,
    } = viewer;
    let mut truth = ViewerTruth::default();
    let shared = stats.clone();
    let stats = stats.as_deref();
    let created = timed(
        stats,
        Endpoint::Playlist,
        http.post(format!("{base}/v1/sessions"))
            .json(&serde_json::json!({
                "channel": channel,
                "viewer": { "device": "tv", "platform": "sim", "viewer_id": viewer_id },
            }))
            .send(),
        |r| r.status().is_success(),
    )
    .await;
    let Some((master, session)) = (match created {
        Ok(r) => r.json::<serde_json::Value>().await.ok().and_then(|v| {
            Some((
                v["master_url"].as_str()?.to_owned(),
                v["session_id"].as_str()?.to_owned(),
            ))
        }),
        Err(_) => None,
    }) else {
        truth.playlist_errors += 1;
        return truth;
    };
    let reporter = client.as_ref().map(|c| {
        Arc::new(Reporter::new(
            http.clone(),
            &c.collector,
            session.clone(),
            channel.clone(),
            c.policy.clone(),
            c.seed,
            shared.clone(),
        ))
    });
    let fetch_ads = client.as_ref().is_none_or(|c| c.fetch_ad_segments);
    let mut playing = Vec::new();
    let mut jitter = crate::beacons::Rng::new(interlude_events::stable_hash(&[session.as_str()]));
    let mut ads_seen: HashSet<String> = HashSet::new();
    let media = master.replace("master.m3u8", &format!("{rendition}/media.m3u8"));
    let mut seen: HashSet<String> = HashSet::new();
    while !stop.load(Ordering::Relaxed) {
        let refreshed = timed(stats, Endpoint::Playlist, http.get(&media).send(), |r| {
            r.status().is_success()
        })
        .await;
        match refreshed {
            Ok(r) if r.status().is_success() => {
                truth.playlists += 1;
                let text = r.text().await.unwrap_or_default();
                for uri in text
                    .lines()
                    .filter(|l| !l.starts_with('#') && !l.is_empty())
                {
                    if !uri.contains("/ads/") || !seen.insert(uri.to_owned()) {
                        continue;
                    }
                    if let (Some(c), Some(r), Some(instance)) =
                        (&client, &reporter, ad_start_instance(uri))
                    {
                        if ads_seen.insert(instance.to_owned()) {
                            if let Some(ad) =
                                tracked_ad(&http, &base, &session, instance, stats).await
                            {
                                let (r, c) = (r.clone(), c.clone());
                                playing.push(tokio::spawn(async move {
                                    r.play(&ad, c.speed, c.clock.as_ref()).await;
                                }));
                            }
                        }
                    }
                    if !fetch_ads {
                        continue;
                    }
                    let fetched = timed(stats, Endpoint::AdSegment, http.get(uri).send(), |r| {
                        r.status().is_redirection() || r.status().is_success()
                    })
                    .await;
                    if fetched.is_ok_and(|r| r.status().is_redirection() || r.status().is_success())
                    {
                        truth.ad_segments += 1;
                        note_ad_segment(&mut truth, uri);
                    }
                }
            }
            _ => truth.playlist_errors += 1,
        }
        // Real players do not refresh in lockstep: ±10% around the target duration.
        tokio::time::sleep(refresh.mul_f64(0.9 + 0.2 * jitter.unit())).await;
    }
    for p in playing {
        let _ = p.await;
    }
    if let Some(r) = reporter {
        truth.beacons = r.truth();
    }
    truth
}

/// The ad instance of an ad's first segment URI `…/ads/{instance}/{rendition}/0.ts`.
fn ad_start_instance(uri: &str) -> Option<&str> {
    let mut parts = uri.rsplit('/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("0.ts"), Some(_), Some(instance)) => Some(instance),
        _ => None,
    }
}

/// The ad as the session's tracking document describes it.
async fn tracked_ad(
    http: &reqwest::Client,
    base: &str,
    session: &str,
    instance: &str,
    stats: Option<&Stats>,
) -> Option<PlayedAd> {
    let response = timed(
        stats,
        Endpoint::Tracking,
        http.get(format!("{base}/v1/sessions/{session}/tracking"))
            .send(),
        |r| r.status().is_success(),
    )
    .await;
    let doc: serde_json::Value = response.ok()?.json().await.ok()?;
    doc["avails"].as_array()?.iter().find_map(|avail| {
        let ad = avail["ads"]
            .as_array()?
            .iter()
            .find(|a| a["ad_instance_id"] == instance)?;
        Some(PlayedAd {
            ad_instance_id: instance.to_owned(),
            creative_id: ad["creative_id"].as_str()?.to_owned(),
            line_item_id: ad["line_item_id"].as_str().map(str::to_owned),
            campaign_id: ad["campaign_id"].as_str().map(str::to_owned),
            duration: Duration::try_from_secs_f64(ad["duration_secs"].as_f64()?).ok()?,
            break_id: avail["avail_id"].as_str().map(str::to_owned),
        })
    })
}

/// Records a start from an ad segment URI `…/ads/{instance}/{rendition}/{n}.ts`.
fn note_ad_segment(truth: &mut ViewerTruth, uri: &str) {
    if let Some(instance) = ad_start_instance(uri) {
        truth.ads_started.insert(instance.to_owned());
    }
}
