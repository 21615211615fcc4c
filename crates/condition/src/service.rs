//! The entry point a stitcher uses: [`Conditioner::ensure`] answers whether a VAST creative can be stitched
//! into a channel now and, the first time it sees one, queues its conditioning — so an ad is skipped with
//! `NEW_CREATIVE` on its first appearance and stitched once ready. [`Conditioner::precondition`] lets an
//! operator queue creatives ahead of an event.

use std::sync::Arc;

use tokio::sync::Notify;

use crate::error::{Error, Result};
use crate::jobs::{JobQueue, JobRecord, JobSpec, JobState, NotReadyReason, Readiness};
use crate::recipe::loudness::LoudnessTarget;
use crate::recipe::{EncoderSettings, Recipe};
use crate::variant::VariantSet;

/// Wakes a pool's idle worker ([`crate::pool::Pool::waker`]).
#[derive(Debug, Clone)]
pub struct Waker(pub(crate) Arc<Notify>);

impl Waker {
    /// Wakes one idle worker.
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

/// Readiness queries and submissions against a [`JobQueue`].
#[derive(Clone)]
pub struct Conditioner {
    queue: Arc<dyn JobQueue>,
    loudness: LoudnessTarget,
    encoder: EncoderSettings,
    waker: Option<Waker>,
}

impl std::fmt::Debug for Conditioner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conditioner")
            .field("loudness", &self.loudness)
            .field("encoder", &self.encoder)
            .finish_non_exhaustive()
    }
}

impl Conditioner {
    /// Conditions to `loudness` with `encoder` settings through `queue`.
    pub fn new(
        queue: Arc<dyn JobQueue>,
        loudness: LoudnessTarget,
        encoder: EncoderSettings,
    ) -> Conditioner {
        Conditioner {
            queue,
            loudness,
            encoder,
            waker: None,
        }
    }

    /// Wakes a local pool's worker on each new job (without one, workers find jobs when they poll).
    pub fn with_waker(mut self, waker: Waker) -> Conditioner {
        self.waker = Some(waker);
        self
    }

    /// The queue.
    pub fn queue(&self) -> &Arc<dyn JobQueue> {
        &self.queue
    }

    /// The recipe this conditioner applies for a channel with `variant_set`.
    pub fn recipe(&self, variant_set: &VariantSet) -> Recipe {
        Recipe {
            variant_set: variant_set.clone(),
            loudness: self.loudness,
            encoder: self.encoder.clone(),
        }
    }

    fn spec(
        &self,
        creative: &interlude_vast::Creative,
        variant_set: &VariantSet,
    ) -> Result<JobSpec> {
        JobSpec::for_creative(creative, self.recipe(variant_set))
    }

    async fn submit(
        &self,
        spec: JobSpec,
        deadline_ms: Option<u64>,
        now_ms: u64,
    ) -> Result<JobRecord> {
        let rec = self.queue.submit(spec, deadline_ms, now_ms).await?;
        if let Some(w) = &self.waker {
            w.wake();
        }
        Ok(rec)
    }

    /// Whether `creative` can be stitched into a channel with `variant_set`; queues its conditioning (due by
    /// `deadline_ms`, the break's start) when it is new, and raises the priority of a waiting job needed sooner.
    pub async fn ensure(
        &self,
        creative: &interlude_vast::Creative,
        variant_set: &VariantSet,
        deadline_ms: Option<u64>,
        now_ms: u64,
    ) -> Result<Readiness> {
        self.ensure_spec(self.spec(creative, variant_set), deadline_ms, now_ms)
            .await
    }

    /// As [`Conditioner::ensure`], for a spec the caller made ([`JobSpec::for_candidates`] with
    /// [`Conditioner::recipe`]); an [`Error::NoSource`] there is [`NotReadyReason::NoVariantMatch`].
    pub async fn ensure_spec(
        &self,
        spec: Result<JobSpec>,
        deadline_ms: Option<u64>,
        now_ms: u64,
    ) -> Result<Readiness> {
        let spec = match spec {
            Ok(spec) => spec,
            Err(Error::NoSource { .. }) => {
                return Ok(Readiness::NotReady(NotReadyReason::NoVariantMatch));
            }
            Err(e) => return Err(e),
        };
        let existing = self.queue.get(&spec.id()).await?;
        match existing {
            None => {
                self.submit(spec, deadline_ms, now_ms).await?;
                Ok(Readiness::NotReady(NotReadyReason::NewCreative))
            }
            Some(rec) => {
                let waiting = matches!(rec.state, JobState::Queued | JobState::Running { .. });
                let sooner = deadline_ms.is_some_and(|d| rec.deadline_ms.is_none_or(|r| d < r));
                if rec.recipe_hash != spec.recipe.hash() || (waiting && sooner) {
                    return Ok(self.submit(spec, deadline_ms, now_ms).await?.readiness());
                }
                Ok(rec.readiness())
            }
        }
    }

