//! The composition root: [`App::build`] turns an [`InterludeConfig`] into the running parts — the event
//! collector (embedded, or Kafka + PostgreSQL + Redis in distributed mode), the decider over the catalog, the
//! stitcher — wired to each other, and [`App::router`] into one HTTP service. `interlude serve`, `interlude
//! demo`, the benchmarks and the integration tests all build the application this one way.
//!
//! [`App::serve`] runs it until a shutdown signal and then stops it in the one order that loses nothing:
//! not ready, no new connections, in-flight requests drained, the stitcher's buffered beacons submitted (and
//! the third-party pixels of those counted queued in the outbox), the event store's committer, which commits
//! what is queued and closes the file, and last the outbox, which lets the pixels in flight finish; what is
//! still queued is fired after the restart ([`App::shutdown`]).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use interlude_decision::PodSource;
use interlude_decision::catalog::Catalog;
use interlude_decision::engine::Engine;
use interlude_decision::reservation::{ReservationBook, Reservations};
use interlude_store::redis::{RedisReservations, RedisSessionShare};

use crate::collector::{Collector, PipelineBeaconSink};
use crate::conditioning::Conditioning;
use crate::decisioning::admin::LiveCatalog;
use crate::decisioning::decider::Decider;
use crate::edge::auth::{Producers, guard, read_scope};
use crate::ops::endpoints::{self, Readiness};
use crate::pixels::PixelOutbox;
use crate::privacy::edge::EdgePrivacy;
use crate::stitcher::beacons::BeaconSink;
use crate::stitcher::pods::ConfiguredPodSource;
use crate::stitcher::shared::SharedSessions;
use crate::stitcher::{Clock, Stitcher, routes};
use crate::{Error, InterludeConfig, Result, telemetry};

/// The running application.
pub struct App {
    /// The configuration it was built from.
    pub config: InterludeConfig,
    /// Its clock.
    pub clock: Clock,
    /// The event collector and its stores.
    pub collector: Collector,
    /// The stitcher.
    pub stitcher: Arc<Stitcher>,
    /// The decider and its catalog, when decisioning from a catalog.
    pub decisioning: Option<(Arc<Decider>, Arc<LiveCatalog>)>,
    /// Whether the node takes traffic (it follows the embedded store's health).
    pub readiness: Readiness,
    /// The stitcher's server-side beacons on their way into the pipeline (drained at shutdown).
    pub beacons: Arc<PipelineBeaconSink>,
    /// Third parties' pixels fired by the server (drained at shutdown).
    pub outbox: Arc<PixelOutbox>,
    /// Creative conditioning, when `[condition]` enables it.
    pub conditioning: Option<Arc<Conditioning>>,
    /// The decider's auction outcomes on their way into the demand reports (flushed at shutdown).
    pub tally_flush: Option<crate::decisioning::demand::TallyFlush>,
    /// The privacy edge, built once: the erasure API shares it with the stitcher and the collector (building a
    /// second one warned a second time about a missing `INTERLUDE_PRIVACY_SECRET`).
    pub privacy: Arc<EdgePrivacy>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").finish_non_exhaustive()
    }
}

fn boxed(
    e: impl std::error::Error + Send + Sync + 'static,
) -> Box<dyn std::error::Error + Send + Sync> {
    Box::new(e)
}

