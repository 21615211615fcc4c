//! The catalog: advertisers, campaigns, line items and creatives, read from TOML and validated as a whole, so
//! a bad file is refused at load with the path of what is wrong (and the previous catalog keeps serving).

mod creative_ref;

use std::collections::HashSet;

pub use creative_ref::CreativeRef;

use serde::{Deserialize, Serialize};

use crate::pacing::PacingMode;
use crate::pod::Tier;
use crate::targeting::Expr;

/// Why a catalog was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CatalogError {
    /// Not valid TOML for the catalog's shape.
    #[error("catalog: {0}")]
    Parse(String),
    /// Well-formed but inconsistent.
    #[error("catalog: {path}: {reason}")]
    Invalid {
        /// Where, e.g. `line_items[3].campaign`.
        path: String,
        /// Why.
        reason: String,
    },
}

/// An advertiser.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Advertiser {
    /// Id.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Competitive categories (e.g. IAB content taxonomy ids or house codes like "auto", "beer"): no two ads of
    /// a pod share one.
    #[serde(default)]
    pub categories: Vec<String>,
    /// Its domain (`brewer.example`), the name OpenRTB bids (`adomain`) and blocks (`badv`) use; it is also
    /// the key for one-ad-per-advertiser separation against programmatic ads.
    #[serde(default)]
    pub domain: Option<String>,
}

/// A content-level brand-safety rule: where `when` holds (e.g. a kids' live event), no ad of these
/// categories, whatever its targeting says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContentExclusion {
    /// Where it applies.
    pub when: Expr,
    /// Excluded competitive categories.
    pub categories: Vec<String>,
}

/// A campaign of one advertiser.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Campaign {
    /// Id.
    pub id: String,
    /// The advertiser.
    pub advertiser: String,
    /// Caps across all its line items.
    #[serde(default)]
    pub frequency_caps: Vec<FrequencyCap>,
}

/// At most `max` impressions per viewer per `window_hours`, counted at the level of `scope`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrequencyCap {
    /// Impressions.
    pub max: u32,
    /// Window in hours.
    pub window_hours: u32,
    /// What is counted; by default the owner of the cap (its line item, or its campaign).
    #[serde(default, skip_serializing_if = "CapScope::is_own")]
    pub scope: CapScope,
}

/// What a frequency cap counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CapScope {
    /// Impressions of the cap's owner: its line item, or every line item of its campaign.
    #[default]
    Own,
    /// Impressions of any line item of the owner's advertiser.
    Advertiser,
    /// Impressions of each creative of the owner separately (a capped creative rotates out).
    Creative,
    /// Impressions of the owner within the viewer's current session (the window still applies).
    Session,
}

impl CapScope {
    fn is_own(&self) -> bool {
        *self == CapScope::Own
    }
}

/// How a line item's creatives take turns, from its creative references: a storyboard when any has a
/// `sequence`, weighted when any has a `weight`, else even.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rotation {
    /// Each creative equally often.
    Even,
    /// In proportion to their weights.
    Weighted,
    /// In storyboard order, one step per impression to the viewer.
    Sequential,
}

/// What a line item must deliver.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Goal {
    /// A number of impressions.
    Impressions(u64),
    /// A budget in currency units (impressions = budget / CPM × 1000).
    Budget(f64),
}

/// A line item: what to deliver, when, to whom, at what price.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineItem {
    /// Id.
    pub id: String,
    /// The campaign.
    pub campaign: String,
    /// Priority tier.
    pub tier: Tier,
    /// Flight start (RFC 3339).
    pub start: chrono::DateTime<chrono::Utc>,
    /// Flight end (RFC 3339), exclusive.
    pub end: chrono::DateTime<chrono::Utc>,
    /// The goal.
    pub goal: Goal,
    /// Price per thousand impressions, in currency units.
    pub cpm: f64,
    /// Pacing.
    #[serde(default = "even")]
    pub pacing: PacingMode,
    /// Per-viewer caps of this line item.
    #[serde(default)]
    pub frequency_caps: Vec<FrequencyCap>,
    /// Who may see it; absent: everyone.
    #[serde(default)]
    pub targeting: Option<Expr>,
    /// Its creatives (ids, or `{ id, weight }` / `{ id, sequence }` for weighted or sequential rotation).
    pub creatives: Vec<CreativeRef>,
    /// Only as the first ad of a pod.
    #[serde(default)]
    pub first_in_pod: bool,
}

fn even() -> PacingMode {
    PacingMode::Even
}

