//! Signed tracking tokens: what a tracking URL (`GET /t/{token}`) carries so the collector can trust a beacon
//! without a lookup — which ad instance, event, session, creative and line item it reports.
//!
//! Format (version 1), base64url without padding over `payload ‖ tag`:
//!
//! | bytes | field |
//! |---|---|
//! | 1 | version (1) |
//! | 1 | key id (which key of the [`Keyring`] signed it: rotation) |
//! | 1 | event type code ([`EventType::code`]) |
//! | 4 | issued at, seconds since the Unix epoch, big-endian |
//! | 1+n ×5 | ad instance id, session id, creative id, line item id, channel: a length byte and UTF-8 |
//! | optional | for a programmatic ad, its winning bid ([`Demand`]): bidder, seat, deal (empty: none) as above, the clearing CPM in millionths (8 bytes, big-endian), the ISO 4217 currency (3 bytes) |
//! | 16 | tag: HMAC-SHA256 (RFC 2104, FIPS 180-4) over the payload, truncated to 128 bits (NIST SP 800-107 §5.3.4) |
//!
//! Binary rather than JSON keeps a token with our 32-hex-digit ids around 155 URL characters (JSON: ~300). The tag is checked (in constant time) before
//! any field is read, so forged input never reaches the field parser.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::contract::{Demand, EventType};

const VERSION: u8 = 1;
const TAG_LEN: usize = 16;
/// Bytes of MAC in an issued ad instance id: 64 bits, beyond guessing online.
const INSTANCE_TAG_LEN: usize = 8;
/// Version, key id, event code, issued-at, and five empty strings.
const MIN_PAYLOAD: usize = 1 + 1 + 1 + 4 + 5;

/// What a token asserts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenClaims {
    /// The ad instance.
    pub ad_instance_id: String,
    /// The event the URL reports.
    pub event_type: EventType,
    /// The session.
    pub session_id: String,
    /// The creative.
    pub creative_id: String,
    /// The line item, when the ad came from the decision engine.
    pub line_item_id: Option<String>,
    /// The channel.
    pub channel: String,
    /// When the token was issued, seconds since the Unix epoch.
    pub issued_at: u32,
    /// The winning bid, for a programmatic ad (the events it reports carry it: demand reports).
    pub demand: Option<Demand>,
}

/// Why a token was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not base64url.
    #[error("token is not base64url: {0}")]
    Encoding(String),
    /// Too short to hold a payload and a tag.
    #[error("token too short: {len} bytes, at least {min} needed")]
    TooShort {
        /// Decoded length.
        len: usize,
        /// Minimum.
        min: usize,
    },
    /// A version this build does not know.
    #[error("token version {0} is not supported")]
    UnsupportedVersion(u8),
    /// Signed with a key this keyring does not hold (retired, or never ours).
    #[error("token signed with unknown key id {0}")]
    UnknownKey(u8),
    /// The tag does not match: forged or altered.
    #[error("token signature does not match")]
    BadSignature,
    /// Authentic but unreadable (only possible if we signed garbage).
    #[error("token field {field} malformed at byte {offset}")]
    Malformed {
        /// The field.
        field: &'static str,
        /// Byte offset in the payload.
        offset: usize,
    },
    /// A field is too long to encode (over 255 bytes).
    #[error("token field {field} is {len} bytes; at most 255 fit")]
    FieldTooLong {
        /// The field.
        field: &'static str,
        /// Its length.
        len: usize,
    },
}

/// Signing keys by id: the current one signs, every one held verifies. Rotate by adding a new key as current
/// and dropping the old one once tokens signed with it can no longer arrive.
#[derive(Clone)]
pub struct Keyring {
    /// Each key as an HMAC already keyed: a clone starts a MAC without hashing the key's pads again (two of
    /// the four SHA-256 blocks of a pixel token's MAC).
    keys: Vec<(u8, Hmac<Sha256>)>,
    current: u8,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        let ids: Vec<u8> = self.keys.iter().map(|(id, _)| *id).collect();
        f.debug_struct("Keyring")
            .field("key_ids", &ids)
            .field("current", &self.current)
            .finish()
    }
}

/// `key` as a keyed HMAC-SHA-256.
fn keyed(key: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length (RFC 2104 §2: longer ones are hashed first), so this cannot fail.
    Hmac::<Sha256>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"))
}

impl Keyring {
    /// A keyring whose only key, `key`, has id `id`.
    pub fn new(id: u8, key: impl Into<Vec<u8>>) -> Self {
        Keyring {
            keys: vec![(id, keyed(&key.into()))],
            current: id,
        }
    }

