//! The embedded store's dedup state — event ids, billing keys, impressions per session minute — in an LSM tree
//! (fjall) in `dedup/` beside the redb file, kept in step with redb by redo records.
//!
//! Why not redb: these keys are random (players send UUIDs; one group commit holds one beacon each of many
//! viewers), and in a B-tree every new random key dirties a page of its own. With random ids the group
//! committer wrote ~10,000 pages of 4 KiB per commit and durable ingestion ran at 0.06× of not persisting;
//! a store already holding two million events managed 6–10 k events/s. The same writes on fjall ran 5–9×
//! faster and wrote 0.4 KB per event instead of 15–21 KB (`bench/engines`, `docs/performance.md`). The
//! aggregates, the ledger and the log stay in redb: their keys are few and hot, or appended.
//!
//! How it stays exact. redb stays the one point of durability:
//! 1. A group commit writes its dedup changes as one redo record ([`REDO`], under the commit's number) in the
//!    same redb transaction as its log and counts; the commit's fsync makes them durable together, and only
//!    then is anything acknowledged.
//! 2. After that commit, the changes go to an in-memory overlay of hash maps ([`Overlay`]); about once a
//!    second the overlay goes to fjall in one atomic batch that also records the last commit's number
//!    ([`Dedup::applied`]), without an fsync of its own. Lookups ask a filter of all keys, then the overlay,
//!    then fjall.
//! 3. fjall's journal is then synced; the redo records up to the number it then held are removed by the next
//!    commit.
//! 4. On open, the records past the number fjall holds are applied again. A change sets a key to a value or
//!    removes it, so applying one twice is harmless.
//!
//! A crash at any point thus loses no dedup key of an acknowledged event and invents none of an
//! unacknowledged one. A dedup directory that does not match its redb file (restored from another backup,
//! or lost) is refused at open, naming the commit numbers, instead of counting retries again.
//!
//! Every change goes through one writer at a time ([`Dedup::writer`]): a commit's prefetch must read the
//! state every earlier commit left, so a redb commit and its overlay changes are one step. A lost overlay
//! (a crash, a failed spill and the reopen it causes) is what the redo records since fjall's number hold.

use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fjall::{Config, Keyspace, PartitionCreateOptions, PartitionHandle, PersistMode};
use redb::{Database, ReadableTable, Table, TableDefinition, WriteTransaction};

use super::StoreError;
use super::filter::{Layered, key_hash};
use super::state::{MAX_VALUE, TAG_COUNTED, TAG_EVENT_ID, TAG_SESSION_RATE};

/// The directory of the dedup state, beside the redb file.
pub const DIR_NAME: &str = "dedup";

/// Redo records: commit number → that commit's dedup changes ([`Redo`]), removed once fjall has synced them.
/// A commit whose changes pass [`MAX_VALUE`] bytes writes them as several records, under consecutive numbers
/// (see [`MAX_VALUE`] for why); each is whole changes, and applying them in turn is applying the commit.
pub(crate) const REDO: TableDefinition<u64, &[u8]> = TableDefinition::new("dedup_redo");
/// The last key of [`REDO`], with no changes: see [`super::state::LOG_CHUNKS_TAIL`].
pub(crate) const REDO_TAIL: u64 = u64::MAX;
/// The [`super::state::META`] entry holding the number of the last commit that changed dedup state.
pub(crate) const META_COMMIT: &str = "dedup_commit";

/// fjall's key of the applied commit number, in the `meta` partition.
const APPLIED: &[u8] = b"applied";
/// The size-tiered compaction of each kind: its first level is merged into the next once it holds
/// `TIERED_RATIO × TIERED_BASE` bytes (128 MiB), each level `TIERED_RATIO` times the one before.
///
/// Why not fjall's default (64 MiB × 4, a first level of 256 MiB): a spill makes one segment of 5–20 MB per
/// kind per second, so the first level reached fjall's cap of 20 segments long before 256 MiB. Past the cap
/// fjall merges the two smallest neighbours at every new segment: a store ingesting for 40 s had 20–22
/// segments per kind, and the compactor wrote more than the spills (186 MB against 139 MB in 4 s, using a
/// quarter of a core). With 128 MiB, about ten segments go down in one merge; lookups that reach fjall at
/// all (the filters answer most) check a few more segments' Bloom filters (`docs/performance.md`).
const TIERED_BASE: u32 = 16 << 20;
/// See [`TIERED_BASE`].
const TIERED_RATIO: u8 = 8;
/// How often fjall's journal is synced (and the redo records it covers dropped from redb).
const SYNC_EVERY: Duration = Duration::from_secs(1);
/// The longest key stored: ids are at most 256 bytes once validated, but the prefetch runs before
/// validation. A longer key is never found and never written (its event is quarantined).
pub(crate) const MAX_KEY: usize = 1024;

/// The kinds of dedup key, each a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Event id → the time it is kept from (seconds).
    EventId,
    /// Billing key `ad_instance␟type` → occurred_at (seconds).
    Counted,
    /// `session␟minute` → impressions.
    SessionRate,
}

impl Kind {
    pub(crate) const ALL: [Kind; 3] = [Kind::EventId, Kind::Counted, Kind::SessionRate];

    /// The partition's name (also the name tables and metrics use).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::EventId => "event_ids",
            Kind::Counted => "counted",
            Kind::SessionRate => "session_rate",
        }
    }

    /// The tag of the kind in redo records and in the expiry index.
    pub(crate) fn tag(self) -> u8 {
        match self {
            Kind::EventId => TAG_EVENT_ID,
            Kind::Counted => TAG_COUNTED,
            Kind::SessionRate => TAG_SESSION_RATE,
        }
    }

    pub(crate) fn of_tag(tag: u8) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.tag() == tag)
    }
}

/// Set on a redo entry's tag when the entry removes its key.
const REMOVE: u8 = 0x80;

/// One commit's dedup changes: entries `tag, key length (u16 LE), key[, value (8 bytes LE)]`, a removal
/// carrying [`REMOVE`] in its tag and no value. Beside them, not stored, each entry's [`key_hash`], which the
/// overlay and the filters use after the commit.
#[derive(Debug, Default)]
pub(crate) struct Redo {
    bytes: Vec<u8>,
    /// Where in `bytes` a record after the first starts: each holds at most [`MAX_VALUE`] bytes of changes (or
    /// one change, if it alone is longer).
    cuts: Vec<usize>,
    hashes: Vec<u64>,
    /// The filters the commit's lookups added its keys to ([`Reader::get_or_mark`]).
    marked: Marked,
}

/// One change of a redo record.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Change<'a> {
    Set(Kind, &'a [u8], u64),
    Remove(Kind, &'a [u8]),
}

impl Redo {
    /// Sets `key` to `value`.
    #[cfg(test)]
    pub(crate) fn set(&mut self, kind: Kind, key: &[u8], value: u64) {
        self.set_hashed(kind, key, key_hash(key), value);
    }

    /// Sets `key`, whose [`key_hash`] is `hash`, to `value`.
    pub(crate) fn set_hashed(&mut self, kind: Kind, key: &[u8], hash: u64, value: u64) {
        if self.push_key(kind.tag(), key, hash) {
            self.bytes.extend_from_slice(&value.to_le_bytes());
        }
    }

    /// Removes `key`.
    pub(crate) fn remove(&mut self, kind: Kind, key: &[u8]) {
        self.push_key(kind.tag() | REMOVE, key, key_hash(key));
    }

    fn push_key(&mut self, tag: u8, key: &[u8], hash: u64) -> bool {
        let Ok(len) = u16::try_from(key.len()) else {
            return false;
        };
        if key.len() > MAX_KEY {
            return false;
        }
        let entry = 3 + key.len() + if tag & REMOVE == 0 { 8 } else { 0 };
        let start = self.cuts.last().copied().unwrap_or(0);
        if self.bytes.len() > start && self.bytes.len() - start + entry > MAX_VALUE {
            self.cuts.push(self.bytes.len());
        }
        self.bytes.push(tag);
        self.bytes.extend_from_slice(&len.to_le_bytes());
        self.bytes.extend_from_slice(key);
        self.hashes.push(hash);
        true
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Notes that the keys set here were looked up with [`Reader::get_or_mark`] in `marked`.
    pub(crate) fn marked_in(&mut self, marked: Marked) {
        self.marked = marked;
    }

    #[cfg(test)]
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The record's bytes, in pieces of at most [`MAX_VALUE`] each holding whole changes.
    pub(crate) fn records(&self) -> impl Iterator<Item = &[u8]> {
        let ends = self.cuts.iter().copied().chain([self.bytes.len()]);
        let starts = std::iter::once(0).chain(self.cuts.iter().copied());
        starts.zip(ends).map(|(a, b)| &self.bytes[a..b])
    }
}

/// The changes of an encoded redo record, in order; an error names the first malformed byte.
pub(crate) fn changes(mut bytes: &[u8]) -> impl Iterator<Item = Result<Change<'_>, String>> {
    let total = bytes.len();
    std::iter::from_fn(move || {
        let [tag, a, b, rest @ ..] = bytes else {
            return (!bytes.is_empty()).then(|| {
                let at = total - bytes.len();
                bytes = &[];
                Err(format!("truncated entry at byte {at}"))
            });
        };
        let at = total - bytes.len();
        let len = usize::from(u16::from_le_bytes([*a, *b]));
        let kind = Kind::of_tag(tag & !REMOVE);
        let removal = tag & REMOVE != 0;
        let value_len = if removal { 0 } else { 8 };
        let (Some(kind), Some(key), Some(value)) =
            (kind, rest.get(..len), rest.get(len..len + value_len))
        else {
            bytes = &[];
            return Some(Err(format!(
                "malformed entry at byte {at} (tag {tag:#04x})"
            )));
        };
        bytes = &rest[len + value_len..];
        Some(Ok(match value.try_into() {
            Ok(v) if !removal => Change::Set(kind, key, u64::from_le_bytes(v)),
            _ => Change::Remove(kind, key),
        }))
    })
}

/// How far fjall is: the last commit applied, the last one synced to its journal, the last whose redo
/// records redb has dropped.
#[derive(Debug)]
struct Progress {
    applied: u64,
    synced: u64,
    pruned: u64,
    synced_at: Instant,
}

/// The dedup state of one store.
pub(crate) struct Dedup {
    dir: PathBuf,
    tree: Arc<Tree>,
    writer: Mutex<()>,
    /// Wakes the spill thread; dropped (ending the thread) before it is joined.
    spill_due: Option<Sender<()>>,
    spiller: Option<JoinHandle<()>>,
}

/// Lookups under one hold of the overlay (see [`Dedup::reader`]).
pub(crate) struct Reader<'a> {
    overlay: MutexGuard<'a, Overlay>,
    filters: Option<Arc<FilterSet>>,
    tree: &'a Tree,
}

