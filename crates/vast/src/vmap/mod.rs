//! VMAP 1.0 (IAB Video Multiple Ad Playlist): where the ad breaks of a piece of content go and where their
//! ads come from. Model, reader and writer.
//!
//! An `AdBreak` has a `timeOffset` (`start`, `end`, `HH:MM:SS[.mmm]`, `n%` of the content, or `#n`, the
//! n-th cue point), a `breakType`, and an `AdSource` holding the ads inline (`VASTAdData`, written as VAST
//! 4.2 by this crate's writer), a VAST tag to fetch (`AdTagURI`) or custom data; its `TrackingEvents` are
//! `breakStart`, `breakEnd` and `error`.
//!
//! Read by local name like VAST (`vmap:` prefix or none; `VASTData`, used by some servers, reads as
//! `VASTAdData`); elements outside this model are not kept. Written with the `vmap:` prefix.

mod read;
mod write;

pub use read::parse_vmap;
pub use write::{WRITTEN_VMAP_VERSION, write_vmap};

use std::fmt;

use crate::model::{Extension, Vast};
use crate::time::{Percent, Time};

/// The VMAP namespace.
pub const VMAP_NAMESPACE: &str = "http://www.iab.net/videosuite/vmap";

/// A VMAP document.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Vmap {
    /// `version` as declared (`1.0`); the writer declares 1.0.
    pub version: String,
    /// The breaks, in document order.
    pub ad_breaks: Vec<AdBreak>,
    /// Document-level `Extensions`, raw.
    pub extensions: Vec<Extension>,
}

/// `AdBreak`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdBreak {
    /// `timeOffset`: where the break goes.
    pub time_offset: TimeOffset,
    /// `breakType`: one or more of linear, nonlinear, display.
    pub break_types: Vec<BreakType>,
    /// `breakId`.
    pub break_id: Option<String>,
    /// `repeatAfter`: repeat the break this often.
    pub repeat_after: Option<Time>,
    /// `AdSource`.
    pub ad_source: Option<AdSource>,
    /// `TrackingEvents`.
    pub tracking: Vec<BreakTracking>,
    /// `Extensions`, raw.
    pub extensions: Vec<Extension>,
}

/// `AdBreak@timeOffset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeOffset {
    /// `start`: a pre-roll.
    Start,
    /// `end`: a post-roll.
    End,
    /// `HH:MM:SS[.mmm]` into the content.
    Time(Time),
    /// `n%` of the content's duration.
    Percent(Percent),
    /// `#n`: the n-th cue point (1-based).
    Position(u32),
}

impl TimeOffset {
    /// Parses any of the five forms.
    pub fn parse(text: &str) -> Result<TimeOffset, &'static str> {
        let text = text.trim();
        match text {
            "start" => Ok(TimeOffset::Start),
            "end" => Ok(TimeOffset::End),
            _ if text.starts_with('#') => match text[1..].parse::<u32>() {
                Ok(n) if n >= 1 && text[1..].bytes().all(|b| b.is_ascii_digit()) => {
                    Ok(TimeOffset::Position(n))
                }
                _ => Err("a position is # and a number from 1"),
            },
            _ if text.ends_with('%') => Percent::parse(text).map(TimeOffset::Percent),
            _ => Time::parse(text)
                .map(TimeOffset::Time)
                .map_err(|_| "expected start, end, HH:MM:SS[.mmm], n% or #n"),
        }
    }
}

impl fmt::Display for TimeOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimeOffset::Start => f.write_str("start"),
            TimeOffset::End => f.write_str("end"),
            TimeOffset::Time(t) => t.fmt(f),
            TimeOffset::Percent(p) => p.fmt(f),
            TimeOffset::Position(n) => write!(f, "#{n}"),
        }
    }
}

/// A `breakType` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BreakType {
    /// `linear`.
    Linear,
    /// `nonlinear`.
    NonLinear,
    /// `display`.
    Display,
}

