//! `splice_info_section()` (ANSI/SCTE 35 §9.6, Table 5): header, command, descriptor loop, alignment stuffing,
//! encrypted part and CRC_32.
//!
//! Round-trip policy: decoding keeps everything needed to give back the input bytes. Reserved fields that
//! were not all ones are kept (`reserved*` fields, `None` = all ones), as are the legacy
//! `splice_command_length` 0xFFF, `alignment_stuffing`, and the encrypted part of an encrypted section.
//! Bytes after `section_length` (padding in a transport packet, say) are not part of the section and are
//! ignored.

use serde::{Deserialize, Serialize};

use crate::bits::{BitReader, BitWriter};
use crate::command::SpliceCommand;
use crate::crc::crc32_mpeg2;
use crate::descriptor::SpliceDescriptor;
use crate::error::{Error, Result};

/// Smallest `section_length`: the fixed header after it (10 bytes up to `splice_command_length`) and the
/// 4-byte CRC_32 (an encrypted section may stop there; a clear one needs more, checked as it is read).
const MIN_SECTION_LENGTH: usize = 14;
/// Largest `section_length` the standard allows.
const MAX_SECTION_LENGTH: usize = 4093;

/// A decoded `splice_info_section`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpliceInfoSection {
    /// `section_syntax_indicator` (0 for SCTE 35).
    #[serde(default)]
    pub section_syntax_indicator: bool,
    /// `private_indicator` (0 for SCTE 35).
    #[serde(default)]
    pub private_indicator: bool,
    /// `sap_type` (2 bits; 3 = not specified).
    #[serde(default = "default_sap_type")]
    pub sap_type: u8,
    /// `protocol_version` (0).
    #[serde(default)]
    pub protocol_version: u8,
    /// `encrypted_packet`.
    #[serde(default)]
    pub encrypted_packet: bool,
    /// `encryption_algorithm` (6 bits).
    #[serde(default)]
    pub encryption_algorithm: u8,
    /// `pts_adjustment` in 90 kHz ticks (33 bits).
    #[serde(flatten, with = "crate::serde_util::pts_adjustment")]
    pub pts_adjustment: u64,
    /// `cw_index`.
    #[serde(default)]
    pub cw_index: u8,
    /// `tier` (12 bits; 0xFFF = all tiers).
    #[serde(default = "default_tier")]
    pub tier: u16,
    /// The source carried the legacy `splice_command_length` 0xFFF; encode reproduces it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub splice_command_length_legacy: bool,
    /// The splice command (`SpliceNull` when the section is encrypted; see `encrypted`).
    pub splice_command: SpliceCommand,
    /// The descriptor loop (empty when encrypted).
    #[serde(default)]
    pub splice_descriptors: Vec<SpliceDescriptor>,
    /// `alignment_stuffing` bytes between the descriptor loop and the CRC, hex in JSON.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        with = "crate::serde_util::hex_bytes"
    )]
    pub alignment_stuffing: Vec<u8>,
    /// The still-encrypted part of an encrypted section (not decrypted by this crate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted: Option<EncryptedPart>,
}

/// The encrypted part of a section with `encrypted_packet` = 1, kept as bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncryptedPart {
    /// `splice_command_length` as carried in the clear.
    pub splice_command_length: u16,
    /// Everything from `splice_command_type` up to and including `E_CRC_32`, hex in JSON.
    #[serde(with = "crate::serde_util::hex_bytes")]
    pub bytes: Vec<u8>,
}

fn default_sap_type() -> u8 {
    3
}

fn default_tier() -> u16 {
    0xFFF
}

impl SpliceInfoSection {
    /// A section with default header (protocol_version 0, not encrypted, pts_adjustment 0, cw_index 0, tier
    /// 0xFFF, sap_type 3, no descriptors).
    #[must_use]
    pub fn new(command: SpliceCommand) -> Self {
        Self {
            section_syntax_indicator: false,
            private_indicator: false,
            sap_type: 3,
            protocol_version: 0,
            encrypted_packet: false,
            encryption_algorithm: 0,
            pts_adjustment: 0,
            cw_index: 0,
            tier: 0xFFF,
            splice_command_length_legacy: false,
            splice_command: command,
            splice_descriptors: Vec::new(),
            alignment_stuffing: Vec::new(),
            encrypted: None,
        }
    }

