//! Codec throughput: decode and encode of a splice_insert, a time_signal with a segmentation descriptor and a
//! larger multi-descriptor section, base64 → decode, and the table CRC_32 against a naive bit-by-bit CRC_32
//! measured in the same run. Run with
//! `cargo bench -p interlude-scte35 --bench codec -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_main};
use interlude_scte35::{SpliceInfoSection, base64_to_bytes, crc32_mpeg2};

/// ANSI/SCTE 35 2022b §14.2.
const SPLICE_INSERT: &str = "/DAvAAAAAAAA///wFAVIAACPf+/+c2nALv4AUsz1AAAAAAAKAAhDVUVJAAABNWLbowo=";
/// ANSI/SCTE 35 2022b §14.1.
const TIME_SIGNAL: &str =
    "/DA0AAAAAAAA///wBQb+cr0AUAAeAhxDVUVJSAAAjn/PAAGlmbAICAAAAAAsoKGKNAIAmsnRfg==";
/// ANSI/SCTE 35 2022b §14.8: three segmentation descriptors.
const MULTI: &str = "/DBhAAAAAAAA///wBQb+qM1E7QBLAhdDVUVJSAAArX+fCAgAAAAALLLXnTUCAAIXQ1VFSUgAACZ/nwgIAAAAACyy150RAAACF0NVRUlIAAAnf58ICAAAAAAsstezEAAAihiGnw==";

/// The textbook CRC-32/MPEG-2, one bit at a time: the baseline for the table implementation.
fn crc32_naive(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04C1_1DB7
            } else {
                crc << 1
            };
        }
    }
    crc
}

fn codec(c: &mut Criterion) {
    for (name, text) in [
        ("splice_insert", SPLICE_INSERT),
        ("time_signal_segmentation", TIME_SIGNAL),
        ("multi_descriptor", MULTI),
    ] {
        let bytes = base64_to_bytes(text).expect("vector decodes");
        let section = SpliceInfoSection::decode(&bytes).expect("vector decodes");
        let mut g = c.benchmark_group(name);
        g.throughput(Throughput::Elements(1));
        g.bench_function("decode", |b| {
            b.iter(|| SpliceInfoSection::decode(black_box(&bytes)))
        });
        g.bench_function("encode", |b| b.iter(|| black_box(&section).encode()));
        g.bench_function("base64_decode", |b| {
            b.iter(|| SpliceInfoSection::from_base64(black_box(text)))
        });
        g.finish();
    }
    let bytes = base64_to_bytes(MULTI).expect("vector decodes");
    let mut g = c.benchmark_group("crc32_100_bytes");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("table", |b| b.iter(|| crc32_mpeg2(black_box(&bytes))));
    g.bench_function("naive", |b| b.iter(|| crc32_naive(black_box(&bytes))));
    g.finish();
}

/// criterion's macro generates an undocumented `pub fn`.
mod group {
    #![allow(missing_docs, unreachable_pub)]
    criterion::criterion_group!(benches, super::codec);
}
criterion_main!(group::benches);
