//! The collector's state: where events are appended (the embedded committer or the Kafka log), where reports
//! are read ([`ReportStore`]), the live counters pacing reads, the token keyring, edge privacy, retention, and
//! the embedded store's upkeep and graceful shutdown.

use std::sync::Arc;

use interlude_events::token::{Keyring, TokenClaims};
use interlude_events::{Counters, Envelope};
use interlude_store::Error as StoreError;
use interlude_store::kafka::KafkaLog;
use interlude_store::pg::PgStore;
use interlude_store::redis::RedisCounters;
use interlude_store::{Committer, EventLog, EventStore, ReportStore, Sink};

use super::EventsConfig;
use crate::edge::auth::{Producers, Scope};

/// The collector's shared state.
#[derive(Clone)]
pub struct Collector {
    pub(super) privacy: Option<Arc<crate::privacy::edge::EdgePrivacy>>,
    pub(super) shared_counters: Option<Arc<RedisCounters>>,
    pub(super) reports: Arc<dyn ReportStore>,
    /// The embedded store, when this collector has one (erasure scans it; tests read it).
    pub(super) embedded: Option<Arc<EventStore>>,
    pub(super) log: Arc<dyn EventLog>,
    /// The embedded store's group committer behind `log`, when there is one: beacons submit through it with a
    /// deadline, and shutdown drains it.
    pub(super) committer: Option<Committer>,
    /// How long a batch of server-side beacons waits for a busy or unhealthy store.
    pub(super) beacon_wait: std::time::Duration,
    pub(super) counters: Arc<dyn Counters>,
    pub(super) keys: Arc<Keyring>,
    pub(super) clock: interlude_events::Clock,
    /// Who may post events: closed until [`Collector::with_access`] says otherwise.
    pub(super) producers: Arc<Producers>,
    /// Who may read reports, the ledger, quarantine and per-ad events.
    pub(super) read: Arc<Scope>,
    /// How long a tracking token is honoured, and how far ahead of our clock it may claim to be issued.
    pub(super) token_life: TokenLife,
}

/// The window in which a tracking token (a pixel URL) counts.
///
/// A token must expire before the dedup keys of its events do: past the dedup window, a captured pixel URL
/// fired again would be counted again. So it lives the dedup window less a margin (an hour, so that a fire at
/// the last second is still deduplicated against the first even with clock skew between nodes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct TokenLife {
    pub(super) max_age_secs: i64,
    pub(super) future_skew_secs: i64,
}

impl TokenLife {
    fn of(policy: &interlude_events::Policy) -> TokenLife {
        let window = policy.dedup_window_hours.saturating_mul(3600);
        TokenLife {
            max_age_secs: (window - TOKEN_MARGIN_SECS).max(window / 2),
            future_skew_secs: policy.max_future_skew_secs.max(0),
        }
    }
}

/// How long before its dedup keys expire a tracking token stops counting.
const TOKEN_MARGIN_SECS: i64 = 3600;

fn prices_of(config: &EventsConfig) -> Arc<dyn interlude_events::Prices> {
    let prices: std::collections::BTreeMap<String, u64> = config
        .line_item_cpm
        .iter()
        .map(|(li, cpm)| (li.clone(), (cpm * 1e6).round() as u64))
        .collect();
    Arc::new(prices)
}

impl Collector {
    /// Opens the store and starts its committer.
    pub fn open(config: &EventsConfig, clock: interlude_events::Clock) -> Result<Self, StoreError> {
        Self::with_sink(config, clock, |store| Sink::Store(store.clone()))
    }

    /// A collector that validates and answers but stores nothing: the baseline of the ingestion benchmark.
    /// Reports of it are empty.
    pub fn discarding(
        config: &EventsConfig,
        clock: interlude_events::Clock,
    ) -> Result<Self, StoreError> {
        Self::with_sink(config, clock, |_| Sink::Discard(config.policy.clone()))
    }

