//! Live stitching over HTTP (SSAI, and HLS Interstitials / DASH for SGAI and DASH players): channels polled
//! once for all their viewers, sessions, per-viewer playlists, ad segments with server-side beacons, and
//! client-side tracking documents.
//!
//! [`Stitcher`] (in [`service`]) is a façade over parts that each own their state:
//!
//! | part | owns |
//! |---|---|
//! | `channels` | the origins' pollers and snapshots, each channel's slate |
//! | `sessions` | the sessions this node serves, sharing with other nodes, admission (consent), draining |
//! | `decisions` | the pod per session and break (the decider, the timeout, the spread) |
//! | `segments` | ad and slate segment delivery, proxy retiming (`proxy`, `seams`), server-side beacons |
//! | `render` | pure: playlists from a snapshot and the session's decisions |
//!
//! The playlist logic itself is the pure `interlude-stitch` crate; this module feeds it origin windows and
//! session decisions and writes its output. Pods come from an [`interlude_decision::PodSource`]; beacons go to a
//! [`beacons::BeaconSink`].

pub mod beacons;
pub mod channel;
mod channels;
pub mod config;
pub mod creatives;
pub mod dash;
mod dash_cmaf;
mod decisions;
mod error;
mod fmp4_proxy;
pub mod instances;
pub mod pods;
mod render;
pub mod routes;
mod seams;
mod segments;
pub mod service;
pub mod session;
mod sessions;
pub mod sgai;
pub mod shared;
pub mod tracking;
mod tracks;

mod proxy;

pub use channels::ChannelSummary;
pub use config::StitcherConfig;
pub use error::StitchError;
pub use service::{Clock, Stitcher, StitcherBuilder};

#[cfg(test)]
mod tests;
