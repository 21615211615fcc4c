//! The way out of a damaged store: [`verify`] names the damage (table, key, reason) and [`export`] salvages
//! what still decodes (the counted keys and the billing ledger, as JSON lines). Both work on a copy of the file,
//! so they run against a stopped store, a backup, or a serving store's file without touching it (see
//! `docs/store-operations.md`).
//!
//! redb checks page checksums only when it repairs a file; a cleanly closed file is read as is. So [`verify`]
//! does both: it asks redb for a full integrity check (on one copy) and decodes every entry of every table (on
//! another), the way the store reads them. A panic inside redb on a mangled page is caught and reported as
//! damage of the table being read.

use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use redb::{Database, ReadTransaction, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::Serialize;

use super::FILE_NAME;
use super::dedup::{self, DIR_NAME, Dedup, Kind, REDO};
use super::state::{
    self, AUCTIONS, COUNTED, DELIVERY, DEMAND, EVENT_IDS, EXPIRY, EXPIRY_BATCHES, FREQUENCY,
    FREQUENCY_EXPIRY, LEDGER, LEDGER_CORRECTIONS, LOG, LOG_CHUNKS, LOG_MINUTES, META, OLD_COUNTED,
    OLD_EVENT_IDS, OLD_SESSION_RATE, QUARANTINE, SESSION_RATE, WINDOWS,
};
use crate::log::decode_record;
use crate::reports::build_ledger;
use crate::{Error, Result};

/// One damaged entry (or table, or file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Damage {
    /// The table (`file` when the damage is below the tables).
    pub table: String,
    /// The entry's key, printed (`None` for a whole table or the file).
    pub key: Option<String>,
    /// What is wrong.
    pub reason: String,
}

/// What [`verify`] found.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    /// Size of the file.
    pub file_bytes: u64,
    /// Whether redb's integrity check (page checksums, allocator state) passed without repair.
    pub checksums_ok: bool,
    /// Entries read per table.
    pub tables: Vec<(String, u64)>,
    /// Everything that did not decode.
    pub damage: Vec<Damage>,
}

impl Report {
    /// Whether nothing is damaged.
    pub fn is_clean(&self) -> bool {
        self.checksums_ok && self.damage.is_empty()
    }
}

/// What [`export`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Exported {
    /// Counted (billing dedup) keys.
    pub counted: u64,
    /// Ledger rows (originals with their corrections).
    pub ledger_rows: u64,
    /// Entries skipped because they did not decode.
    pub skipped: u64,
}

/// A copy of a store file in a fresh temporary directory, removed on drop.
struct Copy {
    dir: PathBuf,
}

impl Copy {
    fn of(store_dir: &Path) -> Result<Self> {
        let source = store_dir.join(FILE_NAME);
        let dir = std::env::temp_dir().join(format!(
            "interlude-verify-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        let io = |what: String| move |source| Error::Io { what, source };
        std::fs::create_dir_all(&dir).map_err(io(format!("creating {}", dir.display())))?;
        let copy = Copy { dir };
        std::fs::copy(&source, copy.file()).map_err(io(format!("copying {}", source.display())))?;
        let dedup = store_dir.join(DIR_NAME);
        if dedup.is_dir() {
            copy_dir(&dedup, &copy.dedup_dir())
                .map_err(io(format!("copying {}", dedup.display())))?;
        }
        Ok(copy)
    }

    fn file(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }

    fn dedup_dir(&self) -> PathBuf {
        self.dir.join(DIR_NAME)
    }

    /// The copy's dedup state brought up to its file (`None`: the store has none, an older version's file);
    /// an error says why it cannot be read.
    fn open_dedup(&self, db: &Database) -> std::result::Result<Option<Dedup>, String> {
        if !self.dedup_dir().is_dir() {
            return Ok(None);
        }
        catch_unwind(AssertUnwindSafe(|| -> Result<Dedup> {
            let dedup = Dedup::open(&self.dedup_dir(), 16)?;
            dedup.catch_up(db)?;
            Ok(dedup)
        }))
        .map_err(|_| "fjall panicked opening it".to_owned())?
        .map(Some)
        .map_err(|e| e.to_string())
    }

    fn open(&self) -> std::result::Result<Database, String> {
        catch_unwind(|| {
            Database::builder()
                .set_cache_size(16 << 20)
                .open(self.file())
        })
        .map_err(|_| "redb panicked opening the file".to_owned())?
        .map_err(|e| e.to_string())
    }
}

/// Copies directory `from` to `to`, recursively. A serving store's LSM tree replaces files as it compacts:
/// a copy that finds a file gone starts again, a few times.
fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    fn once(from: &Path, to: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(to)?;
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            let dest = to.join(entry.file_name());
            if entry.file_type()?.is_dir() {
                once(&entry.path(), &dest)?;
            } else {
                std::fs::copy(entry.path(), dest)?;
            }
        }
        Ok(())
    }
    let mut tries = 0;
    loop {
        match once(from, to) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && tries < 5 => {
                tries += 1;
                let _ = std::fs::remove_dir_all(to);
            }
            done => return done,
        }
    }
}

