//! Sessions and break decisions shared by every stitcher node, so any node can render any session's playlist.
//!
//! Each node keeps the sessions it serves in its local [`super::session::SessionStore`] (the hot path never
//! waits on the network); [`SharedSessions`] is where a node publishes a session it creates and the decision it
//! makes for a break, and where another node finds them. A break's decision is arbitrated: the first node to
//! store it wins (`HSETNX`), and a node that decided concurrently adopts the winner, so a viewer's plan never
//! differs between nodes.
//!
//! This module is the typed façade: the store's [`SessionShare`] keeps opaque JSON (in memory, or in Redis in
//! distributed mode), and the records and decisions are encoded and decoded here.

use std::sync::Arc;

use interlude_store::SessionShare;

use super::session::BreakDecision;
pub use super::session::SessionRecord;

/// Why the shared store failed (callers degrade to node-local behaviour and count it).
#[derive(Debug, thiserror::Error)]
pub enum SharedError {
    /// The store failed.
    #[error("shared sessions: {0}")]
    Store(#[from] interlude_store::Error),
    /// A stored value could not be encoded or decoded.
    #[error("shared sessions: encoding: {0}")]
    Encoding(#[from] serde_json::Error),
}

/// Sessions and decisions shared with other nodes, typed.
#[derive(Clone)]
pub struct SharedSessions {
    share: Arc<dyn SessionShare>,
}

impl std::fmt::Debug for SharedSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedSessions").finish_non_exhaustive()
    }
}

impl SharedSessions {
    /// Over `share` (memory, or Redis).
    pub fn new(share: Arc<dyn SessionShare>) -> Self {
        SharedSessions { share }
    }

    /// Publishes a new session.
    pub async fn save_session(&self, record: &SessionRecord) -> Result<(), SharedError> {
        let json = serde_json::to_string(record)?;
        self.share
            .save_session(&record.id, record.viewer.viewer_id.as_deref(), &json)
            .await?;
        Ok(())
    }

    /// Finds a session another node created.
    pub async fn load_session(&self, id: &str) -> Result<Option<SessionRecord>, SharedError> {
        match self.share.load_session(id).await? {
            Some(json) => Ok(Some(serde_json::from_str(&json)?)),
            None => Ok(None),
        }
    }

    /// Stores `decision` for the break unless one exists; returns the decision in force (the winner).
    pub async fn save_decision(
        &self,
        session_id: &str,
        break_id: &str,
        decision: &BreakDecision,
    ) -> Result<BreakDecision, SharedError> {
        let json = serde_json::to_string(decision)?;
        let winner = self
            .share
            .save_decision(session_id, break_id, &json)
            .await?;
        Ok(serde_json::from_str(&winner)?)
    }

    /// The decision for a break, if some node made it.
    pub async fn load_decision(
        &self,
        session_id: &str,
        break_id: &str,
    ) -> Result<Option<BreakDecision>, SharedError> {
        match self.share.load_decision(session_id, break_id).await? {
            Some(json) => Ok(Some(serde_json::from_str(&json)?)),
            None => Ok(None),
        }
    }

    /// Keeps an active session from expiring.
    pub async fn touch(&self, session_id: &str) -> Result<(), SharedError> {
        Ok(self.share.touch(session_id).await?)
    }

    /// Deletes the sessions (and their decisions) of the viewers `ids`; how many sessions.
    pub async fn forget_viewers(&self, ids: &[String]) -> Result<u64, SharedError> {
        Ok(self.share.forget_viewers(ids).await?)
    }

    /// Stored entries that mention `needle` (the deletion test's check).
    pub async fn mentioning(&self, needle: &str) -> Result<Vec<String>, SharedError> {
        Ok(self.share.mentioning(needle).await?)
    }
}
