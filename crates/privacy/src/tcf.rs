//! IAB TCF v2 TC strings (Transparency & Consent Framework v2.2, "Consent string and vendor list formats v2"):
//! what a CMP recorded about the viewer's choices under the GDPR. The core segment is decoded in full
//! (§"The core string"), with the optional segments that follow it after a `.` (§"Disclosed vendors",
//! §"Allowed vendors", §"Publisher purposes transparency and consent"). Bit-level: every field is read at its
//! bit offset, and an error names the field and the offset.
//!
//! This module decodes; it does not decide. What a decoded string means for us is in [`crate::consent`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::bits::{BitReader, Bits};
use crate::error::{Error, Result};

const SIGNAL: &str = "TC string";

/// A set of vendor ids (GVL ids, 1–65535) as the TCF encodes it (§"Vendor Consent Section"): a bitfield,
/// kept as 64-bit words (decoding copies words, lookup is one shift), or ranges, kept sorted and merged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VendorSet {
    /// MaxVendorId as encoded.
    pub max_vendor_id: u16,
    repr: Repr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Repr {
    /// Vendor `id` is bit `63 - (id - 1) % 64` of word `(id - 1) / 64` (string order).
    Bits(Vec<u64>),
    /// Sorted, disjoint, inclusive ranges.
    Ranges(Vec<(u16, u16)>),
}

impl Default for Repr {
    fn default() -> Self {
        Repr::Ranges(Vec::new())
    }
}

impl Serialize for VendorSet {
    /// As the list of vendor ids.
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl VendorSet {
    /// Whether `vendor_id` is in the set.
    pub fn contains(&self, vendor_id: u16) -> bool {
        match &self.repr {
            Repr::Bits(words) => {
                let Some(i) = usize::from(vendor_id).checked_sub(1) else {
                    return false;
                };
                words
                    .get(i / 64)
                    .is_some_and(|w| (w >> (63 - i % 64)) & 1 == 1)
            }
            Repr::Ranges(ranges) => ranges
                .binary_search_by(|&(start, end)| {
                    if end < vendor_id {
                        std::cmp::Ordering::Less
                    } else if start > vendor_id {
                        std::cmp::Ordering::Greater
                    } else {
                        std::cmp::Ordering::Equal
                    }
                })
                .is_ok(),
        }
    }

    /// Every id in the set, ascending.
    pub fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        let (words, ranges): (&[u64], &[(u16, u16)]) = match &self.repr {
            Repr::Bits(w) => (w, &[]),
            Repr::Ranges(r) => (&[], r),
        };
        let from_bits = words.iter().enumerate().flat_map(|(wi, &w)| {
            (0..64usize)
                .filter(move |k| (w >> (63 - k)) & 1 == 1)
                .map(move |k| (wi * 64 + k + 1) as u16)
        });
        from_bits.chain(ranges.iter().flat_map(|&(s, e)| s..=e))
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        match &self.repr {
            Repr::Bits(words) => words.iter().all(|w| *w == 0),
            Repr::Ranges(ranges) => ranges.is_empty(),
        }
    }

    fn from_ranges(max_vendor_id: u16, mut ranges: Vec<(u16, u16)>) -> VendorSet {
        ranges.sort_unstable();
        let mut merged: Vec<(u16, u16)> = Vec::with_capacity(ranges.len());
        for (s, e) in ranges {
            match merged.last_mut() {
                Some(last) if s <= last.1.saturating_add(1) => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        VendorSet {
            max_vendor_id,
            repr: Repr::Ranges(merged),
        }
    }
}

/// A publisher restriction's type (§"Publisher Restrictions": RestrictionType).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RestrictionType {
    /// 0: the purpose is not allowed for these vendors.
    NotAllowed,
    /// 1: the vendors need consent for the purpose (no legitimate interest).
    RequireConsent,
    /// 2: the vendors must use legitimate interest for the purpose (no consent).
    RequireLegitimateInterest,
    /// 3: undefined by the specification (kept, acted on as "not allowed").
    Undefined,
}

/// One publisher restriction: for `purpose_id`, the `vendors` are restricted by `restriction`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublisherRestriction {
    /// The purpose (1–24 in TCF v2.2; 1–11 in use).
    pub purpose_id: u8,
    /// The restriction.
    pub restriction: RestrictionType,
    /// The vendors it applies to.
    pub vendors: VendorSet,
}