    fn with_sink(
        config: &EventsConfig,
        clock: interlude_events::Clock,
        sink: impl FnOnce(&Arc<EventStore>) -> Sink,
    ) -> Result<Self, StoreError> {
        let store = Arc::new(EventStore::open_with(
            &config.data_dir,
            config.policy.clone(),
            &config.store,
        )?);
        store.set_prices(prices_of(config));
        let nice = config.committer_nice.unwrap_or(0);
        // Validated with the configuration: a list that does not parse here is not one it accepted.
        let cpus = config
            .committer_cpus
            .as_deref()
            .and_then(|list| crate::ops::cpus::CpuList::parse("events.committer_cpus", list).ok());
        let committer = Committer::start_sink_with(
            sink(&store),
            clock.clone(),
            config.queue_batches,
            Box::new(move || {
                if nice > 0 {
                    crate::ops::beacon_listener::lower_thread_priority(nice);
                }
                if let Some(cpus) = &cpus {
                    crate::ops::cpus::run_on(cpus);
                }
            }),
        );
        Ok(Collector {
            privacy: None,
            shared_counters: None,
            counters: store.clone(),
            reports: store.clone(),
            embedded: Some(store),
            log: Arc::new(committer.clone()),
            committer: Some(committer),
            beacon_wait: std::time::Duration::from_secs(config.beacon_wait_secs),
            keys: Arc::new(config.keyring()),
            clock,
            producers: Arc::new(Producers::closed()),
            read: Arc::new(Scope::of([])),
            token_life: TokenLife::of(&config.policy),
        })
    }

    /// A collector of distributed mode: appends to the Kafka event log (creating its topics if needed), reads
    /// reports from PostgreSQL and pacing/frequency counts from Redis.
    pub async fn distributed(
        config: &EventsConfig,
        distributed: &interlude_store::DistributedConfig,
        clock: interlude_events::Clock,
    ) -> Result<Self, StoreError> {
        let pg =
            Arc::new(PgStore::connect(&distributed.postgres_url, config.policy.clone()).await?);
        pg.set_prices(prices_of(config));
        distributed.kafka.ensure_topics().await?;
        let log = KafkaLog::new(&distributed.kafka, config.policy.clone())?;
        let counters = RedisCounters::connect(
            &distributed.redis_url,
            &distributed.key_prefix,
            config.policy.frequency_window_days,
        )
        .await?;
        counters.refresh().await?;
        // Detached: the refresher holds a weak reference and ends with the counters.
        drop(counters.start_refresh(std::time::Duration::from_secs(1)));
        Ok(Collector {
            privacy: None,
            shared_counters: Some(counters.clone()),
            reports: pg,
            embedded: None,
            log: Arc::new(log),
            committer: None,
            beacon_wait: std::time::Duration::from_secs(config.beacon_wait_secs),
            counters,
            keys: Arc::new(config.keyring()),
            clock,
            producers: Arc::new(Producers::closed()),
            read: Arc::new(Scope::of([])),
            token_life: TokenLife::of(&config.policy),
        })
    }

    /// Who may post events (`POST /v1/events`) and read what was counted (reports, ledger, quarantine, per-ad
    /// events). Without this call nobody may.
    pub fn with_access(mut self, producers: Producers, read: Scope) -> Self {
        self.producers = Arc::new(producers);
        self.read = Arc::new(read);
        self
    }

    /// Minimises every beacon at the edge with `privacy` (truncated address, coarse geo, device class, no
    /// viewer id without consent).
    pub fn with_privacy(mut self, privacy: Arc<crate::privacy::edge::EdgePrivacy>) -> Self {
        self.privacy = Some(privacy);
        self
    }

    pub(super) fn minimise(&self, envelope: &mut Envelope) {
        match &self.privacy {
            Some(p) => p.minimise(envelope),
            None => crate::privacy::edge::minimise_ids(
                &mut envelope.event.viewer_id,
                &envelope.event.consent,
            ),
        }
    }

