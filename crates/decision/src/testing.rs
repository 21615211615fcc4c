//! Realistic test data for benchmarks and tests (feature `testing`): a catalog shaped like a live sports
//! broadcaster's book and a break-start herd of viewers with varied cap histories.
//!
//! The catalog: four tiers (2 % sponsorship, 33 % guaranteed, 55 % standard, 10 % house), flights that mostly
//! cover the break (some ended, some not started), targeting on geo (country, region), device, daypart,
//! key-values, audience segments and channel, a kids exclusion on a fifth of the book, ~80 % of line items
//! frequency-capped and ~70 % of campaigns capped too, even and ASAP pacing goals, 40 competitive categories,
//! and two to four creatives per line item from 6 to 60 s. Everything is drawn from a seeded generator, so
//! a run is reproducible.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::{PodRequest, ViewerContext};
use chrono::{DateTime, TimeDelta, Utc};
use interlude_events::Counters;

use crate::catalog::{
    Advertiser, Campaign, CapScope, Catalog, ContentExclusion, Creative, CreativeRef, FrequencyCap,
    Goal, LineItem, Rendition,
};
use crate::history::{MemoryHistory, PastImpression, ViewerHistory};
use crate::pacing::PacingMode;
use crate::pod::Tier;
use crate::targeting::{Expr, Field};

/// SplitMix64: a tiny seeded generator, enough to shape test data.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    /// An index skewed toward the start (roughly Zipf): popular countries, channels, segments.
    pub fn skewed(&mut self, n: usize) -> usize {
        let a = self.below(n);
        let b = self.below(n);
        a.min(b)
    }

    /// One of `items`.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Countries with a time zone each.
pub const COUNTRIES: [(&str, &str); 20] = [
    ("FR", "Europe/Paris"),
    ("DE", "Europe/Berlin"),
    ("GB", "Europe/London"),
    ("ES", "Europe/Madrid"),
    ("IT", "Europe/Rome"),
    ("NL", "Europe/Amsterdam"),
    ("BE", "Europe/Brussels"),
    ("PT", "Europe/Lisbon"),
    ("SE", "Europe/Stockholm"),
    ("PL", "Europe/Warsaw"),
    ("AT", "Europe/Vienna"),
    ("CH", "Europe/Zurich"),
    ("IE", "Europe/Dublin"),
    ("DK", "Europe/Copenhagen"),
    ("NO", "Europe/Oslo"),
    ("FI", "Europe/Helsinki"),
    ("US", "America/New_York"),
    ("CA", "America/Toronto"),
    ("BR", "America/Sao_Paulo"),
    ("MX", "America/Mexico_City"),
];
const DEVICES: [&str; 4] = ["tv", "mobile", "desktop", "tablet"];
const PLATFORMS: [&str; 5] = ["roku", "tvos", "android", "ios", "web"];
const DURATIONS: [u32; 7] = [6, 10, 15, 20, 30, 45, 60];
/// Durations as sold: 15 and 30 s dominate.
const DURATION_WEIGHTS: [usize; 7] = [1, 2, 6, 2, 6, 1, 1];
/// Channels of the network; the break of the benchmarks is on channel 0.
pub const CHANNELS: usize = 30;
const SEGMENTS: usize = 60;
const CATEGORIES: usize = 40;

fn duration(rng: &mut Rng) -> u32 {
    let total: usize = DURATION_WEIGHTS.iter().sum();
    let mut x = rng.below(total);
    for (d, w) in DURATIONS.iter().zip(DURATION_WEIGHTS) {
        if x < w {
            return *d;
        }
        x -= w;
    }
    30
}

fn is(field: Field, values: Vec<String>) -> Expr {
    Expr::Is { field, values }
}

