//! Ad instance ids a collector can recognise.
//!
//! Every ad the stitcher serves gets an id that carries a MAC over (session, id) with the collector's token
//! key ([`interlude_events::token::Keyring::issue_instance`]). A producer relaying client beacons can then only
//! report ad instances this platform issued to that session; anything else is refused at the collector.
//! [`IssuingPodSource`] does it where pods enter the stitcher, so every later use (playlists, segments,
//! server-side beacons, interstitial asset lists, shared decisions) sees the issued id.

use std::sync::Arc;

use interlude_decision::{PodFuture, PodRequest, PodSource};

/// Makes session `.0`'s ad instance id `.1` recognisable.
pub type InstanceIssuer = Arc<dyn Fn(&str, &str) -> String + Send + Sync>;

/// A pod source whose ads' instance ids are issued by `issuer`.
pub struct IssuingPodSource {
    inner: Arc<dyn PodSource>,
    issuer: InstanceIssuer,
}

impl IssuingPodSource {
    /// `inner`'s pods with issued instance ids.
    pub fn new(inner: Arc<dyn PodSource>, issuer: InstanceIssuer) -> Self {
        IssuingPodSource { inner, issuer }
    }
}

impl PodSource for IssuingPodSource {
    fn pod(&self, request: PodRequest) -> PodFuture<'_> {
        let session = request.session_id.clone();
        Box::pin(async move {
            let mut pod = self.inner.pod(request).await?;
            for ad in &mut pod.ads {
                ad.ad_instance_id = (self.issuer)(&session, &ad.ad_instance_id);
            }
            Ok(pod)
        })
    }

    fn served(&self, ad: &interlude_decision::PodAd) {
        self.inner.served(ad);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stitcher::pods::ConfiguredPodSource;

    #[tokio::test]
    async fn every_ad_of_a_pod_gets_an_issued_id() {
        let keys = Arc::new(interlude_events::token::Keyring::new(
            3,
            b"instances-test-key-0123456789abcdef".to_vec(),
        ));
        let issuer_keys = keys.clone();
        let creatives = vec![crate::stitcher::config::CreativeConfig {
            id: "ad15".into(),
            duration_secs: 15.0,
            renditions: Vec::new(),
        }];
        let source = IssuingPodSource::new(
            Arc::new(ConfiguredPodSource::new(&creatives, 0.5)),
            Arc::new(move |s, id| issuer_keys.issue_instance(s, id)),
        );
        let pod = source
            .pod(PodRequest {
                channel: "live1".into(),
                session_id: "s-9".into(),
                break_id: "b1".into(),
                duration_secs: Some(30.0),
                viewer: interlude_decision::ViewerContext::default(),
            })
            .await
            .unwrap();
        assert_eq!(pod.ads.len(), 1);
        for ad in &pod.ads {
            assert!(
                keys.verify_instance("s-9", &ad.ad_instance_id),
                "{}",
                ad.ad_instance_id
            );
            assert!(!keys.verify_instance("s-8", &ad.ad_instance_id));
        }
    }
}
