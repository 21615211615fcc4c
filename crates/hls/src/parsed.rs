//! What the parser noticed besides the playlist: warnings about input it accepted although RFC 8216bis
//! does not allow it (a UTF-8 BOM, CRLF line ends, comments before `#EXTM3U`, ...), and the source line of
//! every tag, so that later readers (the ad-marker reader) can name the line they complain about.
//!
//! Kept outside the playlist model on purpose: the model compares equal after a write → parse round trip,
//! and line numbers or warnings of the original text do not survive writing.

use std::fmt;

use serde::Serialize;

/// Something the parser accepted but that a strict reader would reject or that was changed on reading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// 1-based line number in the source text.
    pub line: usize,
    /// What was found and what was done about it.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Source lines of the tags of one segment (or of the tags after the last segment), parallel to
/// [`MediaSegment::tags`](crate::MediaSegment::tags) and [`MediaSegment::dateranges`](crate::MediaSegment::dateranges).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SegmentLines {
    /// Line of each entry of `tags`.
    pub tags: Vec<usize>,
    /// Line of each entry of `dateranges`.
    pub dateranges: Vec<usize>,
}

/// Source lines of a media playlist's tags: one entry per segment, then the trailing tags.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SourceLines {
    /// Per segment, in order.
    pub segments: Vec<SegmentLines>,
    /// The tags and date ranges after the last segment.
    pub trailing: SegmentLines,
}

impl SourceLines {
    /// Line of tag `index` of segment `segment` (`segment == segments.len()` for the trailing tags).
    pub fn tag(&self, segment: usize, index: usize) -> Option<usize> {
        self.at(segment)?.tags.get(index).copied()
    }

    /// Line of date range `index` of segment `segment` (`segments.len()` for the trailing ones).
    pub fn daterange(&self, segment: usize, index: usize) -> Option<usize> {
        self.at(segment)?.dateranges.get(index).copied()
    }

    fn at(&self, segment: usize) -> Option<&SegmentLines> {
        match segment.cmp(&self.segments.len()) {
            std::cmp::Ordering::Less => self.segments.get(segment),
            std::cmp::Ordering::Equal => Some(&self.trailing),
            std::cmp::Ordering::Greater => None,
        }
    }
}

/// A parsed playlist with the warnings met while reading it and, for media playlists, the source lines of
/// its tags.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Parsed<T> {
    /// The playlist.
    pub playlist: T,
    /// What was accepted although it is not valid RFC 8216bis, in line order.
    pub warnings: Vec<Warning>,
    /// Source lines of the tags (empty for master playlists).
    pub lines: SourceLines,
}
