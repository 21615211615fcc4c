//! Every malformed input gives a typed error naming the field and the byte offset. Inputs are the §14.2
//! splice_insert of ANSI/SCTE 35 2022b with one field damaged and the CRC recomputed.

use interlude_scte35::{Error, SpliceInfoSection, crc32_mpeg2, hex_to_bytes};

const SPLICE_INSERT: &str = "0xFC302F000000000000FFFFF014054800008F7FEFFE7369C02EFE0052CCF500000000000A0008435545490000013562DBA30A";

/// The §14.2 bytes with `edit` applied and a fresh CRC_32.
fn damaged(edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut b = hex_to_bytes(SPLICE_INSERT).expect("hex");
    b.truncate(b.len() - 4);
    edit(&mut b);
    let crc = crc32_mpeg2(&b);
    b.extend_from_slice(&crc.to_be_bytes());
    b
}

#[test]
fn bad_table_id() {
    let b = damaged(|b| b[0] = 0xFD);
    assert_eq!(
        SpliceInfoSection::decode(&b),
        Err(Error::BadTableId { found: 0xFD })
    );
}

#[test]
fn bad_crc_names_both_values_and_the_offset() {
    let mut b = hex_to_bytes(SPLICE_INSERT).expect("hex");
    b[49] ^= 0xFF;
    assert_eq!(
        SpliceInfoSection::decode(&b),
        Err(Error::BadCrc {
            expected: 0x62DB_A30A,
            found: 0x62DB_A3F5,
            offset: 46
        })
    );
}

#[test]
fn truncated_input_and_section_length_overflow() {
    let b = hex_to_bytes(SPLICE_INSERT).expect("hex");
    assert!(matches!(
        SpliceInfoSection::decode(&b[..2]),
        Err(Error::Truncated {
            field: "section_length",
            ..
        })
    ));
    assert_eq!(
        SpliceInfoSection::decode(&b[..40]),
        Err(Error::SectionLength {
            section_length: 47,
            available: 37
        })
    );
    // 4094 is above the 4093 the standard allows, even with enough bytes present.
    let mut big = vec![0xFC, 0x3F, 0xFE];
    big.resize(5000, 0);
    assert_eq!(
        SpliceInfoSection::decode(&big),
        Err(Error::SectionLength {
            section_length: 4094,
            available: 4997
        })
    );
}

#[test]
fn splice_command_length_past_end() {
    let b = damaged(|b| b[12] = 0xF0); // splice_command_length 0x0F0 = 240
    assert_eq!(
        SpliceInfoSection::decode(&b),
        Err(Error::LengthOverflow {
            field: "splice_command_length",
            length: 240,
            offset: 11,
            available: 32
        })
    );
}

#[test]
fn splice_command_length_too_long_for_the_command() {
    let b = damaged(|b| b[12] = 0x15); // one byte more than the splice_insert uses
    assert!(matches!(
        SpliceInfoSection::decode(&b),
        Err(Error::LengthMismatch {
            field: "splice_command_length",
            declared: 21,
            parsed: 20,
            offset: 11
        })
    ));
}

#[test]
fn descriptor_loop_length_past_end() {
    let b = damaged(|b| b[35] = 0x40); // descriptor_loop_length 0x0040
    assert_eq!(
        SpliceInfoSection::decode(&b),
        Err(Error::LengthOverflow {
            field: "descriptor_loop_length",
            length: 64,
            offset: 34,
            available: 10
        })
    );
}

#[test]
fn descriptor_length_past_end() {
    let b = damaged(|b| b[37] = 0x09);
    assert_eq!(
        SpliceInfoSection::decode(&b),
        Err(Error::LengthOverflow {
            field: "descriptor_length",
            length: 9,
            offset: 37,
            available: 8
        })
    );
}

#[test]
fn unknown_command_type() {
    let b = damaged(|b| b[13] = 0x01);
    assert_eq!(
        SpliceInfoSection::decode(&b),
        Err(Error::UnknownCommandType {
            command_type: 0x01,
            offset: 13
        })
    );
}

#[test]
fn truncated_field_inside_a_command_names_it() {
    let b = damaged(|b| b[12] = 0x03); // splice_insert cut after 3 bytes
    assert_eq!(
        SpliceInfoSection::decode(&b),
        Err(Error::Truncated {
            field: "splice_event_id",
            offset: 14,
            needed_bits: 32
        })
    );
}

#[test]
fn legacy_length_private_command_cannot_be_delimited() {
    let b = damaged(|b| {
        b[11] |= 0x0F;
        b[12] = 0xFF;
        b[13] = 0xFF;
    });
    assert!(matches!(
        SpliceInfoSection::decode(&b),
        Err(Error::Invalid {
            field: "splice_command_length",
            ..
        })
    ));
}

#[test]
fn encode_rejects_values_that_do_not_fit() {
    let mut s = SpliceInfoSection::splice_insert_out(1, Some(0), None);
    s.tier = 0x1000;
    assert_eq!(
        s.encode(),
        Err(Error::ValueOutOfRange {
            field: "tier",
            value: 0x1000,
            bits: 12
        })
    );
    let mut s = SpliceInfoSection::splice_insert_out(1, Some(0), None);
    s.encrypted_packet = true;
    assert!(matches!(
        s.encode(),
        Err(Error::Invalid {
            field: "encrypted",
            ..
        })
    ));
}

#[test]
fn builders_make_what_the_simulator_expects() {
    let out = SpliceInfoSection::splice_insert_out(9, None, Some(2_700_000));
    let back = SpliceInfoSection::decode(&out.encode().expect("encodes")).expect("decodes");
    assert!(back.is_ad_break_start() && back.splice_pts().is_none());
    assert_eq!(
        back.break_duration(),
        Some(std::time::Duration::from_secs(30))
    );
    let inn = SpliceInfoSection::splice_insert_in(9, Some((1 << 33) + 5));
    assert!(inn.is_ad_break_end());
    assert_eq!(inn.splice_pts(), Some(5));
    let ts = SpliceInfoSection::time_signal_segmentation(1000, 0x36, 77, Some(90_000));
    let back = SpliceInfoSection::parse_any(&ts.to_base64().expect("encodes")).expect("decodes");
    assert_eq!(back, ts);
    assert!(back.is_ad_break_start());
    assert_eq!((back.event_id(), back.splice_pts()), (Some(77), Some(1000)));
    let end = SpliceInfoSection::time_signal_segmentation(2000, 0x37, 77, None);
    assert!(end.is_ad_break_end() && !end.is_ad_break_start());
    let mut adjusted = SpliceInfoSection::time_signal_segmentation((1 << 33) - 10, 0x22, 1, None);
    adjusted.pts_adjustment = 20;
    assert_eq!(adjusted.splice_pts(), Some(10));
}
