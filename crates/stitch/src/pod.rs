//! A viewer's pod laid out as a timeline of items: ad segments in pod order, then slate for as long as needed.
//!
//! Times are integer microseconds so that every node computes the same item boundaries (floating-point sums of
//! EXTINF values would differ in the last bits depending on summation order).

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// One ad of a pod, as the stitcher needs it: its instance id and its segment durations in the canonical
/// rendition (every rendition of a creative must have the same segment count and durations).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedAd {
    /// Unique id of this ad in this pod for this viewer (the `[ADSERVINGID]`-style key beacons are deduplicated on).
    pub ad_instance_id: String,
    /// Segment durations in microseconds.
    pub segment_micros: Vec<u64>,
}

impl PlannedAd {
    /// An ad from EXTINF-style durations in seconds.
    pub fn from_seconds(ad_instance_id: impl Into<String>, durations: &[f64]) -> Result<Self> {
        let ad_instance_id = ad_instance_id.into();
        let mut segment_micros = Vec::with_capacity(durations.len());
        for (index, &duration) in durations.iter().enumerate() {
            if !(duration.is_finite() && duration > 0.0) {
                return Err(Error::BadAdSegment {
                    ad_instance_id,
                    index,
                    duration,
                });
            }
            segment_micros.push(secs_to_micros(duration));
        }
        if segment_micros.is_empty() {
            return Err(Error::EmptyAd { ad_instance_id });
        }
        Ok(PlannedAd {
            ad_instance_id,
            segment_micros,
        })
    }

    /// Total duration in microseconds.
    pub fn duration_micros(&self) -> u64 {
        self.segment_micros.iter().sum()
    }
}

/// What an item of the pod timeline plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ItemKind {
    /// Segment `segment` of ad `ad` (index into the plan's ads).
    Ad {
        /// Index of the ad in the pod.
        ad: usize,
        /// Index of the segment within the ad's creative.
        segment: usize,
    },
    /// The `n`-th slate segment of this break (0-based).
    Slate {
        /// Running number of the slate segment within the break.
        n: u64,
    },
}

/// One segment of a pod timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// What plays.
    pub kind: ItemKind,
    /// Start, in microseconds from the break start.
    pub start_micros: u64,
    /// Duration in microseconds.
    pub duration_micros: u64,
    /// Whether a discontinuity precedes it: the first segment of every ad, and every slate segment (slate is one
    /// file served again and again, so its timestamps restart each time).
    pub discontinuity: bool,
}

impl Item {
    /// End, in microseconds from the break start.
    pub fn end_micros(&self) -> u64 {
        self.start_micros + self.duration_micros
    }
}

/// A viewer's pod for one break, as a timeline: the ads' segments in order, then slate without end.
///
/// How much of the timeline is played depends on how long the break turns out to be; the plan itself does not
/// know (and must not change once a viewer has seen any of it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PodPlan {
    ads: Vec<PlannedAd>,
    ad_items: Vec<Item>,
    ads_end_micros: u64,
    slate_micros: u64,
}

impl PodPlan {
    /// A plan of `ads` followed by slate segments of `slate_seconds` each.
    pub fn new(ads: Vec<PlannedAd>, slate_seconds: f64) -> Result<Self> {
        if !(slate_seconds.is_finite() && slate_seconds > 0.0) {
            return Err(Error::BadSlate(slate_seconds));
        }
        let mut ad_items = Vec::new();
        let mut t = 0u64;
        for (a, ad) in ads.iter().enumerate() {
            if ad.segment_micros.is_empty() {
                return Err(Error::EmptyAd {
                    ad_instance_id: ad.ad_instance_id.clone(),
                });
            }
            for (s, &d) in ad.segment_micros.iter().enumerate() {
                if d == 0 {
                    return Err(Error::BadAdSegment {
                        ad_instance_id: ad.ad_instance_id.clone(),
                        index: s,
                        duration: 0.0,
                    });
                }
                ad_items.push(Item {
                    kind: ItemKind::Ad { ad: a, segment: s },
                    start_micros: t,
                    duration_micros: d,
                    discontinuity: s == 0,
                });
                t += d;
            }
        }
        Ok(PodPlan {
            ads,
            ad_items,
            ads_end_micros: t,
            slate_micros: secs_to_micros(slate_seconds),
        })
    }

    /// A plan that is slate only (no ad could be decided, or the viewer joined mid-break under a slate policy).
    pub fn slate_only(slate_seconds: f64) -> Result<Self> {
        Self::new(Vec::new(), slate_seconds)
    }

    /// The pod's ads.
    pub fn ads(&self) -> &[PlannedAd] {
        &self.ads
    }

