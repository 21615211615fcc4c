//! The behaviour every [`JobQueue`] must have, as a suite any implementation runs in its tests:
//! `conformance(|| async { fresh_queue() }).await`. Each check gets an empty queue of its own. Failures panic
//! with the check's name, as test assertions do.

#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::sync::Arc;

use super::{
    JobQueue, JobRecord, JobSpec, JobState, NotReadyReason, Outcome, Progress, Readiness,
    RenditionOutput,
};
use crate::error::Error;
use crate::identity::{CreativeIdentity, CreativeKey};
use crate::recipe::loudness::LoudnessStandard;
use crate::recipe::{EncoderSettings, Recipe};
use crate::source::SourceCandidate;
use crate::variant::{ChannelDefaults, VariantInfo, VariantSet};

/// A job spec for creative `name`, with a two-rendition ladder.
pub fn sample_spec(name: &str) -> JobSpec {
    let v = |w, h, bw| VariantInfo {
        uri: format!("{h}/index.m3u8"),
        bandwidth: bw,
        codecs: Some("avc1.4d401f,mp4a.40.2".into()),
        resolution: Some((w, h)),
        frame_rate: Some(25.0),
    };
    let variant_set = VariantSet::from_variants(
        &[v(640, 360, 600_000), v(960, 540, 1_200_000)],
        &ChannelDefaults::default(),
    )
    .expect("the sample ladder is valid");
    JobSpec {
        creative: CreativeKey::creative_id(name),
        source: SourceCandidate {
            uri: format!("file:///ads/{name}.mp4"),
            mime_type: "video/mp4".into(),
            progressive: true,
            ..SourceCandidate::default()
        },
        recipe: Recipe {
            variant_set,
            loudness: LoudnessStandard::EbuR128.target(),
            encoder: EncoderSettings::default(),
        },
    }
}

fn output(name: &str) -> RenditionOutput {
    RenditionOutput {
        name: name.into(),
        dir: format!("x/y/{name}"),
        ts_playlist: format!("x/y/{name}/ts/index.m3u8"),
        fmp4_playlist: format!("x/y/{name}/fmp4/index.m3u8"),
        cmaf_playlist: format!("x/y/{name}/cmaf/index.m3u8"),
        dash_manifest: format!("x/y/{name}/cmaf/manifest.mpd"),
        codecs: "avc1.4d401f,mp4a.40.2".into(),
        bandwidth: 600_000,
        segments: vec![2.0, 2.0, 1.0],
        qc: crate::qc::QcReport::default(),
    }
}

fn identity(name: &str) -> CreativeIdentity {
    CreativeIdentity {
        key: CreativeKey::creative_id(name),
        content_sha256: "ab".repeat(32),
    }
}

/// Runs every check, each on a queue from `fresh`.
pub async fn conformance<F, Fut>(fresh: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn JobQueue>>,
{
    submit_is_idempotent(fresh().await).await;
    earliest_deadline_is_claimed_first(fresh().await).await;
    earlier_deadline_on_resubmit_raises_priority(fresh().await).await;
    leased_job_is_not_claimed_twice_until_the_lease_runs_out(fresh().await).await;
    resumed_job_keeps_its_finished_renditions(fresh().await).await;
    readiness_follows_the_job(fresh().await).await;
    retry_requeues_only_failed_jobs(fresh().await).await;
    changed_recipe_requeues_a_finished_job(fresh().await).await;
    concurrent_claimers_each_get_a_different_job(fresh().await).await;
}

async fn claim_all(q: &dyn JobQueue, now: u64) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(rec) = q.claim("w", now, 60_000).await.unwrap() {
        out.push(rec.spec.creative.to_string());
    }
    out
}

/// Submitting the same spec twice makes one job.
pub async fn submit_is_idempotent(q: Arc<dyn JobQueue>) {
    let a = q.submit(sample_spec("a"), Some(10), 1).await.unwrap();
    let b = q.submit(sample_spec("a"), Some(20), 2).await.unwrap();
    assert_eq!(a.id, b.id, "submit_is_idempotent");
    assert_eq!(
        b.deadline_ms,
        Some(10),
        "submit_is_idempotent: later deadline ignored"
    );
    assert_eq!(q.list().await.unwrap().len(), 1, "submit_is_idempotent");
    assert_eq!(b.state, JobState::Queued);
}