fn targeting(rng: &mut Rng) -> Option<Expr> {
    let mut all = Vec::new();
    if rng.chance(0.75) {
        let n = 1 + rng.below(3);
        let countries = (0..n)
            .map(|_| COUNTRIES[rng.skewed(COUNTRIES.len())].0.to_owned())
            .collect();
        all.push(is(Field::Country, countries));
        if rng.chance(0.2) {
            all.push(is(Field::Region, vec![format!("R{}", rng.below(12))]));
        }
    }
    if rng.chance(0.35) {
        let n = 1 + rng.below(2);
        all.push(is(
            Field::Device,
            (0..n).map(|_| (*rng.pick(&DEVICES)).to_owned()).collect(),
        ));
    }
    if rng.chance(0.4) {
        let n = 1 + rng.below(5);
        all.push(is(
            Field::Channel,
            (0..n)
                .map(|_| format!("ch{}", rng.skewed(CHANNELS)))
                .collect(),
        ));
    }
    if rng.chance(0.25) {
        let from = rng.below(24);
        let len = 3 + rng.below(10);
        let hours: Vec<u32> = (from..from + len).map(|h| (h % 24) as u32).collect();
        if rng.chance(0.5) {
            all.push(is(Field::Hour, hours.iter().map(u32::to_string).collect()));
        } else {
            // The broadcaster's own clock: settled once per break.
            all.push(Expr::Daypart {
                timezone: Some(COUNTRIES[rng.below(COUNTRIES.len())].1.to_owned()),
                hours,
                weekdays: Vec::new(),
            });
        }
    }
    if rng.chance(0.05) {
        all.push(Expr::Between {
            field: Field::BreakDuration,
            min: 60.0,
            max: 240.0,
        });
    }
    if rng.chance(0.03) {
        all.push(is(
            Field::PodPosition,
            vec![(*rng.pick(&["first", "last"])).to_owned()],
        ));
    }
    if rng.chance(0.3) {
        let n = 1 + rng.below(3);
        all.push(is(
            Field::Segment,
            (0..n)
                .map(|_| format!("seg{}", rng.skewed(SEGMENTS)))
                .collect(),
        ));
    }
    if rng.chance(0.15) {
        all.push(Expr::Kv {
            key: "tier".into(),
            values: vec![(*rng.pick(&["premium", "free"])).to_owned()],
        });
    }
    if rng.chance(0.2) {
        all.push(Expr::Not(Box::new(is(Field::Genre, vec!["kids".into()]))));
    }
    if rng.chance(0.05) {
        all.push(Expr::Not(Box::new(is(Field::Platform, vec!["web".into()]))));
    }
    (!all.is_empty()).then_some(Expr::All(all))
}

fn cap(max: u32, window_hours: u32, scope: CapScope) -> FrequencyCap {
    FrequencyCap {
        max,
        window_hours,
        scope,
    }
}

fn caps(rng: &mut Rng, p: f64) -> Vec<FrequencyCap> {
    if !rng.chance(p) {
        return Vec::new();
    }
    let mut caps = vec![*rng.pick(&[
        cap(1, 1, CapScope::Own),
        cap(2, 24, CapScope::Own),
        cap(3, 24, CapScope::Own),
        cap(4, 24, CapScope::Own),
    ])];
    if rng.chance(0.3) {
        caps.push(cap(10, 168, CapScope::Own));
    }
    match rng.below(10) {
        0 => caps.push(cap(6, 24, CapScope::Advertiser)),
        1 => caps.push(cap(2, 24, CapScope::Creative)),
        2 => caps.push(cap(1, 4, CapScope::Session)),
        _ => {}
    }
    caps
}

