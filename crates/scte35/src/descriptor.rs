//! Splice descriptors (ANSI/SCTE 35 §10): avail, DTMF, segmentation, time and audio descriptors with the
//! "CUEI" identifier, and every other descriptor (other tags or other identifiers) kept as raw bytes.

use serde::{Deserialize, Serialize};

use crate::bits::{BitReader, BitWriter};
use crate::error::{Error, Result};
use crate::segmentation::SegmentationDescriptor;

/// The `identifier` of SCTE 35 descriptors: ASCII "CUEI".
pub const CUEI: u32 = 0x4355_4549;

/// One `splice_descriptor()`, tagged in JSON by `"type"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SpliceDescriptor {
    /// `avail_descriptor()` (tag 0x00).
    AvailDescriptor(AvailDescriptor),
    /// `DTMF_descriptor()` (tag 0x01).
    DtmfDescriptor(DtmfDescriptor),
    /// `segmentation_descriptor()` (tag 0x02).
    SegmentationDescriptor(SegmentationDescriptor),
    /// `time_descriptor()` (tag 0x03).
    TimeDescriptor(TimeDescriptor),
    /// `audio_descriptor()` (tag 0x04).
    AudioDescriptor(AudioDescriptor),
    /// Any other descriptor: a reserved tag or an identifier other than "CUEI".
    PrivateDescriptor(PrivateDescriptor),
}

/// `avail_descriptor()`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AvailDescriptor {
    /// `provider_avail_id`.
    pub provider_avail_id: u32,
}

/// `DTMF_descriptor()`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DtmfDescriptor {
    /// `preroll` in tenths of a second.
    pub preroll: u8,
    /// Reserved 5 bits, when not all ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved: Option<u8>,
    /// The `DTMF_char`s (at most 7; `dtmf_count` is their number).
    pub dtmf_chars: String,
}

/// `time_descriptor()`: TAI time of the signal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeDescriptor {
    /// `TAI_seconds` (48 bits).
    pub tai_seconds: u64,
    /// `TAI_ns`.
    pub tai_ns: u32,
    /// `UTC_offset` in seconds.
    pub utc_offset: u16,
}

/// `audio_descriptor()`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AudioDescriptor {
    /// Reserved 4 bits after `audio_count`, when not all ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved: Option<u8>,
    /// The audio components (`audio_count`, at most 15).
    pub components: Vec<AudioComponent>,
}

/// One component of an `audio_descriptor()`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AudioComponent {
    /// `component_tag`.
    pub component_tag: u8,
    /// `ISO_code` (ISO 639-2, 24 bits).
    pub iso_code: u32,
    /// `Bit_Stream_Mode` (3 bits).
    pub bit_stream_mode: u8,
    /// `Num_Channels` (4 bits).
    pub num_channels: u8,
    /// `Full_Srvc_Audio`.
    pub full_srvc_audio: bool,
}

/// A descriptor this crate does not interpret, kept byte for byte.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivateDescriptor {
    /// `splice_descriptor_tag`.
    pub splice_descriptor_tag: u8,
    /// `identifier`.
    pub identifier: u32,
    /// The bytes after the identifier, hex in JSON.
    #[serde(with = "crate::serde_util::hex_bytes")]
    pub private_bytes: Vec<u8>,
}

impl SpliceDescriptor {
    /// `splice_descriptor_tag`.
    #[must_use]
    pub fn tag(&self) -> u8 {
        match self {
            Self::AvailDescriptor(_) => 0x00,
            Self::DtmfDescriptor(_) => 0x01,
            Self::SegmentationDescriptor(_) => 0x02,
            Self::TimeDescriptor(_) => 0x03,
            Self::AudioDescriptor(_) => 0x04,
            Self::PrivateDescriptor(p) => p.splice_descriptor_tag,
        }
    }

