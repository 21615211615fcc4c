//! `interlude demo`: the whole loop on one laptop — a simulated live origin with real media and SCTE-35 breaks,
//! the stitcher serving personalised playlists, simulated viewers fetching ads, and the server-side beacons
//! counted against what the viewers really fetched.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::config::AppConfig;
use anyhow::Context;
use interlude_decision::catalog::Rendition;
use interlude_server::collector::Collector;
use interlude_server::ops::endpoints as ops;
use interlude_server::stitcher::config::{ChannelConfig, CreativeConfig, RenditionConfig};
use interlude_sim::media::{Media, Packaging};
use interlude_sim::origin::{OriginState, router as origin_router};
use interlude_store::GroupBy;

use super::demo_catalog::{DemoAudience, demo_catalog};
use super::demo_report::{Cleanup, data_line, ending_lines, join_note, open_break, print_counts};
use super::origin::OriginArgs;

/// Flags for `interlude demo`.
#[derive(Debug, clap::Args)]
pub(crate) struct DemoArgs {
    /// Where the stitcher listens.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Simulated viewers.
    #[arg(long, default_value_t = 1000)]
    viewers: usize,
    /// Stop after this many seconds and print the summary (0: run until Ctrl-C).
    #[arg(long, default_value_t = 140)]
    duration_secs: u64,
    #[command(flatten)]
    origin: OriginArgs,
}

/// Points the stitcher at the simulated origin, with its slate and creatives, unless channels are configured.
/// With `third_party_mp4` (the demo, not the benchmarks) and ffmpeg installed, the catalog also sells the
/// origin's third-party tag whose creative is a plain MP4, and creative conditioning is on: the ad is skipped
/// as `NEW_CREATIVE` at the first break and stitched once conditioned. With `audience` the catalog's goals
/// and flights are sized to the run. Returns the catalog file it wrote, if any (a temporary file).
fn wire_stitcher(
    config: &mut AppConfig,
    origin: SocketAddr,
    third_party_mp4: bool,
    audience: Option<DemoAudience>,
) -> Option<std::path::PathBuf> {
    if !config.stitcher.channels.is_empty() {
        return None;
    }
    let base = format!("http://{origin}");
    let mp4_tag = if third_party_mp4 {
        match interlude_sim::tools::require("ffmpeg")
            .and_then(|()| interlude_sim::tools::require("ffprobe"))
        {
            Ok(()) => {
                // The tag and its MP4 are on the simulated origin, a loopback address the outbound guard
                // refuses unless the operator lists it.
                config.outbound.allow.push(origin.to_string());
                config.condition.enabled = true;
                // The simulator's renditions carry mono audio.
                config.condition.audio_channels = 1;
                Some(format!("{base}/vast/loud-mp4.xml"))
            }
            Err(why) => {
                tracing::warn!(%why, "No ffmpeg: the demo's third-party MP4 ad (which needs conditioning) is left out.");
                None
            }
        }
    } else {
        None
    };
    let media = Media::embedded();
    // Bit rates as measured on the content in each container (fMP4 carries less overhead than TS).
    let packaged = |path: &str| -> Vec<RenditionConfig> {
        let packaging = if path.starts_with("cmaf/") {
            Packaging::Cmaf
        } else {
            Packaging::Ts
        };
        media
            .renditions_of(packaging)
            .iter()
            .map(|r| RenditionConfig {
                bandwidth: r.bandwidth,
                resolution: Some(format!("{}x{}", r.width, r.height)),
                playlist: format!("{base}/assets/{path}/{}/index.m3u8", r.name),
            })
            .collect()
    };
    // Ads in both containers: the stitcher picks the TS renditions for the TS channel and the fMP4 ones for
    // its CMAF twin.
    let renditions = |path: &str| -> Vec<RenditionConfig> {
        let mut both = packaged(path);
        if path.starts_with("ads/") {
            both.extend(packaged(&format!("cmaf/{path}")));
        }
        both
    };
    let channel = config.origin.channel.clone();
    config.stitcher.channels.push(ChannelConfig {
        id: channel.clone(),
        origin: format!("{base}/live/{channel}/master.m3u8"),
        poll_interval_ms: None,
        origin_timeout_ms: 2_000,
        stale_after_secs: 30,
        slate: packaged("slate"),
        dash_origin: Some(format!("{base}/live/{channel}/manifest.mpd")),
        dash_ad_codecs: interlude_sim::media::CODECS.to_owned(),
    });
    // The same channel as CMAF (fragmented MP4) HLS and DASH, stitched with the fMP4 slate and ads (DASH
    // sessions get them as separate video and audio tracks).
    let cmaf = interlude_sim::origin::cmaf_channel(&channel);
    config.stitcher.channels.push(ChannelConfig {
        id: cmaf.clone(),
        origin: format!("{base}/live/{cmaf}/master.m3u8"),
        poll_interval_ms: None,
        origin_timeout_ms: 2_000,
        stale_after_secs: 30,
        slate: packaged("cmaf/slate"),
        dash_origin: Some(format!("{base}/live/{cmaf}/manifest.mpd")),
        dash_ad_codecs: interlude_sim::media::CODECS.to_owned(),
    });
    for (id, secs) in [("ad15", 15.0), ("ad30", 30.0)] {
        config.stitcher.creatives.push(CreativeConfig {
            id: id.to_owned(),
            duration_secs: secs,
            renditions: renditions(&format!("ads/{id}")),
        });
    }
    if config.decision.catalog.is_none() {
        let catalog = demo_catalog(
            |path| {
                renditions(path)
                    .into_iter()
                    .map(|r| Rendition {
                        bandwidth: r.bandwidth,
                        resolution: r.resolution,
                        playlist: r.playlist,
                    })
                    .collect()
            },
            mp4_tag,
            audience,
            chrono::Utc::now(),
        );
        let path =
            std::env::temp_dir().join(format!("interlude-{}-catalog.toml", std::process::id()));
        match toml::to_string(&catalog).map(|text| std::fs::write(&path, text)) {
            Ok(Ok(())) => {
                config.decision.catalog = Some(path.clone());
                return Some(path);
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "Could not write the demo catalog; serving configured creatives.")
            }
            Err(e) => {
                tracing::warn!(error = %e, "Could not render the demo catalog; serving configured creatives.")
            }
        }
    }
    None
}