impl Drop for Copy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn file_damage(reason: String) -> Damage {
    Damage {
        table: "file".into(),
        key: None,
        reason,
    }
}

/// Checks the store in `store_dir`: redb's integrity check, then every entry of every table decoded as the
/// store reads it. Never modifies the store (it works on copies).
pub fn verify(store_dir: &Path) -> Result<Report> {
    let mut report = Report {
        file_bytes: std::fs::metadata(store_dir.join(FILE_NAME))
            .map_err(|source| Error::Io {
                what: format!("reading {}", store_dir.join(FILE_NAME).display()),
                source,
            })?
            .len(),
        ..Report::default()
    };
    {
        let copy = Copy::of(store_dir)?;
        match copy.open() {
            Ok(mut db) => match catch_unwind(AssertUnwindSafe(|| db.check_integrity())) {
                Ok(Ok(true)) => report.checksums_ok = true,
                Ok(Ok(false)) => report.damage.push(file_damage(
                    "integrity check failed; redb could repair a copy (from the previous commit)"
                        .into(),
                )),
                Ok(Err(e)) => report
                    .damage
                    .push(file_damage(format!("integrity check: {e}"))),
                Err(_) => report
                    .damage
                    .push(file_damage("redb panicked checking integrity".into())),
            },
            Err(e) => report.damage.push(file_damage(format!("open: {e}"))),
        }
    }
    let copy = Copy::of(store_dir)?;
    let db = match copy.open() {
        Ok(db) => db,
        Err(e) => {
            report.damage.push(file_damage(format!("open: {e}")));
            return Ok(report);
        }
    };
    let txn = db.begin_read()?;
    let mut scan = Scan {
        txn: &txn,
        report: &mut report,
    };
    scan.table(LOG, "log", |k, v| {
        decode_record(v).map(|_| ()).map_err(|e| (k.to_string(), e))
    });
    // The chunks' records count as the log's, and a damaged record is named in the log by its sequence number,
    // as above (a chunk whose layout is damaged is named by its key).
    let (mut chunk_records, mut bad) = (0u64, Vec::new());
    scan.table(LOG_CHUNKS, "log_chunks", |k, v| {
        let records = state::log_chunk_records(v).map_err(|e| (format!("chunk {k}"), e))?;
        chunk_records += records.len() as u64;
        for (seq, record) in (k..).zip(records) {
            if let Err(e) = decode_record(record) {
                bad.push(Damage {
                    table: "log".into(),
                    key: Some(seq.to_string()),
                    reason: e,
                });
            }
        }
        Ok(())
    });
    scan.report.damage.append(&mut bad);
    if let Some((_, n)) = scan.report.tables.iter_mut().find(|(t, _)| t == "log") {
        *n += chunk_records;
    }
    for (table, name) in [
        (QUARANTINE, "quarantine"),
        (LEDGER_CORRECTIONS, "ledger_corrections"),
    ] {
        scan.table(table, name, |k, v| {
            let parsed = if name == "quarantine" {
                serde_json::from_slice::<serde_json::Value>(v)
                    .map_err(|e| e.to_string())
                    .and_then(|j| match j["reason"]["reason"].as_str() {
                        Some(_) => Ok(()),
                        None => Err("no reason".into()),
                    })
            } else {
                state::decode_correction(v)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            };
            parsed.map_err(|e| (k.to_string(), e))
        });
    }
    let check_key = |name: &str, k: &str| {
        if k.is_empty() || k.contains(char::is_control) && name == "event_ids" {
            Err((format!("{k:?}"), "not a valid id".into()))
        } else {
            Ok(())
        }
    };
    for (table, name) in [(EVENT_IDS, "event_ids"), (COUNTED, "counted")] {
        scan.table(table, name, |k, _| match std::str::from_utf8(k) {
            Ok(k) => check_key(name, k),
            Err(_) => Err((hex(k), "key not UTF-8".into())),
        });
    }
    // A file no version with byte-string keys has opened yet (a backup, a stopped old store).
    for (table, name) in [(OLD_EVENT_IDS, "event_ids"), (OLD_COUNTED, "counted")] {
        scan.table(table, name, |k, _| check_key(name, k));
    }
    scan.table(WINDOWS, "windows", |k, v| {
        state::decode_window_key(k)
            .and_then(|_| state::decode_counts(v))
            .map(|_| ())
            .map_err(|e| (hex(k), e.to_string()))
    });
    for (table, name) in [(LEDGER, "ledger"), (DELIVERY, "delivery")] {
        scan.table(table, name, |k, v| {
            state::decode_ledger_key(k)
                .and_then(|_| state::decode_counts(v))
                .map(|_| ())
                .map_err(|e| (hex(k), e.to_string()))
        });
    }
    scan.table(FREQUENCY, "frequency", |k, _| match k.len() {
        0..9 => Err((hex(k), "short key".into())),
        _ => Ok(()),
    });
    scan.table(
        SESSION_RATE,
        "session_rate",
        |k, _| match std::str::from_utf8(k) {
            Ok(_) => Ok(()),
            Err(_) => Err((hex(k), "key not UTF-8".into())),
        },
    );
    scan.table(OLD_SESSION_RATE, "session_rate", |_, _| Ok(()));
    scan.table(META, "meta", |_, _| Ok(()));
    for (table, name) in [(EXPIRY, "expiry"), (FREQUENCY_EXPIRY, "frequency_expiry")] {
        scan.table(table, name, |k, ()| match k.len() {
            0..9 => Err((hex(k), "short key".into())),
            _ => Ok(()),
        });
    }
    scan.table(LOG_MINUTES, "log_minutes", |_, _| Ok(()));
    scan.table(DEMAND, "demand", |k, v| {
        state::decode_demand_key("demand", k)
            .and_then(|_| state::decode_delivered(v))
            .map(|_| ())
            .map_err(|e| (hex(k), e.to_string()))
    });
    scan.table(AUCTIONS, "auctions", |k, v| {
        state::decode_demand_key("auctions", k)
            .and_then(|_| state::decode_auctions(v))
            .map(|_| ())
            .map_err(|e| (hex(k), e.to_string()))
    });
    scan.table(EXPIRY_BATCHES, "expiry_batches", |k, v| {
        match (k.len(), state::expiry_entries(v)) {
            (16, Some(_)) => Ok(()),
            (16, None) => Err((hex(k), "malformed key list".into())),
            _ => Err((hex(k), "key is not hour and sequence".into())),
        }
    });
    scan.table(REDO, "dedup_redo", |k, v| {
        match dedup::changes(v).find_map(std::result::Result::err) {
            None => Ok(()),
            Some(e) => Err((k.to_string(), e)),
        }
    });
    drop(txn);
    match copy.open_dedup(&db) {
        Ok(Some(dedup)) => verify_dedup(&dedup, &mut report),
        Ok(None) => {}
        Err(e) => report.damage.push(Damage {
            table: DIR_NAME.into(),
            key: None,
            reason: e,
        }),
    }
    // One line per table name: a table read in two formats (an older file's and its successor) is one table.
    let mut merged: Vec<(String, u64)> = Vec::new();
    for (name, n) in report.tables.drain(..) {
        match merged.iter_mut().find(|(m, _)| *m == name) {
            Some((_, total)) => *total += n,
            None => merged.push((name, n)),
        }
    }
    report.tables = merged;
    Ok(report)
}