impl Reader<'_> {
    /// The stored value of `key`, whose [`key_hash`] is `hash`, if any: the overlay's, else fjall's unless
    /// the filter rules the key out.
    pub(crate) fn get(&self, kind: Kind, key: &[u8], hash: u64) -> Result<Option<u64>, StoreError> {
        self.lookup(kind, key, hash, false)
    }

    /// [`Self::get`] for a key a commit is about to add if absent: a key the filter in use rules out is added
    /// to it, while its block is in cache. The commit then need not add it again unless another filter came
    /// into use meanwhile ([`Self::marked`]). Keys marked but not added (a duplicate within the batch, an
    /// event quarantined) stay as false positives, which cost a lookup, never a wrong answer.
    ///
    /// Why: the apply's inserts missed the cache a second time for every new key, 8 % of the group
    /// committer's time.
    pub(crate) fn get_or_mark(
        &self,
        kind: Kind,
        key: &[u8],
        hash: u64,
    ) -> Result<Option<u64>, StoreError> {
        self.lookup(kind, key, hash, true)
    }

    /// The filters [`Self::get_or_mark`] added keys to.
    pub(crate) fn marked(&self) -> Marked {
        Marked(self.filters.clone())
    }

    /// [`Self::get`], and with `mark` [`Self::get_or_mark`].
    fn lookup(
        &self,
        kind: Kind,
        key: &[u8],
        hash: u64,
        mark: bool,
    ) -> Result<Option<u64>, StoreError> {
        if key.is_empty() || key.len() > MAX_KEY {
            return Ok(None);
        }
        // The filter holds the overlay's keys too: a new key costs one probe, not three.
        if let Some(filters) = &self.filters {
            let filter = &filters[kind as usize];
            let maybe = if mark {
                filter.may_contain_or_insert(hash)
            } else {
                filter.may_contain(hash)
            };
            if !maybe {
                return Ok(None);
            }
        }
        let recent = self.overlay.kinds[kind as usize]
            .get(key, hash)
            .or_else(|| {
                let frozen = self.overlay.frozen.as_ref()?;
                frozen.kinds[kind as usize].get(key, hash)
            });
        if let Some(v) = recent {
            return Ok(v);
        }
        match self.tree.part(kind).get(key)? {
            None => Ok(None),
            Some(v) => match <[u8; 8]>::try_from(v.as_ref()) {
                Ok(b) => Ok(Some(u64::from_le_bytes(b))),
                Err(_) => Err(StoreError::Corrupt {
                    table: kind.name(),
                    reason: format!("value of {:?} is {} bytes, not 8", hex(key), v.len()),
                }),
            },
        }
    }
}

/// The keyspace and what the spill thread shares with the writer.
struct Tree {
    keyspace: Keyspace,
    parts: [PartitionHandle; 3],
    meta: PartitionHandle,
    progress: Mutex<Progress>,
    /// Changes applied since the last spill, in hash maps (see [`Overlay`]).
    overlay: Mutex<Overlay>,
    /// Signalled when a frozen overlay is in fjall (or failed to get there).
    spilled: Condvar,
    /// One filter per kind over fjall's keys, and its rebuilding (see [`Filters`]).
    filters: Mutex<Filters>,
}

/// A [`Layered`] filter per kind, over every key the overlay and fjall hold: lookups consult it first, and most
/// absent keys end there (see [`super::filter`]).
///
/// Built on a thread of its own from a fjall snapshot at open (lookups ask the overlay and fjall until it
/// is ready). Once a kind's filter was given more keys than it was sized for, it gets a new layer sized for
/// twice the keys then stored ([`Layered`]); past [`Layered::MAX_LAYERS`] the filters are built again from a
/// snapshot, which also drops the expired keys' bits. A new layer keeps the old ones, so what holds for the
/// filter in use holds for the grown one. The filter in use never lacks a key:
/// - a commit adds the keys new to the overlay to it (and to one being built) under the overlay's lock, so
///   a reader, who holds that lock, sees both or neither; [`Dedup::load`] adds what it writes to fjall;
/// - a build holds every key of its snapshot; keys written to fjall after it (a spill) are added to it by
///   their writer, as the snapshot is taken under the lock that tells writers of the new filter; and when it
///   is done, the overlay's keys (applied before it began, perhaps not yet in fjall) are added to it under
///   the overlay's lock before it is put in use.
#[derive(Default)]
struct Filters {
    /// What lookups consult; `None` until a build ends, or while the store is too large for one.
    current: Option<Arc<FilterSet>>,
    /// The filter being built.
    building: Option<Arc<FilterSet>>,
    builder: Option<JoinHandle<()>>,
    /// Set when the store closes: a build under way stops, and none starts.
    closing: bool,
}

type FilterSet = [Layered; 3];

/// The filters a commit's lookups added its keys to, if any were in use ([`Reader::get_or_mark`]).
#[derive(Debug, Default, Clone)]
pub(crate) struct Marked(Option<Arc<FilterSet>>);

/// The filter in use, for [`Tree::add_to_filters`].
#[derive(Clone, Copy)]
enum InUse<'a> {
    /// Not it: the keys are in it already (a spill of keys a commit applied).
    Skip,
    /// It.
    Add,
    /// It, unless it is the one the keys were marked in.
    Unless(&'a Marked),
}

/// Keys a filter is sized for at least (2 MiB per kind).
const FILTER_MIN_KEYS: u64 = 1 << 20;
/// Keys a filter is sized for at most, its layers together (128 MiB per kind). A store holding more than half
/// as many keys of a kind has no filter: its lookups rely on fjall's filters per segment, as they did before.
const FILTER_MAX_KEYS: u64 = 1 << 26;

/// The changes of the commits fjall does not hold yet, one hash map per kind (`None`: removed).
///
/// Why: a lookup in fjall's memtables is a skip-list search — about a microsecond of pointer chasing and key
/// compares for a key that is not there, which is almost every key of a herd of new beacons — and its
/// memtables hold exactly the recent keys. Kept here instead, in hash maps, and written to fjall in one sorted
/// batch per [`SPILL_EVERY`] (or [`SPILL_AT`] entries), the recent keys cost a hash probe, and fjall's
/// memtables stay nearly empty between spills, so a new key costs the segments' bloom filters. The redo
/// records in redb cover the overlay until a spill is synced, as they covered fjall's unsynced journal.
///
/// A spill freezes the maps and hands them to a thread of their own, which writes them while commits go on
/// into new maps; lookups read the new maps, then the frozen ones, then fjall (after the filter, see
/// [`Filters`]).
#[derive(Debug)]
struct Overlay {
    kinds: [OverlayMap; 3],
    /// The last commit whose changes are here (0: none since the last spill).
    commit: u64,
    spilled_at: Instant,
    /// The maps being written to fjall, if a spill is under way.
    frozen: Option<Arc<Frozen>>,
    /// Why a spill failed: every later apply fails too, and the store reopens (replaying the redo records).
    failed: Option<String>,
}

/// Maps handed to the spill thread, and the last commit they hold.
#[derive(Debug)]
struct Frozen {
    kinds: [OverlayMap; 3],
    commit: u64,
}

