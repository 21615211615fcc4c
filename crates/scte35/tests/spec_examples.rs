//! The sample messages of ANSI/SCTE 35 2022b §14 (/work/shared/testdata/scte35/SCTE_35_2022b.pdf, pages
//! 95-101): each decodes to the fields the standard lists and encodes back to the same bytes.

use interlude_scte35::{
    DeliveryRestrictions, SegmentationTypeId, SegmentationUpid, SpliceCommand, SpliceDescriptor,
    SpliceInfoSection,
};

struct Seg {
    event_id: u32,
    web: bool,
    duration: Option<u64>,
    ti: u64,
    type_id: SegmentationTypeId,
    segment_num: u8,
}

fn check_time_signal(hex: &str, base64: &str, section_length: usize, pts: u64, segs: &[Seg]) {
    let from_hex = SpliceInfoSection::from_hex(hex).expect("hex decodes");
    let from_b64 = SpliceInfoSection::from_base64(base64).expect("base64 decodes");
    assert_eq!(from_hex, from_b64);
    let bytes = interlude_scte35::hex_to_bytes(hex).expect("hex");
    assert_eq!(bytes.len(), section_length + 3);
    assert_eq!(from_hex.encode().expect("encodes"), bytes);
    assert_eq!(from_hex.to_base64().expect("base64"), base64);
    assert_eq!(from_hex.to_hex().expect("hex"), hex);
    let s = from_hex;
    assert_eq!(s.sap_type, 3);
    assert!(!s.section_syntax_indicator && !s.private_indicator && !s.encrypted_packet);
    assert_eq!(
        (s.protocol_version, s.pts_adjustment, s.tier),
        (0, 0, 0xFFF)
    );
    let SpliceCommand::TimeSignal(t) = &s.splice_command else {
        panic!("not a time_signal")
    };
    assert_eq!(t.splice_time.pts_time, Some(pts));
    assert_eq!(s.splice_descriptors.len(), segs.len());
    for (d, want) in s.splice_descriptors.iter().zip(segs) {
        let SpliceDescriptor::SegmentationDescriptor(d) = d else {
            panic!("not a segmentation_descriptor")
        };
        assert_eq!(d.segmentation_event_id, want.event_id);
        assert!(!d.segmentation_event_cancel_indicator);
        assert_eq!(
            d.delivery_restrictions,
            Some(DeliveryRestrictions {
                web_delivery_allowed_flag: want.web,
                no_regional_blackout_flag: true,
                archive_allowed_flag: true,
                device_restrictions: 3
            })
        );
        assert!(d.components.is_none(), "program segmentation");
        assert_eq!(d.segmentation_duration, want.duration);
        assert_eq!(d.segmentation_upid, SegmentationUpid::Ti(want.ti));
        assert_eq!(d.segmentation_type_id, want.type_id);
        assert_eq!((d.segment_num, d.segments_expected), (want.segment_num, 0));
        assert_eq!(d.sub_segment, None);
    }
}

#[test]
fn spec_14_1_time_signal_placement_opportunity_start() {
    check_time_signal(
        "0xFC3034000000000000FFFFF00506FE72BD0050001E021C435545494800008E7FCF0001A599B00808000000002CA0A18A3402009AC9D17E",
        "/DA0AAAAAAAA///wBQb+cr0AUAAeAhxDVUVJSAAAjn/PAAGlmbAICAAAAAAsoKGKNAIAmsnRfg==",
        52,
        0x0_72BD_0050,
        &[Seg {
            event_id: 0x4800_008E,
            web: false,
            duration: Some(0x0000_01A5_99B0),
            ti: 0x2CA0_A18A,
            type_id: SegmentationTypeId::ProviderPlacementOpportunityStart,
            segment_num: 2,
        }],
    );
    let s = SpliceInfoSection::from_base64(
        "/DA0AAAAAAAA///wBQb+cr0AUAAeAhxDVUVJSAAAjn/PAAGlmbAICAAAAAAsoKGKNAIAmsnRfg==",
    )
    .expect("decodes");
    assert!(s.is_ad_break_start());
    assert_eq!(
        s.break_duration(),
        Some(std::time::Duration::from_secs(307))
    );
    assert_eq!(s.event_id(), Some(0x4800_008E));
    assert!((s.splice_pts().unwrap_or_default() as f64 / 90_000.0 - 21388.766756).abs() < 1e-5);
}

#[test]
fn spec_14_2_splice_insert() {
    let b64 = "/DAvAAAAAAAA///wFAVIAACPf+/+c2nALv4AUsz1AAAAAAAKAAhDVUVJAAABNWLbowo=";
    let hex = "0xFC302F000000000000FFFFF014054800008F7FEFFE7369C02EFE0052CCF500000000000A0008435545490000013562DBA30A";
    let s = SpliceInfoSection::from_base64(b64).expect("decodes");
    assert_eq!(s, SpliceInfoSection::from_hex(hex).expect("decodes"));
    assert_eq!(s.to_hex().expect("encodes"), hex);
    let SpliceCommand::SpliceInsert(i) = &s.splice_command else {
        panic!("not a splice_insert")
    };
    assert_eq!(i.splice_event_id, 0x4800_008F);
    assert!(i.out_of_network_indicator && i.program_splice_flag && !i.splice_immediate_flag);
    assert_eq!(i.splice_time.and_then(|t| t.pts_time), Some(0x0_7369_C02E));
    let d = i.break_duration.expect("break_duration");
    assert!(d.auto_return);
    assert_eq!(d.duration, 0x0_0052_CCF5);
    assert_eq!(
        (i.unique_program_id, i.avail_num, i.avails_expected),
        (0, 0, 0)
    );
    assert_eq!(
        s.splice_descriptors,
        vec![SpliceDescriptor::AvailDescriptor(
            interlude_scte35::AvailDescriptor {
                provider_avail_id: 309
            }
        )]
    );
    assert!(s.is_ad_break_start() && !s.is_ad_break_end());
    assert_eq!(s.break_duration().map(|d| d.as_micros()), Some(60_293_566));
}