/// Reads every key of the dedup state, checking each as [`Scan::table`] checks redb's.
fn verify_dedup(dedup: &Dedup, report: &mut Report) {
    for kind in Kind::ALL {
        let mut entries = 0u64;
        let name = kind.name();
        let outcome = catch_unwind(AssertUnwindSafe(|| -> std::result::Result<(), String> {
            for entry in dedup.entries(kind) {
                let (key, value) = entry.map_err(|e| format!("after {entries} entries: {e}"))?;
                entries += 1;
                let damage = |reason: String| Damage {
                    table: name.into(),
                    key: Some(dedup::hex(&key)),
                    reason,
                };
                match (std::str::from_utf8(&key), value) {
                    (_, Err(len)) => report
                        .damage
                        .push(damage(format!("value is {len} bytes, not 8"))),
                    (Err(_), _) => report.damage.push(damage("key not UTF-8".into())),
                    (Ok(k), _)
                        if k.is_empty() || !k.contains('\u{1f}') && kind != Kind::EventId =>
                    {
                        report.damage.push(damage("not a valid key".into()));
                    }
                    _ => {}
                }
            }
            Ok(())
        }));
        record_scan(report, name, entries, outcome, "fjall");
    }
}

/// Records a scan of table `name` that read `entries` and ended with `outcome` (an error, or a panic of
/// `engine`, is damage of the whole table).
fn record_scan(
    report: &mut Report,
    name: &str,
    entries: u64,
    outcome: std::thread::Result<std::result::Result<(), String>>,
    engine: &str,
) {
    let failure = match outcome {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e),
        Err(_) => Some(format!(
            "{engine} panicked reading it after {entries} entries"
        )),
    };
    if let Some(reason) = failure {
        report.damage.push(Damage {
            table: name.to_owned(),
            key: None,
            reason,
        });
    }
    report.tables.push((name.to_owned(), entries));
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

