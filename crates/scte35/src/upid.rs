//! `segmentation_upid()` (ANSI/SCTE 35 §10.3.3.1, Table 22): the unique program identifier carried by a
//! segmentation_descriptor, including MID (§10.3.3.4) with nested UPIDs.
//!
//! A UPID whose bytes do not fit its declared type (wrong fixed length, text that is not UTF-8, a MID whose
//! inner lengths overflow) is kept as [`SegmentationUpid::Other`] with its type and bytes, so it still
//! round-trips byte for byte.

use serde::{Deserialize, Serialize};

use crate::bits::{BitReader, BitWriter};
use crate::error::Result;

/// A segmentation UPID. JSON: `{"type": "ad_id", "value": "ABCD0001000H"}`; byte strings are hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum SegmentationUpid {
    /// 0x00: not used (length 0).
    NotUsed,
    /// 0x01: user defined (deprecated).
    UserDefined(#[serde(with = "crate::serde_util::hex_bytes")] Vec<u8>),
    /// 0x02: ISCI, 8 characters (deprecated).
    Isci(String),
    /// 0x03: Ad-ID, 12 characters.
    AdId(String),
    /// 0x04: SMPTE 330 UMID, 32 bytes.
    Umid(#[serde(with = "crate::serde_util::hex_bytes")] Vec<u8>),
    /// 0x05: ISAN, 8 bytes (deprecated).
    IsanDeprecated(#[serde(with = "crate::serde_util::hex_bytes")] Vec<u8>),
    /// 0x06: ISAN (formerly V-ISAN), 12 bytes.
    Isan(#[serde(with = "crate::serde_util::hex_bytes")] Vec<u8>),
    /// 0x07: Tribune Media Systems program identifier (TID), 12 characters.
    Tid(String),
    /// 0x08: Turner Identifier / AiringID (TI), 64 bits.
    Ti(u64),
    /// 0x09: CableLabs ADI identifier.
    Adi(String),
    /// 0x0A: EIDR, 12 bytes (2-byte sub-prefix + 10-byte suffix; see [`SegmentationUpid::eidr_string`]).
    Eidr(#[serde(with = "crate::serde_util::hex_bytes")] Vec<u8>),
    /// 0x0B: `ATSC_content_identifier()`.
    AtscContentIdentifier(AtscContentIdentifier),
    /// 0x0C: managed private UPID, `MPU()`.
    Mpu(ManagedPrivateUpid),
    /// 0x0D: multiple UPIDs, `MID()`.
    Mid(Vec<SegmentationUpid>),
    /// 0x0E: advertising information (ADS).
    AdsInformation(String),
    /// 0x0F: URI.
    Uri(String),
    /// 0x10: UUID, 16 bytes.
    Uuid(#[serde(with = "crate::serde_util::hex_bytes")] Vec<u8>),
    /// 0x11: segment content reference (SCR).
    Scr(String),
    /// A reserved type, or bytes that do not fit the declared type; kept as is.
    Other {
        /// `segmentation_upid_type`.
        upid_type: u8,
        /// The UPID bytes, hex in JSON.
        #[serde(with = "crate::serde_util::hex_bytes")]
        bytes: Vec<u8>,
    },
}

/// `ATSC_content_identifier()` (ATSC A/57B).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AtscContentIdentifier {
    /// `TSID`.
    pub tsid: u16,
    /// Reserved 2 bits, when not all ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved: Option<u8>,
    /// `end_of_day` (5 bits).
    pub end_of_day: u8,
    /// `unique_for` (9 bits).
    pub unique_for: u16,
    /// `content_id` bytes, hex in JSON.
    #[serde(with = "crate::serde_util::hex_bytes")]
    pub content_id: Vec<u8>,
}

/// `MPU()`: a registered format identifier and private data.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManagedPrivateUpid {
    /// `format_identifier` (SMPTE RA).
    pub format_identifier: u32,
    /// `private_data`, hex in JSON.
    #[serde(with = "crate::serde_util::hex_bytes")]
    pub private_data: Vec<u8>,
}

fn text(b: &[u8], expected_len: Option<usize>) -> Option<String> {
    if expected_len.is_some_and(|n| n != b.len()) {
        return None;
    }
    std::str::from_utf8(b).ok().map(str::to_owned)
}

fn fixed(b: &[u8], n: usize) -> Option<Vec<u8>> {
    (b.len() == n).then(|| b.to_vec())
}

impl SegmentationUpid {
    /// The `segmentation_upid_type` value.
    #[must_use]
    pub fn upid_type(&self) -> u8 {
        match self {
            Self::NotUsed => 0x00,
            Self::UserDefined(_) => 0x01,
            Self::Isci(_) => 0x02,
            Self::AdId(_) => 0x03,
            Self::Umid(_) => 0x04,
            Self::IsanDeprecated(_) => 0x05,
            Self::Isan(_) => 0x06,
            Self::Tid(_) => 0x07,
            Self::Ti(_) => 0x08,
            Self::Adi(_) => 0x09,
            Self::Eidr(_) => 0x0A,
            Self::AtscContentIdentifier(_) => 0x0B,
            Self::Mpu(_) => 0x0C,
            Self::Mid(_) => 0x0D,
            Self::AdsInformation(_) => 0x0E,
            Self::Uri(_) => 0x0F,
            Self::Uuid(_) => 0x10,
            Self::Scr(_) => 0x11,
            Self::Other { upid_type, .. } => *upid_type,
        }
    }

    /// The EIDR in its canonical text form without check digit (`10.5240/XXXX-XXXX-XXXX-XXXX-XXXX`).
    #[must_use]
    pub fn eidr_string(&self) -> Option<String> {
        let Self::Eidr(b) = self else { return None };
        let (prefix, suffix) = (b.get(..2)?, b.get(2..12)?);
        let hex = hex::encode_upper(suffix);
        let groups: Vec<&str> = (0..5).filter_map(|i| hex.get(i * 4..i * 4 + 4)).collect();
        Some(format!(
            "10.{}/{}",
            u16::from_be_bytes([prefix[0], prefix[1]]),
            groups.join("-")
        ))
    }

    /// Interprets `bytes` as a UPID of type `upid_type`, never failing (see the module docs).
    #[must_use]
    pub fn from_bytes(upid_type: u8, b: &[u8]) -> Self {
        Self::typed(upid_type, b).unwrap_or_else(|| Self::Other {
            upid_type,
            bytes: b.to_vec(),
        })
    }

    fn typed(t: u8, b: &[u8]) -> Option<Self> {
        Some(match t {
            0x00 => b.is_empty().then_some(Self::NotUsed)?,
            0x01 => Self::UserDefined(b.to_vec()),
            0x02 => Self::Isci(text(b, Some(8))?),
            0x03 => Self::AdId(text(b, Some(12))?),
            0x04 => Self::Umid(fixed(b, 32)?),
            0x05 => Self::IsanDeprecated(fixed(b, 8)?),
            0x06 => Self::Isan(fixed(b, 12)?),
            0x07 => Self::Tid(text(b, Some(12))?),
            0x08 => Self::Ti(u64::from_be_bytes(b.try_into().ok()?)),
            0x09 => Self::Adi(text(b, None)?),
            0x0A => Self::Eidr(fixed(b, 12)?),
            0x0B => {
                let mut r = BitReader::new(b);
                let tsid = r.u16("TSID").ok()?;
                let reserved = r.reserved(2, "reserved").ok()?;
                let end_of_day = r.bits(5, "end_of_day").ok()? as u8;
                let unique_for = r.bits(9, "unique_for").ok()? as u16;
                let content_id = r.rest("content_id").ok()?.to_vec();
                Self::AtscContentIdentifier(AtscContentIdentifier {
                    tsid,
                    reserved,
                    end_of_day,
                    unique_for,
                    content_id,
                })
            }
            0x0C => {
                let mut r = BitReader::new(b);
                let format_identifier = r.u32("format_identifier").ok()?;
                let private_data = r.rest("private_data").ok()?.to_vec();
                Self::Mpu(ManagedPrivateUpid {
                    format_identifier,
                    private_data,
                })
            }
            0x0D => {
                let mut r = BitReader::new(b);
                let mut upids = Vec::new();
                while !r.is_empty() {
                    let t = r.u8("segmentation_upid_type").ok()?;
                    let n = r.u8("segmentation_upid_length").ok()?;
                    let inner = r.bytes(usize::from(n), "segmentation_upid").ok()?;
                    upids.push(Self::from_bytes(t, inner));
                }
                Self::Mid(upids)
            }
            0x0E => Self::AdsInformation(text(b, None)?),
            0x0F => Self::Uri(text(b, None)?),
            0x10 => Self::Uuid(fixed(b, 16)?),
            0x11 => Self::Scr(text(b, None)?),
            _ => return None,
        })
    }

    /// Writes `segmentation_upid_type`, `segmentation_upid_length` and the UPID bytes.
    pub(crate) fn encode(&self, w: &mut BitWriter) -> Result<()> {
        w.u8(self.upid_type());
        let at = w.len8_placeholder();
        match self {
            Self::NotUsed => {}
            Self::UserDefined(b)
            | Self::Umid(b)
            | Self::IsanDeprecated(b)
            | Self::Isan(b)
            | Self::Eidr(b)
            | Self::Uuid(b)
            | Self::Other { bytes: b, .. } => w.bytes(b, "segmentation_upid")?,
            Self::Isci(s)
            | Self::AdId(s)
            | Self::Tid(s)
            | Self::Adi(s)
            | Self::AdsInformation(s)
            | Self::Uri(s)
            | Self::Scr(s) => w.bytes(s.as_bytes(), "segmentation_upid")?,
            Self::Ti(v) => w.bytes(&v.to_be_bytes(), "segmentation_upid")?,
            Self::AtscContentIdentifier(a) => {
                w.u16(a.tsid);
                w.reserved(2, a.reserved, "reserved")?;
                w.bits(5, u64::from(a.end_of_day), "end_of_day")?;
                w.bits(9, u64::from(a.unique_for), "unique_for")?;
                w.bytes(&a.content_id, "content_id")?;
            }
            Self::Mpu(m) => {
                w.u32(m.format_identifier);
                w.bytes(&m.private_data, "private_data")?;
            }
            Self::Mid(list) => {
                for u in list {
                    u.encode(w)?;
                }
            }
        }
        w.patch_len8(at, "segmentation_upid_length")
    }
}
