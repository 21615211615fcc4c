//! Interlude's application: where sockets, clocks, storage and configuration meet the pure cores.
//!
//! One folder per component, each with its configuration, service and routes:
//!
//! | module | what |
//! |---|---|
//! | [`stitcher`] | live SSAI/SGAI: channels polled once for all viewers, sessions, per-viewer HLS/DASH/interstitial playlists, ad segments with server-side beacons |
//! | [`conditioning`] | creative conditioning in the server: the conditioner and its worker pool, conditioned ads for the stitcher, the condition API and the route serving the outputs |
//! | [`collector`] | the event collector (`POST /v1/events`, `GET /t/{token}`) and the reports, ledger and quarantine endpoints |
//! | [`decisioning`] | the pod decider (catalog engine plus third-party demand), the catalog admin API, VAST/VMAP for client-side players, the decision explainer |
//! | [`ops`] | `/metrics`, `/healthz`, `/readyz`, the operator API, load shedding, the live dashboard, controls shared between nodes |
//! | [`edge`] | who may call what (producer, read and admin scopes) and who the client is (trusted proxies) |
//! | [`pixels`] | third parties' pixels (VAST impressions and tracking, OpenRTB notices) fired by the server through the durable outbox |
//! | [`privacy`] | consent and minimisation at the edge, erasure of a viewer from every store |
//! | [`telemetry`] | logging and metrics set-up, every metric declared once |
//!
//! [`config`] is the root of the configuration (one section per component) and [`error`] the crate's error
//! types, the HTTP one among them.

pub mod app;
pub mod collector;
pub mod conditioning;
pub mod config;
pub mod decisioning;
pub mod edge;
pub mod error;
pub mod ops;
pub mod pixels;
pub mod privacy;
pub mod stitcher;
pub mod telemetry;

pub use app::App;
pub use config::{InterludeConfig, LogConfig, LogFormat, ServerConfig};
pub use error::{Error, Result};
pub use ops::endpoints::Readiness;
