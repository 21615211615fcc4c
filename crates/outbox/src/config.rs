//! `[outbox]`: where the queue lives, how hard third parties are hit, how long failures are retried.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// What to put where a known VAST macro has no value when the server fires (it is the last hop: nobody fills
/// a macro after it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnfilledMacros {
    /// `-1`: "value is unknown, but would be shared if it was known" (VAST 4.3 §6.1).
    #[default]
    Unknown,
    /// Leave `[NAME]` in the URL as it is.
    Keep,
}

/// Limits for one host, overriding the defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostLimits {
    /// Requests in flight to this host at once.
    #[serde(default)]
    pub concurrency: Option<usize>,
    /// Sustained requests per second to this host.
    #[serde(default)]
    pub rate_per_sec: Option<f64>,
    /// Requests this host may get at once after a quiet spell (token bucket size).
    #[serde(default)]
    pub burst: Option<u32>,
}

/// The outbox's configuration (`[outbox]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxConfig {
    /// The redb file of the embedded queue (created if absent). Unused with the PostgreSQL store.
    #[serde(default = "default_path")]
    pub path: PathBuf,
    /// Sends in flight at once over all hosts (including those waiting for their host's turn).
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// Sends in flight at once to one host (`host:port`), unless `hosts` says otherwise.
    #[serde(default = "default_per_host_concurrency")]
    pub per_host_concurrency: usize,
    /// Sustained sends per second to one host (token bucket refill), unless `hosts` says otherwise.
    #[serde(default = "default_per_host_rate_per_sec")]
    pub per_host_rate_per_sec: f64,
    /// Sends one host may get at once after a quiet spell (token bucket size), unless `hosts` says otherwise.
    #[serde(default = "default_per_host_burst")]
    pub per_host_burst: u32,
    /// Sends that may wait for one host's turn; more are put back in the queue for `defer_ms`, so that one slow
    /// host cannot take every in-flight slot.
    #[serde(default = "default_max_waiting_per_host")]
    pub max_waiting_per_host: usize,
    /// How long a pixel put back because its host was saturated waits, in milliseconds.
    #[serde(default = "default_defer_ms")]
    pub defer_ms: u64,
    /// Limits per host (`"ads.example.com"` or `"ads.example.com:8443"`), overriding the defaults above.
    #[serde(default)]
    pub hosts: BTreeMap<String, HostLimits>,
    /// Longest wait for one send, connection to last body byte, in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Sends of one pixel before it goes to the dead letters.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// First retry delay bound, in milliseconds; the n-th retry waits a random time in
    /// `[0, min(backoff_max_ms, backoff_base_ms · 2^(n-1))]` (exponential backoff with full jitter).
    #[serde(default = "default_backoff_base_ms")]
    pub backoff_base_ms: u64,
    /// Upper bound of a retry delay, in milliseconds.
    #[serde(default = "default_backoff_max_ms")]
    pub backoff_max_ms: u64,
    /// How long a taken pixel is hidden from other takers, in milliseconds: after a crash it is sent again once
    /// this has passed. Must exceed `timeout_ms` plus the wait for a host's turn.
    #[serde(default = "default_lease_ms")]
    pub lease_ms: u64,
    /// Pixels taken from the queue per round.
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// Longest sleep between looks at the queue when nothing wakes the dispatcher, in milliseconds.
    #[serde(default = "default_poll_ms")]
    pub poll_ms: u64,
    /// How long an enqueued pixel's key is remembered for deduplication, in seconds (covers player beacon
    /// retries and replays of event batches).
    #[serde(default = "default_dedup_retention_secs")]
    pub dedup_retention_secs: u64,
    /// How long dead letters are kept, in seconds.
    #[serde(default = "default_dead_letter_retention_secs")]
    pub dead_letter_retention_secs: u64,
    /// On shutdown, longest wait for sends in flight, in milliseconds; what is still in flight then is sent
    /// again after the restart.
    #[serde(default = "default_drain_timeout_ms")]
    pub drain_timeout_ms: u64,
    /// VAST macros with no value when firing.
    #[serde(default)]
    pub unfilled_macros: UnfilledMacros,
    /// `[SERVERUA]`: who the server is (`{service}/{version} ({URL to vendor info})`).
    #[serde(default = "default_server_ua")]
    pub server_ua: String,
    /// The VAST client in `[CLIENTUA]` (`{player} {client}/{version}`; the player part is the viewer's,
    /// `unknown` without consent).
    #[serde(default = "default_vast_client")]
    pub vast_client: String,
    /// Also send the viewer's address in `X-Forwarded-For` (deprecated by VAST 4.1 §1.1.3 in favour of
    /// `X-Device-IP`, still read by older ad servers). Only with consent, like `X-Device-IP`.
    #[serde(default = "default_true")]
    pub x_forwarded_for: bool,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig {
            path: default_path(),
            max_in_flight: default_max_in_flight(),
            per_host_concurrency: default_per_host_concurrency(),
            per_host_rate_per_sec: default_per_host_rate_per_sec(),
            per_host_burst: default_per_host_burst(),
            max_waiting_per_host: default_max_waiting_per_host(),
            defer_ms: default_defer_ms(),
            hosts: BTreeMap::new(),
            timeout_ms: default_timeout_ms(),
            max_attempts: default_max_attempts(),
            backoff_base_ms: default_backoff_base_ms(),
            backoff_max_ms: default_backoff_max_ms(),
            lease_ms: default_lease_ms(),
            batch: default_batch(),
            poll_ms: default_poll_ms(),
            dedup_retention_secs: default_dedup_retention_secs(),
            dead_letter_retention_secs: default_dead_letter_retention_secs(),
            drain_timeout_ms: default_drain_timeout_ms(),
            unfilled_macros: UnfilledMacros::default(),
            server_ua: default_server_ua(),
            vast_client: default_vast_client(),
            x_forwarded_for: default_true(),
        }
    }
}

