//! Real TC strings with known decoded values.
//!
//! Source: the IAB Tech Lab's reference Java decoder, `InteractiveAdvertisingBureau/iabtcf-java`,
//! `iabtcf-decoder/src/test/java/com/iabtcf/decoder/TCStringV2Test.java` (strings made with the IAB's encoder
//! at iabtcf.com; the expected values are that test's assertions), and the IAB Tech Lab's GPP Java library,
//! `IABTechLab/iabgpp-java`, `GppModelTest.java` (the TCF EU v2 section of its GPP strings).

use super::*;
use crate::testutil::base64url_from_bits;

fn parse(s: &str) -> TcString {
    TcString::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn at(rfc3339: &str) -> SystemTime {
    let t = chrono::DateTime::parse_from_rfc3339(rfc3339).unwrap_or_else(|e| panic!("{e}"));
    UNIX_EPOCH + Duration::from_secs(t.timestamp() as u64)
}

fn ids(mask: u64) -> Vec<u8> {
    (1..=64u8).filter(|&i| bit(mask, i)).collect()
}

#[test]
fn iabtcf_encoder_string_decodes_every_core_field() {
    let tc = parse("COtybn4PA_zT4KjACBENAPCIAEBAAECAAIAAAAAAAAAA");
    assert_eq!(tc.version, 2);
    assert_eq!(tc.created, at("2020-01-26T17:01:00Z"));
    assert_eq!(tc.last_updated, at("2021-02-02T17:01:00Z"));
    assert_eq!(tc.cmp_id, 675);
    assert_eq!(tc.cmp_version, 2);
    assert_eq!(tc.consent_screen, 1);
    assert_eq!(tc.vendor_list_version, 15);
    assert_eq!(tc.tcf_policy_version, 2);
    assert_eq!(tc.consent_language, "EN");
    assert_eq!(tc.publisher_cc, "AA");
    assert!(!tc.is_service_specific);
    assert!(tc.purpose_one_treatment);
    assert!(!tc.use_non_standard_texts);
    assert_eq!(ids(tc.special_feature_opt_ins.into()), vec![1]);
    assert_eq!(ids(tc.purposes_consent.into()), vec![2, 10]);
    assert_eq!(ids(tc.purposes_li_transparency.into()), vec![2, 9]);
    assert!(tc.special_feature_opt_in(1) && !tc.special_feature_opt_in(2));
    assert!(tc.purpose_consent(2) && !tc.purpose_consent(1));
}

#[test]
fn bitfield_vendor_consents_and_legitimate_interests() {
    let tc =
        parse("COrEAV4OrXx94ACABBENAHCIAD-AAAAAAACAAxAAAAgAIAwgAgAAAAEAgQAAAAAEAYQAQAAAACAAAABAAA");
    assert_eq!(ids(tc.purposes_consent.into()), vec![3, 4, 5, 6, 7, 8, 9]);
    let consents: Vec<u16> = tc.vendor_consents.iter().collect();
    assert_eq!(consents, vec![23, 37, 47, 48, 53, 65, 98]);
    let li: Vec<u16> = tc.vendor_legitimate_interests.iter().collect();
    assert_eq!(li, vec![37, 47, 48, 53, 65, 98, 129]);
    assert!(tc.vendor_consent(23) && !tc.vendor_consent(24));
}

#[test]
fn disclosed_allowed_and_publisher_segments() {
    let tc = parse(
        "COrEAV4OrXx94ACABBENAHCIAD-AAAAAAACAAxAAAAgAIAwgAgAAAAEAgQAAAAAEAYQAQAAAACAAAABAAA.IBAgAAAgAIAwgAgAAAAEAAAACA.QAagAQAgAIAwgA.cAAAAAAAITg=",
    );
    let allowed: Vec<u16> = tc.allowed_vendors.iter().flat_map(|v| v.iter()).collect();
    assert_eq!(allowed, vec![12, 23, 37, 47, 48, 53]);
    let disclosed: Vec<u16> = tc.disclosed_vendors.iter().flat_map(|v| v.iter()).collect();
    assert_eq!(disclosed, vec![23, 37, 47, 48, 53, 65, 98, 129]);
    let publisher = tc.publisher_tc.unwrap_or_default();
    assert_eq!(publisher.purposes_consent.count_ones(), 1);
}

#[test]
fn range_encoded_vendor_sections() {
    let li = parse("COv__-wOv__-wC2AAAENAPCgAAAAAAAAAAAAA_wAQA_gEBABAEAAAA");
    assert_eq!(
        li.vendor_legitimate_interests.iter().collect::<Vec<_>>(),
        vec![128]
    );
    let two = parse(
        "COwBOpCOwBOpCLqAAAENAPCAAAAAAAAAAAAAFfwAYFfAV-BVkAGBVYFWAAA.IFoEUQQgAIQwgIwQABAEAAAAOIAACAIAAAAQAIAgEAACEAAAAAgAQBAAAAAAAGBAAgAAAAAAAFAAECAAAgAAQARAEQAAAAAJAAIAAgAAAYQEAAAQmAgBC3ZAYzUw",
    );
    assert_eq!(
        two.vendor_consents.iter().collect::<Vec<_>>(),
        vec![702, 703]
    );
    let one = parse(
        "COwBOpCOwBOpCLqAAAENAPCAAAAAAAAAAAAAFfwAQFfgUbABAUaAAA.IFoEUQQgAIQwgIwQABAEAAAAOIAACAIAAAAQAIAgEAACEAAAAAgAQBAAAAAAAGBAAgAAAAAAAFAAECAAAgAAQARAEQAAAAAJAAIAAgAAAYQEAAAQmAgBC3ZAYzUw",
    );
    assert_eq!(one.vendor_consents.iter().collect::<Vec<_>>(), vec![703]);
}

#[test]
fn purposes_one_and_two_consented() {
    let tc = parse("COwxsONOwxsONKpAAAENAdCAAMAAAAAAAAAAAAAAAAAA");
    assert!(tc.purpose_consent(1) && tc.purpose_consent(2));
}

#[test]
fn publisher_restrictions_from_reference_bit_string() {
    // The bit string of TCStringV2Test.testPublisherRestrictions: three restrictions with no vendors.
    let bits = concat!(
        "0000100011101011100",
        "1000000000000001010",
        "0000001110101110010",
        "0000000000000101000",
        "0000110011111000000",
        "0000000000000000100",
        "0011010000000011110",
        "0001000000000000000",
        "0000000000000000000",
        "0000000000000000000",
        "0000000000000000000",
        "0000000000000000000",
        "0000000000000000000",
        "000000000011",
        "000001",
        "01",
        "000000000000",
        "000010",
        "00",
        "000000000000",
        "000011",
        "10",
        "000000000000",
        "0"
    );
    let tc = parse(&base64url_from_bits(bits));
    let got: Vec<(u8, RestrictionType)> = tc
        .publisher_restrictions
        .iter()
        .map(|r| (r.purpose_id, r.restriction))
        .collect();
    assert_eq!(
        got,
        vec![
            (1, RestrictionType::RequireConsent),
            (2, RestrictionType::NotAllowed),
            (3, RestrictionType::RequireLegitimateInterest)
        ]
    );
    assert!(
        tc.publisher_restrictions
            .iter()
            .all(|r| r.vendors.is_empty())
    );
}

#[test]
fn gpp_tcf_eu_section_decodes_as_a_tc_string() {
    // iabgpp-java GppModelTest.testDecodeTcfEuV2: CmpId 880, VendorListVersion 48, EN, AA, 2022-01-01.
    let tc = parse("CPSG_8APSG_8ANwAAAENAwCAAAAAAAAAAAAAAAAAAAAA.QAAA.IAAA");
    assert_eq!(tc.cmp_id, 880);
    assert_eq!(tc.cmp_version, 0);
    assert_eq!(tc.consent_screen, 0);
    assert_eq!(tc.consent_language, "EN");
    assert_eq!(tc.vendor_list_version, 48);
    assert_eq!(tc.tcf_policy_version, 2);
    assert_eq!(tc.publisher_cc, "AA");
    assert_eq!(tc.created, at("2022-01-01T00:00:00Z"));
    assert_eq!(tc.last_updated, at("2022-01-01T00:00:00Z"));
    assert!(!tc.is_service_specific && !tc.use_non_standard_texts && !tc.purpose_one_treatment);
}

#[test]
fn version_one_string_is_refused_naming_the_field() {
    // A TCF v1.1 consent string (first character 'B' = version 1), from the Consent-String-SDK test suites.
    let err = TcString::parse("BOVeoB_OVeoFxC-AHAFRBtAAAAAhGAEAD4AXAA2YCEQ").err();
    assert!(
        matches!(
            err,
            Some(Error::InvalidField {
                field: "Version",
                bit_offset: 0,
                ..
            })
        ),
        "{err:?}"
    );
}

#[test]
fn truncated_string_names_the_missing_field_and_offset() {
    // The first 20 characters are 120 bits: Version 6 + Created 36 + LastUpdated 36 + CmpId 12 + CmpVersion
    // 12 + ConsentScreen 6 + ConsentLanguage 12 = 120, so the string ends where VendorListVersion starts.
    let err = TcString::parse("COtybn4PA_zT4KjACBEN").err();
    assert_eq!(
        err,
        Some(Error::Truncated {
            signal: "TC string",
            field: "VendorListVersion",
            bit_offset: 120,
            needed: 12,
            available: 0
        })
    );
}

#[test]
fn empty_and_garbage_are_errors_not_panics() {
    assert!(TcString::parse("").is_err());
    assert!(TcString::parse("....").is_err());
    assert!(TcString::parse("C€").is_err());
    assert!(TcString::parse("C").is_err());
}

mod round_trip {
    use super::*;
    use crate::testutil::TcFields;
    use proptest::prelude::*;

    fn ids(max: u8) -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::btree_set(1..=max, 0..usize::from(max))
            .prop_map(|s| s.into_iter().collect())
    }

    fn vendors() -> impl Strategy<Value = Vec<u16>> {
        proptest::collection::btree_set(1u16..2000, 0..40).prop_map(|s| s.into_iter().collect())
    }

    proptest! {
        /// Any field values, encoded with the spec-derived test encoder, decode to the same values.
        #[test]
        fn encoded_fields_decode_to_the_same_values(
            created in 0u64..(1 << 36),
            cmp_id in 0u16..4096,
            cmp_version in 0u16..4096,
            vlv in 0u16..4096,
            purposes in ids(24),
            li in ids(24),
            features in ids(12),
            v in vendors(),
            v_li in vendors(),
            restricted in vendors(),
            lang in "[A-Z]{2}",
            p1t in any::<bool>(),
        ) {
            let lang = [lang.as_bytes()[0], lang.as_bytes()[1]];
            let f = TcFields {
                created_ds: created,
                last_updated_ds: created,
                cmp_id,
                cmp_version,
                vendor_list_version: vlv,
                purposes: purposes.clone(),
                purposes_li: li.clone(),
                special_features: features.clone(),
                vendors: v.clone(),
                vendors_li: v_li.clone(),
                restrictions: vec![(2, 0, restricted.clone())],
                language: lang,
                purpose_one_treatment: p1t,
                ..TcFields::default()
            };
            let tc = TcString::parse(&f.encode()).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(tc.created, UNIX_EPOCH + Duration::from_millis(created * 100));
            prop_assert_eq!((tc.cmp_id, tc.cmp_version, tc.vendor_list_version), (cmp_id, cmp_version, vlv));
            prop_assert_eq!(ids_of(tc.purposes_consent.into(), 24), purposes);
            prop_assert_eq!(ids_of(tc.purposes_li_transparency.into(), 24), li);
            prop_assert_eq!(ids_of(tc.special_feature_opt_ins.into(), 12), features);
            prop_assert_eq!(tc.vendor_consents.iter().collect::<Vec<_>>(), v);
            prop_assert_eq!(tc.vendor_legitimate_interests.iter().collect::<Vec<_>>(), v_li);
            let r: Vec<u16> = tc.publisher_restrictions.iter().flat_map(|r| r.vendors.iter()).collect();
            prop_assert_eq!(r, restricted);
            prop_assert_eq!(tc.consent_language.as_bytes(), &lang[..]);
            prop_assert_eq!(tc.purpose_one_treatment, p1t);
        }
    }

    fn ids_of(mask: u64, width: u8) -> Vec<u8> {
        (1..=width).filter(|&i| bit(mask, i)).collect()
    }
}
