//! Creative conditioning in the server: the adapter between the stitcher and `interlude-condition`.
//!
//! An ad whose VAST offers no HLS rendition but a progressive or mezzanine file reaches the stitcher with a
//! [`ConditioningSource`]. [`Conditioning::resolve`] answers, for that ad and the channel's variant set (read
//! from the channel's master playlist), either the conditioned segments of every content rendition (served
//! under [`Conditioning::media_base`], so that the ad segment route redirects or proxies to them and the
//! server-side beacons fire as for any ad), or why not yet — `NEW_CREATIVE` (conditioning queued now, due by
//! this break), `TRANSCODE_IN_PROGRESS`, `TRANSCODE_ERROR`, `NO_VARIANT_MATCH` — and the stitcher skips the ad
//! for that pod. Nothing here transcodes on a request path: the jobs run in the worker pool (this node's, or
//! `interlude condition` workers on the shared PostgreSQL queue).
//!
//! Every viewer of a break asks about the same ads, so answers are cached: a ready creative's segments for
//! [`READY_TTL`], a not-ready answer for [`NOT_READY_TTL`] (the queue is asked again after that).

pub mod ahead;
pub mod config;
mod fetch;
pub mod routes;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use interlude_condition::identity::CreativeKey;
use interlude_condition::{
    ChannelDefaults, Conditioner, Container, EncoderSettings, JobQueue, JobRecord, JobSpec,
    NotReadyReason, Pool, PoolConfig, PoolEvent, Readiness, RenditionOutput, SourceCandidate,
    SourceFetcher, VariantSet,
};
use interlude_decision::ConditioningSource;

pub use config::ConditionConfig;
pub use fetch::GuardedFetcher;

use crate::stitcher::Clock;
use crate::stitcher::channel::ChannelSnapshot;

/// How long a ready creative's segments are kept in memory (outputs never change under their path).
pub const READY_TTL: Duration = Duration::from_secs(3600);
/// How long a not-ready answer stands before the queue is asked again.
pub const NOT_READY_TTL: Duration = Duration::from_secs(1);
/// Entries of each cache at most; past this the cache starts over (a few hundred bytes per entry).
const CACHE_CAPACITY: usize = 10_000;

/// An ad's conditioned segments, per content rendition of the channel.
#[derive(Debug, Clone, PartialEq)]
pub struct ConditionedAd {
    /// For each content rendition (in the channel snapshot's order), the segment URLs.
    pub segment_urls: Vec<Arc<[String]>>,
    /// Segment durations in microseconds (the same in every rendition).
    pub segment_micros: Arc<[u64]>,
    /// For fragmented MP4 outputs (a CMAF channel), per content rendition, the `EXT-X-MAP` line of the init
    /// segment; empty for MPEG-TS.
    pub maps: Vec<Arc<str>>,
    /// For each content rendition (in the same order), the URL of the conditioned media playlist: what an HLS
    /// Interstitials asset list gives the player, which fetches the ad itself.
    pub playlist_urls: Vec<String>,
}

/// Why an ad was skipped, and whether this answer came from the queue just now (log it) or from the cache.
#[derive(Debug, Clone, PartialEq)]
pub struct Skip {
    /// The reason.
    pub reason: NotReadyReason,
    /// Asked of the queue now (not a cached answer).
    pub fresh: bool,
}

/// One rendition's conditioned segments, in each container a channel may play.
#[derive(Debug, Clone, PartialEq)]
struct RenditionMedia {
    /// MPEG-TS segments, for TS channels.
    ts: Form,
    /// Fragmented MP4 segments with audio and video muxed, for CMAF channels; `None` for outputs of a recipe
    /// without that form.
    fmp4: Option<Form>,
}

/// One container's form of a conditioned rendition: its playlist, segments and init segment.
#[derive(Debug, Clone, PartialEq)]
struct Form {
    playlist: String,
    urls: Arc<[String]>,
    micros: Arc<[u64]>,
    /// The `EXT-X-MAP` line of the init segment (fragmented MP4 only).
    map: Option<Arc<str>>,
}

#[derive(Debug, Clone)]
enum Answer {
    Ready(Arc<BTreeMap<String, RenditionMedia>>),
    NotReady(NotReadyReason),
}

#[derive(Debug, Clone)]
struct Cached {
    answer: Answer,
    at: Instant,
}

