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
    /// The node holds as many sessions as it may (`stitcher.max_sessions`).
    #[error("this node is at its session cap; start the session on another node")]
    SessionCap,
    /// The client started sessions faster than `stitcher.session_rate_per_ip` allows.
    #[error("too many sessions started from this address; retry in {retry_after_secs} s")]
    RateLimited {
        /// Seconds until the client may start another.
        retry_after_secs: u32,
    },
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

/// `Retry-After` of a refusal at the session cap: sessions expire after their TTL, so room comes back within
/// seconds on a node whose viewers come and go.
const SESSION_CAP_RETRY_SECS: u32 = 5;

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
            StitchError::SessionCap => ApiError::unavailable(detail, Some(SESSION_CAP_RETRY_SECS)),
            StitchError::RateLimited { retry_after_secs } => ApiError::TooManyRequests {
                detail,
                retry_after: retry_after_secs,
            },
        }
    }
}
