//! The stitcher: a façade over the parts that own their state — [`Channels`] (origins, snapshots, slate),
//! [`Sessions`] (who is watching, local and shared), [`Decisions`] (pods per break) and [`Segments`] (ad and
//! slate delivery with server-side beacons) — and the pure [`render`](super::render) functions. The routes
//! and the SGAI/DASH modes call this type; it wires one part to the next and performs the side effects
//! rendering asks for.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use interlude_decision::{PodSource, ViewerContext};
use interlude_stitch::TrackedBreak;
use tokio::sync::mpsc;

use super::StitchError;
use super::beacons::BeaconSink;
use super::channel::{Channel, NewBreak};
use super::channels::{ChannelSummary, Channels};
use super::config::StitcherConfig;
use super::creatives::CreativeLibrary;
use super::decisions::Decisions;
use super::render::{self, RenderSettings};
use super::segments::Segments;
use super::session::{MemorySessionStore, Session, SessionMode, SessionStore};
use super::sessions::Sessions;
use super::shared::SharedSessions;
use crate::privacy::edge::{EdgePrivacy, SignalParams};
use crate::telemetry::metrics::{
    STITCHER_DECISIONS_AHEAD, STITCHER_DECISIONS_SKIPPED_IDLE, STITCHER_SESSIONS,
};

/// A session counts as watching, for the decisions scheduled at a break's start, when it asked for a playlist
/// within this many target durations (a player refreshes its media playlist about once per target duration).
pub const ACTIVE_TARGET_DURATIONS: u64 = 3;

/// The shortest such window in seconds: with short target durations a few refreshes are only seconds, and a
/// player that stalls or is briefly backgrounded, or has started its session but not yet asked for a playlist,
/// is still watching. Also used before the first refresh, when the target duration is not known yet. An
/// abandoned session is skipped at the next break after this, long before its TTL frees it.
pub const MIN_ACTIVE_SECS: u64 = 30;

/// How recently, in milliseconds, a session of a channel with `target_secs` target durations must have asked
/// for a playlist to count as watching.
pub(crate) fn active_window_ms(target_secs: u64) -> i64 {
    i64::try_from(
        target_secs
            .saturating_mul(ACTIVE_TARGET_DURATIONS)
            .max(MIN_ACTIVE_SECS)
            .saturating_mul(1000),
    )
    .unwrap_or(i64::MAX)
}

/// How long before a session's expected next playlist request its pod should be decided: a decision's own
/// time with room to spare, so the request finds it made.
const DECIDE_LEAD_MS: i64 = 500;

/// When, after a break appears, a session's decision is made: its stable place in the spread window
/// (`spread`), or earlier when its player is expected back sooner. A player refreshes about once a target
/// duration (RFC 8216bis §6.3.4), so a session last seen at `last_seen_ms` asks again near
/// `last_seen_ms + target_ms`, and the playlist it gets then shows the break: it is decided
/// [`DECIDE_LEAD_MS`] before that, soonest refresh first, and never waits behind viewers who come back later.
pub(crate) fn decision_delay(
    spread: Duration,
    last_seen_ms: i64,
    now_ms: i64,
    target_ms: i64,
) -> Duration {
    let due_in = last_seen_ms
        .saturating_add(target_ms)
        .saturating_sub(now_ms)
        .saturating_sub(DECIDE_LEAD_MS)
        .max(0);
    spread.min(Duration::from_millis(u64::try_from(due_in).unwrap_or(0)))
}

pub use interlude_events::Clock;

/// Everything a stitcher is made of; every collaborator is given here (none is set later).
pub struct StitcherBuilder {
    config: StitcherConfig,
    base_url: String,
    pods: Arc<dyn PodSource>,
    beacons: Arc<dyn BeaconSink>,
    clock: Clock,
    sessions: Arc<dyn SessionStore>,
    shared: Option<Arc<SharedSessions>>,
    privacy: Option<Arc<EdgePrivacy>>,
    tracking_signer: Option<super::sgai::TrackingSigner>,
    outbound: interlude_outbound::OutboundConfig,
    instance_issuer: Option<super::instances::InstanceIssuer>,
    conditioning: Option<Arc<crate::conditioning::Conditioning>>,
}

impl StitcherBuilder {
    /// Stitches ads offered only as files to transcode once `conditioning` has conditioned them (without
    /// it, such ads are skipped as `NO_VARIANT_MATCH`).
    pub fn conditioning(
        mut self,
        conditioning: Option<Arc<crate::conditioning::Conditioning>>,
    ) -> Self {
        self.conditioning = conditioning;
        self
    }