/// A catalog of `line_items` line items active around `now`, from `seed`.
pub fn realistic_catalog(now: DateTime<Utc>, line_items: usize, seed: u64) -> Catalog {
    let mut rng = Rng::new(seed);
    let mut c = Catalog::default();
    let advertisers = (line_items / 12).max(4);
    for a in 0..advertisers {
        let house = a % 25 == 0;
        let mut categories = Vec::new();
        if !house {
            categories.push(format!("cat{}", rng.skewed(CATEGORIES)));
            if rng.chance(0.2) {
                categories.push(format!("cat{}", rng.below(CATEGORIES)));
            }
        }
        c.advertisers.push(Advertiser {
            id: format!("adv{a}"),
            name: format!("Advertiser {a}"),
            categories,
            domain: Some(format!("adv{a}.example")),
        });
    }
    c.exclusions.push(ContentExclusion {
        when: is(Field::Genre, vec!["kids".into()]),
        categories: vec!["cat0".into(), "cat1".into()],
    });
    let campaigns = (line_items / 4).max(1);
    for k in 0..campaigns {
        c.campaigns.push(Campaign {
            id: format!("cmp{k}"),
            advertiser: format!("adv{}", k % advertisers),
            frequency_caps: caps(&mut rng, 0.7),
        });
    }
    for i in 0..line_items {
        let k = rng.below(campaigns);
        let advertiser = k % advertisers;
        let house = advertiser % 25 == 0;
        let tier = if house {
            Tier::House
        } else {
            match rng.below(100) {
                0..=1 => Tier::Sponsorship,
                2..=35 => Tier::Guaranteed,
                _ => Tier::Standard,
            }
        };
        // Most flights cover the break; some ended, some have not started.
        let (start, end) = match rng.below(100) {
            0..=7 => (now - TimeDelta::days(30), now - TimeDelta::days(1)),
            8..=14 => (now + TimeDelta::days(1), now + TimeDelta::days(30)),
            _ => (
                now - TimeDelta::days(1 + rng.below(20) as i64),
                now + TimeDelta::days(1 + rng.below(40) as i64),
            ),
        };
        let n = 2 + rng.below(3);
        let rotation = rng.below(100);
        let mut creatives: Vec<CreativeRef> = Vec::new();
        for j in 0..n {
            let id = format!("cr{i}-{j}");
            c.creatives.push(Creative {
                id: id.clone(),
                advertiser: format!("adv{advertiser}"),
                duration_secs: f64::from(duration(&mut rng)),
                renditions: vec![
                    Rendition {
                        bandwidth: 800_000,
                        resolution: Some("640x360".into()),
                        playlist: format!("https://cdn.example.com/{id}/360p.m3u8"),
                    },
                    Rendition {
                        bandwidth: 3_000_000,
                        resolution: Some("1280x720".into()),
                        playlist: format!("https://cdn.example.com/{id}/720p.m3u8"),
                    },
                ],
                approved: rng.chance(0.95),
                categories: Vec::new(),
                vast_tag: None,
                media_files: Vec::new(),
            });
            creatives.push(CreativeRef {
                id,
                // 60 % even, 25 % weighted, 15 % a storyboard.
                weight: (60..85)
                    .contains(&rotation)
                    .then(|| 1 + rng.below(5) as u32),
                sequence: (rotation >= 85).then_some(j as u32 + 1),
            });
        }
        let cpm = match tier {
            Tier::House => 0.0,
            Tier::Sponsorship => 40.0 + rng.below(30) as f64,
            _ => 5.0 + rng.below(300) as f64 / 10.0,
        };
        c.line_items.push(LineItem {
            id: format!("li{i}"),
            campaign: format!("cmp{k}"),
            tier,
            start,
            end,
            goal: Goal::Impressions(50_000 + rng.below(5_000_000) as u64),
            cpm,
            pacing: if rng.chance(0.8) {
                PacingMode::Even
            } else {
                PacingMode::Asap
            },
            frequency_caps: if house {
                Vec::new()
            } else {
                caps(&mut rng, 0.8)
            },
            targeting: if tier == Tier::House {
                None
            } else {
                targeting(&mut rng)
            },
            creatives,
            first_in_pod: tier == Tier::Sponsorship && rng.chance(0.5),
        });
    }
    c
}

/// A herd of viewers at one break, with their histories (as snapshots, and as per-line-item counters).
pub struct Herd {
    /// One request per viewer, all for the same break.
    pub requests: Vec<PodRequest>,
    /// Their histories, one snapshot per viewer.
    pub history: Arc<MemoryHistory>,
    /// The same histories behind the older per-line-item counters.
    pub counters: Arc<HourCounters>,
}

