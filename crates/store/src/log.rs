//! The event log seam: where the collector and the stitcher's beacons append events ([`EventLog`]), and how
//! the log is read back ([`LogReader`]). Embedded, the log is the redb store behind the group committer
//! (events are processed as they are committed); distributed, it is a Kafka topic that processors consume
//! (see `crate::kafka`).
//!
//! Committing a consumer's position is deliberately not part of the reader: exactly-once needs the offset
//! committed in the same transaction as the state it produced (PostgreSQL's `log_offsets`, see `crate::pg`),
//! so the offset belongs to the consumer's state store, and a log-level commit would only be a start hint.

use interlude_events::contract::AdEvent;
use interlude_events::{Envelope, Outcome, Quarantine};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

use interlude_events::BoxFuture;

/// Appends events durably.
pub trait EventLog: Send + Sync {
    /// Appends `batch`; `Ok` only once every event is durable. The outcomes are final for the embedded log
    /// (processed in the same commit) and [`Outcome::Logged`] or a stateless quarantine verdict for a
    /// distributed one.
    fn append(&self, batch: Vec<Envelope>) -> BoxFuture<'_, Result<Vec<Outcome>, SubmitError>>;
}

/// Why a batch was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The queue is full: try again later.
    #[error("event store busy")]
    Busy,
    /// The writer has stopped.
    #[error("event store stopped")]
    Stopped,
    /// The commit failed: nothing of the batch was stored.
    #[error(transparent)]
    Store(#[from] Error),
}

/// One record of the distributed event log (message value, JSON): the contract's event and the collector's
/// verdict on the checks that need the sender's user agent and address, which are never logged (data
/// minimisation). The message key is the event's `ad_instance_id`, so every report of one ad instance lands in
/// one partition and its billing dedup is owned by one processor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogRecord {
    /// The event as the collector received it (`received_at` stamped).
    pub event: AdEvent,
    /// Why the edge checks (bot user agent, data-center address) rejected it, if they did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edge: Option<Quarantine>,
}

/// One record read back from the log: its offset, and the record or why it could not be decoded.
pub type Logged = (i64, Result<LogRecord, String>);

/// Reads a log back in order, from its start to the end it had when the reader was opened (a replay, an
/// export). Synchronous: both backends' readers block (a redb read transaction, a polling consumer), and
/// their callers are command-line tools.
pub trait LogReader: Send {
    /// The next records, at most `max`, each with its offset (or why it could not be decoded); empty once
    /// the reader has reached the end.
    fn read(&mut self, max: usize) -> Result<Vec<Logged>>;
}

/// Decodes one stored log value: a [`LogRecord`] in the embedded store's compact form ([`crate::compact`]) or as
/// JSON, or a bare event from logs written before log records.
pub fn decode_record(bytes: &[u8]) -> Result<LogRecord, String> {
    if crate::compact::is_compact(bytes) {
        return crate::compact::decode(bytes);
    }
    match serde_json::from_slice::<LogRecord>(bytes) {
        Ok(r) => Ok(r),
        Err(first) => serde_json::from_slice::<AdEvent>(bytes)
            .map(|event| LogRecord { event, edge: None })
            .map_err(|_| first.to_string()),
    }
}
