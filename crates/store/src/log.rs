//! The event log seam: where the collector and the stitcher's beacons append events. Embedded, the log is the
//! redb store behind the group committer (events are processed as they are committed); distributed, it is a
//! Kafka topic that processors consume (see [`crate::kafka`]).

use interlude_events::contract::AdEvent;
use interlude_events::{Envelope, Outcome, Quarantine};
use serde::{Deserialize, Serialize};

use crate::committer::{Committer, SubmitError};

/// A boxed future, so logs can be trait objects.
pub use interlude_events::BoxFuture;

/// Appends events durably.
pub trait EventLog: Send + Sync {
    /// Appends `batch`; `Ok` only once every event is durable. The outcomes are final for the embedded log
    /// (processed in the same commit) and [`Outcome::Logged`] or a stateless quarantine verdict for a
    /// distributed one.
    fn append(&self, batch: Vec<Envelope>) -> BoxFuture<'_, Result<Vec<Outcome>, SubmitError>>;
}

impl EventLog for Committer {
    fn append(&self, batch: Vec<Envelope>) -> BoxFuture<'_, Result<Vec<Outcome>, SubmitError>> {
        Box::pin(self.submit(batch))
    }
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