/// Per-line-item counters over hour buckets in memory, shaped like the Redis adapter's viewer cache
/// (viewer → line item → hour → count): the older seam at its cheapest.
#[derive(Debug, Default)]
pub struct HourCounters {
    viewers: HashMap<String, HashMap<String, BTreeMap<i64, u64>>>,
}

impl Counters for HourCounters {
    fn delivered(&self, _: &str, _: DateTime<Utc>) -> u64 {
        0
    }

    fn viewer_impressions(&self, viewer_id: &str, line_item_id: &str, since: DateTime<Utc>) -> u64 {
        let hour = since.timestamp().div_euclid(3600) * 3600;
        self.viewers
            .get(viewer_id)
            .and_then(|m| m.get(line_item_id))
            .map_or(0, |h| h.range(hour..).map(|(_, n)| n).sum())
    }
}

/// `viewers` viewers of break `break_id` (120 s) on channel `ch0` at `now`, with histories drawn over
/// `catalog`'s line items.
pub fn herd(catalog: &Catalog, viewers: usize, now: DateTime<Utc>, seed: u64) -> Herd {
    let mut rng = Rng::new(seed);
    // Histories lean on the line items a viewer is most likely offered: the high tiers.
    let popular: Vec<usize> = catalog
        .line_items
        .iter()
        .enumerate()
        .filter(|(_, l)| l.tier <= Tier::Guaranteed)
        .map(|(i, _)| i)
        .collect();
    let mut history = MemoryHistory::default();
    let mut counters = HourCounters::default();
    let mut requests = Vec::with_capacity(viewers);
    for v in 0..viewers {
        let (country, timezone) = COUNTRIES[rng.skewed(COUNTRIES.len())];
        let consent = match rng.below(10) {
            0..=6 => Some(true),
            7 => None,
            _ => Some(false),
        };
        let segments = (0..rng.below(5))
            .map(|_| format!("seg{}", rng.skewed(SEGMENTS)))
            .collect();
        let viewer_id = format!("viewer{v}");
        let seen = if rng.chance(0.7) { rng.below(40) } else { 0 };
        let mut past = Vec::with_capacity(seen);
        for _ in 0..seen {
            let i = if rng.chance(0.6) && !popular.is_empty() {
                popular[rng.below(popular.len())]
            } else {
                rng.below(catalog.line_items.len())
            };
            let Some(l) = catalog.line_items.get(i) else {
                continue;
            };
            let at = now - TimeDelta::minutes(rng.below(48 * 60) as i64);
            let count = 1 + rng.below(2) as u32;
            past.push(PastImpression {
                line_item_id: l.id.clone(),
                creative_id: l.creatives.first().map(|c| c.to_string()),
                session_id: None,
                break_id: None,
                at,
                count,
                pending: false,
            });
            *counters
                .viewers
                .entry(viewer_id.clone())
                .or_default()
                .entry(l.id.clone())
                .or_default()
                .entry(at.timestamp().div_euclid(3600) * 3600)
                .or_default() += u64::from(count);
        }
        history.viewers.insert(
            viewer_id.clone(),
            Arc::new(ViewerHistory { impressions: past }),
        );
        requests.push(PodRequest {
            channel: "ch0".into(),
            session_id: format!("session{v}"),
            break_id: "final-b7".into(),
            duration_secs: Some(120.0),
            viewer: ViewerContext {
                viewer_id: Some(viewer_id),
                device: Some((*rng.pick(&DEVICES)).into()),
                platform: Some((*rng.pick(&PLATFORMS)).into()),
                country: Some(country.into()),
                region: rng.chance(0.5).then(|| format!("R{}", rng.below(12))),
                content_id: Some("final-2026".into()),
                genre: Some("football".into()),
                consent,
                segments,
                timezone: Some(timezone.into()),
                key_values: vec![(
                    "tier".into(),
                    (*rng.pick(&["premium", "free", "free"])).into(),
                )],
                opt_out_sale: false,
                privacy: Default::default(),
            },
        });
    }
    Herd {
        requests,
        history: Arc::new(history),
        counters: Arc::new(counters),
    }
}
