//! Running a live event: the operational [`endpoints`] every process serves (`/metrics`, `/healthz`,
//! `/readyz`), the [`operator`] API (breaks, kill switches, drain), admission control ([`shedding`]), the live
//! [`dashboard`], and operator controls shared between nodes ([`controls_sync`]); the listener's connection
//! limits ([`connections`]) and per-client rate limits ([`rate_limit`]); beacons on a listener and threads of
//! their own ([`beacon_listener`]), optionally on CPUs of their own ([`cpus`]).

pub mod beacon_listener;
pub mod connections;
pub mod controls_sync;
pub mod cpus;
pub mod dashboard;
pub mod endpoints;
pub mod operator;
pub mod rate_limit;
pub mod shedding;
