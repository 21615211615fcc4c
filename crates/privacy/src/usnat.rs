//! The GPP US National Privacy section (`usnat`, section id 7; "GPP Extension: IAB Privacy's US National
//! Privacy Technical Specification", versions 1 and 2): the MSPA "US National Approach" signal — notices,
//! opt-outs of sale, sharing and targeted advertising, sensitive-data and known-child consents, MSPA modes,
//! and the optional GPC sub-section.
//!
//! Encoding: a core sub-section (base64url, 2-bit fields), then optionally `.` and a GPC sub-section
//! (SubsectionType = 1, then one bit). Version 2 (2024) has 16 sensitive-data categories and 3 known-child
//! entries where version 1 had 12 and 2.

use serde::Serialize;

use crate::bits::{BitReader, Bits};
use crate::error::{Error, Result};

const SIGNAL: &str = "GPP usnat section";

/// A notice field: 0 not applicable, 1 provided, 2 not provided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Notice {
    /// 0.
    NotApplicable,
    /// 1.
    Provided,
    /// 2.
    NotProvided,
}

/// An opt-out field: 0 not applicable, 1 opted out, 2 did not opt out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OptOut {
    /// 0.
    NotApplicable,
    /// 1: the consumer opted out.
    OptedOut,
    /// 2.
    DidNotOptOut,
}

/// A consent field: 0 not applicable, 1 no consent, 2 consent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Consent {
    /// 0.
    NotApplicable,
    /// 1.
    NoConsent,
    /// 2.
    Consent,
}

/// An MSPA mode or covered-transaction field: 0 not applicable, 1 yes, 2 no.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MspaFlag {
    /// 0.
    NotApplicable,
    /// 1.
    Yes,
    /// 2.
    No,
}

/// A decoded `usnat` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsNat {
    /// Section version (1 or 2).
    pub version: u8,
    /// SharingNotice.
    pub sharing_notice: Notice,
    /// SaleOptOutNotice.
    pub sale_opt_out_notice: Notice,
    /// SharingOptOutNotice.
    pub sharing_opt_out_notice: Notice,
    /// TargetedAdvertisingOptOutNotice.
    pub targeted_advertising_opt_out_notice: Notice,
    /// SensitiveDataProcessingOptOutNotice.
    pub sensitive_data_processing_opt_out_notice: Notice,
    /// SensitiveDataLimitUseNotice.
    pub sensitive_data_limit_use_notice: Notice,
    /// SaleOptOut.
    pub sale_opt_out: OptOut,
    /// SharingOptOut.
    pub sharing_opt_out: OptOut,
    /// TargetedAdvertisingOptOut.
    pub targeted_advertising_opt_out: OptOut,
    /// SensitiveDataProcessing (12 categories in v1, 16 in v2).
    pub sensitive_data_processing: Vec<Consent>,
    /// KnownChildSensitiveDataConsents (v1: 13–16, under 13; v2 adds personal data of 16–17).
    pub known_child_sensitive_data_consents: Vec<Consent>,
    /// PersonalDataConsents.
    pub personal_data_consents: Consent,
    /// MspaCoveredTransaction.
    pub mspa_covered_transaction: MspaFlag,
    /// MspaOptOutOptionMode.
    pub mspa_opt_out_option_mode: MspaFlag,
    /// MspaServiceProviderMode.
    pub mspa_service_provider_mode: MspaFlag,
    /// Gpc, when the GPC sub-section was sent.
    pub gpc: Option<bool>,
}

fn two_bits(r: &mut BitReader<'_>, field: &'static str) -> Result<(u8, usize)> {
    let at = r.position();
    let v = r.uint(field, 2)? as u8;
    if v == 3 {
        return Err(Error::InvalidField {
            signal: SIGNAL,
            field,
            bit_offset: at,
            reason: "value 3 is reserved".to_string(),
        });
    }
    Ok((v, at))
}

fn notice(r: &mut BitReader<'_>, field: &'static str) -> Result<Notice> {
    Ok(match two_bits(r, field)?.0 {
        1 => Notice::Provided,
        2 => Notice::NotProvided,
        _ => Notice::NotApplicable,
    })
}

fn opt_out(r: &mut BitReader<'_>, field: &'static str) -> Result<OptOut> {
    Ok(match two_bits(r, field)?.0 {
        1 => OptOut::OptedOut,
        2 => OptOut::DidNotOptOut,
        _ => OptOut::NotApplicable,
    })
}

fn consent(r: &mut BitReader<'_>, field: &'static str) -> Result<Consent> {
    Ok(match two_bits(r, field)?.0 {
        1 => Consent::NoConsent,
        2 => Consent::Consent,
        _ => Consent::NotApplicable,
    })
}

fn mspa(r: &mut BitReader<'_>, field: &'static str) -> Result<MspaFlag> {
    Ok(match two_bits(r, field)?.0 {
        1 => MspaFlag::Yes,
        2 => MspaFlag::No,
        _ => MspaFlag::NotApplicable,
    })
}

