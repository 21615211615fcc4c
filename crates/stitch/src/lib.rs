//! Live server-side ad insertion, as pure functions over origin windows.
//!
//! A live HLS origin publishes a sliding window of content segments; some of them fall inside ad breaks. Every
//! viewer gets a playlist in which a break's content segments are replaced by that viewer's pod (ad segments, then
//! slate). The hard part is not the replacement but keeping each viewer's playlist *consistent across refreshes*
//! (RFC 8216bis §6.2.2): a media sequence number must always name the same segment, the discontinuity sequence must
//! count exactly the discontinuities that slid out, and nothing may be skipped or repeated between refreshes — even
//! though a 30 s break of fifteen 2 s content segments becomes, say, sixteen ad segments of 2 s and 1 s.
//!
//! This crate does that without I/O and without per-viewer mutable state:
//! - [`tracker::BreakTracker`] (one per channel) remembers each break across refreshes: where it started, the
//!   content segments it replaced, where it ended, and the origin's discontinuity accounting around it.
//! - [`pod::PodPlan`] (one per viewer per break) lays the pod out as a timeline of items (ad segments, then slate,
//!   for as long as the break lasts).
//! - [`window::render_window`] maps the origin's current window through the viewer's plans into the viewer's
//!   window: a deterministic function of (tracked breaks, plans, origin window), so any node that has the same
//!   inputs renders the same playlist, and refreshes agree with each other by construction.
//!
//! The mapping, for a viewer whose breaks `b` have `N_b` emitted items replacing `L_b` content segments:
//! content segment `m` gets media sequence `m + Σ_{b ended before m} (N_b − L_b)`; item `k` of break `b` gets
//! `S_b + Σ_{earlier b'} (N_b' − L_b') + k`. Items are emitted only once the content they stand for has been
//! published (item end ≤ content elapsed in the break + tolerance), so the set emitted during a break is always a
//! prefix of the final one, and the final count `N_b` is fixed when the break ends.

pub mod beacons;
pub mod hls;
pub mod pod;
pub mod tracker;
pub mod window;

mod error;

pub use error::{Error, Result};
pub use pod::{Item, ItemKind, PlannedAd, PodPlan};
pub use tracker::{BreakTracker, ObservedBreak, OriginSegment, TrackedBreak};
pub use window::{Element, RenderedWindow, render_window};
