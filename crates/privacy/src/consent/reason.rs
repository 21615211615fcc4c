//! Why a [`ConsentDecision`](super::ConsentDecision) came out as it did: one [`Reason`] per signal seen (and
//! per rule that fired), in evaluation order. The decision engine's explanation shows them as they are; the
//! `Display` text says which signal caused what.

use std::fmt;

use serde::Serialize;

use crate::tcf::RestrictionType;

/// Why GDPR (and so TCF) was taken to apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GdprBasis {
    /// The `gdpr` flag said so.
    Flag,
    /// `gpp_sid` lists section 2 (TCF EU v2).
    GppSid,
    /// The viewer's country (coarse geo) is in `gdpr_countries`.
    Country(String),
    /// No flag and no known country, but a TC string was sent: the CMP judged GDPR to apply.
    TcStringPresent,
}

/// Where a signal came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A parameter of its own (`gdpr_consent`, `us_privacy`).
    Standalone,
    /// A section of the GPP string.
    Gpp,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Standalone => "standalone",
            Source::Gpp => "GPP",
        })
    }
}

/// One step of the reduction: a signal and its effect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Reason {
    /// GDPR does not apply and nothing restricted: the configured default.
    DefaultApplied {
        /// The default for storing the viewer id.
        store_viewer_id: bool,
        /// The default for personalisation.
        personalisation: bool,
    },
    /// GDPR applies: TCF consent is required for viewer id and personalisation.
    GdprApplies {
        /// Why it applies.
        basis: GdprBasis,
    },
    /// The `gdpr=0` flag (or no GDPR basis) made a sent TC string irrelevant.
    TcfIgnored,
    /// GDPR applies and no TC string was sent: no viewer id, no personalisation.
    TcfMissing,
    /// GDPR applies and the TC string did not decode: treated as no consent.
    TcfInvalid {
        /// Where it came from.
        source: Source,
        /// The decoding error.
        error: String,
    },
    /// The TC string grants purpose 1 (store/access) and, where required, purposes 3 and 4.
    TcfConsented {
        /// Where it came from.
        source: Source,
        /// Our vendor id, when configured and consented.
        vendor_id: Option<u16>,
        /// Whether personalisation was granted too (purposes 3 and 4).
        personalisation: bool,
    },
    /// A purpose we need has no consent.
    TcfPurposeNotConsented {
        /// The purpose (1 store/access, 3 personalised ads profile, 4 personalised ads selection).
        purpose: u8,
    },
    /// Our vendor id has no consent: neither viewer id nor personalisation.
    TcfVendorNotConsented {
        /// Our vendor id.
        vendor_id: u16,
    },
    /// The publisher restricted a purpose we need for our vendor id.
    TcfPublisherRestriction {
        /// The purpose.
        purpose: u8,
        /// The restriction.
        restriction: RestrictionType,
    },
    /// US Privacy string: the viewer opted out of sale → no viewer id, no personalisation, opt-out of sale.
    UspOptOut {
        /// Where it came from.
        source: Source,
    },
    /// US Privacy string without an opt-out (or not applicable): no effect.
    UspNoOptOut {
        /// Where it came from.
        source: Source,
    },
    /// US Privacy string did not decode: treated as an opt-out.
    UspInvalid {
        /// Where it came from.
        source: Source,
        /// The decoding error.
        error: String,
    },
    /// The GPP string did not decode: treated as an opt-out of sale and of targeted advertising.
    GppInvalid {
        /// The decoding error.
        error: String,
    },
    /// A GPP section is present but `gpp_sid` does not list it: ignored.
    GppSectionNotApplicable {
        /// Section id.
        id: u16,
    },
    /// A GPP section we do not decode (a US state section, TCF Canada, …): no effect.
    GppSectionNotDecoded {
        /// Section id.
        id: u16,
    },
    /// An applicable US GPP section did not decode: treated as an opt-out.
    GppSectionInvalid {
        /// Section id.
        id: u16,
        /// The decoding error.
        error: String,
    },
    /// GPP usnat SaleOptOut = 1 → no viewer id, no personalisation, opt-out of sale.
    UsNatSaleOptOut,
    /// GPP usnat SharingOptOut = 1 → no viewer id, no personalisation, opt-out of sale/sharing.
    UsNatSharingOptOut,
    /// GPP usnat TargetedAdvertisingOptOut = 1 → no viewer id, no personalisation.
    UsNatTargetedAdvertisingOptOut,
    /// GPP usnat KnownChildSensitiveDataConsents has "no consent": a known child → contextual only.
    UsNatKnownChild,
    /// GPP usnat Gpc = 1 → treated as an opt-out of sale/sharing.
    UsNatGpc,
    /// GPP usnat present with no opt-out: no effect.
    UsNatNoOptOut,
    /// Limit ad tracking (`lmt=1`): no viewer id, no personalisation.
    Lmt,
    /// `DNT: 1` header: no viewer id, no personalisation.
    Dnt,
    /// `DNT: 1` seen but `honour_dnt` is off: no effect.
    DntIgnored,
    /// `Sec-GPC: 1` header: opt-out of sale/sharing, no viewer id, no personalisation.
    Gpc,
    /// `Sec-GPC: 1` seen but `honour_gpc` is off: no effect.
    GpcIgnored,
    /// COPPA flag (`coppa=1`): child-directed, contextual only, no viewer id, no sale.
    Coppa,
    /// The content is child-directed (catalog flag): contextual only, no viewer id, no sale.
    ChildDirectedContent,
}