/// A channel's variant set, computed once per master playlist.
#[derive(Debug, Clone)]
struct ChannelSet {
    master: usize,
    target: u64,
    set: Result<Arc<VariantSet>, String>,
}

/// The conditioner, its pool and the caches the stitcher reads through.
pub struct Conditioning {
    conditioner: Conditioner,
    pool: Mutex<Option<Pool>>,
    root: PathBuf,
    media_base: String,
    defaults: ChannelDefaults,
    segment_duration_ms: Option<u32>,
    sets: DashMap<String, ChannelSet>,
    answers: DashMap<String, Cached>,
    /// One question to the queue per job at a time: the viewers of a break decided at once wait for it and
    /// read its answer (so a new creative is `NEW_CREATIVE` once, then `TRANSCODE_IN_PROGRESS`).
    asking: DashMap<String, Arc<tokio::sync::Mutex<()>>>,
    skips: DashMap<&'static str, u64>,
    clock: Clock,
}

impl std::fmt::Debug for Conditioning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conditioning")
            .field("root", &self.root)
            .field("media_base", &self.media_base)
            .finish_non_exhaustive()
    }
}

impl Conditioning {
    /// Conditioning through `queue` into `root`, served under `media_base`; with `config.workers` > 0 a pool
    /// of that many workers starts here, fetching sources with `fetcher`.
    pub fn start(
        config: &ConditionConfig,
        queue: Arc<dyn JobQueue>,
        fetcher: Arc<dyn SourceFetcher>,
        root: PathBuf,
        media_base: String,
        clock: Clock,
    ) -> Result<Conditioning, interlude_condition::Error> {
        let mut conditioner = Conditioner::new(
            queue.clone(),
            config.loudness.target(),
            EncoderSettings {
                preset: config.preset.clone(),
            },
        );
        std::fs::create_dir_all(&root).map_err(|source| interlude_condition::Error::Io {
            path: root.clone(),
            source,
        })?;
        let pool = if config.workers > 0 {
            let pool = Pool::start(
                PoolConfig {
                    root: root.clone(),
                    concurrency: config.workers,
                    niceness: config.niceness,
                    ffmpeg_threads: config.ffmpeg_threads,
                    ffmpeg: config.ffmpeg.clone(),
                    ffprobe: config.ffprobe.clone(),
                    job_timeout_secs: config.job_timeout_secs,
                    max_source_bytes: config.max_source_mb.saturating_mul(1 << 20),
                    ..PoolConfig::default()
                },
                queue,
                fetcher,
            )?;
            conditioner = conditioner.with_waker(pool.waker());
            Some(pool)
        } else {
            None
        };
        Ok(Conditioning {
            conditioner,
            pool: Mutex::new(pool),
            root,
            media_base: media_base.trim_end_matches('/').to_owned(),
            defaults: ChannelDefaults {
                audio_sample_rate: config.audio_sample_rate,
                audio_channels: config.audio_channels,
                audio_bitrate: config.audio_bitrate,
                ..ChannelDefaults::default()
            },
            segment_duration_ms: config.segment_duration_ms,
            sets: DashMap::new(),
            answers: DashMap::new(),
            asking: DashMap::new(),
            skips: DashMap::new(),
            clock,
        })
    }

    /// Where the outputs are written.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The URL prefix under which [`Conditioning::root`] is served (no trailing `/`).
    pub fn media_base(&self) -> &str {
        &self.media_base
    }

    /// The conditioner (its queue, for the condition API).
    pub fn conditioner(&self) -> &Conditioner {
        &self.conditioner
    }

    /// This node's pool's events from now on (`None` without local workers).
    pub fn subscribe(&self) -> Option<tokio::sync::broadcast::Receiver<PoolEvent>> {
        self.pool.lock().ok()?.as_ref().map(Pool::subscribe)
    }

    /// Stops the local workers and their ffmpeg children; their jobs resume from the last finished
    /// rendition when claimed again.
    pub async fn shutdown(&self) {
        let pool = self.pool.lock().ok().and_then(|mut p| p.take());
        if let Some(pool) = pool {
            pool.shutdown().await;
        }
    }

