//! The hls crate's error type.

/// What is wrong with a playlist, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The text does not start with `#EXTM3U` (RFC 8216bis §4.4.1.1).
    #[error("line {line}: playlist must start with #EXTM3U, found {found:?}")]
    MissingHeader {
        /// 1-based line number of the first non-blank line.
        line: usize,
        /// What was there instead (truncated).
        found: String,
    },
    /// A tag's value could not be read.
    #[error("line {line}: {tag}: {reason}")]
    InvalidTag {
        /// 1-based line number.
        line: usize,
        /// The tag name, e.g. `EXTINF`.
        tag: String,
        /// Why it is rejected.
        reason: String,
    },
    /// A media segment tag (`EXTINF`) was not followed by a URI line.
    #[error("line {line}: EXTINF without a segment URI before the end of the playlist")]
    MissingUri {
        /// Line of the `EXTINF`.
        line: usize,
    },
    /// A URI line appeared where no segment or variant tag announced one.
    #[error("line {line}: URI {uri:?} without a preceding EXTINF or EXT-X-STREAM-INF")]
    UnexpectedUri {
        /// 1-based line number.
        line: usize,
        /// The URI (truncated).
        uri: String,
    },
    /// The playlist mixes master and media playlist tags (RFC 8216bis §4.1).
    #[error("line {line}: {tag} in a {kind} playlist")]
    MixedPlaylist {
        /// 1-based line number.
        line: usize,
        /// The offending tag.
        tag: String,
        /// `master` or `media`, as decided by earlier lines.
        kind: &'static str,
    },
    /// A URI could not be resolved against the base.
    #[error("cannot resolve URI {uri:?}: {reason}")]
    BadUri {
        /// The URI.
        uri: String,
        /// Why.
        reason: String,
    },
}

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
