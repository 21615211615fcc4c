//! Parse and write of a 3-ad VAST 4.2 pod (tests/data/pod3.xml, 18.7 KB), in documents per second, against
//! the least any quick-xml based reader must do: iterate quick-xml's raw events over the same text; and
//! lenient against strict reading of the same pod.
//!
//! `cargo bench -p interlude-vast --bench vast -- --warm-up-time 1 --measurement-time 3`

use criterion::{Criterion, Throughput, criterion_main};
use quick_xml::events::Event;
use std::hint::black_box;

const POD3: &str = include_str!("../tests/data/pod3.xml");

/// Counts quick-xml's events without looking at them: the tokenizer alone.
fn quick_xml_events(text: &str) -> usize {
    let mut reader = quick_xml::Reader::from_str(text);
    let mut events = 0;
    loop {
        match reader.read_event() {
            Ok(Event::Eof) | Err(_) => return events,
            Ok(_) => events += 1,
        }
    }
}

fn pod(c: &mut Criterion) {
    let model = interlude_vast::parse_vast(POD3).expect("pod3.xml is valid VAST");
    assert_eq!(model.ads.len(), 3);
    let mut group = c.benchmark_group("pod3");
    group.throughput(Throughput::Elements(1));
    group.bench_function("baseline: quick-xml events", |b| {
        b.iter(|| quick_xml_events(black_box(POD3)))
    });
    group.bench_function("parse", |b| {
        b.iter(|| interlude_vast::parse_vast(black_box(POD3)))
    });
    group.bench_function("parse_lenient", |b| {
        b.iter(|| interlude_vast::parse_vast_lenient(black_box(POD3)))
    });
    group.bench_function("write", |b| {
        b.iter(|| interlude_vast::write_vast(black_box(&model)))
    });
    group.finish();
}

/// criterion's macro generates an undocumented `pub fn`.
mod group {
    #![allow(missing_docs, unreachable_pub)]
    criterion::criterion_group!(benches, super::pod);
}
criterion_main!(group::benches);
