//! The embedded queue: one redb file (redb 2, copy-on-write B-trees, crash-safe commits).
//!
//! Tables: `items` (id → JSON [`Record`]), `due` ((due, id) → (), the order of sending), `item_due`
//! (id → due), `seen` (key → enqueue time) and `seen_by_time` ((time, key) → (), for pruning), `dead`
//! (id → JSON [`DeadLetter`]), `meta` (the next id).
//!
//! Durability: an enqueue commits with `Durability::Immediate` (fsync: a queued pixel must survive a crash).
//! Enqueues are group-committed: one thread takes every enqueue waiting and writes them in one transaction, so
//! concurrent callers share an fsync. Leases and completions commit with `Durability::Eventual`: one lost in a
//! crash only makes a pixel due again earlier or sent again, which at-least-once delivery allows, and it saves
//! an fsync per round.

use std::path::Path;
use std::sync::{Arc, Weak, mpsc};
use std::time::{Duration, SystemTime};

use tokio::sync::oneshot;

use redb::{Database, Durability, ReadableTable, ReadableTableMetadata, TableDefinition};

use super::{
    DeadLetter, Enqueued, Leased, OutboxStore, Outcome, Pruned, Record, from_millis, millis,
};
use crate::error::{Error, Result};
use crate::pixel::Pixel;

const ITEMS: TableDefinition<u64, &[u8]> = TableDefinition::new("outbox_items");
const DUE: TableDefinition<(u64, u64), ()> = TableDefinition::new("outbox_due");
const ITEM_DUE: TableDefinition<u64, u64> = TableDefinition::new("outbox_item_due");
const SEEN: TableDefinition<&[u8; 32], u64> = TableDefinition::new("outbox_seen");
const SEEN_BY_TIME: TableDefinition<(u64, &[u8; 32]), ()> =
    TableDefinition::new("outbox_seen_by_time");
const DEAD: TableDefinition<u64, &[u8]> = TableDefinition::new("outbox_dead");
const META: TableDefinition<&str, u64> = TableDefinition::new("outbox_meta");
const NEXT_ID: &str = "next_id";

/// The outbox in a redb file. Cheap to clone (two `Arc`s).
#[derive(Clone)]
pub struct RedbStore {
    db: Arc<Database>,
    enqueues: Arc<mpsc::Sender<EnqueueJob>>,
}

/// One caller's enqueue, waiting for the group commit.
struct EnqueueJob {
    pixels: Vec<Pixel>,
    now: SystemTime,
    done: oneshot::Sender<Result<Vec<Enqueued>>>,
}

/// Enqueues gathered into one transaction at most.
const GROUP_MAX: usize = 512;

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore").finish_non_exhaustive()
    }
}

/// Page cache of the queue's file.
const QUEUE_CACHE_BYTES: usize = 16 * 1024 * 1024;

