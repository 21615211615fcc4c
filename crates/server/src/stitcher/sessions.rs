//! Who is watching: the sessions this node serves (the local store the hot path reads), the ones shared with
//! other nodes in distributed mode, the viewer each keeps after consent, draining, and the bounds on new
//! sessions (the node's cap, each client address's creation rate).

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};
use interlude_decision::ViewerContext;

use super::StitchError;
use super::session::{BreakDecision, Session, SessionMode, SessionStore, new_session_id};
use super::shared::SharedSessions;
use crate::ops::rate_limit::RateLimiter;
use crate::privacy::edge::{EdgePrivacy, SignalParams};
use crate::telemetry::metrics::{
    STITCHER_SESSIONS_ADOPTED, STITCHER_SESSIONS_CREATED, STITCHER_SESSIONS_REFUSED,
    STITCHER_SHARED_ERRORS,
};

/// The sessions of this node, and of every node when shared.
pub(crate) struct Sessions {
    local: Arc<dyn SessionStore>,
    shared: Option<Arc<SharedSessions>>,
    privacy: Option<Arc<EdgePrivacy>>,
    draining: AtomicBool,
    ttl_secs: u64,
    clock: interlude_events::Clock,
    /// Most sessions created here at once (adopted ones are not refused).
    max_sessions: usize,
    /// Sessions each client address may start, when limited.
    creation_rate: Option<RateLimiter>,
}

fn shared_error(e: impl std::fmt::Display, what: &'static str) {
    metrics::counter!(STITCHER_SHARED_ERRORS).increment(1);
    tracing::warn!(error = %e, "{what}");
}

impl Sessions {
    /// Sessions kept in `local`, shared through `shared` when given, viewers admitted through `privacy`.
    pub(crate) fn new(
        local: Arc<dyn SessionStore>,
        shared: Option<Arc<SharedSessions>>,
        privacy: Option<Arc<EdgePrivacy>>,
        ttl_secs: u64,
        clock: interlude_events::Clock,
    ) -> Self {
        Sessions {
            local,
            shared,
            privacy,
            draining: AtomicBool::new(false),
            ttl_secs,
            clock,
            max_sessions: usize::MAX,
            creation_rate: None,
        }
    }

    /// Refuses new sessions past `max_sessions` on this node, and past `creation_rate` per client address.
    pub(crate) fn with_limits(
        mut self,
        max_sessions: usize,
        creation_rate: Option<RateLimiter>,
    ) -> Self {
        self.max_sessions = max_sessions;
        self.creation_rate = creation_rate;
        self
    }

    /// Takes one session start from the client at `client`'s allowance; unknown addresses (a request that
    /// did not come through the listener, such as an in-process test) are not limited.
    pub(crate) fn admit_client(&self, client: Option<IpAddr>) -> Result<(), StitchError> {
        let (Some(limiter), Some(ip)) = (&self.creation_rate, client) else {
            return Ok(());
        };
        limiter.take(ip, std::time::Instant::now()).map_err(|wait| {
            metrics::counter!(STITCHER_SESSIONS_REFUSED, "reason" => "rate").increment(1);
            StitchError::RateLimited {
                retry_after_secs: u32::try_from(wait.as_secs_f64().ceil() as u64)
                    .unwrap_or(u32::MAX)
                    .max(1),
            }
        })
    }

    /// Whether `session` is still one of this node's (not expired, not forgotten): a decision scheduled for
    /// it is wasted otherwise.
    pub(crate) fn is_live(&self, session: &Session) -> bool {
        self.local
            .get(&session.id)
            .is_some_and(|s| std::ptr::eq(Arc::as_ptr(&s), session))
    }

    /// The shared store, in distributed mode.
    pub(crate) fn shared(&self) -> Option<&Arc<SharedSessions>> {
        self.shared.as_ref()
    }

    /// This node's sessions of `channel`.
    pub(crate) fn for_channel(&self, channel: &str) -> Vec<Arc<Session>> {
        self.local.for_channel(channel)
    }

    /// Looks a session up (on this node, else in the shared store, adopting it when its channel is one of
    /// ours) and marks it used.
    pub(crate) async fn get(
        &self,
        id: &str,
        serves_channel: impl Fn(&str) -> bool,
    ) -> Result<Arc<Session>, StitchError> {
        let now = (self.clock)();
        if let Some(session) = self.local.get(id) {
            session.touch(now);
            self.touch_shared(&session, now);
            return Ok(session);
        }
        let unknown = || StitchError::UnknownSession(id.to_owned());
        let shared = self.shared.as_ref().ok_or_else(unknown)?;
        let record = match shared.load_session(id).await {
            Ok(Some(record)) => record,
            Ok(None) => return Err(unknown()),
            Err(e) => {
                shared_error(&e, "Shared session lookup failed.");
                return Err(unknown());
            }
        };
        if !serves_channel(&record.channel) {
            return Err(unknown());
        }
        metrics::counter!(STITCHER_SESSIONS_ADOPTED).increment(1);
        let session = Arc::new(Session::from_record(record, now));
        self.local.insert(session.clone());
        Ok(self.local.get(id).unwrap_or(session))
    }

