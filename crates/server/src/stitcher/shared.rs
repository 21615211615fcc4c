//! Sessions and break decisions shared by every stitcher node, so any node can render any session's playlist.
//!
//! Each node keeps the sessions it serves in its local [`super::session::SessionStore`] (the hot path never
//! waits on the network); [`SharedSessions`] is where a node publishes a session it creates and the decision it
//! makes for a break, and where another node finds them. A break's decision is arbitrated: the first node to
//! store it wins (`HSETNX`), and a node that decided concurrently adopts the winner, so a viewer's plan never
//! differs between nodes.
//!
//! Redis layout (`{prefix}` from `distributed.key_prefix`), both expiring after the session TTL of idleness:
//! - `{prefix}session:{id}` — the session record (JSON);
//! - `{prefix}decisions:{id}` — hash, field break id → the [`BreakDecision`] (JSON).

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use interlude_stitch::ViewerContext;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use super::session::BreakDecision;

/// A boxed future, so the shared store can be a trait object.
pub use interlude_events::BoxFuture;

/// What another node needs to rebuild a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    pub mode: super::sgai::SessionMode,
}

/// Why the shared store failed (callers degrade to node-local behaviour and count it).
#[derive(Debug, thiserror::Error)]
#[error("shared sessions: {0}")]
pub struct SharedError(String);

impl From<redis::RedisError> for SharedError {
    fn from(e: redis::RedisError) -> Self {
        SharedError(e.to_string())
    }
}

impl From<serde_json::Error> for SharedError {
    fn from(e: serde_json::Error) -> Self {
        SharedError(format!("encoding: {e}"))
    }
}

/// Where sessions and decisions are shared.
pub trait SharedSessions: Send + Sync {
    /// Publishes a new session.
    fn save_session<'a>(
        &'a self,
        record: &'a SessionRecord,
    ) -> BoxFuture<'a, Result<(), SharedError>>;
    /// Finds a session another node created.
    fn load_session<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<SessionRecord>, SharedError>>;
    /// Stores `decision` for the break unless one exists; returns the decision in force (the winner).
    fn save_decision<'a>(
        &'a self,
        session_id: &'a str,
        break_id: &'a str,
        decision: &'a BreakDecision,
    ) -> BoxFuture<'a, Result<BreakDecision, SharedError>>;
    /// The decision for a break, if some node made it.
    fn load_decision<'a>(
        &'a self,
        session_id: &'a str,
        break_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<BreakDecision>, SharedError>>;
    /// Keeps an active session from expiring.
    fn touch<'a>(&'a self, session_id: &'a str) -> BoxFuture<'a, Result<(), SharedError>>;
    /// Deletes the sessions (and their decisions) of the viewers `ids`; returns how many sessions.
    fn forget_viewers<'a>(&'a self, ids: &'a [String]) -> BoxFuture<'a, Result<u64, SharedError>>;
    /// Stored entries that mention `needle` (the deletion test's check).
    fn mentioning<'a>(&'a self, needle: &'a str)
    -> BoxFuture<'a, Result<Vec<String>, SharedError>>;
}

/// Shared sessions in one process's memory: several stitchers of one process (tests) or the reference for the
/// conformance suite.
#[derive(Debug, Default)]
pub struct MemorySharedSessions {
    sessions: Mutex<HashMap<String, SessionRecord>>,
    decisions: Mutex<HashMap<(String, String), BreakDecision>>,
}

impl SharedSessions for MemorySharedSessions {
    fn save_session<'a>(
        &'a self,
        record: &'a SessionRecord,
    ) -> BoxFuture<'a, Result<(), SharedError>> {
        Box::pin(async move {
            if let Ok(mut s) = self.sessions.lock() {
                s.insert(record.id.clone(), record.clone());
            }
            Ok(())
        })
    }

    fn load_session<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<SessionRecord>, SharedError>> {
        Box::pin(async move { Ok(self.sessions.lock().ok().and_then(|s| s.get(id).cloned())) })
    }

    fn save_decision<'a>(
        &'a self,
        session_id: &'a str,
        break_id: &'a str,
        decision: &'a BreakDecision,
    ) -> BoxFuture<'a, Result<BreakDecision, SharedError>> {
        Box::pin(async move {
            let mut d = self
                .decisions
                .lock()
                .map_err(|_| SharedError("poisoned".into()))?;
            Ok(d.entry((session_id.to_owned(), break_id.to_owned()))
                .or_insert_with(|| decision.clone())
                .clone())
        })
    }

    fn load_decision<'a>(
        &'a self,
        session_id: &'a str,
        break_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<BreakDecision>, SharedError>> {
        Box::pin(async move {
            Ok(self.decisions.lock().ok().and_then(|d| {
                d.get(&(session_id.to_owned(), break_id.to_owned()))
                    .cloned()
            }))
        })
    }

    fn touch<'a>(&'a self, _session_id: &'a str) -> BoxFuture<'a, Result<(), SharedError>> {
        Box::pin(std::future::ready(Ok(())))
    }

    fn forget_viewers<'a>(&'a self, ids: &'a [String]) -> BoxFuture<'a, Result<u64, SharedError>> {
        Box::pin(async move {
            let mut sessions = self
                .sessions
                .lock()
                .map_err(|_| SharedError("poisoned".into()))?;
            let gone: Vec<String> = sessions
                .values()
                .filter(|r| r.viewer.viewer_id.as_ref().is_some_and(|v| ids.contains(v)))
                .map(|r| r.id.clone())
                .collect();
            sessions.retain(|id, _| !gone.contains(id));
            if let Ok(mut d) = self.decisions.lock() {
                d.retain(|(s, _), _| !gone.contains(s));
            }
            Ok(gone.len() as u64)
        })
    }

    fn mentioning<'a>(
        &'a self,
        needle: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, SharedError>> {
        Box::pin(async move {
            let sessions = self
                .sessions
                .lock()
                .map_err(|_| SharedError("poisoned".into()))?;
            Ok(sessions
                .values()
                .filter(|r| serde_json::to_string(r).is_ok_and(|j| j.contains(needle)))
                .map(|r| r.id.clone())
                .collect())
        })
    }
}

