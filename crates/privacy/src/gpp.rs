//! IAB Global Privacy Platform strings (GPP v1, "Consent String Specification"): a header section, then one
//! `~`-separated section per id the header lists, in the header's order.
//!
//! Header (§"Header section"): Type (6 bits, = 3), Version (6 bits, = 1), SectionIds as a Fibonacci-coded
//! integer range (§"Fibonacci integer range": NumberOfRanges in 12 bits, then per range IsARange, and one or
//! two Fibonacci-coded offsets — the first from the previous range's last id, the second from the first).
//!
//! Sections decoded: TCF EU v2 (id 2, a TC string: [`crate::tcf`]), US Privacy v1 (id 6: [`crate::usp`]) and
//! US National (id 7: [`crate::usnat`]). Other sections are kept as text (state sections, TCF Canada, …). A
//! section that fails to decode is kept with its error, so one broken section does not hide the others; the
//! consent reduction treats it conservatively.

use serde::Serialize;

use crate::bits::Bits;
use crate::error::{Error, Result};
use crate::tcf::TcString;
use crate::usnat::UsNat;
use crate::usp::UsPrivacy;

const SIGNAL: &str = "GPP header";

/// GPP section id of the TCF EU v2 section.
pub const SECTION_TCF_EU_V2: u16 = 2;
/// GPP section id of the TCF Canada section.
pub const SECTION_TCF_CA: u16 = 5;
/// GPP section id of the US Privacy (CCPA) v1 section.
pub const SECTION_USP_V1: u16 = 6;
/// GPP section id of the US National section.
pub const SECTION_US_NAT: u16 = 7;

/// The header section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GppHeader {
    /// Version (1).
    pub version: u8,
    /// The sections present, in string order.
    pub section_ids: Vec<u16>,
}

/// One decoded section.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "section", rename_all = "snake_case")]
pub enum GppSection {
    /// Id 2: a TC string.
    TcfEuV2(Box<TcString>),
    /// Id 6: a US Privacy string.
    UspV1(UsPrivacy),
    /// Id 7: US National.
    UsNat(UsNat),
    /// A section this crate does not decode, kept as sent.
    Other {
        /// Section id.
        id: u16,
        /// Encoded text.
        text: String,
    },
    /// A section that did not decode.
    Invalid {
        /// Section id.
        id: u16,
        /// Why it did not decode.
        error: String,
    },
}

impl GppSection {
    /// The section's id.
    pub fn id(&self) -> u16 {
        match self {
            GppSection::TcfEuV2(_) => SECTION_TCF_EU_V2,
            GppSection::UspV1(_) => SECTION_USP_V1,
            GppSection::UsNat(_) => SECTION_US_NAT,
            GppSection::Other { id, .. } | GppSection::Invalid { id, .. } => *id,
        }
    }
}

/// A decoded GPP string.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GppString {
    /// The header.
    pub header: GppHeader,
    /// The sections, in header order.
    pub sections: Vec<GppSection>,
}

impl GppString {
    /// Decode the header and every section. Fails when the header is invalid or the number of sections does
    /// not match it; a section that does not decode becomes [`GppSection::Invalid`].
    pub fn parse(text: &str) -> Result<GppString> {
        let mut parts = text.trim().split('~');
        let header = parse_header(parts.next().unwrap_or_default())?;
        let bodies: Vec<&str> = parts.collect();
        if bodies.len() != header.section_ids.len() {
            return Err(Error::GppStructure {
                reason: format!(
                    "header lists {} section(s) {:?} but {} follow",
                    header.section_ids.len(),
                    header.section_ids,
                    bodies.len()
                ),
            });
        }
        let sections = header
            .section_ids
            .iter()
            .zip(bodies)
            .map(|(&id, body)| decode_section(id, body))
            .collect();
        Ok(GppString { header, sections })
    }

    /// The section with `id`, if present.
    pub fn section(&self, id: u16) -> Option<&GppSection> {
        self.sections.iter().find(|s| s.id() == id)
    }
}

