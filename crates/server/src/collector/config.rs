//! The `[events]` section: where the embedded store lives, the token signing keys, the validation policy.

use std::path::PathBuf;

use interlude_events::Policy;
use interlude_events::token::Keyring;
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
    /// CPM per line item (currency units per thousand impressions) for spend in reports and the ledger, until
    /// the decision engine's catalog provides prices.
    pub line_item_cpm: std::collections::BTreeMap<String, f64>,
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
            line_item_cpm: std::collections::BTreeMap::new(),
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