/// Shared sessions in Redis.
pub struct RedisSessions {
    conn: redis::aio::MultiplexedConnection,
    prefix: String,
    ttl_secs: u64,
}

impl std::fmt::Debug for RedisSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSessions")
            .field("prefix", &self.prefix)
            .field("ttl_secs", &self.ttl_secs)
            .finish_non_exhaustive()
    }
}

const SAVE_DECISION: &str = r"
redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return redis.call('HGET', KEYS[1], ARGV[1])
";

impl RedisSessions {
    /// Connects; keys start with `prefix` and expire after `ttl_secs` without use.
    pub async fn connect(url: &str, prefix: &str, ttl_secs: u64) -> Result<Self, SharedError> {
        let client = redis::Client::open(url)?;
        Ok(RedisSessions {
            conn: client.get_multiplexed_async_connection().await?,
            prefix: prefix.to_owned(),
            ttl_secs: ttl_secs.max(1),
        })
    }

    fn session_key(&self, id: &str) -> String {
        format!("{}session:{id}", self.prefix)
    }

    fn decisions_key(&self, id: &str) -> String {
        format!("{}decisions:{id}", self.prefix)
    }

    /// The index of a viewer's sessions (so deletion finds them without scanning).
    fn viewer_key(&self, viewer: &str) -> String {
        format!("{}viewer:{viewer}", self.prefix)
    }
}

impl SharedSessions for RedisSessions {
    fn save_session<'a>(
        &'a self,
        record: &'a SessionRecord,
    ) -> BoxFuture<'a, Result<(), SharedError>> {
        Box::pin(async move {
            let json = serde_json::to_string(record)?;
            let mut conn = self.conn.clone();
            let mut pipe = redis::pipe();
            pipe.set_ex(self.session_key(&record.id), json, self.ttl_secs)
                .ignore();
            if let Some(viewer) = &record.viewer.viewer_id {
                let key = self.viewer_key(viewer);
                let ttl = i64::try_from(self.ttl_secs).unwrap_or(i64::MAX);
                pipe.sadd(&key, &record.id)
                    .ignore()
                    .expire(&key, ttl)
                    .ignore();
            }
            let _: () = pipe.query_async(&mut conn).await?;
            Ok(())
        })
    }

    fn load_session<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<SessionRecord>, SharedError>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let json: Option<String> = conn.get(self.session_key(id)).await?;
            Ok(match json {
                Some(j) => Some(serde_json::from_str(&j)?),
                None => None,
            })
        })
    }

    fn save_decision<'a>(
        &'a self,
        session_id: &'a str,
        break_id: &'a str,
        decision: &'a BreakDecision,
    ) -> BoxFuture<'a, Result<BreakDecision, SharedError>> {
        Box::pin(async move {
            let json = serde_json::to_string(decision)?;
            let mut conn = self.conn.clone();
            let winner: String = redis::Script::new(SAVE_DECISION)
                .key(self.decisions_key(session_id))
                .arg(break_id)
                .arg(json)
                .arg(self.ttl_secs)
                .invoke_async(&mut conn)
                .await?;
            Ok(serde_json::from_str(&winner)?)
        })
    }

    fn load_decision<'a>(
        &'a self,
        session_id: &'a str,
        break_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<BreakDecision>, SharedError>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let json: Option<String> = conn.hget(self.decisions_key(session_id), break_id).await?;
            Ok(match json {
                Some(j) => Some(serde_json::from_str(&j)?),
                None => None,
            })
        })
    }

    fn touch<'a>(&'a self, session_id: &'a str) -> BoxFuture<'a, Result<(), SharedError>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let ttl = i64::try_from(self.ttl_secs).unwrap_or(i64::MAX);
            let _: () = redis::pipe()
                .expire(self.session_key(session_id), ttl)
                .ignore()
                .expire(self.decisions_key(session_id), ttl)
                .ignore()
                .query_async(&mut conn)
                .await?;
            Ok(())
        })
    }

    fn forget_viewers<'a>(&'a self, ids: &'a [String]) -> BoxFuture<'a, Result<u64, SharedError>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let mut sessions = 0;
            for viewer in ids {
                let index = self.viewer_key(viewer);
                let members: Vec<String> = conn.smembers(&index).await?;
                let mut keys = vec![index];
                for id in &members {
                    keys.push(self.session_key(id));
                    keys.push(self.decisions_key(id));
                }
                let _: () = conn.del(keys).await?;
                sessions += members.len() as u64;
            }
            Ok(sessions)
        })
    }

    fn mentioning<'a>(
        &'a self,
        needle: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, SharedError>> {
        Box::pin(async move {
            interlude_store::redis_counters::mentioning(&self.conn, &self.prefix, needle)
                .await
                .map_err(|e| SharedError(e.to_string()))
        })
    }
}
