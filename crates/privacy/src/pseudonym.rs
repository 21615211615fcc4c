//! Device-id pseudonymisation with a rotating salt. A device id (IFA, a player-generated id) never leaves the
//! edge; what does is `HMAC-SHA256(salt_e, id)` (RFC 2104, FIPS 180-4), truncated (NIST SP 800-107 §5.3.4)
//! and encoded, where `salt_e = HMAC-SHA256(secret, "interlude-privacy/salt/v1" ‖ e)` for the epoch number
//! `e = ⌊unix time / rotation period⌋`.
//!
//! Why derive rather than store salts: every node holding the secret computes the same salt for the same
//! epoch without coordination, and no salt needs to be kept once its epoch is over — forgetting is the
//! default. Why rotate: a pseudonym is linkable only within one epoch, which bounds how long any profile
//! keyed by it can grow.
//!
//! **Consequence: after each rotation the same device maps to a different pseudonym.** Everything keyed by the
//! pseudonym starts again at the epoch boundary — in particular frequency caps (a viewer capped at 3
//! impressions a day can see 3 more right after the rotation if the period is shorter than the cap window),
//! and audience segments. Choose the period no shorter than the longest frequency-cap window you sell (24 h by
//! default), and align cap windows to epoch boundaries where possible.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::error::{Error, Result};

type HmacSha256 = Hmac<Sha256>;

const SALT_LABEL: &[u8] = b"interlude-privacy/salt/v1";
/// Shortest secret accepted (bytes): 128 bits.
pub const MIN_SECRET_BYTES: usize = 16;

/// How a pseudonym is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PseudonymEncoding {
    /// Lower-case hexadecimal (2 characters per byte).
    Hex,
    /// base64url without padding (RFC 4648 §5; 4 characters per 3 bytes).
    #[default]
    Base64url,
}

/// A pseudonymous viewer id: the only form of a device id that leaves the edge.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Pseudonym(String);

impl Pseudonym {
    /// The encoded pseudonym.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Pseudonym {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<Pseudonym> for String {
    fn from(p: Pseudonym) -> String {
        p.0
    }
}

/// Derives each epoch's salt from one secret.
#[derive(Clone)]
pub struct SaltSchedule {
    key: HmacSha256,
    period_secs: u64,
    bytes: usize,
    encoding: PseudonymEncoding,
}

impl fmt::Debug for SaltSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        f.debug_struct("SaltSchedule")
            .field("period_secs", &self.period_secs)
            .field("bytes", &self.bytes)
            .field("encoding", &self.encoding)
            .finish_non_exhaustive()
    }
}

/// One epoch's salt, keyed and ready: hold it for the epoch to save the salt derivation per call.
#[derive(Clone)]
pub struct EpochSalt {
    epoch: u64,
    key: HmacSha256,
    bytes: usize,
    encoding: PseudonymEncoding,
}

impl fmt::Debug for EpochSalt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EpochSalt")
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

fn unix_secs(at: SystemTime) -> u64 {
    // Before 1970 only with a broken clock: such times fall into epoch 0 rather than failing.
    at.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl SaltSchedule {
    /// A schedule from `secret` (at least [`MIN_SECRET_BYTES`]) rotating every `rotation`
    /// (whole seconds, at least one), writing pseudonyms of `bytes` bytes (8–32) in `encoding`.
    pub fn new(
        secret: &[u8],
        rotation: Duration,
        bytes: usize,
        encoding: PseudonymEncoding,
    ) -> Result<SaltSchedule> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(Error::Config {
                key: "pseudonym secret",
                reason: format!("{} bytes, at least {MIN_SECRET_BYTES} needed", secret.len()),
            });
        }
        let period_secs = rotation.as_secs();
        if period_secs == 0 {
            return Err(Error::Config {
                key: "pseudonym.rotation_secs",
                reason: "must be at least 1 second".to_string(),
            });
        }
        if !(8..=32).contains(&bytes) {
            return Err(Error::Config {
                key: "pseudonym.bytes",
                reason: format!("{bytes}: must be 8–32 (64–256 bits)"),
            });
        }
        let key = HmacSha256::new_from_slice(secret).map_err(|e| Error::Config {
            key: "pseudonym secret",
            reason: e.to_string(),
        })?;
        Ok(SaltSchedule {
            key,
            period_secs,
            bytes,
            encoding,
        })
    }

    /// The rotation period.
    pub fn rotation(&self) -> Duration {
        Duration::from_secs(self.period_secs)
    }

    /// The epoch number at `at`.
    pub fn epoch(&self, at: SystemTime) -> u64 {
        unix_secs(at) / self.period_secs
    }

    /// When epoch `epoch` starts and ends (end exclusive): the rotation instants.
    pub fn epoch_bounds(&self, epoch: u64) -> (SystemTime, SystemTime) {
        let start = epoch.saturating_mul(self.period_secs);
        let end = start.saturating_add(self.period_secs);
        (
            UNIX_EPOCH + Duration::from_secs(start),
            UNIX_EPOCH + Duration::from_secs(end),
        )
    }

    /// The salt of epoch `epoch`.
    pub fn salt(&self, epoch: u64) -> EpochSalt {
        let mut mac = self.key.clone();
        mac.update(SALT_LABEL);
        mac.update(&epoch.to_be_bytes());
        let salt = mac.finalize().into_bytes();
        EpochSalt {
            epoch,
            // HMAC accepts keys of any length; 32 bytes never fails.
            key: HmacSha256::new_from_slice(&salt).unwrap_or_else(|_| self.key.clone()),
            bytes: self.bytes,
            encoding: self.encoding,
        }
    }

    /// The salt in force at `at`.
    pub fn salt_at(&self, at: SystemTime) -> EpochSalt {
        self.salt(self.epoch(at))
    }

    /// The pseudonym of `device_id` at `at` ([`None`] for an absent or zeroed id, see
    /// [`EpochSalt::pseudonym`]).
    pub fn pseudonym(&self, device_id: &str, at: SystemTime) -> Option<Pseudonym> {
        self.salt_at(at).pseudonym(device_id)
    }
}

