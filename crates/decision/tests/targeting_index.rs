//! The targeting index must give exactly the answer of evaluating every expression, for any expressions and
//! any viewer.

use interlude_decision::targeting::{Expr, Facts, Field, TargetingIndex};
use proptest::prelude::*;

const FIELDS: [Field; 4] = [
    Field::Country,
    Field::Device,
    Field::Channel,
    Field::Segment,
];
const VALUES: [&str; 4] = ["a", "b", "c", "d"];

fn leaf() -> impl Strategy<Value = Expr> {
    prop_oneof![
        (
            0..FIELDS.len(),
            prop::collection::vec(0..VALUES.len(), 0..3)
        )
            .prop_map(|(f, vs)| Expr::Is {
                field: FIELDS[f],
                values: vs.into_iter().map(|v| VALUES[v].to_owned()).collect(),
            }),
        prop::collection::vec(0..VALUES.len(), 1..3).prop_map(|vs| Expr::Kv {
            key: "k".into(),
            values: vs.into_iter().map(|v| VALUES[v].to_owned()).collect(),
        }),
    ]
}

fn expr() -> impl Strategy<Value = Expr> {
    leaf().prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Expr::All),
            prop::collection::vec(inner.clone(), 0..4).prop_map(Expr::Any),
            inner.prop_map(|e| Expr::Not(Box::new(e))),
        ]
    })
}

fn facts() -> impl Strategy<Value = Facts> {
    (
        prop::collection::vec((0..FIELDS.len(), 0..VALUES.len()), 0..6),
        prop::option::of(0..VALUES.len()),
    )
        .prop_map(|(pairs, kv)| {
            let mut f = Facts::default();
            for (field, v) in pairs {
                f = f.with(FIELDS[field], VALUES[v]);
            }
            if let Some(v) = kv {
                f = f.with_kv("k", VALUES[v]);
            }
            f
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]
    #[test]
    fn index_agrees_with_a_full_scan(exprs in prop::collection::vec(expr(), 0..40), viewers in prop::collection::vec(facts(), 1..10)) {
        let index = TargetingIndex::build(exprs.into_iter().enumerate().collect());
        for viewer in &viewers {
            prop_assert_eq!(index.matching(viewer), index.matching_by_scan(viewer));
        }
    }
}
