//! Decisioning in the server: the [`decider`] that fills a break from the catalog engine and third-party
//! demand (bidders, VAST tags), the catalog [`admin`] API, the [`vast_routes`] that serve pods as VAST/VMAP to
//! client-side players, the decision [`explain`]er, and the auction side of the [`demand`] reports.

pub mod admin;
pub mod decider;
pub mod deliveries;
pub mod demand;
pub mod explain;
pub mod vast_routes;