impl BreakType {
    /// The attribute value.
    pub const fn as_str(self) -> &'static str {
        match self {
            BreakType::Linear => "linear",
            BreakType::NonLinear => "nonlinear",
            BreakType::Display => "display",
        }
    }

    fn parse(s: &str) -> Option<BreakType> {
        match s.trim() {
            v if v.eq_ignore_ascii_case("linear") => Some(BreakType::Linear),
            v if v.eq_ignore_ascii_case("nonlinear") => Some(BreakType::NonLinear),
            v if v.eq_ignore_ascii_case("display") => Some(BreakType::Display),
            _ => None,
        }
    }

    /// Parses the comma-separated list.
    pub fn parse_list(s: &str) -> Result<Vec<BreakType>, &'static str> {
        let types: Option<Vec<BreakType>> = s.split(',').map(BreakType::parse).collect();
        match types {
            Some(t) if !t.is_empty() => Ok(t),
            _ => Err("expected linear, nonlinear or display, comma-separated"),
        }
    }
}

/// `AdSource`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdSource {
    /// `id`.
    pub id: Option<String>,
    /// `allowMultipleAds`: whether a pod may fill the break.
    pub allow_multiple_ads: Option<bool>,
    /// `followRedirects`: whether VAST wrappers may be followed.
    pub follow_redirects: Option<bool>,
    /// Where the ads are.
    pub data: AdSourceData,
}

/// The content of an `AdSource`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdSourceData {
    /// `VASTAdData`: the ads inline.
    VastAdData(Box<Vast>),
    /// `AdTagURI`: a VAST tag to request.
    AdTagUri {
        /// `templateType` (`vast3`, `vast4`, …).
        template_type: String,
        /// The tag.
        uri: String,
    },
    /// `CustomAdData`, raw.
    CustomAdData {
        /// `templateType`.
        template_type: String,
        /// The content, raw XML.
        xml: String,
    },
}

/// `Tracking` of an `AdBreak`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakTracking {
    /// `event`.
    pub event: BreakEvent,
    /// The URI.
    pub url: String,
}

/// `Tracking@event` of an `AdBreak`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BreakEvent {
    /// `breakStart`.
    BreakStart,
    /// `breakEnd`.
    BreakEnd,
    /// `error` (with `[ERRORCODE]`).
    Error,
    /// Another name, kept.
    Other(String),
}

impl BreakEvent {
    /// The attribute value.
    pub fn as_str(&self) -> &str {
        match self {
            BreakEvent::BreakStart => "breakStart",
            BreakEvent::BreakEnd => "breakEnd",
            BreakEvent::Error => "error",
            BreakEvent::Other(s) => s,
        }
    }

    /// Reads an event name.
    pub fn parse(s: &str) -> BreakEvent {
        match s.trim() {
            "breakStart" => BreakEvent::BreakStart,
            "breakEnd" => BreakEvent::BreakEnd,
            "error" => BreakEvent::Error,
            other => BreakEvent::Other(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_offsets_in_all_five_forms() {
        for (text, offset) in [
            ("start", TimeOffset::Start),
            ("end", TimeOffset::End),
            ("00:10:00.500", TimeOffset::Time(Time::from_millis(600_500))),
            (
                "50%",
                TimeOffset::Percent(Percent::from_whole(50).expect("≤ 100")),
            ),
            ("#3", TimeOffset::Position(3)),
        ] {
            assert_eq!(TimeOffset::parse(text), Ok(offset));
            assert_eq!(offset.to_string(), text);
        }
        for bad in ["#0", "#", "#-1", "#1x", "middle", "101%", "10:00"] {
            assert!(TimeOffset::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn break_types_are_a_comma_separated_list() {
        assert_eq!(
            BreakType::parse_list("linear,nonlinear"),
            Ok(vec![BreakType::Linear, BreakType::NonLinear])
        );
        assert!(BreakType::parse_list("linear,,display").is_err());
        assert!(BreakType::parse_list("").is_err());
    }
}
