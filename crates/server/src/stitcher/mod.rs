//! Live HLS stitching (SSAI) over HTTP: channels polled once for all their viewers, sessions, per-viewer
//! playlists, ad segment redirects with server-side beacons, and client-side tracking documents.
//!
//! The playlist logic itself is the pure `interlude-stitch` crate; this module feeds it origin windows and
//! session decisions and writes its output. Pods come from an [`interlude_stitch::PodSource`]; beacons go to a
//! [`beacons::BeaconSink`].

pub mod beacons;
pub mod channel;
pub mod config;
pub mod creatives;
pub mod dash;
pub mod origin;
pub mod pods;
pub mod routes;
pub mod service;
pub mod session;
pub mod sgai;
pub mod shared;
pub mod tracking;

mod playlist;
mod proxy;

pub use config::StitcherConfig;
pub use service::{ChannelSummary, Clock, StitchError, Stitcher};