impl App {
    /// Builds every part from `config`, reading time from `clock`. Background work (origin pollers,
    /// decisions, retention, the store's self-measurement, catalog reloads, pacing) starts here; the node is
    /// not ready until [`App::serve`] or the caller says so.
    pub async fn build(config: &InterludeConfig, clock: Clock) -> Result<App> {
        // The metrics recorder first: the event store records its health and open time as it opens, and
        // values recorded before a recorder exists are lost.
        telemetry::metrics_handle()?;
        let mut config = config.clone();
        if config.distributed.enabled && config.decision.controls_redis.is_none() {
            // Every node must see the same kill switches.
            config.decision.controls_redis = Some(config.distributed.redis_url.clone());
        }
        config.require_secrets()?;
        let privacy = edge_privacy(&config)?;
        let collector = collector(&config, clock.clone(), privacy.clone()).await?;
        let outbox = match outbox(&config).await {
            Ok(outbox) => outbox,
            Err(e) => {
                // The store is open already: close it, so the next start needs no repair.
                let _ = collector.shutdown().await;
                return Err(e);
            }
        };
        let beacons = Arc::new(PipelineBeaconSink::with_outbox(
            &collector,
            Some(outbox.clone()),
        ));
        let (pods, decisioning) = decisioning(&config, clock.clone(), &collector, &outbox).await?;
        if let Some(reservations) = decisioning
            .as_ref()
            .and_then(|(d, _)| d.engine().reservations().cloned())
        {
            // Counted impressions confirm their reservations (embedded; `interlude process` in distributed
            // mode).
            collector.on_counted(crate::decisioning::deliveries::confirming(
                reservations,
                clock.clone(),
            ));
        }
        let tally_flush = decisioning.as_ref().map(|(decider, _)| {
            crate::decisioning::demand::TallyFlush::start(
                decider.tally(),
                collector.reports().clone(),
            )
        });
        let conditioning = conditioning(&config, clock.clone()).await?;
        let signer = collector.clone();
        let issuer = collector.clone();
        let stitcher = Stitcher::builder(
            config.stitcher.clone(),
            config.server.base_url(),
            pods,
            beacons.clone() as Arc<dyn BeaconSink>,
            clock.clone(),
        )
        .privacy(Some(privacy.clone()))
        .shared(shared_sessions(&config).await?)
        .tracking_signer(Some({
            let beacons = config.server.beacon_base_url();
            Arc::new(move |claims| {
                signer
                    .tracking_path(claims)
                    .map(|path| format!("{beacons}{path}"))
            })
        }))
        .outbound(config.outbound.clone())
        .instance_issuer(Some(Arc::new(move |session, id| {
            issuer.issue_instance(session, id)
        })))
        .conditioning(conditioning.clone())
        .build()?;
        stitcher.start();
        if let (Some(conditioning), Some((decider, _))) = (&conditioning, &decisioning) {
            // Direct-sold creatives delivered as files are conditioned before a break first picks them.
            crate::conditioning::ahead::spawn(
                conditioning.clone(),
                decider.clone(),
                stitcher.clone(),
                crate::conditioning::ahead::EVERY,
            );
        }
        let readiness = Readiness::new();
        if let Some(store) = collector.embedded() {
            readiness.follow_store(store.health());
        }
        Ok(App {
            config,
            clock,
            collector,
            stitcher,
            decisioning,
            readiness,
            beacons,
            outbox,
            conditioning,
            tally_flush,
            privacy,
        })
    }

