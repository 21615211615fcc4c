//! ANSI/SCTE 35 `splice_info_section` codec for Interlude: decode, encode, text forms, JSON and MPEG-TS
//! extraction. Pure: no I/O, no clock.
//!
//! ```
//! use interlude_scte35::{SpliceInfoSection, TICKS_PER_SECOND};
//!
//! // A splice_insert from ANSI/SCTE 35 2022b §14.2.
//! let cue = SpliceInfoSection::parse_any("/DAvAAAAAAAA///wFAVIAACPf+/+c2nALv4AUsz1AAAAAAAKAAhDVUVJAAABNWLbowo=")?;
//! assert!(cue.is_ad_break_start());
//! assert_eq!(cue.event_id(), Some(0x4800_008F));
//! assert_eq!(cue.splice_pts(), Some(0x0_7369_C02E));
//! assert_eq!(cue.to_base64()?, "/DAvAAAAAAAA///wFAVIAACPf+/+c2nALv4AUsz1AAAAAAAKAAhDVUVJAAABNWLbowo=");
//!
//! // Build a 30-second break start for the origin simulator.
//! let out = SpliceInfoSection::splice_insert_out(7, Some(900_000), Some(30 * TICKS_PER_SECOND));
//! let again = SpliceInfoSection::from_hex(&out.to_hex()?)?;
//! assert_eq!(again, out);
//! # Ok::<(), interlude_scte35::Error>(())
//! ```
//!
//! Implemented:
//! - every header field, including `sap_type`, the 33-bit `pts_adjustment`, `tier` and the legacy
//!   `splice_command_length` 0xFFF (the command is then delimited by parsing it, and encode writes 0xFFF back);
//! - every command: splice_null, splice_schedule, splice_insert (program/component, immediate, break_duration,
//!   cancel), time_signal, bandwidth_reservation, private_command;
//! - every descriptor: avail, DTMF, segmentation (all type ids, restriction flags, components, duration,
//!   every UPID type including MID with nested UPIDs, sub-segments for 0x30/0x32/0x34/0x36/0x38/0x3A/0x44/0x46 when present (SCTE 35 2023), bytes past the
//!   last field kept),
//!   time, audio; any other descriptor is kept raw (tag, identifier, bytes);
//! - byte-exact round trips: reserved bits that are not all ones, alignment stuffing and the encrypted part
//!   are kept (see [`section`] for the policy);
//! - CRC_32 (slicing-by-8) checked on decode and computed on encode;
//! - hex/base64 input and output, JSON through serde with ticks and seconds for every 90 kHz time;
//! - the stitcher's questions ([`SpliceInfoSection::is_ad_break_start`] and friends) and the simulator's
//!   builders;
//! - extraction of SCTE-35 sections from an MPEG transport stream ([`ts`]).
//!
//! Not implemented: decryption of encrypted sections (the encrypted part is kept as bytes and re-emitted);
//! checks of the semantic rules between fields (segment numbering, which types may carry a duration, ...).

mod bits;
mod command;
mod crc;
mod descriptor;
mod domain;
mod error;
pub mod section;
mod segmentation;
mod segmentation_type;
mod serde_util;
mod text;
mod time;
pub mod ts;
mod upid;

pub use command::{
    PrivateCommand, ScheduledComponent, ScheduledEvent, SpliceCommand, SpliceInsert,
    SpliceInsertComponent, SpliceSchedule, TimeSignal,
};
pub use crc::crc32_mpeg2;
pub use descriptor::{
    AudioComponent, AudioDescriptor, AvailDescriptor, CUEI, DtmfDescriptor, PrivateDescriptor,
    SpliceDescriptor, TimeDescriptor,
};
pub use domain::ticks_to_duration;
pub use error::{Error, Result};
pub use section::{EncryptedPart, SpliceInfoSection};
pub use segmentation::{
    DeliveryRestrictions, SegmentationComponent, SegmentationDescriptor, SubSegment,
};
pub use segmentation_type::SegmentationTypeId;
pub use text::{base64_to_bytes, hex_to_bytes, text_to_bytes};
pub use time::{BreakDuration, SpliceTime};
pub use ts::{TsCue, TsExtractor};
pub use upid::{AtscContentIdentifier, ManagedPrivateUpid, SegmentationUpid};

/// The 90 kHz clock of PTS values.
pub const TICKS_PER_SECOND: u64 = 90_000;