    /// Counts an ad skipped for `reason` (the stitcher calls it for every skip; see [`Conditioning::skips`]).
    pub(crate) fn note_skip(&self, reason: &NotReadyReason) {
        *self.skips.entry(reason.code()).or_insert(0) += 1;
    }

    /// Ads skipped since start, by reason code (what `stitcher_creatives_skipped_total` counts on this node).
    pub fn skips(&self) -> BTreeMap<String, u64> {
        self.skips
            .iter()
            .map(|e| ((*e.key()).to_owned(), *e.value()))
            .collect()
    }

    /// The clock's time, ms since the epoch.
    pub(crate) fn now_ms(&self) -> u64 {
        u64::try_from((self.clock)().timestamp_millis()).unwrap_or(0)
    }

    /// The variant set of `channel` as `snapshot` shows it: its master playlist's video variants, with the
    /// segment duration of its media playlists (or `segment_duration_ms`).
    pub fn variant_set(
        &self,
        channel: &str,
        snapshot: &ChannelSnapshot,
    ) -> Result<Arc<VariantSet>, String> {
        let master = snapshot
            .master
            .as_ref()
            .ok_or_else(|| "the channel's master playlist is not read yet".to_owned())?;
        let primary = snapshot
            .renditions
            .first()
            .ok_or_else(|| "the channel has no rendition yet".to_owned())?;
        let key = Arc::as_ptr(master) as usize;
        let target = primary.media.target_duration;
        if let Some(cached) = self.sets.get(channel)
            && cached.master == key
            && cached.target == target
        {
            return cached.set.clone();
        }
        // Every job writes a TS and a muxed fMP4 form of each rendition (and per-track CMAF), so a TS channel
        // and its CMAF twin share one conditioning (the container is not part of the set's hash); the form
        // stitched is the channel's.
        let defaults = ChannelDefaults {
            segment_duration_ms: self
                .segment_duration_ms
                .unwrap_or_else(|| u32::try_from(target.saturating_mul(1000)).unwrap_or(u32::MAX)),
            container: if primary.media.is_fmp4() {
                Container::Cmaf
            } else {
                Container::Ts
            },
            ..self.defaults.clone()
        };
        let set = VariantSet::from_master_playlist(master, &defaults)
            .map(Arc::new)
            .map_err(|e| e.to_string());
        self.sets.insert(
            channel.to_owned(),
            ChannelSet {
                master: key,
                target,
                set: set.clone(),
            },
        );
        set
    }

    /// The job spec conditioning `source` for `set`.
    pub fn spec(
        &self,
        source: &ConditioningSource,
        set: &VariantSet,
    ) -> interlude_condition::Result<JobSpec> {
        let candidates: Vec<SourceCandidate> = source.files.iter().map(candidate).collect();
        JobSpec::for_candidates(
            &candidates,
            |uri| {
                CreativeKey::from_ids(
                    source
                        .universal_ad_id
                        .as_ref()
                        .map(|(r, v)| (r.as_str(), v.as_str())),
                    source.ad_id.as_deref(),
                    source.creative_id.as_deref(),
                    uri,
                )
            },
            self.conditioner.recipe(set),
        )
    }

    /// The conditioned segments of the ad `source` for every content rendition of `channel`, or why the ad
    /// must be skipped now; a creative seen for the first time is queued, due by `deadline_ms` (the break).
    pub async fn resolve(
        &self,
        channel: &str,
        snapshot: &ChannelSnapshot,
        source: &ConditioningSource,
        deadline_ms: Option<u64>,
    ) -> Result<ConditionedAd, Skip> {
        let fresh = |reason| Skip {
            reason,
            fresh: true,
        };
        let set = self.variant_set(channel, snapshot).map_err(|why| {
            tracing::debug!(%channel, %why, "No variant set to condition for.");
            fresh(NotReadyReason::NoVariantMatch)
        })?;
        let spec = self.spec(source, &set);
        let id = match &spec {
            Ok(spec) => spec.id(),
            Err(_) => return Err(fresh(NotReadyReason::NoVariantMatch)),
        };
        let media = match self.cached(&id) {
            Some(Answer::Ready(media)) => media,
            Some(Answer::NotReady(reason)) => {
                return Err(Skip {
                    reason,
                    fresh: false,
                });
            }
            None => {
                let lock = self.asking.entry(id.clone()).or_default().clone();
                let _asking = lock.lock().await;
                // Another decision may have asked while this one waited.
                match self.cached(&id) {
                    Some(Answer::Ready(media)) => {
                        self.asking.remove(&id);
                        return self.for_channel(snapshot, &set, &media);
                    }
                    Some(Answer::NotReady(reason)) => {
                        self.asking.remove(&id);
                        return Err(Skip {
                            reason,
                            fresh: false,
                        });
                    }
                    None => {}
                }
                let answer = self.ask(spec, deadline_ms).await;
                let cached = match &answer {
                    // Queued now: whoever asks next sees it in progress.
                    Answer::NotReady(NotReadyReason::NewCreative) => {
                        Answer::NotReady(NotReadyReason::TranscodeInProgress)
                    }
                    other => other.clone(),
                };
                if self.answers.len() >= CACHE_CAPACITY {
                    self.answers.clear();
                }
                self.answers.insert(
                    id.clone(),
                    Cached {
                        answer: cached,
                        at: Instant::now(),
                    },
                );
                self.asking.remove(&id);
                match answer {
                    Answer::Ready(media) => media,
                    Answer::NotReady(reason) => return Err(fresh(reason)),
                }
            }
        };
        self.for_channel(snapshot, &set, &media)
    }