    /// Binds `server.listen` and serves every route until `shutdown` resolves, then shuts down gracefully
    /// (see [`App::serve_on`]).
    pub async fn serve(
        &self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let addr = self.config.server.listen;
        match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => self.serve_on(listener, shutdown).await,
            Err(source) => {
                // The store is open already: close it, so the next start needs no repair.
                self.shutdown().await?;
                Err(Error::Bind { addr, source })
            }
        }
    }

    /// Serves every route on `listener`, ready at once, until `shutdown` resolves (SIGTERM or Ctrl-C in
    /// `interlude serve`); then the node turns not ready, stops accepting, drains in-flight requests for up
    /// to `server.shutdown_grace_secs`, and [`App::shutdown`] commits what the store has queued. Returns
    /// once the store is closed.
    pub async fn serve_on(
        &self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let router = match self.router() {
            Ok(router) => router,
            Err(e) => {
                self.shutdown().await?;
                return Err(e);
            }
        };
        let readiness = self.readiness.clone();
        let (stop_beacons, mut beacons_stopped) = tokio::sync::watch::channel(false);
        let stopping = async move {
            shutdown.await;
            readiness.set(false);
            let _ = stop_beacons.send(true);
        };
        let beacons_stop = async move {
            let _ = beacons_stopped.wait_for(|stopped| *stopped).await;
        };
        let beacons = match self.start_beacon_listener(beacons_stop) {
            Ok(beacons) => beacons,
            Err(e) => {
                self.shutdown().await?;
                return Err(e);
            }
        };
        self.readiness.set(true);
        let mut served = endpoints::serve_on_with_limits(
            listener,
            router,
            Duration::from_secs(self.config.server.shutdown_grace_secs),
            stopping,
            endpoints::ConnectionLimits::from(&self.config.server),
        )
        .await;
        // The beacons it accepted are in the store's queue before the store closes.
        if let Some(beacons) = beacons {
            served = served.and(beacons.finished().await);
        }
        // Even when serving failed: what was acknowledged is committed and the file closed cleanly.
        let stopped = self.shutdown().await;
        served.and(stopped)
    }

    /// Starts the beacon listener when `server.beacon_listen` is set: the collector's routes (beacons in,
    /// reads behind the read scope) and the health checks, under admission control of their own, on niced
    /// threads (see [`crate::ops::beacon_listener`]). It stops, and drains, when `stop` resolves.
    pub fn start_beacon_listener(
        &self,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<Option<crate::ops::beacon_listener::BeaconListener>> {
        let server = &self.config.server;
        let Some(addr) = server.beacon_listen else {
            return Ok(None);
        };
        let listener =
            std::net::TcpListener::bind(addr).map_err(|source| Error::Bind { addr, source })?;
        let metrics = telemetry::metrics_handle()?;
        let routes = crate::ops::shedding::with_shedding(
            endpoints::with_request_metrics(
                crate::collector::router(self.collector.clone())
                    .merge(endpoints::health_router(metrics, self.readiness.clone())),
            ),
            crate::ops::shedding::ShedPolicy::from(server),
        );
        let router = crate::edge::client::layer(routes, &self.config.edge.trusted_proxies);
        crate::ops::beacon_listener::BeaconListener::start(
            listener,
            router,
            crate::ops::beacon_listener::BeaconSettings {
                threads: server.beacon_threads,
                nice: server.beacon_nice,
                cpus: server.beacon_cpus_list()?,
                grace: Duration::from_secs(server.shutdown_grace_secs),
                limits: endpoints::ConnectionLimits::from(server),
            },
            stop,
        )
        .map(Some)
    }

    /// Stops the event pipeline after the HTTP server has drained: the stitcher's buffered server-side
    /// beacons are submitted (waiting up to `events.beacon_wait_secs` for an unhealthy store) and the pixels
    /// of those counted queued, then the store's committer stops intake, commits every queued batch and
    /// closes the store, so nothing acknowledged is lost and the next start needs no repair. Later appends
    /// answer 503. Last the outbox stops taking pixels and waits up to `outbox.drain_timeout_ms` for the sends
    /// in flight: the queue is durable, so what it does not send now is sent after the restart, and the
    /// event store, whose records are the bill, is closed before this wait.
    pub async fn shutdown(&self) -> Result<()> {
        self.readiness.set(false);
        if let Some(conditioning) = &self.conditioning {
            // Its jobs are durable: a job stopped mid-way resumes from its last finished rendition.
            conditioning.shutdown().await;
        }
        self.beacons.close().await;
        if let Some(flush) = &self.tally_flush {
            flush.stop().await;
        }
        let committed = self
            .collector
            .shutdown()
            .await
            .map_err(|e| Error::Shutdown {
                what: "committing and closing the event store".into(),
                source: boxed(e),
            });
        if committed.is_ok() {
            tracing::info!("Event pipeline stopped; queued events committed.");
        }
        // Even when the store failed to close: the pixels in flight still deserve their answers.
        if let Some(drained) = self.outbox.shutdown().await {
            tracing::info!(
                abandoned = drained.abandoned,
                "Outbox stopped; queued pixels are fired after the restart."
            );
        }
        committed
    }

    /// Every route of the node: the stitcher's, the collector's, decisioning (VAST/VMAP, explain, catalog
    /// admin), operator and erasure APIs when an admin token is set, the dashboard, the operational
    /// endpoints; behind load shedding and request metrics.
    pub fn router(&self) -> Result<Router> {
        let config = &self.config;
        let token = admin_token(config);
        let read = read_scope(&config.edge, token, config.server.insecure_dev);
        let decider = self.decisioning.as_ref().map(|(d, _)| d.clone());
        let mut routes =
            crate::decisioning::admin::openapi_router().merge(crate::ops::dashboard::router(
                crate::ops::dashboard::Sources {
                    stitcher: self.stitcher.clone(),
                    collector: self.collector.clone(),
                    decider: decider.clone(),
                    metrics: telemetry::live_metrics()?,
                    conditioning: self.conditioning.clone(),
                    clock: self.clock.clone(),
                },
                read.clone(),
            ));
        if let Some(token) = token {
            routes = routes
                .merge(crate::privacy::erasure::router(
                    crate::privacy::erasure::Erasure {
                        stitcher: self.stitcher.clone(),
                        collector: self.collector.clone(),
                        privacy: self.privacy.clone(),
                        retention: config.privacy.retention.clone(),
                        frequency_window_days: u32::try_from(
                            config.events.policy.frequency_window_days,
                        )
                        .unwrap_or(30),
                        kafka_log: config.distributed.enabled,
                        clock: self.clock.clone(),
                        reservations: decider
                            .as_ref()
                            .and_then(|d| d.engine().reservations().cloned()),
                    },
                    token,
                ))
                .merge(crate::ops::operator::router(
                    self.stitcher.clone(),
                    decider.clone(),
                    self.readiness.clone(),
                    token,
                ));
        }
        if let Some((decider, catalogs)) = &self.decisioning {
            routes = routes
                .merge(guard(
                    crate::decisioning::explain::router_with_conditioning(
                        decider.clone(),
                        self.conditioning
                            .clone()
                            .map(|c| (c, self.stitcher.clone())),
                    ),
                    read.clone(),
                ))
                .merge(crate::decisioning::vast_routes::router(
                    decider.clone(),
                    self.collector.clone(),
                    config.server.base_url(),
                    config.server.beacon_base_url(),
                ));
            if let Some(token) = token {
                routes = routes.merge(crate::decisioning::admin::router(catalogs.clone(), token));
            }
        }
        if let Some(conditioning) = &self.conditioning {
            routes = routes.merge(crate::conditioning::routes::media_router(
                conditioning.clone(),
            ));
            if let Some(token) = token {
                let http = interlude_outbound::GuardedClient::new(&config.outbound)
                    .map_err(boxed)
                    .map_err(Error::startup("building the outbound client ([outbound])"))?;
                let demand = &config.decision.demand;
                routes = routes.merge(crate::conditioning::routes::api_router(
                    crate::conditioning::routes::ConditionApi {
                        conditioning: conditioning.clone(),
                        stitcher: self.stitcher.clone(),
                        http,
                        resolve: interlude_vast::ResolveConfig {
                            max_depth: demand.vast_max_wrappers,
                            hop_timeout: Duration::from_millis(demand.vast_hop_timeout_ms),
                            total_timeout: Duration::from_millis(demand.vast_total_timeout_ms),
                        },
                    },
                    token,
                ));
            }
        }
        let mut viewer_routes = routes::router(self.stitcher.clone());
        if let Some(cors) = crate::edge::cors(&config.edge, config.server.insecure_dev) {
            viewer_routes = viewer_routes.layer(cors);
        }
        let metrics = telemetry::metrics_handle()?;
        let served = crate::ops::shedding::with_shedding(
            endpoints::with_request_metrics(
                viewer_routes
                    .merge(crate::collector::router(self.collector.clone()))
                    .merge(routes)
                    .merge(guard(
                        endpoints::metrics_router(metrics.clone(), self.readiness.clone()),
                        read,
                    ))
                    .merge(endpoints::health_router(metrics, self.readiness.clone())),
            ),
            crate::ops::shedding::ShedPolicy::from(&config.server),
        );
        // Outermost, so every layer and route sees the same client address.
        Ok(crate::edge::client::layer(
            served,
            &config.edge.trusted_proxies,
        ))
    }
}

