//! The durable outbox: fires third parties' VAST `<Impression>`/`<Tracking>`/`<Error>` URLs and OpenRTB
//! `nurl`/`burl`/`lurl` notices from the server, as server-side ad insertion must (VAST 4.3 §1.1.3).

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
