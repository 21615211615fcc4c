//! Property tests: random valid sections (every command, descriptor and UPID type, reserved bits kept or
//! not, legacy command length, stuffing, encrypted parts) satisfy decode(encode(x)) == x, and the JSON form
//! deserializes back to x.

use interlude_scte35::*;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

fn reserved(bits: u32) -> impl Strategy<Value = Option<u8>> {
    let all_ones = (1u16 << bits) - 1;
    prop_oneof![3 => Just(None), 1 => (0..all_ones).prop_map(|v| Some(v as u8))]
}

fn pts() -> impl Strategy<Value = u64> {
    0..(1u64 << 33)
}

fn splice_time() -> impl Strategy<Value = SpliceTime> {
    prop_oneof![
        (pts(), reserved(6)).prop_map(|(p, r)| SpliceTime {
            pts_time: Some(p),
            reserved: r
        }),
        reserved(7).prop_map(|r| SpliceTime {
            pts_time: None,
            reserved: r
        }),
    ]
}

fn break_duration() -> impl Strategy<Value = BreakDuration> {
    (any::<bool>(), reserved(6), pts()).prop_map(|(auto_return, reserved, duration)| {
        BreakDuration {
            auto_return,
            reserved,
            duration,
        }
    })
}

fn splice_insert() -> impl Strategy<Value = SpliceInsert> {
    let cancelled = (any::<u32>(), reserved(7)).prop_map(|(id, r)| SpliceInsert {
        splice_event_id: id,
        splice_event_cancel_indicator: true,
        reserved1: r,
        ..SpliceInsert::default()
    });
    let active = (
        (
            any::<u32>(),
            reserved(7),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            reserved(3),
        ),
        splice_time(),
        vec((any::<u8>(), splice_time()), 0..4),
        option::of(break_duration()),
        (any::<u16>(), any::<u8>(), any::<u8>()),
    )
        .prop_map(
            |(
                (id, r1, out, program, immediate, compliance, r2),
                time,
                comps,
                bd,
                (upid, num, exp),
            )| {
                SpliceInsert {
                    splice_event_id: id,
                    splice_event_cancel_indicator: false,
                    reserved1: r1,
                    out_of_network_indicator: out,
                    program_splice_flag: program,
                    splice_immediate_flag: immediate,
                    event_id_compliance_flag: compliance,
                    reserved2: r2,
                    splice_time: (program && !immediate).then_some(time),
                    components: if program {
                        Vec::new()
                    } else {
                        comps
                            .into_iter()
                            .map(|(tag, t)| SpliceInsertComponent {
                                component_tag: tag,
                                splice_time: (!immediate).then_some(t),
                            })
                            .collect()
                    },
                    break_duration: bd,
                    unique_program_id: upid,
                    avail_num: num,
                    avails_expected: exp,
                }
            },
        );
    prop_oneof![1 => cancelled, 4 => active]
}

fn scheduled_event() -> impl Strategy<Value = ScheduledEvent> {
    (
        (
            any::<u32>(),
            any::<bool>(),
            reserved(7),
            any::<bool>(),
            reserved(5),
        ),
        option::of(any::<u32>()),
        vec((any::<u8>(), any::<u32>()), 0..3),
        option::of(break_duration()),
        (any::<u16>(), any::<u8>(), any::<u8>()),
    )
        .prop_map(
            |((id, cancel, r1, out, r2), utc, comps, bd, (upid, num, exp))| {
                if cancel {
                    return ScheduledEvent {
                        splice_event_id: id,
                        splice_event_cancel_indicator: true,
                        reserved1: r1,
                        ..ScheduledEvent::default()
                    };
                }
                ScheduledEvent {
                    splice_event_id: id,
                    splice_event_cancel_indicator: false,
                    reserved1: r1,
                    out_of_network_indicator: out,
                    reserved2: r2,
                    utc_splice_time: utc,
                    components: if utc.is_some() {
                        Vec::new()
                    } else {
                        comps
                            .into_iter()
                            .map(|(t, u)| ScheduledComponent {
                                component_tag: t,
                                utc_splice_time: u,
                            })
                            .collect()
                    },
                    break_duration: bd,
                    unique_program_id: upid,
                    avail_num: num,
                    avails_expected: exp,
                }
            },
        )
}

fn command() -> impl Strategy<Value = SpliceCommand> {
    prop_oneof![
        Just(SpliceCommand::SpliceNull),
        vec(scheduled_event(), 0..3)
            .prop_map(|events| SpliceCommand::SpliceSchedule(SpliceSchedule { events })),
        splice_insert().prop_map(SpliceCommand::SpliceInsert),
        splice_time().prop_map(|t| SpliceCommand::TimeSignal(TimeSignal { splice_time: t })),
        Just(SpliceCommand::BandwidthReservation),
        (any::<u32>(), vec(any::<u8>(), 0..16)).prop_map(|(identifier, private_bytes)| {
            SpliceCommand::PrivateCommand(PrivateCommand {
                identifier,
                private_bytes,
            })
        }),
    ]
}