/// One kind's changes in the overlay: the keys in one buffer, and a hash table of entries by [`key_hash`]
/// (which the commit's prefetch computed once, for these tables and the filter alike).
///
/// Why not a `HashMap<Box<[u8]>, _>`: that allocated each key, hashed it again on every lookup and insert,
/// and freed it one by one after the spill.
#[derive(Debug, Default)]
struct OverlayMap {
    entries: hashbrown::HashTable<OverlayEntry>,
    keys: Vec<u8>,
}

/// A key's place in [`OverlayMap::keys`], its hash, and its value (`None`: removed).
#[derive(Debug, Clone, Copy)]
struct OverlayEntry {
    hash: u64,
    at: usize,
    len: usize,
    value: Option<u64>,
}

impl OverlayMap {
    /// Room for `entries` changes with `bytes` of keys.
    fn with_capacity(entries: usize, bytes: usize) -> Self {
        OverlayMap {
            entries: hashbrown::HashTable::with_capacity(entries),
            keys: Vec::with_capacity(bytes),
        }
    }

    fn key(&self, entry: &OverlayEntry) -> &[u8] {
        &self.keys[entry.at..entry.at + entry.len]
    }

    /// The value of `key` (of hash `hash`), if it is here (`Some(None)`: removed).
    fn get(&self, key: &[u8], hash: u64) -> Option<Option<u64>> {
        self.entries
            .find(hash, |e| self.key(e) == key)
            .map(|e| e.value)
    }

    /// Sets `key` (of hash `hash`) to `value`; whether the key is new here.
    fn insert(&mut self, key: &[u8], hash: u64, value: Option<u64>) -> bool {
        let keys = &self.keys;
        // One probe for both outcomes; nearly every key is new.
        match self
            .entries
            .entry(hash, |e| &keys[e.at..e.at + e.len] == key, |e| e.hash)
        {
            hashbrown::hash_table::Entry::Occupied(mut e) => {
                e.get_mut().value = value;
                false
            }
            hashbrown::hash_table::Entry::Vacant(slot) => {
                let at = self.keys.len();
                self.keys.extend_from_slice(key);
                slot.insert(OverlayEntry {
                    hash,
                    at,
                    len: key.len(),
                    value,
                });
                true
            }
        }
    }

    fn len(&self) -> usize {
        self.entries.len()
    }

    /// The entries in key order (for fjall's skip list, whose inserts in order stay in cache).
    ///
    /// Sorted by eight bytes of each key, read once, before whole keys are compared: the compares of whole
    /// keys were two thirds of the sort, itself a fifth of the spill. The eight bytes follow the prefix every
    /// key shares (ids under one naming scheme), where keys differ.
    fn sorted(&self) -> Vec<&OverlayEntry> {
        let shared = self.shared_prefix_len();
        let mut entries: Vec<_> = self
            .entries
            .iter()
            .map(|e| (prefix(&self.key(e)[shared..]), e))
            .collect();
        entries.sort_unstable_by(|(pa, a), (pb, b)| {
            pa.cmp(pb).then_with(|| self.key(a).cmp(self.key(b)))
        });
        entries.into_iter().map(|(_, e)| e).collect()
    }

    /// The length of the prefix all keys share.
    fn shared_prefix_len(&self) -> usize {
        let mut keys = self.entries.iter().map(|e| self.key(e));
        let Some(first) = keys.next() else { return 0 };
        keys.fold(first.len(), |shared, key| {
            first[..shared]
                .iter()
                .zip(key)
                .take_while(|(a, b)| a == b)
                .count()
        })
    }

    fn capacity(&self) -> usize {
        self.entries.capacity()
    }
}

impl Overlay {
    /// Keys held, frozen ones aside.
    fn len(&self) -> usize {
        self.kinds.iter().map(|m| m.len()).sum()
    }
}

impl Default for Overlay {
    fn default() -> Self {
        Overlay {
            kinds: Default::default(),
            commit: 0,
            spilled_at: Instant::now(),
            frozen: None,
            failed: None,
        }
    }
}

/// Entries the overlay holds before a spill is due; commits wait for the spill thread only when it is still
/// writing the previous maps and the new ones have twice this many.
const SPILL_AT: usize = 400_000;
/// How often the overlay is spilled into fjall, entries or not.
const SPILL_EVERY: Duration = Duration::from_secs(1);

