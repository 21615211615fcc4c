//! Setting a segment's continuity counters so it continues the stream it is spliced into
//! (ISO/IEC 13818-1 §2.4.3.3 continuity_counter, §2.4.3.5 adaptation field stuffing).
//!
//! A stitched item's segments carry the counters of the file they were cut from, so at each seam a demuxer
//! sees a continuity error and marks the next PES corrupt (ffmpeg logs "Packet corrupt"). A segment served in a
//! break can instead start each PID at the counter the content's next packet would have had, and end where the
//! next segment expects: the packet count of a PID is made to fit by cutting one of its PES into more packets
//! (the PES bytes are unchanged; more adaptation-field stuffing carries the difference).

use crate::PACKET;
use crate::psi;

/// The continuity counters one PID of a segment must start and end with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    /// The PID.
    pub pid: u16,
    /// continuity_counter of its first packet with a payload.
    pub first: u8,
    /// continuity_counter of its last packet with a payload.
    pub last: u8,
}

/// The continuity_counter of the first packet with a payload of each PES PID in `ts` (the PIDs of the PMT's
/// elementary streams), in PMT order.
pub fn first_counters(ts: &[u8]) -> Vec<(u16, u8)> {
    counters(ts, |packets| packets.next())
}

/// The continuity_counter of the last packet with a payload of each PES PID in `ts`, in PMT order.
pub fn last_counters(ts: &[u8]) -> Vec<(u16, u8)> {
    counters(ts, |packets| packets.last())
}

fn counters<'a>(
    ts: &'a [u8],
    pick: impl Fn(&mut dyn Iterator<Item = &'a [u8]>) -> Option<&'a [u8]>,
) -> Vec<(u16, u8)> {
    let Some((streams, _)) = psi::streams(ts) else {
        return Vec::new();
    };
    streams
        .iter()
        .filter_map(|&(_, pid)| {
            let mut packets = ts
                .chunks_exact(PACKET)
                .filter(move |p| p[0] == 0x47 && psi::pid(p) == pid && p[3] & 0x10 != 0);
            pick(&mut packets).map(|p| (pid, p[3] & 0x0F))
        })
        .collect()
}

/// `ts` with each listed PID's continuity counters running from `first` to `last`, one step per packet with
/// a payload. When the PID's packet count does not fit, its longest PES is cut into up to 15 more packets; when
/// that is not possible (no PES of two packets or more, an adaptation field not understood) the counters
/// still start at `first` and the end is left where it falls. A segment that is not whole 188-byte packets
/// is returned unchanged.
pub fn set_counters(ts: &[u8], wanted: &[Counters]) -> Vec<u8> {
    if ts.len() % PACKET != 0 || ts.chunks_exact(PACKET).any(|p| p[0] != 0x47) {
        return ts.to_vec();
    }
    let mut out = ts.to_vec();
    for c in wanted {
        let have = out
            .chunks_exact(PACKET)
            .filter(|p| psi::pid(p) == c.pid && p[3] & 0x10 != 0)
            .count();
        let need = usize::from(c.last.wrapping_sub(c.first).wrapping_add(1) & 0x0F);
        let extra = (need + 16 - have % 16) % 16;
        if have > 0 && extra > 0 {
            if let Some(resplit) = spread_pes(&out, c.pid, extra) {
                out = resplit;
            }
        }
        let mut cc = c.first & 0x0F;
        let mut started = false;
        for packet in out.chunks_exact_mut(PACKET) {
            if psi::pid(packet) != c.pid {
                continue;
            }
            if packet[3] & 0x10 != 0 {
                if started {
                    cc = (cc + 1) & 0x0F;
                }
                started = true;
            }
            // A packet without payload repeats the counter of the one before it.
            packet[3] = (packet[3] & 0xF0) | cc;
        }
    }
    out
}

/// One packet's share of a PES: its adaptation field's fields (no stuffing) and its payload.
struct Piece {
    header: [u8; 3],
    adaptation: Vec<u8>,
    payload: Vec<u8>,
}

