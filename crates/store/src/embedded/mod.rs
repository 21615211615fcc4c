//! The embedded default store of the event pipeline: the event log, the one-minute windows, the billing
//! ledger and the quarantine in one redb file under the data directory, and the dedup state (event ids,
//! billing keys, impressions per session minute) in an LSM tree beside it (module `dedup`, directory `dedup/`).
//!
//! Why redb: pure Rust (no C build), ACID transactions with one fsync per commit, and crash safety by design
//! (copy-on-write B-trees with a checksummed commit slot) — which is exactly the guarantee the pipeline needs: a
//! batch of events, their dedup marks and the counts they change are committed together or not at all. One
//! writer at a time suits the group commit: many HTTP requests, one transaction per batch. Why not redb for
//! the dedup keys: they are random, and a B-tree pays a page per random key; fjall writes them sequentially,
//! and a redo record in each redb commit keeps it exactly in step (see module `dedup`).
//!
//! [`EventStore::ingest`] is synchronous; [`committer`] batches concurrent callers into group commits.
//! [`crate::ReportStore`] is implemented here too, the slow parts (retention) on a blocking thread.
//!
//! Faults. redb marks its file backend failed after one I/O error (a full disk): every later commit fails with
//! `PreviousIo` even once space is freed. The store therefore keeps the database behind a lock it can swap:
//! [`EventStore::recover`] drops the failed database and opens the file again (redb repairs what the failed
//! process left), and [`EventStore::health`] tells the server when to turn not-ready. [`EventStore::close`]
//! drops the database, which writes redb's allocator state and clears its recovery flag, so the next open
//! needs no repair; [`EventStore::opened`] says whether one ran and how long opening took.

mod batch;
pub mod committer;
mod dedup;
mod filter;
mod ingest;
mod maintenance;
mod queries;
mod report_store;
pub mod sessions;
mod snapshot;
mod state;
mod verify;

pub use dedup::DIR_NAME as DEDUP_DIR_NAME;
pub use maintenance::Swept;
pub use queries::DedupEntry;
pub use sessions::RedbSessionShare;
pub use snapshot::LogSnapshot;
pub use verify::{Damage, Exported, Report, export, verify};

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use interlude_events::{Policy, Prices};
use redb::{Database, ReadableTable};
use serde::Serialize;
use tokio::sync::watch;

use crate::Error as StoreError;
use crate::config::EmbeddedConfig;
use crate::metrics as m;

/// The name of the database file in the data directory.
pub const FILE_NAME: &str = "events.redb";

/// The store.
pub struct EventStore {
    path: PathBuf,
    config: EmbeddedConfig,
    db: RwLock<Option<Engines>>,
    policy: Policy,
    prices: RwLock<Arc<dyn Prices>>,
    health: watch::Sender<Health>,
    opened: RwLock<Opened>,
}

impl std::fmt::Debug for EventStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStore")
            .field("path", &self.path)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// Totals the operator watches.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StoreStats {
    /// Events in the log.
    pub logged: u64,
    /// Quarantined events.
    pub quarantined: u64,
    /// Correction records in the ledger.
    pub corrections: u64,
}

/// Whether the store can commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Health {
    /// Commits succeed.
    Healthy,
    /// A commit failed on I/O (a full disk, a failing device); the committer reopens the database with
    /// backoff. The server should answer not-ready and alert.
    Unhealthy {
        /// The error that made it so.
        reason: String,
    },
    /// Closed by [`EventStore::close`] (shutting down).
    Closed,
}

/// How the last open went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Opened {
    /// Whether redb had to repair the file (the process that had it open did not close it).
    pub repaired: bool,
    /// How long opening took, repair and the dedup state's catching up included.
    pub seconds: f64,
}

/// What the store measured of itself (see [`EventStore::observe`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Observed {
    /// Size of the database file.
    pub file_bytes: u64,
    /// Bytes on disk of the dedup state.
    pub dedup_bytes: u64,
    /// Bytes free for this user on the data directory's file system.
    pub disk_free_bytes: u64,
    /// Size of that file system.
    pub disk_total_bytes: u64,
    /// Entries per table.
    pub tables: Vec<(&'static str, u64)>,
}

