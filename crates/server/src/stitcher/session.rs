//! Viewer sessions: who the viewer is, which channel they watch, and the pod they got for each break.
//!
//! A session is small and mostly immutable; what changes is the set of per-break decisions, each fixed the first
//! time it is made (a plan must never change once the viewer may have seen part of it). [`SessionStore`] is
//! where this node keeps them (in-process); sharing with other nodes goes through
//! [`super::shared::SharedSessions`] over the store's `SessionShare`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use dashmap::DashMap;
use interlude_decision::{PodAd, ViewerContext};
use interlude_stitch::PodPlan;

/// A viewer's decision for one break.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BreakDecision {
    /// The plan the viewer's playlist follows; `None` plays the origin's own break content.
    pub plan: Option<PodPlan>,
    /// The ads in the plan, with what the stitcher resolved for each: one entry per planned ad.
    pub ads: Vec<ResolvedAd>,
}

/// An ad resolved to segments, per content rendition.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ResolvedAd {
    /// The ad as decided.
    pub ad: PodAd,
    /// For each content rendition (by index), the creative's segment URLs; durations are the plan's.
    pub segment_urls: Vec<Arc<[String]>>,
    /// Segment durations in microseconds.
    pub segment_micros: Arc<[u64]>,
    /// For an ad conditioned here (no HLS renditions of its own), per content rendition, its conditioned media
    /// playlist: the asset an HLS Interstitials session's player plays. Empty for an ad with HLS renditions,
    /// and in decisions shared before this field existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub playlist_urls: Vec<String>,
    /// For a fragmented MP4 (CMAF) ad, per content rendition, the `EXT-X-MAP` line of its init segment. Empty
    /// for an MPEG-TS ad, and in decisions shared before this field existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub maps: Vec<Arc<str>>,
}

impl ResolvedAd {
    /// The ad's `EXT-X-MAP` line in content rendition `rendition`, when it is fragmented MP4.
    pub fn map(&self, rendition: usize) -> Option<&str> {
        self.maps.get(rendition).map(|m| &**m)
    }
}

/// How a session's breaks reach the player.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionMode {
    /// Ads stitched into the media playlists (SSAI).
    #[default]
    Stitched,
    /// Content untouched; breaks marked as HLS Interstitials for the player to fill (SGAI).
    Interstitials,
}

/// What another node needs to rebuild a session.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SessionRecord {
    /// Session id.
    pub id: String,
    /// Channel id.
    pub channel: String,
    /// The viewer.
    pub viewer: ViewerContext,
    /// When the session was created.
    pub created_at: DateTime<Utc>,
    /// The origin live edge when the session was created.
    pub joined_msn: u64,
    /// Stitched or HLS Interstitials.
    #[serde(default)]
    pub mode: SessionMode,
}

/// One viewer watching one channel.
#[derive(Debug)]
pub struct Session {
    /// Session id (random, unguessable).
    pub id: String,
    /// Channel id.
    pub channel: String,
    /// The viewer.
    pub viewer: ViewerContext,
    /// When the session was created.
    pub created_at: DateTime<Utc>,
    /// The origin live edge (media sequence) when the session was created: breaks that started earlier are
    /// mid-break joins.
    pub joined_msn: u64,
    decisions: RwLock<HashMap<String, Arc<BreakDecision>>>,
    /// One decision in progress per break: a playlist request that needs the pod waits for the scheduled
    /// decision instead of starting a second one.
    deciding: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    last_seen_ms: AtomicI64,
    /// When this node last extended the session's life in the shared store (Unix milliseconds).
    pub(crate) shared_touched_ms: AtomicI64,
    /// Stitched (SSAI) or HLS Interstitials (SGAI).
    pub mode: SessionMode,
}

impl Session {
    /// A new session.
    pub fn new(
        id: String,
        channel: String,
        viewer: ViewerContext,
        now: DateTime<Utc>,
        joined_msn: u64,
    ) -> Self {
        Session {
            id,
            channel,
            viewer,
            created_at: now,
            joined_msn,
            decisions: RwLock::new(HashMap::new()),
            deciding: std::sync::Mutex::new(HashMap::new()),
            last_seen_ms: AtomicI64::new(now.timestamp_millis()),
            shared_touched_ms: AtomicI64::new(now.timestamp_millis()),
            mode: SessionMode::Stitched,
        }
    }

    /// What another node needs to rebuild this session.
    pub fn record(&self) -> SessionRecord {
        SessionRecord {
            id: self.id.clone(),
            channel: self.channel.clone(),
            viewer: self.viewer.clone(),
            created_at: self.created_at,
            joined_msn: self.joined_msn,
            mode: self.mode,
        }
    }

    /// Rebuilds a session another node created.
    pub fn from_record(record: SessionRecord, now: DateTime<Utc>) -> Self {
        let mut s = Session::new(
            record.id,
            record.channel,
            record.viewer,
            record.created_at,
            record.joined_msn,
        );
        s.last_seen_ms = AtomicI64::new(now.timestamp_millis());
        s.mode = record.mode;
        s
    }

