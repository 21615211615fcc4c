//! Which of a line item's creatives a viewer gets: creative rotation (even, weighted, or a sequential
//! storyboard across breaks, from the viewer's history) and, for the pod's knapsack, one alternative per
//! other duration, so a line item whose preferred creative does not fit the time left can still play a
//! shorter one.

use super::Engine;
use super::prepare::stable_hash_more;
use super::rank::Walk;
use crate::catalog::Rotation;

/// A creative a candidate may play: catalog index and duration in ms.
pub(super) type CreativeOption = (usize, u32);

impl Engine {
    /// The creatives line item `i` may play for this viewer in this break, preferred first, then at most one
    /// per other duration (longest first), appended to `out` (`open` is a buffer). `Err(true)` when
    /// creative caps left none, `Err(false)` when nothing servable fits the break; nothing is appended then.
    pub(super) fn creative_options(
        &self,
        w: &Walk<'_>,
        i: usize,
        open: &mut Vec<usize>,
        out: &mut Vec<CreativeOption>,
    ) -> Result<(), bool> {
        let (Some(l), Some(p)) = (self.catalog.line_items.get(i), self.prepared.get(i)) else {
            return Err(false);
        };
        let limit = w.duration_ms.saturating_add(self.tolerance_ms);
        open.clear();
        let mut fitting = false;
        for (k, &(creative, ms)) in p.creatives.iter().enumerate() {
            if ms > limit {
                continue;
            }
            fitting = true;
            if !self.creative_capped(&w.caps, i, creative, w.now) {
                open.push(k);
            }
        }
        if !fitting {
            return Err(false);
        }
        if open.is_empty() {
            return Err(true);
        }
        let seed = stable_hash_more(w.rotation_hash, &l.id);
        if p.rotation == Rotation::Sequential {
            // The storyboard's next place for this viewer; it plays in order or not at all.
            let places = l.creatives.len().max(1) as u64;
            let next = (self.seen_line_item(&w.caps, i, w.now) % places) as u32 + 1;
            let k = open
                .iter()
                .find(|&&k| p.places.get(k) == Some(&next))
                .ok_or(false)?;
            out.push(p.creatives[*k]);
            return Ok(());
        }
        let pick = |among: &[usize], salt: u64| -> Option<usize> {
            let total: u64 = among
                .iter()
                .map(|&k| u64::from(p.weights.get(k).copied().unwrap_or(1)))
                .sum();
            if total == 0 {
                return among.first().copied();
            }
            let mut x = seed.wrapping_add(salt.wrapping_mul(0x9e37_79b9_7f4a_7c15)) % total;
            for &k in among {
                let wk = u64::from(p.weights.get(k).copied().unwrap_or(1));
                if x < wk {
                    return Some(k);
                }
                x -= wk;
            }
            among.last().copied()
        };
        let Some(preferred) = pick(open, 0) else {
            return Err(false);
        };
        out.push(p.creatives[preferred]);
        // `open` is longest first: one alternative per other duration.
        let mut k = 0;
        while k < open.len() {
            let ms = p.creatives[open[k]].1;
            let end = open[k..]
                .iter()
                .position(|&j| p.creatives[j].1 != ms)
                .map_or(open.len(), |n| k + n);
            if ms != p.creatives[preferred].1
                && let Some(j) = pick(&open[k..end], u64::from(ms))
            {
                out.push(p.creatives[j]);
            }
            k = end;
        }
        Ok(())
    }
}
