//! The crate's error type: what went wrong outside validation (validation refusals are
//! [`crate::Quarantine`] reasons, an outcome, not an error).

/// An error of the event core.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tracking token could not be issued or verified.
    #[error(transparent)]
    Token(#[from] crate::token::TokenError),
}

/// A result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
