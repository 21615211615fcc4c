//! Splice commands (ANSI/SCTE 35 §9.7): splice_null, splice_schedule, splice_insert, time_signal,
//! bandwidth_reservation and private_command.

use serde::{Deserialize, Serialize};

use crate::bits::{BitReader, BitWriter};
use crate::error::{Error, Result};
use crate::time::{BreakDuration, SpliceTime};

/// One splice command, tagged in JSON by `"type"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SpliceCommand {
    /// `splice_null()` (0x00): a heartbeat or a carrier for descriptors.
    SpliceNull,
    /// `splice_schedule()` (0x04).
    SpliceSchedule(SpliceSchedule),
    /// `splice_insert()` (0x05).
    SpliceInsert(SpliceInsert),
    /// `time_signal()` (0x06).
    TimeSignal(TimeSignal),
    /// `bandwidth_reservation()` (0x07).
    BandwidthReservation,
    /// `private_command()` (0xFF).
    PrivateCommand(PrivateCommand),
}

impl SpliceCommand {
    /// The `splice_command_type` value.
    #[must_use]
    pub fn command_type(&self) -> u8 {
        match self {
            Self::SpliceNull => 0x00,
            Self::SpliceSchedule(_) => 0x04,
            Self::SpliceInsert(_) => 0x05,
            Self::TimeSignal(_) => 0x06,
            Self::BandwidthReservation => 0x07,
            Self::PrivateCommand(_) => 0xFF,
        }
    }

    /// Decodes the command body (after `splice_command_type`). `bounded` says whether `r` holds exactly the
    /// command (a real `splice_command_length`) or the rest of the section (legacy 0xFFF).
    pub(crate) fn decode(
        command_type: u8,
        type_offset: usize,
        r: &mut BitReader<'_>,
        bounded: bool,
    ) -> Result<Self> {
        Ok(match command_type {
            0x00 => Self::SpliceNull,
            0x04 => Self::SpliceSchedule(SpliceSchedule::decode(r)?),
            0x05 => Self::SpliceInsert(SpliceInsert::decode(r)?),
            0x06 => Self::TimeSignal(TimeSignal {
                splice_time: SpliceTime::decode(r)?,
            }),
            0x07 => Self::BandwidthReservation,
            0xFF => {
                if !bounded {
                    return Err(Error::Invalid {
                        field: "splice_command_length",
                        reason: "private_command with the legacy 0xFFF length cannot be delimited",
                    });
                }
                let identifier = r.u32("identifier")?;
                let private_bytes = r.rest("private_byte")?.to_vec();
                Self::PrivateCommand(PrivateCommand {
                    identifier,
                    private_bytes,
                })
            }
            other => {
                return Err(Error::UnknownCommandType {
                    command_type: other,
                    offset: type_offset,
                });
            }
        })
    }

    pub(crate) fn encode(&self, w: &mut BitWriter) -> Result<()> {
        match self {
            Self::SpliceNull | Self::BandwidthReservation => Ok(()),
            Self::SpliceSchedule(s) => s.encode(w),
            Self::SpliceInsert(s) => s.encode(w),
            Self::TimeSignal(t) => t.splice_time.encode(w),
            Self::PrivateCommand(p) => {
                w.u32(p.identifier);
                w.bytes(&p.private_bytes, "private_byte")
            }
        }
    }
}

/// `time_signal()`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeSignal {
    /// The signalled time.
    pub splice_time: SpliceTime,
}

/// `private_command()`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivateCommand {
    /// Registered `identifier` (SMPTE RA format identifier).
    pub identifier: u32,
    /// `private_byte`s, hex in JSON.
    #[serde(with = "crate::serde_util::hex_bytes")]
    pub private_bytes: Vec<u8>,
}