    /// Adds `key` as `id` and signs with it from now on; older keys keep verifying.
    pub fn rotate(&mut self, id: u8, key: impl Into<Vec<u8>>) {
        self.keys.retain(|(k, _)| *k != id);
        self.keys.push((id, keyed(&key.into())));
        self.current = id;
    }

    /// Stops accepting tokens signed with `id` (unless it is the current key).
    pub fn retire(&mut self, id: u8) {
        if id != self.current {
            self.keys.retain(|(k, _)| *k != id);
        }
    }

    fn mac(&self, id: u8) -> Option<Hmac<Sha256>> {
        self.keys
            .iter()
            .find(|(k, _)| *k == id)
            .map(|(_, mac)| mac.clone())
    }

    /// The ad instance id `id` of session `session_id`, made recognisable: `{id}.{key id}{tag}` where the tag
    /// is the first 8 bytes of HMAC-SHA-256 over the pair, all hex. A producer that relays client beacons can
    /// then only report ad instances this platform issued to that session (without a store of issued ids:
    /// a live break issues one per viewer).
    pub fn issue_instance(&self, session_id: &str, id: &str) -> String {
        let tag = self
            .instance_tag(self.current, session_id, id)
            .unwrap_or_default();
        format!("{id}.{:02x}{tag}", self.current)
    }

    /// The id `issued` was issued for ([`Keyring::issue_instance`]'s `id`): what the decision engine named
    /// the ad instance, and reserved it by. An id without an issued suffix is returned whole.
    pub fn issued_base(issued: &str) -> &str {
        match issued.rsplit_once('.') {
            Some((id, suffix))
                if suffix.len() == 2 + 2 * INSTANCE_TAG_LEN
                    && suffix.bytes().all(|b| b.is_ascii_hexdigit()) =>
            {
                id
            }
            _ => issued,
        }
    }

    /// Whether `issued` was made by [`Keyring::issue_instance`] for `session_id` with a key still held.
    pub fn verify_instance(&self, session_id: &str, issued: &str) -> bool {
        let Some((id, suffix)) = issued.rsplit_once('.') else {
            return false;
        };
        if suffix.len() != 2 + 2 * INSTANCE_TAG_LEN || !suffix.is_ascii() {
            return false;
        }
        let Ok(key_id) = u8::from_str_radix(&suffix[..2], 16) else {
            return false;
        };
        let Some(expected) = self.instance_tag(key_id, session_id, id) else {
            return false;
        };
        // Both sides are hex of a MAC: compared in constant time all the same.
        expected.len() == suffix.len() - 2
            && expected
                .bytes()
                .zip(suffix[2..].bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }

    fn instance_tag(&self, key_id: u8, session_id: &str, id: &str) -> Option<String> {
        let mut mac = self.mac(key_id)?;
        mac.update(b"interlude-ad-instance\0");
        mac.update(session_id.as_bytes());
        mac.update(b"\0");
        mac.update(id.as_bytes());
        let tag = mac.finalize().into_bytes();
        Some(
            tag.iter()
                .take(INSTANCE_TAG_LEN)
                .map(|b| format!("{b:02x}"))
                .collect(),
        )
    }

    /// Signs `claims` with the current key.
    pub fn sign(&self, claims: &TokenClaims) -> Result<String, TokenError> {
        let mut payload = Vec::with_capacity(96);
        payload.extend_from_slice(&[VERSION, self.current, claims.event_type.code()]);
        payload.extend_from_slice(&claims.issued_at.to_be_bytes());
        let push = |payload: &mut Vec<u8>, field: &'static str, value: &str| {
            let len = u8::try_from(value.len()).map_err(|_| TokenError::FieldTooLong {
                field,
                len: value.len(),
            })?;
            payload.push(len);
            payload.extend_from_slice(value.as_bytes());
            Ok::<(), TokenError>(())
        };
        for (field, value) in [
            ("ad_instance_id", claims.ad_instance_id.as_str()),
            ("session_id", claims.session_id.as_str()),
            ("creative_id", claims.creative_id.as_str()),
            ("line_item_id", claims.line_item_id.as_deref().unwrap_or("")),
            ("channel", claims.channel.as_str()),
        ] {
            push(&mut payload, field, value)?;
        }
        if let Some(d) = &claims.demand {
            push(&mut payload, "demand.bidder", &d.bidder)?;
            push(&mut payload, "demand.seat", &d.seat)?;
            push(
                &mut payload,
                "demand.deal_id",
                d.deal_id.as_deref().unwrap_or(""),
            )?;
            payload.extend_from_slice(&d.price_cpm_micros.to_be_bytes());
            let currency: [u8; 3] =
                d.currency
                    .as_bytes()
                    .try_into()
                    .map_err(|_| TokenError::FieldTooLong {
                        field: "demand.currency (3 letters)",
                        len: d.currency.len(),
                    })?;
            payload.extend_from_slice(&currency);
        }
        let mut mac = self
            .mac(self.current)
            .ok_or(TokenError::UnknownKey(self.current))?;
        mac.update(&payload);
        let tag = mac.finalize().into_bytes();
        payload.extend_from_slice(&tag[..TAG_LEN]);
        Ok(URL_SAFE_NO_PAD.encode(payload))
    }