/// The redb file and the dedup state beside it, opened together.
pub(crate) struct Engines {
    db: Database,
    dedup: dedup::Dedup,
}

/// The database, held for the duration of one operation (a close or a reopen waits for it).
pub(crate) struct Db<'a>(RwLockReadGuard<'a, Option<Engines>>);

impl Db<'_> {
    fn engines(&self) -> &Engines {
        // `EventStore::db` only hands out guards over an open database.
        self.0.as_ref().unwrap_or_else(|| unreachable!())
    }

    /// The dedup state.
    pub(crate) fn dedup(&self) -> &dedup::Dedup {
        &self.engines().dedup
    }
}

impl std::ops::Deref for Db<'_> {
    type Target = Database;
    fn deref(&self) -> &Database {
        &self.engines().db
    }
}

/// Opens the file and the dedup state beside it, measuring the time and noting whether redb repaired the file;
/// moves an older store's dedup tables and applies the redo records the dedup state lacks.
fn open_database(path: &Path, config: &EmbeddedConfig) -> Result<(Engines, Opened), StoreError> {
    let started = Instant::now();
    let repaired = Arc::new(AtomicBool::new(false));
    let flag = repaired.clone();
    let db = Database::builder()
        .set_cache_size(config.cache_mb.max(1).saturating_mul(1024 * 1024))
        .set_repair_callback(move |session| {
            if !flag.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    progress = session.progress(),
                    "Repairing the event store: it was not closed cleanly."
                );
            }
        })
        .create(path)?;
    let redb_seconds = started.elapsed().as_secs_f64();
    let txn = db.begin_write()?;
    state::create_tables(&txn)?;
    txn.commit()?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let dedup = dedup::Dedup::open(&dir.join(dedup::DIR_NAME), config.dedup_cache_mb)?;
    let moving = Instant::now();
    let moved = state::migrate_dedup_tables(&db, &dedup)?;
    if moved > 0 {
        tracing::info!(
            keys = moved,
            seconds = moving.elapsed().as_secs_f64(),
            "Moved the dedup keys from redb to the dedup state (once, for a store written by an older version)."
        );
    }
    let replayed = dedup.catch_up(&db)?;
    let opened = Opened {
        repaired: repaired.load(Ordering::Relaxed),
        seconds: started.elapsed().as_secs_f64(),
    };
    metrics::gauge!(m::STORE_OPEN_SECONDS).set(opened.seconds);
    if opened.repaired {
        metrics::counter!(m::STORE_REPAIRS).increment(1);
    }
    tracing::info!(
        path = %path.display(),
        repaired = opened.repaired,
        seconds = opened.seconds,
        redb_seconds,
        dedup_commits_replayed = replayed,
        cache_mb = config.cache_mb,
        "Opened the event store."
    );
    Ok((Engines { db, dedup }, opened))
}

impl EventStore {
    /// Opens (or creates) the store in `dir` with the default [`EmbeddedConfig`].
    pub fn open(dir: &Path, policy: Policy) -> Result<Self, StoreError> {
        Self::open_with(dir, policy, &EmbeddedConfig::default())
    }