impl std::fmt::Debug for Dedup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dedup")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Dedup {
    /// Opens (or creates) the keyspace in `dir`, with `cache_mb` of block cache.
    ///
    /// Sizes: memtables of 8 MiB per kind (what stays in memory after a burst until the next writes fill
    /// them), at most 128 MiB of memtables and of journals (what a start after a crash reads back). Background
    /// work runs on one flush thread and one compaction thread: the writer and the HTTP side need the cores.
    /// The flush thread takes up to 4 memtables per wake-up: fjall wakes it once per kind with memtables
    /// recovered at open, however many each has, so with one per wake-up the rest would wait for later
    /// writes — and writes wait while the memtables are over their limit (observed: a hang at the first
    /// commit after reopening a store of 300,000 events). The kick after opening wakes it once more per kind.
    pub(crate) fn open(dir: &Path, cache_mb: usize) -> Result<Self, StoreError> {
        let config = Config::new(dir)
            .cache_size(cache_mb.max(1).saturating_mul(1 << 20) as u64)
            .max_write_buffer_size(128 << 20)
            .max_journaling_size(128 << 20)
            .flush_workers(4)
            .compaction_workers(1);
        // Opened on a thread of background priority, whose priority fjall's flush and compaction threads take
        // as they start there (see [`background_priority`]).
        let keyspace = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    background_priority();
                    config.open()
                })
                .join()
        })
        .map_err(|_| StoreError::Io {
            what: "opening the dedup state".into(),
            source: std::io::Error::other("the thread opening fjall panicked"),
        })??;
        let open = |name: &str| {
            keyspace.open_partition(
                name,
                PartitionCreateOptions::default()
                    .max_memtable_size(8 << 20)
                    .compression(fjall::CompressionType::None)
                    .compaction_strategy(fjall::compaction::Strategy::SizeTiered(
                        fjall::compaction::SizeTiered::new(TIERED_BASE, TIERED_RATIO),
                    )),
            )
        };
        let parts = [
            open(Kind::EventId.name())?,
            open(Kind::Counted.name())?,
            open(Kind::SessionRate.name())?,
        ];
        let meta = open("meta")?;
        if keyspace.write_buffer_size() > 0 {
            for part in &parts {
                part.rotate_memtable()?;
            }
        }
        let applied = match meta.get(APPLIED)? {
            Some(v) => {
                u64::from_be_bytes(v.as_ref().try_into().map_err(|_| StoreError::Corrupt {
                    table: "dedup meta",
                    reason: format!("applied commit is {} bytes, not 8", v.len()),
                })?)
            }
            None => 0,
        };
        let tree = Arc::new(Tree {
            keyspace,
            parts,
            meta,
            progress: Mutex::new(Progress {
                applied,
                synced: applied,
                pruned: 0,
                synced_at: Instant::now(),
            }),
            overlay: Mutex::new(Overlay::default()),
            spilled: Condvar::new(),
            filters: Mutex::new(Filters::default()),
        });
        Tree::build_filters_if_due(&tree);
        let (spill_due, due) = std::sync::mpsc::channel::<()>();
        let spiller = {
            let tree = tree.clone();
            std::thread::Builder::new()
                .name("dedup-spill".into())
                .spawn(move || {
                    // The filter builds it starts take its priority too.
                    background_priority();
                    while due.recv().is_ok() {
                        // A panic must not leave commits waiting for a spill that never ends.
                        let spilled =
                            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                tree.spill_frozen();
                                Tree::build_filters_if_due(&tree);
                            }));
                        if spilled.is_err() {
                            tree.overlay().failed = Some("the spill thread panicked".into());
                            tree.spilled.notify_all();
                        }
                    }
                })
                .map_err(|source| StoreError::Io {
                    what: "starting the dedup spill thread".into(),
                    source,
                })?
        };
        Ok(Dedup {
            dir: dir.to_owned(),
            tree,
            writer: Mutex::new(()),
            spill_due: Some(spill_due),
            spiller: Some(spiller),
        })
    }

    fn part(&self, kind: Kind) -> &PartitionHandle {
        self.tree.part(kind)
    }

    fn progress(&self) -> MutexGuard<'_, Progress> {
        self.tree.progress()
    }

    /// The right to change dedup state: held from a redb write transaction's start until its changes are in
    /// the overlay.
    pub(crate) fn writer(&self) -> MutexGuard<'_, ()> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether no filter is being built (see [`Filters`]).
    pub(crate) fn filters_settled(&self) -> bool {
        self.tree.filters().building.is_none()
    }

    /// The number of the last commit whose changes are in fjall.
    pub(crate) fn applied(&self) -> u64 {
        self.progress().applied
    }

    /// The stored value of `key`, if any.
    pub(crate) fn get(&self, kind: Kind, key: &[u8]) -> Result<Option<u64>, StoreError> {
        self.reader().get(kind, key, key_hash(key))
    }

    /// A reader for many lookups in a row (a commit's prefetch), which takes the overlay's lock and the
    /// filter once instead of once per key. The spill thread waits for it to be dropped before it drops the
    /// maps it wrote, so a reader sees every key in the overlay or in both fjall and the filter.
    pub(crate) fn reader(&self) -> Reader<'_> {
        let overlay = self.overlay();
        let filters = self.tree.filters().current.clone();
        Reader {
            overlay,
            filters,
            tree: &self.tree,
        }
    }

    fn overlay(&self) -> MutexGuard<'_, Overlay> {
        self.tree.overlay()
    }

    /// Applies commit `commit`'s changes, as stored in its redo record: into the [`Overlay`], handed to the
    /// spill thread when due.
    pub(crate) fn apply(&self, commit: u64, redo: &[u8]) -> Result<(), StoreError> {
        self.apply_hashed(commit, redo, None, &Marked::default())
    }

    /// [`Self::apply`] with the keys' hashes, in order, if the commit kept them, and the filters its lookups
    /// marked them in ([`Redo`]).
    fn apply_hashed(
        &self,
        commit: u64,
        redo: &[u8],
        hashes: Option<&[u64]>,
        marked: &Marked,
    ) -> Result<(), StoreError> {
        let mut overlay = self.overlay();
        if let Some(why) = &overlay.failed {
            return Err(spill_failed(why));
        }
        let mut added: [Vec<u64>; 3] = Default::default();
        for (i, change) in changes(redo).enumerate() {
            let (kind, key, value) = match change.map_err(|reason| StoreError::Corrupt {
                table: "dedup_redo",
                reason: format!("commit {commit}: {reason}"),
            })? {
                Change::Set(kind, key, value) => (kind, key, Some(value)),
                Change::Remove(kind, key) => (kind, key, None),
            };
            let hash = hashes
                .and_then(|h| h.get(i).copied())
                .unwrap_or_else(|| key_hash(key));
            if overlay.kinds[kind as usize].insert(key, hash, value) && value.is_some() {
                added[kind as usize].push(hash);
            }
        }
        // Under the overlay's lock, so a reader never sees a key here that the filter lacks.
        for kind in Kind::ALL {
            self.tree
                .add_to_filters(kind, &added[kind as usize], InUse::Unless(marked));
        }
        overlay.commit = commit;
        self.spill_if_due(overlay, false)
    }

    /// Hands the overlay to the spill thread if it is due: [`SPILL_AT`] entries or [`SPILL_EVERY`], or
    /// whatever it holds with `now`. Waits for the previous spill only when the new maps are twice due.
    fn spill_if_due(
        &self,
        mut overlay: MutexGuard<'_, Overlay>,
        now: bool,
    ) -> Result<(), StoreError> {
        let len = overlay.len();
        let due = now || len >= SPILL_AT || overlay.spilled_at.elapsed() >= SPILL_EVERY;
        if due && overlay.commit == 0 {
            // Idle for a second: the maps, sized for the last busy second, give their memory back (the
            // committer's idle tick gets here), or a burst's last maps would stay allocated, empty.
            for map in &mut overlay.kinds {
                if map.capacity() > 0 {
                    *map = OverlayMap::default();
                }
            }
        }
        if !due || overlay.commit == 0 {
            return Ok(());
        }
        if overlay.frozen.is_some() && !now && len < 2 * SPILL_AT {
            return Ok(());
        }
        overlay = self.tree.wait_for_spill(overlay)?;
        // The next maps sized for as many keys as these took: grown from empty, their rehashing was a tenth
        // of the group committer's time.
        let next = overlay
            .kinds
            .each_ref()
            .map(|map| OverlayMap::with_capacity(map.len(), map.keys.len()));
        overlay.frozen = Some(Arc::new(Frozen {
            kinds: std::mem::replace(&mut overlay.kinds, next),
            commit: overlay.commit,
        }));
        overlay.commit = 0;
        overlay.spilled_at = Instant::now();
        drop(overlay);
        if let Some(due) = &self.spill_due {
            // The thread ends only when this sender is dropped.
            let _ = due.send(());
        }
        Ok(())
    }

    /// [`Self::settle`], then waits (a minute at most) until fjall's background work is done: the memtables
    /// the spills sealed written into segments, and no compaction running for 50 ms in a row (a flush or a
    /// merge can queue another merge). This is the work a burst leaves behind; a benchmark that stopped the
    /// clock earlier would charge it to whatever runs next.
    pub(crate) fn settle_and_flush(&self) -> Result<(), StoreError> {
        use fjall::AbstractTree;
        const QUIET: Duration = Duration::from_millis(50);
        self.settle()?;
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut quiet_since: Option<Instant> = None;
        while Instant::now() < deadline {
            let busy = self.tree.keyspace.active_compactions() > 0
                || self
                    .tree
                    .parts
                    .iter()
                    .any(|p| p.tree.sealed_memtable_count() > 0);
            match (busy, quiet_since) {
                (true, _) => quiet_since = None,
                (false, None) => quiet_since = Some(Instant::now()),
                (false, Some(at)) if at.elapsed() >= QUIET => break,
                (false, Some(_)) => {}
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }

    /// Spills the overlay and waits until fjall holds it (before a scan of fjall, or a sync that must cover
    /// everything applied).
    fn settle(&self) -> Result<(), StoreError> {
        self.spill_if_due(self.overlay(), true)?;
        drop(self.tree.wait_for_spill(self.overlay())?);
        Ok(())
    }

    /// Syncs fjall's journal if [`SYNC_EVERY`] has passed (or, with `now`, after spilling everything), so
    /// redb can drop the redo records it covers.
    pub(crate) fn sync(&self, now: bool) -> Result<(), StoreError> {
        if now {
            self.settle()?;
        } else {
            // An idle store still spills (the committer's expiry tick calls this).
            self.spill_if_due(self.overlay(), false)?;
        }
        let applied = {
            let p = self.progress();
            if p.applied == p.synced || !now && p.synced_at.elapsed() < SYNC_EVERY {
                return Ok(());
            }
            p.applied
        };
        self.tree.keyspace.persist(PersistMode::SyncAll)?;
        let mut p = self.progress();
        p.synced = p.synced.max(applied);
        p.synced_at = Instant::now();
        Ok(())
    }

    /// Removes from `redo` (redb's [`REDO`] in a write transaction) the records fjall has synced and redb
    /// still holds; the number up to which they are gone once the transaction commits (pass it to
    /// [`Self::pruned`]).
    pub(crate) fn prune(
        &self,
        redo: &mut Table<'_, u64, &'static [u8]>,
    ) -> Result<Option<u64>, StoreError> {
        let (synced, pruned) = {
            let p = self.progress();
            (p.synced, p.pruned)
        };
        if synced <= pruned {
            return Ok(None);
        }
        redo.retain_in(pruned..=synced, |_, _| false)?;
        Ok(Some(synced))
    }

    /// Syncs fjall's journal now, whatever was applied (after [`Self::load`]).
    pub(crate) fn persist(&self) -> Result<(), StoreError> {
        self.tree.keyspace.persist(PersistMode::SyncAll)?;
        Ok(())
    }

    /// Notes that the redo records up to `upto` are gone from redb.
    pub(crate) fn pruned(&self, upto: Option<u64>) {
        if let Some(upto) = upto {
            let mut p = self.progress();
            p.pruned = p.pruned.max(upto);
        }
    }

    /// Brings fjall up to `db`: applies the redo records it has not applied, syncs, and drops the records from
    /// redb. Refuses a dedup state that is not this file's (see the module documentation). How many
    /// records were applied.
    pub(crate) fn catch_up(&self, db: &Database) -> Result<u64, StoreError> {
        let _writer = self.writer();
        let applied = self.applied();
        let txn = db.begin_read()?;
        let last = txn
            .open_table(super::state::META)?
            .get(META_COMMIT)?
            .map_or(0, |v| v.value());
        let last = u64::try_from(last).unwrap_or(0);
        let redo = txn.open_table(REDO)?;
        let first = redo.first()?.map(|(k, _)| k.value());
        let mismatch = |why: &str| {
            StoreError::Refused(format!(
                "the dedup state in {} is not the event store's: it holds commit {applied}, the event store \
                 commit {last}, {why}. Restore events.redb and {DIR_NAME}/ from the same backup \
                 (docs/store-operations.md).",
                self.dir.display()
            ))
        };
        if applied > last {
            return Err(mismatch("which is older"));
        }
        if applied < last && first.is_none_or(|f| f > applied + 1) {
            return Err(mismatch("and the changes in between are gone"));
        }
        let mut replayed = 0;
        for entry in redo.range(applied + 1..REDO_TAIL)? {
            let (commit, changes) = entry?;
            self.apply(commit.value(), changes.value())?;
            replayed += 1;
        }
        drop(redo);
        drop(txn);
        self.sync(true)?;
        let txn = db.begin_write()?;
        let upto = self.prune(&mut txn.open_table(REDO)?)?;
        txn.commit()?;
        self.pruned(upto);
        Ok(replayed)
    }

    /// Writes entries into fjall outside any commit: the migration of an older store's redb tables.
    pub(crate) fn load(
        &self,
        kind: Kind,
        entries: impl Iterator<Item = Result<(Vec<u8>, u64), StoreError>>,
    ) -> Result<u64, StoreError> {
        let mut batch = self.tree.keyspace.batch();
        let mut hashes = Vec::new();
        let mut n = 0u64;
        for entry in entries {
            let (key, value) = entry?;
            if key.is_empty() || key.len() > MAX_KEY {
                continue;
            }
            batch.insert(self.part(kind), &key, value.to_le_bytes());
            hashes.push(key_hash(&key));
            n += 1;
            if batch.len() >= 50_000 {
                std::mem::replace(&mut batch, self.tree.keyspace.batch()).commit()?;
                self.tree.add_to_filters(kind, &hashes, InUse::Add);
                hashes.clear();
            }
        }
        batch.commit()?;
        self.tree.add_to_filters(kind, &hashes, InUse::Add);
        Ok(n)
    }

    /// Every entry of `kind`, in key order, as of now.
    pub(crate) fn entries(
        &self,
        kind: Kind,
    ) -> impl Iterator<Item = Result<(Vec<u8>, Result<u64, usize>), StoreError>> + 'static {
        let settled = self.settle();
        settled
            .err()
            .map(Err)
            .into_iter()
            .chain(self.part(kind).iter().map(|entry| {
                let (k, v) = entry?;
                let value = <[u8; 8]>::try_from(v.as_ref())
                    .map(u64::from_le_bytes)
                    .map_err(|_| v.len());
                Ok((k.to_vec(), value))
            }))
    }

    /// Entries of `kind` (a scan: for tests and tools).
    pub(crate) fn count(&self, kind: Kind) -> Result<u64, StoreError> {
        self.settle()?;
        Ok(self.part(kind).len()? as u64)
    }

    /// Entries of `kind`, estimated without a scan (removed keys count until compaction drops them).
    pub(crate) fn approximate_len(&self, kind: Kind) -> u64 {
        let recent = {
            let overlay = self.overlay();
            let frozen = overlay
                .frozen
                .as_ref()
                .map_or(0, |f| f.kinds[kind as usize].len());
            (overlay.kinds[kind as usize].len() + frozen) as u64
        };
        self.part(kind).approximate_len() as u64 + recent
    }

    /// Bytes on disk (segments and journals).
    pub(crate) fn disk_bytes(&self) -> u64 {
        self.tree.keyspace.disk_space()
    }

    /// A consistent view of the state as of now, to copy into a backup ([`DedupSnapshot::write_to`]) while
    /// commits go on. Taken under [`Self::writer`] with the redb file copied in the same instant: it holds at
    /// least the commit it names (the spill thread may have added later ones), and the copy's redo records
    /// hold every commit after that one, which the copy's first open applies.
    pub(crate) fn snapshot(&self) -> DedupSnapshot {
        DedupSnapshot {
            applied: self.applied(),
            parts: Kind::ALL.map(|k| (k, self.part(k).snapshot())),
        }
    }

    /// Syncs everything before the keyspace is dropped (closing the store).
    pub(crate) fn close(&self) -> Result<(), StoreError> {
        self.sync(true)
    }
}

