//! What bounds a branch of the pod search ([`super::optimise`]), precomputed per tier for each suffix of
//! its members: their values, their shortest and longest durations, and the subset sums of their
//! durations by number of ads (all durations, and preferred ones only), as bitsets over the durations'
//! greatest common divisor.

use super::items::Items;
use super::optimise::PER_TIER;

/// Widest subset-sum bitset, in 64-bit words (the time left over the durations' common divisor).
const WORDS: usize = 16;

/// What bounds a branch of one tier's search, per suffix `k` of its members (value descending).
#[derive(Debug)]
pub(super) struct Bounds {
    /// `positive[k]`: the values (those above 0) of members before `k`, summed.
    pub(super) positive: [f64; PER_TIER + 1],
    /// Each member's value (when above 0).
    values: [f64; PER_TIER],
    /// `shortest[k]`: the shortest duration of each member from `k` on, ascending.
    pub(super) shortest: [[u32; PER_TIER]; PER_TIER + 1],
    /// `longest[k]`: the longest duration of each member from `k` on, descending.
    pub(super) longest: [[u32; PER_TIER]; PER_TIER + 1],
    /// Subset sums: the totals exactly `c` members from `k` on can play (each one of its durations), a
    /// bitset over `unit` ms of `words` words at `(k * counts + c) * words`; `words` is 0 when the time
    /// left over the durations' common divisor, or the ads left, make the tables too wide.
    pub(super) all: Vec<u64>,
    /// The same, every member on its preferred duration.
    pub(super) preferred: Vec<u64>,
    pub(super) unit: u32,
    pub(super) words: usize,
    pub(super) counts: usize,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            positive: [0.0; PER_TIER + 1],
            values: [0.0; PER_TIER],
            shortest: [[0; PER_TIER]; PER_TIER + 1],
            longest: [[0; PER_TIER]; PER_TIER + 1],
            all: Vec::new(),
            preferred: Vec::new(),
            unit: 0,
            words: 0,
            counts: 0,
        }
    }
}

/// Most ads left to a tier for which the subset-sum tables are kept.
const COUNTS: usize = 16;

impl Bounds {
    /// The bounds of a tier with `members`, `time_left` ms and `ads_left` ads.
    pub(super) fn prepare(
        &mut self,
        items: &Items,
        members: &[usize],
        time_left: u32,
        ads_left: usize,
    ) {
        let n = members.len();
        for (k, &c) in members.iter().enumerate() {
            self.values[k] = items.get(c).value.max(0.0);
            self.positive[k + 1] = self.positive[k] + self.values[k];
        }
        let fitting = |c: usize| {
            items
                .durations(c)
                .iter()
                .copied()
                .filter(move |&d| d <= time_left)
        };
        for k in (0..n).rev() {
            let c = members[k];
            let short = fitting(c).min().unwrap_or(u32::MAX);
            let long = fitting(c).max().unwrap_or(0);
            let len = n - k - 1;
            let (next_short, next_long) = (self.shortest[k + 1], self.longest[k + 1]);
            insert_sorted(&mut self.shortest[k], &next_short[..len], short, |x, y| {
                x <= y
            });
            insert_sorted(&mut self.longest[k], &next_long[..len], long, |x, y| x >= y);
        }
        let unit = members.iter().flat_map(|&c| fitting(c)).fold(0u32, gcd);
        let counts = ads_left.min(n) + 1;
        self.words = 0;
        if unit == 0 || counts > COUNTS || (time_left / unit) as usize / 64 + 1 > WORDS {
            return;
        }
        let top = (time_left / unit) as usize;
        let words = top / 64 + 1;
        (self.unit, self.words, self.counts) = (unit, words, counts);
        let size = (n + 1) * counts * words;
        for table in [&mut self.all, &mut self.preferred] {
            table.clear();
            table.resize(size, 0);
            table[(n * counts) * words] = 1;
        }
        let at = |k: usize, c: usize| (k * counts + c) * words;
        for k in (0..n).rev() {
            let m = members[k];
            let preferred = items
                .durations(m)
                .first()
                .copied()
                .filter(|&d| d <= time_left);
            for (table, only_preferred) in [(&mut self.all, false), (&mut self.preferred, true)] {
                let (here, next) = table.split_at_mut(at(k + 1, 0));
                let here = &mut here[at(k, 0)..];
                here.copy_from_slice(&next[..counts * words]);
                for c in 1..counts {
                    let (to, from) = (c * words, (c - 1) * words);
                    let from = &next[from..from + words];
                    let to = &mut here[to..to + words];
                    if only_preferred {
                        if let Some(d) = preferred {
                            shift_or(to, from, (d / unit) as usize);
                        }
                    } else {
                        for d in fitting(m) {
                            shift_or(to, from, (d / unit) as usize);
                        }
                    }
                    // Totals past the time left are of no use.
                    if top % 64 != 63 {
                        to[words - 1] &= (1u64 << (top % 64 + 1)) - 1;
                    }
                }
            }
        }
    }

    /// The value (when above 0) of member `k`.
    pub(super) fn value(&self, k: usize) -> f64 {
        self.values[k]
    }

    /// The longest total in `table` for exactly `c` members from `k` on, within `t` ms.
    pub(super) fn longest_within(&self, table: &[u64], k: usize, c: usize, t: u32) -> Option<u32> {
        let at = (k * self.counts + c) * self.words;
        let sums = &table[at..at + self.words];
        let top = ((t / self.unit) as usize).min(self.words * 64 - 1);
        let mut w = top / 64;
        let mut word = if top % 64 == 63 {
            sums[w]
        } else {
            sums[w] & ((1u64 << (top % 64 + 1)) - 1)
        };
        loop {
            if word != 0 {
                let bit = 63 - word.leading_zeros() as usize;
                return Some((w * 64 + bit) as u32 * self.unit);
            }
            if w == 0 {
                return None;
            }
            w -= 1;
            word = sums[w];
        }
    }
}

/// `to` = `from` with `x` put in its place (`before(a, b)`: a goes first).
fn insert_sorted(
    to: &mut [u32; PER_TIER],
    from: &[u32],
    x: u32,
    before: impl Fn(u32, u32) -> bool,
) {
    let at = from
        .iter()
        .position(|&y| !before(y, x))
        .unwrap_or(from.len());
    to[..at].copy_from_slice(&from[..at]);
    to[at] = x;
    to[at + 1..=from.len()].copy_from_slice(&from[at..]);
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// `to |= from << by` (bits past the end dropped).
fn shift_or(to: &mut [u64], from: &[u64], by: usize) {
    let (words, bits) = (by / 64, by % 64);
    for i in (words..to.len()).rev() {
        let j = i - words;
        let mut v = from[j] << bits;
        if bits > 0 && j > 0 {
            v |= from[j - 1] >> (64 - bits);
        }
        to[i] |= v;
    }
}