/// A simulated origin and a stitcher wired to it, both serving in this process.
pub(crate) struct Stack {
    /// The event pipeline the stitcher's beacons go to.
    pub(crate) collector: Collector,
    /// The stitcher (its sessions, for benchmarks that watch them).
    pub(crate) stitcher: Arc<interlude_server::stitcher::Stitcher>,
    /// Creative conditioning, when on.
    pub(crate) conditioning: Option<Arc<interlude_server::conditioning::Conditioning>>,
    /// Files and directories made for this run only (the catalog, the event store): the demo removes them
    /// at exit.
    pub(crate) temporary: Vec<std::path::PathBuf>,
}

/// Starts the origin on `origin.origin_listen` and the stitcher (with the ops endpoints) on `listen`, the
/// stitcher pointed at the origin unless channels are configured. With `audience` (the demo), the catalog is
/// sized to it.
pub(crate) async fn start_stack(
    config: &mut AppConfig,
    origin: &OriginArgs,
    listen: SocketAddr,
    third_party_mp4: bool,
    audience: Option<DemoAudience>,
) -> anyhow::Result<Stack> {
    config.server.listen = listen;
    // A laptop demo or benchmark: the public development keys, open read routes and anonymous event posts.
    config.server.insecure_dev = true;
    let mut temporary: Vec<std::path::PathBuf> =
        wire_stitcher(config, origin.origin_listen, third_party_mp4, audience)
            .into_iter()
            .collect();
    // Each demo or benchmark run counts its own events: a fresh store unless one is configured.
    if config.events.data_dir == interlude_server::collector::EventsConfig::default().data_dir {
        config.events.data_dir =
            std::env::temp_dir().join(format!("interlude-{}-events", std::process::id()));
        temporary.push(config.events.data_dir.clone());
    }
    config.validate()?;

    let clock = origin.clock()?;
    let origin_state = OriginState::new(config.origin.clone(), clock.clone());
    // The recorder first, so the origin's descriptions reach it.
    interlude_server::telemetry::metrics_handle()?;
    interlude_sim::origin::describe_metrics();
    let origin_app = ops::with_request_metrics(origin_router(origin_state));
    let grace = Duration::from_secs(1);
    let origin_listen = origin.origin_listen;
    let origin_listener = tokio::net::TcpListener::bind(origin_listen)
        .await
        .with_context(|| format!("binding the origin to {origin_listen}"))?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the stitcher to {listen}"))?;
    tokio::spawn(ops::serve_on(
        origin_listener,
        origin_app,
        grace,
        std::future::pending(),
    ));

    let stitcher_clock = clock.clone();
    let clock: interlude_server::stitcher::Clock = Arc::new(move || stitcher_clock.now());
    let app = interlude_server::App::build(config, clock).await?;
    let router = app.router()?;
    // The configured connection limits, as `serve` applies them (a benchmark may lift the per-address cap).
    tokio::spawn(ops::serve_on_with_limits(
        listener,
        router,
        grace,
        std::future::pending(),
        ops::ConnectionLimits::from(&config.server),
    ));
    // Beacons on a listener of their own when configured (`server.beacon_listen`); the demo runs until the
    // process ends, and so does the listener.
    if let Some(beacons) = app.start_beacon_listener(std::future::pending())? {
        tokio::spawn(beacons.finished());
    }
    app.readiness.set(true);
    let collector = app.collector.clone();
    Ok(Stack {
        collector,
        stitcher: app.stitcher.clone(),
        conditioning: app.conditioning.clone(),
        temporary,
    })
}

