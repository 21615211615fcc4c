//! The stitcher service: channels, sessions, decisions, and rendering, behind the HTTP routes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use interlude_mpegts::truncate;
use interlude_stitch::pod::{micros_to_secs, secs_to_micros};
use interlude_stitch::{
    PlannedAd, PodPlan, PodRequest, PodSource, TrackedBreak, ViewerContext, render_window,
};
use tokio::sync::{OnceCell, Semaphore, mpsc};

use super::beacons::{AdBeacon, BeaconSink, events_for_segment};
use super::channel::{Channel, NewBreak, poll_channel};
use super::config::{AdDelivery, JoinPolicy, StitcherConfig};
use super::creatives::CreativeLibrary;
use super::playlist::{ItemUrls, write_media_playlist};
use super::pods::{best_rendition, to_rendition};
use super::proxy::{Anchors, SegmentCache, reference_pts, retimed};
use super::session::{BreakDecision, ResolvedAd, Session, SessionStore, new_session_id};
use super::shared::SharedSessions;

pub use interlude_events::Clock;

/// Why a stitcher request failed; mapped to HTTP statuses by the routes.
#[derive(Debug, thiserror::Error)]
pub enum StitchError {
    /// No such channel is configured.
    #[error("unknown channel {0:?}")]
    UnknownChannel(String),
    /// No such session (expired or never created).
    #[error("unknown session {0:?}")]
    UnknownSession(String),
    /// No such rendition for the channel.
    #[error("unknown rendition {0}")]
    UnknownRendition(usize),
    /// No such ad or segment in the session.
    #[error("unknown ad segment")]
    UnknownAdSegment,
    /// The origin has not answered recently enough to serve its window.
    #[error("origin for channel {0:?} unavailable")]
    OriginUnavailable(String),
    /// A segment to proxy could not be fetched.
    #[error(transparent)]
    Upstream(#[from] super::proxy::FetchError),
    /// The node is draining: existing sessions are served, new ones go elsewhere.
    #[error("this node is draining; start the session on another node")]
    Draining,
    /// The channel has no DASH origin configured.
    #[error("channel {0:?} is not offered as DASH (no dash_origin)")]
    NoDash(String),
    /// The DASH origin failed or sent an MPD that cannot be stitched.
    #[error("DASH origin: {0}")]
    DashOrigin(String),
    /// No such break on the channel (ended and gone from the window, or never seen).
    #[error(
        "unknown break {0:?}: not in the channel's live window (never signalled, or ended and gone)"
    )]
    UnknownBreak(String),
}

/// A channel at a glance.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ChannelSummary {
    /// Channel id.
    pub id: String,
    /// Live sessions.
    pub sessions: usize,
    /// Breaks tracked (recent history included).
    pub breaks_seen: usize,
    /// The open break, if one is running.
    pub open_break: Option<String>,
    /// Seconds of it played.
    pub open_break_elapsed_secs: Option<f64>,
    /// Its planned length.
    pub open_break_planned_secs: Option<f64>,
    /// Seconds since the origin last answered in full.
    pub origin_age_secs: Option<f64>,
    /// The origin's newest segment.
    pub live_edge_msn: Option<u64>,
}

/// Where an ad segment request leads: the creative's URL, and where the segment sits in the break.
#[derive(Debug, Clone)]
struct AdSegmentTarget {
    url: String,
    /// URL of the ad's first segment in the same rendition (its first PTS is the ad's time origin).
    first_url: String,
    /// Microseconds from the break start to the ad's start (the segment keeps its place within the ad).
    ad_start_micros: u64,
    tracked: TrackedBreak,
}

/// Proxy-mode state: fetched segments and per-break timestamp anchors.
struct Proxy {
    segments: SegmentCache,
    anchors: Anchors,
}

/// Slate for a channel: the first segment of the best slate rendition for each content rendition.
#[derive(Debug, Clone)]
struct Slate {
    urls: Vec<String>,
    seconds: f64,
}

struct ChannelEntry {
    channel: Arc<Channel>,
    slate: OnceCell<Option<Slate>>,
}

