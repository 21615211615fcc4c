//! Simulators for testing and demonstrating Interlude: a live HLS origin with real media and SCTE-35 ad breaks
//! on a schedule ([`origin`]), the clocks that let it run faster than real time ([`clock`]), simulated viewers
//! ([`audience`]) with client-side beacon reporting and its ground truth ([`beacons`]) and helpers to run real decoders from tests ([`tools`]).

pub mod audience;
pub mod beacons;
pub mod clock;
pub mod media;
pub mod origin;
pub mod tools;
