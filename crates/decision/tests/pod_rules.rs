//! Pod construction rules hold for any candidates and breaks: the pod never exceeds the break (plus
//! tolerance) or `max_ads`; no advertiser or competitive category appears twice; no cap is exceeded; and every
//! candidate left out was left out for a reason that was true when it was considered — so a higher tier is
//! always preferred when it fits.

use interlude_decision::pod::{Candidate, PodRules, Rejection, Tier, build_pod};
use proptest::prelude::*;

const TIERS: [Tier; 5] = [
    Tier::Sponsorship,
    Tier::Guaranteed,
    Tier::Standard,
    Tier::Programmatic,
    Tier::House,
];

fn candidate() -> impl Strategy<Value = Candidate> {
    (
        0..TIERS.len(),
        0u32..100,
        prop::sample::select(vec![5u32, 6, 10, 15, 20, 30, 60]),
        0..8u8,
        prop::collection::vec(0..6u8, 0..3),
        prop::option::of(0..4u8),
        any::<bool>(),
    )
        .prop_map(
            |(tier, value, secs, advertiser, cats, cap, first)| Candidate {
                id: String::new(),
                tier: TIERS[tier],
                value: f64::from(value),
                duration_ms: secs * 1000,
                advertiser: format!("adv{advertiser}"),
                categories: cats.into_iter().map(|c| format!("cat{c}")).collect(),
                // The cap group's limit depends only on the group, as for a real line item.
                cap: cap.map(|g| (format!("li{g}"), u32::from(g % 3))),
                first_in_pod: first && value % 5 == 0,
            },
        )
}

/// The order candidates are considered in (the builder's documented ranking).
fn ranks_before(c: &[Candidate], a: usize, b: usize) -> bool {
    let (x, y) = (&c[a], &c[b]);
    (x.tier, -x.value, std::cmp::Reverse(x.duration_ms), a)
        < (y.tier, -y.value, std::cmp::Reverse(y.duration_ms), b)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]
    #[test]
    fn every_rule_holds(
        mut candidates in prop::collection::vec(candidate(), 0..25),
        secs in 0u32..181,
        tolerance_ms in 0u32..1000,
        max_ads in 1usize..8,
    ) {
        for (i, c) in candidates.iter_mut().enumerate() {
            c.id = format!("c{i}");
        }
        let rules = PodRules { duration_ms: secs * 1000, tolerance_ms, max_ads };
        let pod = build_pod(&candidates, &rules);
        let chosen: Vec<&Candidate> = pod.chosen.iter().map(|&i| &candidates[i]).collect();
        let filled: u32 = chosen.iter().map(|c| c.duration_ms).sum();
        prop_assert_eq!(filled, pod.filled_ms);
        prop_assert!(filled <= rules.duration_ms + tolerance_ms);
        prop_assert_eq!(pod.unfilled_ms, rules.duration_ms.saturating_sub(filled));
        prop_assert!(chosen.len() <= max_ads);
        prop_assert_eq!(pod.chosen.len() + pod.rejected.len(), candidates.len());
        for (k, a) in chosen.iter().enumerate() {
            for b in &chosen[k + 1..] {
                prop_assert_ne!(&a.advertiser, &b.advertiser);
                prop_assert!(a.categories.iter().all(|c| !b.categories.contains(c)), "{:?} and {:?}", a, b);
            }
            if let Some((group, left)) = &a.cap {
                let n = chosen.iter().filter(|c| c.cap.as_ref().is_some_and(|(g, _)| g == group)).count();
                prop_assert!(n as u32 <= *left, "cap {} exceeded", group);
            }
            if a.first_in_pod {
                prop_assert_eq!(k, 0);
            }
        }
        // Each rejection was true against the ads chosen before it was considered.
        for (r, why) in &pod.rejected {
            let before: Vec<usize> = pod.chosen.iter().copied().filter(|&c| ranks_before(&candidates, c, *r)).collect();
            let c = &candidates[*r];
            let used: u32 = before.iter().map(|&i| candidates[i].duration_ms).sum();
            let ok = match why {
                Rejection::MaxAds => before.len() >= max_ads,
                Rejection::Duration { .. } => used + c.duration_ms > rules.duration_ms + tolerance_ms,
                Rejection::NotFirst => c.first_in_pod && !before.is_empty(),
                Rejection::SameAdvertiser { .. } => before.iter().any(|&i| candidates[i].advertiser == c.advertiser),
                Rejection::CompetitiveSeparation { category, .. } => {
                    c.categories.contains(category) && before.iter().any(|&i| candidates[i].categories.contains(category))
                }
                Rejection::FrequencyCap { group } => {
                    let left = c.cap.as_ref().map_or(u32::MAX, |(_, l)| *l);
                    let n = before.iter().filter(|&&i| candidates[i].cap.as_ref().is_some_and(|(g, _)| g == group)).count();
                    n as u32 >= left
                }
            };
            prop_assert!(ok, "candidate {} rejected for {:?} wrongly", r, why);
        }
    }
}
