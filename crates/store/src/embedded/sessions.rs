//! [`SessionShare`] in a redb file of its own: a single node's sessions and break decisions survive a restart,
//! so a restarted node serves every playing viewer the same playlists instead of answering 404.
//!
//! Writes go through one writer thread that commits whatever queued meanwhile in one transaction (group
//! commit): at a break start every session of the node stores its decision, and one fsync per decision would
//! queue them for seconds. A write is answered once its transaction is durable. Reads use their own read
//! transactions and never wait for the writer.
//!
//! A session lives `ttl` from its creation or its last touch; expired sessions read as absent and are swept,
//! with their decisions, at most once a minute by the writer.

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use interlude_events::BoxFuture;
use redb::{Database, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::{Error, Result, SessionShare};

/// Session id → [`Stored`] as JSON.
const SESSIONS: TableDefinition<&str, &str> = TableDefinition::new("sessions");
/// `session id \0 break id` → the decision.
const DECISIONS: TableDefinition<&str, &str> = TableDefinition::new("decisions");

/// Writes committed together at most.
const MAX_BATCH: usize = 4096;
/// How often expired sessions are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// The file's name in its directory.
pub const SESSIONS_FILE: &str = "sessions.redb";

/// Page cache of `sessions.redb`.
const SESSIONS_CACHE_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    /// Milliseconds since the Unix epoch after which the session is gone.
    expires_ms: i64,
    viewer: Option<String>,
    record: String,
}

enum Write {
    Session {
        id: String,
        viewer: Option<String>,
        record: String,
        reply: oneshot::Sender<Result<()>>,
    },
    Decision {
        key: String,
        decision: String,
        reply: oneshot::Sender<Result<String>>,
    },
    Touch {
        id: String,
        reply: oneshot::Sender<Result<()>>,
    },
    Forget {
        viewers: Vec<String>,
        reply: oneshot::Sender<Result<u64>>,
    },
}

/// Sessions and decisions in `sessions.redb`.
pub struct RedbSessionShare {
    db: Arc<Database>,
    writes: Option<mpsc::Sender<Write>>,
    writer: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for RedbSessionShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbSessionShare").finish_non_exhaustive()
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn decision_key(session_id: &str, break_id: &str) -> String {
    format!("{session_id}\0{break_id}")
}

fn decoded(text: &str) -> Option<Stored> {
    serde_json::from_str(text).ok()
}

impl RedbSessionShare {
    /// Opens (or creates) `dir/sessions.redb`; sessions live `ttl` after their creation or last touch.
    pub fn open(dir: &Path, ttl: Duration) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            what: format!("creating {}", dir.display()),
            source,
        })?;
        // redb's default cache grows to 1 GiB and is never given back: after a burst of sessions the process
        // would keep it for good. Writes are group-committed and reads are only adoptions after a restart,
        // so a small cache costs little.
        let db = Arc::new(
            redb::Builder::new()
                .set_cache_size(SESSIONS_CACHE_BYTES)
                .create(dir.join(SESSIONS_FILE))?,
        );
        {
            let txn = db.begin_write()?;
            txn.open_table(SESSIONS)?;
            txn.open_table(DECISIONS)?;
            txn.commit()?;
        }
        let (writes, queue) = mpsc::channel();
        let writer = db.clone();
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let writer = std::thread::Builder::new()
            .name("interlude-sessions".to_owned())
            .spawn(move || write_loop(&writer, &queue, ttl_ms))
            .map_err(|source| Error::Io {
                what: "starting the session writer".to_owned(),
                source,
            })?;
        Ok(RedbSessionShare {
            db,
            writes: Some(writes),
            writer: Some(writer),
        })
    }

    /// Commits what is queued and closes the file (also done on drop).
    pub fn close(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        // The writer ends when its queue closes, after the last batch; joining it releases its handle on the
        // file, so the next open finds it closed cleanly.
        drop(self.writes.take());
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }

    fn send<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T>>) -> Write,
    ) -> BoxFuture<'_, Result<T>>
    where
        T: Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let sent = match &self.writes {
            Some(writes) => writes.send(make(reply)).map_err(|_| ()),
            None => Err(()),
        };
        Box::pin(async move {
            sent.map_err(|_| Error::Task("the session writer stopped".to_owned()))?;
            answer
                .await
                .map_err(|_| Error::Task("the session writer stopped".to_owned()))?
        })
    }

    fn read<T>(&self, f: impl FnOnce(&redb::ReadTransaction) -> Result<T>) -> Result<T> {
        let txn = self.db.begin_read()?;
        f(&txn)
    }
}

