//! What a decision needs of the catalog, resolved once when the engine is built (never scanned per request),
//! and what it needs of the request: the targeting facts, the viewer's local daypart and the pacing draw.

use std::collections::HashMap;

use crate::{PodRequest, ViewerContext};
use chrono::{DateTime, Utc};

use super::keys::Keys;
use crate::catalog::{Catalog, FrequencyCap, Rotation};
use crate::targeting::{Facts, Field, local_clock};

/// A line item's resolved data.
pub(super) struct Prepared {
    /// The advertiser's catalog id.
    pub(super) advertiser_id: String,
    /// Its key for separation: the domain when known, else the id.
    pub(super) advertiser: String,
    /// The advertiser's competitive categories.
    pub(super) categories: Vec<String>,
    /// The separation key and the categories as numbers ([`Keys`]).
    pub(super) advertiser_key: u32,
    pub(super) category_keys: Vec<u32>,
    /// Servable creatives (approved, with renditions): index into the catalog and duration in ms, longest first.
    pub(super) creatives: Vec<(usize, u32)>,
    /// Approved third-party creatives (a VAST tag, no renditions of their own).
    pub(super) tags: Vec<usize>,
    /// Line items of the same campaign (for campaign-level caps), including itself.
    pub(super) siblings: Vec<usize>,
    /// Index of its campaign.
    pub(super) campaign: Option<usize>,
    /// Index of its advertiser.
    pub(super) advertiser_index: Option<usize>,
    /// How its creatives rotate, and each servable creative's weight and storyboard place (parallel to
    /// `creatives`).
    pub(super) rotation: Rotation,
    pub(super) weights: Vec<u32>,
    pub(super) places: Vec<u32>,
    /// Its caps and its campaign's (`true`: the campaign's).
    pub(super) caps: Vec<(FrequencyCap, bool)>,
}

pub(super) fn prepare(catalog: &Catalog, keys: &mut Keys) -> Vec<Prepared> {
    let creative_index: HashMap<&str, usize> = catalog
        .creatives
        .iter()
        .enumerate()
        .map(|(i, c)| (c.id.as_str(), i))
        .collect();
    let campaign_index: HashMap<&str, usize> = catalog
        .campaigns
        .iter()
        .enumerate()
        .map(|(i, c)| (c.id.as_str(), i))
        .collect();
    let advertiser_index: HashMap<&str, usize> = catalog
        .advertisers
        .iter()
        .enumerate()
        .map(|(i, a)| (a.id.as_str(), i))
        .collect();
    let mut by_campaign: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, l) in catalog.line_items.iter().enumerate() {
        by_campaign.entry(l.campaign.as_str()).or_default().push(i);
    }
    catalog
        .line_items
        .iter()
        .map(|l| {
            let campaign = campaign_index.get(l.campaign.as_str()).copied();
            let advertiser = campaign
                .and_then(|c| catalog.campaigns.get(c))
                .map(|c| c.advertiser.clone())
                .unwrap_or_default();
            let advertiser_at = advertiser_index.get(advertiser.as_str()).copied();
            let record = advertiser_at.and_then(|a| catalog.advertisers.get(a));
            let categories = record.map(|a| a.categories.clone()).unwrap_or_default();
            // The domain, when known, is the key bids name their advertiser by (`adomain`).
            let advertiser_id = advertiser.clone();
            let advertiser = record.and_then(|a| a.domain.clone()).unwrap_or(advertiser);
            let mut servable: Vec<((usize, u32), u32, u32)> =
                l.creatives
                    .iter()
                    .filter_map(|r| Some((r, creative_index.get(r.id.as_str()).copied()?)))
                    .filter_map(|(r, i)| {
                        let c = catalog.creatives.get(i)?;
                        // Offered as files, a creative is chosen like any other: the stitcher skips it (slate in
                        // its place) until it is conditioned for the channel, and queues it on first sight.
                        (c.approved && (!c.renditions.is_empty() || !c.media_files.is_empty()))
                            .then(|| {
                                (
                                    (i, (c.duration_secs * 1000.0).round() as u32),
                                    r.weight.unwrap_or(1),
                                    r.sequence.unwrap_or(0),
                                )
                            })
                    })
                    .collect();
            servable.sort_by_key(|c| std::cmp::Reverse(c.0.1));
            let creatives = servable.iter().map(|c| c.0).collect();
            let weights = servable.iter().map(|c| c.1).collect();
            let places = servable.iter().map(|c| c.2).collect();
            let tags = l
                .creatives
                .iter()
                .filter_map(|id| creative_index.get(id.id.as_str()).copied())
                .filter(|&i| {
                    catalog.creatives.get(i).is_some_and(|c| {
                        c.approved && c.renditions.is_empty() && c.vast_tag.is_some()
                    })
                })
                .collect();
            Prepared {
                advertiser_key: keys.advertiser(&advertiser),
                category_keys: categories.iter().map(|c| keys.category(c)).collect(),
                advertiser_id,
                advertiser,
                categories,
                creatives,
                tags,
                siblings: by_campaign
                    .get(l.campaign.as_str())
                    .cloned()
                    .unwrap_or_default(),
                advertiser_index: advertiser_at,
                rotation: l.rotation(),
                weights,
                places,
                caps: l
                    .frequency_caps
                    .iter()
                    .map(|c| (*c, false))
                    .chain(
                        campaign
                            .and_then(|c| catalog.campaigns.get(c))
                            .into_iter()
                            .flat_map(|c| c.frequency_caps.iter().map(|c| (*c, true))),
                    )
                    .collect(),
                campaign,
            }
        })
        .collect()
}

