//! Bounds-checked bit reader and bit writer for the MSB-first fields of ANSI/SCTE 35 §9 syntax tables.
//!
//! Every read returns [`Error::Truncated`] naming the field instead of panicking, and every write checks that
//! the value fits its width, so no input can make the codec index out of bounds.

use crate::error::{Error, Result};

/// Reads MSB-first bit fields from a byte slice; `base` is the slice's offset within the section so that
/// errors report section offsets.
#[derive(Debug, Clone)]
pub(crate) struct BitReader<'a> {
    data: &'a [u8],
    bit: usize,
    base: usize,
}

impl<'a> BitReader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Self::with_base(data, 0)
    }

    pub(crate) fn with_base(data: &'a [u8], base: usize) -> Self {
        Self { data, bit: 0, base }
    }

    /// Section offset of the next byte to read.
    pub(crate) fn offset(&self) -> usize {
        self.base + self.bit / 8
    }

    /// Whole bytes left.
    pub(crate) fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.bit.div_ceil(8))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.bit >= self.data.len() * 8
    }

    fn truncated(&self, field: &'static str, bits: usize) -> Error {
        Error::Truncated {
            field,
            offset: self.offset(),
            needed_bits: bits,
        }
    }

    /// Reads `n` (at most 64) bits.
    pub(crate) fn bits(&mut self, n: u32, field: &'static str) -> Result<u64> {
        let n_us = n as usize;
        if n > 64 || self.bit + n_us > self.data.len() * 8 {
            return Err(self.truncated(field, n_us));
        }
        let mut value = 0u64;
        let mut left = n;
        while left > 0 {
            let byte = *self
                .data
                .get(self.bit / 8)
                .ok_or_else(|| self.truncated(field, n_us))?;
            let used = (self.bit % 8) as u32;
            let avail = 8 - used;
            let take = avail.min(left);
            let chunk = (u64::from(byte) >> (avail - take)) & ((1u64 << take) - 1);
            value = if take == 64 {
                chunk
            } else {
                (value << take) | chunk
            };
            self.bit += take as usize;
            left -= take;
        }
        Ok(value)
    }

    pub(crate) fn flag(&mut self, field: &'static str) -> Result<bool> {
        Ok(self.bits(1, field)? == 1)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8> {
        if self.bit % 8 == 0 {
            let b = *self
                .data
                .get(self.bit / 8)
                .ok_or_else(|| self.truncated(field, 8))?;
            self.bit += 8;
            return Ok(b);
        }
        Ok(self.bits(8, field)? as u8)
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16> {
        Ok(self.bits(16, field)? as u16)
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32> {
        Ok(self.bits(32, field)? as u32)
    }

    /// Reads a reserved field of `n` bits: `None` when all ones (the value the standard requires), otherwise
    /// the value seen, so that encoding reproduces it.
    pub(crate) fn reserved(&mut self, n: u32, field: &'static str) -> Result<Option<u8>> {
        let v = self.bits(n, field)? as u8;
        Ok(if u64::from(v) == (1u64 << n) - 1 {
            None
        } else {
            Some(v)
        })
    }

    /// Takes `n` whole bytes (the reader must be byte-aligned, which every SCTE 35 byte string is).
    pub(crate) fn bytes(&mut self, n: usize, field: &'static str) -> Result<&'a [u8]> {
        if self.bit % 8 != 0 {
            return Err(Error::Invalid {
                field,
                reason: "byte string not byte-aligned",
            });
        }
        let start = self.bit / 8;
        let end = start
            .checked_add(n)
            .ok_or_else(|| self.truncated(field, usize::MAX))?;
        let out = self
            .data
            .get(start..end)
            .ok_or_else(|| self.truncated(field, n.saturating_mul(8)))?;
        self.bit = end * 8;
        Ok(out)
    }

    /// Splits off the next `n` bytes as a reader of their own (for length-delimited structures); the error
    /// names the length field at `len_offset`.
    pub(crate) fn sub(
        &mut self,
        n: usize,
        field: &'static str,
        len_offset: usize,
    ) -> Result<BitReader<'a>> {
        let available = self.remaining();
        let base = self.offset();
        let data = self.bytes(n, field).map_err(|_| Error::LengthOverflow {
            field,
            length: n,
            offset: len_offset,
            available,
        })?;
        Ok(BitReader::with_base(data, base))
    }

    /// The rest of the bytes.
    pub(crate) fn rest(&mut self, field: &'static str) -> Result<&'a [u8]> {
        self.bytes(self.remaining(), field)
    }
}

/// Writes MSB-first bit fields into a byte vector, checking each value against its width.
#[derive(Debug, Default)]
pub(crate) struct BitWriter {
    pub(crate) buf: Vec<u8>,
    acc: u64,
    nbits: u32,
}

impl BitWriter {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Self {
            buf: Vec::with_capacity(n),
            acc: 0,
            nbits: 0,
        }
    }

    /// Writes `value` in `n` (at most 48) bits.
    pub(crate) fn bits(&mut self, n: u32, value: u64, field: &'static str) -> Result<()> {
        if n > 48 || (n < 64 && value >> n != 0) {
            return Err(Error::ValueOutOfRange {
                field,
                value,
                bits: n,
            });
        }
        self.acc = (self.acc << n) | value;
        self.nbits += n;
        while self.nbits >= 8 {
            self.nbits -= 8;
            self.buf.push((self.acc >> self.nbits) as u8);
        }
        self.acc &= (1u64 << self.nbits) - 1;
        Ok(())
    }

    pub(crate) fn flag(&mut self, v: bool) {
        // A single bit always fits.
        let _ = self.bits(1, u64::from(v), "flag");
    }

    /// Writes a reserved field: all ones unless a decoded value was kept.
    pub(crate) fn reserved(&mut self, n: u32, kept: Option<u8>, field: &'static str) -> Result<()> {
        let v = kept.map_or((1u64 << n) - 1, u64::from);
        self.bits(n, v, field)
    }

    pub(crate) fn u8(&mut self, v: u8) {
        if self.nbits == 0 {
            self.buf.push(v);
        } else {
            let _ = self.bits(8, u64::from(v), "u8");
        }
    }

    pub(crate) fn u16(&mut self, v: u16) {
        if self.nbits == 0 {
            self.buf.extend_from_slice(&v.to_be_bytes());
        } else {
            let _ = self.bits(16, u64::from(v), "u16");
        }
    }

    pub(crate) fn u32(&mut self, v: u32) {
        if self.nbits == 0 {
            self.buf.extend_from_slice(&v.to_be_bytes());
        } else {
            let _ = self.bits(32, u64::from(v), "u32");
        }
    }

    pub(crate) fn bytes(&mut self, b: &[u8], field: &'static str) -> Result<()> {
        if self.nbits != 0 {
            return Err(Error::Invalid {
                field,
                reason: "byte string not byte-aligned",
            });
        }
        self.buf.extend_from_slice(b);
        Ok(())
    }

    /// Byte position (the writer must be aligned for this to be meaningful).
    pub(crate) fn pos(&self) -> usize {
        self.buf.len()
    }

    /// Writes a 1-byte length placeholder and returns its position.
    pub(crate) fn len8_placeholder(&mut self) -> usize {
        self.buf.push(0);
        self.buf.len() - 1
    }

    /// Fills the 1-byte length at `at` with the bytes written since.
    pub(crate) fn patch_len8(&mut self, at: usize, field: &'static str) -> Result<()> {
        let len = self.buf.len() - at - 1;
        let v = u8::try_from(len).map_err(|_| Error::ValueOutOfRange {
            field,
            value: len as u64,
            bits: 8,
        })?;
        if let Some(slot) = self.buf.get_mut(at) {
            *slot = v;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_across_byte_boundaries() {
        let mut r = BitReader::new(&[0b1010_1100, 0xFF, 0x01]);
        assert_eq!(r.bits(3, "a").ok(), Some(0b101));
        assert_eq!(r.bits(13, "b").ok(), Some(0b0_1100_1111_1111));
        assert_eq!(r.u8("c").ok(), Some(1));
        assert!(matches!(
            r.bits(1, "d"),
            Err(Error::Truncated {
                field: "d",
                offset: 3,
                ..
            })
        ));
    }

    #[test]
    fn writer_round_trips_reader() {
        let mut w = BitWriter::default();
        w.bits(1, 1, "a").ok();
        w.bits(6, 5, "b").ok();
        w.bits(33, 0x1_2345_6789, "c").ok();
        assert!(w.bits(3, 9, "d").is_err());
        let mut r = BitReader::new(&w.buf);
        assert_eq!(r.bits(1, "a").ok(), Some(1));
        assert_eq!(r.bits(6, "b").ok(), Some(5));
        assert_eq!(r.bits(33, "c").ok(), Some(0x1_2345_6789));
    }
}