impl RedbStore {
    /// Opens (or creates) the queue at `path`, creating its parent directory if needed.
    pub fn open(path: impl AsRef<Path>) -> Result<RedbStore> {
        let path = path.as_ref();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| Error::store("open", e))?;
        }
        // redb's default cache grows to 1 GiB and is never given back; the queue is written and read in order,
        // so a small cache serves it.
        let db = Arc::new(
            redb::Builder::new()
                .set_cache_size(QUEUE_CACHE_BYTES)
                .create(path)
                .map_err(|e| Error::store("open", e))?,
        );
        let (tx, rx) = mpsc::channel();
        let weak = Arc::downgrade(&db);
        std::thread::Builder::new()
            .name("outbox-enqueue".to_owned())
            .spawn(move || group_commit(&weak, &rx))
            .map_err(|e| Error::store("open", e))?;
        let store = RedbStore {
            db,
            enqueues: Arc::new(tx),
        };
        store.write("open", Durability::Immediate, |txn| {
            txn.open_table(ITEMS)?;
            txn.open_table(DUE)?;
            txn.open_table(ITEM_DUE)?;
            txn.open_table(SEEN)?;
            txn.open_table(SEEN_BY_TIME)?;
            txn.open_table(DEAD)?;
            txn.open_table(META)?;
            Ok(())
        })?;
        Ok(store)
    }

    fn write<T>(
        &self,
        op: &'static str,
        durability: Durability,
        f: impl FnOnce(&redb::WriteTransaction) -> Result<T, StoreFailure>,
    ) -> Result<T> {
        write(&self.db, op, durability, f)
    }

    fn read<T>(
        &self,
        op: &'static str,
        f: impl FnOnce(&redb::ReadTransaction) -> Result<T, StoreFailure>,
    ) -> Result<T> {
        let run = || -> Result<T, StoreFailure> {
            let txn = self.db.begin_read()?;
            f(&txn)
        };
        run().map_err(|e| e.into_error(op))
    }

    /// Runs `f` on the blocking pool (redb does file I/O and fsync).
    async fn blocking<T: Send + 'static>(
        &self,
        op: &'static str,
        f: impl FnOnce(RedbStore) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || f(store))
            .await
            .map_err(|e| Error::store(op, e))?
    }

    /// Writes the enqueues of `jobs` in one transaction; one answer list per job.
    fn enqueue_group(
        db: &Database,
        jobs: Vec<(Vec<Pixel>, SystemTime)>,
    ) -> Result<Vec<Vec<Enqueued>>> {
        write(db, "enqueue", Durability::Immediate, |txn| {
            let mut items = txn.open_table(ITEMS)?;
            let mut due = txn.open_table(DUE)?;
            let mut item_due = txn.open_table(ITEM_DUE)?;
            let mut seen = txn.open_table(SEEN)?;
            let mut seen_by_time = txn.open_table(SEEN_BY_TIME)?;
            let mut meta = txn.open_table(META)?;
            let mut next = meta.get(NEXT_ID)?.map_or(1, |v| v.value());
            let mut answers = Vec::with_capacity(jobs.len());
            for (pixels, now) in jobs {
                let now_ms = millis(now);
                let mut out = Vec::with_capacity(pixels.len());
                for pixel in pixels {
                    let key = pixel.dedup_key().0;
                    if seen.get(&key)?.is_some() {
                        out.push(Enqueued::Duplicate);
                        continue;
                    }
                    seen.insert(&key, now_ms)?;
                    seen_by_time.insert((now_ms, &key), ())?;
                    let id = next;
                    next += 1;
                    let record = Record {
                        pixel: pixel.minimised(),
                        attempts: 0,
                        enqueued_ms: now_ms,
                        last_error: None,
                    };
                    let bytes = serde_json::to_vec(&record).map_err(StoreFailure::other)?;
                    items.insert(id, bytes.as_slice())?;
                    due.insert((now_ms, id), ())?;
                    item_due.insert(id, now_ms)?;
                    out.push(Enqueued::Queued(id));
                }
                answers.push(out);
            }
            meta.insert(NEXT_ID, next)?;
            Ok(answers)
        })
    }

    fn lease_now(&self, now: SystemTime, limit: usize, lease: Duration) -> Result<Vec<Leased>> {
        let now_ms = millis(now);
        let until = millis(now + lease);
        self.write("lease", Durability::Eventual, |txn| {
            let items = txn.open_table(ITEMS)?;
            let mut due = txn.open_table(DUE)?;
            let mut item_due = txn.open_table(ITEM_DUE)?;
            let picked = due
                .range((0u64, 0u64)..=(now_ms, u64::MAX))?
                .take(limit)
                .map(|entry| entry.map(|(k, _)| k.value()))
                .collect::<Result<Vec<(u64, u64)>, _>>()?;
            let mut out = Vec::with_capacity(picked.len());
            for (at, id) in picked {
                due.remove((at, id))?;
                let Some(bytes) = items.get(id)? else {
                    item_due.remove(id)?;
                    continue;
                };
                let record: Record =
                    serde_json::from_slice(bytes.value()).map_err(|e| StoreFailure::Corrupt {
                        id,
                        reason: e.to_string(),
                    })?;
                due.insert((until, id), ())?;
                item_due.insert(id, until)?;
                out.push(Leased {
                    id,
                    pixel: record.pixel,
                    attempts: record.attempts,
                });
            }
            Ok(out)
        })
    }

    fn complete_now(&self, outcomes: Vec<Outcome>, now: SystemTime) -> Result<()> {
        let now_ms = millis(now);
        self.write("complete", Durability::Eventual, |txn| {
            let mut items = txn.open_table(ITEMS)?;
            let mut due = txn.open_table(DUE)?;
            let mut item_due = txn.open_table(ITEM_DUE)?;
            let mut dead = txn.open_table(DEAD)?;
            for outcome in outcomes {
                let id = outcome.id();
                let Some(at) = item_due.get(id)?.map(|v| v.value()) else {
                    continue;
                };
                match outcome {
                    Outcome::Delivered { .. } => {
                        items.remove(id)?;
                        due.remove((at, id))?;
                        item_due.remove(id)?;
                    }
                    Outcome::Retry {
                        attempts,
                        due: next,
                        error,
                        ..
                    } => {
                        let Some(bytes) = items.get(id)?.map(|v| v.value().to_vec()) else {
                            continue;
                        };
                        let mut record: Record =
                            serde_json::from_slice(&bytes).map_err(|e| StoreFailure::Corrupt {
                                id,
                                reason: e.to_string(),
                            })?;
                        record.attempts = attempts;
                        record.last_error = Some(error);
                        let bytes = serde_json::to_vec(&record).map_err(StoreFailure::other)?;
                        items.insert(id, bytes.as_slice())?;
                        let next = millis(next);
                        due.remove((at, id))?;
                        due.insert((next, id), ())?;
                        item_due.insert(id, next)?;
                    }
                    Outcome::Defer { due: next, .. } => {
                        let next = millis(next);
                        due.remove((at, id))?;
                        due.insert((next, id), ())?;
                        item_due.insert(id, next)?;
                    }
                    Outcome::Dead {
                        pixel,
                        attempts,
                        reason,
                        ..
                    } => {
                        items.remove(id)?;
                        due.remove((at, id))?;
                        item_due.remove(id)?;
                        let letter = DeadLetter {
                            id,
                            pixel: (*pixel).without_device(),
                            attempts,
                            reason,
                            at_ms: now_ms,
                        };
                        let bytes = serde_json::to_vec(&letter).map_err(StoreFailure::other)?;
                        dead.insert(id, bytes.as_slice())?;
                    }
                }
            }
            Ok(())
        })
    }

    fn prune_now(&self, keys_before: SystemTime, dead_before: SystemTime) -> Result<Pruned> {
        let keys_before = millis(keys_before);
        let dead_before = millis(dead_before);
        self.write("prune", Durability::Eventual, |txn| {
            let mut seen = txn.open_table(SEEN)?;
            let mut seen_by_time = txn.open_table(SEEN_BY_TIME)?;
            let mut dead = txn.open_table(DEAD)?;
            let zero = [0u8; 32];
            let old = seen_by_time
                .range((0u64, &zero)..(keys_before, &zero))?
                .map(|entry| {
                    entry.map(|(k, _)| {
                        let (at, key) = k.value();
                        (at, *key)
                    })
                })
                .collect::<Result<Vec<(u64, [u8; 32])>, _>>()?;
            for (at, key) in &old {
                seen_by_time.remove((*at, key))?;
                seen.remove(key)?;
            }
            let mut gone = Vec::new();
            for entry in dead.iter()? {
                let (id, bytes) = entry?;
                let letter: DeadLetter =
                    serde_json::from_slice(bytes.value()).map_err(|e| StoreFailure::Corrupt {
                        id: id.value(),
                        reason: e.to_string(),
                    })?;
                if letter.at_ms < dead_before {
                    gone.push(letter.id);
                }
            }
            for id in &gone {
                dead.remove(*id)?;
            }
            Ok(Pruned {
                keys: old.len() as u64,
                dead: gone.len() as u64,
            })
        })
    }
}