fn decode_section(id: u16, body: &str) -> GppSection {
    let invalid = |e: Error| GppSection::Invalid {
        id,
        error: e.to_string(),
    };
    match id {
        SECTION_TCF_EU_V2 => TcString::parse(body)
            .map(|t| GppSection::TcfEuV2(Box::new(t)))
            .unwrap_or_else(invalid),
        SECTION_USP_V1 => UsPrivacy::parse(body)
            .map(GppSection::UspV1)
            .unwrap_or_else(invalid),
        SECTION_US_NAT => UsNat::parse(body)
            .map(GppSection::UsNat)
            .unwrap_or_else(invalid),
        _ => GppSection::Other {
            id,
            text: body.to_string(),
        },
    }
}

/// Decode the header section alone.
pub fn parse_header(text: &str) -> Result<GppHeader> {
    let bits = Bits::from_base64url(text, SIGNAL)?;
    let mut r = bits.reader(SIGNAL);
    let ty = r.uint("Type", 6)?;
    if ty != 3 {
        return Err(Error::InvalidField {
            signal: SIGNAL,
            field: "Type",
            bit_offset: 0,
            reason: format!("header type is {ty}, must be 3"),
        });
    }
    let version = r.uint("Version", 6)? as u8;
    if version != 1 {
        return Err(Error::InvalidField {
            signal: SIGNAL,
            field: "Version",
            bit_offset: 6,
            reason: format!("version {version} is not supported (1)"),
        });
    }
    let n = r.uint("SectionIds.NumberOfRanges", 12)? as usize;
    let mut section_ids = Vec::with_capacity(n.min(32));
    let mut last: u64 = 0;
    for _ in 0..n {
        let is_range = r.bool("SectionIds.IsARange")?;
        let at = r.position();
        let start = last.saturating_add(r.fibonacci("SectionIds.StartOrOnlyId")?);
        let end = if is_range {
            start.saturating_add(r.fibonacci("SectionIds.EndId")?)
        } else {
            start
        };
        // Section ids are small (the registry is below 30); a huge range is an attack or garbage.
        if end > u64::from(u16::MAX) || end - start > 1024 {
            return Err(Error::InvalidField {
                signal: SIGNAL,
                field: "SectionIds",
                bit_offset: at,
                reason: format!("section id range {start}–{end} is out of bounds"),
            });
        }
        section_ids.extend((start..=end).map(|id| id as u16));
        last = end;
    }
    Ok(GppHeader {
        version,
        section_ids,
    })
}