    /// Decodes a section, verifying its CRC_32. Bytes after `section_length` are ignored.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        Self::decode_inner(bytes, true).map(|(s, _)| s)
    }

    /// Decodes a section without verifying CRC_32 (for damaged captures); returns the section and the number
    /// of bytes it occupies.
    pub fn decode_unchecked(bytes: &[u8]) -> Result<(Self, usize)> {
        Self::decode_inner(bytes, false)
    }

    /// Decodes a section, verifying its CRC_32, and returns the number of bytes it occupies.
    pub fn decode_prefix(bytes: &[u8]) -> Result<(Self, usize)> {
        Self::decode_inner(bytes, true)
    }

    fn decode_inner(bytes: &[u8], verify_crc: bool) -> Result<(Self, usize)> {
        if bytes.is_empty() {
            return Err(Error::Empty);
        }
        let mut r = BitReader::new(bytes);
        let table_id = r.u8("table_id")?;
        if table_id != 0xFC {
            return Err(Error::BadTableId { found: table_id });
        }
        let section_syntax_indicator = r.flag("section_syntax_indicator")?;
        let private_indicator = r.flag("private_indicator")?;
        let sap_type = r.bits(2, "sap_type")? as u8;
        let section_length = r.bits(12, "section_length")? as usize;
        let available = bytes.len() - 3;
        if section_length > available
            || !(MIN_SECTION_LENGTH..=MAX_SECTION_LENGTH).contains(&section_length)
        {
            return Err(Error::SectionLength {
                section_length,
                available,
            });
        }
        let total = section_length + 3;
        let crc_offset = total - 4;
        let (body, crc_bytes) = (bytes.get(..crc_offset), bytes.get(crc_offset..total));
        let (Some(body), Some(crc_bytes)) = (body, crc_bytes) else {
            return Err(Error::SectionLength {
                section_length,
                available,
            });
        };
        if verify_crc {
            let found =
                u32::from_be_bytes([crc_bytes[0], crc_bytes[1], crc_bytes[2], crc_bytes[3]]);
            let expected = crc32_mpeg2(body);
            if expected != found {
                return Err(Error::BadCrc {
                    expected,
                    found,
                    offset: crc_offset,
                });
            }
        }
        let mut r = BitReader::new(body);
        r.bytes(3, "table_id")?;
        let mut s = Self::new(SpliceCommand::SpliceNull);
        s.section_syntax_indicator = section_syntax_indicator;
        s.private_indicator = private_indicator;
        s.sap_type = sap_type;
        s.protocol_version = r.u8("protocol_version")?;
        s.encrypted_packet = r.flag("encrypted_packet")?;
        s.encryption_algorithm = r.bits(6, "encryption_algorithm")? as u8;
        s.pts_adjustment = r.bits(33, "pts_adjustment")?;
        s.cw_index = r.u8("cw_index")?;
        s.tier = r.bits(12, "tier")? as u16;
        let len_offset = r.offset();
        let command_length = r.bits(12, "splice_command_length")? as usize;
        if s.encrypted_packet {
            let bytes = r.rest("encrypted part")?.to_vec();
            s.encrypted = Some(EncryptedPart {
                splice_command_length: command_length as u16,
                bytes,
            });
            return Ok((s, total));
        }
        let type_offset = r.offset();
        let command_type = r.u8("splice_command_type")?;
        if command_length == 0xFFF {
            s.splice_command_length_legacy = true;
            s.splice_command = SpliceCommand::decode(command_type, type_offset, &mut r, false)?;
        } else {
            let mut cmd = r.sub(command_length, "splice_command_length", len_offset)?;
            s.splice_command = SpliceCommand::decode(command_type, type_offset, &mut cmd, true)?;
            if !cmd.is_empty() {
                return Err(Error::LengthMismatch {
                    field: "splice_command_length",
                    declared: command_length,
                    parsed: command_length - cmd.remaining(),
                    offset: len_offset,
                });
            }
        }
        let loop_offset = r.offset();
        let loop_length = usize::from(r.u16("descriptor_loop_length")?);
        let mut descriptors = r.sub(loop_length, "descriptor_loop_length", loop_offset)?;
        while !descriptors.is_empty() {
            s.splice_descriptors
                .push(SpliceDescriptor::decode(&mut descriptors)?);
        }
        s.alignment_stuffing = r.rest("alignment_stuffing")?.to_vec();
        Ok((s, total))
    }

    /// Encodes the section, computing `section_length`, `splice_command_length`, `descriptor_loop_length`,
    /// every `descriptor_length` and CRC_32.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut w = BitWriter::with_capacity(64);
        w.u8(0xFC);
        w.flag(self.section_syntax_indicator);
        w.flag(self.private_indicator);
        w.bits(2, u64::from(self.sap_type), "sap_type")?;
        w.bits(12, 0, "section_length")?;
        w.u8(self.protocol_version);
        w.flag(self.encrypted_packet);
        w.bits(
            6,
            u64::from(self.encryption_algorithm),
            "encryption_algorithm",
        )?;
        w.bits(33, self.pts_adjustment, "pts_adjustment")?;
        w.u8(self.cw_index);
        w.bits(12, u64::from(self.tier), "tier")?;
        let len_at = w.pos();
        if self.encrypted_packet {
            let e = self.encrypted.as_ref().ok_or(Error::Invalid {
                field: "encrypted",
                reason: "encrypted_packet is set but the encrypted part is missing",
            })?;
            w.bits(
                12,
                u64::from(e.splice_command_length),
                "splice_command_length",
            )?;
            w.bytes(&e.bytes, "encrypted part")?;
        } else {
            // Placeholder: 12 bits of length then the 8-bit command type, patched below.
            w.bits(12, 0, "splice_command_length")?;
            w.u8(self.splice_command.command_type());
            let start = w.pos();
            self.splice_command.encode(&mut w)?;
            let len = if self.splice_command_length_legacy {
                0xFFF
            } else {
                w.pos() - start
            };
            if len > 0xFFF || (len == 0xFFF && !self.splice_command_length_legacy) {
                return Err(Error::ValueOutOfRange {
                    field: "splice_command_length",
                    value: len as u64,
                    bits: 12,
                });
            }
            patch_12(&mut w.buf, len_at, len);
            let loop_at = w.pos();
            w.u16(0);
            for d in &self.splice_descriptors {
                d.encode(&mut w)?;
            }
            let loop_len = w.pos() - loop_at - 2;
            let loop_len = u16::try_from(loop_len).map_err(|_| Error::ValueOutOfRange {
                field: "descriptor_loop_length",
                value: loop_len as u64,
                bits: 16,
            })?;
            if let Some(slot) = w.buf.get_mut(loop_at..loop_at + 2) {
                slot.copy_from_slice(&loop_len.to_be_bytes());
            }
            w.bytes(&self.alignment_stuffing, "alignment_stuffing")?;
        }
        let section_length = w.pos() + 4 - 3;
        if section_length > MAX_SECTION_LENGTH {
            return Err(Error::ValueOutOfRange {
                field: "section_length",
                value: section_length as u64,
                bits: 12,
            });
        }
        patch_12(&mut w.buf, 1, section_length);
        let crc = crc32_mpeg2(&w.buf);
        let mut out = w.buf;
        out.extend_from_slice(&crc.to_be_bytes());
        Ok(out)
    }
}

/// Writes a 12-bit value into the low nibble of `buf[at]` and all of `buf[at + 1]` (where both
/// `section_length` and `splice_command_length` sit).
fn patch_12(buf: &mut [u8], at: usize, v: usize) {
    let v = (v & 0xFFF) as u16;
    if let Some([a, b]) = buf
        .get_mut(at..at + 2)
        .and_then(|s| <&mut [u8; 2]>::try_from(s).ok())
    {
        *a = (*a & 0xF0) | (v >> 8) as u8;
        *b = v as u8;
    }
}
