//! Measuring a conditioned rendition with ffprobe and ffmpeg for [`crate::qc::evaluate`].

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::qc::parse::{
    black_intervals, ebur128_integrated, packet_spans, segment_frames, silence_intervals,
};
use crate::qc::{
    Measurements, QcThresholds, SegmentCheck, analysis_args, decode_args, frames_args, packets_args,
};
use crate::run::tools::Tools;

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// The segments of the media playlist at `path`: (file, duration, init segment).
pub(crate) fn playlist_segments(path: &Path) -> Result<Vec<(PathBuf, f64, Option<PathBuf>)>> {
    let text = std::fs::read_to_string(path).map_err(Error::io(path))?;
    let playlist = interlude_hls::parse_media_playlist(&text).map_err(|e| Error::ToolOutput {
        tool: "ffmpeg",
        reason: format!("{}: {e}", path.display()),
    })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut map = None;
    Ok(playlist
        .segments
        .iter()
        .map(|seg| {
            if let Some(uri) = seg.map.as_ref().and_then(|m| m.get("URI")) {
                map = Some(dir.join(uri));
            }
            (dir.join(&seg.uri), seg.duration, map.clone())
        })
        .collect())
}

async fn check_segment(
    tools: &Tools,
    name: String,
    file: &Path,
    size: Option<(u64, f64)>,
) -> Result<SegmentCheck> {
    let out = tools.ffprobe(&frames_args(&s(file))).await?;
    Ok(SegmentCheck {
        name,
        exit_ok: out.success,
        errors: out.stderr,
        frames: segment_frames(&out.stdout),
        size,
    })
}

/// Measures the rendition in `dir` (its `ts/`, `fmp4/` and `cmaf/`), using `scratch` for joined fragments.
pub async fn measure(
    tools: &Tools,
    dir: &Path,
    audio: bool,
    thresholds: &QcThresholds,
    scratch: &Path,
) -> Result<Measurements> {
    let mut m = Measurements::default();
    let ts_index = dir.join("ts/index.m3u8");
    for (file, duration, _) in playlist_segments(&ts_index)? {
        let bytes = std::fs::metadata(&file).map_err(Error::io(&file))?.len();
        let name = format!(
            "ts/{}",
            file.file_name()
                .map(|f| f.to_string_lossy())
                .unwrap_or_default()
        );
        m.segments
            .push(check_segment(tools, name, &file, Some((bytes, duration))).await?);
    }
    // A fragment decodes only after its track's init segment: join the two, as a player's buffer does.
    let cmaf = dir.join("cmaf");
    let mut fragmented = vec![PathBuf::from("fmp4/index.m3u8")];
    fragmented.extend(
        (0..if audio { 2 } else { 1 }).map(|t| PathBuf::from(format!("cmaf/media_{t}.m3u8"))),
    );
    for playlist in fragmented {
        let form = playlist
            .parent()
            .unwrap_or(Path::new(""))
            .to_string_lossy()
            .into_owned();
        for (file, _, init) in playlist_segments(&dir.join(&playlist))? {
            let init = init.ok_or_else(|| Error::ToolOutput {
                tool: "ffmpeg",
                reason: format!("{} has no EXT-X-MAP", playlist.display()),
            })?;
            let mut joined = std::fs::read(&init).map_err(Error::io(&init))?;
            joined.extend(std::fs::read(&file).map_err(Error::io(&file))?);
            let tmp = scratch.join("qc-fragment.mp4");
            std::fs::write(&tmp, joined).map_err(Error::io(&tmp))?;
            let name = format!(
                "{form}/{}",
                file.file_name()
                    .map(|f| f.to_string_lossy())
                    .unwrap_or_default()
            );
            m.segments
                .push(check_segment(tools, name, &tmp, None).await?);
        }
    }
    for what in [
        "ts/index.m3u8",
        "fmp4/index.m3u8",
        "cmaf/index.m3u8",
        "cmaf/manifest.mpd",
    ] {
        let out = tools.ffmpeg(&decode_args(&s(&dir.join(what)))).await?;
        m.decodes.push((what.to_owned(), out.success, out.stderr));
    }
    m.ts = packet_spans(&tools.ffprobe(&packets_args(&s(&ts_index))).await?.stdout);
    m.dash = packet_spans(
        &tools
            .ffprobe(&packets_args(&s(&cmaf.join("manifest.mpd"))))
            .await?
            .stdout,
    );
    let analysis = tools
        .ffmpeg(&analysis_args(&s(&ts_index), audio, thresholds))
        .await?;
    if audio {
        m.integrated = ebur128_integrated(&analysis.stderr);
        m.silence = silence_intervals(&analysis.stderr, m.ts.video.duration());
    }
    m.black = black_intervals(&analysis.stderr);
    Ok(m)
}
