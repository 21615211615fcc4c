//! `splice_time()` (ANSI/SCTE 35 §9.8.1) and `break_duration()` (§9.8.2): 33-bit 90 kHz values.

use serde::{Deserialize, Serialize};

use crate::bits::{BitReader, BitWriter};
use crate::error::Result;

/// `splice_time()`: a PTS when `time_specified_flag` is 1.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpliceTime {
    /// `pts_time` in 90 kHz ticks; `None` when `time_specified_flag` is 0.
    #[serde(flatten, with = "crate::serde_util::pts_time")]
    pub pts_time: Option<u64>,
    /// Reserved bits when they were not all ones (6 bits with a time, 7 without), kept for exact round trips.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved: Option<u8>,
}

impl SpliceTime {
    /// A specified time.
    #[must_use]
    pub fn at(pts_time: u64) -> Self {
        Self {
            pts_time: Some(pts_time),
            reserved: None,
        }
    }

    pub(crate) fn decode(r: &mut BitReader<'_>) -> Result<Self> {
        if r.flag("time_specified_flag")? {
            let reserved = r.reserved(6, "splice_time.reserved")?;
            let pts = r.bits(33, "pts_time")?;
            Ok(Self {
                pts_time: Some(pts),
                reserved,
            })
        } else {
            Ok(Self {
                pts_time: None,
                reserved: r.reserved(7, "splice_time.reserved")?,
            })
        }
    }

    pub(crate) fn encode(&self, w: &mut BitWriter) -> Result<()> {
        match self.pts_time {
            Some(pts) => {
                w.flag(true);
                w.reserved(6, self.reserved, "splice_time.reserved")?;
                w.bits(33, pts, "pts_time")
            }
            None => {
                w.flag(false);
                w.reserved(7, self.reserved, "splice_time.reserved")
            }
        }
    }
}

/// `break_duration()`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakDuration {
    /// `auto_return`: the splicer returns to the network when the duration ends.
    pub auto_return: bool,
    /// Reserved bits (6) when not all ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved: Option<u8>,
    /// `duration` in 90 kHz ticks (33 bits).
    #[serde(flatten, with = "crate::serde_util::duration")]
    pub duration: u64,
}

impl BreakDuration {
    pub(crate) fn decode(r: &mut BitReader<'_>) -> Result<Self> {
        let auto_return = r.flag("auto_return")?;
        let reserved = r.reserved(6, "break_duration.reserved")?;
        let duration = r.bits(33, "duration")?;
        Ok(Self {
            auto_return,
            reserved,
            duration,
        })
    }

    pub(crate) fn encode(&self, w: &mut BitWriter) -> Result<()> {
        w.flag(self.auto_return);
        w.reserved(6, self.reserved, "break_duration.reserved")?;
        w.bits(33, self.duration, "duration")
    }
}