impl Reason {
    /// The signal this reason is about, for grouping in explanations.
    pub fn signal(&self) -> &'static str {
        match self {
            Reason::DefaultApplied { .. } => "default",
            Reason::GdprApplies { .. } => "gdpr",
            Reason::TcfIgnored
            | Reason::TcfMissing
            | Reason::TcfInvalid { .. }
            | Reason::TcfConsented { .. }
            | Reason::TcfPurposeNotConsented { .. }
            | Reason::TcfVendorNotConsented { .. }
            | Reason::TcfPublisherRestriction { .. } => "tcf",
            Reason::UspOptOut { .. } | Reason::UspNoOptOut { .. } | Reason::UspInvalid { .. } => {
                "us_privacy"
            }
            Reason::GppInvalid { .. }
            | Reason::GppSectionNotApplicable { .. }
            | Reason::GppSectionNotDecoded { .. }
            | Reason::GppSectionInvalid { .. } => "gpp",
            Reason::UsNatSaleOptOut
            | Reason::UsNatSharingOptOut
            | Reason::UsNatTargetedAdvertisingOptOut
            | Reason::UsNatKnownChild
            | Reason::UsNatGpc
            | Reason::UsNatNoOptOut => "gpp_usnat",
            Reason::Lmt => "lmt",
            Reason::Dnt | Reason::DntIgnored => "dnt",
            Reason::Gpc | Reason::GpcIgnored => "gpc",
            Reason::Coppa | Reason::ChildDirectedContent => "coppa",
        }
    }
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NO_ID: &str = "no viewer id, no personalisation";
        match self {
            Reason::DefaultApplied {
                store_viewer_id,
                personalisation,
            } => write!(
                f,
                "GDPR does not apply: default (viewer id {}, personalisation {})",
                yes_no(*store_viewer_id),
                yes_no(*personalisation)
            ),
            Reason::GdprApplies { basis } => match basis {
                GdprBasis::Flag => write!(f, "gdpr=1: TCF consent required"),
                GdprBasis::GppSid => write!(f, "gpp_sid lists TCF EU (2): TCF consent required"),
                GdprBasis::Country(c) => write!(f, "viewer in {c}: TCF consent required"),
                GdprBasis::TcStringPresent => {
                    write!(f, "TC string sent (no gdpr flag): TCF consent required")
                }
            },
            Reason::TcfIgnored => write!(f, "TC string ignored: GDPR does not apply"),
            Reason::TcfMissing => write!(f, "GDPR applies but no TC string: {NO_ID}"),
            Reason::TcfInvalid { source, error } => {
                write!(
                    f,
                    "TC string ({source}) invalid, treated as no consent: {error}"
                )
            }
            Reason::TcfConsented {
                source,
                vendor_id,
                personalisation,
            } => {
                write!(f, "TC string ({source}) grants purpose 1")?;
                if *personalisation {
                    write!(f, ", 3 and 4")?;
                }
                if let Some(v) = vendor_id {
                    write!(f, " to vendor {v}")?;
                }
                Ok(())
            }
            Reason::TcfPurposeNotConsented { purpose } => match purpose {
                1 => write!(f, "TCF purpose 1 (store/access) not consented: {NO_ID}"),
                p => write!(f, "TCF purpose {p} not consented: no personalisation"),
            },
            Reason::TcfVendorNotConsented { vendor_id } => {
                write!(f, "TCF vendor {vendor_id} (us) not consented: {NO_ID}")
            }
            Reason::TcfPublisherRestriction {
                purpose,
                restriction,
            } => write!(
                f,
                "publisher restriction {restriction:?} on purpose {purpose} for our vendor id: consent not usable"
            ),
            Reason::UspOptOut { source } => write!(
                f,
                "US Privacy ({source}) opt-out of sale: opt-out of sale, {NO_ID}"
            ),
            Reason::UspNoOptOut { source } => write!(f, "US Privacy ({source}): no opt-out"),
            Reason::UspInvalid { source, error } => write!(
                f,
                "US Privacy ({source}) invalid, treated as an opt-out: {error}"
            ),
            Reason::GppInvalid { error } => {
                write!(f, "GPP string invalid, treated as an opt-out: {error}")
            }
            Reason::GppSectionNotApplicable { id } => {
                write!(f, "GPP section {id} not in gpp_sid: ignored")
            }
            Reason::GppSectionNotDecoded { id } => {
                write!(f, "GPP section {id} not decoded: no effect")
            }
            Reason::GppSectionInvalid { id, error } => write!(
                f,
                "GPP section {id} invalid, treated as an opt-out: {error}"
            ),
            Reason::UsNatSaleOptOut => {
                write!(f, "GPP usnat SaleOptOut: opt-out of sale, {NO_ID}")
            }
            Reason::UsNatSharingOptOut => {
                write!(
                    f,
                    "GPP usnat SharingOptOut: opt-out of sale/sharing, {NO_ID}"
                )
            }
            Reason::UsNatTargetedAdvertisingOptOut => {
                write!(f, "GPP usnat TargetedAdvertisingOptOut: {NO_ID}")
            }
            Reason::UsNatKnownChild => write!(
                f,
                "GPP usnat known child without consent: child-directed, contextual only"
            ),
            Reason::UsNatGpc => write!(f, "GPP usnat Gpc: opt-out of sale/sharing, {NO_ID}"),
            Reason::UsNatNoOptOut => write!(f, "GPP usnat: no opt-out"),
            Reason::Lmt => write!(f, "lmt=1 (limit ad tracking): {NO_ID}"),
            Reason::Dnt => write!(f, "DNT: 1: {NO_ID}"),
            Reason::DntIgnored => write!(f, "DNT: 1 not honoured (honour_dnt = false)"),
            Reason::Gpc => write!(f, "Sec-GPC: 1: opt-out of sale/sharing, {NO_ID}"),
            Reason::GpcIgnored => write!(f, "Sec-GPC: 1 not honoured (honour_gpc = false)"),
            Reason::Coppa => write!(f, "coppa=1: child-directed, contextual only, {NO_ID}"),
            Reason::ChildDirectedContent => {
                write!(f, "child-directed content: contextual only, {NO_ID}")
            }
        }
    }
}
