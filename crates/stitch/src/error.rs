//! The stitch crate's error type.

/// What can be wrong with the inputs to stitching.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An ad's segment list is empty or has a non-positive duration.
    #[error("ad {ad_instance_id}: segment {index} has duration {duration}, expected > 0")]
    BadAdSegment {
        /// The ad instance.
        ad_instance_id: String,
        /// Index of the segment in the creative.
        index: usize,
        /// The offending duration in seconds.
        duration: f64,
    },
    /// An ad has no segments at all.
    #[error("ad {ad_instance_id} has no segments")]
    EmptyAd {
        /// The ad instance.
        ad_instance_id: String,
    },
    /// The slate duration is not usable.
    #[error("slate segment duration {0} must be > 0")]
    BadSlate(f64),
    /// The origin window's segments are not consecutive.
    #[error("origin window is not contiguous at media sequence {msn}")]
    NonContiguousWindow {
        /// The first out-of-order media sequence number.
        msn: u64,
    },
    /// An origin playlist's URL is not absolute (relative URIs in it could not be resolved).
    #[error("bad playlist URL {0:?}")]
    BadUrl(String),
    /// A creative or slate playlist changes its init segment (`EXT-X-MAP`) between segments: stitching
    /// switches init segments only at ad boundaries.
    #[error(
        "playlist {0:?} changes EXT-X-MAP mid-way; one init segment per creative rendition is supported"
    )]
    SeveralMaps(String),
    /// An origin playlist does not parse.
    #[error(transparent)]
    Playlist(#[from] interlude_hls::Error),
}

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
