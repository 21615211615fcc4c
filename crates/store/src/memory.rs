//! Node-shared state in one process's memory: several stitchers of one process (tests), and the reference
//! the [`SessionShare`] conformance suite holds Redis to.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use interlude_events::BoxFuture;

use crate::{Result, SessionShare};

#[derive(Debug, Default)]
struct Shared {
    sessions: HashMap<String, String>,
    decisions: HashMap<(String, String), String>,
    viewers: HashMap<String, HashSet<String>>,
}

/// Shared sessions in memory.
#[derive(Debug, Default)]
pub struct MemorySessionShare {
    inner: Mutex<Shared>,
}

impl MemorySessionShare {
    fn with<T>(&self, f: impl FnOnce(&mut Shared) -> T) -> T {
        // A poisoned lock only means another test thread panicked mid-update; the maps stay usable.
        let mut guard = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut guard)
    }
}

impl SessionShare for MemorySessionShare {
    fn save_session<'a>(
        &'a self,
        id: &'a str,
        viewer_id: Option<&'a str>,
        record: &'a str,
    ) -> BoxFuture<'a, Result<()>> {
        self.with(|s| {
            s.sessions.insert(id.to_owned(), record.to_owned());
            if let Some(viewer) = viewer_id {
                s.viewers
                    .entry(viewer.to_owned())
                    .or_default()
                    .insert(id.to_owned());
            }
        });
        Box::pin(std::future::ready(Ok(())))
    }

    fn load_session<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<String>>> {
        let found = self.with(|s| s.sessions.get(id).cloned());
        Box::pin(std::future::ready(Ok(found)))
    }

    fn save_decision<'a>(
        &'a self,
        session_id: &'a str,
        break_id: &'a str,
        decision: &'a str,
    ) -> BoxFuture<'a, Result<String>> {
        let winner = self.with(|s| {
            s.decisions
                .entry((session_id.to_owned(), break_id.to_owned()))
                .or_insert_with(|| decision.to_owned())
                .clone()
        });
        Box::pin(std::future::ready(Ok(winner)))
    }

    fn load_decision<'a>(
        &'a self,
        session_id: &'a str,
        break_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>>> {
        let found = self.with(|s| {
            s.decisions
                .get(&(session_id.to_owned(), break_id.to_owned()))
                .cloned()
        });
        Box::pin(std::future::ready(Ok(found)))
    }

    fn touch<'a>(&'a self, _session_id: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(std::future::ready(Ok(())))
    }

    fn forget_viewers<'a>(&'a self, ids: &'a [String]) -> BoxFuture<'a, Result<u64>> {
        let removed = self.with(|s| {
            let mut removed = 0;
            for viewer in ids {
                for session in s.viewers.remove(viewer).unwrap_or_default() {
                    if s.sessions.remove(&session).is_some() {
                        removed += 1;
                    }
                    s.decisions.retain(|(id, _), _| *id != session);
                }
            }
            removed
        });
        Box::pin(std::future::ready(Ok(removed)))
    }

    fn mentioning<'a>(&'a self, needle: &'a str) -> BoxFuture<'a, Result<Vec<String>>> {
        let found = self.with(|s| {
            let sessions = s
                .sessions
                .iter()
                .filter(|(_, v)| v.contains(needle))
                .map(|(k, _)| format!("session:{k}"));
            let decisions = s
                .decisions
                .iter()
                .filter(|(_, v)| v.contains(needle))
                .map(|((id, b), _)| format!("decision:{id}:{b}"));
            sessions.chain(decisions).collect()
        });
        Box::pin(std::future::ready(Ok(found)))
    }
}