impl LineItem {
    /// How its creatives rotate.
    pub fn rotation(&self) -> Rotation {
        if self.creatives.iter().any(|c| c.sequence.is_some()) {
            Rotation::Sequential
        } else if self.creatives.iter().any(|c| c.weight.is_some()) {
            Rotation::Weighted
        } else {
            Rotation::Even
        }
    }
}

/// One rendition of a creative, conditioned for stitching (an HLS media playlist).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rendition {
    /// Peak bandwidth in bits per second.
    pub bandwidth: u64,
    /// `WIDTHxHEIGHT`, when video.
    #[serde(default)]
    pub resolution: Option<String>,
    /// URL of the media playlist.
    pub playlist: String,
}

/// A file a direct-sold creative is delivered as (an MP4, a MOV, a mezzanine): conditioned to each channel's
/// renditions before it is stitched (`interlude-condition`), and offered as it is to client-side players.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaFile {
    /// Where it is (`https://`; fetched through the guarded outbound client).
    pub url: String,
    /// MIME type (`video/mp4`); may be empty for a mezzanine, whose container ffmpeg probes.
    #[serde(default, rename = "type")]
    pub mime_type: String,
    /// Width in pixels (0: unknown).
    #[serde(default)]
    pub width: u64,
    /// Height in pixels (0: unknown).
    #[serde(default)]
    pub height: u64,
    /// Bitrate in kbit/s, when known.
    #[serde(default)]
    pub bitrate_kbps: Option<u64>,
    /// The high-quality master the creative was cut from (VAST 4.2 §3.9.3 `Mezzanine`): preferred as the
    /// conditioning source, never given to players.
    #[serde(default)]
    pub mezzanine: bool,
}

/// Media files a creative may list at most.
pub const MAX_MEDIA_FILES: usize = 16;

/// A creative.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Creative {
    /// Id.
    pub id: String,
    /// The advertiser it belongs to.
    pub advertiser: String,
    /// Duration in seconds.
    pub duration_secs: f64,
    /// Renditions; may be empty only for third-party demand (`vast_tag`).
    #[serde(default)]
    pub renditions: Vec<Rendition>,
    /// Approved by ad operations: unapproved creatives never serve.
    #[serde(default)]
    pub approved: bool,
    /// Extra competitive categories of this creative (beyond its advertiser's).
    #[serde(default)]
    pub categories: Vec<String>,
    /// A third-party VAST tag supplying the ad at decision time.
    #[serde(default)]
    pub vast_tag: Option<String>,
    /// Files to condition, for a direct-sold creative delivered without HLS renditions: the stitcher skips it
    /// (`NEW_CREATIVE`, `TRANSCODE_IN_PROGRESS`) until it is conditioned for the channel, and catalog load
    /// queues it for every channel ahead of need.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub media_files: Vec<MediaFile>,
}

impl Creative {
    /// What conditioning needs of this creative, when it is offered as files rather than HLS renditions:
    /// its id, and mezzanines first, then the other files in catalog order.
    pub fn conditioning_source(&self) -> Option<crate::ConditioningSource> {
        if !self.renditions.is_empty() || self.media_files.is_empty() {
            return None;
        }
        let file = |f: &MediaFile| crate::SourceFile {
            uri: f.url.trim().to_owned(),
            mime_type: f.mime_type.trim().to_ascii_lowercase(),
            progressive: true,
            width: f.width,
            height: f.height,
            bitrate_kbps: f.bitrate_kbps,
            file_size: None,
            mezzanine: f.mezzanine,
            api_framework: None,
        };
        let (mezzanines, others): (Vec<&MediaFile>, Vec<&MediaFile>) =
            self.media_files.iter().partition(|f| f.mezzanine);
        Some(crate::ConditioningSource {
            universal_ad_id: None,
            ad_id: None,
            creative_id: Some(self.id.clone()),
            files: mezzanines.into_iter().chain(others).map(file).collect(),
        })
    }
}

/// Why `file` cannot be a conditioning source, if it cannot.
fn media_file_problem(file: &MediaFile) -> Option<(&'static str, String)> {
    let url = file.url.trim();
    let scheme_ok = url.split_once("://").is_some_and(|(scheme, rest)| {
        (scheme.eq_ignore_ascii_case("https") || scheme.eq_ignore_ascii_case("http"))
            && !rest.is_empty()
    });
    if !scheme_ok {
        return Some(("url", format!("{url:?} is not an http(s) URL")));
    }
    if url.len() > 2048 {
        return Some(("url", "longer than 2048 bytes".to_owned()));
    }
    let mime = file.mime_type.trim().to_ascii_lowercase();
    if !(mime.starts_with("video/") || (mime.is_empty() && file.mezzanine)) {
        return Some((
            "type",
            format!(
                "{:?} is not a video type (empty only for a mezzanine)",
                file.mime_type
            ),
        ));
    }
    None
}