fn write<T>(
    db: &Database,
    op: &'static str,
    durability: Durability,
    f: impl FnOnce(&redb::WriteTransaction) -> Result<T, StoreFailure>,
) -> Result<T> {
    let run = || -> Result<T, StoreFailure> {
        let mut txn = db.begin_write()?;
        txn.set_durability(durability);
        let out = f(&txn)?;
        txn.commit()?;
        Ok(out)
    };
    run().map_err(|e| e.into_error(op))
}

/// The enqueue thread: takes every job waiting, commits them together, answers each. It holds the database
/// weakly, so dropping the last store closes the file at once; it ends when the last store is dropped.
fn group_commit(db: &Weak<Database>, rx: &mpsc::Receiver<EnqueueJob>) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while jobs.len() < GROUP_MAX {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let Some(db) = db.upgrade() else {
            for job in jobs {
                let _ = job.done.send(Err(Error::Closed));
            }
            return;
        };
        let (work, replies): (Vec<_>, Vec<_>) = jobs
            .into_iter()
            .map(|j| ((j.pixels, j.now), j.done))
            .unzip();
        let result = RedbStore::enqueue_group(&db, work);
        // Let go of the file before answering: a caller that drops its store next can reopen it at once.
        drop(db);
        match result {
            Ok(answers) => {
                for (done, answer) in replies.into_iter().zip(answers) {
                    let _ = done.send(Ok(answer));
                }
            }
            Err(e) => {
                let reason = e.to_string();
                for done in replies {
                    let _ = done.send(Err(Error::Store {
                        op: "enqueue",
                        reason: reason.clone(),
                    }));
                }
            }
        }
    }
}

