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

    /// Passed on under the id the inner source decided (and reserved) it by.
    fn dropped(&self, ad: &interlude_decision::PodAd) {
        self.inner.dropped(&as_decided(ad));
    }

    /// Passed on under the id the inner source decided (and reserved) it by.
    fn abandoned(&self, ad: &interlude_decision::PodAd) {
        self.inner.abandoned(&as_decided(ad));
    }
}

/// `ad` under the id the inner source decided it by (the issued id without its MAC).
fn as_decided(ad: &interlude_decision::PodAd) -> std::borrow::Cow<'_, interlude_decision::PodAd> {
    let base = interlude_events::token::Keyring::issued_base(&ad.ad_instance_id);
    if base == ad.ad_instance_id {
        std::borrow::Cow::Borrowed(ad)
    } else {
        let mut decided = ad.clone();
        decided.ad_instance_id = base.to_owned();
        std::borrow::Cow::Owned(decided)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stitcher::pods::ConfiguredPodSource;

    /// The test key ring.
    fn keys() -> Arc<interlude_events::token::Keyring> {
        Arc::new(interlude_events::token::Keyring::new(
            3,
            b"instances-test-key-0123456789abcdef".to_vec(),
        ))
    }

    /// `inner`'s pods with ids issued with `keys`.
    fn issuing(
        inner: Arc<dyn PodSource>,
        keys: &Arc<interlude_events::token::Keyring>,
    ) -> IssuingPodSource {
        let keys = keys.clone();
        IssuingPodSource::new(inner, Arc::new(move |s, id| keys.issue_instance(s, id)))
    }

    /// A pod source of one 15 s creative.
    fn configured() -> ConfiguredPodSource {
        let creatives = vec![crate::stitcher::config::CreativeConfig {
            id: "ad15".into(),
            duration_secs: 15.0,
            renditions: Vec::new(),
        }];
        ConfiguredPodSource::new(&creatives, 0.5)
    }

    /// Session s-9's 30 s break.
    fn request() -> PodRequest {
        PodRequest {
            channel: "live1".into(),
            session_id: "s-9".into(),
            break_id: "b1".into(),
            duration_secs: Some(30.0),
            viewer: interlude_decision::ViewerContext::default(),
        }
    }

    /// Remembers the ids it is told were dropped or abandoned.
    struct Recording(std::sync::Mutex<Vec<String>>);

    impl PodSource for Recording {
        fn pod(&self, _: PodRequest) -> PodFuture<'_> {
            Box::pin(async { Ok(interlude_decision::Pod::default()) })
        }

        fn dropped(&self, ad: &interlude_decision::PodAd) {
            if let Ok(mut d) = self.0.lock() {
                d.push(ad.ad_instance_id.clone());
            }
        }

        fn abandoned(&self, ad: &interlude_decision::PodAd) {
            self.dropped(ad);
        }
    }

    #[tokio::test]
    async fn a_dropped_or_abandoned_ad_reaches_the_inner_source_under_the_id_it_decided() {
        let keys = keys();
        let decided = configured().pod(request()).await.unwrap();
        let mut ad = decided.ads[0].clone();
        let base = ad.ad_instance_id.clone();
        ad.ad_instance_id = keys.issue_instance("s-9", &base);
        assert_ne!(ad.ad_instance_id, base);
        let inner = Arc::new(Recording(std::sync::Mutex::new(Vec::new())));
        let source = issuing(inner.clone(), &keys);
        source.dropped(&ad);
        source.abandoned(&ad);
        assert_eq!(*inner.0.lock().unwrap(), [base.clone(), base]);
    }

    #[tokio::test]
    async fn every_ad_of_a_pod_gets_an_issued_id() {
        let keys = keys();
        let pod = issuing(Arc::new(configured()), &keys)
            .pod(request())
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