/// The whole catalog.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Catalog {
    /// Advertisers.
    pub advertisers: Vec<Advertiser>,
    /// Campaigns.
    pub campaigns: Vec<Campaign>,
    /// Line items.
    pub line_items: Vec<LineItem>,
    /// Creatives.
    pub creatives: Vec<Creative>,
    /// Content-level exclusions.
    pub exclusions: Vec<ContentExclusion>,
}

fn invalid(path: String, reason: impl Into<String>) -> CatalogError {
    CatalogError::Invalid {
        path,
        reason: reason.into(),
    }
}

fn unique<'a>(
    kind: &str,
    ids: impl Iterator<Item = &'a str>,
) -> Result<HashSet<&'a str>, CatalogError> {
    let mut seen = HashSet::new();
    for (i, id) in ids.enumerate() {
        if id.is_empty() {
            return Err(invalid(format!("{kind}[{i}].id"), "must not be empty"));
        }
        if !seen.insert(id) {
            return Err(invalid(
                format!("{kind}[{i}].id"),
                format!("duplicates {id:?}"),
            ));
        }
    }
    Ok(seen)
}

impl Catalog {
    /// Reads and validates a catalog from TOML.
    pub fn from_toml(text: &str) -> Result<Self, CatalogError> {
        let mut catalog: Catalog =
            toml::from_str(text).map_err(|e| CatalogError::Parse(e.to_string()))?;
        catalog.validate()?;
        catalog.normalise();
        Ok(catalog)
    }

    /// Writes targeting codes in their normal case (`fr` → `FR`, `TV` → `tv`), so matching compares them
    /// exactly; ids keep their case. See [`crate::targeting::Field::normalise`].
    pub fn normalise(&mut self) {
        for l in &mut self.line_items {
            if let Some(t) = &l.targeting {
                l.targeting = Some(t.normalised());
            }
        }
        for e in &mut self.exclusions {
            e.when = e.when.normalised();
        }
    }

