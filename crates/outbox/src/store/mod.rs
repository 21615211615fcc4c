//! The queue behind the outbox: the [`OutboxStore`] seam, its embedded implementation ([`RedbStore`]) and,
//! with the `postgres` feature, a PostgreSQL one (`PgStore`, `FOR UPDATE SKIP LOCKED`) for several server
//! processes sharing one queue.
//!
//! The contract every implementation keeps (checked by the `conformance` suite):
//! - [`OutboxStore::enqueue`] remembers each pixel's [`crate::DedupKey`]; a key seen before (queued, delivered
//!   or dead, until pruned) enqueues nothing and answers [`Enqueued::Duplicate`]. A pixel reported queued is
//!   durable when the call returns.
//! - [`OutboxStore::lease`] hands out pixels whose due time has come, earliest first, and hides each for the
//!   lease duration by moving its due time: a pixel whose sender died is handed out again once the lease has
//!   run out (at-least-once delivery). Two concurrent leases never hand out the same pixel.
//! - [`OutboxStore::complete`] applies what became of sent pixels: delivered (removed), retry later (attempts
//!   and error kept), deferred (put back, attempts unchanged), dead (moved to the dead letters without viewer
//!   data). Completions may be lost in a crash: the pixel is then sent again, never lost.
//!
//! Times are milliseconds since the Unix epoch; callers pass `now`, so the suite controls the clock.

#[cfg(any(test, feature = "testing"))]
pub mod conformance;
#[cfg(feature = "postgres")]
mod pg;
mod redb;

use std::future::Future;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::pixel::Pixel;

#[cfg(feature = "postgres")]
pub use pg::PgStore;
pub use redb::RedbStore;

/// What became of one enqueued pixel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    /// Queued under this id.
    Queued(u64),
    /// Its key was seen before: nothing queued.
    Duplicate,
}

/// A pixel handed out to be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leased {
    /// The queue's id of the pixel.
    pub id: u64,
    /// The pixel.
    pub pixel: Pixel,
    /// Sends already attempted (0 the first time).
    pub attempts: u32,
}

/// What became of a sent (or put back) pixel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A definitive answer: remove it.
    Delivered {
        /// The pixel's id.
        id: u64,
    },
    /// Failed, to be sent again at `due`.
    Retry {
        /// The pixel's id.
        id: u64,
        /// Sends attempted so far, this one included.
        attempts: u32,
        /// When to send again.
        due: SystemTime,
        /// Why this send failed.
        error: String,
    },
    /// Not sent (its host was saturated): put back until `due`, attempts unchanged.
    Defer {
        /// The pixel's id.
        id: u64,
        /// When to try again.
        due: SystemTime,
    },
    /// Given up: moved to the dead letters (viewer data removed).
    Dead {
        /// The pixel's id.
        id: u64,
        /// The pixel (stored without its device data).
        pixel: Box<Pixel>,
        /// Sends attempted.
        attempts: u32,
        /// Why it was given up.
        reason: String,
    },
}

impl Outcome {
    /// The id of the pixel concerned.
    pub fn id(&self) -> u64 {
        match self {
            Outcome::Delivered { id }
            | Outcome::Retry { id, .. }
            | Outcome::Defer { id, .. }
            | Outcome::Dead { id, .. } => *id,
        }
    }
}

/// A pixel given up on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadLetter {
    /// The id it had in the queue.
    pub id: u64,
    /// The pixel, without device data.
    pub pixel: Pixel,
    /// Sends attempted.
    pub attempts: u32,
    /// Why it was given up (`HTTP 404`, `refused: …`, `5 attempts, last: HTTP 503`).
    pub reason: String,
    /// When, in milliseconds since the epoch.
    pub at_ms: u64,
}

/// What [`OutboxStore::prune`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Deduplication keys forgotten.
    pub keys: u64,
    /// Dead letters removed.
    pub dead: u64,
}

/// The queue of pixels to fire. See the module documentation for the contract.
pub trait OutboxStore: Send + Sync + 'static {
    /// Queues `pixels` (due now) unless their key was seen; one answer per pixel, in order. Durable on return.
    fn enqueue(
        &self,
        pixels: Vec<Pixel>,
        now: SystemTime,
    ) -> impl Future<Output = Result<Vec<Enqueued>>> + Send;

    /// Up to `limit` pixels due at `now`, earliest first, each hidden for `lease`.
    fn lease(
        &self,
        now: SystemTime,
        limit: usize,
        lease: Duration,
    ) -> impl Future<Output = Result<Vec<Leased>>> + Send;

    /// Applies `outcomes` (ids no longer queued are ignored).
    fn complete(
        &self,
        outcomes: Vec<Outcome>,
        now: SystemTime,
    ) -> impl Future<Output = Result<()>> + Send;

    /// The earliest due time in the queue, if any (leased pixels count at their lease's end).
    fn next_due(&self) -> impl Future<Output = Result<Option<SystemTime>>> + Send;

    /// Pixels in the queue (leased ones included).
    fn depth(&self) -> impl Future<Output = Result<u64>> + Send;

    /// Up to `limit` dead letters, oldest id first.
    fn dead_letters(&self, limit: usize) -> impl Future<Output = Result<Vec<DeadLetter>>> + Send;

    /// Forgets deduplication keys enqueued before `keys_before` and dead letters from before `dead_before`.
    fn prune(
        &self,
        keys_before: SystemTime,
        dead_before: SystemTime,
    ) -> impl Future<Output = Result<Pruned>> + Send;
}

/// Milliseconds since the epoch (0 before it).
pub(crate) fn millis(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The time `ms` milliseconds after the epoch.
pub(crate) fn from_millis(ms: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(ms)
}

/// What is stored per queued pixel.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Record {
    pub(crate) pixel: Pixel,
    pub(crate) attempts: u32,
    pub(crate) enqueued_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) last_error: Option<String>,
}