/// The viewer's local hour and weekday, for daypart targeting (UTC when the time zone is absent or unknown:
/// viewer data is not refused, unlike a catalog's time zones).
fn daypart(timezone: Option<&str>, now: DateTime<Utc>) -> (u32, &'static str) {
    let tz: chrono_tz::Tz = timezone
        .and_then(|t| t.parse().ok())
        .unwrap_or(chrono_tz::UTC);
    local_clock(now, tz)
}

/// What targeting may test of this request.
pub(super) fn facts(request: &PodRequest, now: DateTime<Utc>) -> Facts {
    let v: &ViewerContext = &request.viewer;
    let (hour, weekday) = daypart(v.timezone.as_deref(), now);
    let mut f = Facts::default()
        .at(now)
        .with(Field::Channel, request.channel.clone())
        .with(
            Field::BreakDuration,
            request
                .duration_secs
                .map_or(0, |s| s.round() as u64)
                .to_string(),
        )
        .with(Field::Hour, hour.to_string())
        .with(Field::Weekday, weekday);
    for (field, value) in [
        (Field::Country, &v.country),
        (Field::Region, &v.region),
        (Field::Device, &v.device),
        (Field::Platform, &v.platform),
        (Field::Content, &v.content_id),
        (Field::Genre, &v.genre),
    ] {
        if let Some(value) = value {
            f = f.with(field, value.clone());
        }
    }
    // Audience segments are personal data: used only with consent to personalise (`consent == Some(false)`
    // is an explicit refusal; `None`, a caller that made no consent decision, is not restricted).
    if v.consent != Some(false) {
        for s in &v.segments {
            f = f.with(Field::Segment, s.clone());
        }
    }
    for (k, value) in &v.key_values {
        f = f.with_kv(k.clone(), value.clone());
    }
    f
}

pub use interlude_events::stable_hash;
pub(super) use interlude_events::stable_hash_more;

/// A number in [0, 1) from the session (`stable_hash(&[session])`, taken once per decision) and line item:
/// the pacing draw, stable across retries of a decision.
pub(super) fn draw_from(session: u64, line_item: &str) -> f64 {
    (stable_hash_more(session, line_item) >> 11) as f64 / (1u64 << 53) as f64
}
