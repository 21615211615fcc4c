//! Conditioning jobs: one per (creative, channel variant set), their states, and the [`JobQueue`] they wait
//! in.
//!
//! A job is keyed by the creative's [`CreativeKey`] and the [`VariantSet::hash`](crate::VariantSet::hash), so
//! every channel with the same ladder shares one conditioning of an ad. It moves
//! `Queued → Running → Ready | Failed`; a worker holds a running job under a lease it renews, and a job whose
//! lease ran out (its worker died) is claimed again and resumes: the renditions it finished are recorded in
//! the job and are not redone. Queued jobs are taken by deadline (the start of the break that needs the
//! creative), earliest first; jobs without one (an operator conditioning ahead of an event) come last, in
//! submission order.
//!
//! The state transitions are the pure functions here; [`redb`](mod@redb) and (feature `postgres`) `pg` only
//! persist them atomically.

#[cfg(feature = "postgres")]
pub mod pg;
pub mod redb;
pub mod testing;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::identity::{CreativeIdentity, CreativeKey};
use crate::qc::QcReport;
use crate::recipe::Recipe;
use crate::source::SourceCandidate;

/// What to condition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    /// The creative.
    pub creative: CreativeKey,
    /// The file to transcode.
    pub source: SourceCandidate,
    /// How.
    pub recipe: Recipe,
}

impl JobSpec {
    /// The spec for a VAST creative: the creative's key, its best source file ([`crate::source::choose`]).
    pub fn for_creative(creative: &interlude_vast::Creative, recipe: Recipe) -> Result<JobSpec> {
        let candidates = crate::source::candidates(creative);
        JobSpec::for_candidates(
            &candidates,
            |uri| CreativeKey::from_creative(creative, uri),
            recipe,
        )
    }

    /// The spec for a creative known by its files: the best of `candidates` ([`crate::source::choose`]),
    /// keyed by `key` given the chosen file's URI.
    pub fn for_candidates(
        candidates: &[SourceCandidate],
        key: impl FnOnce(&str) -> CreativeKey,
        recipe: Recipe,
    ) -> Result<JobSpec> {
        let source = crate::source::choose(candidates)?.clone();
        Ok(JobSpec {
            creative: key(&source.uri),
            source,
            recipe,
        })
    }

    /// The job's id.
    pub fn id(&self) -> String {
        job_id(&self.creative, &self.recipe.variant_set.hash())
    }
}

/// The id of the job conditioning `creative` for the variant set with hash `variant_set_hash`.
pub fn job_id(creative: &CreativeKey, variant_set_hash: &str) -> String {
    format!("{variant_set_hash}/{creative}")
}

/// Where a job is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobState {
    /// Waiting for a worker.
    Queued,
    /// A worker holds it until `lease_until_ms`.
    Running {
        /// The worker.
        worker: String,
        /// When the lease runs out, ms since the Unix epoch.
        lease_until_ms: u64,
    },
    /// Every rendition is done and passed its checks.
    Ready,
    /// Conditioning failed; `quarantined` when outputs were made but failed their checks.
    Failed {
        /// Why.
        reason: String,
        /// Outputs failed quality checks (rather than the tools failing).
        quarantined: bool,
    },
}

/// One finished rendition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenditionOutput {
    /// The rendition's name.
    pub name: String,
    /// Its directory, relative to the output root.
    pub dir: String,
    /// HLS with MPEG-TS segments, relative to the root.
    pub ts_playlist: String,
    /// HLS with fragmented MP4 segments, audio and video muxed (for a CMAF channel's variant), relative to the
    /// root; empty in outputs of recipe version 1, which had no such form (their recipe hash differs, so they
    /// are never taken for a version-2 recipe's).
    #[serde(default)]
    pub fmp4_playlist: String,
    /// HLS with CMAF segments (multivariant playlist of one video and one audio track), relative to the root.
    pub cmaf_playlist: String,
    /// DASH MPD over the same CMAF segments, relative to the root.
    pub dash_manifest: String,
    /// `CODECS`.
    pub codecs: String,
    /// The channel's `BANDWIDTH` for it.
    pub bandwidth: u64,
    /// TS segments, with their durations in seconds.
    pub segments: Vec<f64>,
    /// What the checks found.
    pub qc: QcReport,
}

/// A job and everything known about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// [`job_id`].
    pub id: String,
    /// What to do.
    pub spec: JobSpec,
    /// [`Recipe::hash`] of the spec.
    pub recipe_hash: String,
    /// When the creative is needed, ms since the epoch (`None`: ahead of time, lowest priority).
    pub deadline_ms: Option<u64>,
    /// Submission order, for ties.
    pub seq: u64,
    /// State.
    pub state: JobState,
    /// Set once the source is fetched.
    pub identity: Option<CreativeIdentity>,
    /// Renditions finished so far, by name.
    pub renditions: BTreeMap<String, RenditionOutput>,
    /// Times a worker claimed it.
    pub attempts: u32,
    /// First submission, ms since the epoch.
    pub submitted_ms: u64,
    /// When it became ready.
    pub ready_ms: Option<u64>,
}

