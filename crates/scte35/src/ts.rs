//! SCTE-35 extraction from an MPEG-2 transport stream (ISO/IEC 13818-1 §2.4.3 packets, §2.4.4 PSI;
//! ANSI/SCTE 35 §8 for carriage): finds the PMT through the PAT, takes the elementary streams of
//! `stream_type` 0x86 (or registered with a "CUEI" registration descriptor), reassembles their sections across
//! packets (pointer_field, continuity_counter) and yields each section with its PID and the offset of the
//! packet where it started.
//!
//! The scanner keeps one reusable buffer per PID it follows and resynchronises on lost sync bytes.

use std::collections::VecDeque;

use crate::error::Result;
use crate::section::SpliceInfoSection;

const PACKET: usize = 188;
const SYNC: u8 = 0x47;
const REGISTRATION_DESCRIPTOR: u8 = 0x05;
const SCTE35_STREAM_TYPE: u8 = 0x86;

/// One SCTE-35 section found in a transport stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsCue {
    /// The PID that carried it.
    pub pid: u16,
    /// Byte offset of the packet holding the section's first byte.
    pub packet_offset: usize,
    /// The decoded section, or why it did not decode.
    pub section: Result<SpliceInfoSection>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Pat,
    Pmt,
    Scte35,
}

#[derive(Debug)]
struct PidState {
    pid: u16,
    kind: Kind,
    buf: Vec<u8>,
    started_at: usize,
    last_cc: Option<u8>,
    in_section: bool,
}

impl PidState {
    fn new(pid: u16, kind: Kind) -> Self {
        Self {
            pid,
            kind,
            buf: Vec::new(),
            started_at: 0,
            last_cc: None,
            in_section: false,
        }
    }
}

/// Iterator over the SCTE-35 sections of a transport stream held in memory.
#[derive(Debug)]
pub struct TsExtractor<'a> {
    data: &'a [u8],
    pos: usize,
    pids: Vec<PidState>,
    ready: VecDeque<TsCue>,
    next_expected: usize,
    /// Bytes skipped while resynchronising on the sync byte.
    pub skipped_bytes: usize,
}

impl<'a> TsExtractor<'a> {
    /// Scans `data`, discovering SCTE-35 PIDs through the PAT and PMTs.
    #[must_use]
    pub fn new(data: &'a [u8]) -> Self {
        Self {
            data,
            pos: 0,
            pids: vec![PidState::new(0, Kind::Pat)],
            ready: VecDeque::new(),
            next_expected: 0,
            skipped_bytes: 0,
        }
    }

    /// Scans `data` for SCTE-35 sections on the given PIDs only (for captures without PAT/PMT).
    #[must_use]
    pub fn with_pids(data: &'a [u8], pids: &[u16]) -> Self {
        let mut s = Self::new(data);
        s.pids = pids
            .iter()
            .map(|&p| PidState::new(p, Kind::Scte35))
            .collect();
        s
    }

