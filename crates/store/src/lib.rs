//! Where the event pipeline, the stitcher and the decision engine keep what must outlive a request: the only
//! crate that talks to a database. Its root holds the seams, one trait per kind of state; each backend lives
//! in its own folder behind a Cargo feature, and one conformance suite per trait runs every backend.
//!
//! | seam | what | backends |
//! |---|---|---|
//! | [`EventLog`] / [`LogReader`] | append events durably; read them back from an offset and commit it | [`embedded`] (redb, group commit), [`kafka`] |
//! | [`ReportStore`] | reports, the billing ledger, the quarantine, erasure and retention | [`embedded`], [`pg`] |
//! | [`Counters`] (from the event core) | pacing and frequency counts the decision engine reads | [`embedded`], [`redis`] |
//! | `Reservations` (from the decision core) | impressions decided, not yet delivered, held against goals and caps | the core's in-memory book, [`redis`] |
//! | [`SessionShare`] | sessions and their break decisions shared by every node (opaque JSON) | [`MemorySessionShare`], [`redis`] |
//! | [`CatalogStore`] | the versioned catalog document, compare-and-set | [`pg`] (the file is the server's) |
//! | [`ControlsBus`] | operator controls published to every node | [`redis`] |
//!
//! Features: `embedded` (default: the one-process store), `kafka` (rdkafka, builds librdkafka), `postgres`
//! (tokio-postgres, refinery), `redis`. A build with only `embedded` compiles none of the distributed
//! clients; the binary enables all of them.
//!
//! ```
//! # fn main() -> Result<(), interlude_store::Error> {
//! use interlude_store::{EventStore, ReportStore};
//! let dir = tempfile::tempdir().map_err(|e| interlude_store::Error::Io { what: "tempdir".into(), source: e })?;
//! let store = EventStore::open(dir.path(), interlude_events::Policy::default())?;
//! let _reports: &dyn ReportStore = &store;
//! # Ok(())
//! # }
//! ```

mod applied;
pub mod compact;
pub mod config;
#[cfg(feature = "embedded")]
pub mod embedded;
mod error;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod log;
mod memory;
pub mod metrics;
#[cfg(feature = "postgres")]
pub mod pg;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "embedded")]
pub mod replay;
pub mod reports;
mod seams;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use applied::{Applied, OnCounted};
pub use config::{DistributedConfig, EmbeddedConfig, KafkaConfig};
#[cfg(feature = "embedded")]
pub use embedded::committer::{self, Committer, Sink};
#[cfg(feature = "embedded")]
pub use embedded::{EventStore, Health, LogSnapshot, Observed, Opened, StoreStats};
pub use error::{Error, Result};
pub use interlude_events::{BoxFuture, Counters};
pub use log::{EventLog, LogReader, LogRecord, Logged, SubmitError};
pub use memory::MemorySessionShare;
pub use reports::{
    Compacted, DemandGroupBy, DemandRow, Forgotten, GroupBy, LedgerRow, ReportRow,
    build_demand_report, build_ledger, build_report,
};
pub use seams::{CatalogStore, ControlsBus, ReportStore, SessionShare};
