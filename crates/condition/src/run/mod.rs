//! The I/O side of conditioning: child processes ([`tools`]), measuring outputs ([`measure`]), and running a
//! claimed job (`job`, used by the [`crate::pool`]).

pub(crate) mod job;
pub mod measure;
pub mod tools;

/// What a worker pool reports while it works (for logs, metrics and tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolEvent {
    /// A worker took a job.
    Claimed {
        /// The job.
        job: String,
    },
    /// A rendition is being encoded.
    RenditionStarted {
        /// The job.
        job: String,
        /// The rendition.
        rendition: String,
    },
    /// A rendition was already done (earlier attempt, or another worker) and was not redone.
    RenditionSkipped {
        /// The job.
        job: String,
        /// The rendition.
        rendition: String,
    },
    /// A rendition was encoded, checked and recorded.
    RenditionReady {
        /// The job.
        job: String,
        /// The rendition.
        rendition: String,
    },
    /// A job ended: `Ready`, or the failure.
    Finished {
        /// The job.
        job: String,
        /// `ready` or the reason.
        outcome: String,
    },
}