    /// Issues every served ad's instance id through `issuer`, so that the collector can recognise it
    /// ([`super::instances`]).
    pub fn instance_issuer(mut self, issuer: Option<super::instances::InstanceIssuer>) -> Self {
        self.instance_issuer = issuer;
        self
    }

    /// How creatives' media (playlists and segments named by ad servers and bidders) is fetched: the guarded
    /// client's policy (default: https to public addresses only). The hosts of configured creatives, slates
    /// and origins are allowed besides: the operator named them.
    pub fn outbound(mut self, outbound: interlude_outbound::OutboundConfig) -> Self {
        self.outbound = outbound;
        self
    }

    /// Keeps this node's sessions in `sessions` (default: in process memory).
    pub fn sessions(mut self, sessions: Arc<dyn SessionStore>) -> Self {
        self.sessions = sessions;
        self
    }

    /// Shares sessions and break decisions with other nodes (distributed mode).
    pub fn shared(mut self, shared: Option<Arc<SharedSessions>>) -> Self {
        self.shared = shared;
        self
    }

    /// Applies consent and minimisation to new sessions' viewers.
    pub fn privacy(mut self, privacy: Option<Arc<EdgePrivacy>>) -> Self {
        self.privacy = privacy;
        self
    }

    /// Signs client-side tracking URLs (interstitial asset lists) with the collector's keyring.
    pub fn tracking_signer(mut self, signer: Option<super::sgai::TrackingSigner>) -> Self {
        self.tracking_signer = signer;
        self
    }

    /// The stitcher; fails only on an unusable `[outbound]` (a CA file that cannot be read, say).
    pub fn build(self) -> crate::Result<Arc<Stitcher>> {
        // Origins are the operator's own (often on a private network): a plain client. Creatives come from
        // third parties: the guarded one.
        let http = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        let mut outbound = with_configured_hosts(self.outbound, &self.config);
        if let Some(c) = &self.conditioning {
            // The conditioned outputs are the operator's own (this server, or its CDN): proxy mode reads them.
            allow_host_of(&mut outbound, c.media_base());
        }
        let third_party = interlude_outbound::GuardedClient::new(&outbound).map_err(|e| {
            crate::Error::Startup {
                what: "building the stitcher's client for creatives ([outbound])".to_owned(),
                source: Box::new(e),
            }
        })?;
        let pods: Arc<dyn PodSource> = match self.instance_issuer {
            Some(issuer) => Arc::new(super::instances::IssuingPodSource::new(self.pods, issuer)),
            None => self.pods,
        };
        let creatives = CreativeLibrary::new(
            third_party.clone(),
            Duration::from_millis(self.config.decision_timeout_ms.max(1000)),
        );
        Ok(Arc::new(Stitcher {
            channels: Channels::new(&self.config, creatives),
            sessions: Sessions::new(
                self.sessions,
                self.shared.clone(),
                self.privacy,
                self.config.session_ttl_secs,
                self.clock.clone(),
            )
            .with_limits(
                self.config.max_sessions,
                crate::ops::rate_limit::RateLimiter::new(
                    self.config.session_rate_per_ip,
                    self.config.session_burst_per_ip,
                ),
            ),
            decisions: Decisions::new(&self.config, pods, self.shared)
                .with_conditioning(self.conditioning),
            segments: Segments::new(
                &self.config,
                http.clone(),
                third_party,
                self.beacons,
                self.clock.clone(),
            ),
            tracking_signer: self.tracking_signer,
            dash_cache: dashmap::DashMap::new(),
            dash_breaks: dashmap::DashMap::new(),
            config: self.config,
            base_url: self.base_url,
            clock: self.clock,
            http,
        }))
    }
}

/// `outbound` with the hosts of configured creatives, slates and origins allowed (plain http included): they
/// are the operator's, not a third party's.
pub(super) fn with_configured_hosts(
    mut outbound: interlude_outbound::OutboundConfig,
    config: &StitcherConfig,
) -> interlude_outbound::OutboundConfig {
    let renditions = config
        .creatives
        .iter()
        .flat_map(|c| &c.renditions)
        .chain(config.channels.iter().flat_map(|c| &c.slate))
        .map(|r| r.playlist.as_str());
    let origins = config
        .channels
        .iter()
        .flat_map(|c| std::iter::once(c.origin.as_str()).chain(c.dash_origin.as_deref()));
    for url in renditions.chain(origins) {
        allow_host_of(&mut outbound, url);
    }
    outbound
}

