//! The `[events]` section: where the embedded store lives and how it is tuned (`[events.store]`, how often it
//! measures itself, how long server-side beacons wait for it), the token signing keys, the validation policy.
//! Retention of raw events is `[privacy.retention]`: it is a privacy rule, not a store setting.

use std::path::PathBuf;

use interlude_events::Policy;
use interlude_events::token::Keyring;
use interlude_store::EmbeddedConfig;
use serde::{Deserialize, Serialize};

/// The `[events]` configuration section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventsConfig {
    /// Directory of the embedded store (created if missing).
    pub data_dir: PathBuf,
    /// Token signing keys; the last one signs, all verify. Empty: a fixed development key (logged as a warning).
    pub signing_keys: Vec<SigningKey>,
    /// Validation rules.
    pub policy: Policy,
    /// Requests waiting for a commit at most; beyond, the collector answers 503 with Retry-After.
    pub queue_batches: usize,
    /// The embedded store's own settings (`[events.store]`: redb's page cache).
    pub store: EmbeddedConfig,
    /// Seconds between the embedded store's measurements of its file, its disk and its tables (the
    /// `events_store_*` gauges an operator alerts on).
    pub observe_secs: u64,
    /// Seconds a batch of the stitcher's server-side beacons waits for a busy or unhealthy store before it is
    /// dropped (and counted in `stitcher_beacons_lost_total`). Long enough to ride out a reopen after a full
    /// disk is cleared; meanwhile newer beacons wait in a bounded buffer.
    pub beacon_wait_secs: u64,
    /// CPM per line item (currency units per thousand impressions) for spend in reports and the ledger, until
    /// the decision engine's catalog provides prices.
    pub line_item_cpm: std::collections::BTreeMap<String, f64>,
    /// Niceness of the embedded store's writer thread (Linux `setpriority`, 0–19). Unset: `server.beacon_nice`
    /// when the beacon listener is on (a storm's durable writes then yield to playlists as its requests do),
    /// else 0. Nothing on a playlist's path waits for the writer: server-side beacons are queued after the
    /// answer.
    pub committer_nice: Option<i32>,
    /// CPUs of the embedded store's writer thread (a `taskset -c` list). Unset: `server.beacon_cpus` when
    /// the beacon listener is on, else any CPU.
    #[serde(deserialize_with = "crate::ops::cpus::list_text")]
    pub committer_cpus: Option<String>,
}

/// One token signing key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningKey {
    /// Key id (0–255), carried in every token.
    pub id: u8,
    /// The secret (at least 32 characters).
    pub secret: String,
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig {
            data_dir: PathBuf::from("data/events"),
            signing_keys: Vec::new(),
            policy: Policy::default(),
            queue_batches: interlude_store::committer::DEFAULT_QUEUE,
            store: EmbeddedConfig::default(),
            observe_secs: 15,
            beacon_wait_secs: 60,
            line_item_cpm: std::collections::BTreeMap::new(),
            committer_nice: None,
            committer_cpus: None,
        }
    }
}

impl EventsConfig {
    /// The keyring the configuration describes.
    pub fn keyring(&self) -> Keyring {
        let mut keys = self.signing_keys.iter();
        let Some(first) = keys.next() else {
            tracing::warn!(
                "No events.signing_keys configured: using the public development key; tokens are forgeable."
            );
            return Keyring::new(0, b"interlude-development-key-do-not-use".to_vec());
        };
        let mut ring = Keyring::new(first.id, first.secret.as_bytes().to_vec());
        for key in keys {
            ring.rotate(key.id, key.secret.as_bytes().to_vec());
        }
        ring
    }

    /// Checks what types cannot; errors name the key.
    pub fn validate(&self) -> Result<(), crate::error::ConfigError> {
        use crate::error::ConfigError;
        if self.queue_batches == 0 {
            return Err(ConfigError::new(
                "events.queue_batches",
                "must be at least 1",
            ));
        }
        if let Some(nice) = self.committer_nice
            && !(0..=19).contains(&nice)
        {
            return Err(ConfigError::new(
                "events.committer_nice",
                format!("must be between 0 and 19, got {nice}"),
            ));
        }
        if let Some(list) = &self.committer_cpus {
            crate::ops::cpus::CpuList::parse("events.committer_cpus", list)
                .map_err(|e| ConfigError::new("events.committer_cpus", e.to_string()))?;
        }
        for (key, mb) in [
            ("events.store.cache_mb", self.store.cache_mb),
            ("events.store.dedup_cache_mb", self.store.dedup_cache_mb),
        ] {
            // Below 1 MiB the caches thrash; beyond 64 GiB it is a typo (the value is MiB, not bytes).
            if !(1..=65_536).contains(&mb) {
                return Err(ConfigError::new(
                    key,
                    format!("must be between 1 and 65536 (MiB), got {mb}"),
                ));
            }
        }
        if !(1..=3600).contains(&self.observe_secs) {
            return Err(ConfigError::new(
                "events.observe_secs",
                "must be between 1 and 3600",
            ));
        }
        if !(1..=3600).contains(&self.beacon_wait_secs) {
            return Err(ConfigError::new(
                "events.beacon_wait_secs",
                "must be between 1 and 3600",
            ));
        }
        for (li, cpm) in &self.line_item_cpm {
            if !(cpm.is_finite() && *cpm >= 0.0) {
                return Err(crate::error::ConfigError::new(
                    format!("events.line_item_cpm.{li}"),
                    "must be a non-negative number",
                ));
            }
        }
        for (i, key) in self.signing_keys.iter().enumerate() {
            if key.secret.len() < 32 {
                return Err(crate::error::ConfigError::new(
                    format!("events.signing_keys[{i}].secret"),
                    "must be at least 32 characters",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::InterludeConfig;

    fn rejected(toml: &str) -> String {
        InterludeConfig::from_toml_str(toml)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn store_tuning_parses_and_bad_values_name_their_key() {
        let config = InterludeConfig::from_toml_str(
            "[events]\nobserve_secs = 30\nbeacon_wait_secs = 5\n[events.store]\ncache_mb = 256\n",
        )
        .unwrap();
        assert_eq!(config.events.store.cache_mb, 256);
        assert_eq!(
            (config.events.observe_secs, config.events.beacon_wait_secs),
            (30, 5)
        );
        for (toml, key) in [
            ("[events.store]\ncache_mb = 0\n", "events.store.cache_mb"),
            (
                "[events.store]\ncache_mb = 70000\n",
                "events.store.cache_mb",
            ),
            (
                "[events.store]\ndedup_cache_mb = 0\n",
                "events.store.dedup_cache_mb",
            ),
            ("[events]\nobserve_secs = 0\n", "events.observe_secs"),
            (
                "[events]\nbeacon_wait_secs = 0\n",
                "events.beacon_wait_secs",
            ),
            ("[events]\nqueue_batches = 0\n", "events.queue_batches"),
            ("[events.store]\ncache_size = 1\n", "cache_size"),
        ] {
            let error = rejected(toml);
            assert!(error.contains(key), "{toml}: {error}");
        }
    }
}