/// The admin token, when one is set.
fn admin_token(config: &InterludeConfig) -> Option<&str> {
    config
        .decision
        .admin_token
        .as_deref()
        .filter(|t| !t.trim().is_empty())
}

/// The privacy edge from `[privacy]` (the pseudonym secret from `INTERLUDE_PRIVACY_SECRET`).
pub fn edge_privacy(config: &InterludeConfig) -> Result<Arc<EdgePrivacy>> {
    let edge = EdgePrivacy::from_settings(&config.privacy)?;
    Ok(Arc::new(edge))
}

/// Opens the event store and its collector: embedded, or the Kafka log and PostgreSQL reports in
/// distributed mode; retention starts.
async fn collector(
    config: &InterludeConfig,
    clock: Clock,
    privacy: Arc<EdgePrivacy>,
) -> Result<Collector> {
    let collector = if config.distributed.enabled {
        let d = &config.distributed;
        Collector::distributed(&config.events, d, clock)
            .await
            .map_err(boxed)
            .map_err(Error::startup(format!(
                "connecting the distributed event pipeline (kafka {}, postgres {:?}, redis {})",
                d.kafka.brokers, d.postgres_url, d.redis_url
            )))?
    } else {
        let mut events = config.events.clone();
        if events.committer_nice.is_none() && config.server.beacon_listen.is_some() {
            events.committer_nice = Some(config.server.beacon_nice);
        }
        if events.committer_cpus.is_none() && config.server.beacon_listen.is_some() {
            events.committer_cpus = config.server.beacon_cpus.clone();
        }
        Collector::open(&events, clock)
            .map_err(boxed)
            .map_err(Error::startup(format!(
                "opening the event store in {}",
                config.events.data_dir.display()
            )))?
    };
    let insecure_dev = config.server.insecure_dev;
    let collector = collector.with_privacy(privacy).with_access(
        Producers::from_config(&config.edge, insecure_dev),
        read_scope(&config.edge, admin_token(config), insecure_dev),
    );
    collector.start_retention(config.privacy.retention.clone(), Duration::from_secs(60));
    collector.start_observing(Duration::from_secs(config.events.observe_secs.max(1)));
    Ok(collector)
}