/// Adds the host and port of `url` to `outbound`'s allow-list (plain http included).
fn allow_host_of(outbound: &mut interlude_outbound::OutboundConfig, url: &str) {
    let Ok(url) = url::Url::parse(url) else {
        return;
    };
    let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
        return;
    };
    // `host_str` keeps an IPv6 address in brackets, as a socket entry wants it.
    let entry = format!("{host}:{port}");
    if !outbound.allow.contains(&entry) {
        outbound.allow.push(entry);
    }
}

/// Everything the stitcher routes share.
pub struct Stitcher {
    pub(crate) config: StitcherConfig,
    pub(crate) base_url: String,
    pub(super) channels: Channels,
    sessions: Sessions,
    decisions: Decisions,
    pub(super) segments: Segments,
    clock: Clock,
    http: reqwest::Client,
    /// Signs client-side tracking URLs (interstitial asset lists).
    tracking_signer: Option<super::sgai::TrackingSigner>,
    /// The channels' DASH origin MPDs as last fetched (see `dash`).
    pub(crate) dash_cache: dashmap::DashMap<String, (std::time::Instant, Arc<String>)>,
    /// The channels' DASH breaks, kept a while after the origin MPD stops listing them (see `dash`).
    pub(crate) dash_breaks: dashmap::DashMap<String, Vec<interlude_dash::AdBreak>>,
}

impl Stitcher {
    /// A stitcher over the configured channels, deciding with `pods`, its beacons going to `beacons`; the
    /// builder takes the optional collaborators.
    pub fn builder(
        config: StitcherConfig,
        base_url: String,
        pods: Arc<dyn PodSource>,
        beacons: Arc<dyn BeaconSink>,
        clock: Clock,
    ) -> StitcherBuilder {
        StitcherBuilder {
            config,
            base_url,
            pods,
            beacons,
            clock,
            sessions: Arc::new(MemorySessionStore::default()),
            shared: None,
            privacy: None,
            tracking_signer: None,
            outbound: interlude_outbound::OutboundConfig::default(),
            instance_issuer: None,
            conditioning: None,
        }
    }

