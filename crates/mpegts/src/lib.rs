//! Reading and shifting the timestamps of an MPEG-TS segment (ISO/IEC 13818-1 §2.4.3.5 PCR, §2.4.3.7 PTS/DTS).
//!
//! Two users: the origin simulator, so a looped content file plays as one continuous live stream, and the
//! stitcher's proxy mode, so an ad segment's timestamps continue from the content it replaces (players and
//! decoders that ignore `EXT-X-DISCONTINUITY`, such as ffmpeg's HLS demuxer, then play a break seamlessly).
//! 33-bit values wrap as the standard says. Input is untrusted: malformed packets are skipped, never a panic.
//! The proxy also fits each item's AAC audio to its video span frame by frame ([`fit_audio`]), so audio
//! neither overlaps nor leaves gaps at item boundaries, and sets each item segment's continuity counters to
//! continue the content's ([`set_counters`]).

mod adts;
mod audio;
mod counters;
mod psi;

pub use audio::{AudioWindow, audio_frames, audio_span, fit_audio, trim_audio};
pub use counters::{Counters, first_counters, last_counters, set_counters};

pub mod fmp4;

/// PTS/DTS/PCR base values wrap at 2^33.
pub const WRAP: u64 = 1 << 33;
const PACKET: usize = 188;

/// Adds `offset` (90 kHz ticks) to every PCR, PTS and DTS in `ts`, in place. Bytes that are not well-formed
/// packets are left alone: the origin serves what it has rather than fail the segment.
pub fn shift_timestamps(ts: &mut [u8], offset: u64) {
    for packet in ts.chunks_exact_mut(PACKET) {
        if packet[0] != 0x47 {
            continue;
        }
        let pusi = packet[1] & 0x40 != 0;
        let afc = (packet[3] >> 4) & 0x3;
        let mut payload = 4;
        if afc & 0x2 != 0 {
            let af_len = usize::from(packet[4]);
            if af_len > 0 && 5 + af_len <= PACKET && packet[5] & 0x10 != 0 && af_len >= 7 {
                shift_pcr(&mut packet[6..12], offset);
            }
            payload = 5 + af_len;
        }
        if afc & 0x1 == 0 || !pusi || payload + 14 > PACKET {
            continue;
        }
        let pes = &mut packet[payload..];
        if pes[0] != 0 || pes[1] != 0 || pes[2] != 1 {
            continue;
        }
        let flags = pes[7] >> 6;
        if flags & 0x2 != 0 {
            shift_pts(&mut pes[9..14], offset);
        }
        if flags == 0x3 && pes.len() >= 19 {
            shift_pts(&mut pes[14..19], offset);
        }
    }
}

/// Reads a 5-byte PTS/DTS field.
pub(crate) fn read_pts(b: &[u8]) -> u64 {
    (u64::from(b[0] >> 1) & 0x7) << 30
        | u64::from(b[1]) << 22
        | u64::from(b[2] >> 1) << 15
        | u64::from(b[3]) << 7
        | u64::from(b[4] >> 1)
}

fn shift_pts(b: &mut [u8], offset: u64) {
    write_pts(b, (read_pts(b) + offset) % WRAP);
}

/// Writes `value` (below [`WRAP`]) into a 5-byte PTS/DTS field.
pub(crate) fn write_pts(b: &mut [u8], value: u64) {
    // Keep the 4-bit prefix ('0010'/'0011'/'0001') and the marker bits.
    b[0] = (b[0] & 0xF1) | (((value >> 30) as u8 & 0x7) << 1);
    b[1] = (value >> 22) as u8;
    b[2] = (b[2] & 0x01) | (((value >> 15) as u8) << 1);
    b[3] = (value >> 7) as u8;
    b[4] = (b[4] & 0x01) | ((value as u8) << 1);
}

fn shift_pcr(b: &mut [u8], offset: u64) {
    let base = u64::from(b[0]) << 25
        | u64::from(b[1]) << 17
        | u64::from(b[2]) << 9
        | u64::from(b[3]) << 1
        | u64::from(b[4] >> 7);
    let value = (base + offset) % WRAP;
    b[0] = (value >> 25) as u8;
    b[1] = (value >> 17) as u8;
    b[2] = (value >> 9) as u8;
    b[3] = (value >> 1) as u8;
    b[4] = (b[4] & 0x7F) | (((value & 1) as u8) << 7);
}

/// The offset that moves `from` to `to` on the 33-bit clock (for [`shift_timestamps`]).
pub fn offset_between(from: u64, to: u64) -> u64 {
    (to % WRAP + WRAP - from % WRAP) % WRAP
}

/// The first PTS of the first PES packet in `ts`, if any (used by tests and to anchor cues).
pub fn first_pts(ts: &[u8]) -> Option<u64> {
    ts.chunks_exact(PACKET).find_map(pes_start_pts)
}

/// The first PTS of the program's first video stream (H.264, HEVC, MPEG-1/2/4 video: ISO/IEC 13818-1 Table
/// 2-34), or [`first_pts`] when the PAT/PMT name none. Stitched items are aligned on their first video frame:
/// a muxer may well put an audio PES first, and audio starts a priming frame early.
pub fn first_video_pts(ts: &[u8]) -> Option<u64> {
    const VIDEO: [u8; 6] = [0x01, 0x02, 0x10, 0x1B, 0x20, 0x24];
    let video = psi::streams(ts).and_then(|(streams, _)| {
        streams
            .into_iter()
            .find(|(stream_type, _)| VIDEO.contains(stream_type))
    });
    match video {
        Some((_, pid)) => ts
            .chunks_exact(PACKET)
            .filter(|p| psi::pid(p) == pid)
            .find_map(pes_start_pts),
        None => first_pts(ts),
    }
}

