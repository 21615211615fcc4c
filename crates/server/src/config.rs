//! The configuration model: one TOML file, `INTERLUDE_…` environment overrides, a default for everything.
//!
//! Precedence, lowest first: built-in defaults, the TOML file (if any), then environment variables named
//! `INTERLUDE_<SECTION>__<KEY>` (double underscore between levels, e.g. `INTERLUDE_SERVER__LISTEN=0.0.0.0:8080`).
//! Only variables containing `__` are read as configuration, so flag variables such as `INTERLUDE_CONFIG` do not
//! collide with it. Unknown keys are errors: a typo must fail at start, not be silently ignored.

use std::net::SocketAddr;
use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The whole configuration of an Interlude process.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InterludeConfig {
    /// The HTTP server (stitcher, ad API, collector, admin, metrics).
    pub server: ServerConfig,
    /// Logging.
    pub log: LogConfig,
    /// Live stitching: channels, sessions, slate.
    pub stitcher: crate::stitcher::StitcherConfig,
    /// The simulated live origin of `interlude origin` and `interlude demo`: read and validated by the binary,
    /// which holds the simulator (the server itself has none), and kept here as written so one file serves
    /// both.
    pub origin: toml::Table,
    /// The event pipeline: store, token keys, validation.
    pub events: crate::collector::EventsConfig,
    /// Ad decisioning.
    pub decision: DecisionConfig,
    /// Distributed mode: the event log on Kafka, shared state in Redis, reports and the catalog in PostgreSQL.
    pub distributed: interlude_store::DistributedConfig,
    /// Data minimisation, consent and retention.
    pub privacy: crate::privacy::edge::PrivacySettings,
    /// Calls to third parties (ad servers, bidders, pixels): TLS roots, the SSRF allowlist, timeouts and
    /// body caps per kind.
    pub outbound: interlude_outbound::OutboundConfig,
    /// Third parties' pixels fired by the server (VAST impressions and tracking, OpenRTB notices): where the
    /// durable queue lives, per-host limits, retries.
    pub outbox: interlude_outbox::OutboxConfig,
    /// Who may call what, and which proxies are trusted to name the client.
    pub edge: crate::edge::EdgeConfig,
    /// Creative conditioning: transcoding ads offered as progressive or mezzanine files to the channels'
    /// renditions and loudness.
    pub condition: crate::conditioning::ConditionConfig,
}

/// The `[decision]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecisionConfig {
    /// The catalog file (TOML). Unset: the stitcher's configured creatives are served to everyone.
    pub catalog: Option<std::path::PathBuf>,
    /// Most ads in one pod.
    pub max_ads_per_pod: usize,
    /// Seconds between pacing updates from delivered counts.
    pub pacing_interval_secs: u64,
    /// Seconds between checks of the catalog file for changes (hot reload).
    pub catalog_reload_secs: u64,
    /// Bearer token of the catalog admin API (`/v1/admin/…`); unset: the admin API is off. Prefer the
    /// `INTERLUDE_DECISION__ADMIN_TOKEN` environment variable to writing it in a file.
    pub admin_token: Option<String>,
    /// Redis URL through which operator controls (kill switches, slate-only) are shared by every node;
    /// unset: they apply to this process only.
    pub controls_redis: Option<String>,
    /// Third-party demand: OpenRTB bidders and VAST tag limits.
    pub demand: crate::decisioning::decider::DemandConfig,
}

impl Default for DecisionConfig {
    fn default() -> Self {
        DecisionConfig {
            catalog: None,
            max_ads_per_pod: 6,
            pacing_interval_secs: 60,
            catalog_reload_secs: 2,
            admin_token: None,
            controls_redis: None,
            demand: crate::decisioning::decider::DemandConfig::default(),
        }
    }
}