struct Scan<'a> {
    txn: &'a ReadTransaction,
    report: &'a mut Report,
}

impl Scan<'_> {
    /// Reads every entry of `table`, checking each with `check`; a table that cannot be read, or whose
    /// reading panics, is damage of the whole table.
    fn table<K, V>(
        &mut self,
        table: TableDefinition<K, V>,
        name: &str,
        mut check: impl FnMut(
            K::SelfType<'_>,
            V::SelfType<'_>,
        ) -> std::result::Result<(), (String, String)>,
    ) where
        K: redb::Key + 'static,
        V: redb::Value + 'static,
    {
        let (txn, report) = (self.txn, &mut *self.report);
        let mut entries = 0u64;
        let outcome = catch_unwind(AssertUnwindSafe(|| -> std::result::Result<(), String> {
            let t = match txn.open_table(table) {
                Ok(t) => t,
                // A table this version of the store never wrote (an older file): nothing to check.
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
                Err(e) => return Err(e.to_string()),
            };
            let expected = t.len().map_err(|e| e.to_string())?;
            for entry in t.iter().map_err(|e| e.to_string())? {
                let (k, v) = entry.map_err(|e| format!("after {entries} entries: {e}"))?;
                entries += 1;
                if let Err((key, reason)) = check(k.value(), v.value()) {
                    report.damage.push(Damage {
                        table: name.to_owned(),
                        key: Some(key),
                        reason,
                    });
                }
            }
            if entries != expected {
                return Err(format!("{entries} entries read, the table says {expected}"));
            }
            Ok(())
        }));
        record_scan(report, name, entries, outcome, "redb");
    }
}

