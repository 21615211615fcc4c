//! `emsg` boxes (ISO/IEC 23009-1 §5.10.3.3, versions 0 and 1): the in-band events an InbandEventStream
//! declares, found at the top level of a media segment before its `moof`. SCTE-35 travels in them as the
//! binary `splice_info_section` in `message_data` (SCTE 214-3 §7.3; scheme `urn:scte:scte35:2013:bin`, and
//! `urn:scte:scte35:2014:xml+bin` in the wild).
//!
//! This reads the boxes of a segment's bytes; it does not fetch segments (the server does), and it does not
//! descend into `moof`/`mdat`.

use interlude_scte35::SpliceInfoSection;

use crate::error::{Error, Result};
use crate::scte35xml::Scte35Scheme;

/// When an `emsg` event takes effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EmsgTime {
    /// Version 0: `presentation_time_delta` after the segment's earliest presentation time.
    Delta(u32),
    /// Version 1: absolute `presentation_time` on the representation's media timeline.
    Absolute(u64),
}

/// One `emsg` box.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emsg {
    /// Byte offset of the box in the input.
    pub offset: usize,
    /// Box version (0 or 1).
    pub version: u8,
    /// `scheme_id_uri`.
    pub scheme_id_uri: String,
    /// `value`.
    pub value: String,
    /// `timescale` of the times below.
    pub timescale: u32,
    /// The event's time.
    pub time: EmsgTime,
    /// `event_duration`; 0xFFFF_FFFF means unknown.
    pub event_duration: u32,
    /// `id`.
    pub id: u32,
    /// `message_data`.
    pub message_data: Vec<u8>,
}

impl Emsg {
    /// The event time in the box's timescale, given the earliest presentation time of the segment the box
    /// came in (in the same timescale; used by version 0 only).
    #[must_use]
    pub fn presentation_time(&self, segment_earliest_presentation_time: u64) -> u64 {
        match self.time {
            EmsgTime::Delta(d) => segment_earliest_presentation_time.saturating_add(u64::from(d)),
            EmsgTime::Absolute(t) => t,
        }
    }

    /// The SCTE-35 section carried, when the scheme is SCTE-35; `None` for other schemes.
    #[must_use]
    pub fn scte35(&self) -> Option<interlude_scte35::Result<SpliceInfoSection>> {
        Scte35Scheme::from_uri(&self.scheme_id_uri)?;
        Some(SpliceInfoSection::decode(&self.message_data))
    }
}

/// Reads every top-level `emsg` box of `segment` (other boxes are skipped by their size).
///
/// # Errors
/// [`Error::BadBox`] for a truncated box or a malformed `emsg`.
pub fn read_emsg_boxes(segment: &[u8]) -> Result<Vec<Emsg>> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < segment.len() {
        let bad = |reason: &str| Error::BadBox {
            offset: at,
            reason: reason.to_string(),
        };
        let header = segment
            .get(at..at + 8)
            .ok_or_else(|| bad("truncated box header"))?;
        let size32 = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        let kind = [header[4], header[5], header[6], header[7]];
        let (size, header_len) = match size32 {
            0 => (segment.len() - at, 8),
            1 => {
                let large = segment
                    .get(at + 8..at + 16)
                    .ok_or_else(|| bad("truncated largesize"))?;
                let mut b = [0u8; 8];
                b.copy_from_slice(large);
                let size =
                    usize::try_from(u64::from_be_bytes(b)).map_err(|_| bad("box too large"))?;
                (size, 16)
            }
            n => (n as usize, 8),
        };
        if size < header_len {
            return Err(bad("box size smaller than its header"));
        }
        let end = at.checked_add(size).ok_or_else(|| bad("box too large"))?;
        let body = segment
            .get(at + header_len..end)
            .ok_or_else(|| bad("box runs past the end of the data"))?;
        if &kind == b"emsg" {
            out.push(parse_emsg(at, body)?);
        }
        at = end;
    }
    Ok(out)
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    offset: usize,
}

impl Reader<'_> {
    fn bad(&self, what: &str) -> Error {
        Error::BadBox {
            offset: self.offset,
            reason: format!("emsg: {what}"),
        }
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&[u8]> {
        let end = self.pos.checked_add(n).ok_or_else(|| self.bad(what))?;
        let s = self
            .data
            .get(self.pos..end)
            .ok_or_else(|| self.bad(&format!("truncated {what}")))?;
        self.pos = end;
        Ok(s)
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self, what: &str) -> Result<u64> {
        let hi = u64::from(self.u32(what)?);
        let lo = u64::from(self.u32(what)?);
        Ok(hi << 32 | lo)
    }

    fn cstring(&mut self, what: &str) -> Result<String> {
        let rest = self.data.get(self.pos..).unwrap_or(&[]);
        let len = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| self.bad(&format!("{what} is not NUL-terminated")))?;
        let s = String::from_utf8_lossy(&rest[..len]).into_owned();
        self.pos += len + 1;
        Ok(s)
    }
}