    /// Extends the session's life in the shared store, at most four times per TTL.
    fn touch_shared(&self, session: &Arc<Session>, now: DateTime<Utc>) {
        let Some(shared) = &self.shared else {
            return;
        };
        let every_ms = i64::try_from(self.ttl_secs.saturating_mul(250)).unwrap_or(i64::MAX);
        let last = session.shared_touched_ms.load(Ordering::Relaxed);
        if now.timestamp_millis() - last < every_ms {
            return;
        }
        session
            .shared_touched_ms
            .store(now.timestamp_millis(), Ordering::Relaxed);
        let (shared, id) = (shared.clone(), session.id.clone());
        tokio::spawn(async move {
            if let Err(e) = shared.touch(&id).await {
                metrics::counter!(STITCHER_SHARED_ERRORS).increment(1);
                tracing::debug!(error = %e, "Shared session not touched.");
            }
        });
    }

    /// Creates a session on `channel` that joined at `joined_msn`, published to the shared store.
    pub(crate) async fn create(
        &self,
        channel: &str,
        viewer: ViewerContext,
        mode: SessionMode,
        joined_msn: u64,
    ) -> Result<Arc<Session>, StitchError> {
        if self.draining.load(Ordering::Acquire) {
            return Err(StitchError::Draining);
        }
        if self.local.len() >= self.max_sessions {
            metrics::counter!(STITCHER_SESSIONS_REFUSED, "reason" => "cap").increment(1);
            return Err(StitchError::SessionCap);
        }
        let mut session = Session::new(
            new_session_id(),
            channel.to_owned(),
            viewer,
            (self.clock)(),
            joined_msn,
        );
        session.mode = mode;
        let session = Arc::new(session);
        self.local.insert(session.clone());
        if let Some(shared) = &self.shared {
            if let Err(e) = shared.save_session(&session.record()).await {
                // Still served by this node; another node would not find it.
                shared_error(&e, "Session not shared.");
            }
        }
        metrics::counter!(STITCHER_SESSIONS_CREATED, "channel" => channel.to_owned()).increment(1);
        Ok(session)
    }

    /// Publishes decisions rendering fixed for the session (a break it saw undecided, locked to slate), so
    /// other nodes render the same; the winner stored first stays. The decision in force for each, in order
    /// (`None` where the shared store could not be reached: ours stands).
    pub(crate) async fn persist_fixed(
        shared: &SharedSessions,
        session_id: &str,
        fixed: &[(String, Arc<BreakDecision>)],
    ) -> Vec<Option<BreakDecision>> {
        let mut winners = Vec::with_capacity(fixed.len());
        for (break_id, decision) in fixed {
            match shared.save_decision(session_id, break_id, decision).await {
                Ok(winner) => winners.push(Some(winner)),
                Err(e) => {
                    shared_error(&e, "Fixed decision not shared.");
                    winners.push(None);
                }
            }
        }
        winners
    }

    /// The viewer a new session keeps: with privacy configured, its consent applied (pseudonymous id only
    /// with consent to store it, personalisation flag), geography and device from the edge; without, the
    /// viewer as given.
    pub(crate) fn admit_viewer(
        &self,
        viewer: ViewerContext,
        signals: &SignalParams,
        headers: &axum::http::HeaderMap,
        client: Option<std::net::IpAddr>,
    ) -> ViewerContext {
        let Some(privacy) = &self.privacy else {
            return viewer;
        };
        let now = std::time::SystemTime::from((self.clock)());
        let (viewer, decision) = privacy.viewer(viewer, signals, headers, client, now, false);
        tracing::debug!(reasons = ?decision.explain(), "Session consent.");
        viewer
    }

    /// Deletes the sessions of the viewers `ids` (pseudonyms) on this node and in the shared store; returns
    /// (local, shared) counts.
    pub(crate) async fn forget_viewers(&self, ids: &[String]) -> Result<(u64, u64), String> {
        let set: std::collections::HashSet<String> = ids.iter().cloned().collect();
        let local = self.local.forget_viewers(&set) as u64;
        let shared = match &self.shared {
            Some(shared) => shared
                .forget_viewers(ids)
                .await
                .map_err(|e| e.to_string())?,
            None => 0,
        };
        Ok((local, shared))
    }

    /// Stops (or resumes) taking new sessions; existing sessions keep being served.
    pub(crate) fn set_draining(&self, draining: bool) {
        self.draining.store(draining, Ordering::Release);
    }

    /// Forgets sessions idle for longer than the TTL, and clients whose creation allowance is whole again;
    /// the sessions that expired.
    pub(crate) fn expire_idle(&self) -> Vec<Arc<Session>> {
        if let Some(limiter) = &self.creation_rate {
            limiter.prune(std::time::Instant::now());
        }
        let ttl_ms = i64::try_from(self.ttl_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        self.local
            .expire((self.clock)().timestamp_millis() - ttl_ms)
    }
}