    /// A cached answer still standing.
    fn cached(&self, id: &str) -> Option<Answer> {
        let c = self.answers.get(id)?;
        match &c.answer {
            Answer::Ready(_) if c.at.elapsed() < READY_TTL => Some(c.answer.clone()),
            Answer::NotReady(_) if c.at.elapsed() < NOT_READY_TTL => Some(c.answer.clone()),
            _ => None,
        }
    }

    /// The conditioned renditions `media` mapped onto the channel's content renditions.
    fn for_channel(
        &self,
        snapshot: &ChannelSnapshot,
        set: &VariantSet,
        media: &BTreeMap<String, RenditionMedia>,
    ) -> Result<ConditionedAd, Skip> {
        let fresh = |reason| Skip {
            reason,
            fresh: true,
        };
        let mut segment_urls = Vec::with_capacity(snapshot.renditions.len());
        let mut playlist_urls = Vec::with_capacity(snapshot.renditions.len());
        let mut maps = Vec::new();
        let mut micros: Option<Arc<[u64]>> = None;
        for content in &snapshot.renditions {
            let rendition = set
                .rendition_for(&content.variant.uri)
                .and_then(|r| media.get(&r.name))
                .ok_or_else(|| fresh(NotReadyReason::NoVariantMatch))?;
            // A player keeps one container per variant stream: the TS form for TS content, the fMP4 form
            // (after its init segment) for CMAF content.
            let form = if content.media.is_fmp4() {
                rendition.fmp4.as_ref().ok_or_else(|| {
                    fresh(NotReadyReason::TranscodeError(
                        "conditioned without a fragmented MP4 form".into(),
                    ))
                })?
            } else {
                &rendition.ts
            };
            match &micros {
                None => micros = Some(form.micros.clone()),
                Some(m) if m.len() != form.micros.len() => {
                    return Err(fresh(NotReadyReason::TranscodeError(
                        "conditioned renditions differ in segment count".into(),
                    )));
                }
                Some(_) => {}
            }
            segment_urls.push(form.urls.clone());
            playlist_urls.push(form.playlist.clone());
            maps.extend(form.map.clone());
        }
        let segment_micros = micros.ok_or_else(|| fresh(NotReadyReason::NoVariantMatch))?;
        Ok(ConditionedAd {
            segment_urls,
            segment_micros,
            playlist_urls,
            maps,
        })
    }

