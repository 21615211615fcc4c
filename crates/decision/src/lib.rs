//! Ad decisioning for live breaks, as a pure core: which line items may serve a viewer ([`targeting`], compiled
//! to an index so 10,000+ line items match in microseconds). Catalog, pacing, frequency caps, separation and
//! pod construction build on it (issue 6, in progress).

pub mod targeting;
