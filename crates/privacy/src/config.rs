//! The crate's configuration (`[privacy]` in the deployment's TOML file). The pseudonym secret is not here:
//! it is key material, passed to [`Privacy::new`](crate::Privacy::new) from the environment or a secret store.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::consent::ConsentConfig;
use crate::error::{Error, Result};
use crate::pseudonym::PseudonymEncoding;

/// Everything the privacy core is configured with.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacyConfig {
    /// Consent rules.
    #[serde(default)]
    pub consent: ConsentConfig,
    /// Device-id pseudonyms.
    #[serde(default)]
    pub pseudonym: PseudonymConfig,
}

/// How device ids become pseudonyms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PseudonymConfig {
    /// Salt rotation period in seconds (default 86,400 = 24 h). Pseudonyms change at every rotation, so
    /// frequency caps keyed by them restart: keep it no shorter than the longest cap window.
    #[serde(default = "default_rotation_secs")]
    pub rotation_secs: u64,
    /// Bytes of the HMAC kept (8–32, default 16 = 128 bits).
    #[serde(default = "default_bytes")]
    pub bytes: usize,
    /// `base64url` (default, 22 characters for 16 bytes) or `hex` (32 characters).
    #[serde(default)]
    pub encoding: PseudonymEncoding,
}

fn default_rotation_secs() -> u64 {
    86_400
}

fn default_bytes() -> usize {
    16
}

impl Default for PseudonymConfig {
    fn default() -> Self {
        PseudonymConfig {
            rotation_secs: default_rotation_secs(),
            bytes: default_bytes(),
            encoding: PseudonymEncoding::default(),
        }
    }
}

impl PseudonymConfig {
    /// The rotation period.
    pub fn rotation(&self) -> Duration {
        Duration::from_secs(self.rotation_secs)
    }
}

impl PrivacyConfig {
    /// Check every value (the salt schedule checks its own when built).
    pub fn validate(&self) -> Result<()> {
        self.consent.validate()?;
        if self.pseudonym.rotation_secs == 0 {
            return Err(Error::Config {
                key: "pseudonym.rotation_secs",
                reason: "must be at least 1".to_string(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_example_parses_and_defaults_fill_in() {
        let text = r#"
            [consent]
            vendor_id = 755
            default_personalisation = false
            honour_dnt = false

            [pseudonym]
            rotation_secs = 43200
            encoding = "hex"
        "#;
        let c: PrivacyConfig = toml::from_str(text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.consent.vendor_id, Some(755));
        assert!(c.consent.default_store_viewer_id);
        assert!(!c.consent.default_personalisation);
        assert!(c.consent.gdpr_countries.iter().any(|c| c == "DE"));
        assert_eq!(c.pseudonym.rotation(), Duration::from_secs(43_200));
        assert_eq!(c.pseudonym.bytes, 16);
        assert_eq!(c.pseudonym.encoding, PseudonymEncoding::Hex);
        assert_eq!(c.validate(), Ok(()));
        let empty: PrivacyConfig = toml::from_str("").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(empty, PrivacyConfig::default());
    }

    #[test]
    fn unknown_keys_and_inconsistent_defaults_are_refused() {
        assert!(toml::from_str::<PrivacyConfig>("[consent]\nvendorid = 1\n").is_err());
        let c: PrivacyConfig = toml::from_str(
            "[consent]\ndefault_store_viewer_id = false\ndefault_personalisation = true\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            c.validate(),
            Err(Error::Config {
                key: "consent.default_personalisation",
                ..
            })
        ));
        let c: PrivacyConfig = toml::from_str("[consent]\ngdpr_countries = [\"Germany\"]\n")
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(c.validate().is_err());
    }
}
