//! Reading the embedded store's log from a copy of its file ([`LogSnapshot`]): a replay or an export never
//! opens (or locks) the production store, which a serving process holds.

use std::path::{Path, PathBuf};

use redb::Database;

use super::state::{LOG, LOG_CHUNKS, log_chunk_records};
use crate::log::{LogReader, Logged, decode_record};
use crate::{Error, Result};

/// The log of an embedded store as it was when the snapshot was opened.
pub struct LogSnapshot {
    db: Option<Database>,
    copy: PathBuf,
    next: u64,
}

impl std::fmt::Debug for LogSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogSnapshot")
            .field("copy", &self.copy)
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

impl LogSnapshot {
    /// Copies the store file of `store_dir` to a temporary directory and opens the copy.
    pub fn open(store_dir: &Path) -> Result<Self> {
        let source = store_dir.join("events.redb");
        let copy = std::env::temp_dir().join(format!(
            "interlude-log-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        let io = |what: String| move |source| Error::Io { what, source };
        std::fs::create_dir_all(&copy).map_err(io(format!("creating {}", copy.display())))?;
        std::fs::copy(&source, copy.join("events.redb"))
            .map_err(io(format!("copying {}", source.display())))?;
        let db = Database::open(copy.join("events.redb"))?;
        Ok(LogSnapshot {
            db: Some(db),
            copy,
            next: 0,
        })
    }
}

impl LogReader for LogSnapshot {
    /// Records in log order: a store's per-event entries ([`LOG`], written before chunks; their sequence
    /// numbers are lower), then its chunks. An undecodable record is an error: this node wrote the file, so
    /// the store is damaged.
    fn read(&mut self, max: usize) -> Result<Vec<Logged>> {
        let Some(db) = &self.db else {
            return Ok(Vec::new());
        };
        let txn = db.begin_read()?;
        let corrupt = |seq: u64, reason: String| Error::Corrupt {
            table: "log",
            reason: format!("record {seq}: {reason}"),
        };
        let mut out = Vec::new();
        // A store written before chunks existed has no chunk table until this version opens it for writing.
        if let Some(table) = open_optional(&txn, LOG)? {
            for entry in table.range(self.next..)?.take(max) {
                let (seq, value) = entry?;
                let seq = seq.value();
                let record = decode_record(value.value()).map_err(|r| corrupt(seq, r))?;
                out.push((i64::try_from(seq).unwrap_or(i64::MAX), Ok(record)));
                self.next = seq + 1;
            }
        }
        let Some(chunks) = open_optional(&txn, LOG_CHUNKS)? else {
            return Ok(out);
        };
        // The chunk holding `next` starts at or before it.
        let from = chunks
            .range(..=self.next)?
            .next_back()
            .transpose()?
            .map_or(self.next, |(k, _)| k.value());
        for entry in chunks.range(from..)? {
            if out.len() >= max {
                break;
            }
            let (first, value) = entry?;
            let first = first.value();
            let records = log_chunk_records(value.value()).map_err(|r| corrupt(first, r))?;
            for (seq, bytes) in (first..).zip(records) {
                if seq < self.next {
                    continue;
                }
                if out.len() >= max {
                    break;
                }
                let record = decode_record(bytes).map_err(|r| corrupt(seq, r))?;
                out.push((i64::try_from(seq).unwrap_or(i64::MAX), Ok(record)));
                self.next = seq + 1;
            }
        }
        Ok(out)
    }
}

impl Drop for LogSnapshot {
    fn drop(&mut self) {
        // The database must be closed before its file is removed.
        drop(self.db.take());
        let _ = std::fs::remove_dir_all(&self.copy);
    }
}

/// `table`, or `None` if this file has none.
fn open_optional<K: redb::Key + 'static, V: redb::Value + 'static>(
    txn: &redb::ReadTransaction,
    table: redb::TableDefinition<K, V>,
) -> Result<Option<redb::ReadOnlyTable<K, V>>> {
    match txn.open_table(table) {
        Ok(t) => Ok(Some(t)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
