//! Simulators for testing and demonstrating Interlude: a live HLS origin with real media and SCTE-35 ad breaks
//! on a schedule ([`origin`]), and the clocks that let it run faster than real time ([`clock`]).

pub mod audience;
pub mod clock;
pub mod media;
pub mod origin;
pub mod ts_rewrite;