/// Applies queued writes in batches, one transaction each; sweeps expired sessions now and then.
fn write_loop(db: &Database, queue: &mpsc::Receiver<Write>, ttl_ms: i64) {
    let mut swept = Instant::now();
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(write) => batch.push(write),
                Err(_) => break,
            }
        }
        let sweep = swept.elapsed() >= SWEEP_EVERY;
        if sweep {
            swept = Instant::now();
        }
        apply(db, batch, ttl_ms, sweep);
    }
}

/// What each write answers, decided inside the transaction and sent only after it committed.
enum Answer {
    Unit(oneshot::Sender<Result<()>>),
    Text(oneshot::Sender<Result<String>>, String),
    Count(oneshot::Sender<Result<u64>>, u64),
}

fn apply(db: &Database, batch: Vec<Write>, ttl_ms: i64, sweep: bool) {
    let mut answers = Vec::with_capacity(batch.len());
    let committed = (|| -> Result<()> {
        let txn = db.begin_write()?;
        {
            let mut sessions = txn.open_table(SESSIONS)?;
            let mut decisions = txn.open_table(DECISIONS)?;
            let now = now_ms();
            for write in batch {
                match write {
                    Write::Session {
                        id,
                        viewer,
                        record,
                        reply,
                    } => {
                        let stored = Stored {
                            expires_ms: now.saturating_add(ttl_ms),
                            viewer,
                            record,
                        };
                        let text = serde_json::to_string(&stored)
                            .map_err(|e| Error::Task(format!("encoding a session: {e}")))?;
                        sessions.insert(id.as_str(), text.as_str())?;
                        answers.push(Answer::Unit(reply));
                    }
                    Write::Decision {
                        key,
                        decision,
                        reply,
                    } => {
                        // The first decision stored for a break stays: every later one adopts it.
                        let existing = decisions.get(key.as_str())?.map(|v| v.value().to_owned());
                        let winner = match existing {
                            Some(winner) => winner,
                            None => {
                                decisions.insert(key.as_str(), decision.as_str())?;
                                decision
                            }
                        };
                        answers.push(Answer::Text(reply, winner));
                    }
                    Write::Touch { id, reply } => {
                        let current = sessions.get(id.as_str())?.and_then(|v| decoded(v.value()));
                        if let Some(mut stored) = current {
                            stored.expires_ms = now.saturating_add(ttl_ms);
                            if let Ok(text) = serde_json::to_string(&stored) {
                                sessions.insert(id.as_str(), text.as_str())?;
                            }
                        }
                        answers.push(Answer::Unit(reply));
                    }
                    Write::Forget { viewers, reply } => {
                        let doomed: Vec<String> = sessions
                            .iter()?
                            .filter_map(|entry| entry.ok())
                            .filter(|(_, v)| {
                                decoded(v.value()).is_some_and(|s| {
                                    s.viewer.is_some_and(|viewer| viewers.contains(&viewer))
                                })
                            })
                            .map(|(k, _)| k.value().to_owned())
                            .collect();
                        remove_sessions(&mut sessions, &mut decisions, &doomed)?;
                        answers.push(Answer::Count(reply, doomed.len() as u64));
                    }
                }
            }
            if sweep {
                let expired: Vec<String> = sessions
                    .iter()?
                    .filter_map(|entry| entry.ok())
                    .filter(|(_, v)| decoded(v.value()).is_none_or(|s| s.expires_ms <= now))
                    .map(|(k, _)| k.value().to_owned())
                    .collect();
                remove_sessions(&mut sessions, &mut decisions, &expired)?;
            }
        }
        txn.commit()?;
        Ok(())
    })();
    for answer in answers {
        match (answer, &committed) {
            (Answer::Unit(reply), Ok(())) => drop(reply.send(Ok(()))),
            (Answer::Text(reply, text), Ok(())) => drop(reply.send(Ok(text))),
            (Answer::Count(reply, n), Ok(())) => drop(reply.send(Ok(n))),
            (Answer::Unit(reply), Err(e)) => drop(reply.send(Err(Error::Task(e.to_string())))),
            (Answer::Text(reply, _), Err(e)) => drop(reply.send(Err(Error::Task(e.to_string())))),
            (Answer::Count(reply, _), Err(e)) => drop(reply.send(Err(Error::Task(e.to_string())))),
        }
    }
    if let Err(e) = committed {
        tracing::warn!(error = %e, "Session writes not committed.");
    }
}

