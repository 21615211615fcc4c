//! The crate's single error type. Reading errors name the element path (`VAST/Ad[2]/InLine/Creatives/
//! Creative[1]/Linear/Duration`), the byte offset and the line; writing errors name the path of what the
//! VAST 4.2 schema cannot express.

use crate::error_code::VastErrorCode;

/// Everything that can go wrong reading, writing or resolving VAST and VMAP.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The bytes are not well-formed XML (or nest deeper than the parser allows).
    #[error("malformed XML at line {line}, byte offset {offset}: {reason}")]
    Xml {
        /// Byte offset of the problem.
        offset: u64,
        /// 1-based line of the problem.
        line: u64,
        /// What is wrong.
        reason: String,
    },
    /// The root element is not `VAST` (or VAST 1's `VideoAdServingTemplate`), or `VMAP` for VMAP.
    #[error("expected a <{expected}> document, found <{found}> at line {line}")]
    WrongRoot {
        /// The root element expected.
        expected: &'static str,
        /// The root element found.
        found: String,
        /// 1-based line of the root element.
        line: u64,
    },
    /// The document declares a VAST version this reader does not support (it reads 1.x to 4.x).
    #[error("VAST version {version:?} is not supported (line {line})")]
    UnsupportedVersion {
        /// The `version` attribute (shortened to 64 characters).
        version: String,
        /// 1-based line of the root element.
        line: u64,
    },
    /// An attribute or element text does not hold a valid value of its type.
    #[error("{path}: invalid {field} {value:?} at line {line} (byte offset {offset}): {reason}")]
    InvalidValue {
        /// Path of the element.
        path: String,
        /// `@name` for an attribute, `text` for the element's content.
        field: String,
        /// The value found (shortened to 64 characters).
        value: String,
        /// Why it is invalid.
        reason: &'static str,
        /// Byte offset of the element's start tag.
        offset: u64,
        /// 1-based line of the element's start tag.
        line: u64,
    },
    /// A required attribute or child element is missing.
    #[error("{path}: missing {what} at line {line} (byte offset {offset})")]
    Missing {
        /// Path of the element that lacks it.
        path: String,
        /// `@name` for an attribute, the element name(s) otherwise.
        what: &'static str,
        /// Byte offset of the element's start tag.
        offset: u64,
        /// 1-based line of the element's start tag.
        line: u64,
    },
    /// The model holds something a VAST 4.2 (or VMAP 1.0) document cannot express.
    #[error("cannot write {path}: {reason}")]
    Unwritable {
        /// Path of the element in the document being written.
        path: String,
        /// Why.
        reason: String,
    },
    /// A [`Fetcher`](crate::resolve::Fetcher) could not get a document.
    #[error("fetching {uri} failed: {reason}")]
    Fetch {
        /// The URI.
        uri: String,
        /// Why (status, transport error, …).
        reason: String,
    },
}

impl Error {
    /// The VAST error code this failure earns (VAST 4.2 §2.3.6.3): 100 for what is not XML, 101 for XML that
    /// is not valid VAST (wrong root, a required element missing, a value of the wrong type), 102 for an
    /// unsupported version, 301 for a document that could not be fetched, 900 otherwise.
    pub fn vast_error_code(&self) -> VastErrorCode {
        match self {
            Error::Xml { .. } => VastErrorCode::XmlParse,
            Error::WrongRoot { .. } | Error::InvalidValue { .. } | Error::Missing { .. } => {
                VastErrorCode::SchemaValidation
            }
            Error::UnsupportedVersion { .. } => VastErrorCode::VersionNotSupported,
            Error::Fetch { .. } => VastErrorCode::Timeout,
            Error::Unwritable { .. } => VastErrorCode::Undefined,
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Shortens a value quoted in an error so that a huge input cannot make a huge message.
pub(crate) fn shorten(value: &str) -> String {
    const MAX: usize = 64;
    match value.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &value[..cut]),
        None => value.to_string(),
    }
}

/// 1-based line of `offset` in `input`.
pub(crate) fn line_of(input: &str, offset: usize) -> u64 {
    let end = offset.min(input.len());
    input.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count() as u64
        + 1
}
