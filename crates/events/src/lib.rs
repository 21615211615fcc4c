//! The ad event pipeline's pure core: the versioned event contract ([`contract`]), the signed tracking tokens
//! that tracking URLs carry ([`token`]), and what happens to each event — validation, exactly-once dedup,
//! windowed aggregation and the billing ledger ([`pipeline`]). No I/O and no clock: callers pass the time.

pub mod compat;
pub mod contract;
pub mod known_stream;
pub mod pipeline;
pub mod token;

pub use contract::{AdEvent, ConsentFlags, EventSource, EventType, SCHEMA_VERSION};
pub use token::{Keyring, TokenClaims, TokenError};
