//! The tracks cut out of the demo's muxed CMAF creatives and slate (`assets/cmaf/{ads/*,slate}/r*`) decode with
//! a real decoder: `init + segments` of each track plays in ffmpeg without an error, holds exactly one stream of
//! the track's kind, and lasts as long as that stream does in the muxed file. Needs ffmpeg/ffprobe on PATH
//! (`scripts/test.sh` installs them).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use interlude_mpegts::fmp4::{SingleTrack, TrackSelector};

fn assets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/cmaf")
}

fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run {cmd:?}: {e} (ffmpeg/ffprobe must be on PATH; scripts/test.sh installs them)")
    });
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// (codec_type, duration in seconds) of each stream of `file`, from its packets (the last packet's end).
fn streams(file: &Path) -> Vec<(String, f64)> {
    let (ok, out, err) = run(Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=index,codec_type",
            "-of",
            "csv=p=0",
        ])
        .arg(file));
    assert!(ok, "ffprobe {file:?}: {err}");
    let kinds: Vec<(usize, String)> = out
        .lines()
        .filter_map(|l| {
            let (i, k) = l.split_once(',')?;
            Some((i.parse().ok()?, k.trim().to_owned()))
        })
        .collect();
    kinds
        .into_iter()
        .map(|(i, kind)| {
            let (ok, out, err) = run(Command::new("ffprobe")
                .args([
                    "-v",
                    "error",
                    "-select_streams",
                    &i.to_string(),
                    "-show_entries",
                    "packet=pts_time,duration_time",
                    "-of",
                    "csv=p=0",
                ])
                .arg(file));
            assert!(ok, "ffprobe {file:?}: {err}");
            let (mut first, mut last) = (f64::MAX, f64::MIN);
            for l in out.lines() {
                let mut f = l.split(',').map(|v| v.trim().parse::<f64>());
                if let (Some(Ok(pts)), Some(Ok(d))) = (f.next(), f.next()) {
                    first = first.min(pts);
                    last = last.max(pts + d);
                }
            }
            (kind, last - first)
        })
        .collect()
}

#[test]
fn each_track_of_every_muxed_creative_decodes_alone_with_its_duration() {
    let dir = std::env::temp_dir().join(format!("interlude-fmp4-tracks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut checked = 0;
    for item in ["ads/ad15", "ads/ad30", "slate"] {
        for rendition in ["r0", "r1"] {
            let src = assets().join(item).join(rendition);
            let init = std::fs::read(src.join("init.mp4")).unwrap();
            let mut names: Vec<PathBuf> = std::fs::read_dir(&src)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "m4s"))
                .collect();
            names.sort();
            let segments: Vec<Vec<u8>> = names.iter().map(|p| std::fs::read(p).unwrap()).collect();
            let muxed_path = dir.join("muxed.mp4");
            std::fs::write(&muxed_path, [init.clone(), segments.concat()].concat()).unwrap();
            let muxed = streams(&muxed_path);
            assert_eq!(muxed.len(), 2, "{item}/{rendition} is muxed");
            for (handler, kind) in [(*b"vide", "video"), (*b"soun", "audio")] {
                let single = SingleTrack::new(&init, TrackSelector::Handler(handler)).unwrap();
                let mut bytes = single.init.clone();
                for s in &segments {
                    bytes.extend_from_slice(&single.segment(s).unwrap());
                }
                let path = dir.join(format!("{kind}.mp4"));
                std::fs::write(&path, &bytes).unwrap();
                let (ok, _, err) = run(Command::new("ffmpeg")
                    .args(["-hide_banner", "-v", "error", "-i"])
                    .arg(&path)
                    .args(["-f", "null", "-"]));
                assert!(
                    ok && err.trim().is_empty(),
                    "{item}/{rendition} {kind}: ffmpeg says {err}"
                );
                let alone = streams(&path);
                assert_eq!(alone.len(), 1, "{item}/{rendition} {kind}: {alone:?}");
                assert_eq!(alone[0].0, kind);
                let (_, expected) = muxed.iter().find(|(k, _)| k == kind).unwrap();
                assert!(*expected > 1.9, "{item}/{rendition} {kind}: {expected} s");
                assert!(
                    (alone[0].1 - expected).abs() < 1e-3,
                    "{item}/{rendition} {kind}: {} s alone, {expected} s muxed",
                    alone[0].1
                );
                checked += 1;
            }
        }
    }
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(checked, 12);
}