    /// Total duration of the ads, in microseconds (slate excluded).
    pub fn ads_duration_micros(&self) -> u64 {
        self.ads_end_micros
    }

    /// Item `k` of the timeline (every `k` exists: past the ads the timeline is slate).
    pub fn item(&self, k: u64) -> Item {
        let ads = self.ad_items.len() as u64;
        match usize::try_from(k).ok().and_then(|i| self.ad_items.get(i)) {
            Some(item) => *item,
            None => {
                let n = k - ads;
                Item {
                    kind: ItemKind::Slate { n },
                    start_micros: self.ads_end_micros + n * self.slate_micros,
                    duration_micros: self.slate_micros,
                    discontinuity: true,
                }
            }
        }
    }

    /// How many items end at or before `limit_micros` (from the break start): the items that may be shown once
    /// that much content time has been published.
    pub fn count_ending_by(&self, limit_micros: u64) -> u64 {
        let in_ads = self
            .ad_items
            .partition_point(|item| item.end_micros() <= limit_micros) as u64;
        if in_ads < self.ad_items.len() as u64 || limit_micros < self.ads_end_micros {
            return in_ads;
        }
        in_ads + (limit_micros - self.ads_end_micros) / self.slate_micros
    }

    /// Index of the first item that ends after `t_micros`: the item playing at `t_micros`.
    pub fn first_ending_after(&self, t_micros: u64) -> u64 {
        self.count_ending_by(t_micros)
    }

    /// Number of items among the first `k` that carry a discontinuity.
    pub fn discontinuities_before(&self, k: u64) -> u64 {
        let ads = self.ad_items.len() as u64;
        if k <= ads {
            let k = usize::try_from(k).unwrap_or(usize::MAX);
            return self
                .ad_items
                .iter()
                .take(k)
                .filter(|i| i.discontinuity)
                .count() as u64;
        }
        self.ads.len() as u64 + (k - ads)
    }
}

/// Seconds (as in EXTINF) to whole microseconds, rounded to nearest.
pub fn secs_to_micros(seconds: f64) -> u64 {
    if seconds.is_finite() && seconds > 0.0 {
        (seconds * 1_000_000.0).round() as u64
    } else {
        0
    }
}

/// Microseconds to seconds.
pub fn micros_to_secs(micros: u64) -> f64 {
    micros as f64 / 1_000_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ad(id: &str, d: &[f64]) -> PlannedAd {
        PlannedAd::from_seconds(id, d).unwrap()
    }

    #[test]
    fn timeline_is_ads_then_endless_slate() {
        let plan = PodPlan::new(vec![ad("a", &[2.0, 2.0, 1.0]), ad("b", &[2.0])], 2.0).unwrap();
        let kinds: Vec<_> = (0..6).map(|k| plan.item(k)).collect();
        assert_eq!(kinds[0].kind, ItemKind::Ad { ad: 0, segment: 0 });
        assert!(kinds[0].discontinuity && !kinds[1].discontinuity && !kinds[2].discontinuity);
        assert_eq!(kinds[3].kind, ItemKind::Ad { ad: 1, segment: 0 });
        assert!(kinds[3].discontinuity);
        assert_eq!(kinds[3].start_micros, 5_000_000);
        assert_eq!(kinds[4].kind, ItemKind::Slate { n: 0 });
        assert_eq!(kinds[5].start_micros, 9_000_000);
        assert!(kinds[5].discontinuity);
    }

    #[test]
    fn count_ending_by_matches_a_linear_scan() {
        let plan =
            PodPlan::new(vec![ad("a", &[2.0, 2.0, 1.0]), ad("b", &[1.5, 2.0])], 2.0).unwrap();
        for limit in (0..40_000_000u64).step_by(250_000) {
            let scan = (0..100)
                .take_while(|&k| plan.item(k).end_micros() <= limit)
                .count() as u64;
            assert_eq!(plan.count_ending_by(limit), scan, "limit {limit}");
            let discs = (0..scan).filter(|&k| plan.item(k).discontinuity).count() as u64;
            assert_eq!(plan.discontinuities_before(scan), discs, "limit {limit}");
        }
    }

    #[test]
    fn empty_or_zero_length_ads_are_rejected() {
        assert!(matches!(
            PlannedAd::from_seconds("x", &[]),
            Err(Error::EmptyAd { .. })
        ));
        assert!(matches!(
            PlannedAd::from_seconds("x", &[2.0, 0.0]),
            Err(Error::BadAdSegment { index: 1, .. })
        ));
        assert!(matches!(PodPlan::slate_only(0.0), Err(Error::BadSlate(_))));
    }
}
