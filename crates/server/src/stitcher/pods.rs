//! The configured pod source (deterministic, from the config file) and rendition matching for creatives.
//!
//! The decision engine replaces the configured source; both answer through [`interlude_decision::PodSource`].

use interlude_decision::{CreativeRendition, Pod, PodAd, PodFuture, PodRequest, PodSource};

use super::config::{CreativeConfig, RenditionConfig, parse_resolution};

/// Fills each break with the configured creatives, in order, as many as fit the planned duration (a break
/// without a planned duration gets one ad). The first creative rotates per session so viewers see variety.
#[derive(Debug, Clone, Default)]
pub struct ConfiguredPodSource {
    creatives: Vec<PodAd>,
    tolerance_secs: f64,
}

impl ConfiguredPodSource {
    /// A source over the configured creatives.
    pub fn new(creatives: &[CreativeConfig], tolerance_secs: f64) -> Self {
        let creatives = creatives
            .iter()
            .map(|c| PodAd {
                ad_instance_id: String::new(),
                creative_id: c.id.clone(),
                campaign_id: None,
                line_item_id: None,
                duration_secs: c.duration_secs,
                renditions: c.renditions.iter().map(to_rendition).collect(),
                impression_urls: Vec::new(),
                tracking_urls: Vec::new(),
                bid: None,
                source: None,
            })
            .collect();
        ConfiguredPodSource {
            creatives,
            tolerance_secs,
        }
    }

    fn decide(&self, request: &PodRequest) -> Pod {
        let mut pod = Pod::default();
        if self.creatives.is_empty() {
            return pod;
        }
        let budget = request.duration_secs.unwrap_or(0.0) + self.tolerance_secs;
        let start =
            interlude_events::stable_hash(&[&request.session_id]) as usize % self.creatives.len();
        let mut used = 0.0;
        for step in 0..self.creatives.len() {
            let creative = &self.creatives[(start + step) % self.creatives.len()];
            let fits = used + creative.duration_secs <= budget;
            if fits || (pod.ads.is_empty() && request.duration_secs.is_none()) {
                let mut ad = creative.clone();
                ad.ad_instance_id = format!("interlude-{}", uuid::Uuid::new_v4().simple());
                used += ad.duration_secs;
                pod.ads.push(ad);
            }
            if request.duration_secs.is_none() && !pod.ads.is_empty() {
                break;
            }
        }
        pod
    }
}

impl PodSource for ConfiguredPodSource {
    fn pod(&self, request: PodRequest) -> PodFuture<'_> {
        let pod = self.decide(&request);
        Box::pin(async move { Ok(pod) })
    }
}

/// A config rendition as a creative rendition.
pub fn to_rendition(r: &RenditionConfig) -> CreativeRendition {
    CreativeRendition {
        bandwidth: r.bandwidth,
        resolution: r.resolution.as_deref().and_then(parse_resolution),
        playlist_url: r.playlist.clone(),
    }
}

/// Picks the creative rendition that best matches a content variant: the same resolution if there is one
/// (closest bandwidth among those), otherwise the highest bandwidth not above the variant's, otherwise the lowest.
pub fn best_rendition(
    renditions: &[CreativeRendition],
    bandwidth: u64,
    resolution: Option<(u32, u32)>,
) -> Option<usize> {
    let same_res = renditions
        .iter()
        .enumerate()
        .filter(|(_, r)| resolution.is_some() && r.resolution == resolution)
        .min_by_key(|(_, r)| r.bandwidth.abs_diff(bandwidth))
        .map(|(i, _)| i);
    same_res
        .or_else(|| {
            renditions
                .iter()
                .enumerate()
                .filter(|(_, r)| r.bandwidth <= bandwidth)
                .max_by_key(|(_, r)| r.bandwidth)
                .map(|(i, _)| i)
        })
        .or_else(|| {
            renditions
                .iter()
                .enumerate()
                .min_by_key(|(_, r)| r.bandwidth)
                .map(|(i, _)| i)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendition(bandwidth: u64, res: Option<(u32, u32)>) -> CreativeRendition {
        CreativeRendition {
            bandwidth,
            resolution: res,
            playlist_url: String::new(),
        }
    }

    #[test]
    fn same_resolution_wins_over_bandwidth() {
        let r = [
            rendition(300_000, Some((416, 234))),
            rendition(900_000, Some((640, 360))),
        ];
        assert_eq!(best_rendition(&r, 400_000, Some((640, 360))), Some(1));
        assert_eq!(best_rendition(&r, 400_000, Some((1280, 720))), Some(0));
        assert_eq!(best_rendition(&r, 100_000, None), Some(0));
        assert_eq!(best_rendition(&[], 100_000, None), None);
    }

    fn creative(id: &str, secs: f64) -> CreativeConfig {
        CreativeConfig {
            id: id.into(),
            duration_secs: secs,
            renditions: Vec::new(),
        }
    }

    fn request(duration: Option<f64>, session: &str) -> PodRequest {
        PodRequest {
            channel: "c".into(),
            session_id: session.into(),
            break_id: "b".into(),
            duration_secs: duration,
            viewer: Default::default(),
        }
    }

    #[test]
    fn configured_source_fills_without_exceeding_the_break() {
        let source = ConfiguredPodSource::new(
            &[
                creative("a", 15.0),
                creative("b", 30.0),
                creative("c", 15.0),
            ],
            0.5,
        );
        for session in ["s1", "s2", "s3", "s4"] {
            let pod = source.decide(&request(Some(30.0), session));
            let total: f64 = pod.ads.iter().map(|a| a.duration_secs).sum();
            assert!((15.0..=30.5).contains(&total), "{session}: {total}");
            let ids: std::collections::HashSet<_> =
                pod.ads.iter().map(|a| &a.ad_instance_id).collect();
            assert_eq!(ids.len(), pod.ads.len(), "ad instance ids must be unique");
        }
        assert!(source.decide(&request(Some(10.0), "s1")).ads.is_empty());
        assert_eq!(source.decide(&request(None, "s1")).ads.len(), 1);
    }
}