fn simple_upid() -> impl Strategy<Value = SegmentationUpid> {
    use SegmentationUpid as U;
    prop_oneof![
        Just(U::NotUsed),
        vec(any::<u8>(), 0..12).prop_map(U::UserDefined),
        "[A-Z0-9]{8}".prop_map(U::Isci),
        "[A-Z0-9]{12}".prop_map(U::AdId),
        vec(any::<u8>(), 32).prop_map(U::Umid),
        vec(any::<u8>(), 8).prop_map(U::IsanDeprecated),
        vec(any::<u8>(), 12).prop_map(U::Isan),
        "[A-Z0-9]{12}".prop_map(U::Tid),
        any::<u64>().prop_map(U::Ti),
        "[a-z0-9./:]{0,24}".prop_map(U::Adi),
        vec(any::<u8>(), 12).prop_map(U::Eidr),
        (
            any::<u16>(),
            reserved(2),
            0u8..32,
            0u16..512,
            vec(any::<u8>(), 0..8)
        )
            .prop_map(|(tsid, r, eod, uf, c)| {
                U::AtscContentIdentifier(AtscContentIdentifier {
                    tsid,
                    reserved: r,
                    end_of_day: eod,
                    unique_for: uf,
                    content_id: c,
                })
            }),
        (any::<u32>(), vec(any::<u8>(), 0..8)).prop_map(|(f, d)| U::Mpu(ManagedPrivateUpid {
            format_identifier: f,
            private_data: d
        })),
        "[a-z0-9=&]{0,24}".prop_map(U::AdsInformation),
        "urn:[a-z0-9:]{0,24}".prop_map(U::Uri),
        vec(any::<u8>(), 16).prop_map(U::Uuid),
        "[a-z0-9=&]{0,24}".prop_map(U::Scr),
        (0x12u8..=0xFF, vec(any::<u8>(), 0..12)).prop_map(|(t, b)| U::Other {
            upid_type: t,
            bytes: b
        }),
    ]
}

fn upid() -> impl Strategy<Value = SegmentationUpid> {
    prop_oneof![4 => simple_upid(), 1 => vec(simple_upid(), 0..4).prop_map(SegmentationUpid::Mid)]
}

fn segmentation() -> impl Strategy<Value = SegmentationDescriptor> {
    (
        (any::<u32>(), any::<bool>(), any::<bool>(), reserved(6)),
        option::of((any::<bool>(), any::<bool>(), any::<bool>(), 0u8..4)),
        reserved(5),
        option::of(vec((any::<u8>(), reserved(7), pts()), 0..3)),
        option::of(0u64..(1 << 40)),
        upid(),
        (
            any::<u8>(),
            any::<u8>(),
            any::<u8>(),
            option::of((any::<u8>(), any::<u8>())),
            // Encoders send bytes past the last field (SCTE 35 2023 sub-segments, padding): kept and re-emitted.
            prop_oneof![3 => Just(Vec::new()), 1 => vec(any::<u8>(), 1..4)],
        ),
    )
        .prop_map(
            |(
                (id, cancel, compliance, r1),
                restr,
                r2,
                comps,
                duration,
                upid,
                (t, num, exp, sub, trailing),
            )| {
                let mut d = SegmentationDescriptor {
                    segmentation_event_id: id,
                    segmentation_event_cancel_indicator: cancel,
                    segmentation_event_id_compliance_indicator: compliance,
                    reserved1: r1,
                    trailing_bytes: trailing,
                    ..SegmentationDescriptor::default()
                };
                if cancel {
                    return d;
                }
                let type_id = SegmentationTypeId::from(t);
                d.delivery_restrictions = restr.map(|(w, n, a, dr)| DeliveryRestrictions {
                    web_delivery_allowed_flag: w,
                    no_regional_blackout_flag: n,
                    archive_allowed_flag: a,
                    device_restrictions: dr,
                });
                d.reserved2 = if d.delivery_restrictions.is_none() {
                    r2
                } else {
                    None
                };
                d.components = comps.map(|list| {
                    list.into_iter()
                        .map(|(tag, r, p)| SegmentationComponent {
                            component_tag: tag,
                            reserved: r,
                            pts_offset: p,
                        })
                        .collect()
                });
                d.segmentation_duration = duration;
                d.segmentation_upid = upid;
                d.segmentation_type_id = type_id;
                d.segment_num = num;
                d.segments_expected = exp;
                d.sub_segment = sub
                    .filter(|_| type_id.carries_sub_segments())
                    .map(|(n, e)| SubSegment {
                        sub_segment_num: n,
                        sub_segments_expected: e,
                    });
                // Without sub-segment fields, two trailing bytes on a type that may carry them read back as them.
                if d.sub_segment.is_none() && type_id.carries_sub_segments() {
                    d.trailing_bytes.truncate(1);
                }
                d
            },
        )
}

