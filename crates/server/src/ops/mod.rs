//! Running a live event: the operational [`endpoints`] every process serves (`/metrics`, `/healthz`,
//! `/readyz`), the [`operator`] API (breaks, kill switches, drain), admission control ([`shedding`]), the live
//! [`dashboard`], and operator controls shared between nodes ([`controls_sync`]).

pub mod controls_sync;
pub mod dashboard;
pub mod endpoints;
pub mod operator;
pub mod shedding;