/// The publisher purposes segment (segment type 3).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PublisherTc {
    /// PubPurposesConsent: bit 0 is purpose 1.
    pub purposes_consent: u32,
    /// PubPurposesLITransparency: bit 0 is purpose 1.
    pub purposes_li_transparency: u32,
    /// NumCustomPurposes.
    pub num_custom_purposes: u8,
    /// CustomPurposesConsent: bit 0 is custom purpose 1.
    pub custom_purposes_consent: u64,
    /// CustomPurposesLITransparency: bit 0 is custom purpose 1.
    pub custom_purposes_li_transparency: u64,
}

/// A decoded TC string (TCF v2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TcString {
    /// Version (always 2: v1 strings are refused).
    pub version: u8,
    /// Created (deciseconds since the Unix epoch in the string; CMPs round to the day).
    pub created: SystemTime,
    /// LastUpdated.
    pub last_updated: SystemTime,
    /// CmpId: the CMP's id on the IAB CMP list.
    pub cmp_id: u16,
    /// CmpVersion.
    pub cmp_version: u16,
    /// ConsentScreen: the CMP's screen number where consent was given.
    pub consent_screen: u8,
    /// ConsentLanguage: ISO 639-1 two-letter code, upper case.
    pub consent_language: String,
    /// VendorListVersion: the GVL version the CMP used.
    pub vendor_list_version: u16,
    /// TcfPolicyVersion (4 for TCF v2.2).
    pub tcf_policy_version: u8,
    /// IsServiceSpecific: the string applies to this service only (always 1 since TCF v2.2).
    pub is_service_specific: bool,
    /// UseNonStandardTexts (was UseNonStandardStacks before v2.2).
    pub use_non_standard_texts: bool,
    /// SpecialFeatureOptIns: bit 0 is special feature 1 (precise geolocation).
    pub special_feature_opt_ins: u16,
    /// PurposesConsent (24 bits): bit 0 is purpose 1.
    pub purposes_consent: u32,
    /// PurposesLITransparency (24 bits): bit 0 is purpose 1.
    pub purposes_li_transparency: u32,
    /// PurposeOneTreatment: purpose 1 was not disclosed (a publisher-country rule), so it has no consent bit.
    pub purpose_one_treatment: bool,
    /// PublisherCC: ISO 3166-1 alpha-2 country of the publisher, upper case.
    pub publisher_cc: String,
    /// Vendor consents.
    pub vendor_consents: VendorSet,
    /// Vendor legitimate interests.
    pub vendor_legitimate_interests: VendorSet,
    /// Publisher restrictions.
    pub publisher_restrictions: Vec<PublisherRestriction>,
    /// Disclosed vendors segment (type 1), when sent.
    pub disclosed_vendors: Option<VendorSet>,
    /// Allowed vendors segment (type 2; deprecated by v2.2), when sent.
    pub allowed_vendors: Option<VendorSet>,
    /// Publisher purposes segment (type 3), when sent.
    pub publisher_tc: Option<PublisherTc>,
}

impl TcString {
    /// Decode a TC string: base64url (no padding needed), core segment first, optional segments after `.`.
    pub fn parse(text: &str) -> Result<TcString> {
        let text = text.trim();
        let mut segments = text.split('.');
        let core = segments.next().unwrap_or_default();
        if core.is_empty() {
            return Err(Error::Truncated {
                signal: SIGNAL,
                field: "Version",
                bit_offset: 0,
                needed: 6,
                available: 0,
            });
        }
        let bits = Bits::from_base64url(core, SIGNAL)?;
        let mut tc = parse_core(&mut bits.reader(SIGNAL))?;
        for segment in segments {
            let bits = Bits::from_base64url(segment, SIGNAL)?;
            let mut r = bits.reader(SIGNAL);
            match r.uint("SegmentType", 3)? {
                1 => tc.disclosed_vendors = Some(vendor_section(&mut r, "DisclosedVendors")?),
                2 => tc.allowed_vendors = Some(vendor_section(&mut r, "AllowedVendors")?),
                3 => tc.publisher_tc = Some(publisher_tc(&mut r)?),
                // 0 is the core segment, which cannot repeat; 4–7 are undefined. Ignored, not fatal: the
                // core segment alone carries what we act on.
                _ => {}
            }
        }
        Ok(tc)
    }

    /// Whether the viewer consented to `purpose` (1-based).
    pub fn purpose_consent(&self, purpose: u8) -> bool {
        bit(self.purposes_consent.into(), purpose)
    }