/// A creative's conditioned outputs for one variant set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conditioned {
    /// The creative and its bytes.
    pub identity: CreativeIdentity,
    /// The recipe.
    pub recipe_hash: String,
    /// One per rendition of the variant set, in its order.
    pub renditions: Vec<RenditionOutput>,
}

/// Why a creative cannot be stitched yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotReadyReason {
    /// Never seen: conditioning has been (or should be) requested.
    NewCreative,
    /// Queued or being conditioned.
    TranscodeInProgress,
    /// Conditioning failed (or its outputs failed their checks).
    TranscodeError(String),
    /// The creative cannot be made to fit the channel's variants (no usable source file, a codec that cannot
    /// be encoded to).
    NoVariantMatch,
}

impl NotReadyReason {
    /// The skip reason as an SSAI reports it (`NEW_CREATIVE`, `TRANSCODE_IN_PROGRESS`, …).
    pub fn code(&self) -> &'static str {
        match self {
            NotReadyReason::NewCreative => "NEW_CREATIVE",
            NotReadyReason::TranscodeInProgress => "TRANSCODE_IN_PROGRESS",
            NotReadyReason::TranscodeError(_) => "TRANSCODE_ERROR",
            NotReadyReason::NoVariantMatch => "NO_VARIANT_MATCH",
        }
    }
}

/// Whether a creative can be stitched into a channel.
#[derive(Debug, Clone, PartialEq)]
pub enum Readiness {
    /// Yes, with these outputs.
    Ready(Conditioned),
    /// Not now.
    NotReady(NotReadyReason),
}

impl JobRecord {
    /// The readiness this record gives.
    pub fn readiness(&self) -> Readiness {
        match (&self.state, &self.identity) {
            (JobState::Ready, Some(identity)) => {
                let renditions: Vec<RenditionOutput> = self
                    .spec
                    .recipe
                    .variant_set
                    .renditions
                    .iter()
                    .filter_map(|r| self.renditions.get(&r.name).cloned())
                    .collect();
                if renditions.len() == self.spec.recipe.variant_set.renditions.len() {
                    Readiness::Ready(Conditioned {
                        identity: identity.clone(),
                        recipe_hash: self.recipe_hash.clone(),
                        renditions,
                    })
                } else {
                    Readiness::NotReady(NotReadyReason::NoVariantMatch)
                }
            }
            (JobState::Ready, None) => Readiness::NotReady(NotReadyReason::TranscodeError(
                "ready without an identity".into(),
            )),
            (JobState::Queued | JobState::Running { .. }, _) => {
                Readiness::NotReady(NotReadyReason::TranscodeInProgress)
            }
            (JobState::Failed { reason, .. }, _) => {
                Readiness::NotReady(NotReadyReason::TranscodeError(reason.clone()))
            }
        }
    }

    /// Priority order: deadline (none last), then submission.
    pub fn priority(&self) -> (u64, u64) {
        (self.deadline_ms.unwrap_or(u64::MAX), self.seq)
    }

    /// Whether a worker may take it at `now_ms`.
    pub fn claimable(&self, now_ms: u64) -> bool {
        match &self.state {
            JobState::Queued => true,
            JobState::Running { lease_until_ms, .. } => *lease_until_ms <= now_ms,
            JobState::Ready | JobState::Failed { .. } => false,
        }
    }
}

/// Something a worker learned while running a job.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// The source was fetched and hashed.
    Identity(CreativeIdentity),
    /// A rendition was finished and checked.
    Rendition(Box<RenditionOutput>),
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Every rendition is done.
    Ready,
    /// It failed.
    Failed {
        /// Why.
        reason: String,
        /// Outputs failed their checks.
        quarantined: bool,
    },
}

