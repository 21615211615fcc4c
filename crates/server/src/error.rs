//! The server crate's error type.

use std::net::SocketAddr;

/// Everything that can go wrong while configuring or starting an Interlude process.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration could not be read or does not type-check.
    #[error("invalid configuration: {0}")]
    ConfigLoad(Box<figment::Error>),
    /// A configuration value is well-typed but not acceptable.
    #[error("invalid configuration: `{key}` {reason}")]
    ConfigValue {
        /// Dotted path of the offending key, e.g. `server.listen`.
        key: String,
        /// Why the value is rejected.
        reason: String,
    },
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address that was asked for.
        addr: SocketAddr,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// Logging or metrics could not be installed.
    #[error("cannot set up telemetry: {0}")]
    Telemetry(String),
}

impl From<figment::Error> for Error {
    fn from(e: figment::Error) -> Self {
        Error::ConfigLoad(Box::new(e))
    }
}

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