    /// Whether legitimate interest for `purpose` (1-based) was disclosed and not objected to.
    pub fn purpose_li_transparency(&self, purpose: u8) -> bool {
        bit(self.purposes_li_transparency.into(), purpose)
    }

    /// Whether the viewer opted in to special feature `feature` (1-based).
    pub fn special_feature_opt_in(&self, feature: u8) -> bool {
        bit(self.special_feature_opt_ins.into(), feature)
    }

    /// Whether the viewer consented to vendor `vendor_id`.
    pub fn vendor_consent(&self, vendor_id: u16) -> bool {
        self.vendor_consents.contains(vendor_id)
    }

    /// The publisher's restriction on `purpose` for `vendor_id`, if any.
    pub fn restriction(&self, purpose: u8, vendor_id: u16) -> Option<RestrictionType> {
        self.publisher_restrictions
            .iter()
            .find(|r| r.purpose_id == purpose && r.vendors.contains(vendor_id))
            .map(|r| r.restriction)
    }
}

fn bit(mask: u64, one_based: u8) -> bool {
    (1..=64).contains(&one_based) && mask & (1 << (one_based - 1)) != 0
}

fn deciseconds(r: &mut BitReader<'_>, field: &'static str) -> Result<SystemTime> {
    let ds = r.uint(field, 36)?;
    // 36 bits of deciseconds end in the year 2187: always representable.
    Ok(UNIX_EPOCH + Duration::from_millis(ds * 100))
}

fn parse_core(r: &mut BitReader<'_>) -> Result<TcString> {
    let version = r.uint("Version", 6)? as u8;
    if version != 2 {
        return Err(Error::InvalidField {
            signal: SIGNAL,
            field: "Version",
            bit_offset: 0,
            reason: format!("version {version} is not supported (only TCF v2)"),
        });
    }
    let created = deciseconds(r, "Created")?;
    let last_updated = deciseconds(r, "LastUpdated")?;
    let cmp_id = r.uint("CmpId", 12)? as u16;
    let cmp_version = r.uint("CmpVersion", 12)? as u16;
    let consent_screen = r.uint("ConsentScreen", 6)? as u8;
    let consent_language = letters(r.letters2("ConsentLanguage")?);
    let vendor_list_version = r.uint("VendorListVersion", 12)? as u16;
    let tcf_policy_version = r.uint("TcfPolicyVersion", 6)? as u8;
    let is_service_specific = r.bool("IsServiceSpecific")?;
    let use_non_standard_texts = r.bool("UseNonStandardTexts")?;
    let special_feature_opt_ins = r.flags("SpecialFeatureOptIns", 12)? as u16;
    let purposes_consent = r.flags("PurposesConsent", 24)? as u32;
    let purposes_li_transparency = r.flags("PurposesLITransparency", 24)? as u32;
    let purpose_one_treatment = r.bool("PurposeOneTreatment")?;
    let publisher_cc = letters(r.letters2("PublisherCC")?);
    let vendor_consents = vendor_section(r, "VendorConsents")?;
    let vendor_legitimate_interests = vendor_section(r, "VendorLegitimateInterests")?;
    let publisher_restrictions = restrictions(r)?;
    Ok(TcString {
        version,
        created,
        last_updated,
        cmp_id,
        cmp_version,
        consent_screen,
        consent_language,
        vendor_list_version,
        tcf_policy_version,
        is_service_specific,
        use_non_standard_texts,
        special_feature_opt_ins,
        purposes_consent,
        purposes_li_transparency,
        purpose_one_treatment,
        publisher_cc,
        vendor_consents,
        vendor_legitimate_interests,
        publisher_restrictions,
        disclosed_vendors: None,
        allowed_vendors: None,
        publisher_tc: None,
    })
}

fn letters(l: [u8; 2]) -> String {
    String::from_utf8_lossy(&l).into_owned()
}

