//! The per-request privacy path the collector runs for every beacon (and the session API once per session):
//! geo lookup + IP truncation + UA reduction, then consent parse and reduction of a TC string.
//!
//! Run: `CARGO_TARGET_DIR=/work/target-privacy cargo bench -p interlude-privacy --bench per_request`
//!
//! Baseline in the same run: `baseline/keep_raw` formats the address and copies the user agent — what keeping
//! the raw fields would cost — so the privacy path is reported as a ratio to it.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use criterion::{Criterion, criterion_main};
use interlude_privacy::{
    ConsentSignals, GeoTable, Privacy, PrivacyConfig, TcString, UaRules, truncate_ip,
};

const UA: &str = "Mozilla/5.0 (Linux; Android 9; AFTMM Build/PS7233; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/108.0.5359.160 Mobile Safari/537.36";

/// A real TC string with a disclosed-vendors segment (iabtcf-java TCStringV2Test.testRange).
const TC_WITH_SEGMENT: &str = "COwBOpCOwBOpCLqAAAENAPCAAAAAAAAAAAAAFfwAYFfAV-BVkAGBVYFWAAA.IFoEUQQgAIQwgIwQABAEAAAAOIAACAIAAAAQAIAgEAACEAAAAAgAQBAAAAAAAGBAAgAAAAAAAFAAECAAAgAAQARAEQAAAAAJAAIAAgAAAYQEAAAQmAgBC3ZAYzUw";

/// A geo table of 20,000 IPv4 /24s, 500 /16s and 2,000 IPv6 /48s (synthetic blocks, real shape).
fn geo_table() -> GeoTable {
    let mut csv = String::from("cidr,country,region\n");
    for i in 0..500u32 {
        let n = Ipv4Addr::from((10 + (i >> 8)) << 24 | (i & 0xff) << 16);
        csv.push_str(&format!("{n}/16,DE,\n"));
    }
    for i in 0..20_000u32 {
        let n = Ipv4Addr::from((60 << 24) | (i << 8));
        csv.push_str(&format!("{n}/24,US,US-CA\n"));
    }
    for i in 0..2_000u128 {
        let n = Ipv6Addr::from((0x2001_0db8u128 << 96) | (i << 80));
        csv.push_str(&format!("{n}/48,FR,FR-IDF\n"));
    }
    GeoTable::from_csv(&csv).expect("the generated table is valid")
}

/// A core TC string with a 1,000-vendor bitfield (every other vendor consented) and purposes 1–10: the size
/// of the strings CMPs send today. Written field by field after the TCF v2 core-string table.
fn large_tc_string() -> String {
    let mut bits = String::new();
    let mut push = |v: u64, w: usize| {
        for i in (0..w).rev() {
            bits.push(if (v >> i) & 1 == 1 { '1' } else { '0' });
        }
    };
    push(2, 6);
    push(17_092_512_000, 36);
    push(17_092_512_000, 36);
    push(7, 12);
    push(1, 12);
    push(1, 6);
    push(4, 6); // E
    push(13, 6); // N
    push(150, 12);
    push(4, 6);
    push(1, 1);
    push(0, 1);
    push(0, 12);
    push(0b1111_1111_1100_0000_0000_0000, 24);
    push(0, 24);
    push(0, 1);
    push(3, 6); // D
    push(4, 6); // E
    push(1000, 16);
    push(0, 1);
    for id in 1..=1000u64 {
        push(id % 2, 1);
    }
    push(0, 16);
    push(0, 1);
    push(0, 12);
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    bits.as_bytes()
        .chunks(6)
        .map(|c| {
            let v = c
                .iter()
                .enumerate()
                .fold(0usize, |v, (i, b)| v | (usize::from(*b == b'1') << (5 - i)));
            ALPHABET[v] as char
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut config = PrivacyConfig::default();
    config.consent.vendor_id = Some(755);
    let privacy = Privacy::new(
        &config,
        b"bench secret of thirty-two bytes",
        geo_table(),
        UaRules::builtin(),
    )
    .expect("valid configuration");
    let ip: IpAddr = "60.0.42.17".parse().expect("an address");
    let large = large_tc_string();
    assert!(TcString::parse(&large).is_ok(), "the bench string decodes");

    c.bench_function("baseline/keep_raw", |b| {
        b.iter(|| (black_box(ip).to_string(), black_box(UA).to_string()))
    });
    c.bench_function("edge/truncate_ip", |b| {
        b.iter(|| truncate_ip(black_box(ip)))
    });
    c.bench_function("edge/geo_lookup", |b| {
        b.iter(|| privacy.geo().lookup(black_box(ip)))
    });
    c.bench_function("edge/ua_reduce", |b| {
        let rules = UaRules::builtin();
        b.iter(|| rules.reduce(black_box(UA)))
    });
    c.bench_function("tcf/parse_real_with_segment", |b| {
        b.iter(|| TcString::parse(black_box(TC_WITH_SEGMENT)))
    });
    c.bench_function("tcf/parse_1000_vendor_bitfield", |b| {
        b.iter(|| TcString::parse(black_box(&large)))
    });
    c.bench_function("per_request/beacon", |b| {
        b.iter(|| {
            let edge = privacy.edge(black_box(ip), black_box(UA));
            let signals = ConsentSignals {
                gdpr_applies: Some(true),
                tc_string: Some(black_box(large.as_str())),
                country: edge.geo.map(|g| g.country.as_str()),
                ..ConsentSignals::default()
            };
            let decision = privacy.decide(&signals);
            (edge.ip, edge.device, decision.flags())
        })
    });
}

/// criterion's macro generates an undocumented `pub fn`.
mod group {
    #![allow(missing_docs, unreachable_pub)]
    criterion::criterion_group!(benches, super::bench);
}
criterion_main!(group::benches);
