//! The dash crate's error type: what is wrong with an MPD, an SCTE-35 signal, an `emsg` box or a stitching
//! plan, and where.

/// What went wrong, with the place in the document (an element path such as `MPD/Period[2]/AdaptationSet[1]`
/// or a byte offset) that shows where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The text is not well-formed XML.
    #[error("XML error at line {line} (byte {offset}): {reason}")]
    Xml {
        /// Byte offset of the problem.
        offset: u64,
        /// 1-based line of the problem.
        line: usize,
        /// What the XML reader reported.
        reason: String,
    },
    /// The root element is not `MPD` (ISO/IEC 23009-1 §5.3.1).
    #[error("root element is <{found}>, expected <MPD>")]
    NotAnMpd {
        /// The root element's name.
        found: String,
    },
    /// An attribute's value cannot be read as its type.
    #[error("{path}@{attribute}: {value:?} is not {expected}")]
    InvalidAttribute {
        /// Element path, e.g. `MPD/Period[1]/AdaptationSet[2]/SegmentTemplate`.
        path: String,
        /// Attribute name.
        attribute: String,
        /// The value found (truncated).
        value: String,
        /// What was expected, e.g. `an ISO 8601 duration`.
        expected: &'static str,
    },
    /// A required attribute is absent.
    #[error("{path}: required attribute @{attribute} is missing")]
    MissingAttribute {
        /// Element path.
        path: String,
        /// Attribute name.
        attribute: &'static str,
    },
    /// A value is out of the range its field allows, or the document breaks a rule the standard sets.
    #[error("{path}: {reason}")]
    Invalid {
        /// Element path (or the name of the field).
        path: String,
        /// Why.
        reason: String,
    },
    /// An ISO 8601 / xs:duration could not be read.
    #[error("{value:?} is not an xs:duration (ISO 8601 PnDTnHnMnS): {reason}")]
    BadDuration {
        /// The text (truncated).
        value: String,
        /// Why.
        reason: &'static str,
    },
    /// An xs:dateTime could not be read.
    #[error("{value:?} is not an xs:dateTime: {reason}")]
    BadDateTime {
        /// The text (truncated).
        value: String,
        /// Why.
        reason: String,
    },
    /// A SCTE-35 signal in an EventStream could not be read (SCTE 214-1 §6.7, SCTE-35 2023 XML schema).
    #[error("{path}: SCTE-35 signal: {reason}")]
    Scte35 {
        /// Element path of the `Event`.
        path: String,
        /// What is wrong (the binary decoder's message for `scte35:Binary`).
        reason: String,
    },
    /// An ISO BMFF box (`emsg`, ISO/IEC 23009-1 §5.10.3.3) is truncated or malformed.
    #[error("box at byte {offset}: {reason}")]
    BadBox {
        /// Byte offset of the box in the input.
        offset: usize,
        /// Why.
        reason: String,
    },
    /// A stitching plan cannot be applied to the content MPD.
    #[error("break {break_id:?}: {reason}")]
    BadPlan {
        /// The break's id.
        break_id: String,
        /// Why.
        reason: String,
    },
}

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Truncates a value quoted in an error message.
pub(crate) fn snippet(s: &str) -> String {
    const MAX: usize = 80;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// 1-based line of byte `offset` in `input`.
pub(crate) fn line_of(input: &str, offset: usize) -> usize {
    let end = offset.min(input.len());
    input.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}