/// The HTTP listener.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// Base URL players use to reach this server, used in the URLs it hands out (playlists, tracking).
    /// Defaults to `http://{listen}`.
    pub public_base_url: Option<String>,
    /// Seconds to let in-flight requests finish after a shutdown signal.
    pub shutdown_grace_secs: u64,
    /// Requests in flight before load shedding starts refusing, lowest priority first (see `shedding`).
    pub max_in_flight: usize,
    /// Beacon requests (`/t/…`, `POST /v1/events`) in flight, a cap of their own inside `max_in_flight`: a
    /// retry storm waiting on the event store's commits cannot take the budget playlists need. 0: no cap
    /// beyond the shared budget.
    pub max_in_flight_beacons: usize,
    /// The run queue's smoothed delay, in milliseconds, at which beacons and client-side decisions start
    /// being refused (admin at half of it; playlists never), with a probability rising to 1 at five times it.
    /// It is the delay every request pays before its work starts, so it should sit near the playlist
    /// latency the service promises. 0: shed on requests in flight only.
    pub shed_queue_delay_ms: u64,
    /// Development mode (`--insecure-dev`, which `interlude demo` passes): the public development signing key
    /// and pseudonym secret are used when none are configured, and routes without configured tokens are open.
    /// Never read from a file or the environment, so a deployment cannot fall into it by configuration.
    #[serde(skip)]
    pub insecure_dev: bool,
    /// Seconds a client has to send a whole request head (request line and headers), counted from when the
    /// connection is ready for its next request: a slow client trickling a header ("slowloris") is
    /// disconnected. On an HTTP/1.1 keep-alive connection this is also how long it may sit idle between
    /// requests, so a load balancer's idle timeout towards this server must be shorter. 0: no limit.
    pub header_read_timeout_secs: u64,
    /// Seconds a connection may go without reading or writing a single byte (a stalled upload, a reader that
    /// stopped reading, an idle HTTP/2 connection) before it is closed. 0: no limit.
    pub idle_timeout_secs: u64,
    /// Connections open at once, every client together; a connection over the cap is closed as soon as it
    /// is accepted. Keep it below the process's file descriptor limit (`ulimit -n`).
    pub max_connections: usize,
    /// Connections open at once from one client address (IPv6: one /64), closed as soon as accepted over the
    /// cap. The address is the TCP peer: behind a load balancer or CDN that connects from a few addresses,
    /// raise it to `max_connections` or set 0 (no per-address cap).
    pub max_connections_per_ip: usize,
    /// A listener of its own for beacons (`GET /t/…`, `POST /v1/events`, and the health checks), served by
    /// threads of their own at a lower CPU priority ([`ServerConfig::beacon_nice`]): a retry storm of
    /// beacons then waits behind playlists in the kernel's scheduler instead of queueing ahead of them in one
    /// runtime. The tracking URLs this server hands out point at it ([`ServerConfig::beacon_base_url`]).
    /// Unset: beacons are served on `listen` with everything else.
    pub beacon_listen: Option<SocketAddr>,
    /// Base URL players use to reach the beacon listener. Defaults to `http://{beacon_listen}`.
    pub beacon_public_base_url: Option<String>,
    /// Worker threads of the beacon listener.
    pub beacon_threads: usize,
    /// Niceness of the beacon listener's threads (Linux `setpriority`, 0–19): the higher, the more they yield
    /// the CPU to the playlist threads (at 10 a busy beacon thread gets about a tenth of a core contended by a
    /// playlist thread).
    pub beacon_nice: i32,
    /// CPUs of the beacon listener's threads and the store's writer (a list as `taskset -c` takes it, e.g.
    /// `3` or `2-3`), with `beacon_listen`: every other thread of the process keeps off them, so a storm's
    /// system calls and kernel network work land there too and not on the playlists' CPUs. Unset: any CPU.
    #[serde(deserialize_with = "crate::ops::cpus::list_text")]
    pub beacon_cpus: Option<String>,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

fn default_shutdown_grace_secs() -> u64 {
    10
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
            public_base_url: None,
            shutdown_grace_secs: default_shutdown_grace_secs(),
            max_in_flight: 10_000,
            max_in_flight_beacons: 2_048,
            shed_queue_delay_ms: 5,
            insecure_dev: false,
            header_read_timeout_secs: 10,
            idle_timeout_secs: 60,
            max_connections: 20_000,
            max_connections_per_ip: 512,
            beacon_listen: None,
            beacon_public_base_url: None,
            beacon_threads: 1,
            beacon_nice: 10,
            beacon_cpus: None,
        }
    }
}

