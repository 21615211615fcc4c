//! Why a stitcher request failed; mapped to HTTP statuses by [`crate::error::ApiError`].

/// Why a stitcher request failed.
#[derive(Debug, thiserror::Error)]
pub enum StitchError {
    /// No such channel is configured.
    #[error("unknown channel {0:?}")]
    UnknownChannel(String),
    /// No such session (expired or never created).
    #[error("unknown session {0:?}")]
    UnknownSession(String),
    /// No such rendition for the channel.
    #[error("unknown rendition {0}")]
    UnknownRendition(usize),
    /// No such ad or segment in the session.
    #[error("unknown ad segment")]
    UnknownAdSegment,
    /// The origin has not answered recently enough to serve its window.
    #[error("origin for channel {0:?} unavailable")]
    OriginUnavailable(String),
    /// A segment to proxy could not be fetched.
    #[error(transparent)]
    Upstream(#[from] super::proxy::FetchError),
    /// The node is draining: existing sessions are served, new ones go elsewhere.
    #[error("this node is draining; start the session on another node")]
    Draining,
    /// The channel has no DASH origin configured.
    #[error("channel {0:?} is not offered as DASH (no dash_origin)")]
    NoDash(String),
    /// The DASH origin failed or sent an MPD that cannot be stitched.
    #[error("DASH origin: {0}")]
    DashOrigin(String),
    /// No such break on the channel (ended and gone from the window, or never seen).
    #[error(
        "unknown break {0:?}: not in the channel's live window (never signalled, or ended and gone)"
    )]
    UnknownBreak(String),
}

impl From<StitchError> for crate::error::ApiError {
    fn from(e: StitchError) -> Self {
        use crate::error::ApiError;
        let detail = e.to_string();
        match e {
            StitchError::UnknownChannel(_)
            | StitchError::UnknownSession(_)
            | StitchError::UnknownRendition(_)
            | StitchError::UnknownAdSegment
            | StitchError::NoDash(_)
            | StitchError::UnknownBreak(_) => ApiError::NotFound(detail),
            StitchError::DashOrigin(_)
            | StitchError::OriginUnavailable(_)
            | StitchError::Upstream(_) => ApiError::BadGateway(detail),
            StitchError::Draining => ApiError::unavailable(detail, None),
        }
    }
}