/// The PTS of the PES packet starting in `packet`, when it starts one and carries a PTS.
fn pes_start_pts(packet: &[u8]) -> Option<u64> {
    let afc = (packet.get(3)? >> 4) & 0x3;
    let payload = if afc & 0x2 != 0 {
        5 + usize::from(*packet.get(4)?)
    } else {
        4
    };
    let pes = packet.get(payload..)?;
    (packet.first() == Some(&0x47)
        && packet.get(1)? & 0x40 != 0
        && afc & 0x1 != 0
        && pes.len() >= 14
        && pes[..3] == [0, 0, 1]
        && pes[7] & 0x80 != 0)
        .then(|| read_pts(&pes[9..14]))
}

/// The segment cut to its first `duration` ticks: from the first PES of a stream whose PTS is `duration` or more
/// after the segment's first PTS, that stream's packets are dropped; tables (PAT, PMT) and everything before the
/// cut are kept.
///
/// Used to fit a slate segment into the time left in a break. The cut is in decode order, so no kept frame refers
/// to a dropped one; it is exact when the video has no B-frames (our slate is encoded so), otherwise a few
/// reordered frames before the cut are lost too. Bytes that are not 188-byte packets are dropped.
pub fn truncate(ts: &[u8], duration: u64) -> Vec<u8> {
    let Some(first) = first_pts(ts) else {
        return ts.to_vec();
    };
    let mut out = Vec::with_capacity(ts.len());
    // PIDs whose current PES is past the cut.
    let mut dropping: Vec<u16> = Vec::new();
    for packet in ts.chunks_exact(PACKET) {
        let pid = u16::from(packet[1] & 0x1F) << 8 | u16::from(packet[2]);
        let pusi = packet[1] & 0x40 != 0;
        if pusi && !dropping.contains(&pid) {
            // A PES slightly before the first one (audio ahead of reordered video) wraps to a huge offset: keep it.
            let past = pes_start_pts(packet).is_some_and(|pts| {
                let after = offset_between(first, pts);
                after >= duration && after < WRAP / 2
            });
            if past {
                dropping.push(pid);
            }
        }
        if !dropping.contains(&pid) {
            out.extend_from_slice(packet);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pts_field_round_trips_every_bit_pattern_boundary() {
        for value in [0u64, 1, 0x7FFF, 0x8000, 0x1_0000_0000, WRAP - 1] {
            let mut b = [0x21, 0x00, 0x01, 0x00, 0x01];
            shift_pts(&mut b, value);
            assert_eq!(read_pts(&b), value);
            assert_eq!(b[0] & 0xF1, 0x21, "prefix and marker kept");
            assert_eq!(b[2] & 1, 1);
            assert_eq!(b[4] & 1, 1);
        }
    }

    #[test]
    fn shifting_wraps_at_33_bits() {
        let mut b = [0x21, 0x00, 0x01, 0x00, 0x01];
        shift_pts(&mut b, WRAP - 10);
        shift_pts(&mut b, 25);
        assert_eq!(read_pts(&b), 15);
    }

    #[test]
    fn truncating_keeps_the_first_frames_and_the_tables() {
        let file: &[u8] = include_bytes!("../../../assets/slate/r0/000.ts");
        let first = first_pts(file).expect("has a PTS");
        let cut = truncate(file, 90_000);
        assert!(cut.len() < file.len() && cut.len() > 188);
        assert_eq!(cut.len() % 188, 0);
        assert!(cut[..188] == file[..188], "the first table packet is kept");
        let last = cut
            .chunks_exact(188)
            .filter_map(pes_start_pts)
            .map(|pts| offset_between(first, pts))
            .filter(|&t| t < WRAP / 2)
            .max();
        assert!(
            last.is_some_and(|t| t < 90_000),
            "a frame at or past 1 s survived: {last:?}"
        );
        assert!(
            truncate(file, 10 * 90_000) == file,
            "a cut past the end keeps everything"
        );
    }

    #[test]
    fn the_first_video_pts_is_found_behind_an_audio_pes() {
        let file: &[u8] = include_bytes!("../../../assets/ads/ad15/r0/000.ts");
        assert_eq!(first_video_pts(file), Some(133_200));
        // Move the first audio PES start (PID 257, PTS 131280) ahead of every video packet.
        let mut packets: Vec<&[u8]> = file.chunks_exact(PACKET).collect();
        let audio = packets
            .iter()
            .position(|p| psi::pid(p) == 257 && p[1] & 0x40 != 0)
            .expect("an audio PES");
        let moved = packets.remove(audio);
        packets.insert(2, moved);
        let reordered = packets.concat();
        assert_eq!(first_pts(&reordered), Some(131_280));
        assert_eq!(first_video_pts(&reordered), Some(133_200));
        let without_pat: Vec<u8> = reordered
            .chunks_exact(PACKET)
            .filter(|p| psi::pid(p) != 0)
            .flatten()
            .copied()
            .collect();
        assert_eq!(
            first_video_pts(&without_pat),
            Some(131_280),
            "no PAT: the first PTS"
        );
    }

    #[test]
    fn offsets_wrap_both_ways() {
        assert_eq!(offset_between(10, 25), 15);
        assert_eq!(offset_between(WRAP - 5, 5), 10);
        assert_eq!(offset_between(25, 10), WRAP - 15);
    }

    #[test]
    fn a_real_segment_is_shifted_exactly() {
        let file: &[u8] = include_bytes!("../../../assets/content/r0/001.ts");
        let before = first_pts(file).expect("has a PTS");
        let mut shifted = file.to_vec();
        shift_timestamps(&mut shifted, 90_000 * 3600);
        assert_eq!(first_pts(&shifted), Some(before + 90_000 * 3600));
        assert_eq!(shifted.len(), file.len());
    }
}
