//! Transport streams built by hand: PAT → PMT → a SCTE-35 PID, sections split across packets.

use super::*;
use crate::crc::crc32_mpeg2;

fn packet(pid: u16, pusi: bool, cc: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![
        SYNC,
        (u8::from(pusi) << 6) | (pid >> 8) as u8,
        pid as u8,
        0x10 | (cc & 0xF),
    ];
    p.extend_from_slice(payload);
    p.resize(PACKET, 0xFF);
    p
}

fn with_crc(mut s: Vec<u8>) -> Vec<u8> {
    let crc = crc32_mpeg2(&s);
    s.extend_from_slice(&crc.to_be_bytes());
    s
}

fn pat(pmt_pid: u16) -> Vec<u8> {
    let body = vec![
        0x00,
        0xB0,
        13,
        0x00,
        0x01,
        0xC1,
        0,
        0,
        0x00,
        0x01,
        0xE0 | (pmt_pid >> 8) as u8,
        pmt_pid as u8,
    ];
    let mut s = with_crc(body);
    s.insert(0, 0); // pointer_field
    s
}

fn pmt(scte_pid: u16, stream_type: u8, es_descriptors: &[u8]) -> Vec<u8> {
    let mut body = vec![
        0x02, 0xB0, 0, 0x00, 0x01, 0xC1, 0, 0, 0xE1, 0x00, 0xF0, 0x00,
    ];
    body.extend_from_slice(&[0x1B, 0xE1, 0x00, 0xF0, 0x00]); // a video stream
    body.extend_from_slice(&[
        stream_type,
        0xE0 | (scte_pid >> 8) as u8,
        scte_pid as u8,
        0xF0,
        es_descriptors.len() as u8,
    ]);
    body.extend_from_slice(es_descriptors);
    body[2] = (body.len() + 4 - 3) as u8;
    let mut s = with_crc(body);
    s.insert(0, 0);
    s
}

fn cue(event_id: u32) -> Vec<u8> {
    let mut s =
        SpliceInfoSection::time_signal_segmentation(900_000, 0x34, event_id, Some(2_700_000));
    // A long private descriptor makes the section span two packets.
    s.splice_descriptors
        .push(crate::SpliceDescriptor::PrivateDescriptor(
            crate::PrivateDescriptor {
                splice_descriptor_tag: 0xF0,
                identifier: 0x5445_5354,
                private_bytes: vec![0xAB; 200],
            },
        ));
    s.encode().expect("encodes")
}

#[test]
fn finds_sections_through_pat_and_pmt_across_packets() {
    let section = cue(42);
    assert!(section.len() > 183);
    let mut ts = packet(0, true, 0, &pat(0x100));
    ts.extend(packet(0x100, true, 0, &pmt(0x1F0, 0x86, &[])));
    ts.extend(packet(0x111, true, 0, &[0; 10])); // unrelated PID
    let mut first = vec![0u8];
    first.extend_from_slice(&section[..183]);
    ts.extend(packet(0x1F0, true, 3, &first));
    ts.extend([0x00, 0x12, 0x47]); // garbage forcing a resync
    ts.extend(packet(0x1F0, false, 4, &section[183..]));
    let cues: Vec<TsCue> = TsExtractor::new(&ts).collect();
    assert_eq!(cues.len(), 1);
    assert_eq!((cues[0].pid, cues[0].packet_offset), (0x1F0, 3 * PACKET));
    let s = cues[0].section.as_ref().expect("decodes");
    assert_eq!(s.event_id(), Some(42));
    assert_eq!(s.encode().ok(), Some(section));
}

#[test]
fn registration_descriptor_marks_a_private_stream() {
    let section = SpliceInfoSection::splice_insert_out(7, Some(1000), None)
        .encode()
        .expect("encodes");
    let mut ts = packet(0, true, 0, &pat(0x30));
    ts.extend(packet(
        0x30,
        true,
        0,
        &pmt(0x31, 0x06, &[0x05, 0x04, b'C', b'U', b'E', b'I']),
    ));
    let mut payload = vec![0u8];
    payload.extend_from_slice(&section);
    payload.extend_from_slice(&section); // two sections in one packet
    ts.extend(packet(0x31, true, 0, &payload));
    let cues: Vec<TsCue> = TsExtractor::new(&ts).collect();
    assert_eq!(cues.len(), 2);
    assert!(cues.iter().all(|c| {
        c.section
            .as_ref()
            .is_ok_and(SpliceInfoSection::is_ad_break_start)
    }));
}

#[test]
fn continuity_loss_drops_the_partial_section_and_bad_crc_is_reported() {
    let section = cue(1);
    let mut first = vec![0u8];
    first.extend_from_slice(&section[..183]);
    let mut ts = packet(0x40, true, 0, &first);
    ts.extend(packet(0x40, false, 2, &section[183..])); // cc jumps 0 -> 2
    let mut bad = section.clone();
    if let Some(last) = bad.last_mut() {
        *last ^= 1;
    }
    let mut p = vec![0u8];
    p.extend_from_slice(&bad[..100.min(bad.len())]);
    let short = SpliceInfoSection::splice_insert_in(3, None)
        .encode()
        .expect("encodes");
    let mut bad_short = short.clone();
    if let Some(last) = bad_short.last_mut() {
        *last ^= 1;
    }
    let mut p2 = vec![0u8];
    p2.extend_from_slice(&bad_short);
    ts.extend(packet(0x40, true, 3, &p2));
    let cues: Vec<TsCue> = TsExtractor::with_pids(&ts, &[0x40]).collect();
    assert_eq!(cues.len(), 1);
    assert!(matches!(cues[0].section, Err(crate::Error::BadCrc { .. })));
}

#[test]
fn arbitrary_bytes_do_not_panic() {
    let mut data = vec![0u8; 188 * 5];
    for (i, b) in data.iter_mut().enumerate() {
        *b = if i % 188 == 0 {
            SYNC
        } else {
            (i * 31 % 251) as u8
        };
    }
    let _ = TsExtractor::new(&data).count();
    let _ = TsExtractor::with_pids(&data, &[0x1FFF, 0]).count();
}