/// MaxVendorId, IsRangeEncoding, then a bitfield of MaxVendorId bits or NumEntries ranges. The field names in
/// errors are prefixed by `section` in the message's field (e.g. `VendorConsents.MaxVendorId`).
fn vendor_section(r: &mut BitReader<'_>, section: &'static str) -> Result<VendorSet> {
    let (max_f, range_f, bits_f) = match section {
        "VendorConsents" => (
            "VendorConsents.MaxVendorId",
            "VendorConsents.IsRangeEncoding",
            "VendorConsents.BitField",
        ),
        "VendorLegitimateInterests" => (
            "VendorLegitimateInterests.MaxVendorId",
            "VendorLegitimateInterests.IsRangeEncoding",
            "VendorLegitimateInterests.BitField",
        ),
        "DisclosedVendors" => (
            "DisclosedVendors.MaxVendorId",
            "DisclosedVendors.IsRangeEncoding",
            "DisclosedVendors.BitField",
        ),
        _ => (
            "AllowedVendors.MaxVendorId",
            "AllowedVendors.IsRangeEncoding",
            "AllowedVendors.BitField",
        ),
    };
    let max_vendor_id = r.uint(max_f, 16)? as u16;
    if r.bool(range_f)? {
        let ranges = range_entries(r, max_vendor_id)?;
        return Ok(VendorSet::from_ranges(max_vendor_id, ranges));
    }
    let width = usize::from(max_vendor_id);
    if r.remaining() < width {
        // Report through the reader so the error carries the offset.
        r.skip(bits_f, width)?;
    }
    // 64 vendors per read, kept as read.
    let mut words = Vec::with_capacity(width.div_ceil(64));
    let mut base = 0usize;
    while base < width {
        let n = (width - base).min(64);
        words.push(r.uint(bits_f, n)? << (64 - n));
        base += n;
    }
    Ok(VendorSet {
        max_vendor_id,
        repr: Repr::Bits(words),
    })
}

/// NumEntries (12 bits), then per entry IsARange, StartOrOnlyVendorId and (ranges) EndVendorId, 16 bits each.
fn range_entries(r: &mut BitReader<'_>, max_vendor_id: u16) -> Result<Vec<(u16, u16)>> {
    let n = r.uint("NumEntries", 12)? as usize;
    let mut ranges = Vec::with_capacity(n.min(64));
    for _ in 0..n {
        let is_range = r.bool("IsARange")?;
        let at = r.position();
        let start = r.uint("StartOrOnlyVendorId", 16)? as u16;
        let end = if is_range {
            r.uint("EndVendorId", 16)? as u16
        } else {
            start
        };
        if start == 0 || end < start {
            return Err(Error::InvalidField {
                signal: r.signal(),
                field: "StartOrOnlyVendorId",
                bit_offset: at,
                reason: format!("vendor range {start}–{end} is empty or starts at 0"),
            });
        }
        // MaxVendorId bounds a consent section; publisher restrictions pass 0 (no bound).
        if max_vendor_id != 0 && end > max_vendor_id {
            return Err(Error::InvalidField {
                signal: r.signal(),
                field: "EndVendorId",
                bit_offset: at,
                reason: format!("vendor {end} is above MaxVendorId {max_vendor_id}"),
            });
        }
        ranges.push((start, end));
    }
    Ok(ranges)
}

fn restrictions(r: &mut BitReader<'_>) -> Result<Vec<PublisherRestriction>> {
    let n = r.uint("NumPubRestrictions", 12)? as usize;
    let mut out = Vec::with_capacity(n.min(24));
    for _ in 0..n {
        let purpose_id = r.uint("PurposeId", 6)? as u8;
        let restriction = match r.uint("RestrictionType", 2)? {
            0 => RestrictionType::NotAllowed,
            1 => RestrictionType::RequireConsent,
            2 => RestrictionType::RequireLegitimateInterest,
            _ => RestrictionType::Undefined,
        };
        let ranges = range_entries(r, 0)?;
        out.push(PublisherRestriction {
            purpose_id,
            restriction,
            vendors: VendorSet::from_ranges(0, ranges),
        });
    }
    Ok(out)
}

fn publisher_tc(r: &mut BitReader<'_>) -> Result<PublisherTc> {
    let purposes_consent = r.flags("PubPurposesConsent", 24)? as u32;
    let purposes_li_transparency = r.flags("PubPurposesLITransparency", 24)? as u32;
    let num_custom_purposes = r.uint("NumCustomPurposes", 6)? as u8;
    let n = usize::from(num_custom_purposes);
    let custom_purposes_consent = r.flags("CustomPurposesConsent", n)?;
    let custom_purposes_li_transparency = r.flags("CustomPurposesLITransparency", n)?;
    Ok(PublisherTc {
        purposes_consent,
        purposes_li_transparency,
        num_custom_purposes,
        custom_purposes_consent,
        custom_purposes_li_transparency,
    })
}

#[cfg(test)]
#[path = "tcf_tests.rs"]
mod tests;