/// Where pods come from: the decider over the configured catalog (pacing and caps read the collector's live
/// counts; every ad decided is reserved against its goal and the viewer's caps, see [`reservations`]), or
/// without a catalog the stitcher's configured creatives for everyone.
async fn decisioning(
    config: &InterludeConfig,
    clock: Clock,
    collector: &Collector,
    outbox: &Arc<PixelOutbox>,
) -> Result<(Arc<dyn PodSource>, Option<(Arc<Decider>, Arc<LiveCatalog>)>)> {
    let tolerance_ms = u32::try_from(config.stitcher.tolerance_ms).unwrap_or(u32::MAX);
    let Some(path) = &config.decision.catalog else {
        let configured =
            ConfiguredPodSource::new(&config.stitcher.creatives, f64::from(tolerance_ms) / 1000.0);
        return Ok((Arc::new(configured), None));
    };
    let catalog_what = format!("loading the catalog {}", path.display());
    let text = std::fs::read_to_string(path)
        .map_err(boxed)
        .map_err(Error::startup(catalog_what.clone()))?;
    let catalog = Catalog::from_toml(&text)
        .map_err(boxed)
        .map_err(Error::startup(catalog_what))?;
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
    let engine = Arc::new(
        Engine::new(
            catalog,
            collector.counters(),
            config.decision.max_ads_per_pod,
            tolerance_ms,
        )
        .with_reservations(reservations(config, clock.clone())?, None),
    );
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
    let http = interlude_outbound::GuardedClient::new(&config.outbound)
        .map_err(boxed)
        .map_err(Error::startup("building the outbound client ([outbound])"))?;
    let decider = Arc::new(
        Decider::new(engine, clock, config.decision.demand.clone(), http)
            .with_outbox(outbox.clone()),
    );
    if let Some(url) = &config.decision.controls_redis {
        crate::ops::controls_sync::spawn(decider.clone(), url, "interlude")
            .map_err(boxed)
            .map_err(Error::startup(format!("decision.controls_redis {url:?}")))?;
    }
    let catalogs = LiveCatalog::new(decider.clone(), Some(path.clone()), Arc::new(set_prices));
    if config.distributed.enabled {
        // Every node serves the catalog in PostgreSQL; the file only seeds it the first time.
        let url = &config.distributed.postgres_url;
        let pg = interlude_store::pg::PgCatalog::connect(url)
            .await
            .map_err(boxed)
            .map_err(Error::startup(format!(
                "connecting to PostgreSQL {url:?} for the catalog"
            )))?;
        catalogs
            .attach_shared(Arc::new(pg))
            .await
            .map_err(boxed)
            .map_err(Error::startup("loading the catalog from PostgreSQL"))?;
    }
    catalogs.watch(Duration::from_secs(
        config.decision.catalog_reload_secs.max(1),
    ));
    Ok((decider.clone(), Some((decider, catalogs))))
}

