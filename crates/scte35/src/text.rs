//! Text forms of a section: hex (as in HLS `#EXT-X-DATERANGE SCTE35-OUT=0xFC30...`) and base64 (as in
//! `#EXT-OATCLS-SCTE35:/DA...`), with auto-detection.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::error::{Error, Result};

/// Standard alphabet, padding optional (stripped before decoding), trailing bits tolerated.
const LENIENT: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(true),
);
use crate::section::SpliceInfoSection;

/// Decodes hex text: optional `0x`/`0X` prefix, either case, whitespace anywhere.
pub fn hex_to_bytes(s: &str) -> Result<Vec<u8>> {
    let t = s.trim();
    let t = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    let mut out = Vec::with_capacity(t.len() / 2);
    let mut hi: Option<u8> = None;
    let mut position = 0usize;
    for c in t.chars() {
        if c.is_whitespace() {
            continue;
        }
        let v = c.to_digit(16).ok_or_else(|| Error::InvalidHex {
            position,
            reason: format!("{c:?} is not a hex digit"),
        })? as u8;
        position += 1;
        match hi.take() {
            None => hi = Some(v),
            Some(h) => out.push(h << 4 | v),
        }
    }
    if hi.is_some() {
        return Err(Error::InvalidHex {
            position,
            reason: "odd number of hex digits".into(),
        });
    }
    if out.is_empty() {
        return Err(Error::Empty);
    }
    Ok(out)
}

/// Decodes base64 text (standard alphabet; padding optional; whitespace and URL-safe `-`/`_` tolerated).
pub fn base64_to_bytes(s: &str) -> Result<Vec<u8>> {
    let cleaned: String = s
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            other => other,
        })
        .collect();
    let trimmed = cleaned.trim_end_matches('=');
    if trimmed.is_empty() {
        return Err(Error::Empty);
    }
    LENIENT.decode(trimmed).map_err(|e| Error::InvalidBase64 {
        reason: e.to_string(),
    })
}

/// Whether `s` looks like hex: a `0x` prefix, or only hex digits (a base64 SCTE-35 section starts with `/`,
/// which is not a hex digit, so the two cannot be confused for real sections).
fn looks_hex(s: &str) -> bool {
    let t = s.trim();
    t.starts_with("0x")
        || t.starts_with("0X")
        || t.chars()
            .all(|c| c.is_ascii_hexdigit() || c.is_whitespace())
}

/// Decodes hex or base64 text, detecting which.
pub fn text_to_bytes(s: &str) -> Result<Vec<u8>> {
    if s.trim().is_empty() {
        return Err(Error::Empty);
    }
    if looks_hex(s) {
        hex_to_bytes(s)
    } else {
        base64_to_bytes(s)
    }
}

impl SpliceInfoSection {
    /// Decodes a section from hex text.
    pub fn from_hex(s: &str) -> Result<Self> {
        Self::decode(&hex_to_bytes(s)?)
    }

    /// Decodes a section from base64 text.
    pub fn from_base64(s: &str) -> Result<Self> {
        Self::decode(&base64_to_bytes(s)?)
    }

    /// Decodes a section from hex or base64 text, detecting which.
    pub fn parse_any(s: &str) -> Result<Self> {
        Self::decode(&text_to_bytes(s)?)
    }

    /// Encodes as `0x`-prefixed uppercase hex, the form HLS `EXT-X-DATERANGE` uses.
    pub fn to_hex(&self) -> Result<String> {
        Ok(format!("0x{}", hex::encode_upper(self.encode()?)))
    }

    /// Encodes as standard padded base64.
    pub fn to_base64(&self) -> Result<String> {
        Ok(STANDARD.encode(self.encode()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_accepts_prefix_case_and_whitespace() {
        assert_eq!(
            hex_to_bytes("0XfC 30\n11").ok(),
            Some(vec![0xFC, 0x30, 0x11])
        );
        assert_eq!(hex_to_bytes("fc30").ok(), Some(vec![0xFC, 0x30]));
        assert!(matches!(
            hex_to_bytes("0xFC3"),
            Err(Error::InvalidHex { .. })
        ));
        assert!(matches!(
            hex_to_bytes("0xFG"),
            Err(Error::InvalidHex { position: 1, .. })
        ));
    }

    #[test]
    fn base64_accepts_missing_padding() {
        assert_eq!(base64_to_bytes("/DA").ok(), Some(vec![0xFC, 0x30]));
        assert_eq!(base64_to_bytes("/DA=").ok(), Some(vec![0xFC, 0x30]));
        assert!(matches!(
            base64_to_bytes("/D*A"),
            Err(Error::InvalidBase64 { .. })
        ));
    }

    #[test]
    fn detects_hex_and_base64() {
        assert_eq!(text_to_bytes("0xFC30").ok(), Some(vec![0xFC, 0x30]));
        assert_eq!(text_to_bytes("/DA=").ok(), Some(vec![0xFC, 0x30]));
        assert!(matches!(text_to_bytes("  "), Err(Error::Empty)));
    }
}
