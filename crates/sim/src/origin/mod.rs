//! The live origin simulator: a live HLS channel of real media with SCTE-35 ad breaks on a schedule, in a
//! configurable marker dialect — the packager the stitcher is tested against.
//!
//! Every channel is served in two packagings of the same media, timeline and markers: MPEG-TS under its id
//! (`/live/live1/…`) and CMAF (fragmented MP4) under the id with `-cmaf` appended (`/live/live1-cmaf/…`), so a
//! stitcher is pointed at either as at two channels.
//!
//! Channel time is derived from wall-clock time minus a fixed epoch, so every process (and every test with the
//! same clock) agrees on which segment is live; the playlist is a pure function of "now" ([`timeline`]).

pub mod http;
pub mod timeline;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use http::{ORIGIN_REQUESTS, OriginState, describe_metrics, router};
pub use timeline::Timeline;

/// How breaks are marked in the media playlist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum MarkerDialect {
    /// `EXT-X-CUE-OUT:DURATION=…`, `EXT-X-CUE-OUT-CONT:ElapsedTime=…,Duration=…,SCTE35=…`, `EXT-X-CUE-IN`.
    #[default]
    CueOut,
    /// `EXT-X-DATERANGE` with `SCTE35-OUT` and `PLANNED-DURATION`, then the same ID with `SCTE35-IN`,
    /// `END-DATE` and `DURATION`.
    Daterange,
    /// `EXT-OATCLS-SCTE35` + `EXT-X-ASSET` + `EXT-X-CUE-OUT:30.000`, `EXT-X-CUE-OUT-CONT:elapsed/duration`,
    /// `EXT-X-CUE-IN`.
    Oatcls,
}

/// Which SCTE-35 command signals the break.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CueSignal {
    /// splice_insert with out_of_network_indicator 1 (and 0 at the end) and a break_duration.
    #[default]
    SpliceInsert,
    /// time_signal with a segmentation descriptor: provider placement opportunity start (0x34) / end (0x35).
    TimeSignal,
}

/// The simulated channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OriginConfig {
    /// Channel id, used in URLs (`/live/{channel}/master.m3u8`).
    pub channel: String,
    /// Segments in the live window.
    pub window_segments: u64,
    /// Seconds from one break start to the next.
    pub break_interval_secs: u64,
    /// Break length in seconds (a multiple of the 2 s segment duration).
    pub break_duration_secs: u64,
    /// Seconds after the epoch the first break starts (a multiple of 2).
    pub first_break_secs: u64,
    /// Marker dialect.
    pub dialect: MarkerDialect,
    /// SCTE-35 command used.
    pub signal: CueSignal,
    /// The instant channel time counts from; every process with the same epoch serves the same channel.
    pub epoch: DateTime<Utc>,
}

fn default_epoch() -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default() // 2026-01-01T00:00:00Z
}

impl Default for OriginConfig {
    fn default() -> Self {
        OriginConfig {
            channel: "live1".to_owned(),
            window_segments: 6,
            break_interval_secs: 120,
            break_duration_secs: 30,
            first_break_secs: 30,
            dialect: MarkerDialect::CueOut,
            signal: CueSignal::SpliceInsert,
            epoch: default_epoch(),
        }
    }
}

/// The channel id under which the origin serves the CMAF packaging of channel `channel`.
pub fn cmaf_channel(channel: &str) -> String {
    format!("{channel}{CMAF_SUFFIX}")
}

/// Appended to a channel's id to name its CMAF packaging (`live1` → `live1-cmaf`).
pub const CMAF_SUFFIX: &str = "-cmaf";

/// A configuration value that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("origin.{key} {reason}")]
pub struct ConfigError {
    /// The key under `[origin]`.
    pub key: &'static str,
    /// Why.
    pub reason: String,
}

impl OriginConfig {
    /// Checks the values types cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |key, reason: &str| {
            Err(ConfigError {
                key,
                reason: reason.to_owned(),
            })
        };
        let seg = crate::media::SEGMENT_SECS;
        if self.channel.is_empty()
            || !self
                .channel
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return err(
                "channel",
                "must be non-empty and use only A-Z, a-z, 0-9, - and _",
            );
        }
        if !(3..=100).contains(&self.window_segments) {
            return err(
                "window_segments",
                "must be between 3 and 100 (RFC 8216bis asks for at least 3 target durations)",
            );
        }
        if self.break_duration_secs == 0 || self.break_duration_secs % seg != 0 {
            return err(
                "break_duration_secs",
                "must be a positive multiple of the 2 s segment duration",
            );
        }
        if self.first_break_secs % seg != 0 || self.break_interval_secs % seg != 0 {
            return err(
                "break_interval_secs",
                "and first_break_secs must be multiples of the 2 s segment duration",
            );
        }
        if self.break_duration_secs >= self.break_interval_secs {
            return err(
                "break_duration_secs",
                "must be shorter than origin.break_interval_secs",
            );
        }
        Ok(())
    }
}