/// Deadlines order the claims; jobs without one come last, in submission order.
pub async fn earliest_deadline_is_claimed_first(q: Arc<dyn JobQueue>) {
    q.submit(sample_spec("late"), Some(5_000), 1).await.unwrap();
    q.submit(sample_spec("ahead1"), None, 2).await.unwrap();
    q.submit(sample_spec("soon"), Some(1_000), 3).await.unwrap();
    q.submit(sample_spec("ahead2"), None, 4).await.unwrap();
    assert_eq!(
        claim_all(q.as_ref(), 10).await,
        [
            "creative:soon",
            "creative:late",
            "creative:ahead1",
            "creative:ahead2"
        ],
        "earliest_deadline_is_claimed_first"
    );
}

/// A creative needed sooner than first thought moves up.
pub async fn earlier_deadline_on_resubmit_raises_priority(q: Arc<dyn JobQueue>) {
    q.submit(sample_spec("a"), Some(5_000), 1).await.unwrap();
    q.submit(sample_spec("b"), None, 2).await.unwrap();
    q.submit(sample_spec("b"), Some(1_000), 3).await.unwrap();
    assert_eq!(
        claim_all(q.as_ref(), 10).await,
        ["creative:b", "creative:a"],
        "earlier_deadline_on_resubmit_raises_priority"
    );
}

/// A lease protects a job; once it runs out another worker takes over and the first is refused.
pub async fn leased_job_is_not_claimed_twice_until_the_lease_runs_out(q: Arc<dyn JobQueue>) {
    let id = q.submit(sample_spec("a"), None, 0).await.unwrap().id;
    let first = q.claim("w1", 100, 1_000).await.unwrap();
    assert_eq!(first.map(|r| r.attempts), Some(1));
    assert!(
        q.claim("w2", 500, 1_000).await.unwrap().is_none(),
        "lease held"
    );
    q.heartbeat(&id, "w1", 900, 1_000).await.unwrap();
    assert!(
        q.claim("w2", 1_500, 1_000).await.unwrap().is_none(),
        "lease renewed"
    );
    let second = q.claim("w2", 1_900, 1_000).await.unwrap();
    assert_eq!(
        second.map(|r| r.attempts),
        Some(2),
        "expired lease is claimed again"
    );
    let lost = q.finish(&id, "w1", Outcome::Ready, 2_000).await;
    assert!(
        matches!(lost, Err(Error::LeaseLost { .. })),
        "stale worker refused: {lost:?}"
    );
    let lost = q.heartbeat(&id, "w1", 2_000, 1_000).await;
    assert!(
        matches!(lost, Err(Error::LeaseLost { .. })),
        "stale heartbeat refused"
    );
    q.finish(&id, "w2", Outcome::Ready, 2_000).await.unwrap();
}

/// Progress survives a change of worker, so a resumed job skips finished renditions.
pub async fn resumed_job_keeps_its_finished_renditions(q: Arc<dyn JobQueue>) {
    let id = q.submit(sample_spec("a"), None, 0).await.unwrap().id;
    q.claim("w1", 0, 1_000).await.unwrap();
    q.progress(&id, "w1", Progress::Identity(identity("a")))
        .await
        .unwrap();
    q.progress(
        &id,
        "w1",
        Progress::Rendition(Box::new(output("640x360_25_600k"))),
    )
    .await
    .unwrap();
    let again = q
        .claim("w2", 5_000, 1_000)
        .await
        .unwrap()
        .expect("expired job is claimable");
    assert_eq!(again.identity, Some(identity("a")));
    assert_eq!(
        again.renditions.keys().collect::<Vec<_>>(),
        ["640x360_25_600k"]
    );
    let changed = CreativeIdentity {
        content_sha256: "cd".repeat(32),
        ..identity("a")
    };
    q.progress(&id, "w2", Progress::Identity(changed))
        .await
        .unwrap();
    let rec = q.get(&id).await.unwrap().expect("job exists");
    assert!(
        rec.renditions.is_empty(),
        "new bytes invalidate finished renditions"
    );
}