/// Writes what still decodes of the store in `store_dir` to `out` as JSON lines: one
/// `{"kind":"counted","ad_instance_id":…,"event_type":…,"occurred_at":…}` per billing dedup key, then one
/// `{"kind":"ledger",…}` per ledger row (a [`crate::LedgerRow`], unpriced). Damaged entries are skipped and
/// counted. Works on a copy of the file.
pub fn export(store_dir: &Path, out: &mut dyn Write) -> Result<Exported> {
    let copy = Copy::of(store_dir)?;
    let db = copy.open().map_err(|e| Error::Corrupt {
        table: "file",
        reason: e,
    })?;
    let txn = db.begin_read()?;
    let mut done = Exported::default();
    let io = |source| Error::Io {
        what: "writing the export".into(),
        source,
    };
    let mut line = |value: serde_json::Value| -> Result<()> {
        serde_json::to_writer(&mut *out, &value).map_err(|e| io(e.into()))?;
        out.write_all(b"\n").map_err(io)
    };
    let mut counted = |key: Option<&str>, at: i64| -> Result<()> {
        let Some((instance, kind)) = key.and_then(|k| k.rsplit_once('\u{1f}')) else {
            done.skipped += 1;
            return Ok(());
        };
        line(serde_json::json!({
            "kind": "counted",
            "ad_instance_id": instance,
            "event_type": kind,
            "occurred_at": chrono::DateTime::from_timestamp(at, 0),
        }))?;
        done.counted += 1;
        Ok(())
    };
    match copy.open_dedup(&db) {
        Ok(Some(dedup)) => {
            for entry in dedup.entries(Kind::Counted) {
                match entry {
                    Ok((k, Ok(v))) => counted(std::str::from_utf8(&k).ok(), v as i64)?,
                    Ok((_, Err(_))) | Err(_) => counted(None, 0)?,
                }
            }
        }
        Ok(None) => {}
        Err(e) => {
            return Err(Error::Corrupt {
                table: "dedup",
                reason: e,
            });
        }
    }
    // A file written by a version that kept the dedup keys in redb, not opened since, holds them there.
    if let Some(table) = optional(txn.open_table(COUNTED))? {
        for entry in table.iter()? {
            match entry {
                Ok((k, v)) => counted(std::str::from_utf8(k.value()).ok(), v.value())?,
                Err(_) => counted(None, 0)?,
            }
        }
    }
    if let Some(table) = optional(txn.open_table(OLD_COUNTED))? {
        for entry in table.iter()? {
            match entry {
                Ok((k, v)) => counted(Some(k.value()), v.value())?,
                Err(_) => counted(None, 0)?,
            }
        }
    }
    let mut originals = Vec::new();
    for entry in txn.open_table(LEDGER)?.iter()? {
        match entry.map_err(Error::from).and_then(|(k, v)| {
            Ok((
                state::decode_ledger_key(k.value())?,
                state::decode_counts(v.value())?,
            ))
        }) {
            Ok(row) => originals.push(row),
            Err(_) => done.skipped += 1,
        }
    }
    let mut corrections = Vec::new();
    for entry in txn.open_table(LEDGER_CORRECTIONS)?.iter()? {
        match entry
            .map_err(Error::from)
            .and_then(|(_, v)| state::decode_correction(v.value()))
        {
            Ok((li, hour, counts)) => corrections.push(((li, hour), counts)),
            Err(_) => done.skipped += 1,
        }
    }
    let unpriced = std::collections::BTreeMap::<String, u64>::new();
    for row in build_ledger(originals, corrections, &unpriced) {
        let mut value = serde_json::to_value(&row).map_err(|source| Error::Encode {
            what: "ledger row",
            source,
        })?;
        if let Some(o) = value.as_object_mut() {
            o.insert("kind".into(), "ledger".into());
        }
        line(value)?;
        done.ledger_rows += 1;
    }
    Ok(done)
}

/// A table of a read transaction, or `None` if the file has none.
fn optional<T>(opened: std::result::Result<T, redb::TableError>) -> Result<Option<T>> {
    match opened {
        Ok(t) => Ok(Some(t)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
