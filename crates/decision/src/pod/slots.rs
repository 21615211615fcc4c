//! Slot restrictions (position-in-pod targeting and first-in-pod) as masks of [`Positions`] bits.
//!
//! A pod of `n` ads has at most four kinds of slot: the only ad (`n = 1`), else one first, one last and
//! `n - 2` in between. So whether ads can be ordered to suit every one of them is a question of who takes
//! the first and the last slot, all others accepting the middle: at most `n²` tries, no permutations.

use super::Positions;

const ALONE: u8 = Positions::ALONE.0;
const FIRST: u8 = Positions::FIRST.0;
const LAST: u8 = Positions::LAST.0;
const MIDDLE: u8 = Positions::MIDDLE.0;

/// The kind of slot `slot` is in a pod of `n` ads (as [`Positions::allows`] sees it).
pub(crate) fn kind(slot: usize, n: usize) -> u8 {
    if n <= 1 {
        ALONE
    } else if slot == 0 {
        FIRST
    } else if slot + 1 == n {
        LAST
    } else {
        MIDDLE
    }
}

/// Whether ads with slot masks `a` and `b` can never share a pod: one plays only alone, or both need the
/// first slot, or both the last.
pub(crate) fn exclusive(a: u8, b: u8) -> bool {
    let alone = |m: u8| m & 15 == ALONE;
    let first_only = |m: u8| m & !(ALONE | FIRST) & 15 == 0;
    let last_only = |m: u8| m & !(ALONE | LAST) & 15 == 0;
    alone(a) || alone(b) || (first_only(a) && first_only(b)) || (last_only(a) && last_only(b))
}

/// Which of the first (bit 0) and last (bit 1) slots an ad with slot mask `m` needs in a pod of several
/// (an ad that plays only alone needs neither here: it conflicts with every other ad).
pub(crate) fn needs(m: u8) -> u8 {
    if m & 15 == ALONE {
        return 0;
    }
    u8::from(m & !(ALONE | FIRST) & 15 == 0) | u8::from(m & !(ALONE | LAST) & 15 == 0) << 1
}

/// Whether ads with `masks` can take slots `from..n` of a pod of `n` ads, one each (`masks.len()` is
/// `n - from`).
fn completable(masks: &[u8], from: usize, n: usize) -> bool {
    if masks.is_empty() {
        return true;
    }
    if n == 1 {
        return masks[0] & ALONE != 0;
    }
    if masks.iter().filter(|m| *m & MIDDLE == 0).count() > 2 {
        return false;
    }
    // Everyone but the first and the last must accept the middle.
    let rest_middle = |f: Option<usize>, l: usize| {
        masks
            .iter()
            .enumerate()
            .all(|(k, m)| Some(k) == f || k == l || m & MIDDLE != 0)
    };
    (0..masks.len()).filter(|&l| masks[l] & LAST != 0).any(|l| {
        if from > 0 {
            // The first slot is taken already.
            rest_middle(None, l)
        } else {
            (0..masks.len())
                .filter(|&f| f != l && masks[f] & FIRST != 0)
                .any(|f| rest_middle(Some(f), l))
        }
    })
}

/// An order of ads with `masks` in which each plays in a slot it accepts, as indexes into `masks` in `out`:
/// the given order when it works, else the first such order trying earlier ads first. False when none.
pub(crate) fn arrange(masks: &[u8], out: &mut Vec<usize>) -> bool {
    let n = masks.len();
    out.clear();
    if masks.iter().enumerate().all(|(k, &m)| m & kind(k, n) != 0) {
        out.extend(0..n);
        return true;
    }
    let mut rest: Vec<u8> = Vec::with_capacity(n);
    for slot in 0..n {
        let next = (0..n).find(|&k| {
            if out.contains(&k) || masks[k] & kind(slot, n) == 0 {
                return false;
            }
            rest.clear();
            rest.extend(
                (0..n)
                    .filter(|&j| j != k && !out.contains(&j))
                    .map(|j| masks[j]),
            );
            completable(&rest, slot + 1, n)
        });
        match next {
            Some(k) => out.push(k),
            None => return false,
        }
    }
    true
}