    /// Starts one poller per channel, the decision dispatcher and session expiry. Returns at once.
    pub fn start(self: &Arc<Self>) {
        let (tx, mut rx) = mpsc::channel::<NewBreak>(1024);
        self.channels.start(&self.http, &self.clock, &tx);
        let me = self.clone();
        tokio::spawn(async move {
            while let Some(new_break) = rx.recv().await {
                me.segments.warm_anchors(&me.channels, &new_break);
                me.schedule_decisions(new_break);
            }
        });
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tick.tick().await;
                me.expire_sessions();
                for id in me.channels.ids() {
                    let n = me.sessions.for_channel(id).len();
                    metrics::gauge!(STITCHER_SESSIONS, "channel" => id.clone()).set(n as f64);
                }
            }
        });
    }

    /// Forgets the sessions idle past their TTL. Their viewers left: what their pods reserved goes back now,
    /// not at the reservations' TTL minutes later.
    pub(crate) fn expire_sessions(&self) {
        let expired = self.sessions.expire_idle();
        if !expired.is_empty() {
            tracing::debug!(expired = expired.len(), "Expired idle sessions.");
        }
        for session in &expired {
            self.decisions.abandon(session);
        }
    }

    /// Schedules the decisions of a break that just appeared, for the channel's sessions that asked for a
    /// playlist within [`ACTIVE_TARGET_DURATIONS`] target durations (others are decided if and when they come
    /// back, on request), each at its offset in the spread or before its player's next refresh, whichever
    /// comes first ([`decision_delay`]). One task per break walks them in order, and a
    /// session that expired meanwhile is skipped: an abandoned session costs no decision.
    fn schedule_decisions(self: &Arc<Self>, new_break: NewBreak) {
        let NewBreak { channel, tracked } = new_break;
        let target_secs = self
            .channels
            .entry(&channel)
            .ok()
            .and_then(|e| {
                e.channel
                    .snapshot()
                    .renditions
                    .first()
                    .map(|r| r.media.target_duration)
            })
            .unwrap_or(0);
        let window_ms = active_window_ms(target_secs);
        let now_ms = self.now().timestamp_millis();
        let sessions = self.sessions.for_channel(&channel);
        let total = sessions.len();
        let target_ms = i64::try_from(target_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        let mut due: Vec<(Duration, std::sync::Weak<Session>)> = sessions
            .into_iter()
            .filter(|s| s.is_watching(now_ms, window_ms))
            .map(|s| {
                let spread = self.decisions.spread_delay(&s.id, &tracked.id);
                (
                    decision_delay(spread, s.last_seen_ms(), now_ms, target_ms),
                    Arc::downgrade(&s),
                )
            })
            .collect();
        let idle = total - due.len();
        if idle > 0 {
            metrics::counter!(STITCHER_DECISIONS_SKIPPED_IDLE, "channel" => channel.clone())
                .increment(idle as u64);
        }
        due.sort_by_key(|(delay, _)| *delay);
        let me = self.clone();
        tokio::spawn(async move {
            let start = tokio::time::Instant::now();
            for (delay, session) in due {
                tokio::time::sleep_until(start + delay).await;
                // Held weakly: an expired session is freed, not kept alive for its decision.
                let Some(session) = session.upgrade() else {
                    continue;
                };
                if !me.sessions.is_live(&session) {
                    continue;
                }
                let (me, tracked) = (me.clone(), tracked.clone());
                tokio::spawn(async move {
                    let decided = me
                        .decisions
                        .decide_while(&session, &tracked, &me.channels, |s| me.sessions.is_live(s))
                        .await;
                    if decided {
                        // Against `STITCHER_DECISIONS_ON_REQUEST`: the share of pods ready before a viewer asked.
                        metrics::counter!(STITCHER_DECISIONS_AHEAD, "channel" => session.channel.clone())
                            .increment(1);
                    }
                });
            }
        });
    }

    /// Takes one session start from the allowance of the client at `client` (`stitcher.session_rate_per_ip`);
    /// `None` (no peer address known) is not limited.
    pub fn admit_client(&self, client: Option<std::net::IpAddr>) -> Result<(), StitchError> {
        self.sessions.admit_client(client)
    }

    /// The channel, for routes that serve its origin data.
    pub fn channel(&self, channel: &str) -> Result<Arc<Channel>, StitchError> {
        Ok(self.channels.entry(channel)?.channel.clone())
    }

    /// The configured channels' ids (without the per-channel session counts [`Stitcher::channel_summaries`]
    /// walks every session for).
    pub fn channel_ids(&self) -> Vec<String> {
        self.channels.ids().cloned().collect()
    }

    /// Each channel at a glance: sessions, breaks, the open one, origin freshness (the dashboard).
    pub fn channel_summaries(&self) -> Vec<ChannelSummary> {
        self.channels
            .summaries(self.now(), |id| self.sessions.for_channel(id).len())
    }

    /// A signed tracking URL for `claims`, when a signer is set.
    pub(crate) fn sign_tracking(
        &self,
        claims: &interlude_events::token::TokenClaims,
    ) -> Option<String> {
        self.tracking_signer.as_ref().and_then(|s| s(claims))
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
        let entry = self.channels.entry(channel).ok()?;
        self.channels
            .slate(entry)
            .await
            .map(|s| (s.urls, s.seconds))
    }

    /// The base URL links are built on.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The viewer a new session keeps (consent applied at the edge).
    pub fn admit_viewer(
        &self,
        viewer: ViewerContext,
        signals: &SignalParams,
        headers: &axum::http::HeaderMap,
        client: Option<std::net::IpAddr>,
    ) -> ViewerContext {
        self.sessions.admit_viewer(viewer, signals, headers, client)
    }

    /// Deletes the sessions of the viewers `ids` (pseudonyms) on this node and in the shared store; returns
    /// (local, shared) counts.
    pub async fn forget_viewers(&self, ids: &[String]) -> Result<(u64, u64), String> {
        self.sessions.forget_viewers(ids).await
    }

    /// The shared session store, in distributed mode.
    pub fn shared_sessions(&self) -> Option<&Arc<SharedSessions>> {
        self.sessions.shared()
    }

    /// Looks a session up (on this node, else in the shared store) and marks it used.
    pub async fn session(&self, id: &str) -> Result<Arc<Session>, StitchError> {
        self.sessions
            .get(id, |channel| self.channels.contains(channel))
            .await
    }

    /// Stops (or resumes) taking new sessions; existing sessions keep being served.
    pub fn set_draining(&self, draining: bool) {
        self.sessions.set_draining(draining);
    }

    /// Creates a stitched session.
    pub async fn create_session(
        self: &Arc<Self>,
        channel: &str,
        viewer: ViewerContext,
    ) -> Result<Arc<Session>, StitchError> {
        self.create_session_in(channel, viewer, SessionMode::Stitched)
            .await
    }

    /// Creates a session in `mode` (stitched, or HLS Interstitials), published to the shared store in
    /// distributed mode so any node can serve it; if its channel is in a break, decides that break for it
    /// right away.
    pub async fn create_session_in(
        self: &Arc<Self>,
        channel: &str,
        viewer: ViewerContext,
        mode: SessionMode,
    ) -> Result<Arc<Session>, StitchError> {
        let snapshot = self.channels.entry(channel)?.channel.snapshot();
        let joined_msn = snapshot.live_edge_msn().unwrap_or(0);
        let session = self
            .sessions
            .create(channel, viewer, mode, joined_msn)
            .await?;
        if let Some(current) = snapshot.breaks.last().filter(|b| !b.is_ended()).cloned() {
            let (me, session) = (self.clone(), session.clone());
            tokio::spawn(async move { me.decide(&session, &current).await });
        }
        Ok(session)
    }

    /// Decides one break for one session (once; later calls return at once).
    pub async fn decide(&self, session: &Session, tracked: &TrackedBreak) {
        self.decisions
            .decide(session, tracked, &self.channels)
            .await;
    }

    /// Decides now, within the decision timeout, every open break this session's playlist will show and has
    /// no decision for yet.
    pub async fn decide_pending(&self, session: &Session) {
        self.decisions.decide_pending(session, &self.channels).await;
    }

    /// The session's master playlist.
    pub fn master_playlist(&self, session: &Session) -> Result<String, StitchError> {
        render::master_playlist(
            self.channels.entry(&session.channel)?,
            session,
            &self.base_url,
        )
    }

    /// Writes the session's media playlist for content rendition `rendition` into `out`.
    ///
    /// A break the render found undecided is fixed (slate, or the origin's content) so every later refresh
    /// agrees. In distributed mode that fix is offered to the shared store before the playlist is answered:
    /// when another node stored a pod for this viewer first (its decision landed between our lookup and the
    /// render), this node adopts it and renders again, so every node serves the viewer the same break. Only a
    /// playlist that was never answered is rendered twice.
    pub async fn media_playlist(
        &self,
        session: &Session,
        rendition: usize,
        out: &mut String,
    ) -> Result<(), StitchError> {
        let settings = RenderSettings {
            base_url: &self.base_url,
            tolerance_micros: self.channels.tolerance_micros(),
            join_policy: self.config.join_policy,
            proxy: self.segments.proxies(),
        };
        let entry = self.channels.entry(&session.channel)?;
        let fixed = render::media_playlist(entry, session, rendition, self.now(), settings, out)?;
        let Some(shared) = self.sessions.shared().filter(|_| !fixed.is_empty()) else {
            return Ok(());
        };
        let budget = Duration::from_millis(self.config.decision_timeout_ms);
        let saved =
            tokio::time::timeout(budget, Sessions::persist_fixed(shared, &session.id, &fixed))
                .await;
        let Ok(winners) = saved else {
            tracing::warn!(session = %session.id, "Fixed decisions not shared in time.");
            return Ok(());
        };
        let mut adopted = false;
        for ((break_id, ours), winner) in fixed.iter().zip(winners) {
            if let Some(winner) = winner.filter(|w| w != ours.as_ref()) {
                session.replace_decision(break_id, winner);
                adopted = true;
            }
        }
        if adopted {
            metrics::counter!(crate::telemetry::metrics::STITCHER_FIXED_REPLACED).increment(1);
            out.clear();
            render::media_playlist(entry, session, rendition, self.now(), settings, out)?;
        }
        Ok(())
    }

    /// Whether ad and slate segments are served by this server (rather than redirected to).
    pub fn proxies_segments(&self) -> bool {
        self.segments.proxies()
    }

    /// Resolves an ad segment request to the creative's URL, firing the server-side beacons it stands for.
    pub fn ad_segment(
        &self,
        session: &Session,
        ad_instance_id: &str,
        rendition: usize,
        segment: usize,
    ) -> Result<String, StitchError> {
        self.segments
            .ad_segment(&self.channels, session, ad_instance_id, rendition, segment)
    }

    /// Proxy mode: the ad segment's bytes, retimed to continue the content; fires the same beacons as a
    /// redirect.
    pub async fn proxied_ad_segment(
        &self,
        session: &Session,
        ad_instance_id: &str,
        rendition: usize,
        segment: usize,
    ) -> Result<bytes::Bytes, StitchError> {
        self.segments
            .proxied_ad_segment(&self.channels, session, ad_instance_id, rendition, segment)
            .await
    }

    /// Proxy mode: the slate segment playing `offset_micros` into the break starting at media sequence
    /// `break_msn`, retimed to continue the content and cut to `duration_micros`.
    pub async fn proxied_slate_segment(
        &self,
        session: &Session,
        rendition: usize,
        break_msn: u64,
        offset_micros: u64,
        duration_micros: u64,
    ) -> Result<bytes::Bytes, StitchError> {
        self.segments
            .proxied_slate_segment(
                &self.channels,
                session,
                rendition,
                break_msn,
                offset_micros,
                duration_micros,
            )
            .await
    }
}
