//! HLS playlists per RFC 8216bis: a model, a parser tolerant of what real packagers emit, a writer, URI
//! resolution, and the reading of ad markers in every dialect into one break model ([`markers`]).
//!
//! Pure: no I/O and no clock. Tags the model does not interpret are kept in place and written back.
//!
//! ```
//! let text = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:7\n#EXT-X-CUE-OUT:30\n#EXTINF:2.000,\na.ts\n";
//! let playlist = interlude_hls::parse_media_playlist(text).unwrap();
//! let breaks = interlude_hls::markers::extract_breaks(&playlist);
//! assert_eq!(breaks[0].planned_duration, Some(30.0));
//! assert_eq!(playlist.to_string(), "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:7\n#EXT-X-CUE-OUT:30\n#EXTINF:2.000,\na.ts\n");
//! ```
//!
//! What the parser tolerates (a BOM, CRLF, a comment banner before `#EXTM3U`, ...) and what the marker reader
//! could not use (an SCTE-35 cue that does not decode) is reported with the source line:
//!
//! ```
//! let text = "# packager banner\n#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-OATCLS-SCTE35:/DAlAAAA\n#EXT-X-CUE-OUT:30.000,SignalID=9\n#EXTINF:2.000,\na.ts\n";
//! let parsed = interlude_hls::parse_media_playlist_with_warnings(text).unwrap();
//! assert_eq!(parsed.warnings[0].line, 1);
//! let found = parsed.breaks();
//! assert_eq!((found.breaks[0].id.as_str(), found.breaks[0].planned_duration), ("9", Some(30.0)));
//! assert!(found.breaks[0].warnings[0].starts_with("line 4: EXT-OATCLS-SCTE35: undecodable SCTE-35"));
//! ```

pub mod attributes;
pub mod markers;
pub mod model;
pub mod parse;
pub mod parsed;
pub mod resolve;
pub mod write;

mod error;

pub use attributes::AttributeList;
pub use error::{Error, Result};
pub use model::{
    ByteRange, MasterPlaylist, MediaPlaylist, MediaSegment, Playlist, Tag, VariantStream,
};
pub use parse::{
    parse_master_playlist, parse_master_playlist_with_warnings, parse_media_playlist,
    parse_media_playlist_with_warnings, parse_playlist, parse_playlist_with_warnings,
};
pub use parsed::{Parsed, SegmentLines, SourceLines, Warning};