    /// The SCTE-35 PIDs known so far.
    pub fn scte35_pids(&self) -> impl Iterator<Item = u16> + '_ {
        self.pids
            .iter()
            .filter(|p| p.kind == Kind::Scte35)
            .map(|p| p.pid)
    }

    fn synced(&self, at: usize) -> bool {
        self.data.get(at) == Some(&SYNC)
            && match self.data.get(at + PACKET) {
                Some(b) => *b == SYNC,
                None => at + PACKET <= self.data.len(),
            }
    }

    /// Processes one packet at `self.pos`; returns false at the end of the data.
    fn step(&mut self) -> bool {
        let in_step = self.pos == self.next_expected && self.data.get(self.pos) == Some(&SYNC);
        while !in_step && self.pos + PACKET <= self.data.len() && !self.synced(self.pos) {
            self.pos += 1;
            self.skipped_bytes += 1;
        }
        let at = self.pos;
        let Some(packet) = self.data.get(at..at + PACKET) else {
            self.pos = self.data.len();
            return false;
        };
        self.pos += PACKET;
        self.next_expected = self.pos;
        self.packet(packet, at);
        true
    }

    fn packet(&mut self, p: &[u8], at: usize) {
        let (b1, b2, b3) = (p[1], p[2], p[3]);
        if b1 & 0x80 != 0 {
            return; // transport_error_indicator
        }
        let pusi = b1 & 0x40 != 0;
        let pid = (u16::from(b1 & 0x1F) << 8) | u16::from(b2);
        let afc = (b3 >> 4) & 0x3;
        let cc = b3 & 0x0F;
        let Some(idx) = self.pids.iter().position(|s| s.pid == pid) else {
            return;
        };
        if afc & 0x1 == 0 {
            return; // no payload
        }
        let mut start = 4usize;
        if afc & 0x2 != 0 {
            start += 1 + usize::from(*p.get(4).unwrap_or(&0));
        }
        let Some(payload) = p.get(start..) else {
            return;
        };
        let mut done: Vec<(Vec<u8>, usize)> = Vec::new();
        {
            let st = &mut self.pids[idx];
            let continuous = st.last_cc.is_none_or(|l| (l + 1) & 0xF == cc);
            if st.last_cc == Some(cc) && !pusi {
                return; // duplicate packet
            }
            st.last_cc = Some(cc);
            if !continuous {
                st.in_section = false;
                st.buf.clear();
            }
            let mut rest = payload;
            if pusi {
                let Some((&pointer, after)) = rest.split_first() else {
                    return;
                };
                let pointer = usize::from(pointer);
                if st.in_section {
                    if let Some(tail) = after.get(..pointer) {
                        st.buf.extend_from_slice(tail);
                    }
                    take_complete(st, &mut done);
                }
                st.in_section = false;
                st.buf.clear();
                rest = after.get(pointer..).unwrap_or(&[]);
                // One or more sections may start here; stuffing (0xFF) ends them.
                while let Some(&first) = rest.first() {
                    if first == 0xFF {
                        break;
                    }
                    st.buf.clear();
                    st.started_at = at;
                    st.in_section = true;
                    let want = section_total(rest).unwrap_or(usize::MAX);
                    let take = want.min(rest.len());
                    st.buf.extend_from_slice(&rest[..take]);
                    rest = &rest[take..];
                    if !take_complete(st, &mut done) {
                        break;
                    }
                }
            } else if st.in_section {
                st.buf.extend_from_slice(rest);
                take_complete(st, &mut done);
            }
        }
        for (section, started_at) in done {
            self.section(pid, idx, &section, started_at);
        }
    }

    fn section(&mut self, pid: u16, idx: usize, s: &[u8], started_at: usize) {
        match self.pids[idx].kind {
            Kind::Pat => self.pat(s),
            Kind::Pmt => self.pmt(s),
            Kind::Scte35 => {
                if s.first() == Some(&0xFC) {
                    self.ready.push_back(TsCue {
                        pid,
                        packet_offset: started_at,
                        section: SpliceInfoSection::decode(s),
                    });
                }
            }
        }
    }

    fn add_pid(&mut self, pid: u16, kind: Kind) {
        if !self.pids.iter().any(|p| p.pid == pid) {
            self.pids.push(PidState::new(pid, kind));
        }
    }

    fn pat(&mut self, s: &[u8]) {
        if s.first() != Some(&0x00) || s.len() < 12 {
            return;
        }
        let entries = s.get(8..s.len() - 4).unwrap_or(&[]);
        for e in entries.chunks_exact(4) {
            let program = u16::from_be_bytes([e[0], e[1]]);
            let pid = (u16::from(e[2] & 0x1F) << 8) | u16::from(e[3]);
            if program != 0 {
                self.add_pid(pid, Kind::Pmt);
            }
        }
    }

    fn pmt(&mut self, s: &[u8]) {
        if s.first() != Some(&0x02) || s.len() < 16 {
            return;
        }
        let end = s.len() - 4;
        let program_info_length = usize::from(u16::from_be_bytes([s[10] & 0x0F, s[11]]));
        let mut i = 12 + program_info_length;
        while i + 5 <= end {
            let stream_type = s[i];
            let pid = (u16::from(s[i + 1] & 0x1F) << 8) | u16::from(s[i + 2]);
            let es_len = usize::from(u16::from_be_bytes([s[i + 3] & 0x0F, s[i + 4]]));
            let descriptors = s.get(i + 5..(i + 5 + es_len).min(end)).unwrap_or(&[]);
            if stream_type == SCTE35_STREAM_TYPE || has_cuei_registration(descriptors) {
                self.add_pid(pid, Kind::Scte35);
            }
            i += 5 + es_len;
        }
    }
}

/// Whether a descriptor loop holds a registration_descriptor with format_identifier "CUEI".
fn has_cuei_registration(mut d: &[u8]) -> bool {
    while let [tag, len, rest @ ..] = d {
        let len = usize::from(*len);
        let Some(body) = rest.get(..len) else {
            return false;
        };
        if *tag == REGISTRATION_DESCRIPTOR && body.get(..4) == Some(b"CUEI") {
            return true;
        }
        d = &rest[len..];
    }
    false
}

/// Total length of a section from its first three bytes.
fn section_total(s: &[u8]) -> Option<usize> {
    let (b1, b2) = (s.get(1)?, s.get(2)?);
    Some(3 + usize::from(u16::from_be_bytes([b1 & 0x0F, *b2])))
}

/// Moves a complete section out of the buffer; returns whether one was complete.
fn take_complete(st: &mut PidState, done: &mut Vec<(Vec<u8>, usize)>) -> bool {
    let Some(total) = section_total(&st.buf) else {
        return false;
    };
    if st.buf.len() < total {
        return false;
    }
    done.push((st.buf[..total].to_vec(), st.started_at));
    st.buf.clear();
    st.in_section = false;
    true
}

impl Iterator for TsExtractor<'_> {
    type Item = TsCue;

    fn next(&mut self) -> Option<TsCue> {
        loop {
            if let Some(c) = self.ready.pop_front() {
                return Some(c);
            }
            if !self.step() {
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests;
