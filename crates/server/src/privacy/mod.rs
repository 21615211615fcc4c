//! Privacy in the server: consent and minimisation at the [`edge`] (sessions and beacons), and [`erasure`]
//! of a viewer from every store.

pub mod edge;
pub mod erasure;
