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
use interlude_decision::catalog::{
    Advertiser, Campaign, Catalog, ContentExclusion, Creative, Goal, LineItem, Rendition,
};
use interlude_decision::pacing::PacingMode;
use interlude_decision::pod::Tier;
use interlude_decision::targeting::{Expr, Field};
use interlude_server::collector::Collector;
use interlude_server::ops::endpoints as ops;
use interlude_server::stitcher::config::{ChannelConfig, CreativeConfig, RenditionConfig};
use interlude_sim::media::Media;
use interlude_sim::origin::{OriginState, router as origin_router};
use interlude_store::GroupBy;

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
/// as `NEW_CREATIVE` at the first break and stitched once conditioned.
fn wire_stitcher(config: &mut AppConfig, origin: SocketAddr, third_party_mp4: bool) {
    if !config.stitcher.channels.is_empty() {
        return;
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
    let renditions = |path: &str| -> Vec<RenditionConfig> {
        media
            .renditions()
            .iter()
            .map(|r| RenditionConfig {
                bandwidth: r.bandwidth,
                resolution: Some(format!("{}x{}", r.width, r.height)),
                playlist: format!("{base}/assets/{path}/{}/index.m3u8", r.name),
            })
            .collect()
    };
    let channel = config.origin.channel.clone();
    config.stitcher.channels.push(ChannelConfig {
        id: channel.clone(),
        origin: format!("{base}/live/{channel}/master.m3u8"),
        poll_interval_ms: None,
        origin_timeout_ms: 2_000,
        stale_after_secs: 30,
        slate: renditions("slate"),
        dash_origin: Some(format!("{base}/live/{channel}/manifest.mpd")),
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
        );
        let path =
            std::env::temp_dir().join(format!("interlude-{}-catalog.toml", std::process::id()));
        match toml::to_string(&catalog).map(|text| std::fs::write(&path, text)) {
            Ok(Ok(())) => config.decision.catalog = Some(path),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "Could not write the demo catalog; serving configured creatives.")
            }
            Err(e) => {
                tracing::warn!(error = %e, "Could not render the demo catalog; serving configured creatives.")
            }
        }
    }
}

/// The demo's catalog: a beer sponsor opening every pod (but not in kids' content), a guaranteed car campaign
/// for TV viewers, a programmatic-tier rival car brand (kept apart from the first by competitive separation),
/// and house promos to fill; with `mp4_tag`, a guaranteed line item of a third party whose VAST tag offers only
/// a plain MP4 (conditioned before it plays).
fn demo_catalog(renditions: impl Fn(&str) -> Vec<Rendition>, mp4_tag: Option<String>) -> Catalog {
    let flight = |days: i64| {
        let now = chrono::Utc::now();
        (
            now - chrono::TimeDelta::days(1),
            now + chrono::TimeDelta::days(days),
        )
    };
    let advertiser = |id: &str, categories: &[&str]| Advertiser {
        id: id.into(),
        name: id.into(),
        categories: categories.iter().map(|c| (*c).to_owned()).collect(),
        domain: Some(format!("{id}.example")),
    };
    let campaign = |id: &str, advertiser: &str| Campaign {
        id: id.into(),
        advertiser: advertiser.into(),
        frequency_caps: Vec::new(),
    };
    let creative = |id: &str, advertiser: &str, asset: &str, secs: f64| Creative {
        id: id.into(),
        advertiser: advertiser.into(),
        duration_secs: secs,
        renditions: renditions(&format!("ads/{asset}")),
        approved: true,
        categories: Vec::new(),
        vast_tag: None,
    };
    let line_item = |id: &str,
                     campaign: &str,
                     tier: Tier,
                     cpm: f64,
                     creative: &str,
                     targeting: Option<Expr>| {
        let (start, end) = flight(30);
        LineItem {
            id: id.into(),
            campaign: campaign.into(),
            tier,
            start,
            end,
            goal: Goal::Impressions(10_000_000),
            cpm,
            pacing: PacingMode::Asap,
            frequency_caps: Vec::new(),
            targeting,
            creatives: vec![creative.into()],
            first_in_pod: tier == Tier::Sponsorship,
        }
    };
    let is = |field: Field, v: &str| Expr::Is {
        field,
        values: vec![v.into()],
    };
    let mut catalog = Catalog {
        exclusions: vec![ContentExclusion {
            when: is(Field::Genre, "kids"),
            categories: vec!["beer".into()],
        }],
        advertisers: vec![
            advertiser("brewer", &["beer"]),
            advertiser("carco", &["auto"]),
            advertiser("rival-cars", &["auto"]),
            advertiser("house", &[]),
        ],
        campaigns: vec![
            campaign("sponsor", "brewer"),
            campaign("carco-q4", "carco"),
            campaign("rival-q4", "rival-cars"),
            campaign("promos", "house"),
        ],
        line_items: vec![
            line_item(
                "sponsor-open",
                "sponsor",
                Tier::Sponsorship,
                45.0,
                "brewer-15",
                Some(Expr::Not(Box::new(is(Field::Genre, "kids")))),
            ),
            line_item(
                "carco-tv",
                "carco-q4",
                Tier::Guaranteed,
                24.0,
                "carco-15",
                Some(is(Field::Device, "tv")),
            ),
            line_item(
                "rival-rtb",
                "rival-q4",
                Tier::Programmatic,
                30.0,
                "rival-15",
                None,
            ),
            line_item("promo", "promos", Tier::House, 0.0, "promo-30", None),
        ],
        creatives: vec![
            creative("brewer-15", "brewer", "ad15", 15.0),
            creative("carco-15", "carco", "ad15", 15.0),
            creative("rival-15", "rival-cars", "ad15", 15.0),
            creative("promo-30", "house", "ad30", 30.0),
        ],
    };
    if let Some(tag) = mp4_tag {
        catalog
            .advertisers
            .push(advertiser("loud-soda", &["soft-drinks"]));
        catalog.campaigns.push(campaign("loud-q4", "loud-soda"));
        // Guaranteed above the car campaign, so the demo's TV viewers get it once it is conditioned. TV only:
        // interstitial (SGAI) asset lists do not carry conditioned ads yet, so elsewhere it would leave its
        // slot to slate (and hls.js was seen to stall 12 s into a 21 s slate asset).
        catalog.line_items.push(line_item(
            "loud-3p",
            "loud-q4",
            Tier::Guaranteed,
            30.0,
            "loud-mp4",
            Some(is(Field::Device, "tv")),
        ));
        catalog.creatives.push(Creative {
            renditions: Vec::new(),
            vast_tag: Some(tag),
            ..creative("loud-mp4", "loud-soda", "ad15", 10.0)
        });
    }
    catalog
}

