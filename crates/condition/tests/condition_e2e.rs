//! End to end with the real ffmpeg: a loud 1280×720 30 fps MP4 creative is conditioned to the 25 fps ladder
//! of a master playlist shaped like the origin simulator's, through the redb queue and the worker pool, which
//! is killed after its first rendition and restarted. The outputs are then checked with ffmpeg and ffprobe
//! directly (not through the crate's own checks): every TS segment, the TS playlist, the CMAF HLS playlist
//! and the DASH MPD decode with no error output; picture size and frame rate are the rendition's; durations
//! are within one frame of the source; every segment starts with a keyframe; loudness is −23 LUFS ± 1 LU.
//!
//! Needs ffmpeg and ffprobe (Debian package `ffmpeg`; `scripts/test.sh` installs it).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use interlude_condition::{
    ChannelDefaults, Conditioner, EncoderSettings, JobQueue, JobState, LocalFetcher,
    LoudnessStandard, NotReadyReason, Pool, PoolConfig, PoolEvent, Readiness, RedbQueue,
    VariantSet,
};

const SECONDS: f64 = 12.0;

/// The simulator's master playlist (crates/sim `origin/http.rs`) with the ladder this test conditions to.
const MASTER: &str = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n\
    #EXT-X-STREAM-INF:BANDWIDTH=700000,AVERAGE-BANDWIDTH=600000,CODECS=\"avc1.4d401e,mp4a.40.2\",RESOLUTION=640x360,FRAME-RATE=25.000\nr0/index.m3u8\n\
    #EXT-X-STREAM-INF:BANDWIDTH=1400000,AVERAGE-BANDWIDTH=1200000,CODECS=\"avc1.4d401f,mp4a.40.2\",RESOLUTION=960x540,FRAME-RATE=25.000\nr1/index.m3u8\n";

fn require_tools() {
    for tool in ["ffmpeg", "ffprobe"] {
        let ok = Command::new(tool)
            .arg("-version")
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            ok,
            "{tool} is not installed: apt-get install -y ffmpeg (or run scripts/test.sh)"
        );
    }
}

