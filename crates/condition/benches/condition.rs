//! Placeholder, replaced by the conditioning benchmark.
fn main() {}