/// `splice_insert()`. When `splice_event_cancel_indicator` is set, the fields after it are not carried and are
/// decoded as their defaults (and ignored on encode).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpliceInsert {
    /// `splice_event_id`.
    pub splice_event_id: u32,
    /// `splice_event_cancel_indicator`.
    pub splice_event_cancel_indicator: bool,
    /// Reserved 7 bits after the cancel indicator, when not all ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved1: Option<u8>,
    /// `out_of_network_indicator`: 1 leaves the network (break start), 0 returns.
    #[serde(default)]
    pub out_of_network_indicator: bool,
    /// `program_splice_flag`: 1 for a program splice, 0 for component splices.
    #[serde(default)]
    pub program_splice_flag: bool,
    /// `splice_immediate_flag`.
    #[serde(default)]
    pub splice_immediate_flag: bool,
    /// `event_id_compliance_flag` (SCTE 35 2023; a reserved bit, normally 1, before that).
    #[serde(default)]
    pub event_id_compliance_flag: bool,
    /// Reserved 3 bits after the flags, when not all ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved2: Option<u8>,
    /// Program splice time (program mode, not immediate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub splice_time: Option<SpliceTime>,
    /// Component splices (component mode).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<SpliceInsertComponent>,
    /// `break_duration()` when `duration_flag` is 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub break_duration: Option<BreakDuration>,
    /// `unique_program_id`.
    #[serde(default)]
    pub unique_program_id: u16,
    /// `avail_num`.
    #[serde(default)]
    pub avail_num: u8,
    /// `avails_expected`.
    #[serde(default)]
    pub avails_expected: u8,
}

/// One component of a component-mode `splice_insert()`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpliceInsertComponent {
    /// `component_tag`.
    pub component_tag: u8,
    /// `splice_time()`, absent when `splice_immediate_flag` is 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub splice_time: Option<SpliceTime>,
}

impl SpliceInsert {
    fn decode(r: &mut BitReader<'_>) -> Result<Self> {
        let mut s = Self {
            splice_event_id: r.u32("splice_event_id")?,
            splice_event_cancel_indicator: r.flag("splice_event_cancel_indicator")?,
            reserved1: r.reserved(7, "splice_insert.reserved")?,
            ..Self::default()
        };
        if s.splice_event_cancel_indicator {
            return Ok(s);
        }
        s.out_of_network_indicator = r.flag("out_of_network_indicator")?;
        s.program_splice_flag = r.flag("program_splice_flag")?;
        let duration_flag = r.flag("duration_flag")?;
        s.splice_immediate_flag = r.flag("splice_immediate_flag")?;
        s.event_id_compliance_flag = r.flag("event_id_compliance_flag")?;
        s.reserved2 = r.reserved(3, "splice_insert.reserved")?;
        if s.program_splice_flag && !s.splice_immediate_flag {
            s.splice_time = Some(SpliceTime::decode(r)?);
        }
        if !s.program_splice_flag {
            let count = r.u8("component_count")?;
            s.components = Vec::with_capacity(usize::from(count));
            for _ in 0..count {
                let component_tag = r.u8("component_tag")?;
                let splice_time = if s.splice_immediate_flag {
                    None
                } else {
                    Some(SpliceTime::decode(r)?)
                };
                s.components.push(SpliceInsertComponent {
                    component_tag,
                    splice_time,
                });
            }
        }
        if duration_flag {
            s.break_duration = Some(BreakDuration::decode(r)?);
        }
        s.unique_program_id = r.u16("unique_program_id")?;
        s.avail_num = r.u8("avail_num")?;
        s.avails_expected = r.u8("avails_expected")?;
        Ok(s)
    }

    fn encode(&self, w: &mut BitWriter) -> Result<()> {
        w.u32(self.splice_event_id);
        w.flag(self.splice_event_cancel_indicator);
        w.reserved(7, self.reserved1, "splice_insert.reserved")?;
        if self.splice_event_cancel_indicator {
            return Ok(());
        }
        w.flag(self.out_of_network_indicator);
        w.flag(self.program_splice_flag);
        w.flag(self.break_duration.is_some());
        w.flag(self.splice_immediate_flag);
        w.flag(self.event_id_compliance_flag);
        w.reserved(3, self.reserved2, "splice_insert.reserved")?;
        if self.program_splice_flag && !self.splice_immediate_flag {
            self.splice_time.unwrap_or_default().encode(w)?;
        }
        if !self.program_splice_flag {
            let count =
                u8::try_from(self.components.len()).map_err(|_| Error::ValueOutOfRange {
                    field: "component_count",
                    value: self.components.len() as u64,
                    bits: 8,
                })?;
            w.u8(count);
            for c in &self.components {
                w.u8(c.component_tag);
                if !self.splice_immediate_flag {
                    c.splice_time.unwrap_or_default().encode(w)?;
                }
            }
        }
        if let Some(d) = &self.break_duration {
            d.encode(w)?;
        }
        w.u16(self.unique_program_id);
        w.u8(self.avail_num);
        w.u8(self.avails_expected);
        Ok(())
    }
}