fn remove_sessions(
    sessions: &mut redb::Table<&str, &str>,
    decisions: &mut redb::Table<&str, &str>,
    ids: &[String],
) -> Result<()> {
    for id in ids {
        sessions.remove(id.as_str())?;
        let (from, to) = (format!("{id}\0"), format!("{id}\u{1}"));
        let keys: Vec<String> = decisions
            .range(from.as_str()..to.as_str())?
            .filter_map(|entry| entry.ok())
            .map(|(k, _)| k.value().to_owned())
            .collect();
        for key in keys {
            decisions.remove(key.as_str())?;
        }
    }
    Ok(())
}

impl Drop for RedbSessionShare {
    fn drop(&mut self) {
        self.stop();
    }
}

impl SessionShare for RedbSessionShare {
    fn save_session<'a>(
        &'a self,
        id: &'a str,
        viewer_id: Option<&'a str>,
        record: &'a str,
    ) -> BoxFuture<'a, Result<()>> {
        self.send(|reply| Write::Session {
            id: id.to_owned(),
            viewer: viewer_id.map(str::to_owned),
            record: record.to_owned(),
            reply,
        })
    }

    fn load_session<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<String>>> {
        let found = self.read(|txn| {
            let table = txn.open_table(SESSIONS)?;
            let stored = table.get(id)?.and_then(|v| decoded(v.value()));
            Ok(stored.filter(|s| s.expires_ms > now_ms()).map(|s| s.record))
        });
        Box::pin(std::future::ready(found))
    }

    fn save_decision<'a>(
        &'a self,
        session_id: &'a str,
        break_id: &'a str,
        decision: &'a str,
    ) -> BoxFuture<'a, Result<String>> {
        self.send(|reply| Write::Decision {
            key: decision_key(session_id, break_id),
            decision: decision.to_owned(),
            reply,
        })
    }

    fn load_decision<'a>(
        &'a self,
        session_id: &'a str,
        break_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>>> {
        let found = self.read(|txn| {
            let table = txn.open_table(DECISIONS)?;
            let key = decision_key(session_id, break_id);
            Ok(table.get(key.as_str())?.map(|v| v.value().to_owned()))
        });
        Box::pin(std::future::ready(found))
    }

    fn touch<'a>(&'a self, session_id: &'a str) -> BoxFuture<'a, Result<()>> {
        self.send(|reply| Write::Touch {
            id: session_id.to_owned(),
            reply,
        })
    }

    fn forget_viewers<'a>(&'a self, ids: &'a [String]) -> BoxFuture<'a, Result<u64>> {
        self.send(|reply| Write::Forget {
            viewers: ids.to_vec(),
            reply,
        })
    }

    fn mentioning<'a>(&'a self, needle: &'a str) -> BoxFuture<'a, Result<Vec<String>>> {
        let found = self.read(|txn| {
            let mut found = Vec::new();
            for entry in txn.open_table(SESSIONS)?.iter()? {
                let (k, v) = entry?;
                if v.value().contains(needle) {
                    found.push(format!("session:{}", k.value()));
                }
            }
            for entry in txn.open_table(DECISIONS)?.iter()? {
                let (k, v) = entry?;
                if v.value().contains(needle) {
                    found.push(format!("decision:{}", k.value().replace('\0', ":")));
                }
            }
            Ok(found)
        });
        Box::pin(std::future::ready(found))
    }
}