/// Where decided impressions are held against goals and caps until delivered or expired: Redis in
/// distributed mode (one atomic reserve per ad, so nodes deciding the same break cannot overrun a goal or a
/// viewer's cap together), else the in-memory book of this one process.
fn reservations(config: &InterludeConfig, clock: Clock) -> Result<Arc<dyn Reservations>> {
    if !config.distributed.enabled {
        // The embedded store's counters are read from the very commit that confirms a delivery: nothing to
        // settle. Its pipeline confirms each counted impression once (billing dedup): nothing to remember.
        let book = Arc::new(std::sync::Mutex::new(
            ReservationBook::with_settle(chrono::TimeDelta::zero())
                .remembering(chrono::TimeDelta::zero()),
        ));
        // The book expires what it holds as it is used; after a burst nothing may use it for a while, and
        // what the burst reserved would stay in memory until then.
        let weak = Arc::downgrade(&book);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tick.tick().await;
                let Some(book) = weak.upgrade() else { break };
                if let Ok(mut book) = book.lock() {
                    book.expire(clock());
                }
            }
        });
        return Ok(book);
    }
    let d = &config.distributed;
    let redis = RedisReservations::connect(&d.redis_url, &d.key_prefix)
        .map_err(boxed)
        .map_err(Error::startup(format!(
            "connecting to Redis at {} for reservations",
            d.redis_url
        )))?;
    Ok(redis)
}

