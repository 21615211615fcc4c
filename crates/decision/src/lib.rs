//! Ad decisioning for live breaks, as a pure core: which line items may serve a viewer ([`targeting`], compiled
//! to an index so 10,000+ line items match in microseconds) and how a break is filled from them ([`pod`]: tiers,
//! separation, caps, duration, with a reason for every candidate left out), and how fast a line item may deliver
//! ([`pacing`]). The [`catalog`] holds what is sold; the [`engine`] decides pods from it, with
//! [`external`] ads (third-party VAST tags, [`openrtb`] bids, with the [`supply`] they are told of) competing in
//! hybrid pods.

pub mod catalog;
pub mod engine;
pub mod external;
pub mod history;
pub mod openrtb;
pub mod pacing;
pub mod pod;
pub mod request;
pub mod reservation;
pub mod supply;
pub mod targeting;
#[cfg(feature = "testing")]
pub mod testing;

pub use request::{
    ConditioningSource, CreativeRendition, Pod, PodAd, PodError, PodFuture, PodRequest, PodSource,
    PrivacySignals, SourceFile, ViewerContext, WonBid,
};
