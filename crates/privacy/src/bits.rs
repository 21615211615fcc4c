//! Bit-level reading of the IAB consent encodings: base64url characters (RFC 4648 §5) taken as 6-bit groups
//! without byte alignment (TCF v2 "Consent string and vendor list formats" §"Base64url encoding"; GPP v1
//! "Consent String Specification" §"Base64 encoding"), big-endian unsigned integers of any width, and the
//! Fibonacci-coded integers GPP uses for section ids (GPP v1 §"Fibonacci encoding").
//!
//! Strings are decoded per character, not per byte: a TC string's length need not be a multiple of four
//! characters, and a trailing `=` (some encoders pad) is ignored.

use crate::error::{Error, Result};

/// The decoded bits of one base64url segment.
#[derive(Debug, Clone)]
pub(crate) struct Bits {
    /// Packed bits, most significant first.
    bytes: Vec<u8>,
    /// Number of valid bits (6 × characters).
    len: usize,
}

fn sextet(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'-' => Some(62),
        b'_' => Some(63),
        _ => None,
    }
}

impl Bits {
    /// Decode a base64url segment; `signal` names the signal in errors.
    pub(crate) fn from_base64url(text: &str, signal: &'static str) -> Result<Bits> {
        let text = text.trim_end_matches('=');
        let mut bytes = Vec::with_capacity(text.len() * 6 / 8 + 1);
        let mut acc: u32 = 0;
        let mut acc_bits = 0u32;
        for (position, c) in text.bytes().enumerate() {
            let v = sextet(c).ok_or_else(|| Error::Base64 {
                signal,
                position,
                found: text[position..].chars().next().unwrap_or('?'),
            })?;
            acc = (acc << 6) | u32::from(v);
            acc_bits += 6;
            if acc_bits >= 8 {
                acc_bits -= 8;
                bytes.push((acc >> acc_bits) as u8);
                acc &= (1 << acc_bits) - 1;
            }
        }
        if acc_bits > 0 {
            bytes.push((acc << (8 - acc_bits)) as u8);
        }
        Ok(Bits {
            bytes,
            len: text.len() * 6,
        })
    }

    /// A reader from bit 0.
    pub(crate) fn reader(&self, signal: &'static str) -> BitReader<'_> {
        BitReader {
            bits: self,
            pos: 0,
            signal,
        }
    }

    /// Number of bits.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

/// Reads fields in order; every error names the field and its bit offset.
#[derive(Debug)]
pub(crate) struct BitReader<'a> {
    bits: &'a Bits,
    pos: usize,
    signal: &'static str,
}

impl BitReader<'_> {
    /// Current bit offset.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// Bits left.
    pub(crate) fn remaining(&self) -> usize {
        self.bits.len - self.pos
    }

