//! Errors of the outbox: the store (redb or PostgreSQL), the configuration, a pixel that cannot be stored.

/// Result of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong in the outbox.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The embedded store (redb) failed; `op` says during what.
    #[error("outbox store ({op}): {reason}")]
    Store {
        /// The operation, e.g. `enqueue`, `lease`.
        op: &'static str,
        /// What the store said.
        reason: String,
    },
    /// PostgreSQL failed.
    #[cfg(feature = "postgres")]
    #[error("outbox store (PostgreSQL, {op}): {source}")]
    Postgres {
        /// The operation, e.g. `enqueue`, `lease`.
        op: &'static str,
        /// The driver's error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// A stored record does not decode (a file written by an incompatible version, or damaged).
    #[error("outbox record {id}: {reason}")]
    Corrupt {
        /// The record's id.
        id: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// The configuration is not usable.
    #[error("config `outbox.{key}`: {reason}")]
    Config {
        /// The key under `[outbox]`.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The guarded client could not be built.
    #[error(transparent)]
    Client(#[from] interlude_outbound::Error),
    /// The dispatcher has stopped; nothing more is accepted.
    #[error("the outbox is shut down")]
    Closed,
}

impl Error {
    pub(crate) fn store(op: &'static str, e: impl std::fmt::Display) -> Error {
        Error::Store {
            op,
            reason: e.to_string(),
        }
    }
}
