//! The ad event pipeline's pure core: the versioned event contract ([`contract`]), the signed tracking tokens
//! that tracking URLs carry ([`token`]), and what happens to each event: [`validate`] (or quarantine with a
//! reason), exactly-once dedup and [`aggregate`] into windows and the billing ledger ([`pipeline`]), and the
//! read seams other layers take from the counts ([`counters`]). No I/O and no clock: callers pass the time.
//!
//! The crate is also where the nouns every service shares live, because it is the lowest crate they all
//! depend on: the [`Clock`] services read time from, the [`stable_hash`] that spreads work by id, and
//! [`BoxFuture`] for object-safe async traits.

pub mod aggregate;
pub mod compat;
pub mod contract;
pub mod counters;
mod error;
pub mod pipeline;
mod shared;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod token;
pub mod validate;

pub use aggregate::{
    AuctionCounts, Counts, Delivered, DemandKey, LedgerKey, WindowCell, WindowKey, spend_micros,
};
pub use contract::{
    AdEvent, ConsentFlags, Demand, EventSource, EventType, SCHEMA_VERSION, ServerSideReport,
};
pub use counters::{Counters, Prices, ViewerHour};
pub use error::{Error, Result};
pub use pipeline::{
    MemoryState, Outcome, PipelineState, process, process_logged, process_with_edge,
};
pub use shared::{
    BoxFuture, Clock, FastHash, FastHasher, stable_hash, stable_hash_more, system_clock,
};
pub use token::{Keyring, TokenClaims, TokenError};
pub use validate::{
    Envelope, IpRange, Policy, Quarantine, check_event, contract_check, edge_check, validate,
};