/// `splice_schedule()`: splice events at UTC times.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpliceSchedule {
    /// The scheduled events (`splice_count` is their number).
    pub events: Vec<ScheduledEvent>,
}

/// One event of a `splice_schedule()`. As in `splice_insert`, fields after a set cancel indicator are defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledEvent {
    /// `splice_event_id`.
    pub splice_event_id: u32,
    /// `splice_event_cancel_indicator`.
    pub splice_event_cancel_indicator: bool,
    /// Reserved 7 bits, when not all ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved1: Option<u8>,
    /// `out_of_network_indicator`.
    #[serde(default)]
    pub out_of_network_indicator: bool,
    /// Reserved 5 bits after the flags, when not all ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved2: Option<u8>,
    /// `utc_splice_time` (seconds since 1980-01-06 00:00 UTC, GPS epoch) for a program splice; `None` means
    /// component mode (`program_splice_flag` 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utc_splice_time: Option<u32>,
    /// Component splices (component mode).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<ScheduledComponent>,
    /// `break_duration()` when `duration_flag` is 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub break_duration: Option<BreakDuration>,
    /// `unique_program_id`.
    #[serde(default)]
    pub unique_program_id: u16,
    /// `avail_num`.
    #[serde(default)]
    pub avail_num: u8,
    /// `avails_expected`.
    #[serde(default)]
    pub avails_expected: u8,
}

/// One component of a component-mode scheduled event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledComponent {
    /// `component_tag`.
    pub component_tag: u8,
    /// `utc_splice_time`.
    pub utc_splice_time: u32,
}

impl SpliceSchedule {
    fn decode(r: &mut BitReader<'_>) -> Result<Self> {
        let count = r.u8("splice_count")?;
        let mut events = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            let mut e = ScheduledEvent {
                splice_event_id: r.u32("splice_event_id")?,
                splice_event_cancel_indicator: r.flag("splice_event_cancel_indicator")?,
                reserved1: r.reserved(7, "splice_schedule.reserved")?,
                ..ScheduledEvent::default()
            };
            if !e.splice_event_cancel_indicator {
                e.out_of_network_indicator = r.flag("out_of_network_indicator")?;
                let program = r.flag("program_splice_flag")?;
                let duration_flag = r.flag("duration_flag")?;
                e.reserved2 = r.reserved(5, "splice_schedule.reserved")?;
                if program {
                    e.utc_splice_time = Some(r.u32("utc_splice_time")?);
                } else {
                    let n = r.u8("component_count")?;
                    for _ in 0..n {
                        let component_tag = r.u8("component_tag")?;
                        let utc_splice_time = r.u32("utc_splice_time")?;
                        e.components.push(ScheduledComponent {
                            component_tag,
                            utc_splice_time,
                        });
                    }
                }
                if duration_flag {
                    e.break_duration = Some(BreakDuration::decode(r)?);
                }
                e.unique_program_id = r.u16("unique_program_id")?;
                e.avail_num = r.u8("avail_num")?;
                e.avails_expected = r.u8("avails_expected")?;
            }
            events.push(e);
        }
        Ok(Self { events })
    }

    fn encode(&self, w: &mut BitWriter) -> Result<()> {
        let count = u8::try_from(self.events.len()).map_err(|_| Error::ValueOutOfRange {
            field: "splice_count",
            value: self.events.len() as u64,
            bits: 8,
        })?;
        w.u8(count);
        for e in &self.events {
            w.u32(e.splice_event_id);
            w.flag(e.splice_event_cancel_indicator);
            w.reserved(7, e.reserved1, "splice_schedule.reserved")?;
            if e.splice_event_cancel_indicator {
                continue;
            }
            w.flag(e.out_of_network_indicator);
            w.flag(e.utc_splice_time.is_some());
            w.flag(e.break_duration.is_some());
            w.reserved(5, e.reserved2, "splice_schedule.reserved")?;
            if let Some(t) = e.utc_splice_time {
                w.u32(t);
            } else {
                let n = u8::try_from(e.components.len()).map_err(|_| Error::ValueOutOfRange {
                    field: "component_count",
                    value: e.components.len() as u64,
                    bits: 8,
                })?;
                w.u8(n);
                for c in &e.components {
                    w.u8(c.component_tag);
                    w.u32(c.utc_splice_time);
                }
            }
            if let Some(d) = &e.break_duration {
                d.encode(w)?;
            }
            w.u16(e.unique_program_id);
            w.u8(e.avail_num);
            w.u8(e.avails_expected);
        }
        Ok(())
    }
}
