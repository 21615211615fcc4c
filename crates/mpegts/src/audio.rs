//! Fitting a segment's AAC audio to a PTS window, frame by frame (ISO/IEC 13818-1 §2.4.3 packets, §2.4.3.6 PES;
//! ISO/IEC 13818-7 ADTS).
//!
//! A stitched item (an ad, a slate) is aligned on its first video frame, but its audio rarely spans exactly its
//! video: encoders start AAC a frame early (priming) and end it late, and an audio PES carries a third of a
//! second of frames, so whole-PES cuts leave gaps. Here each audio PES is split at ADTS frame boundaries, the
//! frames outside the window dropped, its PES header rewritten (PTS of the first kept frame,
//! PES_packet_length) and the PES packetized again; optionally silence fills the window's edges. Only the audio
//! PID's packets change (their continuity_counter renumbered through the segment); video, tables and PCR are
//! untouched. Anything not understood (no PAT/PMT, scrambled or malformed PES, frames that are not ADTS) is left
//! as it is.

use crate::adts::{self, Frame};
use crate::psi::{self, STREAM_TYPE_ADTS};
use crate::{PACKET, WRAP, offset_between, read_pts, write_pts};

/// How [`fit_audio`] fits a segment's audio to the window `[start, end)` (90 kHz PTS, wrapping at 2^33).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioWindow {
    /// Frames whose PTS is before this are dropped.
    pub start: u64,
    /// Frames whose PTS is at or after this are dropped.
    pub end: u64,
    /// The segment opens the window: silent frames fill from `start` (to within one frame) up to the first
    /// kept frame.
    pub pad_start: bool,
    /// The segment closes the window: silent frames fill from the end of the last kept frame up to `end`
    /// (to within one frame).
    pub pad_end: bool,
}

/// `ts` with its audio frames cut to `[start, end)`: see [`fit_audio`], without padding.
pub fn trim_audio(ts: &[u8], start: u64, end: u64) -> Vec<u8> {
    fit_audio(
        ts,
        &AudioWindow {
            start,
            end,
            pad_start: false,
            pad_end: false,
        },
    )
}

/// `ts` with the frames of its ADTS audio stream (the first of stream_type 0x0F in the PMT) kept only where
/// their PTS falls in the window, and silence added at the edges the window asks for. Silence is only made for
/// AAC-LC mono and stereo. A segment that is not a sequence of 188-byte packets is returned unchanged.
pub fn fit_audio(ts: &[u8], window: &AudioWindow) -> Vec<u8> {
    let Some(audio) = Audio::find(ts) else {
        return ts.to_vec();
    };
    let plans: Vec<Plan> = audio.units.iter().map(|unit| plan(unit, window)).collect();
    let mut pads: (Option<Vec<u8>>, Option<Vec<u8>>) = (None, None);
    let kept = |p: &&Plan| matches!(p, Plan::Keep(Some(_)) | Plan::Replace(_, _));
    if window.pad_start {
        pads.0 = plans
            .iter()
            .find(kept)
            .and_then(|p| padding_before(p, window));
    }
    if window.pad_end {
        pads.1 = plans
            .iter()
            .rev()
            .find(kept)
            .and_then(|p| padding_after(p, window));
    }
    if pads == (None, None) && plans.iter().all(|p| matches!(p, Plan::Keep(_))) {
        return ts.to_vec();
    }
    let first_kept = plans.iter().position(|p| kept(&p));
    let last_kept = plans.iter().rposition(|p| kept(&p));

    // Which unit, and which packet of it, each packet of the segment is.
    let mut slot: Vec<Option<(usize, usize)>> = vec![None; ts.len() / PACKET];
    for (u, unit) in audio.units.iter().enumerate() {
        for (j, &i) in unit.packets.iter().enumerate() {
            slot[i] = Some((u, j));
        }
    }
    let mut out = Vec::with_capacity(ts.len() + 2 * PACKET);
    for (i, packet) in ts.chunks_exact(PACKET).enumerate() {
        let Some((u, j)) = slot[i] else {
            out.extend_from_slice(packet);
            continue;
        };
        let unit = &audio.units[u];
        if j == 0 && Some(u) == first_kept {
            if let Some(pes) = &pads.0 {
                out.extend(packetize(packet, pes));
            }
        }
        match &plans[u] {
            Plan::Keep(_) => out.extend_from_slice(packet),
            Plan::Drop => {}
            Plan::Replace(pes, _) => {
                let new = packetize(&ts[unit.packets[0] * PACKET..][..PACKET], pes);
                // The new packets take the old ones' places; more of them (never expected) follow the last.
                let mut chunks = new.chunks_exact(PACKET).skip(j);
                if let Some(p) = chunks.next() {
                    out.extend_from_slice(p);
                }
                if j + 1 == unit.packets.len() {
                    chunks.for_each(|p| out.extend_from_slice(p));
                }
            }
        }
        if j + 1 == unit.packets.len() && Some(u) == last_kept {
            if let Some(pes) = &pads.1 {
                out.extend(packetize(packet, pes));
            }
        }
    }
    renumber(&mut out, audio.pid);
    out
}

