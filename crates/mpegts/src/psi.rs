//! Finding an elementary stream's PID from the Program Association and Program Map tables
//! (ISO/IEC 13818-1 §2.4.4.3 PAT, §2.4.4.8 PMT).
//!
//! Segments of an HLS stream repeat their PAT and PMT at the start, each small enough for one packet: a table
//! section that continues into a second packet is not read (the stream is then left as it is). The CRC is not
//! checked: a corrupt table names a wrong PID, whose packets then fail the stricter checks of whoever uses it.

use crate::PACKET;

/// `stream_type` of ISO/IEC 13818-7 audio with the ADTS transport syntax (13818-1 Table 2-34).
pub(crate) const STREAM_TYPE_ADTS: u8 = 0x0F;

/// A packet's PID.
pub(crate) fn pid(packet: &[u8]) -> u16 {
    u16::from(packet[1] & 0x1F) << 8 | u16::from(packet[2])
}

/// Where a packet's payload starts, when it has one inside the packet (§2.4.3.2: adaptation_field_control).
pub(crate) fn payload_offset(packet: &[u8]) -> Option<usize> {
    let afc = (packet[3] >> 4) & 0x3;
    if afc & 0x1 == 0 {
        return None;
    }
    let offset = if afc & 0x2 != 0 {
        5 + usize::from(packet[4])
    } else {
        4
    };
    (offset < PACKET).then_some(offset)
}

/// The section starting in a packet with payload_unit_start_indicator set, after its pointer_field, cut to its
/// section_length (or to the packet's end when it claims more).
fn section(packet: &[u8]) -> Option<&[u8]> {
    if packet[1] & 0x40 == 0 {
        return None;
    }
    let payload = packet.get(payload_offset(packet)?..)?;
    let pointer = usize::from(*payload.first()?);
    let section = payload.get(1 + pointer..)?;
    let length = usize::from(section.get(1)? & 0x0F) << 8 | usize::from(*section.get(2)?);
    // 4 bytes of CRC_32 end the section; they are not part of the loops.
    section.get(..(3 + length).min(section.len()))
}

/// The first program's PMT PID, from the first PAT in `ts`.
fn pmt_pid(ts: &[u8]) -> Option<u16> {
    ts.chunks_exact(PACKET)
        .filter(|p| p[0] == 0x47 && pid(p) == 0)
        .find_map(|p| {
            let s = section(p)?;
            if *s.first()? != 0x00 {
                return None;
            }
            let entries = s.get(8..s.len().checked_sub(4)?)?;
            entries.chunks_exact(4).find_map(|e| {
                let program_number = u16::from(e[0]) << 8 | u16::from(e[1]);
                (program_number != 0).then(|| u16::from(e[2] & 0x1F) << 8 | u16::from(e[3]))
            })
        })
}

/// The streams of the first program: `(stream_type, elementary_PID)` in PMT order, and the PCR_PID.
pub(crate) fn streams(ts: &[u8]) -> Option<(Vec<(u8, u16)>, u16)> {
    let pmt = pmt_pid(ts)?;
    ts.chunks_exact(PACKET)
        .filter(|p| p[0] == 0x47 && pid(p) == pmt)
        .find_map(|p| {
            let s = section(p)?;
            if *s.first()? != 0x02 {
                return None;
            }
            let pcr_pid = u16::from(s.get(8)? & 0x1F) << 8 | u16::from(*s.get(9)?);
            let info = usize::from(s.get(10)? & 0x0F) << 8 | usize::from(*s.get(11)?);
            let mut rest = s.get(12 + info..s.len().checked_sub(4)?)?;
            let mut out = Vec::new();
            while rest.len() >= 5 {
                let stream_type = rest[0];
                let es_pid = u16::from(rest[1] & 0x1F) << 8 | u16::from(rest[2]);
                let es_info = usize::from(rest[3] & 0x0F) << 8 | usize::from(rest[4]);
                out.push((stream_type, es_pid));
                rest = rest.get(5 + es_info..).unwrap_or_default();
            }
            Some((out, pcr_pid))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_assets_carry_video_and_adts_audio() {
        let file: &[u8] = include_bytes!("../../../assets/ads/ad15/r0/000.ts");
        let (streams, pcr_pid) = streams(file).expect("PAT and PMT");
        assert_eq!(streams, vec![(0x1B, 256), (STREAM_TYPE_ADTS, 257)]);
        assert_eq!(pcr_pid, 256);
    }

    #[test]
    fn a_table_claiming_more_than_the_packet_is_cut() {
        let mut packet = [0xFFu8; PACKET];
        packet[..8].copy_from_slice(&[0x47, 0x40, 0x00, 0x10, 0x00, 0x00, 0x0F, 0xFF]);
        assert_eq!(pmt_pid(&packet), Some(0x1FFF));
        packet[5] = 0x01; // not a PAT
        assert_eq!(pmt_pid(&packet), None);
    }
}