    /// The signal this reader reads (for errors raised by callers).
    pub(crate) fn signal(&self) -> &'static str {
        self.signal
    }

    fn bit_at(&self, i: usize) -> bool {
        // `i < len` is checked by every caller; bytes hold at least len bits.
        self.bits
            .bytes
            .get(i / 8)
            .is_some_and(|b| b & (0x80 >> (i % 8)) != 0)
    }

    fn need(&self, field: &'static str, needed: usize) -> Result<()> {
        if self.remaining() < needed {
            return Err(Error::Truncated {
                signal: self.signal,
                field,
                bit_offset: self.pos,
                needed,
                available: self.remaining(),
            });
        }
        Ok(())
    }

    /// An unsigned big-endian integer of `width` bits (at most 64).
    pub(crate) fn uint(&mut self, field: &'static str, width: usize) -> Result<u64> {
        debug_assert!(width <= 64, "fields are at most 64 bits wide");
        self.need(field, width)?;
        // Byte at a time: up to 8 bits per step instead of one.
        let mut v = 0u64;
        let mut pos = self.pos;
        let mut left = width;
        while left > 0 {
            let byte = self.bits.bytes.get(pos / 8).copied().unwrap_or(0);
            let avail = 8 - pos % 8;
            let take = avail.min(left);
            let chunk = (u64::from(byte) >> (avail - take)) & ((1u64 << take) - 1);
            v = (v << take) | chunk;
            pos += take;
            left -= take;
        }
        self.pos = pos;
        Ok(v)
    }

    /// One bit as a boolean.
    pub(crate) fn bool(&mut self, field: &'static str) -> Result<bool> {
        Ok(self.uint(field, 1)? == 1)
    }

    /// `width` bits as a bitmask whose bit 0 is the first bit read (id 1 in the IAB numbering).
    pub(crate) fn flags(&mut self, field: &'static str, width: usize) -> Result<u64> {
        debug_assert!(width <= 64, "flag fields are at most 64 bits wide");
        self.need(field, width)?;
        let mut v = 0u64;
        for k in 0..width {
            if self.bit_at(self.pos + k) {
                v |= 1 << k;
            }
        }
        self.pos += width;
        Ok(v)
    }

    /// Skip `width` bits (or fail naming `field` when fewer are left).
    pub(crate) fn skip(&mut self, field: &'static str, width: usize) -> Result<()> {
        self.need(field, width)?;
        self.pos += width;
        Ok(())
    }

    /// Two 6-bit letters (`A` = 0 … `Z` = 25), as TCF encodes ConsentLanguage and PublisherCC.
    pub(crate) fn letters2(&mut self, field: &'static str) -> Result<[u8; 2]> {
        let at = self.pos;
        let a = self.uint(field, 6)?;
        let b = self.uint(field, 6)?;
        if a > 25 || b > 25 {
            return Err(Error::InvalidField {
                signal: self.signal,
                field,
                bit_offset: at,
                reason: format!("letter values {a} and {b} must both be 0–25 (A–Z)"),
            });
        }
        Ok([b'A' + a as u8, b'A' + b as u8])
    }

    /// A Fibonacci-coded positive integer (Zeckendorf representation, least significant term first,
    /// terminated by two consecutive 1 bits): GPP v1 §"Fibonacci encoding".
    pub(crate) fn fibonacci(&mut self, field: &'static str) -> Result<u64> {
        let start = self.pos;
        // F(2)=1, F(3)=2, F(4)=3, F(5)=5, …
        let (mut f_prev, mut f) = (1u64, 1u64);
        let mut value = 0u64;
        let mut last = false;
        loop {
            if self.remaining() == 0 {
                return Err(Error::Truncated {
                    signal: self.signal,
                    field,
                    bit_offset: start,
                    needed: self.pos - start + 1,
                    available: self.pos - start,
                });
            }
            let bit = self.bit_at(self.pos);
            self.pos += 1;
            if bit && last {
                return Ok(value);
            }
            if bit {
                value = value.checked_add(f).ok_or_else(|| Error::InvalidField {
                    signal: self.signal,
                    field,
                    bit_offset: start,
                    reason: "Fibonacci-coded value overflows 64 bits".to_string(),
                })?;
            }
            last = bit;
            let next = f.checked_add(f_prev).ok_or_else(|| Error::InvalidField {
                signal: self.signal,
                field,
                bit_offset: start,
                reason: "Fibonacci code longer than 90 bits".to_string(),
            })?;
            f_prev = f;
            f = next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn six_bit_groups_are_packed_most_significant_first() {
        // "D" = 3 = 000011, "B" = 1 = 000001: the first 12 bits of every GPP header (Type 3, Version 1).
        let bits = Bits::from_base64url("DB", "test").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(bits.len(), 12);
        let mut r = bits.reader("test");
        assert_eq!(r.uint("Type", 6), Ok(3));
        assert_eq!(r.uint("Version", 6), Ok(1));
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn reading_past_the_end_names_field_and_offset() {
        let bits = Bits::from_base64url("A", "test").unwrap_or_else(|e| panic!("{e}"));
        let mut r = bits.reader("test");
        assert_eq!(r.uint("One", 4), Ok(0));
        assert_eq!(
            r.uint("Two", 4),
            Err(Error::Truncated {
                signal: "test",
                field: "Two",
                bit_offset: 4,
                needed: 4,
                available: 2
            })
        );
    }

    #[test]
    fn non_base64url_character_is_located() {
        let err = Bits::from_base64url("AB+C", "TC string").err();
        assert_eq!(
            err,
            Some(Error::Base64 {
                signal: "TC string",
                position: 2,
                found: '+'
            })
        );
    }

    #[test]
    fn fibonacci_codes_decode_per_gpp_table() {
        // GPP v1 Fibonacci table: 1 = "11", 2 = "011", 3 = "0011", 4 = "1011", 6 = "10011", 17 = "1010011"
        // (1 + 3 + 13). Packed: 11 011 0011 1011 10011 1010011 = 25 bits, zero-padded to whole characters.
        let text = "11011001110111001110100110 00";
        let bitstr: String = text.chars().filter(|c| *c != ' ').collect();
        let mut s = String::new();
        for chunk in bitstr.as_bytes().chunks(6) {
            let mut v = 0u8;
            for (i, b) in chunk.iter().enumerate() {
                if *b == b'1' {
                    v |= 1 << (5 - i);
                }
            }
            s.push(
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[v as usize]
                    as char,
            );
        }
        let bits = Bits::from_base64url(&s, "test").unwrap_or_else(|e| panic!("{e}"));
        let mut r = bits.reader("test");
        let got: Vec<u64> = (0..6).filter_map(|_| r.fibonacci("Id").ok()).collect();
        assert_eq!(got, vec![1, 2, 3, 4, 6, 17]);
    }
}
