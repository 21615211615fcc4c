//! Deciding pods: for each break a session sees, ask the pod source (the decider) within the decision
//! timeout, resolve every ad to the segments of each content rendition, and fix the decision in the session
//! (arbitrated through the shared store in distributed mode, so every node renders the same pod).
//!
//! Decisions are made when a break is first detected, for the sessions that asked for a playlist recently
//! (scheduled by the stitcher; an idle or expired session gets none), spread over `decision_spread_ms` so a break for a
//! million viewers does not become a million simultaneous calls, at most [`MAX_CONCURRENT_DECISIONS`] at a
//! time. A playlist request that finds a break still undecided decides it then ([`Decisions::decide_pending`],
//! counted as late), bounded by the same timeout.

use std::sync::Arc;
use std::time::{Duration, Instant};

use interlude_decision::{PodRequest, PodSource};
use interlude_stitch::pod::micros_to_secs;
use interlude_stitch::{PlannedAd, PodPlan, TrackedBreak};
use tokio::sync::Semaphore;

use super::channels::{ChannelEntry, Channels, Slate};
use super::config::{JoinPolicy, StitcherConfig};
use super::pods::best_rendition;
use super::session::{BreakDecision, ResolvedAd, Session};
use super::shared::SharedSessions;

/// Concurrent pod decisions: enough to keep a decision engine busy, bounded so a break for a million viewers
/// queues instead of opening a million sockets.
pub(crate) const MAX_CONCURRENT_DECISIONS: usize = 256;

/// The decisions of this node's sessions.
pub(crate) struct Decisions {
    pods: Arc<dyn PodSource>,
    permits: Semaphore,
    timeout: Duration,
    join_policy: JoinPolicy,
    spread_ms: u64,
    shared: Option<Arc<SharedSessions>>,
    conditioning: Option<Arc<crate::conditioning::Conditioning>>,
}

impl Decisions {
    /// Tells the pod source that `session`'s viewer left: every ad of its pods is abandoned (see
    /// [`PodSource::abandoned`]).
    pub(crate) fn abandon(&self, session: &Session) {
        for ad in session.decided_ads() {
            self.pods.abandoned(&ad);
        }
    }

    /// Resolves ads offered only as files to transcode through `conditioning`.
    pub(crate) fn with_conditioning(
        mut self,
        conditioning: Option<Arc<crate::conditioning::Conditioning>>,
    ) -> Self {
        self.conditioning = conditioning;
        self
    }

    /// Decisions from `pods`, shared through `shared` when given.
    pub(crate) fn new(
        config: &StitcherConfig,
        pods: Arc<dyn PodSource>,
        shared: Option<Arc<SharedSessions>>,
    ) -> Self {
        Decisions {
            pods,
            permits: Semaphore::new(MAX_CONCURRENT_DECISIONS),
            timeout: Duration::from_millis(config.decision_timeout_ms),
            join_policy: config.join_policy,
            spread_ms: config.decision_spread_ms,
            shared,
            conditioning: None,
        }
    }

    /// Where in the spread window a session's decision for a break falls: stable for the pair (a retried
    /// dispatch lands at the same time), uniform across sessions.
    pub(crate) fn spread_delay(&self, session: &str, break_id: &str) -> Duration {
        if self.spread_ms == 0 {
            return Duration::ZERO;
        }
        let h = interlude_events::stable_hash(&[session, break_id]);
        Duration::from_millis(h % self.spread_ms)
    }

    /// Decides one break for one session (once; later calls return at once).
    pub(crate) async fn decide(
        &self,
        session: &Session,
        tracked: &TrackedBreak,
        channels: &Channels,
    ) {
        self.decide_while(session, tracked, channels, |_| true)
            .await;
    }

