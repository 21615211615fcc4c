//! Interlude's HTTP services and the process plumbing around them.
//!
//! The cores (`scte35`, `hls`, …) are pure; this crate is where sockets, clocks and configuration meet them.
//! It holds the configuration model ([`config`]), logging and metrics set-up ([`telemetry`]), the operational
//! endpoints every Interlude process serves ([`ops`]: `/metrics`, `/healthz`, `/readyz`), the live stitcher
//! ([`stitcher`]) and the event collector with its reports ([`collector`]).

pub mod admin;
pub mod collector;
pub mod config;
pub mod controls_sync;
pub mod dashboard;
pub mod decisions;
pub mod demand;
pub mod operator;
pub mod ops;
pub mod privacy;
pub mod shedding;
pub mod stitcher;
pub mod telemetry;
pub mod vast_api;
pub mod viewers;

mod error;

pub use config::{InterludeConfig, LogConfig, LogFormat, ServerConfig};
pub use error::{Error, Result};
pub use ops::Readiness;