/// Whether a device id carries no identity: empty, or all zeros once dashes are ignored (the zeroed IFA,
/// `00000000-0000-0000-0000-000000000000`, that iOS and Android send when tracking is limited).
pub fn is_null_device_id(device_id: &str) -> bool {
    let trimmed = device_id.trim();
    trimmed.is_empty() || trimmed.bytes().all(|b| b == b'0' || b == b'-')
}

impl EpochSalt {
    /// The epoch this salt belongs to.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The pseudonym of `device_id` in this epoch; [`None`] when the id is absent or zeroed (hashing those
    /// would merge every limited-tracking device into one "viewer").
    pub fn pseudonym(&self, device_id: &str) -> Option<Pseudonym> {
        if is_null_device_id(device_id) {
            return None;
        }
        let mut mac = self.key.clone();
        mac.update(device_id.trim().as_bytes());
        let tag = mac.finalize().into_bytes();
        let kept = tag.get(..self.bytes).unwrap_or(&tag[..]);
        Some(Pseudonym(match self.encoding {
            PseudonymEncoding::Hex => hex::encode(kept),
            PseudonymEncoding::Base64url => URL_SAFE_NO_PAD.encode(kept),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const DAY: Duration = Duration::from_secs(86_400);

    fn schedule(encoding: PseudonymEncoding) -> SaltSchedule {
        SaltSchedule::new(SECRET, DAY, 16, encoding).unwrap_or_else(|e| panic!("{e}"))
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn same_device_same_epoch_same_pseudonym_on_every_node() {
        let node_a = schedule(PseudonymEncoding::Base64url);
        let node_b = schedule(PseudonymEncoding::Base64url);
        let id = "6D92078A-8246-4BA4-AE5B-76104861E7DC";
        let morning = node_a.pseudonym(id, at(1_700_000_000));
        let evening = node_b.pseudonym(id, at(1_700_000_000 + 3_600));
        assert!(morning.is_some());
        assert_eq!(morning, evening);
        assert_eq!(
            morning.map(|p| p.as_str().len()),
            Some(22),
            "16 bytes base64url"
        );
    }

    #[test]
    fn rotation_changes_the_pseudonym() {
        let s = schedule(PseudonymEncoding::Hex);
        let id = "6D92078A-8246-4BA4-AE5B-76104861E7DC";
        let e = s.epoch(at(1_700_000_000));
        let (start, end) = s.epoch_bounds(e);
        let before = s.pseudonym(id, end - Duration::from_secs(1));
        let after = s.pseudonym(id, end);
        assert_eq!(s.pseudonym(id, start), before);
        assert_ne!(before, after, "a new epoch gives a new pseudonym");
        assert_eq!(after.map(|p| p.as_str().len()), Some(32), "16 bytes hex");
    }

    #[test]
    fn different_devices_and_secrets_differ() {
        let s = schedule(PseudonymEncoding::Hex);
        let other = SaltSchedule::new(
            b"another secret of 32 bytes......",
            DAY,
            16,
            PseudonymEncoding::Hex,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let t = at(1_700_000_000);
        assert_ne!(s.pseudonym("device-a", t), s.pseudonym("device-b", t));
        assert_ne!(s.pseudonym("device-a", t), other.pseudonym("device-a", t));
    }

    #[test]
    fn zeroed_ifa_has_no_pseudonym() {
        let s = schedule(PseudonymEncoding::Hex);
        assert_eq!(
            s.pseudonym("00000000-0000-0000-0000-000000000000", at(1)),
            None
        );
        assert_eq!(s.pseudonym("  ", at(1)), None);
    }

    #[test]
    fn bad_configuration_is_refused() {
        assert!(SaltSchedule::new(b"short", DAY, 16, PseudonymEncoding::Hex).is_err());
        assert!(SaltSchedule::new(SECRET, Duration::ZERO, 16, PseudonymEncoding::Hex).is_err());
        assert!(SaltSchedule::new(SECRET, DAY, 4, PseudonymEncoding::Hex).is_err());
        let debug = format!("{:?}", schedule(PseudonymEncoding::Hex));
        assert!(!debug.contains("0123"), "no key material in Debug: {debug}");
    }
}