/// Everything the stitcher routes share.
pub struct Stitcher {
    config: StitcherConfig,
    base_url: String,
    channels: HashMap<String, ChannelEntry>,
    sessions: Arc<dyn SessionStore>,
    pods: Arc<dyn PodSource>,
    creatives: CreativeLibrary,
    beacons: Arc<dyn BeaconSink>,
    clock: Clock,
    http: reqwest::Client,
    decisions: Semaphore,
    proxy: Option<Proxy>,
    draining: std::sync::atomic::AtomicBool,
    shared: std::sync::OnceLock<Arc<SharedSessions>>,
    privacy: std::sync::OnceLock<Arc<crate::privacy::edge::EdgePrivacy>>,
    /// Signs client-side tracking URLs (interstitial asset lists).
    tracking_signer: std::sync::OnceLock<super::sgai::TrackingSigner>,
    /// The channels' DASH origin MPDs as last fetched (see `dash`).
    pub(crate) dash_cache: dashmap::DashMap<String, (Instant, Arc<String>)>,
}

/// Concurrent pod decisions: enough to keep a decision engine busy, bounded so a break for a million viewers
/// queues instead of opening a million sockets.
const MAX_CONCURRENT_DECISIONS: usize = 256;

impl Stitcher {
    /// A stitcher over the configured channels.
    pub fn new(
        config: StitcherConfig,
        base_url: String,
        sessions: Arc<dyn SessionStore>,
        pods: Arc<dyn PodSource>,
        beacons: Arc<dyn BeaconSink>,
        clock: Clock,
    ) -> Arc<Self> {
        let http = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        let channels = config
            .channels
            .iter()
            .map(|c| {
                (
                    c.id.clone(),
                    ChannelEntry {
                        channel: Arc::new(Channel::new(c.clone())),
                        slate: OnceCell::new(),
                    },
                )
            })
            .collect();
        let proxy = (config.ad_delivery == AdDelivery::Proxy).then(|| Proxy {
            segments: SegmentCache::new(
                http.clone(),
                Duration::from_secs(5),
                usize::try_from(config.proxy_cache_mb.saturating_mul(1 << 20))
                    .unwrap_or(usize::MAX),
            ),
            anchors: Anchors::default(),
        });
        Arc::new(Stitcher {
            shared: std::sync::OnceLock::new(),
            privacy: std::sync::OnceLock::new(),
            dash_cache: dashmap::DashMap::new(),
            tracking_signer: std::sync::OnceLock::new(),
            draining: std::sync::atomic::AtomicBool::new(false),
            proxy,
            creatives: CreativeLibrary::new(
                http.clone(),
                Duration::from_millis(config.decision_timeout_ms.max(1000)),
            ),
            config,
            base_url,
            channels,
            sessions,
            pods,
            beacons,
            clock,
            http,
            decisions: Semaphore::new(MAX_CONCURRENT_DECISIONS),
        })
    }

