//! The playlist model (RFC 8216bis §4): master and media playlists, with every tag the stitcher does not
//! interpret kept as a [`Tag`] in its place so that it is written back.

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};

use crate::attributes::AttributeList;

/// A tag kept as written: its name (without `#`) and the text after the colon, if any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    /// Name without the leading `#`, e.g. `EXT-X-CUE-OUT`.
    pub name: String,
    /// Text after the first `:`, if there was one.
    pub value: Option<String>,
}

impl Tag {
    /// A tag from its name and value.
    pub fn new(name: impl Into<String>, value: Option<String>) -> Self {
        Tag {
            name: name.into(),
            value,
        }
    }

    /// The value parsed as an attribute list, if it is one.
    pub fn attributes(&self) -> Option<AttributeList> {
        AttributeList::parse(self.value.as_deref()?).ok()
    }
}

/// `EXT-X-BYTERANGE` (RFC 8216bis §4.4.4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ByteRange {
    /// Length in bytes.
    pub length: u64,
    /// Offset, when given.
    pub offset: Option<u64>,
}

/// One media segment and the tags that apply to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MediaSegment {
    /// The segment URI.
    pub uri: String,
    /// `EXTINF` duration in seconds.
    pub duration: f64,
    /// `EXTINF` title, when present.
    pub title: Option<String>,
    /// `EXT-X-BYTERANGE`.
    pub byte_range: Option<ByteRange>,
    /// Preceded by `EXT-X-DISCONTINUITY`.
    pub discontinuity: bool,
    /// `EXT-X-KEY` lines that precede this segment (the key in force applies until the next one).
    pub keys: Vec<AttributeList>,
    /// `EXT-X-MAP` preceding this segment.
    pub map: Option<AttributeList>,
    /// `EXT-X-PROGRAM-DATE-TIME` on this segment.
    pub program_date_time: Option<DateTime<FixedOffset>>,
    /// `EXT-X-GAP`.
    pub gap: bool,
    /// `EXT-X-BITRATE` preceding this segment.
    pub bitrate: Option<u64>,
    /// `EXT-X-DATERANGE` tags preceding this segment.
    pub dateranges: Vec<AttributeList>,
    /// Every other tag preceding this segment (ad markers, vendor tags, comments are dropped), in order.
    pub tags: Vec<Tag>,
}

impl MediaSegment {
    /// A plain segment.
    pub fn new(uri: impl Into<String>, duration: f64) -> Self {
        MediaSegment {
            uri: uri.into(),
            duration,
            title: None,
            byte_range: None,
            discontinuity: false,
            keys: Vec::new(),
            map: None,
            program_date_time: None,
            gap: false,
            bitrate: None,
            dateranges: Vec::new(),
            tags: Vec::new(),
        }
    }
}

/// A media playlist (RFC 8216bis §4.4.3).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MediaPlaylist {
    /// `EXT-X-VERSION`.
    pub version: Option<u64>,
    /// `EXT-X-TARGETDURATION` in seconds.
    pub target_duration: u64,
    /// `EXT-X-MEDIA-SEQUENCE` (0 when absent).
    pub media_sequence: u64,
    /// `EXT-X-DISCONTINUITY-SEQUENCE` (0 when absent).
    pub discontinuity_sequence: u64,
    /// `EXT-X-PLAYLIST-TYPE` (`EVENT` or `VOD`).
    pub playlist_type: Option<String>,
    /// `EXT-X-ENDLIST`.
    pub end_list: bool,
    /// `EXT-X-I-FRAMES-ONLY`.
    pub i_frames_only: bool,
    /// `EXT-X-INDEPENDENT-SEGMENTS`.
    pub independent_segments: bool,
    /// Other playlist-level tags (`EXT-X-START`, `EXT-X-SERVER-CONTROL`, `EXT-X-PART-INF`, unknown), in order.
    pub header_tags: Vec<Tag>,
    /// The segments.
    pub segments: Vec<MediaSegment>,
    /// Tags after the last segment (a trailing `EXT-X-CUE-IN`, `EXT-X-PRELOAD-HINT`, …).
    pub trailing_tags: Vec<Tag>,
    /// `EXT-X-DATERANGE` tags after the last segment.
    pub trailing_dateranges: Vec<AttributeList>,
}

/// One `EXT-X-STREAM-INF` variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VariantStream {
    /// The variant's media playlist URI.
    pub uri: String,
    /// Its attributes (BANDWIDTH, CODECS, RESOLUTION, …), in order.
    pub attributes: AttributeList,
    /// Unknown tags between its `EXT-X-STREAM-INF` and its URI, written back there.
    pub tags: Vec<Tag>,
}

impl VariantStream {
    /// `BANDWIDTH` (0 when missing, which RFC 8216bis forbids but packagers emit).
    pub fn bandwidth(&self) -> u64 {
        self.attributes.get_u64("BANDWIDTH").unwrap_or(0)
    }

    /// `RESOLUTION`.
    pub fn resolution(&self) -> Option<(u32, u32)> {
        self.attributes.get_resolution("RESOLUTION")
    }
}

/// A master (multivariant) playlist (RFC 8216bis §4.4.6).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MasterPlaylist {
    /// `EXT-X-VERSION`.
    pub version: Option<u64>,
    /// `EXT-X-INDEPENDENT-SEGMENTS`.
    pub independent_segments: bool,
    /// `EXT-X-MEDIA` renditions.
    pub media: Vec<AttributeList>,
    /// `EXT-X-STREAM-INF` variants.
    pub variants: Vec<VariantStream>,
    /// `EXT-X-I-FRAME-STREAM-INF`.
    pub i_frame_variants: Vec<AttributeList>,
    /// `EXT-X-SESSION-DATA`.
    pub session_data: Vec<AttributeList>,
    /// `EXT-X-SESSION-KEY`.
    pub session_keys: Vec<AttributeList>,
    /// Other tags (`EXT-X-START`, `EXT-X-DEFINE`, `EXT-X-CONTENT-STEERING`, unknown), in order.
    pub tags: Vec<Tag>,
}

/// Either kind of playlist.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Playlist {
    /// A master playlist.
    Master(MasterPlaylist),
    /// A media playlist.
    Media(MediaPlaylist),
}