/// Whether ads with `masks` could still be placed once other ads join the pod, up to `max_ads` in all:
/// as they are, or in some larger pod where the others take the slots these do not accept.
pub(crate) fn placeable(masks: &[u8], max_ads: usize) -> bool {
    let len = masks.len();
    if len == 0 {
        return true;
    }
    let fits = |n: usize| {
        if n == 1 {
            return len == 1 && masks[0] & ALONE != 0;
        }
        // The first and the last slot to at most one ad each, the n - 2 between to the others.
        let firsts =
            std::iter::once(None).chain((0..len).filter(|&k| masks[k] & FIRST != 0).map(Some));
        firsts.into_iter().any(|f| {
            std::iter::once(None)
                .chain((0..len).filter(|&k| masks[k] & LAST != 0).map(Some))
                .filter(|&l| l.is_none() || l != f)
                .any(|l| {
                    let assigned = usize::from(f.is_some()) + usize::from(l.is_some());
                    len - assigned <= n - 2
                        && masks
                            .iter()
                            .enumerate()
                            .all(|(k, m)| Some(k) == f || Some(k) == l || m & MIDDLE != 0)
                })
        })
    };
    // More ads only add middle slots: the exact pod and the largest one cover every size between.
    fits(len) || (max_ads > len && fits(max_ads))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every order of `masks`, to check the answers against.
    fn orders(n: usize) -> Vec<Vec<usize>> {
        if n == 0 {
            return vec![Vec::new()];
        }
        let mut all = Vec::new();
        for o in orders(n - 1) {
            for at in 0..=o.len() {
                let mut p = o.clone();
                p.insert(at, n - 1);
                all.push(p);
            }
        }
        all
    }

    fn valid(masks: &[u8], order: &[usize]) -> bool {
        order
            .iter()
            .enumerate()
            .all(|(slot, &k)| masks[k] & kind(slot, order.len()) != 0)
    }

    #[test]
    fn arrangements_match_a_search_over_every_order() {
        // Every combination of up to four ads over a few masks, against brute force: the first valid order
        // in lexicographic order, and placeability in larger pods (others filling the free slots).
        let choices = [15u8, 3, 5, 12, 2, 1, 0, 6];
        let every: Vec<Vec<Vec<usize>>> = (0..=6)
            .map(|n| {
                let mut all = orders(n);
                all.sort();
                all
            })
            .collect();
        for n in 0..=4usize {
            let mut idx = vec![0usize; n];
            loop {
                let masks: Vec<u8> = idx.iter().map(|&i| choices[i]).collect();
                let expected = every[n].iter().find(|o| valid(&masks, o)).cloned();
                let mut out = Vec::new();
                let found = arrange(&masks, &mut out);
                if valid(&masks, &(0..n).collect::<Vec<_>>()) {
                    assert_eq!(out, (0..n).collect::<Vec<_>>());
                } else {
                    assert_eq!(found.then_some(out.clone()), expected, "{masks:?}");
                }
                for max_ads in n..=n + 2 {
                    // Brute force: pad with ads accepting anything.
                    let brute = (n..=max_ads.max(n)).any(|size| {
                        let mut padded = masks.clone();
                        padded.resize(size, 15);
                        every[size].iter().any(|o| valid(&padded, o))
                    });
                    assert_eq!(
                        placeable(&masks, max_ads),
                        brute,
                        "{masks:?} up to {max_ads}"
                    );
                }
                let mut k = 0;
                while k < n && idx[k] + 1 == choices.len() {
                    idx[k] = 0;
                    k += 1;
                }
                if k == n {
                    break;
                }
                idx[k] += 1;
            }
        }
    }
}