impl UsNat {
    /// Decode a `usnat` section (core sub-section, optional `.`-separated GPC sub-section).
    pub fn parse(text: &str) -> Result<UsNat> {
        let mut parts = text.split('.');
        let core = Bits::from_base64url(parts.next().unwrap_or_default(), SIGNAL)?;
        let mut r = core.reader(SIGNAL);
        let version = r.uint("Version", 6)? as u8;
        let (n_sensitive, n_child) = match version {
            1 => (12, 2),
            2 => (16, 3),
            v => {
                return Err(Error::InvalidField {
                    signal: SIGNAL,
                    field: "Version",
                    bit_offset: 0,
                    reason: format!("version {v} is not supported (1 or 2)"),
                });
            }
        };
        let mut section = UsNat {
            version,
            sharing_notice: notice(&mut r, "SharingNotice")?,
            sale_opt_out_notice: notice(&mut r, "SaleOptOutNotice")?,
            sharing_opt_out_notice: notice(&mut r, "SharingOptOutNotice")?,
            targeted_advertising_opt_out_notice: notice(&mut r, "TargetedAdvertisingOptOutNotice")?,
            sensitive_data_processing_opt_out_notice: notice(
                &mut r,
                "SensitiveDataProcessingOptOutNotice",
            )?,
            sensitive_data_limit_use_notice: notice(&mut r, "SensitiveDataLimitUseNotice")?,
            sale_opt_out: opt_out(&mut r, "SaleOptOut")?,
            sharing_opt_out: opt_out(&mut r, "SharingOptOut")?,
            targeted_advertising_opt_out: opt_out(&mut r, "TargetedAdvertisingOptOut")?,
            sensitive_data_processing: (0..n_sensitive)
                .map(|_| consent(&mut r, "SensitiveDataProcessing"))
                .collect::<Result<_>>()?,
            known_child_sensitive_data_consents: (0..n_child)
                .map(|_| consent(&mut r, "KnownChildSensitiveDataConsents"))
                .collect::<Result<_>>()?,
            personal_data_consents: consent(&mut r, "PersonalDataConsents")?,
            mspa_covered_transaction: mspa(&mut r, "MspaCoveredTransaction")?,
            mspa_opt_out_option_mode: mspa(&mut r, "MspaOptOutOptionMode")?,
            mspa_service_provider_mode: mspa(&mut r, "MspaServiceProviderMode")?,
            gpc: None,
        };
        for sub in parts {
            let bits = Bits::from_base64url(sub, SIGNAL)?;
            let mut r = bits.reader(SIGNAL);
            // Other sub-section types are not defined for usnat; ignore rather than refuse the signal.
            if r.uint("SubsectionType", 2)? == 1 {
                section.gpc = Some(r.bool("Gpc")?);
            }
        }
        Ok(section)
    }

    /// Whether a known child (any age bracket) has not consented: the consumer is a known child.
    pub fn known_child_without_consent(&self) -> bool {
        self.known_child_sensitive_data_consents
            .contains(&Consent::NoConsent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Source: IAB Tech Lab `IABTechLab/iabgpp-java`, iabgpp-encoder/src/test/java/com/iab/gpp/encoder/section/
    // UsNatTest.java (testDecode1, testDecodeWithGpcSegmentExcluded, testEncode1).

    #[test]
    fn reference_section_with_gpc_decodes() {
        let s = UsNat::parse("BVVVkkkklWA.YA").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.version, 1);
        assert_eq!(s.sharing_notice, Notice::Provided);
        assert_eq!(s.sale_opt_out_notice, Notice::Provided);
        assert_eq!(s.targeted_advertising_opt_out_notice, Notice::Provided);
        assert_eq!(s.sale_opt_out, OptOut::OptedOut);
        assert_eq!(s.sharing_opt_out, OptOut::OptedOut);
        assert_eq!(s.targeted_advertising_opt_out, OptOut::OptedOut);
        use Consent::{Consent as C, NoConsent as N, NotApplicable as Z};
        assert_eq!(
            s.sensitive_data_processing,
            vec![C, N, Z, C, N, Z, C, N, Z, C, N, Z]
        );
        assert_eq!(s.known_child_sensitive_data_consents, vec![C, N]);
        assert!(s.known_child_without_consent());
        assert_eq!(s.personal_data_consents, N);
        assert_eq!(s.mspa_covered_transaction, MspaFlag::Yes);
        assert_eq!(s.mspa_opt_out_option_mode, MspaFlag::Yes);
        assert_eq!(s.mspa_service_provider_mode, MspaFlag::No);
        assert_eq!(s.gpc, Some(true));
    }

    #[test]
    fn reference_section_without_gpc_sub_section() {
        let s = UsNat::parse("BVVVkkkklWA").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.gpc, None);
        assert_eq!(s.sale_opt_out, OptOut::OptedOut);
    }

    #[test]
    fn default_section_has_nothing_applicable() {
        let s = UsNat::parse("BAAAAAAAAQA.QA").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.sale_opt_out, OptOut::NotApplicable);
        assert_eq!(s.targeted_advertising_opt_out, OptOut::NotApplicable);
        assert_eq!(s.mspa_covered_transaction, MspaFlag::Yes);
        assert_eq!(s.gpc, Some(false));
        assert!(!s.known_child_without_consent());
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(UsNat::parse("z").is_err());
        assert!(UsNat::parse("").is_err());
        // Version 1 followed by a reserved value 3 in SharingNotice: "B" then "w" (110000).
        assert!(matches!(
            UsNat::parse("BwAAAAAAAQA"),
            Err(Error::InvalidField {
                field: "SharingNotice",
                bit_offset: 6,
                ..
            })
        ));
    }
}