    /// The decision for a break, if made.
    pub fn decision(&self, break_id: &str) -> Option<Arc<BreakDecision>> {
        self.decisions.read().ok()?.get(break_id).cloned()
    }

    /// Records the decision for a break unless one exists; returns the one in force.
    pub fn decide(&self, break_id: &str, decision: BreakDecision) -> Arc<BreakDecision> {
        let Ok(mut decisions) = self.decisions.write() else {
            return Arc::new(decision);
        };
        decisions
            .entry(break_id.to_owned())
            .or_insert_with(|| Arc::new(decision))
            .clone()
    }

    /// Replaces the decision for a break: only for a decision this node fixed and never served, which lost
    /// to one another node stored first.
    pub(crate) fn replace_decision(&self, break_id: &str, decision: BreakDecision) {
        if let Ok(mut decisions) = self.decisions.write() {
            decisions.insert(break_id.to_owned(), Arc::new(decision));
        }
    }

    /// The lock held while this session's pod for `break_id` is being decided.
    pub(crate) fn deciding(&self, break_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        match self.deciding.lock() {
            Ok(mut locks) => locks.entry(break_id.to_owned()).or_default().clone(),
            Err(_) => Arc::default(),
        }
    }

    /// The ads of every pod decided for this session.
    pub fn decided_ads(&self) -> Vec<interlude_decision::PodAd> {
        let Ok(decisions) = self.decisions.read() else {
            return Vec::new();
        };
        decisions
            .values()
            .flat_map(|d| d.ads.iter().map(|a| a.ad.clone()))
            .collect()
    }

    /// Drops decisions for breaks no longer tracked by the channel.
    pub fn retain_decisions(&self, keep: impl Fn(&str) -> bool) {
        if let Ok(mut decisions) = self.decisions.write() {
            decisions.retain(|id, _| keep(id));
        }
        if let Ok(mut locks) = self.deciding.lock() {
            locks.retain(|id, _| keep(id));
        }
    }

    /// Marks the session as used now.
    pub fn touch(&self, now: DateTime<Utc>) {
        self.last_seen_ms
            .store(now.timestamp_millis(), Ordering::Relaxed);
    }

    /// When the session was last used, in Unix milliseconds.
    pub fn last_seen_ms(&self) -> i64 {
        self.last_seen_ms.load(Ordering::Relaxed)
    }

    /// Whether the session was used within `window_ms` of `now_ms` (its player is still refreshing).
    pub fn is_watching(&self, now_ms: i64, window_ms: i64) -> bool {
        now_ms.saturating_sub(self.last_seen_ms()) <= window_ms
    }
}

/// Where this node keeps the sessions it serves (in-process; sharing with other nodes is
/// [`super::shared::SharedSessions`]).
pub trait SessionStore: Send + Sync {
    /// Stores a new session.
    fn insert(&self, session: Arc<Session>);
    /// Looks a session up.
    fn get(&self, id: &str) -> Option<Arc<Session>>;
    /// Sessions of a channel (the poller asks for decisions for each when a break appears).
    fn for_channel(&self, channel: &str) -> Vec<Arc<Session>>;
    /// Removes sessions idle since before `cutoff_ms` (Unix milliseconds); returns them.
    fn expire(&self, cutoff_ms: i64) -> Vec<Arc<Session>>;
    /// Removes the sessions of the viewers `ids` (pseudonyms); returns how many.
    fn forget_viewers(&self, ids: &std::collections::HashSet<String>) -> usize;
    /// Number of live sessions.
    fn len(&self) -> usize;
    /// Whether there are none.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Sessions in a concurrent in-process map.
#[derive(Debug, Default)]
pub struct MemorySessionStore {
    sessions: DashMap<String, Arc<Session>>,
}

impl SessionStore for MemorySessionStore {
    fn insert(&self, session: Arc<Session>) {
        self.sessions.insert(session.id.clone(), session);
    }

    fn get(&self, id: &str) -> Option<Arc<Session>> {
        self.sessions.get(id).map(|s| s.value().clone())
    }

    fn for_channel(&self, channel: &str) -> Vec<Arc<Session>> {
        self.sessions
            .iter()
            .filter(|s| s.channel == channel)
            .map(|s| s.value().clone())
            .collect()
    }

    fn expire(&self, cutoff_ms: i64) -> Vec<Arc<Session>> {
        let mut expired = Vec::new();
        self.sessions.retain(|_, s| {
            let keep = s.last_seen_ms() >= cutoff_ms;
            if !keep {
                expired.push(s.clone());
            }
            keep
        });
        expired
    }

    fn forget_viewers(&self, ids: &std::collections::HashSet<String>) -> usize {
        let before = self.sessions.len();
        self.sessions
            .retain(|_, s| s.viewer.viewer_id.as_ref().is_none_or(|v| !ids.contains(v)));
        before - self.sessions.len()
    }

    fn len(&self) -> usize {
        self.sessions.len()
    }
}

/// A new random session id: 128 bits, hex.
pub fn new_session_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