impl ServerConfig {
    /// The CPUs of [`ServerConfig::beacon_cpus`] when the beacon listener is on (`None` otherwise).
    pub fn beacon_cpus_list(&self) -> Result<Option<crate::ops::cpus::CpuList>> {
        match (&self.beacon_listen, &self.beacon_cpus) {
            (Some(_), Some(list)) => {
                crate::ops::cpus::CpuList::parse("server.beacon_cpus", list).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// The base URL for links this server hands out, without a trailing slash.
    pub fn base_url(&self) -> String {
        match &self.public_base_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.listen),
        }
    }

    /// The base URL of tracking URLs (pixels) this server hands out, without a trailing slash: the beacon
    /// listener's when there is one, else [`ServerConfig::base_url`].
    pub fn beacon_base_url(&self) -> String {
        match (&self.beacon_public_base_url, self.beacon_listen) {
            (Some(url), _) => url.trim_end_matches('/').to_owned(),
            (None, Some(addr)) => format!("http://{addr}"),
            (None, None) => self.base_url(),
        }
    }
}

/// Logging output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `human` (default) or `json` (one JSON object per line, for log shippers).
    pub format: LogFormat,
    /// A `tracing` filter directive such as `info` or `interlude_server=debug,info`; `RUST_LOG` wins when set.
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Human,
            filter: "info".to_owned(),
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Readable text for a terminal.
    #[default]
    Human,
    /// One JSON object per event.
    Json,
}

impl InterludeConfig {
    /// Loads the configuration: defaults, then `file` if given, then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self> {
        let mut figment = Figment::from(Serialized::defaults(InterludeConfig::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(Error::ConfigValue {
                    key: "--config".to_owned(),
                    reason: format!("names {}, which does not exist", path.display()),
                });
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        let env = Env::prefixed("INTERLUDE_")
            .filter(|key| key.as_str().contains("__"))
            .split("__");
        let config: InterludeConfig = figment.merge(env).extract()?;
        config.validate()?;
        Ok(config)
    }

    /// Parses a TOML document (no environment), as used by tests of the example file.
    pub fn from_toml_str(text: &str) -> Result<Self> {
        let config: InterludeConfig =
            Figment::from(Serialized::defaults(InterludeConfig::default()))
                .merge(Toml::string(text))
                .extract()?;
        config.validate()?;
        Ok(config)
    }

    /// Checks the values that types alone cannot.
    pub fn validate(&self) -> Result<()> {
        if let Some(url) = &self.server.public_base_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(Error::ConfigValue {
                    key: "server.public_base_url".to_owned(),
                    reason: format!("must start with http:// or https://, got {url:?}"),
                });
            }
        }
        self.events.validate()?;
        self.stitcher.validate()?;
        self.edge.validate()?;
        self.condition.validate()?;
        if let Some(token) = &self.decision.admin_token {
            crate::edge::check_token("decision.admin_token", token)?;
        }
        if self.server.max_connections == 0 {
            return Err(Error::ConfigValue {
                key: "server.max_connections".to_owned(),
                reason: "must be > 0".to_owned(),
            });
        }
        if let Some(list) = &self.server.beacon_cpus {
            crate::ops::cpus::CpuList::parse("server.beacon_cpus", list)?;
        }
        if self.server.shutdown_grace_secs > 3600 {
            return Err(Error::ConfigValue {
                key: "server.shutdown_grace_secs".to_owned(),
                reason: "must be at most 3600".to_owned(),
            });
        }
        Ok(())
    }
}

impl InterludeConfig {
    /// Refuses to run a server on public secrets: token signing keys and the pseudonym secret are required
    /// unless [`ServerConfig::insecure_dev`]. Errors name what is missing and how to provide it.
    pub fn require_secrets(&self) -> Result<()> {
        if self.server.insecure_dev {
            return Ok(());
        }
        if self.events.signing_keys.is_empty() {
            return Err(Error::ConfigValue {
                key: "events.signing_keys".to_owned(),
                reason: "is required: tracking URLs signed with the public development key are forgeable \
                         (configure at least one key of 32+ random characters, or pass --insecure-dev for \
                         local development)"
                    .to_owned(),
            });
        }
        if std::env::var_os(crate::privacy::edge::SECRET_VARIABLE).is_none() {
            return Err(Error::ConfigValue {
                key: crate::privacy::edge::SECRET_VARIABLE.to_owned(),
                reason: "is required: device-id pseudonyms derived from the public development secret can \
                         be reversed by anyone (set it to 16+ random bytes, or pass --insecure-dev for local \
                         development)"
                    .to_owned(),
            });
        }
        Ok(())
    }

