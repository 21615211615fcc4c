//! `interlude serve`: the ad-insertion server.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use interlude_decision::catalog::Catalog;
use interlude_decision::engine::Engine;
use interlude_server::collector::{Collector, PipelineBeaconSink};
use interlude_server::decisioning::admin::CatalogStore;
use interlude_server::decisioning::decider::Decider;
use interlude_server::ops::endpoints as ops;
use interlude_server::privacy::edge::EdgePrivacy;
use interlude_server::stitcher::beacons::BeaconSink;
use interlude_server::stitcher::pods::ConfiguredPodSource;
use interlude_server::stitcher::session::MemorySessionStore;
use interlude_server::stitcher::shared::SharedSessions;
use interlude_server::stitcher::{Clock, Stitcher, routes};
use interlude_server::{InterludeConfig, Readiness, telemetry};
use interlude_stitch::PodSource;
use interlude_store::redis::RedisSessionShare;

/// Flags for `interlude serve` (per-run knobs; the deployment itself is described by the config file).
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// Listen address, overriding `server.listen`.
    #[arg(long, env = "INTERLUDE_LISTEN")]
    pub(crate) listen: Option<std::net::SocketAddr>,
}

/// Builds the stitcher from the configuration, deciding with `pods`, its beacons going to `beacons`.
pub(crate) fn stitcher(
    config: &InterludeConfig,
    clock: Clock,
    pods: Arc<dyn PodSource>,
    beacons: Arc<dyn BeaconSink>,
) -> anyhow::Result<Arc<Stitcher>> {
    let stitcher = Stitcher::new(
        config.stitcher.clone(),
        config.server.base_url(),
        Arc::new(MemorySessionStore::default()),
        pods,
        beacons,
        clock,
    );
    stitcher.set_privacy(edge_privacy(config)?);
    Ok(stitcher)
}

/// Where pods come from, and the decider and catalog behind them when there is one.
pub(crate) struct Decisioning {
    pub(crate) pods: Arc<dyn PodSource>,
    pub(crate) decider: Option<(Arc<Decider>, Arc<CatalogStore>)>,
}

/// The routes beside the stitcher's and the collector's: the VAST and VMAP endpoints and the decision
/// explainer over the decider, the catalog admin and operator APIs when a token is configured, and the OpenAPI
/// document.
pub(crate) fn api_routes(
    decisioning: Decisioning,
    config: &InterludeConfig,
    collector: &Collector,
    stitcher: &Arc<interlude_server::stitcher::Stitcher>,
    readiness: &Readiness,
    clock: Clock,
) -> anyhow::Result<axum::Router> {
    let token = config
        .decision
        .admin_token
        .as_deref()
        .filter(|t| !t.trim().is_empty());
    let mut routes = interlude_server::decisioning::admin::openapi_router().merge(
        interlude_server::ops::dashboard::router(interlude_server::ops::dashboard::Sources {
            stitcher: stitcher.clone(),
            collector: collector.clone(),
            decider: decisioning.decider.as_ref().map(|(d, _)| d.clone()),
            metrics: telemetry::metrics_handle()?,
            clock: clock.clone(),
        }),
    );
    if let Some(token) = token {
        routes = routes.merge(interlude_server::privacy::erasure::router(
            interlude_server::privacy::erasure::Erasure {
                stitcher: stitcher.clone(),
                collector: collector.clone(),
                privacy: edge_privacy(config)?,
                retention: config.privacy.retention.clone(),
                frequency_window_days: u32::try_from(config.events.policy.frequency_window_days)
                    .unwrap_or(30),
                kafka_log: config.distributed.enabled,
                clock: clock.clone(),
            },
            token,
        ));
        routes = routes.merge(interlude_server::ops::operator::router(
            stitcher.clone(),
            decisioning.decider.as_ref().map(|(d, _)| d.clone()),
            readiness.clone(),
            token,
        ));
    }
    let Some((decider, store)) = decisioning.decider else {
        return Ok(routes);
    };
    let routes = routes
        .merge(interlude_server::decisioning::explain::router(
            decider.clone(),
        ))
        .merge(interlude_server::decisioning::vast_routes::router(
            decider,
            collector.clone(),
            config.server.base_url(),
        ));
    Ok(match token {
        Some(token) => routes.merge(interlude_server::decisioning::admin::router(store, token)),
        None => routes,
    })
}

