//! The crate's one error type: every variant says what is wrong and where (line and field of a table, field
//! and bit offset of a consent string), so an operator can fix a table and a support engineer can tell a
//! player vendor which bit of their consent string is broken.

/// What went wrong, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A row of the geo table (`cidr,country,region`) is not valid.
    #[error("geo table line {line}: field {field} {value:?}: {reason}")]
    GeoRow {
        /// 1-based line number in the CSV text.
        line: usize,
        /// `cidr`, `country` or `region` (or `row` for the shape of the row).
        field: &'static str,
        /// The offending text.
        value: String,
        /// Why it was refused.
        reason: String,
    },
    /// A line of a user-agent rule table (`needles,platform,class`) is not valid.
    #[error("user-agent rules line {line}: field {field} {value:?}: {reason}")]
    UaRule {
        /// 1-based line number.
        line: usize,
        /// `needles`, `platform`, `class` or `row`.
        field: &'static str,
        /// The offending text.
        value: String,
        /// Why it was refused.
        reason: String,
    },
    /// A character that is not in the base64url alphabet (RFC 4648 §5) where a consent string needs one.
    #[error("{signal}: character {found:?} at position {position} is not base64url")]
    Base64 {
        /// Which signal (`TC string`, `GPP header`, `GPP usnat section`, …).
        signal: &'static str,
        /// 0-based character position in the encoded segment.
        position: usize,
        /// The character.
        found: char,
    },
    /// The encoded data ends inside a field.
    #[error(
        "{signal}: field {field} at bit {bit_offset} needs {needed} bits, only {available} left"
    )]
    Truncated {
        /// Which signal.
        signal: &'static str,
        /// The field being read (spelled as the specification spells it).
        field: &'static str,
        /// Bit offset of the field in its segment.
        bit_offset: usize,
        /// Bits the field needs.
        needed: usize,
        /// Bits that were left.
        available: usize,
    },
    /// A field holds a value the specification does not allow.
    #[error("{signal}: field {field} at bit {bit_offset}: {reason}")]
    InvalidField {
        /// Which signal.
        signal: &'static str,
        /// The field (spelled as the specification spells it).
        field: &'static str,
        /// Bit offset of the field in its segment.
        bit_offset: usize,
        /// What is wrong with the value.
        reason: String,
    },
    /// A US Privacy string (CCPA, IAB "US Privacy String" v1) is not valid.
    #[error("US Privacy string {value:?}: {reason} (character {position})")]
    UsPrivacy {
        /// The string as sent (at most 16 characters of it).
        value: String,
        /// 0-based character position of the problem.
        position: usize,
        /// What is wrong.
        reason: String,
    },
    /// A GPP string's structure (sections separated by `~`) does not match its header.
    #[error("GPP string: {reason}")]
    GppStructure {
        /// What is wrong.
        reason: String,
    },
    /// A configuration value is unusable.
    #[error("privacy configuration: {key}: {reason}")]
    Config {
        /// The key (e.g. `pseudonym.rotation_secs`).
        key: &'static str,
        /// Why.
        reason: String,
    },
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
