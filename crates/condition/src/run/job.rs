//! Running one claimed job: fetch and hash the source, probe it, then for each rendition not yet finished
//! measure loudness (pass 1, once per channel layout), encode, remux to TS and CMAF, check, and move the
//! rendition into place — recording it in the queue before going on, so a restart resumes after it.

use std::collections::HashMap;
use std::path::Path;

use tokio::sync::broadcast;

use super::PoolEvent;
use super::measure::{measure, playlist_segments};
use super::tools::Tools;
use crate::error::{Error, Result};
use crate::fetch::{SourceFetcher, sha256_file};
use crate::identity::CreativeIdentity;
use crate::jobs::{JobQueue, JobRecord, Outcome, Progress, RenditionOutput};
use crate::layout::{Layout, RENDITION_MARKER};
use crate::pool::PoolConfig;
use crate::probe::{ffprobe_args, parse_ffprobe};
use crate::qc::{Expected, evaluate};
use crate::recipe::loudness::{self, LoudnormMeasurement};
use crate::recipe::{self, CMAF_PLAYLIST, DASH_MANIFEST, FMP4_PLAYLIST, TS_PLAYLIST};
use crate::variant::RenditionSpec;

/// What a job needs from its worker.
pub(crate) struct JobContext<'a> {
    pub(crate) queue: &'a dyn JobQueue,
    pub(crate) fetcher: &'a dyn SourceFetcher,
    pub(crate) tools: &'a Tools,
    pub(crate) layout: &'a Layout,
    pub(crate) settings: &'a PoolConfig,
    pub(crate) events: &'a broadcast::Sender<PoolEvent>,
    pub(crate) worker: &'a str,
}

fn mkdir(p: &Path) -> Result<()> {
    std::fs::create_dir_all(p).map_err(Error::io(p))
}

fn remove_dir(p: &Path) -> Result<()> {
    match std::fs::remove_dir_all(p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(p)(e)),
        _ => Ok(()),
    }
}