/// Parse a `gpp_sid` parameter (comma-separated applicable section ids, e.g. `2,6`); ids that are not numbers
/// are skipped.
pub fn parse_sid_list(text: &str) -> Vec<u16> {
    text.split(',')
        .filter_map(|s| s.trim().parse::<u16>().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Source: IAB Tech Lab `IABTechLab/iabgpp-java`, iabgpp-encoder/src/test/java/com/iab/gpp/encoder/
    // GppModelTest.java (testDecodeDefaults, testDecodeUspv1, testDecodeTcfEuV2, testDecodeUspv1AndTcfEuV2,
    // testEncodeDefaultAll, testEncodeUspV1AndTcfEuV2AndTcfCaV1).

    fn parse(s: &str) -> GppString {
        GppString::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn empty_header_has_no_sections() {
        let g = parse("DBAA");
        assert_eq!(g.header.version, 1);
        assert!(g.header.section_ids.is_empty());
    }

    #[test]
    fn usp_only() {
        let g = parse("DBABTA~1YNN");
        assert_eq!(g.header.section_ids, vec![6]);
        let usp = match g.section(SECTION_USP_V1) {
            Some(GppSection::UspV1(u)) => *u,
            other => panic!("{other:?}"),
        };
        assert_eq!(usp.opt_out_sale, crate::usp::UspFlag::No);
    }

    #[test]
    fn tcf_eu_v2_and_usp() {
        let g = parse("DBACNYA~CPSG_8APSG_8ANwAAAENAwCAAAAAAAAAAAAAAAAAAAAA.QAAA.IAAA~1YNN");
        assert_eq!(g.header.section_ids, vec![2, 6]);
        match g.section(SECTION_TCF_EU_V2) {
            Some(GppSection::TcfEuV2(tc)) => {
                assert_eq!(tc.cmp_id, 880);
                assert_eq!(tc.vendor_list_version, 48);
                assert_eq!(tc.consent_language, "EN");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            g.section(SECTION_USP_V1),
            Some(GppSection::UspV1(_))
        ));
    }

    #[test]
    fn tcf_eu_tcf_ca_and_usp_with_single_ids() {
        let g = parse(
            "DBACOeA~CPSG_8APSG_8ANwAAAENAwCAAAAAAAAAAAAAAAAAAAAA.QAAA.IAAA~BPSG_8APSG_8AAyACAENGdCgf_gfgAfgfgBgABABAAABAB4AACACAAA.fHHHA4444ao~1YNN",
        );
        assert_eq!(g.header.section_ids, vec![2, 5, 6]);
        assert!(matches!(
            g.section(SECTION_TCF_CA),
            Some(GppSection::Other { id: 5, .. })
        ));
    }

    #[test]
    fn range_coded_section_ids_every_section_defaults() {
        let g = parse(
            "DBACOdM~CPSG_8APSG_8AAAAAAENAACAAAAAAAAAAAAAAAAAAAAA.QAAA.IAAA~BPSG_8APSG_8AAAAAAENAACAAAAAAAAAAAAAAAAAAA.YAAAAAAAAAA~1---~BAAAAAAAAABA.QA~BAAAAABA.QA~BAAAABA~BAAAAEA.QA~BAAAAAQA~BAAAAAEA.QA~BAAAAABA~BAAAAABA.QA~BAAAAAABAA.QA~BAAAAAQA.QA~BAAAAAABAA.QA~BAAAAAQA.QA~BAAAAAQA.QA~BAAAAABA.QA~BAAAAAAAQA.QA~BAAAAAQA.QA",
        );
        let mut expected = vec![2];
        expected.extend(5..=22);
        assert_eq!(g.header.section_ids, expected);
        match g.section(SECTION_US_NAT) {
            Some(GppSection::UsNat(n)) => {
                assert_eq!(n.sale_opt_out, crate::usnat::OptOut::NotApplicable);
            }
            other => panic!("{other:?}"),
        }
        match g.section(SECTION_USP_V1) {
            Some(GppSection::UspV1(u)) => assert!(u.not_applicable()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn usnat_only() {
        // Header for [7] written after the spec (single id, Fibonacci 7 = 5 + 2 → "01011"), with the usnat
        // section of iabgpp-java UsNatTest.testDecode1.
        let g = parse("DBABLA~BVVVkkkklWA.YA");
        assert_eq!(g.header.section_ids, vec![7]);
        assert!(matches!(
            g.section(SECTION_US_NAT),
            Some(GppSection::UsNat(_))
        ));
        assert_eq!(crate::testutil::gpp_header(&[7]), "DBABLA");
    }

    #[test]
    fn section_count_mismatch_is_refused() {
        assert!(matches!(
            GppString::parse("DBABTA"),
            Err(Error::GppStructure { .. })
        ));
        assert!(matches!(
            GppString::parse("DBAA~1YNN"),
            Err(Error::GppStructure { .. })
        ));
    }

    #[test]
    fn wrong_header_type_names_the_field() {
        // "BBAA": Type 1.
        assert!(matches!(
            GppString::parse("BBAA"),
            Err(Error::InvalidField { field: "Type", .. })
        ));
        assert!(GppString::parse("").is_err());
        assert!(GppString::parse("z~~~").is_err());
    }

    #[test]
    fn broken_section_is_kept_with_its_error() {
        let g = parse("DBABTA~1YXN");
        assert!(matches!(
            g.section(SECTION_USP_V1),
            Some(GppSection::Invalid { id: 6, .. })
        ));
    }

    #[test]
    fn sid_list_parses_numbers() {
        assert_eq!(parse_sid_list("2, 6,x,7"), vec![2, 6, 7]);
        assert!(parse_sid_list("").is_empty());
    }
}
