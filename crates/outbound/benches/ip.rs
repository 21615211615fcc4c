//! The address check on every resolved address, against parsing the same address (the baseline: work every
//! connection does anyway). Run: `cargo bench -p interlude-outbound --bench ip`.

use std::hint::black_box;
use std::net::IpAddr;

use criterion::{Criterion, criterion_main};
use interlude_outbound::ip::classify;

/// A mix of what a resolver returns: public v4 and v6 (the common case, which walks the whole table) and
/// reserved ones in several forms.
const ADDRESSES: &[&str] = &[
    "93.184.215.14",
    "142.250.74.78",
    "2a00:1450:4001:80b::200e",
    "2606:4700:4700::1111",
    "10.1.2.3",
    "127.0.0.1",
    "169.254.169.254",
    "::ffff:192.168.1.1",
    "64:ff9b::808:808",
    "fd00::1",
];

fn bench(c: &mut Criterion) {
    let parsed: Vec<IpAddr> = ADDRESSES
        .iter()
        .map(|s| s.parse().expect("bench address"))
        .collect();
    let mut group = c.benchmark_group("ip");
    group.bench_function("parse_10_addresses_baseline", |b| {
        b.iter(|| {
            ADDRESSES
                .iter()
                .filter_map(|s| black_box(*s).parse::<IpAddr>().ok())
                .count()
        })
    });
    group.bench_function("classify_10_addresses", |b| {
        b.iter(|| {
            parsed
                .iter()
                .filter(|ip| classify(black_box(**ip)).is_some())
                .count()
        })
    });
    group.finish();
}

/// criterion's macro generates an undocumented `pub fn`.
mod group {
    #![allow(missing_docs, unreachable_pub)]
    criterion::criterion_group!(benches, super::bench);
}
criterion_main!(group::benches);
