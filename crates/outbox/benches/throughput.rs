//! Throughput of the outbox against a local server (written in a later commit).

fn main() {}