    /// Removes the viewer ids `ids` from every store of the event pipeline; one receipt line per store.
    pub async fn forget_viewers(
        &self,
        ids: &[String],
    ) -> Result<Vec<serde_json::Value>, StoreError> {
        let mut lines = vec![self.reports.forget_viewers(ids).await?];
        if let Some(counters) = &self.shared_counters {
            let n = counters.forget_viewers(ids).await?;
            lines.push(serde_json::json!({
                "store": "redis frequency counters",
                "action": "deleted",
                "viewers_with_counts": n,
            }));
        }
        lines.push(serde_json::json!({
            "store": "dedup state and aggregates",
            "action": "none needed: keyed by event, ad instance, session and line item ids, never by viewer",
        }));
        Ok(lines)
    }

    /// The shared frequency counters, in distributed mode.
    pub fn shared_counters(&self) -> Option<&Arc<RedisCounters>> {
        self.shared_counters.as_ref()
    }

    /// Enforces retention every `every`: raw events and quarantined events older than their data class allows
    /// are removed (embedded store) or deleted (PostgreSQL quarantine; the Kafka log ages out by its topic
    /// retention).
    pub fn start_retention(
        &self,
        retention: crate::privacy::edge::Retention,
        every: std::time::Duration,
    ) {
        let (reports, clock) = (self.reports.clone(), self.clock.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let now = clock();
                let log_before =
                    now - chrono::TimeDelta::days(i64::from(retention.raw_events_days));
                let quarantine_before =
                    now - chrono::TimeDelta::days(i64::from(retention.quarantine_days));
                let result = reports
                    .clone()
                    .compact(log_before, quarantine_before, now)
                    .await;
                match result {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(removed = n, "Retention: expired events removed."),
                    Err(e) => tracing::warn!(error = %e, "Retention sweep failed; retried later."),
                }
            }
        });
    }

    /// Tells `f` of the impressions each commit of the embedded store counts. In distributed mode the
    /// processors count (`interlude process`, [`interlude_store::kafka::Processor::with_on_counted`]): nothing
    /// to do here.
    pub fn on_counted(&self, f: interlude_store::OnCounted) {
        if let Some(committer) = &self.committer {
            committer.on_counted(f);
        }
    }

    /// The embedded store, when this collector has one.
    pub fn embedded(&self) -> Option<Arc<EventStore>> {
        self.embedded.clone()
    }

    /// Starts the embedded store's self-measurement every `every` (file and disk size, table entries: the
    /// `events_store_*` gauges). It ends by itself once the store is closed. Nothing to do in distributed
    /// mode, whose engines have their own monitoring.
    pub fn start_observing(&self, every: std::time::Duration) {
        if let Some(store) = &self.embedded {
            // Detached: the task holds a weak reference and ends with the store.
            drop(store.start_observing(every));
        }
    }

    /// Graceful shutdown of the embedded store: stops intake (later appends answer 503), commits every batch
    /// already queued, and closes the file so the next start needs no repair. Call it after the HTTP server
    /// has drained (and after [`super::PipelineBeaconSink::close`]), so nothing acknowledged is still in
    /// flight. A no-op in distributed mode: each Kafka append is acknowledged only once the broker has it.
    pub async fn shutdown(&self) -> Result<(), StoreError> {
        match &self.committer {
            Some(committer) => committer.shutdown().await,
            None => Ok(()),
        }
    }

    /// Where reports are read.
    pub fn reports(&self) -> &Arc<dyn ReportStore> {
        &self.reports
    }

    /// The live delivery counts pacing and frequency caps read.
    pub fn counters(&self) -> Arc<dyn Counters> {
        self.counters.clone()
    }

    /// Session `session_id`'s ad instance id `id`, made recognisable to this collector (see
    /// [`crate::stitcher::instances`]).
    pub fn issue_instance(&self, session_id: &str, id: &str) -> String {
        self.keys.issue_instance(session_id, id)
    }

    /// A tracking URL path (`/t/{token}`) for `claims`.
    pub fn tracking_path(&self, claims: &TokenClaims) -> Option<String> {
        self.keys.sign(claims).ok().map(|t| format!("/t/{t}"))
    }
}