/// The first audio PTS in `ts` and the PTS just after its last audio frame (90 kHz): the span its audio
/// covers. `None` without an ADTS stream, or when its first or last PES cannot be read.
pub fn audio_span(ts: &[u8]) -> Option<(u64, u64)> {
    let audio = Audio::find(ts)?;
    let first = audio.units.first()?;
    let last = audio.units.last()?;
    let start = Pes::parse(&first.data)?.pts;
    let pes = Pes::parse(&last.data)?;
    let (frames, rate) = adts::frames(&last.data[pes.payload..])?;
    let samples: u64 = frames.iter().map(|f| f.samples).sum();
    Some((start, (pes.pts + adts::ticks(samples, rate)) % WRAP))
}

/// The PTS of every frame of the ADTS audio stream in `ts`, in order (90 kHz), from the PES that can be read:
/// for tests and diagnostics.
pub fn audio_frames(ts: &[u8]) -> Vec<u64> {
    let mut out = Vec::new();
    for unit in Audio::find(ts).map(|a| a.units).unwrap_or_default() {
        let Some(pes) = Pes::parse(&unit.data) else {
            continue;
        };
        let Some((frames, rate)) = adts::frames(&unit.data[pes.payload..]) else {
            continue;
        };
        let mut samples = 0;
        for frame in frames {
            out.push((pes.pts + adts::ticks(samples, rate)) % WRAP);
            samples += frame.samples;
        }
    }
    out
}

/// The audio PID of a segment and its PES, each with the packets that carry it.
struct Audio {
    pid: u16,
    units: Vec<Unit>,
}

/// One audio PES: the indices of its packets in the segment and its bytes (header and payload).
struct Unit {
    packets: Vec<usize>,
    data: Vec<u8>,
    /// Every packet had a payload and none was scrambled or flagged in error.
    clean: bool,
}

impl Audio {
    fn find(ts: &[u8]) -> Option<Audio> {
        if ts.len() % PACKET != 0 || ts.chunks_exact(PACKET).any(|p| p[0] != 0x47) {
            return None;
        }
        let (streams, pcr_pid) = psi::streams(ts)?;
        let pid = streams
            .iter()
            .find(|(t, _)| *t == STREAM_TYPE_ADTS)
            .map(|&(_, pid)| pid)?;
        // Rewriting the PCR's carrier would move or lose PCRs: leave such a stream alone.
        if pid == pcr_pid {
            return None;
        }
        let mut units: Vec<Unit> = Vec::new();
        for (i, packet) in ts.chunks_exact(PACKET).enumerate() {
            if psi::pid(packet) != pid {
                continue;
            }
            let start = packet[1] & 0x40 != 0;
            // A continuation before the segment's first PES start belongs to a PES we do not have.
            if !start && units.is_empty() {
                continue;
            }
            if start {
                units.push(Unit {
                    packets: Vec::new(),
                    data: Vec::new(),
                    clean: true,
                });
            }
            let unit = units.last_mut()?;
            unit.packets.push(i);
            let error_or_scrambled = packet[1] & 0x80 != 0 || packet[3] & 0xC0 != 0;
            match psi::payload_offset(packet) {
                Some(offset) if !error_or_scrambled => {
                    unit.data.extend_from_slice(&packet[offset..])
                }
                _ => unit.clean = false,
            }
        }
        Some(Audio { pid, units })
    }
}