    /// Verifies `token` and returns its claims.
    pub fn verify(&self, token: &str) -> Result<TokenClaims, TokenError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(token.trim_end_matches('='))
            .map_err(|e| TokenError::Encoding(e.to_string()))?;
        let min = MIN_PAYLOAD + TAG_LEN;
        if bytes.len() < min {
            return Err(TokenError::TooShort {
                len: bytes.len(),
                min,
            });
        }
        let (payload, tag) = bytes.split_at(bytes.len() - TAG_LEN);
        if payload[0] != VERSION {
            return Err(TokenError::UnsupportedVersion(payload[0]));
        }
        let mut mac = self
            .mac(payload[1])
            .ok_or(TokenError::UnknownKey(payload[1]))?;
        mac.update(payload);
        mac.verify_truncated_left(tag)
            .map_err(|_| TokenError::BadSignature)?;
        read_claims(payload)
    }
}

fn read_claims(payload: &[u8]) -> Result<TokenClaims, TokenError> {
    let event_type = EventType::from_code(payload[2]).ok_or(TokenError::Malformed {
        field: "event_type",
        offset: 2,
    })?;
    let issued_at = u32::from_be_bytes([payload[3], payload[4], payload[5], payload[6]]);
    let mut at = 7;
    let next = |at: &mut usize, field: &'static str| -> Result<String, TokenError> {
        let malformed = TokenError::Malformed { field, offset: *at };
        let len = usize::from(*payload.get(*at).ok_or(malformed.clone())?);
        let text = payload
            .get(*at + 1..*at + 1 + len)
            .ok_or(malformed.clone())?;
        let text = std::str::from_utf8(text).map_err(|_| malformed)?;
        *at += 1 + len;
        Ok(text.to_owned())
    };
    let mut claims = TokenClaims {
        ad_instance_id: next(&mut at, "ad_instance_id")?,
        session_id: next(&mut at, "session_id")?,
        creative_id: next(&mut at, "creative_id")?,
        line_item_id: Some(next(&mut at, "line_item_id")?).filter(|s| !s.is_empty()),
        channel: next(&mut at, "channel")?,
        event_type,
        issued_at,
        demand: None,
    };
    if at < payload.len() {
        let (bidder, seat, deal) = (
            next(&mut at, "demand.bidder")?,
            next(&mut at, "demand.seat")?,
            next(&mut at, "demand.deal_id")?,
        );
        let malformed = |field| TokenError::Malformed { field, offset: at };
        let price = payload
            .get(at..at + 8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .ok_or(malformed("demand.price_cpm_micros"))?;
        let currency = payload
            .get(at + 8..at + 11)
            .and_then(|b| std::str::from_utf8(b).ok())
            .ok_or(malformed("demand.currency"))?;
        claims.demand = Some(Demand {
            bidder,
            seat,
            deal_id: Some(deal).filter(|d| !d.is_empty()),
            price_cpm_micros: u64::from_be_bytes(price),
            currency: currency.to_owned(),
        });
        at += 11;
    }
    if at != payload.len() {
        return Err(TokenError::Malformed {
            field: "trailing bytes",
            offset: at,
        });
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> TokenClaims {
        TokenClaims {
            ad_instance_id: "interlude-15a36fadb848467484f0bbd8f52cd4f6".into(),
            event_type: EventType::FirstQuartile,
            session_id: "27a4148153b74e4697d5b431a51c8cfb".into(),
            creative_id: "ad15".into(),
            line_item_id: Some("li-42".into()),
            channel: "live1".into(),
            issued_at: 1_795_000_000,
            demand: None,
        }
    }

    #[test]
    fn a_signed_token_verifies_and_stays_url_sized() {
        let keys = Keyring::new(1, b"k1-secret-material-32-bytes-long".to_vec());
        let token = keys.sign(&claims()).unwrap();
        assert!(token.len() < 200, "{} chars", token.len());
        assert!(
            token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_eq!(keys.verify(&token), Ok(claims()));
    }

    #[test]
    fn a_programmatic_ads_token_carries_its_winning_bid() {
        let keys = Keyring::new(1, b"k1-secret-material-32-bytes-long".to_vec());
        for deal_id in [None, Some("deal-7".to_owned())] {
            let claims = TokenClaims {
                demand: Some(Demand {
                    bidder: "dsp-a".into(),
                    seat: "seat-1".into(),
                    deal_id,
                    price_cpm_micros: 12_500_000,
                    currency: "EUR".into(),
                }),
                ..claims()
            };
            let token = keys.sign(&claims).unwrap();
            assert!(token.len() < 240, "{} chars", token.len());
            assert_eq!(keys.verify(&token), Ok(claims.clone()));
            // A bid whose currency is not three letters cannot be signed.
            let mut bad = claims;
            if let Some(d) = bad.demand.as_mut() {
                d.currency = "EURO".into();
            }
            assert!(keys.sign(&bad).is_err());
        }
    }

    #[test]
    fn every_single_bit_flip_is_rejected() {
        let keys = Keyring::new(1, b"k1".to_vec());
        let token = keys.sign(&claims()).unwrap();
        let bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        for i in 0..bytes.len() * 8 {
            let mut altered = bytes.clone();
            altered[i / 8] ^= 1 << (i % 8);
            let result = keys.verify(&URL_SAFE_NO_PAD.encode(&altered));
            assert!(result.is_err(), "bit {i} flipped and still accepted");
        }
    }

    #[test]
    fn rotation_keeps_old_tokens_valid_until_the_old_key_is_retired() {
        let mut keys = Keyring::new(1, b"old".to_vec());
        let old = keys.sign(&claims()).unwrap();
        keys.rotate(2, b"new".to_vec());
        let new = keys.sign(&claims()).unwrap();
        assert_eq!(keys.verify(&old), Ok(claims()));
        assert_eq!(keys.verify(&new), Ok(claims()));
        keys.retire(1);
        assert_eq!(keys.verify(&old), Err(TokenError::UnknownKey(1)));
        assert_eq!(keys.verify(&new), Ok(claims()));
        // Someone else's key with our key id: a forgery.
        let forger = Keyring::new(2, b"guess".to_vec());
        let forged = forger.sign(&claims()).unwrap();
        assert_eq!(keys.verify(&forged), Err(TokenError::BadSignature));
    }

    #[test]
    fn malformed_input_is_named() {
        let keys = Keyring::new(1, b"k".to_vec());
        assert!(matches!(
            keys.verify("not base64!"),
            Err(TokenError::Encoding(_))
        ));
        assert!(matches!(
            keys.verify("AAAA"),
            Err(TokenError::TooShort { len: 3, .. })
        ));
        let mut long = claims();
        long.channel = "x".repeat(300);
        assert_eq!(
            keys.sign(&long),
            Err(TokenError::FieldTooLong {
                field: "channel",
                len: 300
            })
        );
    }

    #[test]
    fn issued_instances_verify_for_their_session_only() {
        let mut ring = Keyring::new(1, b"instance-test-key-0123456789abcdef".to_vec());
        let issued = ring.issue_instance("s-1", "li-7-break-3-0");
        assert!(issued.starts_with("li-7-break-3-0.01"), "{issued}");
        assert!(ring.verify_instance("s-1", &issued));
        assert!(
            !ring.verify_instance("s-2", &issued),
            "bound to its session"
        );
        assert!(!ring.verify_instance("s-1", "li-7-break-3-0"), "unsigned");
        assert!(!ring.verify_instance("s-1", "li-7-break-3-1.01deadbeefdeadbeef"));
        let mut tampered = issued.clone();
        tampered.pop();
        tampered.push(if issued.ends_with('0') { '1' } else { '0' });
        assert!(!ring.verify_instance("s-1", &tampered));
        assert_eq!(Keyring::issued_base(&issued), "li-7-break-3-0");
        assert_eq!(Keyring::issued_base("s.1-b-0"), "s.1-b-0", "not issued");
        assert_eq!(
            Keyring::issued_base("x.0é00000000000000"),
            "x.0é00000000000000"
        );
        for junk in [
            "",
            ".",
            "x.zz",
            "x.01",
            "x.ffffffffffffffffff",
            "x.0é00000000000000",
        ] {
            assert!(!ring.verify_instance("s-1", junk), "{junk:?}");
        }
        // Rotation: instances issued before keep verifying until the old key is retired.
        ring.rotate(2, b"instance-test-key-rotated-abcdef0123".to_vec());
        assert!(ring.verify_instance("s-1", &issued));
        assert!(ring.issue_instance("s-1", "x").contains(".02"));
        ring.retire(1);
        assert!(!ring.verify_instance("s-1", &issued));
    }
}