impl OutboxStore for RedbStore {
    async fn enqueue(&self, pixels: Vec<Pixel>, now: SystemTime) -> Result<Vec<Enqueued>> {
        let (done, answer) = oneshot::channel();
        self.enqueues
            .send(EnqueueJob { pixels, now, done })
            .map_err(|_| Error::Closed)?;
        answer.await.map_err(|_| Error::Closed)?
    }

    async fn lease(&self, now: SystemTime, limit: usize, lease: Duration) -> Result<Vec<Leased>> {
        self.blocking("lease", move |s| s.lease_now(now, limit, lease))
            .await
    }

    async fn complete(&self, outcomes: Vec<Outcome>, now: SystemTime) -> Result<()> {
        self.blocking("complete", move |s| s.complete_now(outcomes, now))
            .await
    }

    async fn next_due(&self) -> Result<Option<SystemTime>> {
        self.blocking("next_due", |s| {
            s.read("next_due", |txn| {
                let due = txn.open_table(DUE)?;
                Ok(due.first()?.map(|(k, _)| from_millis(k.value().0)))
            })
        })
        .await
    }

    async fn depth(&self) -> Result<u64> {
        self.blocking("depth", |s| {
            s.read("depth", |txn| Ok(txn.open_table(ITEMS)?.len()?))
        })
        .await
    }

    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>> {
        self.blocking("dead_letters", move |s| {
            s.read("dead_letters", |txn| {
                let dead = txn.open_table(DEAD)?;
                let mut out = Vec::new();
                for entry in dead.iter()?.take(limit) {
                    let (id, bytes) = entry?;
                    out.push(serde_json::from_slice(bytes.value()).map_err(|e| {
                        StoreFailure::Corrupt {
                            id: id.value(),
                            reason: e.to_string(),
                        }
                    })?);
                }
                Ok(out)
            })
        })
        .await
    }

    async fn prune(&self, keys_before: SystemTime, dead_before: SystemTime) -> Result<Pruned> {
        self.blocking("prune", move |s| s.prune_now(keys_before, dead_before))
            .await
    }
}

/// Any failure inside a transaction, turned into [`Error`] with the operation's name.
#[derive(Debug)]
enum StoreFailure {
    Redb(Box<redb::Error>),
    Corrupt { id: u64, reason: String },
    Other(String),
}

impl StoreFailure {
    fn other(e: impl std::fmt::Display) -> StoreFailure {
        StoreFailure::Other(e.to_string())
    }

    fn into_error(self, op: &'static str) -> Error {
        match self {
            StoreFailure::Redb(e) => Error::store(op, e),
            StoreFailure::Corrupt { id, reason } => Error::Corrupt { id, reason },
            StoreFailure::Other(reason) => Error::Store { op, reason },
        }
    }
}

impl<E: Into<redb::Error>> From<E> for StoreFailure {
    fn from(e: E) -> Self {
        StoreFailure::Redb(Box::new(e.into()))
    }
}