/// A simulated origin and a stitcher wired to it, both serving in this process.
pub(crate) struct Stack {
    /// The event pipeline the stitcher's beacons go to.
    pub(crate) collector: Collector,
    /// The stitcher (its sessions, for benchmarks that watch them).
    pub(crate) stitcher: Arc<interlude_server::stitcher::Stitcher>,
    /// Creative conditioning, when on.
    pub(crate) conditioning: Option<Arc<interlude_server::conditioning::Conditioning>>,
}

/// Starts the origin on `origin.origin_listen` and the stitcher (with the ops endpoints) on `listen`, the
/// stitcher pointed at the origin unless channels are configured.
pub(crate) async fn start_stack(
    config: &mut AppConfig,
    origin: &OriginArgs,
    listen: SocketAddr,
    third_party_mp4: bool,
) -> anyhow::Result<Stack> {
    config.server.listen = listen;
    // A laptop demo or benchmark: the public development keys, open read routes and anonymous event posts.
    config.server.insecure_dev = true;
    wire_stitcher(config, origin.origin_listen, third_party_mp4);
    // Each demo or benchmark run counts its own events: a fresh store unless one is configured.
    if config.events.data_dir == interlude_server::collector::EventsConfig::default().data_dir {
        config.events.data_dir =
            std::env::temp_dir().join(format!("interlude-{}-events", std::process::id()));
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
    app.readiness.set(true);
    let collector = app.collector.clone();
    Ok(Stack {
        collector,
        stitcher: app.stitcher.clone(),
        conditioning: app.conditioning.clone(),
    })
}

pub(crate) async fn run(args: DemoArgs, mut config: AppConfig) -> anyhow::Result<()> {
    // A demo should show breaks soon: one every 40 s unless the config or flags say otherwise.
    if config.origin == interlude_sim::origin::OriginConfig::default() {
        config.origin.break_interval_secs = 40;
    }
    config.origin = args.origin.apply(config.origin)?;
    let stack = start_stack(&mut config, &args.origin, args.listen, true).await?;
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
        "  DASH       ffplay http://{listen}/v1/channels/{channel}/manifest.mpd   (the same channel and pods, as DASH periods)"
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
    if args.duration_secs > 0 {
        println!(
            "  {} simulated viewers; stops by itself after {} s (--duration-secs 0 runs until Ctrl-C), Ctrl-C stops sooner.\n",
            args.viewers, args.duration_secs
        );
    } else {
        println!("  {} simulated viewers; Ctrl-C to stop.\n", args.viewers);
    }

    // Give the poller its first refresh before viewers arrive.
    tokio::time::sleep(Duration::from_secs(2)).await;
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
        )));
    }

    let deadline = (args.duration_secs > 0)
        .then(|| tokio::time::Instant::now() + Duration::from_secs(args.duration_secs));
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let c = totals().await?;
                println!("  counted so far: impressions {}, starts {}, first quartiles {}, midpoints {}, third quartiles {}, completes {}",
                    c.impressions, c.starts, c.first_quartiles, c.midpoints, c.third_quartiles, c.completes);
                if let Some(c) = &stack.conditioning {
                    println!("  ads skipped until conditioned, by reason: {:?}", c.skips());
                }
            }
            () = ops::shutdown_signal() => break,
            () = async { match deadline { Some(d) => tokio::time::sleep_until(d).await, None => std::future::pending().await } } => break,
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
    Ok(())
}

impl DemoArgs {
    fn origin_speed(&self) -> f64 {
        self.origin.speed()
    }
}