/// The effective limits of one host.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Limits {
    pub(crate) concurrency: usize,
    pub(crate) rate_per_sec: f64,
    pub(crate) burst: u32,
}

impl OutboxConfig {
    /// Checks the values; the error names the key.
    pub fn validate(&self) -> Result<()> {
        let positive = |key: &str, value: u64| {
            if value == 0 {
                Err(config_error(key, "must be greater than 0"))
            } else {
                Ok(())
            }
        };
        positive("max_in_flight", self.max_in_flight as u64)?;
        positive("per_host_concurrency", self.per_host_concurrency as u64)?;
        positive("per_host_burst", u64::from(self.per_host_burst))?;
        positive("timeout_ms", self.timeout_ms)?;
        positive("max_attempts", u64::from(self.max_attempts))?;
        positive("backoff_base_ms", self.backoff_base_ms)?;
        positive("lease_ms", self.lease_ms)?;
        positive("batch", self.batch as u64)?;
        positive("poll_ms", self.poll_ms)?;
        rate("per_host_rate_per_sec", self.per_host_rate_per_sec)?;
        if self.backoff_max_ms < self.backoff_base_ms {
            return Err(config_error(
                "backoff_max_ms",
                "must be at least backoff_base_ms",
            ));
        }
        if self.lease_ms <= self.timeout_ms {
            return Err(config_error(
                "lease_ms",
                "must exceed timeout_ms, or a pixel still being sent is taken again",
            ));
        }
        for (host, limits) in &self.hosts {
            if limits.concurrency == Some(0) {
                return Err(config_error(
                    &format!("hosts.\"{host}\".concurrency"),
                    "must be greater than 0",
                ));
            }
            if limits.burst == Some(0) {
                return Err(config_error(
                    &format!("hosts.\"{host}\".burst"),
                    "must be greater than 0",
                ));
            }
            if let Some(r) = limits.rate_per_sec {
                rate(&format!("hosts.\"{host}\".rate_per_sec"), r)?;
            }
        }
        Ok(())
    }

    /// The limits of `host` (`name` or `name:port`, as `hosts` keys are written).
    pub(crate) fn limits(&self, host: &str, host_port: &str) -> Limits {
        let over = self.hosts.get(host_port).or_else(|| self.hosts.get(host));
        Limits {
            concurrency: over
                .and_then(|o| o.concurrency)
                .unwrap_or(self.per_host_concurrency),
            rate_per_sec: over
                .and_then(|o| o.rate_per_sec)
                .unwrap_or(self.per_host_rate_per_sec),
            burst: over.and_then(|o| o.burst).unwrap_or(self.per_host_burst),
        }
    }

