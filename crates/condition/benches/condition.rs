//! Conditioning speed against a plain transcode of the same file, and queue latency from first sight to ready.
//!
//! `cargo bench -p interlude-condition --bench condition` (needs ffmpeg). `CONDITION_BENCH_ROUNDS` (default 2)
//! rounds, interleaved: a plain single-rendition ffmpeg transcode (960×540@25, one thread, the baseline),
//! then the full conditioning of the same 30 s creative to a 3-rendition ladder (one worker, one ffmpeg
//! thread: fetch, hash, probe, loudness pass 1, three encodes, TS and CMAF remuxes, every quality check)
//! through a fresh redb queue. Prints seconds of ad per wall-clock second per core for both, their ratio,
//! and the latency from `Conditioner::ensure` seeing the creative to `Ready`.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use interlude_condition::{
    ChannelDefaults, Conditioner, EncoderSettings, LocalFetcher, LoudnessStandard, Pool,
    PoolConfig, PoolEvent, Readiness, RedbQueue, VariantSet,
};

const SECONDS: u32 = 30;

const MASTER: &str = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n\
    #EXT-X-STREAM-INF:BANDWIDTH=700000,CODECS=\"avc1.4d401e,mp4a.40.2\",RESOLUTION=640x360,FRAME-RATE=25.000\nr0.m3u8\n\
    #EXT-X-STREAM-INF:BANDWIDTH=1400000,CODECS=\"avc1.4d401f,mp4a.40.2\",RESOLUTION=960x540,FRAME-RATE=25.000\nr1.m3u8\n\
    #EXT-X-STREAM-INF:BANDWIDTH=2800000,CODECS=\"avc1.64001f,mp4a.40.2\",RESOLUTION=1280x720,FRAME-RATE=25.000\nr2.m3u8\n";

fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(args)
        .output()
        .expect("ffmpeg runs (apt-get install -y ffmpeg)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn baseline(source: &Path, out: &Path) -> Duration {
    let started = Instant::now();
    ffmpeg(&[
        "-hide_banner",
        "-v",
        "error",
        "-y",
        "-i",
        source.to_str().expect("utf-8"),
        "-vf",
        "fps=25,scale=960:540",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-b:v",
        "1100k",
        "-threads",
        "1",
        "-c:a",
        "aac",
        "-b:a",
        "96k",
        out.to_str().expect("utf-8"),
    ]);
    started.elapsed()
}

fn creative(uri: &str) -> interlude_vast::Creative {
    let xml = format!(
        r#"<VAST version="4.1"><Ad id="b"><InLine><AdSystem>b</AdSystem><AdTitle>b</AdTitle>
        <Impression>https://t.example/i</Impression><Creatives><Creative id="bench"><Linear>
        <Duration>00:00:30</Duration><MediaFiles><MediaFile delivery="progressive" type="video/mp4"
        width="1280" height="720">{uri}</MediaFile></MediaFiles></Linear></Creative></Creatives></InLine></Ad></VAST>"#
    );
    interlude_vast::parse_vast(&xml)
        .expect("valid VAST")
        .ads
        .into_iter()
        .find_map(|a| match a.body {
            interlude_vast::AdBody::InLine(i) => i.creatives.into_iter().next(),
            _ => None,
        })
        .expect("a creative")
}

/// (first sight → claimed, first sight → ready).
async fn condition(
    dir: &Path,
    library: &Path,
    source: &Path,
    set: &VariantSet,
) -> (Duration, Duration) {
    let queue = Arc::new(RedbQueue::open(&dir.join("q.redb")).expect("queue"));
    let config = PoolConfig {
        root: dir.join("out"),
        concurrency: 1,
        ffmpeg_threads: 1,
        niceness: 0,
        poll_interval_ms: 50,
        ..PoolConfig::default()
    };
    let pool =
        Pool::start(config, queue.clone(), Arc::new(LocalFetcher::new(library))).expect("pool");
    let mut events = pool.subscribe();
    let c = Conditioner::new(
        queue,
        LoudnessStandard::EbuR128.target(),
        EncoderSettings::default(),
    )
    .with_waker(pool.waker());
    let ad = creative(&format!("file://{}", source.display()));
    let started = Instant::now();
    c.ensure(&ad, set, Some(0), 0).await.expect("ensure");
    let mut claimed = Duration::ZERO;
    loop {
        match events.recv().await.expect("events") {
            PoolEvent::Claimed { .. } => claimed = started.elapsed(),
            PoolEvent::Finished { outcome, .. } => {
                assert_eq!(outcome, "ready");
                break;
            }
            _ => {}
        }
    }
    let ready = started.elapsed();
    assert!(matches!(
        c.ensure(&ad, set, None, 1).await,
        Ok(Readiness::Ready(_))
    ));
    pool.shutdown().await;
    (claimed, ready)
}

fn main() {
    let rounds: usize = std::env::var("CONDITION_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let tmp = tempfile::tempdir().expect("temp dir");
    let library = tmp.path().join("library");
    std::fs::create_dir_all(&library).expect("mkdir");
    let source = library.join("ad30.mp4");
    ffmpeg(&[
        "-hide_banner",
        "-v",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        &format!("testsrc2=size=1280x720:rate=30:duration={SECONDS}"),
        "-f",
        "lavfi",
        "-i",
        &format!("sine=frequency=1000:sample_rate=48000:duration={SECONDS},volume=7dB"),
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
    ]);
    let set = VariantSet::from_master_text(MASTER, &ChannelDefaults::default()).expect("ladder");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let ad = f64::from(SECONDS);
    println!(
        "| round | baseline wall s | baseline ad-s/s/core | conditioning wall s | conditioning ad-s/s/core | ratio | sight→claimed ms |"
    );
    println!("|---|---|---|---|---|---|---|");
    let (mut base_total, mut cond_total) = (0.0, 0.0);
    for round in 0..rounds {
        let b = baseline(&source, &tmp.path().join("baseline.mp4")).as_secs_f64();
        let dir = tmp.path().join(format!("round{round}"));
        let (claimed, ready) = rt.block_on(condition(&dir, &library, &source, &set));
        let c = ready.as_secs_f64();
        base_total += b;
        cond_total += c;
        println!(
            "| {round} | {b:.1} | {:.2} | {c:.1} | {:.2} | {:.2} | {} |",
            ad / b,
            ad / c,
            b / c,
            claimed.as_millis()
        );
        std::fs::remove_dir_all(&dir).ok();
    }
    let n = rounds as f64;
    println!(
        "\nmean: baseline {:.2} ad-s/s/core, conditioning {:.2} ad-s/s/core (3 renditions + checks), ratio {:.2}; \
         queue latency sight→ready {:.1} s for a {SECONDS} s creative",
        ad * n / base_total,
        ad * n / cond_total,
        base_total / cond_total,
        cond_total / n
    );
}