    /// Opens (or creates) the store in `dir`.
    pub fn open_with(
        dir: &Path,
        policy: Policy,
        config: &EmbeddedConfig,
    ) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            what: format!("creating {}", dir.display()),
            source,
        })?;
        let path = dir.join(FILE_NAME);
        let (db, opened) = open_database(&path, config)?;
        let prices: Arc<dyn Prices> = Arc::new(std::collections::BTreeMap::<String, u64>::new());
        metrics::gauge!(m::STORE_HEALTHY).set(1.0);
        Ok(EventStore {
            path,
            config: config.clone(),
            db: RwLock::new(Some(db)),
            policy,
            prices: RwLock::new(prices),
            health: watch::Sender::new(Health::Healthy),
            opened: RwLock::new(opened),
        })
    }

    /// The open database for one operation; [`StoreError::Unavailable`] once closed (or while a reopen
    /// failed).
    pub(crate) fn db(&self) -> Result<Db<'_>, StoreError> {
        let guard = self.db.read().unwrap_or_else(PoisonError::into_inner);
        if guard.is_none() {
            return Err(StoreError::Unavailable(match &*self.health.borrow() {
                Health::Closed => "event store closed".into(),
                Health::Unhealthy { reason } => format!("event store unhealthy: {reason}"),
                Health::Healthy => "event store not open".into(),
            }));
        }
        Ok(Db(guard))
    }

    /// The validation rules.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Whether the last open repaired the file, and how long it took.
    pub fn opened(&self) -> Opened {
        *self.opened.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The store's health, as a watch: the server turns [`Health::Unhealthy`] into not-ready and an alert.
    pub fn health(&self) -> watch::Receiver<Health> {
        self.health.subscribe()
    }

    /// Whether commits currently succeed.
    pub fn is_healthy(&self) -> bool {
        *self.health.borrow() == Health::Healthy
    }

    pub(crate) fn set_health(&self, health: Health) {
        metrics::gauge!(m::STORE_HEALTHY).set(if health == Health::Healthy { 1.0 } else { 0.0 });
        self.health.send_if_modified(|h| {
            if *h == health || *h == Health::Closed {
                false
            } else {
                *h = health;
                true
            }
        });
    }

    /// Closes the database: waits for operations in progress, then drops it, so redb records its allocator
    /// state and the next open needs no repair. Later operations fail with [`StoreError::Unavailable`].
    /// Called by [`committer::Committer::shutdown`] after the last commit.
    pub fn close(&self) -> Result<(), StoreError> {
        let mut guard = self.db.write().unwrap_or_else(PoisonError::into_inner);
        self.set_health(Health::Closed);
        if let Some(engines) = guard.take() {
            // Synced, the dedup state needs no redo record applied at the next open.
            let synced = engines.dedup.close();
            drop(engines);
            tracing::info!(path = %self.path.display(), "Closed the event store.");
            synced?;
        }
        Ok(())
    }

    /// Drops the (failed) database and opens the file again, then proves a commit goes through. `Ok` once
    /// the store commits again ([`Health::Healthy`]); the error otherwise (the store stays unhealthy and the
    /// caller tries again later).
    pub fn recover(&self) -> Result<(), StoreError> {
        metrics::counter!(m::STORE_REOPENS).increment(1);
        let mut guard = self.db.write().unwrap_or_else(PoisonError::into_inner);
        if *self.health.borrow() == Health::Closed {
            return Err(StoreError::Unavailable("event store closed".into()));
        }
        // The failed database must be gone before the file is opened again (redb locks it).
        drop(guard.take());
        let (engines, opened) = open_database(&self.path, &self.config)?;
        let probe = (|| -> Result<(), StoreError> {
            let txn = engines.db.begin_write()?;
            {
                let mut meta = txn.open_table(state::META)?;
                let n = meta.get("reopens")?.map_or(0, |v| v.value());
                meta.insert("reopens", n + 1)?;
            }
            txn.commit()?;
            Ok(())
        })();
        *guard = Some(engines);
        *self.opened.write().unwrap_or_else(PoisonError::into_inner) = opened;
        probe?;
        drop(guard);
        self.set_health(Health::Healthy);
        tracing::info!(path = %self.path.display(), "Event store commits again.");
        Ok(())
    }

    /// Marks the store unhealthy after a failed commit, when the failure is one a reopen can cure (I/O).
    /// Whether it was.
    pub(crate) fn note_failure(&self, error: &StoreError) -> bool {
        if !error.is_io() {
            return false;
        }
        tracing::error!(error = %error, "Event store commit failed on I/O; reopening with backoff.");
        self.set_health(Health::Unhealthy {
            reason: error.to_string(),
        });
        true
    }

    /// Copies the database file and the dedup state to `dest_dir` (created if missing) while serving: the file
    /// is copied inside a write transaction, so no commit changes it meanwhile (group commits wait, queued,
    /// for the copy; reads go on), and a snapshot of the dedup state is taken in the same instant, then
    /// written out while commits go on. The copy opens like a file after an unclean exit (redb repairs it
    /// once); check it with [`verify`]. Its size in bytes.
    pub fn backup(&self, dest_dir: &Path) -> Result<u64, StoreError> {
        let io = |what: String| move |source| StoreError::Io { what, source };
        std::fs::create_dir_all(dest_dir)
            .map_err(io(format!("creating {}", dest_dir.display())))?;
        let dest = dest_dir.join(FILE_NAME);
        let dedup_dest = dest_dir.join(dedup::DIR_NAME);
        if dedup_dest.exists() {
            return Err(StoreError::Refused(format!(
                "{} exists: back up into an empty directory",
                dedup_dest.display()
            )));
        }
        let db = self.db()?;
        let (copied, snapshot) = {
            let _writer = db.dedup().writer();
            let txn = db.begin_write()?;
            let copied = std::fs::copy(&self.path, &dest).map_err(io(format!(
                "copying {} to {}",
                self.path.display(),
                dest.display()
            )));
            let snapshot = db.dedup().snapshot();
            txn.abort()?;
            (copied, snapshot)
        };
        let bytes = copied? + snapshot.write_to(&dedup_dest)?;
        tracing::info!(to = %dest_dir.display(), bytes, "Backed up the event store.");
        Ok(bytes)
    }

    /// Whether the dedup state's start-up work is done: no filter is being built. Until its first filter is
    /// ready, lookups of new keys go to fjall's per-segment filters, several times slower (a store of two
    /// million events builds it in a few seconds after opening). `interlude bench ingest` waits for this.
    pub fn dedup_settled(&self) -> Result<bool, StoreError> {
        Ok(self.db()?.dedup().filters_settled())
    }

    /// Writes the dedup state's recent keys (its overlay) to fjall and waits until fjall has flushed them to
    /// its segments and no compaction runs: the background work a burst leaves behind. `interlude bench
    /// ingest` charges this to the durable run before it, so that the next run does not pay for it.
    pub fn settle_dedup(&self) -> Result<(), StoreError> {
        self.db()?.dedup().settle_and_flush()
    }

    /// Measures the file, the disk and the tables, and records them as metrics.
    pub fn observe(&self) -> Result<Observed, StoreError> {
        let io = |what: String| move |source| StoreError::Io { what, source };
        let file_bytes = std::fs::metadata(&self.path)
            .map_err(io(format!("reading {}", self.path.display())))?
            .len();
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let (disk_free_bytes, disk_total_bytes) = disk_space(dir)?;
        let tables = self.table_sizes()?;
        let dedup_bytes = self.db()?.dedup().disk_bytes();
        metrics::gauge!(m::STORE_FILE_BYTES).set(file_bytes as f64);
        metrics::gauge!(m::STORE_DEDUP_BYTES).set(dedup_bytes as f64);
        metrics::gauge!(m::STORE_DISK_FREE).set(disk_free_bytes as f64);
        metrics::gauge!(m::STORE_DISK_TOTAL).set(disk_total_bytes as f64);
        for (table, n) in &tables {
            metrics::gauge!(m::STORE_TABLE_ENTRIES, "table" => *table).set(*n as f64);
        }
        Ok(Observed {
            file_bytes,
            dedup_bytes,
            disk_free_bytes,
            disk_total_bytes,
            tables,
        })
    }

    /// Records [`Self::observe`] every `every` on a blocking-friendly task until the store is closed.
    pub fn start_observing(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let Some(store) = me.upgrade() else { return };
                if *store.health.borrow() == Health::Closed {
                    return;
                }
                match tokio::task::spawn_blocking(move || store.observe()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => tracing::debug!(error = %e, "Store metrics not read."),
                    Err(e) => tracing::debug!(error = %e, "Store metrics task failed."),
                }
            }
        })
    }

    /// Sets the line-item prices reports and the ledger compute spend with (the catalog replaces them on reload).
    pub fn set_prices(&self, prices: Arc<dyn Prices>) {
        *self.prices.write().unwrap_or_else(PoisonError::into_inner) = prices;
    }

    fn prices(&self) -> Arc<dyn Prices> {
        self.prices
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Free (for this user) and total bytes of the file system holding `dir`.
fn disk_space(dir: &Path) -> Result<(u64, u64), StoreError> {
    let s = rustix::fs::statvfs(dir).map_err(|e| StoreError::Io {
        what: format!("statvfs {}", dir.display()),
        source: e.into(),
    })?;
    let unit = if s.f_frsize > 0 {
        s.f_frsize
    } else {
        s.f_bsize
    };
    Ok((
        s.f_bavail.saturating_mul(unit),
        s.f_blocks.saturating_mul(unit),
    ))
}