fn run(program: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(program)
        .args(args)
        .output()
        .expect("tool runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Integrated loudness as ffmpeg's ebur128 filter reports it.
fn loudness(path: &Path, stream: &str) -> f64 {
    let graph = format!("[{stream}]ebur128=framelog=verbose[a]");
    let (ok, _, err) = run(
        "ffmpeg",
        &[
            "-hide_banner",
            "-nostats",
            "-i",
            path.to_str().expect("utf-8"),
            "-filter_complex",
            &graph,
            "-map",
            "[a]",
            "-f",
            "null",
            "-",
        ],
    );
    assert!(ok, "ebur128 ran: {err}");
    let summary = &err[err.rfind("Integrated loudness:").expect("summary printed")..];
    let line = summary
        .lines()
        .find(|l| l.trim_start().starts_with("I:"))
        .expect("I: line");
    line.trim_start()[2..]
        .trim()
        .trim_end_matches("LUFS")
        .trim()
        .parse()
        .expect("a number")
}

fn make_creative(path: &Path, seconds: f64) {
    // testsrc2 + a 1 kHz tone raised to about −14 LUFS (a typical loud ad).
    let (ok, _, err) = run(
        "ffmpeg",
        &[
            "-hide_banner",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            &format!("testsrc2=size=1280x720:rate=30:duration={seconds}"),
            "-f",
            "lavfi",
            "-i",
            &format!("sine=frequency=1000:sample_rate=48000:duration={seconds},volume=7dB"),
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-pix_fmt",
            "yuv420p",
            "-threads",
            "2",
            "-c:a",
            "aac",
            "-b:a",
            "128k",
            "-ac",
            "2",
            path.to_str().expect("utf-8"),
        ],
    );
    assert!(ok, "creative made: {err}");
}

fn creative_for(uri: &str) -> interlude_vast::Creative {
    let xml = format!(
        r#"<VAST version="4.1"><Ad id="a1"><InLine><AdSystem>t</AdSystem><AdTitle>loud ad</AdTitle>
        <Impression>https://t.example/i</Impression><Creatives><Creative id="cr-1">
        <UniversalAdId idRegistry="ad-id.org">TEST0001000H</UniversalAdId><Linear><Duration>00:00:12</Duration>
        <MediaFiles><MediaFile delivery="progressive" type="video/mp4" width="1280" height="720" bitrate="2000">{uri}</MediaFile>
        </MediaFiles></Linear></Creative></Creatives></InLine></Ad></VAST>"#
    );
    let vast = interlude_vast::parse_vast(&xml).expect("valid VAST");
    vast.ads
        .into_iter()
        .find_map(|a| match a.body {
            interlude_vast::AdBody::InLine(i) => i.creatives.into_iter().next(),
            _ => None,
        })
        .expect("one creative")
}

fn pool_config(root: &Path) -> PoolConfig {
    PoolConfig {
        root: root.to_path_buf(),
        concurrency: 1,
        ffmpeg_threads: 2,
        poll_interval_ms: 200,
        ..PoolConfig::default()
    }
}

fn open_queue(path: &Path) -> Arc<RedbQueue> {
    // The previous pool's last blocking queue call may still hold the file for a moment.
    for _ in 0..100 {
        if let Ok(q) = RedbQueue::open(path) {
            return Arc::new(q);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Arc::new(RedbQueue::open(path).expect("queue reopens"))
}

async fn next_event(rx: &mut tokio::sync::broadcast::Receiver<PoolEvent>) -> PoolEvent {
    tokio::time::timeout(Duration::from_secs(900), rx.recv())
        .await
        .expect("the pool reports within 15 minutes")
        .expect("event channel open")
}

fn mtime(p: &Path) -> SystemTime {
    std::fs::metadata(p)
        .and_then(|m| m.modified())
        .expect("file exists")
}

fn files_with_ext(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("dir exists")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    v.sort();
    v
}

/// Duration of one media type in a packet listing: latest pts+duration minus earliest pts.
fn span(path: &Path, kind: &str) -> f64 {
    let (ok, out, err) = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-show_entries",
            "packet=codec_type,pts_time,duration_time",
            "-of",
            "csv=p=0",
            path.to_str().expect("utf-8"),
        ],
    );
    assert!(ok && err.is_empty(), "ffprobe {}: {err}", path.display());
    let (mut first, mut end) = (f64::MAX, f64::MIN);
    for l in out.lines() {
        let f: Vec<&str> = l.split(',').collect();
        if f.first() != Some(&kind) {
            continue;
        }
        let (Some(Ok(p)), Some(Ok(d))) = (
            f.get(1).map(|s| s.parse::<f64>()),
            f.get(2).map(|s| s.parse::<f64>()),
        ) else {
            continue;
        };
        first = first.min(p);
        end = end.max(p + d);
    }
    end - first
}

fn assert_decodes_cleanly(path: &Path) {
    let (ok, _, err) = run(
        "ffmpeg",
        &[
            "-hide_banner",
            "-v",
            "error",
            "-i",
            path.to_str().expect("utf-8"),
            "-f",
            "null",
            "-",
        ],
    );
    assert!(
        ok && err.trim().is_empty(),
        "{} decodes with errors: {err}",
        path.display()
    );
}

fn check_rendition(
    root: &Path,
    out: &interlude_condition::RenditionOutput,
    width: u32,
    height: u32,
) {
    let dir = root.join(&out.dir);
    let ts = dir.join("ts");
    let segments = files_with_ext(&ts, "ts");
    assert_eq!(segments.len(), 6, "12 s in 2 s segments");
    for seg in &segments {
        assert_decodes_cleanly(seg);
        let (ok, first, _) = run(
            "ffprobe",
            &[
                "-v",
                "error",
                "-select_streams",
                "v:0",
                "-show_entries",
                "packet=flags",
                "-read_intervals",
                "%+#1",
                "-of",
                "csv=p=0",
                seg.to_str().expect("utf-8"),
            ],
        );
        assert!(
            ok && first.trim_start().starts_with('K'),
            "{} starts with a keyframe: {first:?}",
            seg.display()
        );
    }
    for manifest in [
        root.join(&out.ts_playlist),
        root.join(&out.cmaf_playlist),
        root.join(&out.dash_manifest),
    ] {
        assert_decodes_cleanly(&manifest);
    }
    let (_, stream, _) = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=width,height,r_frame_rate",
            "-of",
            "csv=p=0",
            segments[0].to_str().expect("utf-8"),
        ],
    );
    // The TS has the stream once per program listing and once per stream: every line must agree.
    assert!(
        stream
            .lines()
            .filter(|l| !l.trim().is_empty())
            .all(|l| l.trim() == format!("{width},{height},25/1")),
        "{stream:?}"
    );
    let frame = 1.0 / 25.0 + 1e-3;
    for manifest in [root.join(&out.ts_playlist), root.join(&out.dash_manifest)] {
        for kind in ["video", "audio"] {
            let d = span(&manifest, kind);
            assert!(
                (d - SECONDS).abs() <= frame,
                "{} {kind} lasts {d} s, source {SECONDS} s",
                manifest.display()
            );
        }
    }
    let lufs = loudness(&root.join(&out.ts_playlist), "0:a:0");
    assert!(
        (lufs + 23.0).abs() <= 1.0,
        "{}: {lufs} LUFS, target -23 ± 1",
        out.name
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mp4_creative_is_conditioned_to_the_ladder_and_resumes_after_a_kill() {
    require_tools();
    let tmp = tempfile::tempdir().expect("temp dir");
    let library = tmp.path().join("library");
    std::fs::create_dir_all(&library).expect("mkdir");
    let source = library.join("loud-ad.mp4");
    make_creative(&source, SECONDS);
    let source_lufs = loudness(&source, "0:a:0");
    assert!(
        (source_lufs + 14.0).abs() <= 1.5,
        "the creative is loud: {source_lufs} LUFS"
    );

    let set = VariantSet::from_master_text(MASTER, &ChannelDefaults::default()).expect("ladder");
    let creative = creative_for(&format!("file://{}", source.display()));
    let root = tmp.path().join("conditioned");
    let db = tmp.path().join("queue.redb");
    let fetcher = Arc::new(LocalFetcher::new(&library));

    // First run: killed as soon as the first rendition is recorded.
    let queue = open_queue(&db);
    let pool =
        Pool::start(pool_config(&root), queue.clone(), fetcher.clone()).expect("pool starts");
    let mut events = pool.subscribe();
    let conditioner = Conditioner::new(
        queue.clone(),
        LoudnessStandard::EbuR128.target(),
        EncoderSettings::default(),
    )
    .with_waker(pool.waker());
    let first = conditioner
        .ensure(&creative, &set, Some(1), 1)
        .await
        .expect("ensure");
    assert_eq!(first, Readiness::NotReady(NotReadyReason::NewCreative));
    let first_rendition = loop {
        if let PoolEvent::RenditionReady { rendition, .. } = next_event(&mut events).await {
            break rendition;
        }
    };
    pool.shutdown().await;
    let job_id = queue.list().await.expect("list")[0].id.clone();
    let rec = queue.get(&job_id).await.expect("get").expect("job");
    assert!(
        matches!(rec.state, JobState::Running { .. }),
        "killed mid-job: {:?}",
        rec.state
    );
    assert_eq!(
        rec.renditions.keys().collect::<Vec<_>>(),
        [&first_rendition]
    );
    let first_dir = root.join(&rec.renditions[&first_rendition].dir);
    let first_segment_time = mtime(&first_dir.join("ts/000.ts"));
    drop((conditioner, queue, rec));

    // Restart: the job is requeued, resumes, and does only what is left.
    let queue = open_queue(&db);
    let conditioner = Conditioner::new(
        queue.clone(),
        LoudnessStandard::EbuR128.target(),
        EncoderSettings::default(),
    );
    assert_eq!(
        conditioner
            .ensure(&creative, &set, Some(1), 2)
            .await
            .expect("ensure"),
        Readiness::NotReady(NotReadyReason::TranscodeInProgress)
    );
    let pool = Pool::start(pool_config(&root), queue.clone(), fetcher).expect("pool restarts");
    let mut events = pool.subscribe();
    pool.wake();
    let mut seen = Vec::new();
    loop {
        let e = next_event(&mut events).await;
        let done = matches!(e, PoolEvent::Finished { .. });
        seen.push(e);
        if done {
            break;
        }
    }
    pool.shutdown().await;
    let started: Vec<&str> = seen
        .iter()
        .filter_map(|e| match e {
            PoolEvent::RenditionStarted { rendition, .. } => Some(rendition.as_str()),
            _ => None,
        })
        .collect();
    let skipped: Vec<&str> = seen
        .iter()
        .filter_map(|e| match e {
            PoolEvent::RenditionSkipped { rendition, .. } => Some(rendition.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(skipped, [first_rendition.as_str()], "events: {seen:?}");
    assert!(
        !started.contains(&first_rendition.as_str()),
        "finished rendition redone: {seen:?}"
    );
    assert_eq!(started.len(), set.renditions.len() - 1, "events: {seen:?}");
    assert_eq!(
        mtime(&first_dir.join("ts/000.ts")),
        first_segment_time,
        "first rendition untouched"
    );

    let Readiness::Ready(done) = conditioner
        .ensure(&creative, &set, Some(1), 3)
        .await
        .expect("ensure")
    else {
        panic!("ready after the restart: {:?}", queue.get(&job_id).await);
    };
    assert_eq!(done.identity.key.as_str(), "uaid:ad-id.org:TEST0001000H");
    assert_eq!(done.renditions.len(), 2);
    for (out, (w, h)) in done.renditions.iter().zip([(640, 360), (960, 540)]) {
        assert!(out.qc.failures.is_empty());
        assert!(
            out.dir.starts_with(&done.identity.dir_name()),
            "{} under the identity",
            out.dir
        );
        assert!(
            out.dir.contains(&done.recipe_hash),
            "{} under the recipe hash",
            out.dir
        );
        check_rendition(&root, out, w, h);
    }
    // The scratch space is gone once the job is done.
    assert!(files_with_ext(&root.join(".work"), "mp4").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_source_is_a_transcode_error() {
    require_tools();
    let tmp = tempfile::tempdir().expect("temp dir");
    let library = tmp.path().join("library");
    std::fs::create_dir_all(&library).expect("mkdir");
    std::fs::write(library.join("broken.mp4"), b"this is not a video").expect("write");
    let queue = open_queue(&tmp.path().join("q.redb"));
    let pool = Pool::start(
        pool_config(&tmp.path().join("out")),
        queue.clone(),
        Arc::new(LocalFetcher::new(&library)),
    )
    .expect("pool starts");
    let mut events = pool.subscribe();
    let conditioner = Conditioner::new(
        queue.clone(),
        LoudnessStandard::AtscA85.target(),
        EncoderSettings::default(),
    )
    .with_waker(pool.waker());
    let set = VariantSet::from_master_text(MASTER, &ChannelDefaults::default()).expect("ladder");
    let creative = creative_for(&format!("file://{}", library.join("broken.mp4").display()));
    conditioner
        .ensure(&creative, &set, None, 1)
        .await
        .expect("ensure");
    while !matches!(next_event(&mut events).await, PoolEvent::Finished { .. }) {}
    pool.shutdown().await;
    match conditioner
        .ensure(&creative, &set, None, 2)
        .await
        .expect("ensure")
    {
        Readiness::NotReady(NotReadyReason::TranscodeError(reason)) => {
            assert!(reason.contains("ffprobe"), "{reason}");
        }
        other => panic!("expected a transcode error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn black_head_and_silent_tail_are_reported_not_fatal() {
    require_tools();
    let tmp = tempfile::tempdir().expect("temp dir");
    let library = tmp.path().join("library");
    std::fs::create_dir_all(&library).expect("mkdir");
    let source = library.join("fade.mp4");
    // 1 s of black then 3 s of pictures; 3 s of tone then 1 s of digital silence.
    let (ok, _, err) = run(
        "ffmpeg",
        &[
            "-hide_banner",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "color=c=black:s=640x360:r=25:d=1",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x360:rate=25:duration=3",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000:duration=3,apad=whole_dur=4",
            "-filter_complex",
            "[0:v][1:v]concat=n=2:v=1:a=0[v]",
            "-map",
            "[v]",
            "-map",
            "2:a",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-ac",
            "2",
            source.to_str().expect("utf-8"),
        ],
    );
    assert!(ok, "creative made: {err}");
    let master = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=400000,CODECS=\"avc1.42c01e,mp4a.40.2\",RESOLUTION=320x180,FRAME-RATE=25\nlow.m3u8\n";
    let set = VariantSet::from_master_text(master, &ChannelDefaults::default()).expect("ladder");
    let queue = open_queue(&tmp.path().join("q.redb"));
    let root = tmp.path().join("out");
    let pool = Pool::start(
        pool_config(&root),
        queue.clone(),
        Arc::new(LocalFetcher::new(&library)),
    )
    .expect("pool starts");
    let mut events = pool.subscribe();
    let conditioner = Conditioner::new(
        queue.clone(),
        LoudnessStandard::EbuR128.target(),
        EncoderSettings::default(),
    )
    .with_waker(pool.waker());
    let creative = creative_for(&format!("file://{}", source.display()));
    conditioner
        .ensure(&creative, &set, None, 1)
        .await
        .expect("ensure");
    while !matches!(next_event(&mut events).await, PoolEvent::Finished { .. }) {}
    pool.shutdown().await;
    let Readiness::Ready(done) = conditioner
        .ensure(&creative, &set, None, 2)
        .await
        .expect("ensure")
    else {
        panic!("warnings are not fatal: {:?}", queue.list().await);
    };
    let qc = &done.renditions[0].qc;
    assert!(
        qc.warnings
            .iter()
            .any(|w| w.starts_with("black at the head")),
        "{:?}",
        qc.warnings
    );
    assert!(
        qc.warnings
            .iter()
            .any(|w| w.starts_with("silence at the tail")),
        "{:?}",
        qc.warnings
    );
    // Baseline profile from avc1.42c01e: no B-frames, still a keyframe per segment.
    assert_decodes_cleanly(&root.join(&done.renditions[0].ts_playlist));
}