/// The record after submitting `spec` to a queue holding `existing`: new → queued; the same recipe again →
/// unchanged, except that an earlier deadline raises a waiting job's priority; a changed recipe (new
/// loudness target, encoder settings) → queued afresh, unless a worker holds the old one.
pub fn merge_submit(
    existing: Option<JobRecord>,
    spec: JobSpec,
    deadline_ms: Option<u64>,
    now_ms: u64,
    seq: u64,
) -> JobRecord {
    let recipe_hash = spec.recipe.hash();
    match existing {
        Some(mut rec)
            if rec.recipe_hash == recipe_hash || matches!(rec.state, JobState::Running { .. }) =>
        {
            if matches!(rec.state, JobState::Queued | JobState::Running { .. }) {
                rec.deadline_ms = match (rec.deadline_ms, deadline_ms) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
            rec
        }
        _ => JobRecord {
            id: spec.id(),
            spec,
            recipe_hash,
            deadline_ms,
            seq,
            state: JobState::Queued,
            identity: None,
            renditions: BTreeMap::new(),
            attempts: 0,
            submitted_ms: now_ms,
            ready_ms: None,
        },
    }
}

/// Takes `rec` for `worker` until `now_ms + lease_ms`.
pub fn apply_claim(rec: &mut JobRecord, worker: &str, now_ms: u64, lease_ms: u64) {
    rec.state = JobState::Running {
        worker: worker.to_owned(),
        lease_until_ms: now_ms.saturating_add(lease_ms),
    };
    rec.attempts += 1;
}

fn held_by(rec: &JobRecord, worker: &str) -> Result<()> {
    match &rec.state {
        JobState::Running { worker: w, .. } if w == worker => Ok(()),
        _ => Err(Error::LeaseLost {
            id: rec.id.clone(),
            worker: worker.to_owned(),
        }),
    }
}

/// Renews `worker`'s lease.
pub fn apply_heartbeat(
    rec: &mut JobRecord,
    worker: &str,
    now_ms: u64,
    lease_ms: u64,
) -> Result<()> {
    held_by(rec, worker)?;
    rec.state = JobState::Running {
        worker: worker.to_owned(),
        lease_until_ms: now_ms.saturating_add(lease_ms),
    };
    Ok(())
}

/// Records `progress` by `worker`.
pub fn apply_progress(rec: &mut JobRecord, worker: &str, progress: Progress) -> Result<()> {
    held_by(rec, worker)?;
    match progress {
        Progress::Identity(identity) => {
            if rec.identity.as_ref().is_some_and(|i| i != &identity) {
                // The source changed under its URI: what was done was done for other bytes.
                rec.renditions.clear();
            }
            rec.identity = Some(identity);
        }
        Progress::Rendition(output) => {
            rec.renditions.insert(output.name.clone(), *output);
        }
    }
    Ok(())
}

/// Ends `worker`'s run of `rec`.
pub fn apply_finish(
    rec: &mut JobRecord,
    worker: &str,
    outcome: Outcome,
    now_ms: u64,
) -> Result<()> {
    held_by(rec, worker)?;
    rec.state = match outcome {
        Outcome::Ready => {
            rec.ready_ms = Some(now_ms);
            JobState::Ready
        }
        Outcome::Failed {
            reason,
            quarantined,
        } => JobState::Failed {
            reason,
            quarantined,
        },
    };
    Ok(())
}

/// Puts a failed job back in the queue (an operator's decision); finished renditions stay finished.
pub fn apply_retry(rec: &mut JobRecord) -> bool {
    if matches!(rec.state, JobState::Failed { .. }) {
        rec.state = JobState::Queued;
        true
    } else {
        false
    }
}

/// Durable storage of jobs, shared by the workers of one process ([`redb`](mod@redb)) or of many machines
/// (`pg`, feature `postgres`). Every method is atomic. Times are milliseconds since the Unix epoch, passed in
/// so tests control the clock.
#[async_trait::async_trait]
pub trait JobQueue: Send + Sync + 'static {
    /// Adds a job, or returns the existing one ([`merge_submit`]).
    async fn submit(
        &self,
        spec: JobSpec,
        deadline_ms: Option<u64>,
        now_ms: u64,
    ) -> Result<JobRecord>;
    /// The most urgent claimable job, now held by `worker` for `lease_ms`; `None` when there is none.
    async fn claim(&self, worker: &str, now_ms: u64, lease_ms: u64) -> Result<Option<JobRecord>>;
    /// Renews `worker`'s lease; [`Error::LeaseLost`] when another worker has taken the job.
    async fn heartbeat(&self, id: &str, worker: &str, now_ms: u64, lease_ms: u64) -> Result<()>;
    /// Records progress; [`Error::LeaseLost`] when `worker` no longer holds the job.
    async fn progress(&self, id: &str, worker: &str, progress: Progress) -> Result<()>;
    /// Ends the job; [`Error::LeaseLost`] when `worker` no longer holds it.
    async fn finish(&self, id: &str, worker: &str, outcome: Outcome, now_ms: u64) -> Result<()>;
    /// A job by id.
    async fn get(&self, id: &str) -> Result<Option<JobRecord>>;
    /// Requeues a failed job; `false` when it is not failed.
    async fn retry(&self, id: &str) -> Result<bool>;
    /// Every job.
    async fn list(&self) -> Result<Vec<JobRecord>>;
}

/// Whether `creative` is ready for the variant set with hash `variant_set_hash`: [`NotReadyReason::NewCreative`]
/// when the queue has never seen it.
pub async fn readiness(
    queue: &dyn JobQueue,
    creative: &CreativeKey,
    variant_set_hash: &str,
) -> Result<Readiness> {
    Ok(
        match queue.get(&job_id(creative, variant_set_hash)).await? {
            Some(rec) => rec.readiness(),
            None => Readiness::NotReady(NotReadyReason::NewCreative),
        },
    )
}