/// Creative conditioning from `[condition]`: the job queue (redb beside the event store, or in distributed
/// mode the PostgreSQL table every node and `interlude condition` worker shares), this node's worker pool
/// fetching sources through a guarded client of `[outbound]`, outputs served under `/v1/conditioned/` unless
/// `condition.public_base_url` names another place.
/// `None` when `condition.enabled` is off. `interlude condition` runs workers alone through this too.
pub async fn conditioning(
    config: &InterludeConfig,
    clock: Clock,
) -> Result<Option<Arc<Conditioning>>> {
    let c = &config.condition;
    if !c.enabled {
        return Ok(None);
    }
    let queue: Arc<dyn interlude_condition::JobQueue> = if config.distributed.enabled {
        let url = &config.distributed.postgres_url;
        Arc::new(
            interlude_condition::jobs::pg::PgQueue::connect(url)
                .await
                .map_err(boxed)
                .map_err(Error::startup(format!(
                    "opening the conditioning queue in PostgreSQL {url:?}"
                )))?,
        )
    } else {
        let dir = &config.events.data_dir;
        let path = dir.join("condition.redb");
        let queue = std::fs::create_dir_all(dir)
            .map_err(boxed)
            .and_then(|()| interlude_condition::RedbQueue::open(&path).map_err(boxed))
            .map_err(Error::startup(format!(
                "opening the conditioning queue {}",
                path.display()
            )))?;
        Arc::new(queue)
    };
    let max_bytes = c.max_source_mb.saturating_mul(1 << 20);
    let fetcher = crate::conditioning::GuardedFetcher::new(
        &config.outbound,
        max_bytes,
        Duration::from_secs(600),
    )
    .map_err(boxed)
    .map_err(Error::startup(
        "building the conditioning fetcher's outbound client ([outbound])",
    ))?;
    let root = c.root_in(&config.events.data_dir);
    let media_base = c
        .public_base_url
        .clone()
        .unwrap_or_else(|| format!("{}/v1/conditioned", config.server.base_url()));
    let conditioning =
        Conditioning::start(c, queue, Arc::new(fetcher), root.clone(), media_base, clock)
            .map_err(boxed)
            .map_err(Error::startup(format!(
                "starting creative conditioning in {}",
                root.display()
            )))?;
    tracing::info!(root = %root.display(), workers = c.workers, "Creative conditioning on.");
    Ok(Some(Arc::new(conditioning)))
}

/// Opens the outbox and starts firing through a guarded client of `[outbound]` (the same policy as every other
/// call to a third party): the redb queue beside the event store, or in distributed mode the queue in
/// PostgreSQL that every node shares, so that one pixel is fired once whichever node counted it.
async fn outbox(config: &InterludeConfig) -> Result<Arc<PixelOutbox>> {
    let client = interlude_outbound::GuardedClient::new(&config.outbound)
        .map_err(boxed)
        .map_err(Error::startup(
            "building the outbound client of the outbox ([outbound])",
        ))?;
    let outbox = if config.distributed.enabled {
        let url = &config.distributed.postgres_url;
        PixelOutbox::shared(&config.outbox, url, client)
            .await
            .map_err(boxed)
            .map_err(Error::startup(format!(
                "opening the outbox in PostgreSQL {url:?}"
            )))?
    } else {
        let path = crate::pixels::embedded_path(&config.outbox, &config.events.data_dir);
        PixelOutbox::embedded(&config.outbox, &path, client)
            .map_err(boxed)
            .map_err(Error::startup(format!(
                "opening the outbox {}",
                path.display()
            )))?
    };
    Ok(Arc::new(outbox))
}

/// Where sessions and their break decisions outlive this process: Redis in distributed mode (shared by every
/// node), else `sessions.redb` beside the event store (a restarted node serves its viewers the same playlists).
async fn shared_sessions(config: &InterludeConfig) -> Result<Option<Arc<SharedSessions>>> {
    if !config.distributed.enabled {
        let dir = &config.events.data_dir;
        let share = interlude_store::embedded::RedbSessionShare::open(
            dir,
            Duration::from_secs(config.stitcher.session_ttl_secs),
        )
        .map_err(boxed)
        .map_err(Error::startup(format!(
            "opening the session store in {}",
            dir.display()
        )))?;
        return Ok(Some(Arc::new(SharedSessions::new(Arc::new(share)))));
    }
    let d = &config.distributed;
    let share = RedisSessionShare::connect(
        &d.redis_url,
        &d.key_prefix,
        config.stitcher.session_ttl_secs,
    )
    .await
    .map_err(boxed)
    .map_err(Error::startup(format!(
        "connecting to Redis at {} for shared sessions",
        d.redis_url
    )))?;
    Ok(Some(Arc::new(SharedSessions::new(Arc::new(share)))))
}