    async fn ask(
        &self,
        spec: interlude_condition::Result<JobSpec>,
        deadline_ms: Option<u64>,
    ) -> Answer {
        let readiness = match self
            .conditioner
            .ensure_spec(spec, deadline_ms, self.now_ms())
            .await
        {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "Conditioning queue unavailable; creative skipped.");
                return Answer::NotReady(NotReadyReason::TranscodeError(format!(
                    "queue unavailable: {e}"
                )));
            }
        };
        match readiness {
            Readiness::NotReady(reason) => {
                if reason == NotReadyReason::NewCreative {
                    metrics::counter!(crate::telemetry::metrics::CONDITION_JOBS_SUBMITTED, "origin" => "stitcher")
                        .increment(1);
                }
                Answer::NotReady(reason)
            }
            Readiness::Ready(conditioned) => {
                let mut media = BTreeMap::new();
                for out in &conditioned.renditions {
                    match self.rendition_media(out).await {
                        Ok(m) => {
                            media.insert(out.name.clone(), m);
                        }
                        Err(why) => {
                            tracing::warn!(rendition = %out.name, %why, "Conditioned rendition unreadable.");
                            return Answer::NotReady(NotReadyReason::TranscodeError(why));
                        }
                    }
                }
                Answer::Ready(Arc::new(media))
            }
        }
    }

    /// A finished rendition's TS and fMP4 segments, from their playlists under the root, as URLs under the
    /// media base.
    async fn rendition_media(&self, out: &RenditionOutput) -> Result<RenditionMedia, String> {
        // The fMP4 form serves CMAF channels only: one unreadable costs those, not the TS channels.
        let fmp4 = if out.fmp4_playlist.is_empty() {
            None
        } else {
            match self.form(&out.fmp4_playlist).await {
                Ok(form) => Some(form),
                Err(why) => {
                    tracing::warn!(rendition = %out.name, %why, "Conditioned fMP4 form unreadable; TS only.");
                    None
                }
            }
        };
        Ok(RenditionMedia {
            ts: self.form(&out.ts_playlist).await?,
            fmp4,
        })
    }

    /// The segments of the conditioned media playlist at `playlist` (relative to the root).
    async fn form(&self, playlist: &str) -> Result<Form, String> {
        let path = self.root.join(playlist);
        let text = tokio::fs::read_to_string(&path)
            .await
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let url = format!("{}/{}", self.media_base, playlist);
        let vod = interlude_stitch::hls::parse_vod_media(&text, &url)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if vod.segments.is_empty() {
            return Err(format!("{}: no segments", path.display()));
        }
        let (urls, micros): (Vec<String>, Vec<u64>) = vod.segments.into_iter().unzip();
        Ok(Form {
            playlist: url,
            urls: urls.into(),
            micros: micros.into(),
            map: vod.map.map(Arc::from),
        })
    }

    /// Whether `source` is conditioned for `channel`, without queueing anything (the decision explainer).
    pub async fn readiness(
        &self,
        channel: &str,
        snapshot: &ChannelSnapshot,
        source: &ConditioningSource,
    ) -> Result<(), NotReadyReason> {
        let set = self
            .variant_set(channel, snapshot)
            .map_err(|_| NotReadyReason::NoVariantMatch)?;
        let spec = self
            .spec(source, &set)
            .map_err(|_| NotReadyReason::NoVariantMatch)?;
        match interlude_condition::jobs::readiness(
            self.conditioner.queue().as_ref(),
            &spec.creative,
            &set.hash(),
        )
        .await
        {
            Ok(Readiness::Ready(_)) => Ok(()),
            Ok(Readiness::NotReady(reason)) => Err(reason),
            Err(e) => Err(NotReadyReason::TranscodeError(format!(
                "queue unavailable: {e}"
            ))),
        }
    }

    /// Queues `source` for `set` ahead of need (after every job a break is waiting for); `origin` names who
    /// asked (`api`, `catalog`) in `condition_jobs_submitted_total`.
    pub async fn precondition(
        &self,
        source: &ConditioningSource,
        set: &VariantSet,
        origin: &'static str,
    ) -> interlude_condition::Result<JobRecord> {
        let spec = self.spec(source, set)?;
        let rec = self
            .conditioner
            .precondition_spec(spec, self.now_ms())
            .await?;
        metrics::counter!(crate::telemetry::metrics::CONDITION_JOBS_SUBMITTED, "origin" => origin)
            .increment(1);
        Ok(rec)
    }
}

/// The conditioner's view of a file the VAST offered.
fn candidate(f: &interlude_decision::SourceFile) -> SourceCandidate {
    SourceCandidate {
        uri: f.uri.clone(),
        mime_type: f.mime_type.clone(),
        progressive: f.progressive,
        width: f.width,
        height: f.height,
        bitrate_kbps: f.bitrate_kbps,
        file_size: f.file_size,
        mezzanine: f.mezzanine,
        api_framework: f.api_framework.clone(),
    }
}

#[cfg(test)]
mod tests;