/// The fields of a PES header we use (§2.4.3.6).
struct Pes {
    pts: u64,
    /// Offset of the payload (the ADTS frames).
    payload: usize,
}

impl Pes {
    fn parse(data: &[u8]) -> Option<Pes> {
        let h = data.get(..14)?;
        // An audio stream_id (110x xxxx), marker '10', PES_scrambling_control '00', a PTS.
        if h[..3] != [0, 0, 1] || h[3] & 0xE0 != 0xC0 || h[6] & 0xF0 != 0x80 || h[7] & 0x80 == 0 {
            return None;
        }
        let payload = 9 + usize::from(h[8]);
        let declared = usize::from(h[4]) << 8 | usize::from(h[5]);
        // PES_packet_length must match what the packets carry (0, "unbounded", is for video only).
        if payload > data.len() || declared + 6 != data.len() {
            return None;
        }
        Some(Pes {
            pts: read_pts(&h[9..14]),
            payload,
        })
    }
}

/// What becomes of one audio PES.
enum Plan {
    /// Left as it is: the first and last kept frame (PTS, frame) when it was understood and wholly inside.
    Keep(Option<Kept>),
    /// Every frame is outside the window.
    Drop,
    /// Some frames kept: the new PES, and its first and last frame.
    Replace(Vec<u8>, Kept),
}

/// The first and last frame of a PES after the cut: PTS and ADTS header of the first, PTS and samples of the
/// last, and the sample rate.
#[derive(Clone)]
struct Kept {
    first_pts: u64,
    first_header: Vec<u8>,
    last_pts: u64,
    last_samples: u64,
    rate: u64,
}

fn plan(unit: &Unit, window: &AudioWindow) -> Plan {
    if !unit.clean {
        return Plan::Keep(None);
    }
    let Some(pes) = Pes::parse(&unit.data) else {
        return Plan::Keep(None);
    };
    let es = &unit.data[pes.payload..];
    let Some((frames, rate)) = adts::frames(es) else {
        return Plan::Keep(None);
    };
    let length = offset_between(window.start, window.end);
    let mut samples = 0;
    let mut kept: Vec<(u64, Frame)> = Vec::new();
    for frame in &frames {
        let pts = (pes.pts + adts::ticks(samples, rate)) % WRAP;
        samples += frame.samples;
        if offset_between(window.start, pts) < length {
            kept.push((pts, *frame));
        }
    }
    let (Some(&(first_pts, first)), Some(&(last_pts, last))) = (kept.first(), kept.last()) else {
        return Plan::Drop;
    };
    let summary = Kept {
        first_pts,
        first_header: es[first.offset..first.offset + 7].to_vec(),
        last_pts,
        last_samples: last.samples,
        rate,
    };
    if kept.len() == frames.len() {
        return Plan::Keep(Some(summary));
    }
    let body = &es[first.offset..last.offset + last.len];
    let mut data = unit.data[..pes.payload].to_vec();
    data.extend_from_slice(body);
    let Ok(length) = u16::try_from(data.len() - 6) else {
        return Plan::Keep(None);
    };
    data[4..6].copy_from_slice(&length.to_be_bytes());
    let shift = offset_between(pes.pts, first_pts);
    write_pts(&mut data[9..14], first_pts);
    // A DTS, if any, moves with the PTS (for audio they are equal).
    if data[7] & 0xC0 == 0xC0 && pes.payload >= 19 {
        let dts = (read_pts(&data[14..19]) + shift) % WRAP;
        write_pts(&mut data[14..19], dts);
    }
    Plan::Replace(data, summary)
}

fn summary(plan: &Plan) -> Option<&Kept> {
    match plan {
        Plan::Keep(Some(k)) | Plan::Replace(_, k) => Some(k),
        _ => None,
    }
}