    /// Checks references, flights, prices and durations; the error names the first problem's path.
    pub fn validate(&self) -> Result<(), CatalogError> {
        let advertisers = unique(
            "advertisers",
            self.advertisers.iter().map(|a| a.id.as_str()),
        )?;
        unique("campaigns", self.campaigns.iter().map(|c| c.id.as_str()))?;
        unique("line_items", self.line_items.iter().map(|l| l.id.as_str()))?;
        unique("creatives", self.creatives.iter().map(|c| c.id.as_str()))?;
        for (i, e) in self.exclusions.iter().enumerate() {
            e.when
                .check(&format!("exclusions[{i}].when"))
                .map_err(|(path, reason)| invalid(path, reason))?;
            if e.categories.is_empty() {
                return Err(invalid(
                    format!("exclusions[{i}].categories"),
                    "must name at least one category",
                ));
            }
        }
        for (i, c) in self.campaigns.iter().enumerate() {
            if !advertisers.contains(c.advertiser.as_str()) {
                return Err(invalid(
                    format!("campaigns[{i}].advertiser"),
                    format!("no advertiser {:?}", c.advertiser),
                ));
            }
            check_caps(&c.frequency_caps, &format!("campaigns[{i}]"))?;
        }
        for (i, c) in self.creatives.iter().enumerate() {
            let path = |k: &str| format!("creatives[{i}].{k}");
            if !advertisers.contains(c.advertiser.as_str()) {
                return Err(invalid(
                    path("advertiser"),
                    format!("no advertiser {:?}", c.advertiser),
                ));
            }
            if !(c.duration_secs.is_finite() && c.duration_secs > 0.0) {
                return Err(invalid(path("duration_secs"), "must be > 0"));
            }
            if c.renditions.is_empty() && c.vast_tag.is_none() && c.media_files.is_empty() {
                return Err(invalid(
                    path("renditions"),
                    "needs renditions, media_files to condition, or a vast_tag for third-party demand",
                ));
            }
            if !c.media_files.is_empty() && c.vast_tag.is_some() {
                return Err(invalid(
                    path("media_files"),
                    "a creative supplied by a vast_tag takes its files from the tag",
                ));
            }
            if c.media_files.len() > MAX_MEDIA_FILES {
                return Err(invalid(
                    path("media_files"),
                    format!("at most {MAX_MEDIA_FILES} files"),
                ));
            }
            for (j, f) in c.media_files.iter().enumerate() {
                if let Some((field, reason)) = media_file_problem(f) {
                    return Err(invalid(path(&format!("media_files[{j}].{field}")), reason));
                }
            }
        }
        // By id, so a catalog of tens of thousands of line items validates in linear time.
        let campaigns: std::collections::HashMap<&str, &Campaign> =
            self.campaigns.iter().map(|c| (c.id.as_str(), c)).collect();
        let creatives: std::collections::HashMap<&str, &Creative> =
            self.creatives.iter().map(|c| (c.id.as_str(), c)).collect();
        for (i, l) in self.line_items.iter().enumerate() {
            let path = |k: &str| format!("line_items[{i}].{k}");
            let Some(campaign) = campaigns.get(l.campaign.as_str()) else {
                return Err(invalid(
                    path("campaign"),
                    format!("no campaign {:?}", l.campaign),
                ));
            };
            if l.end <= l.start {
                return Err(invalid(path("end"), "must be after start"));
            }
            if !(l.cpm.is_finite() && l.cpm >= 0.0) {
                return Err(invalid(path("cpm"), "must be a non-negative number"));
            }
            match l.goal {
                Goal::Impressions(0) => {
                    return Err(invalid(path("goal"), "must be more than 0 impressions"));
                }
                Goal::Budget(b) if !(b.is_finite() && b > 0.0) => {
                    return Err(invalid(path("goal"), "budget must be > 0"));
                }
                Goal::Budget(_) if l.cpm == 0.0 => {
                    return Err(invalid(path("goal"), "a budget goal needs a CPM above 0"));
                }
                _ => {}
            }
            check_caps(&l.frequency_caps, &format!("line_items[{i}]"))?;
            if let Some(t) = &l.targeting {
                t.check(&path("targeting"))
                    .map_err(|(path, reason)| invalid(path, reason))?;
            }
            if l.creatives.is_empty() {
                return Err(invalid(path("creatives"), "must not be empty"));
            }
            check_rotation(&l.creatives, &path("creatives"))?;
            for (j, id) in l.creatives.iter().enumerate() {
                let Some(creative) = creatives.get(id.id.as_str()) else {
                    return Err(invalid(
                        format!("line_items[{i}].creatives[{j}]"),
                        format!("no creative {:?}", id.id),
                    ));
                };
                if creative.advertiser != campaign.advertiser {
                    return Err(invalid(
                        format!("line_items[{i}].creatives[{j}]"),
                        format!(
                            "creative {:?} belongs to {:?}, the campaign to {:?}",
                            id.id, creative.advertiser, campaign.advertiser
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// A line item's goal in impressions.
    pub fn goal_impressions(line_item: &LineItem) -> u64 {
        match line_item.goal {
            Goal::Impressions(n) => n,
            Goal::Budget(b) => (b / line_item.cpm * 1000.0).floor() as u64,
        }
    }
}

/// Weights and storyboard places: not both in one line item, weights above 0, places 1..=n once each.
fn check_rotation(creatives: &[CreativeRef], path: &str) -> Result<(), CatalogError> {
    let weighted = creatives.iter().any(|c| c.weight.is_some());
    let sequential = creatives.iter().any(|c| c.sequence.is_some());
    for (j, c) in creatives.iter().enumerate() {
        if weighted && sequential {
            return Err(invalid(
                format!("{path}[{j}]"),
                "weights and sequence places cannot be mixed in one line item",
            ));
        }
        if c.weight == Some(0) {
            return Err(invalid(format!("{path}[{j}].weight"), "must be > 0"));
        }
        if sequential {
            let Some(place) = c.sequence else {
                return Err(invalid(
                    format!("{path}[{j}].sequence"),
                    "every creative of a storyboard needs its place",
                ));
            };
            let duplicate = creatives[..j].iter().any(|o| o.sequence == Some(place));
            if place == 0 || place as usize > creatives.len() || duplicate {
                return Err(invalid(
                    format!("{path}[{j}].sequence"),
                    format!("places run 1 to {} once each", creatives.len()),
                ));
            }
        }
    }
    Ok(())
}

fn check_caps(caps: &[FrequencyCap], path: &str) -> Result<(), CatalogError> {
    for (k, cap) in caps.iter().enumerate() {
        if cap.window_hours == 0 {
            return Err(invalid(
                format!("{path}.frequency_caps[{k}].window_hours"),
                "must be > 0",
            ));
        }
    }
    Ok(())
}
