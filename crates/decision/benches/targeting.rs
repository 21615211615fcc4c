//! Matching one viewer against 10,000 line items: the compiled index against evaluating every expression,
//! in the same run.
//!
//! `cargo bench -p interlude-decision --bench targeting -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{Criterion, criterion_main};
use interlude_decision::targeting::{Expr, Facts, Field, TargetingIndex};

const COUNTRIES: [&str; 20] = [
    "FR", "DE", "GB", "ES", "IT", "NL", "BE", "PT", "SE", "NO", "DK", "FI", "PL", "AT", "CH", "IE",
    "US", "CA", "BR", "MX",
];

fn is(field: Field, values: Vec<String>) -> Expr {
    Expr::Is { field, values }
}

/// 10,000 line items shaped like a real book: most target a country or two and often a channel or device; a
/// few are run-of-network with an exclusion.
fn line_items() -> Vec<(usize, Expr)> {
    (0..10_000usize)
        .map(|i| {
            let country = COUNTRIES[i % COUNTRIES.len()].to_owned();
            let expr = match i % 10 {
                0 => Expr::Not(Box::new(is(Field::Genre, vec!["kids".into()]))),
                1..=4 => Expr::All(vec![
                    is(
                        Field::Country,
                        vec![country, COUNTRIES[(i + 1) % COUNTRIES.len()].to_owned()],
                    ),
                    is(Field::Device, vec!["tv".into(), "mobile".into()]),
                ]),
                5..=7 => Expr::All(vec![
                    is(Field::Channel, vec![format!("ch{}", i % 50)]),
                    Expr::Not(Box::new(is(Field::Device, vec!["web".into()]))),
                ]),
                _ => Expr::All(vec![
                    is(Field::Country, vec![country]),
                    Expr::Any(vec![
                        is(Field::Segment, vec![format!("seg{}", i % 200)]),
                        Expr::Kv {
                            key: "team".into(),
                            values: vec![format!("t{}", i % 30)],
                        },
                    ]),
                ]),
            };
            (i, expr)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let index = TargetingIndex::build(line_items());
    let viewer = Facts::default()
        .with(Field::Country, "FR")
        .with(Field::Device, "tv")
        .with(Field::Channel, "ch7")
        .with(Field::Genre, "football")
        .with(Field::Segment, "seg17")
        .with(Field::Segment, "seg120")
        .with_kv("team", "t3");
    assert_eq!(index.matching(&viewer), index.matching_by_scan(&viewer));
    let mut group = c.benchmark_group("targeting_10k_line_items");
    group.bench_function("baseline_scan_every_expression", |b| {
        b.iter(|| index.matching_by_scan(black_box(&viewer)))
    });
    group.bench_function("compiled_index", |b| {
        b.iter(|| index.matching(black_box(&viewer)))
    });
    group.finish();
}

/// criterion's macro generates an undocumented `pub fn`.
mod group {
    #![allow(missing_docs, unreachable_pub)]
    criterion::criterion_group!(benches, super::bench);
}
criterion_main!(group::benches);