/// A PES of silent frames ending where `plan`'s first frame starts, reaching back to the window's start.
fn padding_before(plan: &Plan, window: &AudioWindow) -> Option<Vec<u8>> {
    let kept = summary(plan)?;
    let gap = offset_between(window.start, kept.first_pts);
    let count = whole_frames(gap, kept.rate);
    let pts = offset_between(adts::ticks(count * 1024, kept.rate), kept.first_pts);
    silent_pes(&kept.first_header, count, pts)
}

/// A PES of silent frames starting where `plan`'s last frame ends, reaching to the window's end.
fn padding_after(plan: &Plan, window: &AudioWindow) -> Option<Vec<u8>> {
    let kept = summary(plan)?;
    let pts = (kept.last_pts + adts::ticks(kept.last_samples, kept.rate)) % WRAP;
    let gap = offset_between(pts, window.end);
    if gap >= WRAP / 2 {
        return None; // the last frame already reaches past the end
    }
    silent_pes(&kept.first_header, whole_frames(gap, kept.rate), pts)
}

/// How many whole 1024-sample frames fit in `gap` ticks; none for a gap of half the clock or more (the PTS is
/// not ahead, it is behind).
fn whole_frames(gap: u64, rate: u64) -> u64 {
    if gap >= WRAP / 2 {
        return 0;
    }
    gap * rate / (90_000 * 1024)
}

/// An audio PES (stream_id 0xC0, PTS only) of `count` silent frames like `header`'s stream, starting at `pts`.
fn silent_pes(header: &[u8], count: u64, pts: u64) -> Option<Vec<u8>> {
    if count == 0 {
        return None;
    }
    let frame = adts::silent_frame(header)?;
    let mut pes = vec![0, 0, 1, 0xC0, 0, 0, 0x80, 0x80, 5, 0x21, 0, 1, 0, 1];
    for _ in 0..count {
        pes.extend_from_slice(&frame);
    }
    let length = u16::try_from(pes.len() - 6).ok()?;
    pes[4..6].copy_from_slice(&length.to_be_bytes());
    write_pts(&mut pes[9..14], pts);
    Some(pes)
}

/// `pes` cut into packets of `template`'s PID, transport_priority and scrambling bits. The first packet keeps
/// `template`'s adaptation flags (discontinuity, random access, priority) when it has any; the last is
/// filled with adaptation-field stuffing (§2.4.3.5). Continuity counters are set later by [`renumber`].
fn packetize(template: &[u8], pes: &[u8]) -> Vec<u8> {
    let flags = if (template[3] >> 4) & 0x2 != 0 && template[4] > 0 {
        template[5] & 0xE0
    } else {
        0
    };
    let mut out = Vec::with_capacity((pes.len() / 170 + 1) * PACKET);
    let mut rest = pes;
    let mut first = true;
    while first || !rest.is_empty() {
        // Adaptation field bytes this packet needs before stuffing: its length byte and flags byte.
        let fixed = if first && flags != 0 { 2 } else { 0 };
        let n = rest.len().min(184 - fixed);
        let af = 184 - n; // length byte + flags + stuffing
        out.push(0x47);
        out.push(if first { 0x40 } else { 0 } | (template[1] & 0x3F));
        out.push(template[2]);
        out.push((template[3] & 0xC0) | if af > 0 { 0x30 } else { 0x10 });
        if af > 0 {
            out.push((af - 1) as u8);
            if af > 1 {
                out.push(if first { flags } else { 0 });
                out.extend(std::iter::repeat_n(0xFF, af - 2));
            }
        }
        out.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        first = false;
    }
    out
}

/// Renumbers `pid`'s continuity_counter through the segment from its first packet's value: +1 per packet with
/// a payload, repeated on a packet without (§2.4.3.3).
fn renumber(ts: &mut [u8], pid: u16) {
    let mut next: Option<u8> = None;
    for packet in ts.chunks_exact_mut(PACKET) {
        if psi::pid(packet) != pid {
            continue;
        }
        let has_payload = packet[3] & 0x10 != 0;
        let cc = match next {
            None => packet[3] & 0x0F,
            Some(n) if has_payload => n,
            Some(n) => n.wrapping_sub(1) & 0x0F,
        };
        packet[3] = (packet[3] & 0xF0) | cc;
        next = Some(if has_payload { (cc + 1) & 0x0F } else { cc });
    }
}
