//! The ad event pipeline's pure core: the versioned event contract ([`contract`]) and the signed tracking
//! tokens that tracking URLs carry ([`token`]). No I/O and no clock: callers pass the time.
//!
//! Validation, exactly-once dedup and windowed aggregation build on these types (issue 7, in progress).

pub mod contract;
pub mod token;

pub use contract::{AdEvent, ConsentFlags, EventSource, EventType, SCHEMA_VERSION};
pub use token::{Keyring, TokenClaims, TokenError};