#[test]
fn spec_14_3_time_signal_placement_opportunity_end() {
    check_time_signal(
        "0xFC302F000000000000FFFFF00506FE746290A000190217435545494800008E7F9F0808000000002CA0A18A350200A9CC6758",
        "/DAvAAAAAAAA///wBQb+dGKQoAAZAhdDVUVJSAAAjn+fCAgAAAAALKChijUCAKnMZ1g=",
        47,
        0x0_7462_90A0,
        &[Seg {
            event_id: 0x4800_008E,
            web: true,
            duration: None,
            ti: 0x2CA0_A18A,
            type_id: SegmentationTypeId::ProviderPlacementOpportunityEnd,
            segment_num: 2,
        }],
    );
}

fn program(event_id: u32, ti: u64, type_id: SegmentationTypeId) -> Seg {
    Seg {
        event_id,
        web: true,
        duration: None,
        ti,
        type_id,
        segment_num: 0,
    }
}

#[test]
fn spec_14_4_time_signal_program_start_end() {
    check_time_signal(
        "0xFC3048000000000000FFFFF00506FE7A4D88B60032021743554549480000187F9F0808000000002CCBC344110000021743554549480000197F9F0808000000002CA4DBA01000009972E343",
        "/DBIAAAAAAAA///wBQb+ek2ItgAyAhdDVUVJSAAAGH+fCAgAAAAALMvDRBEAAAIXQ1VFSUgAABl/nwgIAAAAACyk26AQAACZcuND",
        72,
        0x0_7A4D_88B6,
        &[
            program(0x4800_0018, 0x2CCB_C344, SegmentationTypeId::ProgramEnd),
            program(0x4800_0019, 0x2CA4_DBA0, SegmentationTypeId::ProgramStart),
        ],
    );
}

#[test]
fn spec_14_5_time_signal_program_overlap_start() {
    check_time_signal(
        "0xFC302F000000000000FFFFF00506FEAEBFFF640019021743554549480000087F9F0808000000002CA56CF5170000951DB0A8",
        "/DAvAAAAAAAA///wBQb+rr//ZAAZAhdDVUVJSAAACH+fCAgAAAAALKVs9RcAAJUdsKg=",
        47,
        0x0_AEBF_FF64,
        &[program(
            0x4800_0008,
            0x2CA5_6CF5,
            SegmentationTypeId::ProgramOverlapStart,
        )],
    );
}

#[test]
fn spec_14_6_time_signal_program_blackout_override_program_end() {
    check_time_signal(
        "0xFC3048000000000000FFFFF00506FE932E380B00320217435545494800000A7F9F0808000000002CA0A1E3180000021743554549480000097F9F0808000000002CA0A18A110000B4217EB0",
        "/DBIAAAAAAAA///wBQb+ky44CwAyAhdDVUVJSAAACn+fCAgAAAAALKCh4xgAAAIXQ1VFSUgAAAl/nwgIAAAAACygoYoRAAC0IX6w",
        72,
        0x0_932E_380B,
        &[
            program(
                0x4800_000A,
                0x2CA0_A1E3,
                SegmentationTypeId::ProgramBlackoutOverride,
            ),
            program(0x4800_0009, 0x2CA0_A18A, SegmentationTypeId::ProgramEnd),
        ],
    );
}

#[test]
fn spec_14_7_time_signal_program_end() {
    check_time_signal(
        "0xFC302F000000000000FFFFF00506FEAEF17C4C0019021743554549480000077F9F0808000000002CA56C97110000C4876A2E",
        "/DAvAAAAAAAA///wBQb+rvF8TAAZAhdDVUVJSAAAB3+fCAgAAAAALKVslxEAAMSHai4=",
        47,
        0x0_AEF1_7C4C,
        &[program(
            0x4800_0007,
            0x2CA5_6C97,
            SegmentationTypeId::ProgramEnd,
        )],
    );
}

#[test]
fn spec_14_8_time_signal_program_start_end_placement_opportunity_end() {
    let mut po_end = program(
        0x4800_00AD,
        0x2CB2_D79D,
        SegmentationTypeId::ProviderPlacementOpportunityEnd,
    );
    po_end.segment_num = 2;
    check_time_signal(
        "0xFC3061000000000000FFFFF00506FEA8CD44ED004B021743554549480000AD7F9F0808000000002CB2D79D350200021743554549480000267F9F0808000000002CB2D79D110000021743554549480000277F9F0808000000002CB2D7B31000008A18869F",
        "/DBhAAAAAAAA///wBQb+qM1E7QBLAhdDVUVJSAAArX+fCAgAAAAALLLXnTUCAAIXQ1VFSUgAACZ/nwgIAAAAACyy150RAAACF0NVRUlIAAAnf58ICAAAAAAsstezEAAAihiGnw==",
        97,
        0x0_A8CD_44ED,
        &[
            po_end,
            program(0x4800_0026, 0x2CB2_D79D, SegmentationTypeId::ProgramEnd),
            program(0x4800_0027, 0x2CB2_D7B3, SegmentationTypeId::ProgramStart),
        ],
    );
}