/// The pod source: the decision engine over the configured catalog, whose pacing and caps read the event
/// store's live counts; without a catalog, the stitcher's configured creatives for everyone.
pub(crate) async fn pod_source(
    config: &InterludeConfig,
    clock: Clock,
    collector: &Collector,
) -> anyhow::Result<Decisioning> {
    let tolerance_ms = u32::try_from(config.stitcher.tolerance_ms).unwrap_or(u32::MAX);
    let Some(path) = &config.decision.catalog else {
        let configured =
            ConfiguredPodSource::new(&config.stitcher.creatives, f64::from(tolerance_ms) / 1000.0);
        return Ok(Decisioning {
            pods: Arc::new(configured),
            decider: None,
        });
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the catalog {}", path.display()))?;
    let catalog = Catalog::from_toml(&text)
        .with_context(|| format!("loading the catalog {}", path.display()))?;
    let reports = collector.reports().clone();
    let set_prices = move |catalog: &Catalog| {
        let prices: std::collections::BTreeMap<String, u64> = catalog
            .line_items
            .iter()
            .map(|l| (l.id.clone(), (l.cpm * 1e6).round() as u64))
            .collect();
        reports.set_prices(Arc::new(prices));
    };
    set_prices(&catalog);
    let engine = Arc::new(Engine::new(
        catalog,
        collector.counters(),
        config.decision.max_ads_per_pod,
        tolerance_ms,
    ));
    let (pacing, every) = (
        engine.clone(),
        Duration::from_secs(config.decision.pacing_interval_secs.max(1)),
    );
    let pacing_clock = clock.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            pacing.refresh_pacing(pacing_clock());
        }
    });
    tracing::info!(catalog = %path.display(), line_items = engine.catalog().line_items.len(), "Decisioning from the catalog.");
    let decider = Arc::new(Decider::new(engine, clock, config.decision.demand.clone()));
    if let Some(url) = &config.decision.controls_redis {
        interlude_server::ops::controls_sync::spawn(decider.clone(), url, "interlude")
            .with_context(|| format!("decision.controls_redis {url:?}"))?;
    }
    let catalogs = CatalogStore::new(decider.clone(), Some(path.clone()), Arc::new(set_prices));
    if config.distributed.enabled {
        // Every node serves the catalog in PostgreSQL; the file only seeds it the first time.
        let url = &config.distributed.postgres_url;
        let pg = interlude_store::pg::PgCatalog::connect(url)
            .await
            .with_context(|| format!("connecting to PostgreSQL {url:?} for the catalog"))?;
        catalogs
            .attach_postgres(Arc::new(pg))
            .await
            .context("loading the catalog from PostgreSQL")?;
    }
    catalogs.watch(Duration::from_secs(
        config.decision.catalog_reload_secs.max(1),
    ));
    Ok(Decisioning {
        pods: decider.clone(),
        decider: Some((decider, catalogs)),
    })
}

/// Opens the event store and its collector (embedded, or the Kafka log and PostgreSQL reports in distributed
/// mode), and the beacon sink that feeds the stitcher's beacons into it.
pub(crate) async fn collector(
    config: &InterludeConfig,
    clock: Clock,
) -> anyhow::Result<(Collector, Arc<dyn BeaconSink>)> {
    let collector = if config.distributed.enabled {
        let d = &config.distributed;
        Collector::distributed(&config.events, d, clock)
            .await
            .with_context(|| {
                format!(
                    "connecting the distributed event pipeline (kafka {}, postgres {:?}, redis {})",
                    d.kafka.brokers, d.postgres_url, d.redis_url
                )
            })?
    } else {
        Collector::open(&config.events, clock).with_context(|| {
            format!(
                "opening the event store in {}",
                config.events.data_dir.display()
            )
        })?
    };
    let collector = collector.with_privacy(edge_privacy(config)?);
    collector.start_retention(config.privacy.retention.clone(), Duration::from_secs(60));
    let sink: Arc<dyn BeaconSink> = Arc::new(PipelineBeaconSink::new(&collector));
    Ok((collector, sink))
}

/// The privacy edge from `[privacy]` (the pseudonym secret from `INTERLUDE_PRIVACY_SECRET`).
pub(crate) fn edge_privacy(config: &InterludeConfig) -> anyhow::Result<Arc<EdgePrivacy>> {
    let edge = EdgePrivacy::from_settings(&config.privacy)
        .map_err(|(key, reason)| anyhow::anyhow!("invalid configuration: `{key}`: {reason}"))?;
    Ok(Arc::new(edge))
}

/// In distributed mode, shares the stitcher's sessions and decisions through Redis.
pub(crate) async fn share_sessions(
    config: &InterludeConfig,
    stitcher: &Stitcher,
) -> anyhow::Result<()> {
    if !config.distributed.enabled {
        return Ok(());
    }
    let d = &config.distributed;
    let shared = RedisSessionShare::connect(
        &d.redis_url,
        &d.key_prefix,
        config.stitcher.session_ttl_secs,
    )
    .await
    .with_context(|| format!("connecting to Redis at {} for shared sessions", d.redis_url))?;
    stitcher.share_sessions(Arc::new(SharedSessions::new(Arc::new(shared))));
    Ok(())
}

pub(crate) async fn run(args: ServeArgs, mut config: InterludeConfig) -> anyhow::Result<()> {
    if let Some(listen) = args.listen {
        config.server.listen = listen;
    }
    let clock: Clock = Arc::new(chrono::Utc::now);
    if config.distributed.enabled && config.decision.controls_redis.is_none() {
        // Every node must see the same kill switches.
        config.decision.controls_redis = Some(config.distributed.redis_url.clone());
    }
    let (collector, sink) = collector(&config, clock.clone()).await?;
    let decisioning = pod_source(&config, clock.clone(), &collector).await?;
    let pods = decisioning.pods.clone();
    let stitcher = stitcher(&config, clock.clone(), pods, sink)?;
    let signer = collector.clone();
    stitcher.set_tracking_signer(Arc::new(move |claims| signer.tracking_path(claims)));
    share_sessions(&config, &stitcher).await?;
    stitcher.start();
    let readiness = Readiness::new();
    let debug = api_routes(
        decisioning,
        &config,
        &collector,
        &stitcher,
        &readiness,
        clock,
    )?;
    let router = interlude_server::ops::shedding::with_shedding(
        ops::with_request_metrics(
            routes::router(stitcher)
                .merge(interlude_server::collector::router(collector))
                .merge(debug)
                .merge(ops::router(telemetry::metrics_handle()?, readiness.clone())),
        ),
        config.server.max_in_flight,
    );
    tracing::info!(listen = %config.server.listen, base_url = %config.server.base_url(),
        channels = config.stitcher.channels.len(), "Serving.");
    readiness.set(true);
    ops::serve(
        router,
        config.server.listen,
        Duration::from_secs(config.server.shutdown_grace_secs),
        ops::shutdown_signal(),
    )
    .await?;
    Ok(())
}
