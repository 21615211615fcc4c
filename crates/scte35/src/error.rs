//! The crate's single error type: every malformed input maps to a variant naming the field and the byte offset.

/// Everything that can go wrong while decoding or encoding a `splice_info_section`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The input ended (or a length-delimited part ended) before `field` could be read.
    #[error("truncated input: `{field}` needs {needed_bits} bit(s) at byte offset {offset}")]
    Truncated {
        /// Name of the field, as spelled in ANSI/SCTE 35.
        field: &'static str,
        /// Byte offset in the section where the field starts.
        offset: usize,
        /// Bits the field needs.
        needed_bits: usize,
    },
    /// The first byte is not 0xFC.
    #[error("bad table_id 0x{found:02X} at byte offset 0 (expected 0xFC)")]
    BadTableId {
        /// The byte found.
        found: u8,
    },
    /// The section's CRC_32 does not match the bytes.
    #[error("bad CRC_32 at byte offset {offset}: computed 0x{expected:08X}, found 0x{found:08X}")]
    BadCrc {
        /// CRC computed over the section.
        expected: u32,
        /// CRC carried in the section.
        found: u32,
        /// Byte offset of the CRC_32 field.
        offset: usize,
    },
    /// `section_length` claims more bytes than the input holds, or fewer than the fixed header needs.
    #[error(
        "section_length {section_length} at byte offset 1 does not fit: {available} byte(s) follow it"
    )]
    SectionLength {
        /// Declared `section_length`.
        section_length: usize,
        /// Bytes available after the `section_length` field.
        available: usize,
    },
    /// A length field points past the end of its enclosing structure.
    #[error(
        "`{field}` = {length} at byte offset {offset} runs past the end ({available} byte(s) available)"
    )]
    LengthOverflow {
        /// The length field (`splice_command_length`, `descriptor_loop_length`, `descriptor_length`, ...).
        field: &'static str,
        /// Declared length.
        length: usize,
        /// Byte offset of the length field.
        offset: usize,
        /// Bytes actually available.
        available: usize,
    },
    /// A length field disagrees with the bytes its structure actually uses.
    #[error(
        "`{field}` = {declared} at byte offset {offset} but the structure uses {parsed} byte(s)"
    )]
    LengthMismatch {
        /// The length field.
        field: &'static str,
        /// Declared length.
        declared: usize,
        /// Bytes the parsed structure used.
        parsed: usize,
        /// Byte offset of the length field.
        offset: usize,
    },
    /// `splice_command_type` is reserved.
    #[error("unknown splice_command_type 0x{command_type:02X} at byte offset {offset}")]
    UnknownCommandType {
        /// The command type.
        command_type: u8,
        /// Byte offset of `splice_command_type`.
        offset: usize,
    },
    /// A value does not fit its field when encoding.
    #[error("`{field}` = {value} does not fit in {bits} bit(s)")]
    ValueOutOfRange {
        /// The field.
        field: &'static str,
        /// The value given.
        value: u64,
        /// Width of the field.
        bits: u32,
    },
    /// The section is internally inconsistent and cannot be encoded (or decoded).
    #[error("invalid `{field}`: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// The text is not valid hexadecimal.
    #[error("invalid hex at character {position}: {reason}")]
    InvalidHex {
        /// Character position (after the optional `0x` prefix and whitespace removal).
        position: usize,
        /// What is wrong.
        reason: String,
    },
    /// The text is not valid base64.
    #[error("invalid base64: {reason}")]
    InvalidBase64 {
        /// What is wrong.
        reason: String,
    },
    /// The input is empty.
    #[error("empty input")]
    Empty,
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