/// Readiness: unknown → NewCreative, queued/running → TranscodeInProgress, failed → TranscodeError, ready →
/// outputs in the variant set's order.
pub async fn readiness_follows_the_job(q: Arc<dyn JobQueue>) {
    let spec = sample_spec("a");
    let vsh = spec.recipe.variant_set.hash();
    let key = spec.creative.clone();
    assert_eq!(
        super::readiness(q.as_ref(), &key, &vsh).await.unwrap(),
        Readiness::NotReady(NotReadyReason::NewCreative)
    );
    let id = q.submit(spec.clone(), None, 0).await.unwrap().id;
    assert_eq!(
        super::readiness(q.as_ref(), &key, &vsh).await.unwrap(),
        Readiness::NotReady(NotReadyReason::TranscodeInProgress)
    );
    q.claim("w", 0, 1_000).await.unwrap();
    q.progress(&id, "w", Progress::Identity(identity("a")))
        .await
        .unwrap();
    for r in spec.recipe.variant_set.renditions.iter().rev() {
        q.progress(&id, "w", Progress::Rendition(Box::new(output(&r.name))))
            .await
            .unwrap();
    }
    q.finish(&id, "w", Outcome::Ready, 7).await.unwrap();
    match super::readiness(q.as_ref(), &key, &vsh).await.unwrap() {
        Readiness::Ready(c) => {
            let names: Vec<&str> = c.renditions.iter().map(|r| r.name.as_str()).collect();
            assert_eq!(names, ["640x360_25_600k", "960x540_25_1200k"]);
            assert_eq!(c.identity, identity("a"));
        }
        other => panic!("readiness_follows_the_job: {other:?}"),
    }
    let rec: JobRecord = q.get(&id).await.unwrap().expect("job exists");
    assert_eq!(rec.ready_ms, Some(7));
    let b = q.submit(sample_spec("b"), None, 0).await.unwrap().id;
    q.claim("w", 0, 1_000).await.unwrap();
    let fail = Outcome::Failed {
        reason: "ffmpeg exited 1".into(),
        quarantined: false,
    };
    q.finish(&b, "w", fail, 1).await.unwrap();
    assert_eq!(
        super::readiness(q.as_ref(), &CreativeKey::creative_id("b"), &vsh)
            .await
            .unwrap(),
        Readiness::NotReady(NotReadyReason::TranscodeError("ffmpeg exited 1".into()))
    );
}

/// An operator's retry requeues a failed job and nothing else.
pub async fn retry_requeues_only_failed_jobs(q: Arc<dyn JobQueue>) {
    let id = q.submit(sample_spec("a"), None, 0).await.unwrap().id;
    assert!(!q.retry(&id).await.unwrap(), "queued job is not retried");
    q.claim("w", 0, 1_000).await.unwrap();
    let fail = Outcome::Failed {
        reason: "loudness".into(),
        quarantined: true,
    };
    q.finish(&id, "w", fail, 1).await.unwrap();
    assert!(
        q.claim("w", 2, 1_000).await.unwrap().is_none(),
        "failed job is not claimed"
    );
    assert!(q.retry(&id).await.unwrap());
    assert!(
        q.claim("w", 3, 1_000).await.unwrap().is_some(),
        "retried job is claimed"
    );
    assert!(matches!(q.retry("nope").await, Err(Error::UnknownJob(_))));
}

/// A new loudness target (a new recipe) for a conditioned creative queues it again.
pub async fn changed_recipe_requeues_a_finished_job(q: Arc<dyn JobQueue>) {
    let id = q.submit(sample_spec("a"), None, 0).await.unwrap().id;
    q.claim("w", 0, 1_000).await.unwrap();
    q.finish(&id, "w", Outcome::Ready, 1).await.unwrap();
    let same = q.submit(sample_spec("a"), None, 2).await.unwrap();
    assert_eq!(same.state, JobState::Ready, "same recipe: nothing to do");
    let mut atsc = sample_spec("a");
    atsc.recipe.loudness = LoudnessStandard::AtscA85.target();
    let again = q.submit(atsc, None, 3).await.unwrap();
    assert_eq!(again.state, JobState::Queued, "changed recipe is queued");
    assert!(q.claim("w", 4, 1_000).await.unwrap().is_some());
}

/// Many workers claiming at once never share a job.
pub async fn concurrent_claimers_each_get_a_different_job(q: Arc<dyn JobQueue>) {
    for i in 0..12 {
        q.submit(sample_spec(&format!("c{i}")), Some(i), 0)
            .await
            .unwrap();
    }
    let mut tasks = Vec::new();
    for w in 0..6 {
        let q = q.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(rec) = q.claim(&format!("w{w}"), 10, 60_000).await.unwrap() {
                got.push(rec.id);
            }
            got
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort();
    let n = all.len();
    all.dedup();
    assert_eq!(
        (n, all.len()),
        (12, 12),
        "concurrent_claimers_each_get_a_different_job"
    );
}