    /// As [`Decisions::decide`], unless `wanted` says otherwise once a decision slot is free: a scheduled
    /// decision may queue behind [`MAX_CONCURRENT_DECISIONS`] others, and its session may expire meanwhile.
    /// Whether this call made the decision (not found one made, adopted one, or gave up).
    pub(crate) async fn decide_while(
        &self,
        session: &Session,
        tracked: &TrackedBreak,
        channels: &Channels,
        wanted: impl Fn(&Session) -> bool,
    ) -> bool {
        let lock = session.deciding(&tracked.id);
        let _deciding = lock.lock().await;
        if session.decision(&tracked.id).is_some() {
            return false;
        }
        // Another node (or this one before a restart) may have decided this break for this viewer already: its
        // plan is the viewer's plan.
        if self.adopt_shared(session, tracked).await {
            return false;
        }
        let shared = self.shared.as_ref();
        let Ok(entry) = channels.entry(&session.channel) else {
            return false;
        };
        let Ok(_permit) = self.permits.acquire().await else {
            return false;
        };
        if !wanted(session) {
            return false;
        }
        let started = Instant::now();
        let slate = channels.slate(entry).await;
        let mid_break = session.joined_msn > tracked.start_msn;
        let decision = match (&slate, mid_break, self.join_policy) {
            (None, ..) | (_, true, JoinPolicy::Passthrough) => BreakDecision {
                plan: None,
                ads: Vec::new(),
            },
            (Some(slate), true, JoinPolicy::Slate) => slate_decision(slate),
            (Some(slate), ..) => {
                self.decide_pod(session, tracked, entry, channels, slate)
                    .await
            }
        };
        metrics::histogram!(crate::telemetry::metrics::STITCHER_DECISION_DURATION, "channel" => session.channel.clone())
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
            metrics::counter!(crate::telemetry::metrics::STITCHER_BREAK_SECONDS, "channel" => channel.clone(), "kind" => "ad")
                .increment(ads / 1_000_000);
            metrics::counter!(crate::telemetry::metrics::STITCHER_BREAK_SECONDS, "channel" => channel, "kind" => "slate")
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
                    metrics::counter!(crate::telemetry::metrics::STITCHER_SHARED_ERRORS)
                        .increment(1);
                    tracing::warn!(error = %e, "Decision not shared.");
                    decision
                }
            },
            None => decision,
        };
        let filled = decision.ads.len();
        self.served(&session.decide(&tracked.id, decision));
        tracing::debug!(session = %session.id, break_id = %tracked.id, ads = filled, "Decided pod.");
        true
    }

    /// Tells the pod source which ads the viewer is served: the decision in force, stored and won, every ad
    /// in it resolved to segments.
    fn served(&self, decision: &BreakDecision) {
        for ad in &decision.ads {
            self.pods.served(&ad.ad);
        }
    }

    /// Takes the session's decision for `tracked` from the shared store when one is there; whether it was.
    async fn adopt_shared(&self, session: &Session, tracked: &TrackedBreak) -> bool {
        let Some(shared) = &self.shared else {
            return false;
        };
        match shared.load_decision(&session.id, &tracked.id).await {
            Ok(Some(decision)) => {
                // Said again when a node adopts its own decision after a restart: the notices it stands for
                // may not have been queued before the stop (queueing them twice queues nothing).
                self.served(&session.decide(&tracked.id, decision));
                true
            }
            Ok(None) => false,
            Err(e) => {
                metrics::counter!(crate::telemetry::metrics::STITCHER_SHARED_ERRORS).increment(1);
                tracing::warn!(error = %e, "Shared decision lookup failed.");
                false
            }
        }
    }

    async fn decide_pod(
        &self,
        session: &Session,
        tracked: &TrackedBreak,
        entry: &ChannelEntry,
        channels: &Channels,
        slate: &Slate,
    ) -> BreakDecision {
        let request = PodRequest {
            channel: session.channel.clone(),
            session_id: session.id.clone(),
            break_id: tracked.id.clone(),
            duration_secs: tracked.planned_micros.map(micros_to_secs),
            viewer: session.viewer.clone(),
        };
        let timeout = self.timeout;
        let pod = match tokio::time::timeout(timeout, self.pods.pod(request)).await {
            Ok(Ok(pod)) => pod,
            Ok(Err(error)) => {
                metrics::counter!(crate::telemetry::metrics::STITCHER_DECISION_ERRORS, "channel" => session.channel.clone())
                    .increment(1);
                tracing::warn!(session = %session.id, %error, "Pod source failed; filling with slate.");
                return slate_decision(slate);
            }
            Err(_) => {
                metrics::counter!(crate::telemetry::metrics::STITCHER_DECISION_TIMEOUTS, "channel" => session.channel.clone())
                    .increment(1);
                return slate_decision(slate);
            }
        };
        let snapshot = entry.channel.snapshot();
        let mut planned = Vec::new();
        let mut resolved = Vec::new();
        'ads: for ad in pod.ads {
            if ad.renditions.is_empty() {
                // Offered only as a file to transcode: stitched once conditioned for this channel.
                let Some(conditioned) = self.conditioned(session, tracked, &snapshot, &ad).await
                else {
                    self.pods.dropped(&ad);
                    continue;
                };
                planned.push(PlannedAd {
                    ad_instance_id: ad.ad_instance_id.clone(),
                    segment_micros: conditioned.segment_micros.to_vec(),
                });
                resolved.push(ResolvedAd {
                    ad,
                    segment_urls: conditioned.segment_urls,
                    segment_micros: conditioned.segment_micros,
                    playlist_urls: conditioned.playlist_urls,
                    maps: conditioned.maps,
                });
                continue;
            }
            let mut segment_urls = Vec::new();
            let mut maps = Vec::new();
            let mut canonical: Option<Arc<[u64]>> = None;
            for content in &snapshot.renditions {
                // A player keeps one container per variant stream: TS ads for TS content, fragmented MP4 ads
                // (with their init segment) for CMAF content. A creative may be offered in both: a rendition
                // in the other container is set aside and the next best one tried.
                let fmp4 = content.media.is_fmp4();
                let mut candidates = ad.renditions.clone();
                let media = loop {
                    let Some(i) = best_rendition(
                        &candidates,
                        content.variant.bandwidth,
                        content.variant.resolution,
                    ) else {
                        if candidates.len() < ad.renditions.len() {
                            tracing::warn!(
                                creative = %ad.creative_id,
                                channel = %session.channel,
                                "No creative rendition in the channel's container (TS or fMP4); skipped."
                            );
                        }
                        self.pods.dropped(&ad);
                        continue 'ads;
                    };
                    let media = match channels
                        .creatives()
                        .media(&candidates[i].playlist_url)
                        .await
                    {
                        Ok(media) => media,
                        Err(error) => {
                            // A failure the library remembers was warned about when it happened.
                            if matches!(error, super::creatives::CreativeError::Remembered { .. }) {
                                tracing::debug!(creative = %ad.creative_id, %error, "Creative unusable; skipped.");
                            } else {
                                tracing::warn!(creative = %ad.creative_id, %error, "Creative unusable; skipped.");
                            }
                            self.pods.dropped(&ad);
                            continue 'ads;
                        }
                    };
                    if media.map.is_some() == fmp4 {
                        break media;
                    }
                    candidates.remove(i);
                };
                match &canonical {
                    None => canonical = Some(media.micros.clone()),
                    // Renditions must line up segment for segment, or players switching variants mid-ad break.
                    Some(c) if c.len() != media.micros.len() => {
                        self.pods.dropped(&ad);
                        continue 'ads;
                    }
                    Some(_) => {}
                }
                segment_urls.push(media.urls.clone());
                maps.extend(media.map.clone());
            }
            let Some(micros) = canonical else {
                self.pods.dropped(&ad);
                continue;
            };
            planned.push(PlannedAd {
                ad_instance_id: ad.ad_instance_id.clone(),
                segment_micros: micros.to_vec(),
            });
            resolved.push(ResolvedAd {
                ad,
                segment_urls,
                segment_micros: micros,
                playlist_urls: Vec::new(),
                maps,
            });
        }
        match PodPlan::new(planned, slate.seconds) {
            Ok(plan) => BreakDecision {
                plan: Some(plan),
                ads: resolved,
            },
            Err(error) => {
                tracing::warn!(%error, "Pod unusable; filling with slate.");
                for ad in &resolved {
                    self.pods.dropped(&ad.ad);
                }
                slate_decision(slate)
            }
        }
    }

    /// The conditioned segments of `ad` (an ad without HLS renditions) for the session's channel, or `None`
    /// when it is skipped for this pod: counted by reason in `stitcher_creatives_skipped_total` and logged
    /// (at info when the queue gave the reason just now, once a second at most per creative; else at debug).
    async fn conditioned(
        &self,
        session: &Session,
        tracked: &TrackedBreak,
        snapshot: &super::channel::ChannelSnapshot,
        ad: &interlude_decision::PodAd,
    ) -> Option<crate::conditioning::ConditionedAd> {
        let skip = |reason: interlude_condition::NotReadyReason, fresh: bool| {
            if let Some(c) = &self.conditioning {
                c.note_skip(&reason);
            }
            metrics::counter!(
                crate::telemetry::metrics::STITCHER_CREATIVES_SKIPPED,
                "reason" => reason.code()
            )
            .increment(1);
            let detail = match &reason {
                interlude_condition::NotReadyReason::TranscodeError(why) => why.as_str(),
                _ => "",
            };
            if fresh {
                tracing::info!(
                    session = %session.id, break_id = %tracked.id, creative = %ad.creative_id,
                    reason = reason.code(), %detail, "Creative not conditioned for this channel yet; skipped for this pod."
                );
            } else {
                tracing::debug!(
                    session = %session.id, break_id = %tracked.id, creative = %ad.creative_id,
                    reason = reason.code(), "Creative not conditioned yet; skipped."
                );
            }
            None
        };
        let (Some(conditioning), Some(source)) = (&self.conditioning, &ad.source) else {
            return skip(interlude_condition::NotReadyReason::NoVariantMatch, false);
        };
        // The break that needs it is this one: due now, ahead of everything conditioned in advance.
        let deadline_ms = Some(conditioning.now_ms());
        match conditioning
            .resolve(&session.channel, snapshot, source, deadline_ms)
            .await
        {
            Ok(conditioned) => Some(conditioned),
            Err(s) => skip(s.reason, s.fresh),
        }
    }

    /// Decides now, within the decision timeout, every open break this session's playlist will show and has
    /// no decision for yet (its turn in the spread has not come, or a decision is still running); for a break
    /// that ended undecided here, adopts the decision the shared store holds (made before a restart).
    pub(crate) async fn decide_pending(&self, session: &Session, channels: &Channels) {
        let Ok(entry) = channels.entry(&session.channel) else {
            return;
        };
        let snapshot = entry.channel.snapshot();
        let timeout = self.timeout;
        for tracked in snapshot.breaks.iter() {
            let before_session = tracked.end_msn.is_some_and(|end| end <= session.joined_msn);
            if before_session || session.decision(&tracked.id).is_some() {
                continue;
            }
            if tracked.is_ended() {
                // Too late to decide, but not to find the pod the viewer was given before this node (re)started:
                // the playlist must go on listing the segments already served. Looked up once: the render
                // fixes the break either way.
                let _ = tokio::time::timeout(timeout, self.adopt_shared(session, tracked)).await;
                continue;
            }
            metrics::counter!(crate::telemetry::metrics::STITCHER_DECISIONS_ON_REQUEST)
                .increment(1);
            let _ = tokio::time::timeout(timeout, self.decide(session, tracked, channels)).await;
        }
    }
}

/// A decision that fills the break with slate (no slate known: the content plays).
pub(crate) fn slate_decision(slate: &Slate) -> BreakDecision {
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
