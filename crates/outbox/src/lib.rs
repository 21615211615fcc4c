//! The durable outbox: fires third parties' VAST `<Impression>`/`<Tracking>`/`<Error>` URLs and OpenRTB
//! `nurl`/`burl`/`lurl` notices from the server, as server-side ad insertion must (VAST 4.3 §1.1.3).
//!
//! | module | what |
//! |---|---|
//! | [`pixel`] | what is fired: [`Pixel`] (ad instance, event, URL template) and the [`PixelContext`] its macros need; the deduplication key |
//! | [`expand`] | pure: VAST macros (via `interlude_vast::macros`), OpenRTB 2.6 §4.4 macros, `X-Device-*` headers under consent |
//! | [`store`] | the queue: [`OutboxStore`], [`RedbStore`], `PgStore` (feature `postgres`), the conformance suite (feature `testing`) |
//! | [`Outbox`] | the dispatcher: leases due pixels, per-host limits, retries with backoff, dead letters, draining shutdown |
//! | [`config`] | `[outbox]` ([`OutboxConfig`]) |
//! | [`metrics`] | metric names and descriptions |
//!
//! Delivery is at-least-once with deduplication at enqueue: a pixel enqueued twice is fired once, a pixel whose
//! send was cut by a crash is fired again after restart.

pub mod config;
mod dispatch;
mod error;
pub mod expand;
pub mod metrics;
pub mod pixel;
pub mod store;

pub use config::{HostLimits, OutboxConfig, UnfilledMacros};
pub use dispatch::{Drained, Outbox};
pub use error::{Error, Result};
pub use pixel::{
    Auction, BreakPosition, DedupKey, Device, Pixel, PixelContext, PixelEvent, ServerSide,
};
#[cfg(feature = "postgres")]
pub use store::PgStore;
pub use store::{DeadLetter, Enqueued, Leased, OutboxStore, Outcome, Pruned, RedbStore};