impl Drop for Dedup {
    fn drop(&mut self) {
        let builder = {
            let mut filters = self.tree.filters();
            filters.closing = true;
            filters.builder.take()
        };
        if let Some(thread) = builder {
            let _ = thread.join();
        }
        self.spill_due = None;
        if let Some(thread) = self.spiller.take() {
            let _ = thread.join();
        }
    }
}

fn spill_failed(why: &str) -> StoreError {
    StoreError::Io {
        what: "writing the dedup overlay to fjall".into(),
        source: std::io::Error::other(why.to_owned()),
    }
}

impl Tree {
    fn part(&self, kind: Kind) -> &PartitionHandle {
        &self.parts[kind as usize]
    }

    fn progress(&self) -> MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn overlay(&self) -> MutexGuard<'_, Overlay> {
        self.overlay.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn filters(&self) -> MutexGuard<'_, Filters> {
        self.filters.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds keys of `kind`, by their [`key_hash`], to the filter being built, and to the one in use as
    /// `in_use` says.
    fn add_to_filters(&self, kind: Kind, hashes: &[u64], in_use: InUse<'_>) {
        if hashes.is_empty() {
            return;
        }
        let (in_use, building) = {
            let filters = self.filters();
            let in_use = filters.current.clone().filter(|current| match in_use {
                InUse::Skip => false,
                InUse::Add => true,
                InUse::Unless(Marked(marked)) => {
                    !marked.as_ref().is_some_and(|m| Arc::ptr_eq(m, current))
                }
            });
            (in_use, filters.building.clone())
        };
        for set in in_use.iter().chain(building.iter()) {
            set[kind as usize].insert(hashes.iter().copied());
        }
    }

    /// Grows or rebuilds the filters if due: none is in use or being built, or the one in use was given more
    /// keys than it was sized for. A full kind gets a new layer (see [`Layered`]) while every full kind has
    /// room for one; otherwise all are built anew from a scan, on a thread of their own. Each new layer or
    /// filter is sized for twice the keys fjall holds.
    fn build_filters_if_due(tree: &Arc<Tree>) {
        let mut filters = tree.filters();
        if filters.closing || filters.building.is_some() {
            return;
        }
        if let Some(set) = &filters.current
            && !set.iter().any(Layered::is_full)
        {
            return;
        }
        let capacity = Kind::ALL.map(|kind| {
            (tree.part(kind).approximate_len() as u64)
                .saturating_mul(2)
                .max(FILTER_MIN_KEYS)
        });
        if let Some(set) = filters.current.clone() {
            // A full kind gets a new layer instead of a scan, while it has room for one.
            let grows = |kind: Kind| {
                let layers = &set[kind as usize];
                layers.is_full().then_some(capacity[kind as usize])
            };
            let room = Kind::ALL.into_iter().all(|kind| {
                let layers = &set[kind as usize];
                grows(kind).is_none_or(|c| {
                    layers.layers().len() < Layered::MAX_LAYERS
                        && layers.capacity().saturating_add(c) <= FILTER_MAX_KEYS
                })
            });
            if room {
                // Allocated without the lock, which commits take to add their keys.
                drop(filters);
                let grown = Arc::new(Kind::ALL.map(|kind| match grows(kind) {
                    Some(c) => set[kind as usize].grown(c),
                    None => set[kind as usize].clone(),
                }));
                let mut filters = tree.filters();
                // Once the store is open only the spill thread gets here, but a close may have begun.
                if !filters.closing
                    && filters
                        .current
                        .as_ref()
                        .is_some_and(|c| Arc::ptr_eq(c, &set))
                {
                    tracing::info!(
                        layers = ?grown.each_ref().map(|l| l.layers().len()),
                        bytes = grown.iter().map(Layered::bytes).sum::<u64>(),
                        "Dedup filters grown by a layer."
                    );
                    filters.current = Some(grown);
                }
                return;
            }
        }
        if capacity.iter().any(|c| *c > FILTER_MAX_KEYS) {
            if filters.current.take().is_some() {
                tracing::warn!(
                    keys = ?capacity.map(|c| c / 2),
                    "The dedup state outgrew its filters; lookups ask fjall's own filters alone."
                );
            }
            return;
        }
        let set = Arc::new(capacity.map(Layered::new));
        // Under the lock that tells writers of the new filter: each key is in these snapshots or added by
        // its writer (see [`Filters`]).
        let snapshots = Kind::ALL.map(|kind| tree.part(kind).snapshot());
        filters.building = Some(set.clone());
        if let Some(previous) = filters.builder.take() {
            // It has ended: it let go of `building`.
            let _ = previous.join();
        }
        let builder = tree.clone();
        match std::thread::Builder::new()
            .name("dedup-filter".into())
            .spawn(move || builder.build_filters(set, snapshots))
        {
            Ok(thread) => filters.builder = Some(thread),
            Err(e) => {
                tracing::warn!(error = %e, "Starting the dedup filter build failed; retried after the next spill.");
                filters.building = None;
            }
        }
    }