    /// Decodes one descriptor starting at `splice_descriptor_tag`.
    pub(crate) fn decode(r: &mut BitReader<'_>) -> Result<Self> {
        let tag = r.u8("splice_descriptor_tag")?;
        let len_offset = r.offset();
        let len = r.u8("descriptor_length")?;
        let mut body = r.sub(usize::from(len), "descriptor_length", len_offset)?;
        let identifier = body.u32("identifier")?;
        let d = if identifier != CUEI || tag > 0x04 {
            let private_bytes = body.rest("private_byte")?.to_vec();
            Self::PrivateDescriptor(PrivateDescriptor {
                splice_descriptor_tag: tag,
                identifier,
                private_bytes,
            })
        } else {
            match tag {
                0x00 => Self::AvailDescriptor(AvailDescriptor {
                    provider_avail_id: body.u32("provider_avail_id")?,
                }),
                0x01 => {
                    let preroll = body.u8("preroll")?;
                    let count = body.bits(3, "dtmf_count")?;
                    let reserved = body.reserved(5, "DTMF_descriptor.reserved")?;
                    let chars = body.bytes(count as usize, "DTMF_char")?;
                    let dtmf_chars = chars.iter().map(|&c| char::from(c)).collect();
                    Self::DtmfDescriptor(DtmfDescriptor {
                        preroll,
                        reserved,
                        dtmf_chars,
                    })
                }
                0x02 => Self::SegmentationDescriptor(SegmentationDescriptor::decode(&mut body)?),
                0x03 => Self::TimeDescriptor(TimeDescriptor {
                    tai_seconds: body.bits(48, "TAI_seconds")?,
                    tai_ns: body.u32("TAI_ns")?,
                    utc_offset: body.u16("UTC_offset")?,
                }),
                _ => {
                    let count = body.bits(4, "audio_count")?;
                    let reserved = body.reserved(4, "audio_descriptor.reserved")?;
                    let mut components = Vec::with_capacity(count as usize);
                    for _ in 0..count {
                        components.push(AudioComponent {
                            component_tag: body.u8("component_tag")?,
                            iso_code: body.bits(24, "ISO_code")? as u32,
                            bit_stream_mode: body.bits(3, "Bit_Stream_Mode")? as u8,
                            num_channels: body.bits(4, "Num_Channels")? as u8,
                            full_srvc_audio: body.flag("Full_Srvc_Audio")?,
                        });
                    }
                    Self::AudioDescriptor(AudioDescriptor {
                        reserved,
                        components,
                    })
                }
            }
        };
        if !body.is_empty() {
            return Err(Error::LengthMismatch {
                field: "descriptor_length",
                declared: usize::from(len),
                parsed: usize::from(len) - body.remaining(),
                offset: len_offset,
            });
        }
        Ok(d)
    }

    pub(crate) fn encode(&self, w: &mut BitWriter) -> Result<()> {
        w.u8(self.tag());
        let at = w.len8_placeholder();
        match self {
            Self::PrivateDescriptor(p) => {
                w.u32(p.identifier);
                w.bytes(&p.private_bytes, "private_byte")?;
            }
            Self::AvailDescriptor(a) => {
                w.u32(CUEI);
                w.u32(a.provider_avail_id);
            }
            Self::DtmfDescriptor(d) => {
                w.u32(CUEI);
                w.u8(d.preroll);
                let bytes: Vec<u8> = d
                    .dtmf_chars
                    .chars()
                    .map(|c| u8::try_from(c).unwrap_or(b'?'))
                    .collect();
                w.bits(3, bytes.len() as u64, "dtmf_count")?;
                w.reserved(5, d.reserved, "DTMF_descriptor.reserved")?;
                w.bytes(&bytes, "DTMF_char")?;
            }
            Self::SegmentationDescriptor(s) => {
                w.u32(CUEI);
                s.encode(w)?;
            }
            Self::TimeDescriptor(t) => {
                w.u32(CUEI);
                w.bits(48, t.tai_seconds, "TAI_seconds")?;
                w.u32(t.tai_ns);
                w.u16(t.utc_offset);
            }
            Self::AudioDescriptor(a) => {
                w.u32(CUEI);
                w.bits(4, a.components.len() as u64, "audio_count")?;
                w.reserved(4, a.reserved, "audio_descriptor.reserved")?;
                for c in &a.components {
                    w.u8(c.component_tag);
                    w.bits(24, u64::from(c.iso_code), "ISO_code")?;
                    w.bits(3, u64::from(c.bit_stream_mode), "Bit_Stream_Mode")?;
                    w.bits(4, u64::from(c.num_channels), "Num_Channels")?;
                    w.flag(c.full_srvc_audio);
                }
            }
        }
        w.patch_len8(at, "descriptor_length")
    }
}