    /// A copy with every secret replaced by `<redacted>`, for `interlude config`.
    pub fn redacted(&self) -> InterludeConfig {
        let mut copy = self.clone();
        for key in &mut copy.events.signing_keys {
            key.secret = crate::edge::REDACTED.to_owned();
        }
        if copy.decision.admin_token.is_some() {
            copy.decision.admin_token = Some(crate::edge::REDACTED.to_owned());
        }
        copy.edge = copy.edge.redacted();
        copy.distributed.postgres_url = redact_url_password(&copy.distributed.postgres_url);
        copy.distributed.redis_url = redact_url_password(&copy.distributed.redis_url);
        if let Some(url) = &copy.decision.controls_redis {
            copy.decision.controls_redis = Some(redact_url_password(url));
        }
        copy
    }
}

/// `url` with the password of its userinfo (`postgres://user:pw@host/db`) replaced.
fn redact_url_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some(crate::edge::REDACTED));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closure signature, not ours.
mod tests {
    use super::*;

    #[test]
    fn example_config_file_parses_and_equals_defaults_where_unset() {
        let text = include_str!("../../../config/interlude.example.toml");
        let config = InterludeConfig::from_toml_str(text).unwrap();
        // The example documents the defaults: a value drifting from them is a documentation bug. (Its
        // `[origin]` section is the binary's, checked against the simulator's defaults there.)
        assert_eq!(
            InterludeConfig {
                origin: toml::Table::new(),
                ..config
            },
            InterludeConfig::default()
        );
    }

    #[test]
    fn tracking_urls_name_the_beacon_listener_when_there_is_one() {
        let mut server = ServerConfig::default();
        assert_eq!(server.beacon_base_url(), "http://127.0.0.1:8080");
        server.beacon_listen = Some(SocketAddr::from(([127, 0, 0, 1], 8081)));
        assert_eq!(server.beacon_base_url(), "http://127.0.0.1:8081");
        server.beacon_public_base_url = Some("https://beacons.example.com/".into());
        assert_eq!(server.beacon_base_url(), "https://beacons.example.com");
    }

    #[test]
    fn no_file_gives_defaults() {
        figment::Jail::expect_with(|_| {
            let config = InterludeConfig::load(None).unwrap();
            assert_eq!(config, InterludeConfig::default());
            Ok(())
        });
    }

    #[test]
    fn environment_overrides_file() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("c.toml", "[server]\nlisten = \"127.0.0.1:9000\"\n")?;
            jail.set_env("INTERLUDE_SERVER__LISTEN", "127.0.0.1:9100");
            jail.set_env("INTERLUDE_CONFIG", "ignored-by-config");
            let config = InterludeConfig::load(Some(Path::new("c.toml"))).unwrap();
            assert_eq!(config.server.listen.port(), 9100);
            Ok(())
        });
    }

    #[test]
    fn beacon_cpus_read_as_a_number_or_a_list_and_a_bad_list_is_named() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("INTERLUDE_SERVER__BEACON_LISTEN", "127.0.0.1:8081");
            jail.set_env("INTERLUDE_SERVER__BEACON_CPUS", "3");
            let config = InterludeConfig::load(None).unwrap();
            let cpus = config.server.beacon_cpus_list().unwrap();
            assert_eq!(cpus.as_ref().map(|c| c.cpus().to_vec()), Some(vec![3]));
            jail.set_env("INTERLUDE_SERVER__BEACON_CPUS", "2-3");
            let config = InterludeConfig::load(None).unwrap();
            assert_eq!(config.server.beacon_cpus.as_deref(), Some("2-3"));
            Ok(())
        });
        let err = InterludeConfig::from_toml_str("[server]\nbeacon_cpus = \"3-1\"\n").unwrap_err();
        assert!(err.to_string().contains("server.beacon_cpus"), "{err}");
    }

    #[test]
    fn unknown_key_is_rejected_with_its_name() {
        let err = InterludeConfig::from_toml_str("[server]\nlisten_on = \"x\"\n").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("listen_on"), "{text}");
    }

    #[test]
    fn wrongly_typed_value_names_the_key() {
        let err =
            InterludeConfig::from_toml_str("[server]\nlisten = \"not an address\"\n").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("server.listen"), "{text}");
    }

    #[test]
    fn bad_public_url_is_rejected_with_reason() {
        let err = InterludeConfig::from_toml_str("[server]\npublic_base_url = \"ftp://x\"\n")
            .unwrap_err();
        assert!(err.to_string().contains("server.public_base_url"), "{err}");
    }

    #[test]
    fn missing_config_file_is_an_error() {
        let err =
            InterludeConfig::load(Some(Path::new("/nonexistent/interlude.toml"))).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
    }
}