    /// Starts one poller per channel, the decision dispatcher and session expiry. Returns at once.
    pub fn start(self: &Arc<Self>) {
        let (tx, mut rx) = mpsc::channel::<NewBreak>(1024);
        for entry in self.channels.values() {
            let clock = self.clock.clone();
            tokio::spawn(poll_channel(
                entry.channel.clone(),
                self.http.clone(),
                self.tolerance_micros(),
                move || clock(),
                tx.clone(),
            ));
        }
        let me = self.clone();
        tokio::spawn(async move {
            while let Some(new_break) = rx.recv().await {
                me.warm_anchors(&new_break);
                let spread = me.config.decision_spread_ms;
                for session in me.sessions.for_channel(&new_break.channel) {
                    let (me, tracked) = (me.clone(), new_break.tracked.clone());
                    let delay = spread_delay(&session.id, &tracked.id, spread);
                    tokio::spawn(async move {
                        tokio::time::sleep(delay).await;
                        me.decide(&session, &tracked).await;
                    });
                }
            }
        });
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tick.tick().await;
                let ttl_ms = i64::try_from(me.config.session_ttl_secs.saturating_mul(1000))
                    .unwrap_or(i64::MAX);
                let expired = me.sessions.expire((me.clock)().timestamp_millis() - ttl_ms);
                if expired > 0 {
                    tracing::debug!(expired, "Expired idle sessions.");
                }
                for id in me.channels.keys() {
                    let n = me.sessions.for_channel(id).len();
                    metrics::gauge!("stitcher_sessions", "channel" => id.clone()).set(n as f64);
                }
            }
        });
    }

    fn tolerance_micros(&self) -> u64 {
        self.config.tolerance_ms * 1000
    }

    fn entry(&self, channel: &str) -> Result<&ChannelEntry, StitchError> {
        self.channels
            .get(channel)
            .ok_or_else(|| StitchError::UnknownChannel(channel.to_owned()))
    }

    /// The channel, for routes that serve its origin data.
    pub fn channel(&self, channel: &str) -> Result<Arc<Channel>, StitchError> {
        Ok(self.entry(channel)?.channel.clone())
    }

    /// Each channel at a glance: sessions, breaks, the open one, origin freshness (the dashboard).
    pub fn channel_summaries(&self) -> Vec<ChannelSummary> {
        let now = (self.clock)();
        let mut out: Vec<ChannelSummary> = self
            .channels
            .iter()
            .map(|(id, entry)| {
                let snapshot = entry.channel.snapshot();
                let open = snapshot.breaks.last().filter(|b| !b.is_ended());
                ChannelSummary {
                    id: id.clone(),
                    sessions: self.sessions.for_channel(id).len(),
                    breaks_seen: snapshot.breaks.len(),
                    open_break: open.map(|b| b.id.clone()),
                    open_break_elapsed_secs: open.map(|b| micros_to_secs(b.elapsed_micros())),
                    open_break_planned_secs: open
                        .and_then(|b| b.planned_micros.map(micros_to_secs)),
                    origin_age_secs: snapshot
                        .refreshed_at
                        .map(|t| (now - t).num_milliseconds() as f64 / 1000.0),
                    live_edge_msn: snapshot.live_edge_msn(),
                }
            })
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// Signs client-side tracking URLs with `signer` (the collector's keyring). Set once, before serving.
    pub fn set_tracking_signer(&self, signer: super::sgai::TrackingSigner) {
        let _ = self.tracking_signer.set(signer);
    }

    /// A signed tracking path for `claims`, when a signer is set.
    pub(crate) fn sign_tracking(
        &self,
        claims: &interlude_events::token::TokenClaims,
    ) -> Option<String> {
        self.tracking_signer.get().and_then(|s| s(claims))
    }

    /// Channel time now (the service's clock).
    pub(crate) fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    /// The HTTP client origins are fetched with.
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The configuration.
    pub(crate) fn config(&self) -> &StitcherConfig {
        &self.config
    }

    /// The channel's slate: one segment URL per content rendition and its length in seconds.
    pub(crate) async fn slate_of(&self, channel: &str) -> Option<(Vec<String>, f64)> {
        let entry = self.entry(channel).ok()?;
        self.slate(entry).await.map(|s| (s.urls, s.seconds))
    }

    /// The base URL links are built on.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Shares sessions and break decisions with other nodes through `shared` (distributed mode). Set once,
    /// before serving.
    pub fn share_sessions(&self, shared: Arc<SharedSessions>) {
        if self.shared.set(shared).is_err() {
            tracing::warn!("Shared sessions were already set; keeping the first.");
        }
    }

    /// Applies consent and minimisation to new sessions' viewers with `privacy`. Set once, before serving.
    pub fn set_privacy(&self, privacy: Arc<crate::privacy::edge::EdgePrivacy>) {
        if self.privacy.set(privacy).is_err() {
            tracing::warn!("Privacy was already set; keeping the first.");
        }
    }

    /// The viewer a new session keeps: with privacy configured, its consent applied (pseudonymous id only with
    /// consent to store it, personalisation flag), geography and device from the edge; without, the viewer
    /// as given, minus a viewer id unless consent was given.
    pub fn admit_viewer(
        &self,
        viewer: interlude_stitch::ViewerContext,
        signals: &crate::privacy::edge::SignalParams,
        headers: &axum::http::HeaderMap,
    ) -> interlude_stitch::ViewerContext {
        let Some(privacy) = self.privacy.get() else {
            return viewer;
        };
        let now = std::time::SystemTime::from((self.clock)());
        let (viewer, decision) = privacy.viewer(viewer, signals, headers, now, false);
        tracing::debug!(reasons = ?decision.explain(), "Session consent.");
        viewer
    }

    /// Deletes the sessions of the viewers `ids` (pseudonyms) on this node and in the shared store; returns
    /// (local, shared) counts.
    pub async fn forget_viewers(&self, ids: &[String]) -> Result<(u64, u64), String> {
        let set: std::collections::HashSet<String> = ids.iter().cloned().collect();
        let local = self.sessions.forget_viewers(&set) as u64;
        let shared = match self.shared.get() {
            Some(shared) => shared
                .forget_viewers(ids)
                .await
                .map_err(|e| e.to_string())?,
            None => 0,
        };
        Ok((local, shared))
    }

    /// The shared session store, in distributed mode.
    pub fn shared_sessions(&self) -> Option<&Arc<SharedSessions>> {
        self.shared.get()
    }

    /// Looks a session up (on this node, else in the shared store) and marks it used.
    pub async fn session(&self, id: &str) -> Result<Arc<Session>, StitchError> {
        let now = (self.clock)();
        if let Some(session) = self.sessions.get(id) {
            session.touch(now);
            self.touch_shared(&session, now);
            return Ok(session);
        }
        let unknown = || StitchError::UnknownSession(id.to_owned());
        let shared = self.shared.get().ok_or_else(unknown)?;
        let record = match shared.load_session(id).await {
            Ok(Some(record)) => record,
            Ok(None) => return Err(unknown()),
            Err(e) => {
                metrics::counter!("stitcher_shared_errors_total").increment(1);
                tracing::warn!(error = %e, session = id, "Shared session lookup failed.");
                return Err(unknown());
            }
        };
        if !self.channels.contains_key(&record.channel) {
            return Err(unknown());
        }
        metrics::counter!("stitcher_sessions_adopted_total").increment(1);
        let session = Arc::new(Session::from_record(record, now));
        self.sessions.insert(session.clone());
        Ok(self.sessions.get(id).unwrap_or(session))
    }

    /// Extends the session's life in the shared store, at most four times per TTL.
    fn touch_shared(&self, session: &Arc<Session>, now: chrono::DateTime<chrono::Utc>) {
        let Some(shared) = self.shared.get() else {
            return;
        };
        let every_ms =
            i64::try_from(self.config.session_ttl_secs.saturating_mul(250)).unwrap_or(i64::MAX);
        let last = session
            .shared_touched_ms
            .load(std::sync::atomic::Ordering::Relaxed);
        if now.timestamp_millis() - last < every_ms {
            return;
        }
        session
            .shared_touched_ms
            .store(now.timestamp_millis(), std::sync::atomic::Ordering::Relaxed);
        let (shared, id) = (shared.clone(), session.id.clone());
        tokio::spawn(async move {
            if let Err(e) = shared.touch(&id).await {
                metrics::counter!("stitcher_shared_errors_total").increment(1);
                tracing::debug!(error = %e, "Shared session not touched.");
            }
        });
    }

    /// Stops (or resumes) taking new sessions; existing sessions keep being served.
    pub fn set_draining(&self, draining: bool) {
        self.draining
            .store(draining, std::sync::atomic::Ordering::Release);
    }

    /// Creates a session (published to the shared store in distributed mode, so any node can serve it); if its
    /// channel is in a break, decides that break for it right away.
    pub async fn create_session(
        self: &Arc<Self>,
        channel: &str,
        viewer: ViewerContext,
    ) -> Result<Arc<Session>, StitchError> {
        self.create_session_in(channel, viewer, super::sgai::SessionMode::Stitched)
            .await
    }

    /// Creates a session in `mode` (stitched, or HLS Interstitials).
    pub async fn create_session_in(
        self: &Arc<Self>,
        channel: &str,
        viewer: ViewerContext,
        mode: super::sgai::SessionMode,
    ) -> Result<Arc<Session>, StitchError> {
        if self.draining.load(std::sync::atomic::Ordering::Acquire) {
            return Err(StitchError::Draining);
        }
        let entry = self.entry(channel)?;
        let snapshot = entry.channel.snapshot();
        let joined_msn = snapshot.live_edge_msn().unwrap_or(0);
        let mut session = Session::new(
            new_session_id(),
            channel.to_owned(),
            viewer,
            (self.clock)(),
            joined_msn,
        );
        session.mode = mode;
        let session = Arc::new(session);
        self.sessions.insert(session.clone());
        if let Some(shared) = self.shared.get() {
            if let Err(e) = shared.save_session(&session.record()).await {
                // Still served by this node; another node would not find it.
                metrics::counter!("stitcher_shared_errors_total").increment(1);
                tracing::warn!(error = %e, session = %session.id, "Session not shared.");
            }
        }
        metrics::counter!("stitcher_sessions_created_total", "channel" => channel.to_owned())
            .increment(1);
        if let Some(current) = snapshot.breaks.last().filter(|b| !b.is_ended()).cloned() {
            let (me, session) = (self.clone(), session.clone());
            tokio::spawn(async move { me.decide(&session, &current).await });
        }
        Ok(session)
    }

    async fn slate(&self, entry: &ChannelEntry) -> Option<Slate> {
        entry
            .slate
            .get_or_init(|| async {
                let snapshot = entry.channel.snapshot();
                let renditions: Vec<_> = entry
                    .channel
                    .config
                    .slate
                    .iter()
                    .map(to_rendition)
                    .collect();
                let mut urls = Vec::new();
                let mut seconds = None;
                for content in &snapshot.renditions {
                    let i = best_rendition(
                        &renditions,
                        content.variant.bandwidth,
                        content.variant.resolution,
                    )?;
                    let media = self
                        .creatives
                        .media(&renditions[i].playlist_url)
                        .await
                        .ok()?;
                    urls.push(media.urls.first()?.clone());
                    seconds.get_or_insert(micros_to_secs(*media.micros.first()?));
                }
                Some(Slate {
                    urls,
                    seconds: seconds?,
                })
            })
            .await
            .clone()
    }

    /// Decides one break for one session (once; later calls return at once).
    pub async fn decide(&self, session: &Session, tracked: &TrackedBreak) {
        let lock = session.deciding(&tracked.id);
        let _deciding = lock.lock().await;
        if session.decision(&tracked.id).is_some() {
            return;
        }
        let shared = self.shared.get();
        if let Some(shared) = shared {
            // Another node may have decided this break for this viewer already: its plan is the viewer's plan.
            match shared.load_decision(&session.id, &tracked.id).await {
                Ok(Some(decision)) => {
                    session.decide(&tracked.id, decision);
                    return;
                }
                Ok(None) => {}
                Err(e) => {
                    metrics::counter!("stitcher_shared_errors_total").increment(1);
                    tracing::warn!(error = %e, "Shared decision lookup failed; deciding here.");
                }
            }
        }
        let Ok(entry) = self.entry(&session.channel) else {
            return;
        };
        let Ok(_permit) = self.decisions.acquire().await else {
            return;
        };
        let started = Instant::now();
        let slate = self.slate(entry).await;
        let mid_break = session.joined_msn > tracked.start_msn;
        let decision = match (&slate, mid_break, self.config.join_policy) {
            (None, ..) | (_, true, JoinPolicy::Passthrough) => BreakDecision {
                plan: None,
                ads: Vec::new(),
            },
            (Some(slate), true, JoinPolicy::Slate) => slate_decision(slate),
            (Some(slate), ..) => self.decide_pod(session, tracked, entry, slate).await,
        };
        metrics::histogram!("stitcher_decision_seconds", "channel" => session.channel.clone())
            .record(started.elapsed().as_secs_f64());
        // Fill: seconds of the planned break given to ads versus left to slate (the dashboard's fill rate).
        if let Some(planned) = tracked.planned_micros {
            let ads: u64 = decision
                .ads
                .iter()
                .map(|a| a.segment_micros.iter().sum::<u64>())
                .sum::<u64>()
                .min(planned);
            let channel = session.channel.clone();
            metrics::counter!("stitcher_break_seconds_total", "channel" => channel.clone(), "kind" => "ad")
                .increment(ads / 1_000_000);
            metrics::counter!("stitcher_break_seconds_total", "channel" => channel, "kind" => "slate")
                .increment((planned - ads) / 1_000_000);
        }
        let decision = match shared {
            // First to store it wins; a node that decided at the same time adopts the winner.
            Some(shared) => match shared
                .save_decision(&session.id, &tracked.id, &decision)
                .await
            {
                Ok(winner) => winner,
                Err(e) => {
                    metrics::counter!("stitcher_shared_errors_total").increment(1);
                    tracing::warn!(error = %e, "Decision not shared.");
                    decision
                }
            },
            None => decision,
        };
        let filled = decision.ads.len();
        session.decide(&tracked.id, decision);
        tracing::debug!(session = %session.id, break_id = %tracked.id, ads = filled, "Decided pod.");
    }

    async fn decide_pod(
        &self,
        session: &Session,
        tracked: &TrackedBreak,
        entry: &ChannelEntry,
        slate: &Slate,
    ) -> BreakDecision {
        let request = PodRequest {
            channel: session.channel.clone(),
            session_id: session.id.clone(),
            break_id: tracked.id.clone(),
            duration_secs: tracked.planned_micros.map(micros_to_secs),
            viewer: session.viewer.clone(),
        };
        let timeout = Duration::from_millis(self.config.decision_timeout_ms);
        let pod = match tokio::time::timeout(timeout, self.pods.pod(request)).await {
            Ok(Ok(pod)) => pod,
            Ok(Err(error)) => {
                metrics::counter!("stitcher_decision_errors_total", "channel" => session.channel.clone())
                    .increment(1);
                tracing::warn!(session = %session.id, %error, "Pod source failed; filling with slate.");
                return slate_decision(slate);
            }
            Err(_) => {
                metrics::counter!("stitcher_decision_timeouts_total", "channel" => session.channel.clone())
                    .increment(1);
                return slate_decision(slate);
            }
        };
        let snapshot = entry.channel.snapshot();
        let mut planned = Vec::new();
        let mut resolved = Vec::new();
        'ads: for ad in pod.ads {
            let mut segment_urls = Vec::new();
            let mut canonical: Option<Arc<[u64]>> = None;
            for content in &snapshot.renditions {
                let Some(i) = best_rendition(
                    &ad.renditions,
                    content.variant.bandwidth,
                    content.variant.resolution,
                ) else {
                    continue 'ads;
                };
                let media = match self.creatives.media(&ad.renditions[i].playlist_url).await {
                    Ok(media) => media,
                    Err(error) => {
                        tracing::warn!(creative = %ad.creative_id, %error, "Creative unusable; skipped.");
                        continue 'ads;
                    }
                };
                match &canonical {
                    None => canonical = Some(media.micros.clone()),
                    // Renditions must line up segment for segment, or players switching variants mid-ad break.
                    Some(c) if c.len() != media.micros.len() => continue 'ads,
                    Some(_) => {}
                }
                segment_urls.push(media.urls.clone());
            }
            let Some(micros) = canonical else { continue };
            planned.push(PlannedAd {
                ad_instance_id: ad.ad_instance_id.clone(),
                segment_micros: micros.to_vec(),
            });
            resolved.push(ResolvedAd {
                ad,
                segment_urls,
                segment_micros: micros,
            });
        }
        match PodPlan::new(planned, slate.seconds) {
            Ok(plan) => BreakDecision {
                plan: Some(plan),
                ads: resolved,
            },
            Err(error) => {
                tracing::warn!(%error, "Pod unusable; filling with slate.");
                slate_decision(slate)
            }
        }
    }

    /// The session's master playlist: the origin's, with each variant pointing at the session's media playlist
    /// (renditions of `EXT-X-MEDIA` groups keep their absolute origin URIs).
    pub fn master_playlist(&self, session: &Session) -> Result<String, StitchError> {
        let entry = self.entry(&session.channel)?;
        let snapshot = entry.channel.snapshot();
        let master = snapshot
            .master
            .as_ref()
            .ok_or_else(|| StitchError::OriginUnavailable(session.channel.clone()))?;
        let mut master = (**master).clone();
        for (i, variant) in master.variants.iter_mut().enumerate() {
            variant.uri = format!("{}/s/{}/{i}/media.m3u8", self.base_url, session.id);
        }
        Ok(master.to_string())
    }

    /// Decides now, within the decision timeout, every open break this session's playlist will show and has
    /// no decision for yet (its turn in the spread has not come, or a decision is still running).
    pub async fn decide_pending(&self, session: &Session) {
        let Ok(entry) = self.entry(&session.channel) else {
            return;
        };
        let snapshot = entry.channel.snapshot();
        let timeout = Duration::from_millis(self.config.decision_timeout_ms);
        for tracked in snapshot.breaks.iter() {
            let before_session = tracked.end_msn.is_some_and(|end| end <= session.joined_msn);
            if before_session || tracked.is_ended() || session.decision(&tracked.id).is_some() {
                continue;
            }
            metrics::counter!("stitcher_decisions_on_request_total").increment(1);
            let _ = tokio::time::timeout(timeout, self.decide(session, tracked)).await;
        }
    }

    /// Writes the session's media playlist for content rendition `rendition` into `out`.
    pub fn media_playlist(
        &self,
        session: &Session,
        rendition: usize,
        out: &mut String,
    ) -> Result<(), StitchError> {
        let entry = self.entry(&session.channel)?;
        let snapshot = entry.channel.snapshot();
        if entry.channel.is_stale(&snapshot, (self.clock)()) {
            return Err(StitchError::OriginUnavailable(session.channel.clone()));
        }
        let content = snapshot
            .renditions
            .get(rendition)
            .ok_or(StitchError::UnknownRendition(rendition))?;
        let slate = entry.slate.get().cloned().flatten();
        let breaks = snapshot.breaks.as_slice();
        // Fix each relevant break's decision for this viewer before rendering: a break seen without a decision
        // (the pod source was too slow) is locked to slate now, so every later refresh agrees with this one.
        let decisions: Vec<Option<Arc<BreakDecision>>> = breaks
            .iter()
            .map(|b| {
                let before_session = b.end_msn.is_some_and(|end| end <= session.joined_msn);
                if before_session {
                    return None;
                }
                session.decision(&b.id).or_else(|| {
                    let fallback = match (&slate, self.config.join_policy) {
                        (Some(slate), JoinPolicy::RestOfPod | JoinPolicy::Slate) => {
                            slate_decision(slate)
                        }
                        _ => BreakDecision {
                            plan: None,
                            ads: Vec::new(),
                        },
                    };
                    let fixed = session.decide(&b.id, fallback);
                    if let Some(shared) = self.shared.get() {
                        // Other nodes must render the same fallback for this viewer.
                        let (shared, fixed) = (shared.clone(), fixed.clone());
                        let (id, break_id) = (session.id.clone(), b.id.clone());
                        tokio::spawn(async move {
                            let _ = shared.save_decision(&id, &break_id, &fixed).await;
                        });
                    }
                    Some(fixed)
                })
            })
            .collect();
        let rendered = render_window(
            &content.media.window,
            breaks,
            |i, _| decisions.get(i)?.as_ref()?.plan.as_ref(),
            self.tolerance_micros(),
        )
        .map_err(|_| StitchError::OriginUnavailable(session.channel.clone()))?;
        let slate_url = slate
            .as_ref()
            .and_then(|s| s.urls.get(rendition))
            .map_or("", String::as_str);
        let urls = ItemUrls {
            base_url: &self.base_url,
            session_id: &session.id,
            rendition,
            slate_url,
            proxy: self.proxy.is_some(),
            breaks,
        };
        write_media_playlist(out, &content.media, &rendered, &urls, |i| {
            decisions.get(i)?.as_deref()
        });
        Ok(())
    }

    /// Whether ad and slate segments are served by this server (rather than redirected to).
    pub fn proxies_segments(&self) -> bool {
        self.proxy.is_some()
    }

    /// Measures the new break's timestamp anchors while its first segment is still in the origin window, and
    /// forgets anchors of breaks that are gone.
    fn warm_anchors(self: &Arc<Self>, new_break: &NewBreak) {
        let Some(proxy) = &self.proxy else { return };
        let Ok(entry) = self.entry(&new_break.channel) else {
            return;
        };
        let snapshot = entry.channel.snapshot();
        if let Some(oldest) = snapshot.breaks.first() {
            proxy.anchors.prune(&new_break.channel, oldest.start_msn);
        }
        for rendition in 0..snapshot.renditions.len() {
            let (me, channel, tracked) = (
                self.clone(),
                entry.channel.clone(),
                new_break.tracked.clone(),
            );
            tokio::spawn(async move {
                if let Some(proxy) = &me.proxy {
                    proxy
                        .anchors
                        .anchor(
                            &channel,
                            &tracked,
                            rendition,
                            &me.http,
                            me.origin_timeout(&channel),
                        )
                        .await;
                }
            });
        }
    }

    fn origin_timeout(&self, channel: &Channel) -> Duration {
        Duration::from_millis(channel.config.origin_timeout_ms)
    }

    /// Resolves an ad segment request to the creative's URL, firing the server-side beacons it stands for.
    pub fn ad_segment(
        &self,
        session: &Session,
        ad_instance_id: &str,
        rendition: usize,
        segment: usize,
    ) -> Result<String, StitchError> {
        Ok(self
            .ad_target(session, ad_instance_id, rendition, segment)?
            .url)
    }

    fn ad_target(
        &self,
        session: &Session,
        ad_instance_id: &str,
        rendition: usize,
        segment: usize,
    ) -> Result<AdSegmentTarget, StitchError> {
        // An interstitials session's player fetches the ads from their own URLs and reports its own beacons:
        // no ad segment of ours belongs to it, and none may fire server-side beacons for it.
        if session.mode == super::sgai::SessionMode::Interstitials {
            return Err(StitchError::UnknownAdSegment);
        }
        let snapshot = self.entry(&session.channel)?.channel.snapshot();
        for tracked in snapshot.breaks.iter().rev() {
            let Some(decision) = session.decision(&tracked.id) else {
                continue;
            };
            let Some(position) = decision
                .ads
                .iter()
                .position(|a| a.ad.ad_instance_id == ad_instance_id)
            else {
                continue;
            };
            let ad_start: u64 = decision.ads[..position]
                .iter()
                .map(|a| a.segment_micros.iter().sum::<u64>())
                .sum();
            let ad = &decision.ads[position];
            let urls = ad
                .segment_urls
                .get(rendition)
                .ok_or(StitchError::UnknownAdSegment)?;
            let url = urls
                .get(segment)
                .ok_or(StitchError::UnknownAdSegment)?
                .clone();
            let first_url = urls.first().ok_or(StitchError::UnknownAdSegment)?.clone();
            let start: u64 = ad.segment_micros.iter().take(segment).sum();
            let duration = ad.segment_micros.get(segment).copied().unwrap_or(0);
            let total: u64 = ad.segment_micros.iter().sum();
            let last = segment + 1 == ad.segment_micros.len();
            let now = (self.clock)();
            for event in events_for_segment(segment, start, start + duration, total, last) {
                self.beacons.emit(AdBeacon {
                    ad_instance_id: ad_instance_id.to_owned(),
                    event,
                    session_id: session.id.clone(),
                    channel: session.channel.clone(),
                    break_id: tracked.id.clone(),
                    creative_id: ad.ad.creative_id.clone(),
                    line_item_id: ad.ad.line_item_id.clone(),
                    occurred_at: now,
                    viewer_id: session.viewer.viewer_id.clone(),
                    consent: crate::privacy::edge::flags_of(&session.viewer),
                });
            }
            return Ok(AdSegmentTarget {
                url,
                first_url,
                ad_start_micros: ad_start,
                tracked: tracked.clone(),
            });
        }
        Err(StitchError::UnknownAdSegment)
    }

    /// Proxy mode: the ad segment's bytes, retimed to continue the content; fires the same beacons as a redirect.
    pub async fn proxied_ad_segment(
        &self,
        session: &Session,
        ad_instance_id: &str,
        rendition: usize,
        segment: usize,
    ) -> Result<bytes::Bytes, StitchError> {
        let target = self.ad_target(session, ad_instance_id, rendition, segment)?;
        let proxy = self.proxy.as_ref().ok_or(StitchError::UnknownAdSegment)?;
        let entry = self.entry(&session.channel)?;
        let first = proxy.segments.get(&target.first_url).await?;
        let bytes = proxy.segments.get(&target.url).await?;
        let anchor = proxy
            .anchors
            .anchor(
                &entry.channel,
                &target.tracked,
                rendition,
                &self.http,
                self.origin_timeout(&entry.channel),
            )
            .await;
        Ok(retimed(
            &bytes,
            reference_pts(&first),
            anchor,
            target.ad_start_micros,
        ))
    }

    /// Proxy mode: the slate segment playing `offset_micros` into the break starting at media sequence
    /// `break_msn`, retimed to continue the content and cut to `duration_micros` (the end of a break).
    pub async fn proxied_slate_segment(
        &self,
        session: &Session,
        rendition: usize,
        break_msn: u64,
        offset_micros: u64,
        duration_micros: u64,
    ) -> Result<bytes::Bytes, StitchError> {
        let proxy = self.proxy.as_ref().ok_or(StitchError::UnknownAdSegment)?;
        let entry = self.entry(&session.channel)?;
        let slate = entry.slate.get().cloned().flatten();
        let (url, slate_micros) = slate
            .and_then(|s| Some((s.urls.get(rendition)?.clone(), secs_to_micros(s.seconds))))
            .ok_or(StitchError::UnknownRendition(rendition))?;
        let snapshot = entry.channel.snapshot();
        let tracked = snapshot
            .breaks
            .iter()
            .find(|b| b.start_msn == break_msn)
            .ok_or(StitchError::UnknownAdSegment)?;
        let bytes = proxy.segments.get(&url).await?;
        let anchor = proxy
            .anchors
            .anchor(
                &entry.channel,
                tracked,
                rendition,
                &self.http,
                self.origin_timeout(&entry.channel),
            )
            .await;
        let bytes = retimed(&bytes, reference_pts(&bytes), anchor, offset_micros);
        if duration_micros + 1_000 < slate_micros {
            return Ok(truncate(&bytes, duration_micros * 9 / 100).into());
        }
        Ok(bytes)
    }
}

fn slate_decision(slate: &Slate) -> BreakDecision {
    match PodPlan::slate_only(slate.seconds) {
        Ok(plan) => BreakDecision {
            plan: Some(plan),
            ads: Vec::new(),
        },
        Err(_) => BreakDecision {
            plan: None,
            ads: Vec::new(),
        },
    }
}

/// Where in the spread window a session's decision for a break falls: stable for the pair (a retried dispatch
/// lands at the same time), uniform across sessions.
fn spread_delay(session: &str, break_id: &str, spread_ms: u64) -> Duration {
    if spread_ms == 0 {
        return Duration::ZERO;
    }
    let h = interlude_events::stable_hash([session.as_bytes(), break_id.as_bytes()]);
    Duration::from_millis(h % spread_ms)
}