fn descriptor() -> impl Strategy<Value = SpliceDescriptor> {
    prop_oneof![
        any::<u32>().prop_map(|id| SpliceDescriptor::AvailDescriptor(AvailDescriptor {
            provider_avail_id: id
        })),
        (any::<u8>(), reserved(5), "[0-9*#]{0,7}").prop_map(|(preroll, reserved, dtmf_chars)| {
            SpliceDescriptor::DtmfDescriptor(DtmfDescriptor {
                preroll,
                reserved,
                dtmf_chars,
            })
        }),
        segmentation().prop_map(SpliceDescriptor::SegmentationDescriptor),
        (0u64..(1 << 48), any::<u32>(), any::<u16>()).prop_map(|(s, ns, off)| {
            SpliceDescriptor::TimeDescriptor(TimeDescriptor {
                tai_seconds: s,
                tai_ns: ns,
                utc_offset: off,
            })
        }),
        (
            reserved(4),
            vec(
                (any::<u8>(), 0u32..(1 << 24), 0u8..8, 0u8..16, any::<bool>()),
                0..4
            )
        )
            .prop_map(|(reserved, comps)| {
                SpliceDescriptor::AudioDescriptor(AudioDescriptor {
                    reserved,
                    components: comps
                        .into_iter()
                        .map(|(t, iso, bsm, nc, full)| AudioComponent {
                            component_tag: t,
                            iso_code: iso,
                            bit_stream_mode: bsm,
                            num_channels: nc,
                            full_srvc_audio: full,
                        })
                        .collect(),
                })
            }),
        (any::<u8>(), any::<u32>(), vec(any::<u8>(), 0..20)).prop_map(|(tag, id, bytes)| {
            let identifier = if tag <= 4 && id == CUEI { id ^ 1 } else { id };
            SpliceDescriptor::PrivateDescriptor(PrivateDescriptor {
                splice_descriptor_tag: tag,
                identifier,
                private_bytes: bytes,
            })
        }),
    ]
}

fn section() -> impl Strategy<Value = SpliceInfoSection> {
    (
        (
            any::<bool>(),
            any::<bool>(),
            0u8..4,
            any::<u8>(),
            0u8..64,
            pts(),
            any::<u8>(),
            0u16..4096,
        ),
        command(),
        vec(descriptor(), 0..4),
        vec(any::<u8>(), 0..4),
        any::<bool>(),
        option::of((0u16..4096, vec(any::<u8>(), 0..24))),
    )
        .prop_map(
            |(
                (ssi, private, sap, version, alg, adj, cw, tier),
                command,
                descriptors,
                stuffing,
                legacy,
                enc,
            )| {
                let mut s = SpliceInfoSection::new(command);
                s.section_syntax_indicator = ssi;
                s.private_indicator = private;
                s.sap_type = sap;
                s.protocol_version = version;
                s.encryption_algorithm = alg;
                s.pts_adjustment = adj;
                s.cw_index = cw;
                s.tier = tier;
                if let Some((len, bytes)) = enc {
                    s.encrypted_packet = true;
                    s.splice_command = SpliceCommand::SpliceNull;
                    s.encrypted = Some(EncryptedPart {
                        splice_command_length: len,
                        bytes,
                    });
                } else {
                    s.splice_descriptors = descriptors;
                    s.alignment_stuffing = stuffing;
                    s.splice_command_length_legacy =
                        legacy && !matches!(s.splice_command, SpliceCommand::PrivateCommand(_));
                }
                s
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 2000,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn decode_of_encode_is_identity(s in section()) {
        let bytes = s.encode().expect("valid sections encode");
        let back = SpliceInfoSection::decode(&bytes).expect("encoded sections decode");
        prop_assert_eq!(&back, &s);
        prop_assert_eq!(back.encode().expect("encodes"), bytes);
    }

    #[test]
    fn json_round_trips(s in section()) {
        let json = serde_json::to_string(&s).expect("serializes");
        let back: SpliceInfoSection = serde_json::from_str(&json).expect("deserializes");
        prop_assert_eq!(back, s);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..300)) {
        let _ = SpliceInfoSection::decode(&bytes);
        let _ = SpliceInfoSection::decode_unchecked(&bytes);
    }

    #[test]
    fn corrupted_sections_never_panic(s in section(), at in any::<usize>(), x in 1u8..=255) {
        let mut bytes = s.encode().expect("encodes");
        let i = at % bytes.len();
        bytes[i] ^= x;
        if let Ok((d, _)) = SpliceInfoSection::decode_unchecked(&bytes) {
            let _ = d.encode();
        }
    }
}
