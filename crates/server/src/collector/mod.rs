//! The event collector and the reporting endpoints, over the embedded event store or, in distributed mode, the
//! Kafka event log (appends) and PostgreSQL (reports).
//!
//! - `POST /v1/events` — an array of [`AdEvent`]s as JSON, or as MessagePack with `Content-Type:
//!   application/msgpack`; answered after the batch is durably committed (group commit), with what happened to
//!   each; 503 + `Retry-After` when the store is saturated.
//! - `GET /t/{token}` — a tracking pixel: the signed token says which ad instance and event; 204 once stored.
//! - `GET /v1/reports?group_by=line_item&from=…&to=…&format=json|csv` — counts from the one-minute windows.
//! - `GET /v1/ledger` — the billing ledger per line item and hour, with its appended corrections.
//! - `GET /v1/quarantine` — quarantined events per reason.
//!
//! The stitcher's server-side beacons enter the same pipeline through [`PipelineBeaconSink`].

mod beacon_sink;
mod config;
mod routes;
mod service;

pub use beacon_sink::PipelineBeaconSink;
pub use config::{EventsConfig, SigningKey};
pub use routes::router;
pub use service::Collector;