fn rel(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Runs `rec` to an outcome. `Err` only for a lost lease or a queue failure (nothing to record); every other
/// failure is the `Outcome::Failed` to record.
pub(crate) async fn run_job(cx: &JobContext<'_>, rec: JobRecord) -> Result<Outcome> {
    match condition(cx, &rec).await {
        Ok(()) => Ok(Outcome::Ready),
        Err(e @ (Error::LeaseLost { .. } | Error::Queue(_))) => Err(e),
        Err(Error::UnknownJob(id)) => Err(Error::UnknownJob(id)),
        Err(Error::Quarantined(reason)) => Ok(Outcome::Failed {
            reason,
            quarantined: true,
        }),
        Err(e) => Ok(Outcome::Failed {
            reason: e.to_string(),
            quarantined: false,
        }),
    }
}

async fn condition(cx: &JobContext<'_>, rec: &JobRecord) -> Result<()> {
    let work = cx.layout.work_dir(&rec.id);
    mkdir(&work)?;
    let source = work.join("source");
    if !source.exists() {
        let part = work.join("source.part");
        cx.fetcher
            .fetch(&rec.spec.source.uri, &part, cx.settings.max_source_bytes)
            .await?;
        std::fs::rename(&part, &source).map_err(Error::io(&source))?;
    }
    let identity = CreativeIdentity {
        key: rec.spec.creative.clone(),
        content_sha256: sha256_file(&source).await?,
    };
    cx.queue
        .progress(&rec.id, cx.worker, Progress::Identity(identity.clone()))
        .await?;
    // A changed file under a known creative key invalidates what the record says is done.
    let done = if rec.identity.as_ref() == Some(&identity) {
        rec.renditions.clone()
    } else {
        Default::default()
    };
    let probe = cx.tools.ffprobe(&ffprobe_args(&rel(&source))).await?;
    if !probe.success {
        return Err(Error::Process {
            program: "ffprobe".into(),
            reason: super::tools::tail(&probe.stderr),
        });
    }
    let info = parse_ffprobe(&probe.stdout)?;
    let recipe_hash = rec.recipe_hash.clone();
    // Pass 1 is measured after the rendition's downmix and resampling, so once per (channels, rate).
    let mut measured: HashMap<(u8, u32), LoudnormMeasurement> = HashMap::new();
    for r in &rec.spec.recipe.variant_set.renditions {
        let final_dir = cx.layout.rendition_dir(&identity, &recipe_hash, &r.name);
        let marker = final_dir.join(RENDITION_MARKER);
        if done.contains_key(&r.name) && marker.exists() {
            let _ = cx.events.send(PoolEvent::RenditionSkipped {
                job: rec.id.clone(),
                rendition: r.name.clone(),
            });
            continue;
        }
        // Done before, by this or another worker, even if the queue does not know: content addressing means
        // the directory is this recipe's output for these bytes.
        if let Some(output) = std::fs::read(&marker)
            .ok()
            .and_then(|b| serde_json::from_slice::<RenditionOutput>(&b).ok())
        {
            cx.queue
                .progress(&rec.id, cx.worker, Progress::Rendition(Box::new(output)))
                .await?;
            let _ = cx.events.send(PoolEvent::RenditionSkipped {
                job: rec.id.clone(),
                rendition: r.name.clone(),
            });
            continue;
        }
        let _ = cx.events.send(PoolEvent::RenditionStarted {
            job: rec.id.clone(),
            rendition: r.name.clone(),
        });
        let loudnorm = match (&r.audio, info.has_audio) {
            (Some(a), true) => {
                let m = match measured.get(&(a.channels, a.sample_rate)) {
                    Some(m) => *m,
                    None => {
                        let m = measure_loudness(cx, &source, r, &rec.spec.recipe.loudness).await?;
                        measured.insert((a.channels, a.sample_rate), m);
                        m
                    }
                };
                Some(m)
            }
            _ => None,
        };
        let output = rendition(cx, rec, r, &identity, &source, &info, loudnorm, &work).await?;
        cx.queue
            .progress(&rec.id, cx.worker, Progress::Rendition(Box::new(output)))
            .await?;
        let _ = cx.events.send(PoolEvent::RenditionReady {
            job: rec.id.clone(),
            rendition: r.name.clone(),
        });
    }
    remove_dir(&work)?;
    Ok(())
}

async fn measure_loudness(
    cx: &JobContext<'_>,
    source: &Path,
    r: &RenditionSpec,
    target: &loudness::LoudnessTarget,
) -> Result<LoudnormMeasurement> {
    let Some(args) = recipe::measure_args(source, r, target) else {
        return Err(Error::ToolOutput {
            tool: "loudnorm",
            reason: "rendition without audio".into(),
        });
    };
    let out = cx.tools.ffmpeg_ok("loudness measurement", &args).await?;
    loudness::parse_measurement(&out.stderr)
}

#[allow(clippy::too_many_arguments)]
async fn rendition(
    cx: &JobContext<'_>,
    rec: &JobRecord,
    r: &RenditionSpec,
    identity: &CreativeIdentity,
    source: &Path,
    info: &crate::probe::SourceInfo,
    loudnorm: Option<LoudnormMeasurement>,
    work: &Path,
) -> Result<RenditionOutput> {
    let target = rec.spec.recipe.loudness;
    let partial = cx.layout.partial_dir(identity, &rec.recipe_hash, &r.name);
    remove_dir(&partial)?;
    mkdir(&partial.join("ts"))?;
    mkdir(&partial.join("fmp4"))?;
    mkdir(&partial.join("cmaf"))?;
    let encoded = work.join(format!("{}.mp4", r.name));
    let filter = loudnorm
        .as_ref()
        .and_then(|m| loudness::apply_filter(&target, m));
    let args = recipe::encode_args(
        source,
        info,
        r,
        filter.as_deref(),
        &rec.spec.recipe.encoder,
        cx.settings.ffmpeg_threads,
        &encoded,
    )?;
    cx.tools.ffmpeg_ok("encode", &args).await?;
    cx.tools
        .ffmpeg_ok(
            "TS remux",
            &recipe::ts_args(&encoded, &partial.join("ts"), r),
        )
        .await?;
    cx.tools
        .ffmpeg_ok(
            "fMP4 remux",
            &recipe::fmp4_args(&encoded, &partial.join("fmp4"), r),
        )
        .await?;
    cx.tools
        .ffmpeg_ok(
            "CMAF remux",
            &recipe::cmaf_args(&encoded, &partial.join("cmaf"), r),
        )
        .await?;
    strip_program_date_time(&partial.join("cmaf"))?;
    let measurements =
        measure(cx.tools, &partial, r.audio.is_some(), &cx.settings.qc, work).await?;
    let expected = Expected {
        duration: recipe::output_length(info, r)?.1,
        frame: 1.0 / r.video.frame_rate.as_f64(),
        audio: r.audio.is_some(),
        loudness: loudnorm
            .filter(|m| !m.is_silent())
            .map(|_| target.integrated),
        bandwidth: r.bandwidth,
    };
    let qc = evaluate(&measurements, &expected, &cx.settings.qc);
    if !qc.failures.is_empty() {
        let kept = partial.with_extension("quarantined");
        remove_dir(&kept)?;
        let _ = std::fs::rename(&partial, &kept);
        return Err(Error::Quarantined(format!(
            "{}: {}",
            r.name,
            qc.failures.join("; ")
        )));
    }
    for w in &qc.warnings {
        tracing::warn!(job = %rec.id, rendition = %r.name, warning = %w, "Conditioned rendition has a warning.");
    }
    let dir = crate::layout::Layout::rendition_rel(identity, &rec.recipe_hash, &r.name);
    let segments = playlist_segments(&partial.join(TS_PLAYLIST))?
        .into_iter()
        .map(|(_, d, _)| d)
        .collect();
    let output = RenditionOutput {
        name: r.name.clone(),
        dir: rel(&dir),
        ts_playlist: rel(&dir.join(TS_PLAYLIST)),
        fmp4_playlist: rel(&dir.join(FMP4_PLAYLIST)),
        cmaf_playlist: rel(&dir.join(CMAF_PLAYLIST)),
        dash_manifest: rel(&dir.join(DASH_MANIFEST)),
        codecs: r.codecs(),
        bandwidth: r.bandwidth,
        segments,
        qc,
    };
    let marker = partial.join(RENDITION_MARKER);
    let json = serde_json::to_vec_pretty(&output).map_err(|e| Error::Queue(e.to_string()))?;
    std::fs::write(&marker, json).map_err(Error::io(&marker))?;
    let final_dir = cx.layout.rendition_dir(identity, &rec.recipe_hash, &r.name);
    if final_dir.join(RENDITION_MARKER).exists() {
        // Another worker finished the same recipe for the same bytes first; its output is as good.
        remove_dir(&partial)?;
    } else {
        remove_dir(&final_dir)?;
        std::fs::rename(&partial, &final_dir).map_err(Error::io(&final_dir))?;
    }
    let _ = std::fs::remove_file(&encoded);
    Ok(output)
}

/// ffmpeg's DASH muxer stamps its HLS playlists with the wall clock (`EXT-X-PROGRAM-DATE-TIME`); an ad's
/// segments have no date of their own (the stitcher dates them in the break), so the tags are dropped.
fn strip_program_date_time(cmaf: &Path) -> Result<()> {
    let entries = std::fs::read_dir(cmaf).map_err(Error::io(cmaf))?;
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if !(name.starts_with("media_") && name.ends_with(".m3u8")) {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(Error::io(&path))?;
        let mut playlist =
            interlude_hls::parse_media_playlist(&text).map_err(|e| Error::ToolOutput {
                tool: "ffmpeg",
                reason: format!("{name}: {e}"),
            })?;
        for seg in &mut playlist.segments {
            seg.program_date_time = None;
        }
        std::fs::write(&path, playlist.to_string()).map_err(Error::io(&path))?;
    }
    Ok(())
}
