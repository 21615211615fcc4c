//! The store's error: which backend failed and how, typed so callers can tell an I/O failure (retry, turn
//! not-ready) from corrupt data or a refused request. Display says where; HTTP answers never echo it (the
//! server logs it with an id).

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The embedded database could not be opened, read or written.
    #[cfg(feature = "embedded")]
    #[error("embedded store: {0}")]
    Embedded(Box<redb::Error>),
    /// The embedded store's dedup state (fjall) could not be read or written.
    #[cfg(feature = "embedded")]
    #[error("embedded store, dedup state: {0}")]
    Dedup(Box<fjall::Error>),
    /// PostgreSQL failed.
    #[cfg(feature = "postgres")]
    #[error("postgresql: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// A PostgreSQL schema migration failed.
    #[cfg(feature = "postgres")]
    #[error("postgresql migration: {0}")]
    Migration(#[from] refinery::Error),
    /// The Kafka-protocol broker failed.
    #[cfg(feature = "kafka")]
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// Redis failed.
    #[cfg(feature = "redis")]
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// A file or directory could not be used.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, with the path.
        what: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A value could not be encoded for storage.
    #[error("encoding {what}: {source}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// The serde error.
        source: serde_json::Error,
    },
    /// A stored value could not be read back.
    #[error("event store: corrupt {table} entry: {reason}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// Why.
        reason: String,
    },
    /// The request cannot be carried out as asked (a replay into an existing store, a topic the broker
    /// refused to create, …); the message says why.
    #[error("{0}")]
    Refused(String),
    /// A group commit failed; nothing of the batches in it was stored.
    #[error("commit failed: {0}")]
    Commit(String),
    /// A background task the store ran panicked or was cancelled.
    #[error("store task: {0}")]
    Task(String),
    /// The store cannot take writes now: it is closed, or unhealthy after an I/O failure and being reopened.
    /// Retry later (see [`crate::Committer::submit_wait`]).
    #[error("{0}")]
    Unavailable(String),
}

impl Error {
    /// Whether this is an I/O failure (a full disk, a failing device): the kind a reopen can cure once the
    /// cause is gone, as opposed to refused requests or corrupt data.
    pub fn is_io(&self) -> bool {
        match self {
            Error::Io { .. } => true,
            #[cfg(feature = "embedded")]
            Error::Embedded(e) => matches!(**e, redb::Error::Io(_) | redb::Error::PreviousIo),
            // fjall refuses every write after a failed flush or sync ("poisoned") until reopened.
            #[cfg(feature = "embedded")]
            Error::Dedup(e) => matches!(
                **e,
                fjall::Error::Io(_) | fjall::Error::Poisoned | fjall::Error::Storage(_)
            ),
            _ => false,
        }
    }
}

/// A result with the store's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(feature = "embedded")]
macro_rules! embedded_error {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Error::Embedded(Box::new(e.into()))
            }
        }
    )*};
}
#[cfg(feature = "embedded")]
embedded_error!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

impl From<tokio::task::JoinError> for Error {
    fn from(e: tokio::task::JoinError) -> Self {
        Error::Task(e.to_string())
    }
}

#[cfg(feature = "embedded")]
impl From<fjall::Error> for Error {
    fn from(e: fjall::Error) -> Self {
        Error::Dedup(Box::new(e))
    }
}