    /// `timeout_ms` as a duration.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// `lease_ms` as a duration.
    pub fn lease(&self) -> Duration {
        Duration::from_millis(self.lease_ms)
    }
}

fn rate(key: &str, value: f64) -> Result<()> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(config_error(key, "must be a positive number"))
    }
}

fn config_error(key: &str, reason: &str) -> Error {
    Error::Config {
        key: key.to_owned(),
        reason: reason.to_owned(),
    }
}

fn default_path() -> PathBuf {
    PathBuf::from("data/outbox.redb")
}

fn default_max_in_flight() -> usize {
    256
}

fn default_per_host_concurrency() -> usize {
    16
}

fn default_per_host_rate_per_sec() -> f64 {
    200.0
}

fn default_per_host_burst() -> u32 {
    50
}

fn default_max_waiting_per_host() -> usize {
    64
}

fn default_defer_ms() -> u64 {
    1_000
}

fn default_timeout_ms() -> u64 {
    5_000
}

fn default_max_attempts() -> u32 {
    8
}

fn default_backoff_base_ms() -> u64 {
    1_000
}

fn default_backoff_max_ms() -> u64 {
    300_000
}

fn default_lease_ms() -> u64 {
    60_000
}

fn default_batch() -> usize {
    256
}

fn default_poll_ms() -> u64 {
    500
}

fn default_dedup_retention_secs() -> u64 {
    48 * 3600
}

fn default_dead_letter_retention_secs() -> u64 {
    7 * 24 * 3600
}

fn default_drain_timeout_ms() -> u64 {
    10_000
}

fn default_server_ua() -> String {
    concat!("Interlude/", env!("CARGO_PKG_VERSION")).to_owned()
}

fn default_vast_client() -> String {
    concat!("Interlude/", env!("CARGO_PKG_VERSION")).to_owned()
}

fn default_true() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_table_gives_the_defaults() {
        let config: OutboxConfig = toml::from_str("").expect("empty");
        assert_eq!(config, OutboxConfig::default());
        config.validate().expect("defaults are valid");
    }

    #[test]
    fn full_table_parses_and_host_overrides_apply() {
        let config: OutboxConfig = toml::from_str(
            r#"
            path = "/var/lib/interlude/outbox.redb"
            max_in_flight = 64
            per_host_concurrency = 4
            per_host_rate_per_sec = 10.5
            per_host_burst = 5
            max_waiting_per_host = 8
            defer_ms = 200
            timeout_ms = 2000
            max_attempts = 5
            backoff_base_ms = 100
            backoff_max_ms = 1000
            lease_ms = 30000
            batch = 32
            poll_ms = 100
            dedup_retention_secs = 3600
            dead_letter_retention_secs = 60
            drain_timeout_ms = 500
            unfilled_macros = "keep"
            server_ua = "Interlude/1 (+https://example.invalid)"
            vast_client = "Interlude/1"
            x_forwarded_for = false
            [hosts."ads.example.com"]
            concurrency = 2
            [hosts."ads.example.com:8443"]
            rate_per_sec = 1.0
            "#,
        )
        .expect("config");
        config.validate().expect("valid");
        assert_eq!(config.unfilled_macros, UnfilledMacros::Keep);
        let l = config.limits("ads.example.com", "ads.example.com:443");
        assert_eq!((l.concurrency, l.burst), (2, 5));
        let l = config.limits("ads.example.com", "ads.example.com:8443");
        assert_eq!((l.concurrency, l.rate_per_sec), (4, 1.0));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let err = toml::from_str::<OutboxConfig>("max_inflight = 3").expect_err("unknown");
        assert!(err.to_string().contains("max_inflight"), "{err}");
        let bad = OutboxConfig {
            lease_ms: 1000,
            timeout_ms: 5000,
            ..OutboxConfig::default()
        };
        let err = bad.validate().expect_err("lease below timeout");
        assert!(err.to_string().contains("outbox.lease_ms"), "{err}");
        let mut bad = OutboxConfig::default();
        bad.hosts.insert(
            "x".into(),
            HostLimits {
                concurrency: None,
                rate_per_sec: Some(f64::NAN),
                burst: None,
            },
        );
        let err = bad.validate().expect_err("NaN rate");
        assert!(
            err.to_string().contains("hosts.\"x\".rate_per_sec"),
            "{err}"
        );
    }
}
