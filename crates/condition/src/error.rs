//! The crate's error type.

use std::path::PathBuf;

/// What went wrong while modelling, queueing or conditioning a creative.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A variant of the channel's master playlist cannot be described as a rendition to encode to.
    #[error("variant {uri:?}: {reason}")]
    Variant {
        /// The variant's URI.
        uri: String,
        /// Why.
        reason: String,
    },
    /// The channel's playlists say too little (no video variant, no segment duration, …).
    #[error("variant set: {0}")]
    VariantSet(String),
    /// A codec the conditioner cannot encode to (HE-AAC, VP9, …).
    #[error("cannot encode to codec {codec:?}")]
    UnsupportedCodec {
        /// The RFC 6381 string.
        codec: String,
    },
    /// The creative has no `MediaFile` or `Mezzanine` that can serve as a transcoding source.
    #[error("no usable source among {candidates} media files: {reasons}")]
    NoSource {
        /// How many files the creative offered.
        candidates: usize,
        /// Why each was refused.
        reasons: String,
    },
    /// A tool's output could not be read (ffprobe JSON, loudnorm's measurement, …).
    #[error("{tool} output: {reason}")]
    ToolOutput {
        /// `ffprobe`, `loudnorm`, …
        tool: &'static str,
        /// What was missing or malformed.
        reason: String,
    },
    /// A child process failed, timed out or could not be started.
    #[error("{program} failed: {reason}")]
    Process {
        /// The program.
        program: String,
        /// Exit status and the tail of its error output, or the spawn error.
        reason: String,
    },
    /// Fetching the source failed.
    #[error("fetching {uri}: {reason}")]
    Fetch {
        /// The source URI.
        uri: String,
        /// Why.
        reason: String,
    },
    /// A file-system operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The job store failed.
    #[error("job queue: {0}")]
    Queue(String),
    /// The job is no longer held by this worker (its lease ran out and another worker took it).
    #[error("job {id}: lease lost by worker {worker}")]
    LeaseLost {
        /// The job.
        id: String,
        /// The worker that thought it held it.
        worker: String,
    },
    /// No job has this id.
    #[error("no job {0}")]
    UnknownJob(String),
    /// Outputs were made but failed their quality checks.
    #[error("quality checks failed: {0}")]
    Quarantined(String),
    /// Configuration rejected at load.
    #[error("config {key}: {reason}")]
    Config {
        /// The offending key.
        key: &'static str,
        /// Why.
        reason: String,
    },
}

impl Error {
    /// An [`Error::Io`] for `path`.
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