fn parse_emsg(offset: usize, body: &[u8]) -> Result<Emsg> {
    let mut r = Reader {
        data: body,
        pos: 0,
        offset,
    };
    let version = r.take(4, "version and flags")?[0];
    let mut e = match version {
        0 => {
            let scheme_id_uri = r.cstring("scheme_id_uri")?;
            let value = r.cstring("value")?;
            let timescale = r.u32("timescale")?;
            let delta = r.u32("presentation_time_delta")?;
            Emsg {
                offset,
                version,
                scheme_id_uri,
                value,
                timescale,
                time: EmsgTime::Delta(delta),
                event_duration: r.u32("event_duration")?,
                id: r.u32("id")?,
                message_data: Vec::new(),
            }
        }
        1 => {
            let timescale = r.u32("timescale")?;
            let time = EmsgTime::Absolute(r.u64("presentation_time")?);
            let event_duration = r.u32("event_duration")?;
            let id = r.u32("id")?;
            Emsg {
                offset,
                version,
                scheme_id_uri: r.cstring("scheme_id_uri")?,
                value: r.cstring("value")?,
                timescale,
                time,
                event_duration,
                id,
                message_data: Vec::new(),
            }
        }
        v => return Err(r.bad(&format!("version {v} is not 0 or 1"))),
    };
    e.message_data = body.get(r.pos..).unwrap_or(&[]).to_vec();
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a box by the layout of ISO/IEC 23009-1 §5.10.3.3.
    fn emsg_box(version: u8, scheme: &str, message: &[u8]) -> Vec<u8> {
        let mut body = vec![version, 0, 0, 0];
        if version == 0 {
            body.extend_from_slice(scheme.as_bytes());
            body.push(0);
            body.extend_from_slice(b"1\0");
            body.extend_from_slice(&90_000u32.to_be_bytes());
            body.extend_from_slice(&45_000u32.to_be_bytes());
        } else {
            body.extend_from_slice(&90_000u32.to_be_bytes());
            body.extend_from_slice(&900_000u64.to_be_bytes());
        }
        body.extend_from_slice(&2_700_000u32.to_be_bytes());
        body.extend_from_slice(&7u32.to_be_bytes());
        if version == 1 {
            body.extend_from_slice(scheme.as_bytes());
            body.push(0);
            body.extend_from_slice(b"1\0");
        }
        body.extend_from_slice(message);
        let mut out = u32::try_from(body.len() + 8)
            .expect("small")
            .to_be_bytes()
            .to_vec();
        out.extend_from_slice(b"emsg");
        out.extend_from_slice(&body);
        out
    }

    #[test]
    fn version_0_and_1_boxes_carry_scte35() {
        let cue = SpliceInfoSection::splice_insert_out(7, Some(900_000), Some(2_700_000));
        let bytes = cue.encode().expect("encodes");
        let mut segment = emsg_box(0, "urn:scte:scte35:2013:bin", &bytes);
        segment.extend_from_slice(&[0, 0, 0, 8, b'm', b'o', b'o', b'f']);
        segment.extend(emsg_box(1, "urn:scte:scte35:2013:bin", &bytes));
        let boxes = read_emsg_boxes(&segment).expect("well-formed");
        assert_eq!(boxes.len(), 2);
        assert_eq!(boxes[0].presentation_time(1_000), 46_000);
        assert_eq!(boxes[1].presentation_time(1_000), 900_000);
        assert_eq!(boxes[1].value, "1");
        for b in &boxes {
            let decoded = b.scte35().expect("SCTE-35 scheme").expect("valid section");
            assert_eq!(decoded, cue);
        }
    }

    #[test]
    fn truncated_boxes_are_errors_not_panics() {
        let cue = SpliceInfoSection::splice_insert_in(1, None)
            .encode()
            .expect("encodes");
        let whole = emsg_box(1, "urn:scte:scte35:2013:bin", &cue);
        for cut in 1..whole.len() {
            let _ = read_emsg_boxes(&whole[..cut]);
        }
        assert!(read_emsg_boxes(&whole[..20]).is_err());
        assert!(read_emsg_boxes(&[0, 0, 0, 4, b'f', b'r', b'e', b'e']).is_err());
    }
}