pub(crate) async fn run(args: DemoArgs, mut config: AppConfig) -> anyhow::Result<()> {
    // A demo should show breaks soon: one every 40 s unless the config or flags say otherwise.
    if config.origin == interlude_sim::origin::OriginConfig::default() {
        config.origin.break_interval_secs = 40;
    }
    config.origin = args.origin.apply(config.origin)?;
    // Every simulated viewer comes from 127.0.0.1: the per-address session limit (a guard against one client
    // starting sessions in a loop) turned away all but the first 100 of them with 429s, and the per-address
    // connection cap (512) refused some of the thousand viewers' first connections. Without simulated
    // viewers (`--viewers 0`: the server alone, as `bench edge` runs it against hostile clients) the limits
    // stay as configured.
    if args.viewers > 0 {
        if config.stitcher.session_rate_per_ip
            == interlude_server::stitcher::StitcherConfig::default().session_rate_per_ip
        {
            config.stitcher.session_rate_per_ip = 0.0;
        }
        if config.server.max_connections_per_ip
            == interlude_server::ServerConfig::default().max_connections_per_ip
        {
            config.server.max_connections_per_ip = 0;
        }
    }
    // Goals sized to a run of minutes are paced in steps of seconds, not the production minute.
    if config.decision.pacing_interval_secs
        == interlude_server::config::DecisionConfig::default().pacing_interval_secs
    {
        config.decision.pacing_interval_secs = 5;
    }
    let audience = DemoAudience {
        viewers: args.viewers as u64,
        // Channel seconds (the origin may run faster than real time); ten minutes when run until Ctrl-C.
        run_secs: (if args.duration_secs > 0 {
            args.duration_secs
        } else {
            600
        } as f64
            * args.origin_speed()) as u64,
        break_interval_secs: config.origin.break_interval_secs,
        break_duration_secs: config.origin.break_duration_secs,
    };
    let stack = start_stack(&mut config, &args.origin, args.listen, true, Some(audience)).await?;
    // Removes the run's temporary files however the run ends (its end, Ctrl-C, an error).
    let _cleanup = Cleanup(stack.temporary.clone());
    let (listen, origin_listen) = (args.listen, args.origin.origin_listen);
    let reports = stack.collector.reports().clone();
    let totals = async || -> anyhow::Result<interlude_events::Counts> {
        let now = chrono::Utc::now();
        let mut total = interlude_events::Counts::default();
        for row in reports
            .report(
                GroupBy::Channel,
                now - chrono::TimeDelta::days(400),
                now + chrono::TimeDelta::days(400),
            )
            .await?
        {
            total.add(&row.counts);
        }
        Ok(total)
    };

    let channel = config.origin.channel.clone();
    println!("Interlude demo");
    println!(
        "  origin     http://{origin_listen}/live/{channel}/master.m3u8  (breaks every {} s, {} s long, {:?})",
        config.origin.break_interval_secs, config.origin.break_duration_secs, config.origin.dialect
    );
    println!(
        "  play       ffplay http://{listen}/v1/channels/{channel}/master.m3u8   (a new session per play)"
    );
    println!(
        "  CMAF       http://{listen}/v1/channels/{channel}-cmaf/master.m3u8   (the same channel as fMP4 HLS, fMP4 ads)\n             \
         http://{listen}/v1/channels/{channel}-cmaf/manifest.mpd   (as DASH: fMP4 video and audio tracks, dash.js or Shaka Player)"
    );
    // FFmpeg's DASH reader (so ffplay and mpv) keeps one Period of an MPD, the longest: it played one ad of
    // the session MPD and then asked for segments past its end. dash.js and Shaka Player follow Periods
    // (tests/browser/dash.mjs plays the demo's MPD with each in Chromium), and the demo's development mode lets
    // any page read the MPD and the origin's segments (CORS). The segments are MPEG-2 TS: dash.js needs a
    // browser whose MSE takes video/mp2t, Shaka Player transmuxes them where it does not.
    println!(
        "  DASH       http://{listen}/v1/channels/{channel}/manifest.mpd   (the same pods, as DASH Periods)\n             \
         plays in Shaka Player or dash.js, e.g. https://reference.dashif.org/dash.js/latest/samples/dash-if-reference-player/index.html?url=http://{listen}/v1/channels/{channel}/manifest.mpd\n             \
         not in ffplay or mpv: FFmpeg's DASH reader keeps a single Period, so it stops after one ad"
    );
    println!(
        "  reports    http://{listen}/v1/reports?group_by=line_item   (also /v1/ledger, /v1/quarantine)"
    );
    println!(
        "  decisions  http://{listen}/v1/decisions/explain?channel={channel}&duration=60&device=tv&country=FR"
    );
    println!("  dashboard  http://{listen}/dashboard");
    println!("  metrics    http://{listen}/metrics");
    println!(
        "  demand     http://{listen}/v1/reports/demand?group_by=bidder   (bidders' bids, wins and spend; also seat, deal)"
    );
    println!(
        "  data       {}",
        data_line(&config.events.data_dir, &stack.temporary)
    );
    println!(
        "  catalog    goals sized to {} viewers × {} breaks, flights ending with the run; carco-tv paced evenly to half its slots and capped at 2 per viewer an hour",
        audience.viewers,
        audience.breaks()
    );
    if args.duration_secs > 0 {
        println!(
            "  {} simulated viewers; stops by itself after {} s and the break then running (--duration-secs 0 runs until Ctrl-C), Ctrl-C stops sooner.\n",
            args.viewers, args.duration_secs
        );
    } else {
        println!("  {} simulated viewers; Ctrl-C to stop.\n", args.viewers);
    }

    // Give the poller its first refresh before viewers arrive.
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!(
        "  {}",
        join_note(
            open_break(&stack, &channel).as_ref(),
            config.origin.break_interval_secs
        )
    );
    let stop = Arc::new(AtomicBool::new(false));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .context("building the viewers' HTTP client")?;
    let refresh = Duration::from_secs_f64(2.0 / args.origin_speed());
    let mut viewers = Vec::new();
    for v in 0..args.viewers {
        let (http, base, channel, stop) = (
            http.clone(),
            format!("http://{listen}"),
            channel.clone(),
            stop.clone(),
        );
        viewers.push(tokio::spawn(interlude_sim::audience::watch(
            http,
            base,
            channel,
            v % 2,
            refresh,
            stop,
            // An id per viewer, so the catalog's frequency caps count each one.
            Some(format!("demo-viewer-{v}")),
        )));
    }

    let deadline = (args.duration_secs > 0)
        .then(|| tokio::time::Instant::now() + Duration::from_secs(args.duration_secs));
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    // The first tick would fire at once, before any viewer fetched anything.
    tick.reset();
    let interrupted = loop {
        tokio::select! {
            _ = tick.tick() => {
                let c = totals().await?;
                print_counts(&c);
                if let Some(c) = &stack.conditioning {
                    println!("  ads skipped until conditioned, by reason: {:?}", c.skips());
                }
            }
            () = ops::shutdown_signal() => break true,
            () = async { match deadline { Some(d) => tokio::time::sleep_until(d).await, None => std::future::pending().await } } => break false,
        }
    };
    // Where the run stops: in a break (Ctrl-C), its ads are cut off.
    let mut stopped_in = open_break(&stack, &channel).filter(|_| interrupted);
    // Time is up in the middle of a break: let it finish, so every ad started is also played to its end,
    // then a little longer for the viewers' next refresh to fetch the last segments.
    if !interrupted {
        if let Some(open) = open_break(&stack, &channel) {
            let left = Duration::from_secs_f64(
                (open.planned_secs - open.elapsed_secs).max(0.0) / args.origin_speed(),
            ) + refresh * 2;
            println!(
                "  time is up during a break ({:.0} of {:.0} s played): letting it finish ({} s more; Ctrl-C stops now)",
                open.elapsed_secs,
                open.planned_secs,
                left.as_secs()
            );
            tokio::select! {
                () = tokio::time::sleep(left) => {}
                () = ops::shutdown_signal() => stopped_in = open_break(&stack, &channel),
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut started: HashSet<String> = HashSet::new();
    let (mut playlists, mut errors, mut ad_segments) = (0, 0, 0);
    for v in viewers {
        if let Ok(truth) = v.await {
            playlists += truth.playlists;
            errors += truth.playlist_errors;
            ad_segments += truth.ad_segments;
            started.extend(truth.ads_started);
        }
    }
    // Let the last beacons reach the store.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let counted = totals().await?;
    println!("\nSummary");
    let now = chrono::Utc::now();
    let wide = chrono::TimeDelta::days(400);
    for row in stack
        .collector
        .reports()
        .report(GroupBy::LineItem, now - wide, now + wide)
        .await?
    {
        println!(
            "  line item {:<14} impressions {:>5}  completes {:>5}  spend {}.{:02}",
            row.key,
            row.counts.impressions,
            row.counts.completes,
            row.spend_micros / 1_000_000,
            row.spend_micros % 1_000_000 / 10_000
        );
    }
    println!(
        "  playlist requests {playlists} ({errors} failed), ad segments fetched {ad_segments}"
    );
    if let Ok(live) = interlude_server::telemetry::live_metrics() {
        use interlude_server::telemetry::metrics::{
            STITCHER_DECISIONS_AHEAD, STITCHER_DECISIONS_ON_REQUEST,
        };
        let ahead = live.counter(STITCHER_DECISIONS_AHEAD, &[]);
        let waited = live.counter(STITCHER_DECISIONS_ON_REQUEST, &[]);
        if ahead + waited > 0 {
            println!(
                "  pods decided ahead of the viewer's playlist {ahead}, while a playlist waited {waited} ({:.1} % ahead)",
                100.0 * ahead as f64 / (ahead + waited) as f64
            );
        }
    }
    println!("  ads started by viewers (ground truth)  {}", started.len());
    println!(
        "  impressions counted by the pipeline    {} (deduplicated, durably stored)",
        counted.impressions
    );
    println!(
        "  {}",
        if started.len() as u64 == counted.impressions {
            "counts match exactly"
        } else {
            "counts differ"
        }
    );
    for line in ending_lines(stopped_in.as_ref(), &counted) {
        println!("  {line}");
    }
    Ok(())
}

impl DemoArgs {
    fn origin_speed(&self) -> f64 {
        self.origin.speed()
    }
}