/// `ts` with the PES of `pid` that has the most packets carried by `extra` more packets, or `None` when it
/// cannot be.
fn spread_pes(ts: &[u8], pid: u16, extra: usize) -> Option<Vec<u8>> {
    let packets: Vec<(usize, &[u8])> = ts
        .chunks_exact(PACKET)
        .enumerate()
        .filter(|(_, p)| psi::pid(p) == pid)
        .collect();
    // PES run from one payload_unit_start to the next (a segment ends on a PES boundary).
    let mut starts: Vec<usize> = (0..packets.len())
        .filter(|&j| packets[j].1[1] & 0x40 != 0)
        .collect();
    starts.push(packets.len());
    let (begin, end) = starts
        .windows(2)
        .map(|w| (w[0], w[1]))
        .max_by_key(|(b, e)| e - b)?;
    let unit = &packets[begin..end];
    let mut pieces = Vec::with_capacity(unit.len() + extra);
    for (_, p) in unit {
        // Scrambled or errored packets, or ones without payload, are not ours to cut.
        if p[1] & 0x80 != 0 || p[3] & 0xC0 != 0 || p[3] & 0x10 == 0 {
            return None;
        }
        let (adaptation, offset) = adaptation_fields(p)?;
        pieces.push(Piece {
            header: [p[1], p[2], p[3]],
            adaptation: adaptation.to_vec(),
            payload: p.get(offset..)?.to_vec(),
        });
    }
    for _ in 0..extra {
        // Halve the largest payload but the first (it holds the PES header); the second half goes into a new
        // packet right after it.
        let (i, largest) = pieces
            .iter()
            .enumerate()
            .skip(1)
            .max_by_key(|(_, p)| p.payload.len())?;
        if largest.payload.len() < 2 {
            return None;
        }
        let half = largest.payload.len() / 2;
        let header = [
            largest.header[0] & !0x40,
            largest.header[1],
            largest.header[2],
        ];
        let tail = pieces[i].payload.split_off(half);
        pieces.insert(
            i + 1,
            Piece {
                header,
                adaptation: Vec::new(),
                payload: tail,
            },
        );
    }
    // The new packets go where the PES's first packet was; its other packets' places close up.
    let (first, last) = (unit.first()?.0, unit.last()?.0);
    let mut out = Vec::with_capacity(ts.len() + extra * PACKET);
    for (i, packet) in ts.chunks_exact(PACKET).enumerate() {
        if i < first || i > last || psi::pid(packet) != pid {
            out.extend_from_slice(packet);
        } else if i == first {
            pieces.iter().for_each(|p| build(&mut out, p));
        }
    }
    Some(out)
}

/// The adaptation field's flags and optional fields without its stuffing (empty without an adaptation
/// field), and where the payload starts; `None` when the fields overrun the field's length.
fn adaptation_fields(p: &[u8]) -> Option<(&[u8], usize)> {
    if (p[3] >> 4) & 0x2 == 0 {
        return Some((&[], 4));
    }
    let length = usize::from(p[4]);
    let field = p.get(5..5 + length)?;
    let Some(&flags) = field.first() else {
        return Some((&[], 5));
    };
    let mut used = 1;
    for (flag, size) in [(0x10, 6), (0x08, 6), (0x04, 1)] {
        if flags & flag != 0 {
            used += size;
        }
    }
    for flag in [0x02, 0x01] {
        if flags & flag != 0 {
            used += 1 + usize::from(*field.get(used)?);
        }
    }
    Some((field.get(..used)?, 5 + length))
}

/// Appends the packet carrying `piece`, with adaptation-field stuffing for what the payload leaves free.
fn build(out: &mut Vec<u8>, piece: &Piece) {
    let free = 184 - piece.payload.len();
    let has_af = free > 0 || !piece.adaptation.is_empty();
    out.push(0x47);
    out.push(piece.header[0]);
    out.push(piece.header[1]);
    out.push((piece.header[2] & 0xCF) | if has_af { 0x30 } else { 0x10 });
    if has_af {
        out.push((free - 1) as u8);
        if free > 1 {
            if piece.adaptation.is_empty() {
                out.push(0);
                out.extend(std::iter::repeat_n(0xFF, free - 2));
            } else {
                out.extend_from_slice(&piece.adaptation);
                out.extend(std::iter::repeat_n(0xFF, free - 1 - piece.adaptation.len()));
            }
        }
    }
    out.extend_from_slice(&piece.payload);
}