    /// The filter build's work: every key of `snapshots` into `set`, which then replaces the filter in use.
    fn build_filters(&self, set: Arc<FilterSet>, snapshots: [fjall::Snapshot; 3]) {
        let started = Instant::now();
        let scanned = (|| -> Result<bool, StoreError> {
            for (kind, snapshot) in Kind::ALL.into_iter().zip(&snapshots) {
                let mut hashes = Vec::with_capacity(65_536);
                for key in snapshot.keys() {
                    hashes.push(key_hash(&key.map_err(fjall::Error::from)?));
                    if hashes.len() == 65_536 {
                        if self.filters().closing {
                            return Ok(false);
                        }
                        set[kind as usize].insert(hashes.drain(..));
                    }
                }
                set[kind as usize].insert(hashes.drain(..));
            }
            Ok(true)
        })();
        drop(snapshots);
        // The overlay's lock first (the order readers take them in): no commit applies while the new filter
        // takes the overlay's keys, which may have come before the build began and not reached fjall yet.
        let overlay = self.overlay();
        let mut filters = self.filters();
        filters.building = None;
        match scanned {
            Ok(true) => {
                for kind in Kind::ALL {
                    let maps = std::iter::once(&overlay.kinds[kind as usize])
                        .chain(overlay.frozen.iter().map(|f| &f.kinds[kind as usize]));
                    let entries = maps.flat_map(|m| m.entries.iter());
                    set[kind as usize]
                        .insert(entries.filter(|e| e.value.is_some()).map(|e| e.hash));
                }
                tracing::info!(
                    seconds = started.elapsed().as_secs_f64(),
                    bytes = set.iter().map(Layered::bytes).sum::<u64>(),
                    "Dedup filters built."
                );
                filters.current = Some(set);
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(
                error = %e,
                "Building the dedup filters failed; lookups ask fjall alone until the next build."
            ),
        }
    }

    /// Waits until no spill is under way; a failed one is an error.
    fn wait_for_spill<'a>(
        &self,
        mut overlay: MutexGuard<'a, Overlay>,
    ) -> Result<MutexGuard<'a, Overlay>, StoreError> {
        loop {
            if let Some(why) = &overlay.failed {
                return Err(spill_failed(why));
            }
            if overlay.frozen.is_none() {
                return Ok(overlay);
            }
            overlay = self
                .spilled
                .wait(overlay)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// The spill thread's work: writes the frozen maps into fjall in one atomic batch with their last commit's
    /// number, each kind in key order, then drops them. No fsync: the redo records in redb are the durable
    /// copy until [`Dedup::sync`]. The batch is handed to the OS at once: fjall ignores a failed journal write
    /// of a batch without durability, and a later successful sync would then cover a hole in its journal; a
    /// failed hand-over instead keeps the frozen maps (lookups stay right) and fails every later apply until
    /// the store reopens.
    ///
    /// The memtables are then sealed, for fjall's flush thread to write out as segments: lookups of new keys
    /// (most of them) then search nearly empty memtables.
    fn spill_frozen(&self) {
        let Some(frozen) = self.overlay().frozen.clone() else {
            return;
        };
        let written = (|| -> Result<(), StoreError> {
            let entries: usize = frozen.kinds.iter().map(|m| m.len()).sum();
            let mut batch = fjall::Batch::with_capacity(self.keyspace.clone(), entries + 1)
                .durability(Some(PersistMode::Buffer));
            for kind in Kind::ALL {
                let map = &frozen.kinds[kind as usize];
                for e in map.sorted() {
                    match e.value {
                        Some(v) => batch.insert(self.part(kind), map.key(e), v.to_le_bytes()),
                        None => batch.remove(self.part(kind), map.key(e)),
                    }
                }
            }
            batch.insert(&self.meta, APPLIED, frozen.commit.to_be_bytes());
            batch.commit()?;
            // Before the frozen maps go, so a build that ends now finds them there if not here; and after
            // fjall holds the keys, so a build starting now has them in its snapshot if this does not add
            // them to it (see [`Filters`]).
            for kind in Kind::ALL {
                let entries = frozen.kinds[kind as usize].entries.iter();
                let added: Vec<u64> = entries
                    .filter(|e| e.value.is_some())
                    .map(|e| e.hash)
                    .collect();
                // The filter in use has them since they were applied; one being built may not.
                self.add_to_filters(kind, &added, InUse::Skip);
            }
            for part in &self.parts {
                part.rotate_memtable()?;
            }
            Ok(())
        })();
        let mut overlay = self.overlay();
        match written {
            Ok(()) => {
                self.progress().applied = frozen.commit;
                overlay.frozen = None;
            }
            Err(e) => {
                tracing::error!(error = %e, "Writing the dedup overlay to fjall failed; the store reopens.");
                overlay.failed = Some(e.to_string());
            }
        }
        drop(overlay);
        self.spilled.notify_all();
    }
}

/// The nice value of the dedup state's background threads: the spill, the filter builds, and fjall's flush
/// and compaction.
///
/// Why: their work is deferrable (the overlay and fjall's write buffer absorb a burst), while the group
/// committer is what every producer waits for. At the same priority, with the HTTP side using both cores of
/// a small node, the committer spent as long waiting for a core as running (`/proc/<pid>/task/<tid>/
/// schedstat`: 1.6 s of each, per 4 s). With these threads at nice 10, in alternate windows of one run, it
/// waited half as long and wrote 60 % more (`docs/performance.md`; over whole runs, within the noise). Their
/// work still gets done: when the committer and the HTTP side wait (an fsync, the next batch), they run, and
/// if the overlay falls twice behind a spill the commits wait for it.
const BACKGROUND_NICE: i32 = 10;

/// Gives the calling thread [`BACKGROUND_NICE`]; threads it starts inherit it. On Linux a nice value is a
/// thread's, not the process's. Raising one needs no privilege; if it fails the thread runs as before.
fn background_priority() {
    if let Err(e) = rustix::process::setpriority_process(None, BACKGROUND_NICE) {
        tracing::debug!(error = %e, "Lowering a dedup background thread's priority failed.");
    }
}

/// Records `redo` in a redb write transaction: under the next commit numbers in [`REDO`] (when it changes
/// anything; more than one if it is longer than [`MAX_VALUE`]), with the last number in `meta`; and drops the
/// records the dedup state has synced. What remains to do once the transaction commits.
pub(crate) fn record(
    redo_records: &mut Table<'_, u64, &'static [u8]>,
    meta: &mut Table<'_, &'static str, i64>,
    dedup: &Dedup,
    redo: Redo,
) -> Result<AfterCommit, StoreError> {
    let mut apply = None;
    if !redo.is_empty() {
        let last = meta.get(META_COMMIT)?.map_or(0, |v| v.value());
        let mut commit = u64::try_from(last).unwrap_or(0);
        for record in redo.records() {
            commit += 1;
            redo_records.insert(commit, record)?;
        }
        meta.insert(META_COMMIT, i64::try_from(commit).unwrap_or(i64::MAX))?;
        // Applied at once, under the last number: what fjall then holds is every record up to it.
        apply = Some((commit, redo));
    }
    Ok(AfterCommit {
        apply,
        pruned: dedup.prune(redo_records)?,
    })
}

/// [`record`] opening the tables in `txn`.
pub(crate) fn write_redo(
    txn: &WriteTransaction,
    dedup: &Dedup,
    redo: Redo,
) -> Result<AfterCommit, StoreError> {
    record(
        &mut txn.open_table(REDO)?,
        &mut txn.open_table(super::state::META)?,
        dedup,
        redo,
    )
}

/// The dedup work of a commit that remains once its redb transaction is durable.
#[derive(Debug, Default)]
pub(crate) struct AfterCommit {
    apply: Option<(u64, Redo)>,
    pruned: Option<u64>,
}

impl AfterCommit {
    /// Applies the commit's changes to the dedup state, syncing it when due. An error leaves the dedup state
    /// behind redb, so every error is an I/O error to the caller: the store turns unhealthy and reopens,
    /// which applies the redo record, before it commits again.
    pub(crate) fn finish(self, dedup: &Dedup) -> Result<(), StoreError> {
        dedup.pruned(self.pruned);
        let commit = self.apply.as_ref().map_or(0, |(c, _)| *c);
        let done = match &self.apply {
            Some((commit, redo)) => {
                dedup.apply_hashed(*commit, &redo.bytes, Some(&redo.hashes), &redo.marked)
            }
            None => Ok(()),
        }
        .and_then(|()| dedup.sync(false));
        done.map_err(|e| StoreError::Io {
            what: format!("applying commit {commit} to the dedup state"),
            source: std::io::Error::other(e.to_string()),
        })
    }
}

/// A consistent view of the dedup state, to copy into a backup.
pub(crate) struct DedupSnapshot {
    applied: u64,
    parts: [(Kind, fjall::Snapshot); 3],
}

impl DedupSnapshot {
    /// Writes the view into a new keyspace in `dest`, synced; its size in bytes.
    pub(crate) fn write_to(&self, dest: &Path) -> Result<u64, StoreError> {
        let copy = Dedup::open(dest, 16)?;
        for (kind, snapshot) in &self.parts {
            copy.load(
                *kind,
                snapshot.iter().map(|e| {
                    let (k, v) = e.map_err(fjall::Error::from)?;
                    let v = <[u8; 8]>::try_from(v.as_ref()).map_err(|_| StoreError::Corrupt {
                        table: kind.name(),
                        reason: format!("value of {:?} is {} bytes, not 8", hex(&k), v.len()),
                    })?;
                    Ok((k.to_vec(), u64::from_le_bytes(v)))
                }),
            )?;
        }
        copy.apply(self.applied, &[])?;
        copy.sync(true)?;
        Ok(copy.disk_bytes())
    }
}

/// The first eight bytes of `key` as a number that orders as they do (shorter keys padded with zeros).
fn prefix(key: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    let n = key.len().min(8);
    bytes[..n].copy_from_slice(&key[..n]);
    u64::from_be_bytes(bytes)
}

/// A key for messages: text if it is, hex otherwise.
pub(crate) fn hex(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => bytes.iter().map(|b| format!("{b:02x}")).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redo_records_read_back_and_a_malformed_one_is_named() {
        let mut redo = Redo::default();
        redo.set(Kind::EventId, b"e1", 7);
        redo.remove(Kind::Counted, b"ai1\x1fimpression");
        redo.set(Kind::SessionRate, b"s\x1f60", 3);
        redo.set(Kind::EventId, &[b'x'; MAX_KEY + 1], 1);
        let read: Vec<_> = changes(redo.as_bytes()).collect::<Result<_, _>>().unwrap();
        assert_eq!(
            read,
            vec![
                Change::Set(Kind::EventId, b"e1", 7),
                Change::Remove(Kind::Counted, b"ai1\x1fimpression"),
                Change::Set(Kind::SessionRate, b"s\x1f60", 3),
            ]
        );
        let bytes = redo.as_bytes();
        let cut = &bytes[..bytes.len() - 3];
        let last = changes(cut).last().unwrap();
        assert!(last.unwrap_err().contains("malformed entry at byte"));
        let unknown = [b'z', 1, 0, b'k'];
        assert!(changes(&unknown).next().unwrap().is_err());
        assert_eq!(changes(&[]).count(), 0);
    }

    fn temp() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    /// Applies `changes` as commit `commit`.
    fn commit(d: &Dedup, commit: u64, changes: &[Change<'_>]) {
        let mut redo = Redo::default();
        for change in changes {
            match *change {
                Change::Set(kind, key, value) => redo.set(kind, key, value),
                Change::Remove(kind, key) => redo.remove(kind, key),
            }
        }
        d.apply(commit, redo.as_bytes()).unwrap();
    }

    #[test]
    fn applied_changes_survive_a_reopen_after_a_sync() {
        let dir = temp();
        {
            let d = Dedup::open(dir.path(), 8).unwrap();
            commit(
                &d,
                1,
                &[
                    Change::Set(Kind::EventId, b"e1", 7),
                    Change::Set(Kind::Counted, b"c1", 9),
                ],
            );
            commit(&d, 2, &[Change::Remove(Kind::EventId, b"e1")]);
            d.sync(true).unwrap();
        }
        let d = Dedup::open(dir.path(), 8).unwrap();
        assert_eq!(d.applied(), 2);
        assert_eq!(d.get(Kind::EventId, b"e1").unwrap(), None);
        assert_eq!(d.get(Kind::Counted, b"c1").unwrap(), Some(9));
        assert_eq!(d.get(Kind::Counted, &[b'c'; MAX_KEY + 1]).unwrap(), None);
        assert_eq!(d.count(Kind::Counted).unwrap(), 1);
    }

    #[test]
    fn the_overlay_answers_before_fjall_and_a_spill_keeps_every_change() {
        let dir = temp();
        let d = Dedup::open(dir.path(), 8).unwrap();
        commit(
            &d,
            1,
            &[
                Change::Set(Kind::EventId, b"e1", 7),
                Change::Set(Kind::SessionRate, b"s\x1f60", 1),
            ],
        );
        // In the overlay only: fjall has not seen commit 1.
        assert_eq!(d.applied(), 0);
        assert_eq!(d.get(Kind::EventId, b"e1").unwrap(), Some(7));
        assert_eq!(d.approximate_len(Kind::EventId), 1);
        d.sync(true).unwrap();
        assert_eq!(d.applied(), 1);
        // A removal and a new value in the overlay hide what fjall holds.
        commit(
            &d,
            2,
            &[
                Change::Remove(Kind::EventId, b"e1"),
                Change::Set(Kind::SessionRate, b"s\x1f60", 2),
            ],
        );
        assert_eq!(d.get(Kind::EventId, b"e1").unwrap(), None);
        assert_eq!(d.get(Kind::SessionRate, b"s\x1f60").unwrap(), Some(2));
        // A scan spills first.
        assert_eq!(d.count(Kind::EventId).unwrap(), 0);
        assert_eq!(d.applied(), 2);
        let entries: Vec<_> = d.entries(Kind::SessionRate).map(Result::unwrap).collect();
        assert_eq!(entries, vec![(b"s\x1f60".to_vec(), Ok(2))]);
    }

    /// Applies commit `n`, which records each of `ids` as an event id (value 1).
    fn commit_ids(d: &Dedup, n: u64, ids: &[String]) {
        let changes: Vec<_> = ids
            .iter()
            .map(|id| Change::Set(Kind::EventId, id.as_bytes(), 1))
            .collect();
        commit(d, n, &changes);
    }

    /// Asserts that the event-id filter of `set` holds each of `ids` and that `d` finds each (stored as 1).
    fn finds_all(d: &Dedup, set: &FilterSet, ids: &[String]) {
        let hashes = ids.iter().map(|id| key_hash(id.as_bytes()));
        assert!(hashes.clone().all(|h| set[0].may_contain(h)));
        assert!(
            ids.iter()
                .all(|id| d.get(Kind::EventId, id.as_bytes()).unwrap() == Some(1))
        );
    }

    /// Waits until `d` has a filter in use and none being built.
    fn filters_ready(d: &Dedup) -> Arc<FilterSet> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let filters = d.tree.filters();
            if let (Some(set), None) = (&filters.current, &filters.building) {
                return set.clone();
            }
            drop(filters);
            assert!(Instant::now() < deadline, "no dedup filter after 30 s");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn the_filters_hold_every_key_fjall_holds_whether_spilled_or_scanned() {
        let dir = temp();
        let ids: Vec<String> = (0..500).map(|i| format!("id-{i}")).collect();
        {
            let d = Dedup::open(dir.path(), 8).unwrap();
            filters_ready(&d);
            commit_ids(&d, 1, &ids);
            d.sync(true).unwrap();
            // Committed after the filter was built: added as they were applied, found once in fjall.
            let set = filters_ready(&d);
            finds_all(&d, &set, &ids);
            assert!(!set[0].may_contain(key_hash(b"never-seen")));
            assert_eq!(d.get(Kind::EventId, b"never-seen").unwrap(), None);
            d.close().unwrap();
        }
        // Reopened: the filter is built from fjall's keys.
        let d = Dedup::open(dir.path(), 8).unwrap();
        let set = filters_ready(&d);
        finds_all(&d, &set, &ids);
        assert!(!set[1].may_contain(key_hash(ids[0].as_bytes())));
    }

    #[test]
    fn a_filter_built_while_keys_wait_in_the_overlay_holds_them() {
        let dir = temp();
        let d = Dedup::open(dir.path(), 8).unwrap();
        let ids: Vec<String> = (0..500).map(|i| format!("id-{i}")).collect();
        commit_ids(&d, 1, &ids);
        filters_ready(&d);
        // Not spilled (no second has passed, nothing synced): fjall, and so a new build's snapshot, lacks them.
        assert_eq!(d.overlay().kinds[Kind::EventId as usize].len(), 500);
        assert_eq!(d.part(Kind::EventId).len().unwrap(), 0);
        d.tree.filters().current = None;
        Tree::build_filters_if_due(&d.tree);
        let set = filters_ready(&d);
        finds_all(&d, &set, &ids);
        // Keys applied once a filter is in use go into it at once.
        let more: Vec<String> = (500..600).map(|i| format!("id-{i}")).collect();
        commit_ids(&d, 2, &more);
        finds_all(&d, &set, &more);
    }

    /// The nice value of each of this process's threads named `name`, from `/proc/self/task/*/stat`.
    #[cfg(target_os = "linux")]
    fn nice_of_threads(name: &str) -> Vec<i64> {
        let mut nice = Vec::new();
        for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
            // Fields after the name in parentheses: state is the 3rd field, nice the 19th.
            let fields: Vec<&str> = stat
                .rsplit_once(')')
                .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
            if comm.trim() == name
                && let Some(n) = fields.get(16).and_then(|n| n.parse().ok())
            {
                nice.push(n);
            }
        }
        nice
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_spill_and_fjalls_flush_and_compaction_threads_run_at_background_priority() {
        let dir = temp();
        let d = Dedup::open(dir.path(), 8).unwrap();
        for name in ["dedup-spill", "flusher", "compactor"] {
            // A thread names itself, and the spill thread sets its priority, once it runs.
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut nice = nice_of_threads(name);
            while (nice.is_empty() || nice.contains(&0)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
                nice = nice_of_threads(name);
            }
            assert!(!nice.is_empty(), "no thread named {name}");
            assert!(
                nice.iter().all(|n| *n == i64::from(BACKGROUND_NICE)),
                "{name}: {nice:?}"
            );
        }
        // The caller's thread is left as it was.
        assert_eq!(
            rustix::process::getpriority_process(None).unwrap(),
            0,
            "the opening thread's priority changed"
        );
        d.close().unwrap();
    }

    #[test]
    fn a_full_filter_grows_a_layer_without_a_scan_and_is_rebuilt_into_one_past_the_most_layers() {
        let dir = temp();
        let d = Dedup::open(dir.path(), 8).unwrap();
        filters_ready(&d);
        let first = Arc::new(Kind::ALL.map(|_| Layered::new(100)));
        d.tree.filters().current = Some(first.clone());
        let ids: Vec<String> = (0..150).map(|i| format!("id-{i}")).collect();
        commit_ids(&d, 1, &ids);
        assert!(first[0].is_full() && !first[1].is_full());
        Tree::build_filters_if_due(&d.tree);
        let grown = {
            let filters = d.tree.filters();
            // No scan: nothing is being built, and the grown filter is in use at once.
            assert!(filters.building.is_none());
            filters.current.clone().unwrap()
        };
        assert_eq!(grown[0].layers().len(), 2);
        assert!(Arc::ptr_eq(&grown[0].layers()[1], &first[0].layers()[0]));
        // The kinds that were not full keep their filter as it was.
        assert!(Arc::ptr_eq(&grown[1].layers()[0], &first[1].layers()[0]));
        assert!(grown[0].layers()[0].bytes() >= FILTER_MIN_KEYS * 2);
        finds_all(&d, &grown, &ids);
        let more: Vec<String> = (150..200).map(|i| format!("id-{i}")).collect();
        commit_ids(&d, 2, &more);
        finds_all(&d, &grown, &more);
        assert_eq!(grown[0].layers()[0].added(), 50);

        // A full filter with no room for another layer is built anew from a scan, in one layer.
        let mut crowded = Layered::new(10);
        while crowded.layers().len() < Layered::MAX_LAYERS {
            crowded = crowded.grown(10);
        }
        let crowded = Arc::new([crowded, Layered::new(100), Layered::new(100)]);
        d.tree.filters().current = Some(crowded.clone());
        let last: Vec<String> = (200..220).map(|i| format!("id-{i}")).collect();
        commit_ids(&d, 3, &last);
        Tree::build_filters_if_due(&d.tree);
        let rebuilt = filters_ready(&d);
        assert!(!Arc::ptr_eq(&rebuilt, &crowded));
        assert!(rebuilt.iter().all(|kind| kind.layers().len() == 1));
        finds_all(&d, &rebuilt, &ids);
        finds_all(&d, &rebuilt, &more);
        finds_all(&d, &rebuilt, &last);
    }

    /// Looks `ids` up as a commit's prefetch does, marking the absent ones, and applies them as commit `n`
    /// after `between` ran (what may happen between a prefetch and its apply).
    fn mark_then_commit(d: &Dedup, n: u64, ids: &[String], between: impl FnOnce()) {
        let mut redo = Redo::default();
        {
            let reader = d.reader();
            for id in ids {
                let hash = key_hash(id.as_bytes());
                assert_eq!(
                    reader
                        .get_or_mark(Kind::EventId, id.as_bytes(), hash)
                        .unwrap(),
                    None
                );
                redo.set_hashed(Kind::EventId, id.as_bytes(), hash, 1);
            }
            redo.marked_in(reader.marked());
        }
        between();
        d.apply_hashed(n, &redo.bytes, Some(&redo.hashes), &redo.marked)
            .unwrap();
    }

    #[test]
    fn keys_marked_by_a_prefetch_are_in_whichever_filter_is_in_use_at_the_apply() {
        let dir = temp();
        let d = Dedup::open(dir.path(), 8).unwrap();
        let set = filters_ready(&d);
        // The same filter at the apply: the prefetch's marks are the commit's keys, added once.
        let ids: Vec<String> = (0..500).map(|i| format!("id-{i}")).collect();
        mark_then_commit(&d, 1, &ids, || {});
        finds_all(&d, &set, &ids);
        assert_eq!(set[0].layers()[0].added(), 500);
        // A filter built between the prefetch and the apply lacks the marks (its snapshot and the overlay
        // had none of the keys): the apply adds them to it.
        let more: Vec<String> = (500..600).map(|i| format!("id-{i}")).collect();
        mark_then_commit(&d, 2, &more, || {
            d.tree.filters().current = None;
            Tree::build_filters_if_due(&d.tree);
            filters_ready(&d);
        });
        let rebuilt = filters_ready(&d);
        assert!(!Arc::ptr_eq(&set, &rebuilt));
        finds_all(&d, &rebuilt, &ids);
        finds_all(&d, &rebuilt, &more);
    }

    #[test]
    fn the_spill_writes_keys_in_byte_order_whatever_prefix_they_share() {
        for keys in [
            vec!["run-b", "run-a", "run-ab", "run-", "run-a\u{1f}1", "run-aa"],
            vec!["x", "", "xx", "w", "x\u{0}"],
            vec![
                "same-prefix-long-0001",
                "same-prefix-long-0000",
                "same-prefix-long-00",
            ],
        ] {
            let mut map = OverlayMap::default();
            for key in &keys {
                map.insert(key.as_bytes(), key_hash(key.as_bytes()), Some(1));
            }
            let sorted: Vec<&[u8]> = map.sorted().into_iter().map(|e| map.key(e)).collect();
            let mut expected: Vec<&[u8]> = keys.iter().map(|k| k.as_bytes()).collect();
            expected.sort();
            assert_eq!(sorted, expected);
        }
    }

    #[test]
    fn an_idle_overlay_gives_back_the_maps_sized_for_its_last_busy_second() {
        let dir = temp();
        let d = Dedup::open(dir.path(), 8).unwrap();
        let ids: Vec<String> = (0..1000).map(|i| format!("id-{i}")).collect();
        commit_ids(&d, 1, &ids);
        d.sync(true).unwrap();
        // The next second's maps are sized for this one's keys.
        assert!(d.overlay().kinds[Kind::EventId as usize].capacity() >= 1000);
        // A second without commits, then the committer's idle tick.
        std::thread::sleep(SPILL_EVERY);
        d.sync(false).unwrap();
        assert_eq!(d.overlay().kinds[Kind::EventId as usize].capacity(), 0);
        assert_eq!(d.get(Kind::EventId, b"id-999").unwrap(), Some(1));
    }

    #[test]
    fn an_overlay_lost_before_its_spill_is_what_fjall_lacks() {
        let dir = temp();
        {
            let d = Dedup::open(dir.path(), 8).unwrap();
            commit(&d, 1, &[Change::Set(Kind::Counted, b"c1", 9)]);
            d.sync(true).unwrap();
            commit(&d, 2, &[Change::Set(Kind::Counted, b"c2", 10)]);
            // Dropped without a sync: commit 2 was only in the overlay.
        }
        let d = Dedup::open(dir.path(), 8).unwrap();
        assert_eq!(d.applied(), 1);
        assert_eq!(d.get(Kind::Counted, b"c1").unwrap(), Some(9));
        assert_eq!(d.get(Kind::Counted, b"c2").unwrap(), None);
    }

    #[test]
    fn a_commit_longer_than_a_value_is_recorded_in_several_and_replayed_whole() {
        let dir = temp();
        let db = Database::create(dir.path().join("events.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        super::super::state::create_tables(&txn).unwrap();
        txn.commit().unwrap();
        let ids: Vec<String> = (0..5_000).map(|n| format!("event-{n:06}")).collect();
        let mut redo = Redo::default();
        for id in &ids {
            redo.set(Kind::EventId, id.as_bytes(), 7);
        }
        redo.remove(Kind::Counted, b"gone");
        {
            let d = Dedup::open(&dir.path().join(DIR_NAME), 8).unwrap();
            let txn = db.begin_write().unwrap();
            // Not finished: lost with the process, as if it died right after the redb commit.
            let _after = write_redo(&txn, &d, redo).unwrap();
            txn.commit().unwrap();
        }
        let txn = db.begin_read().unwrap();
        let records: Vec<(u64, usize)> = txn
            .open_table(REDO)
            .unwrap()
            .range(..REDO_TAIL)
            .unwrap()
            .map(|e| {
                let (k, v) = e.unwrap();
                (k.value(), v.value().len())
            })
            .collect();
        assert!(records.len() > 1, "{records:?}");
        assert!(records.iter().all(|r| r.1 <= MAX_VALUE), "{records:?}");
        let numbers: Vec<u64> = records.iter().map(|r| r.0).collect();
        assert_eq!(numbers, (1..=records.len() as u64).collect::<Vec<_>>());
        let last = txn
            .open_table(super::super::state::META)
            .unwrap()
            .get(META_COMMIT)
            .unwrap()
            .map(|v| v.value());
        assert_eq!(last, Some(records.len() as i64));
        drop(txn);

        let d = Dedup::open(&dir.path().join(DIR_NAME), 8).unwrap();
        assert_eq!(d.catch_up(&db).unwrap(), records.len() as u64);
        assert_eq!(d.applied(), records.len() as u64);
        for id in [&ids[0], &ids[2_500], &ids[4_999]] {
            assert_eq!(
                d.get(Kind::EventId, id.as_bytes()).unwrap(),
                Some(7),
                "{id}"
            );
        }
        assert_eq!(d.count(Kind::EventId).unwrap(), 5_000);
    }
}