    /// Queues `creative` for `variant_set` ahead of need (lowest priority); [`Error::NoSource`] when it has no
    /// file to transcode.
    pub async fn precondition(
        &self,
        creative: &interlude_vast::Creative,
        variant_set: &VariantSet,
        now_ms: u64,
    ) -> Result<JobRecord> {
        let spec = self.spec(creative, variant_set)?;
        self.submit(spec, None, now_ms).await
    }

    /// As [`Conditioner::precondition`], for a spec the caller made.
    pub async fn precondition_spec(&self, spec: JobSpec, now_ms: u64) -> Result<JobRecord> {
        self.submit(spec, None, now_ms).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::testing::sample_spec;
    use crate::recipe::loudness::LoudnessStandard;

    fn creative(files: &str) -> interlude_vast::Creative {
        let xml = format!(
            r#"<VAST version="4.1"><Ad id="1"><InLine><AdSystem>x</AdSystem><AdTitle>t</AdTitle>
            <Impression>https://t.example/i</Impression><Creatives><Creative id="c1"><Linear>
            <Duration>00:00:15</Duration><MediaFiles>{files}</MediaFiles></Linear></Creative></Creatives>
            </InLine></Ad></VAST>"#
        );
        let vast = interlude_vast::parse_vast(&xml).expect("valid VAST");
        vast.ads
            .into_iter()
            .find_map(|a| match a.body {
                interlude_vast::AdBody::InLine(i) => i.creatives.into_iter().next(),
                _ => None,
            })
            .expect("a creative")
    }

    #[tokio::test]
    async fn first_sight_queues_and_reports_new_creative_then_in_progress() {
        let dir = tempfile::tempdir().expect("temp dir");
        let queue = Arc::new(crate::RedbQueue::open(&dir.path().join("q.redb")).expect("opens"));
        let c = Conditioner::new(
            queue.clone(),
            LoudnessStandard::EbuR128.target(),
            EncoderSettings::default(),
        );
        let set = sample_spec("x").recipe.variant_set;
        let ad = creative(
            r#"<MediaFile delivery="progressive" type="video/mp4" width="1280" height="720">https://cdn.example/a.mp4</MediaFile>"#,
        );
        let first = c.ensure(&ad, &set, Some(5_000), 1).await.expect("ensure");
        assert_eq!(first, Readiness::NotReady(NotReadyReason::NewCreative));
        let second = c.ensure(&ad, &set, Some(2_000), 2).await.expect("ensure");
        assert_eq!(
            second,
            Readiness::NotReady(NotReadyReason::TranscodeInProgress)
        );
        let jobs = queue.list().await.expect("list");
        assert_eq!(jobs.len(), 1);
        assert_eq!(
            jobs[0].deadline_ms,
            Some(2_000),
            "needed sooner: priority raised"
        );
        assert_eq!(jobs[0].spec.creative.as_str(), "creative:c1");
    }

    #[tokio::test]
    async fn vpaid_only_creative_is_no_variant_match() {
        let dir = tempfile::tempdir().expect("temp dir");
        let queue = Arc::new(crate::RedbQueue::open(&dir.path().join("q.redb")).expect("opens"));
        let c = Conditioner::new(
            queue.clone(),
            LoudnessStandard::EbuR128.target(),
            EncoderSettings::default(),
        );
        let ad = creative(
            r#"<MediaFile delivery="progressive" type="application/javascript" apiFramework="VPAID" width="640" height="360">https://x/u.js</MediaFile>"#,
        );
        let set = sample_spec("x").recipe.variant_set;
        let r = c.ensure(&ad, &set, None, 1).await.expect("ensure");
        assert_eq!(r, Readiness::NotReady(NotReadyReason::NoVariantMatch));
        assert!(queue.list().await.expect("list").is_empty());
    }
}
