//! Consent and opt-outs: the signals a player sends (TCF v2 TC string, GPP string with `gpp_sid`, US Privacy
//! string, `lmt`, `DNT`, `Sec-GPC`, `coppa`) and the content's child-directed flag, reduced to one
//! [`ConsentDecision`] that says what we may do with this viewer, with a [`Reason`] per signal.
//!
//! The rules, in evaluation order (README.md has the full table):
//!
//! 1. **Does GDPR apply?** The `gdpr` flag if sent; else `gpp_sid` listing section 2; else the viewer's
//!    country in `gdpr_countries`; else a TC string being present (the CMP judged it to apply).
//! 2. **Base.** GDPR applies → what TCF grants (IAB TCF v2.2 Policies, Appendix A purposes): storing the
//!    viewer id needs purpose 1 (store and/or access information on a device); personalisation (audience
//!    targeting, frequency capping by viewer id) needs purposes 1, 3 (create profiles for personalised
//!    advertising) and 4 (use profiles to select personalised advertising). With our vendor id configured,
//!    each purpose also needs consent for that vendor and no publisher restriction against it; without one,
//!    purpose consents alone decide. No TC string or an invalid one → nothing granted. GDPR does not apply →
//!    the configured default.
//! 3. **Restrictions** (each can only take away): US Privacy opt-out (standalone or GPP section 6), GPP usnat
//!    SaleOptOut / SharingOptOut / TargetedAdvertisingOptOut / Gpc, `lmt=1`, `DNT: 1`, `Sec-GPC: 1` → no
//!    viewer id, no personalisation (sale/sharing opt-outs also set `opt_out_sale`). COPPA, child-directed
//!    content or a usnat known child without consent → child-directed: contextual only, no viewer id, no
//!    sale. An invalid US signal counts as an opt-out.
//!
//! Personalisation always implies the viewer id may be stored: there is no personalisation without it.

mod reason;
#[cfg(test)]
mod tests;

pub use reason::{GdprBasis, Reason, Source};

use interlude_events::ConsentFlags;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::gpp::{self, GppSection, GppString};
use crate::tcf::{RestrictionType, TcString};
use crate::usp::UsPrivacy;

/// What to do with consent signals. Part of the deployment's configuration (`[privacy.consent]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentConfig {
    /// Our vendor id on the IAB Global Vendor List. When set, TCF grants also need consent for this vendor
    /// and no publisher restriction against it; when unset, purpose consents alone decide.
    #[serde(default)]
    pub vendor_id: Option<u16>,
    /// Whether the viewer id may be stored when GDPR does not apply and nothing restricts it.
    #[serde(default = "default_true")]
    pub default_store_viewer_id: bool,
    /// Whether personalisation is allowed when GDPR does not apply and nothing restricts it (needs
    /// `default_store_viewer_id`).
    #[serde(default = "default_true")]
    pub default_personalisation: bool,
    /// ISO 3166-1 alpha-2 countries where GDPR (or its UK/Swiss equivalents) applies when no `gdpr` flag is
    /// sent: the EEA, the United Kingdom and Switzerland by default.
    #[serde(default = "default_gdpr_countries")]
    pub gdpr_countries: Vec<String>,
    /// Whether `DNT: 1` removes viewer id and personalisation.
    #[serde(default = "default_true")]
    pub honour_dnt: bool,
    /// Whether `Sec-GPC: 1` (Global Privacy Control) counts as an opt-out of sale/sharing.
    #[serde(default = "default_true")]
    pub honour_gpc: bool,
}

fn default_true() -> bool {
    true
}

/// EU member states, the other EEA states (IS, LI, NO), the UK and Switzerland.
fn default_gdpr_countries() -> Vec<String> {
    [
        "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT",
        "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE", "IS", "LI", "NO",
        "GB", "CH",
    ]
    .into_iter()
    .map(String::from)
    .collect()
}

impl Default for ConsentConfig {
    fn default() -> Self {
        ConsentConfig {
            vendor_id: None,
            default_store_viewer_id: true,
            default_personalisation: true,
            gdpr_countries: default_gdpr_countries(),
            honour_dnt: true,
            honour_gpc: true,
        }
    }
}

impl ConsentConfig {
    /// Check the configuration: personalisation cannot be a default without the viewer id, and countries
    /// must be alpha-2 codes.
    pub fn validate(&self) -> Result<()> {
        if self.default_personalisation && !self.default_store_viewer_id {
            return Err(Error::Config {
                key: "consent.default_personalisation",
                reason: "needs default_store_viewer_id (personalisation is keyed by the viewer id)"
                    .to_string(),
            });
        }
        if let Some(bad) = self
            .gdpr_countries
            .iter()
            .find(|c| c.len() != 2 || !c.bytes().all(|b| b.is_ascii_uppercase()))
        {
            return Err(Error::Config {
                key: "consent.gdpr_countries",
                reason: format!("{bad:?} is not an upper-case ISO 3166-1 alpha-2 code"),
            });
        }
        Ok(())
    }
}

/// The raw signals of one request, borrowed from it. Build with [`ConsentSignals::from_query`] and set the
/// header-borne ones (`dnt`, `gpc`), the geo `country` and `child_directed_content` yourself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConsentSignals<'a> {
    /// `gdpr` (`1`/`0`; OpenRTB `regs.gdpr`, TCF `gdprApplies`), when sent.
    pub gdpr_applies: Option<bool>,
    /// `gdpr_consent`: the TC string.
    pub tc_string: Option<&'a str>,
    /// `gpp`: the GPP string.
    pub gpp: Option<&'a str>,
    /// `gpp_sid`: the applicable GPP section ids, comma-separated.
    pub gpp_sid: Option<&'a str>,
    /// `us_privacy`: the US Privacy string.
    pub us_privacy: Option<&'a str>,
    /// `lmt=1` (or `is_lat=1`): the device limits ad tracking.
    pub lmt: bool,
    /// `DNT: 1` header.
    pub dnt: bool,
    /// `Sec-GPC: 1` header (Global Privacy Control).
    pub gpc: bool,
    /// `coppa=1`: the request is subject to COPPA.
    pub coppa: bool,
    /// The channel or content is child-directed (from our catalog, not from the player).
    pub child_directed_content: bool,
    /// The viewer's country (ISO 3166-1 alpha-2, from [`GeoTable`](crate::geo::GeoTable)).
    pub country: Option<&'a str>,
}

fn flag(v: &str) -> bool {
    matches!(v.trim(), "1" | "true" | "TRUE" | "True" | "yes")
}

/// Whether a value is an unexpanded macro (`[GDPRCONSENT]`, `${GDPR_CONSENT_123}`, `%%GDPR%%`, `{gpp}`):
/// the player did not fill it in, so it is no signal.
fn unexpanded(v: &str) -> bool {
    let v = v.trim();
    v.is_empty()
        || v.starts_with('[')
        || v.starts_with("${")
        || v.starts_with("%%")
        || v.starts_with('{')
}

impl<'a> ConsentSignals<'a> {
    /// Read the query parameters players and ad servers use (IAB macro names): `gdpr`, `gdpr_consent`,
    /// `gpp`, `gpp_sid`, `us_privacy`, `lmt`, `is_lat`, `dnt`, `coppa`. Empty values and unexpanded macros
    /// count as absent; unknown parameters are ignored.
    pub fn from_query<I>(pairs: I) -> ConsentSignals<'a>
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let mut s = ConsentSignals::default();
        for (k, v) in pairs {
            if unexpanded(v) {
                continue;
            }
            match k {
                "gdpr" => {
                    s.gdpr_applies = match v.trim() {
                        "1" | "true" => Some(true),
                        "0" | "false" => Some(false),
                        _ => s.gdpr_applies,
                    }
                }
                "gdpr_consent" => s.tc_string = Some(v),
                "gpp" => s.gpp = Some(v),
                "gpp_sid" => s.gpp_sid = Some(v),
                "us_privacy" => s.us_privacy = Some(v),
                "lmt" | "is_lat" => s.lmt |= flag(v),
                "dnt" => s.dnt |= flag(v),
                "coppa" => s.coppa |= flag(v),
                _ => {}
            }
        }
        s
    }
}

/// What we may do with this viewer, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsentDecision {
    /// Whether GDPR (TCF) was taken to apply.
    pub gdpr_applies: bool,
    /// Whether the pseudonymous viewer id may be stored (frequency capping across sessions).
    pub store_viewer_id: bool,
    /// Whether audience targeting and frequency capping by viewer id are allowed. Implies `store_viewer_id`.
    pub personalisation: bool,
    /// Whether the viewer opted out of the sale/sharing of personal data.
    pub opt_out_sale: bool,
    /// Whether the viewer or the content is child-directed: contextual ads only.
    pub child_directed: bool,
    /// Why, one entry per signal or rule, in evaluation order.
    pub reasons: Vec<Reason>,
}

impl ConsentDecision {
    /// The flags the event contract records.
    pub fn flags(&self) -> ConsentFlags {
        ConsentFlags {
            store_viewer_id: self.store_viewer_id,
            personalisation: self.personalisation,
            opt_out_sale: self.opt_out_sale,
        }
    }

    /// The reasons as sentences, for logs and explanations.
    pub fn explain(&self) -> Vec<String> {
        self.reasons.iter().map(ToString::to_string).collect()
    }

    fn deny(&mut self, reason: Reason) {
        self.store_viewer_id = false;
        self.personalisation = false;
        self.reasons.push(reason);
    }

    fn opt_out(&mut self, reason: Reason) {
        self.opt_out_sale = true;
        self.deny(reason);
    }

    fn child(&mut self, reason: Reason) {
        self.child_directed = true;
        self.opt_out(reason);
    }
}

impl From<&ConsentDecision> for ConsentFlags {
    fn from(d: &ConsentDecision) -> ConsentFlags {
        d.flags()
    }
}

impl From<ConsentDecision> for ConsentFlags {
    fn from(d: ConsentDecision) -> ConsentFlags {
        d.flags()
    }
}

/// Reduce the signals to a decision under `config`. Pure and total: every input, however malformed, gives a
/// decision (malformed signals count against personalisation, never for it).
pub fn decide(config: &ConsentConfig, s: &ConsentSignals<'_>) -> ConsentDecision {
    let gpp = s.gpp.map(GppString::parse);
    let sids = s.gpp_sid.map(gpp::parse_sid_list);
    let applicable = |id: u16| sids.as_ref().is_none_or(|l| l.contains(&id));
    let gpp_tcf = match &gpp {
        Some(Ok(g)) if applicable(gpp::SECTION_TCF_EU_V2) => g.section(gpp::SECTION_TCF_EU_V2),
        _ => None,
    };

    let basis = match s.gdpr_applies {
        Some(true) => Some(GdprBasis::Flag),
        Some(false) => None,
        None => {
            if sids
                .as_ref()
                .is_some_and(|l| l.contains(&gpp::SECTION_TCF_EU_V2))
            {
                Some(GdprBasis::GppSid)
            } else if let Some(c) = s.country.filter(|c| {
                config
                    .gdpr_countries
                    .iter()
                    .any(|g| g.eq_ignore_ascii_case(c))
            }) {
                Some(GdprBasis::Country(c.to_ascii_uppercase()))
            } else if s.tc_string.is_some() || gpp_tcf.is_some() {
                Some(GdprBasis::TcStringPresent)
            } else {
                None
            }
        }
    };

    let mut d = ConsentDecision {
        gdpr_applies: basis.is_some(),
        store_viewer_id: false,
        personalisation: false,
        opt_out_sale: false,
        child_directed: false,
        reasons: Vec::new(),
    };

    match basis {
        Some(basis) => {
            d.reasons.push(Reason::GdprApplies { basis });
            match (s.tc_string, gpp_tcf) {
                (Some(text), _) => {
                    let tc = TcString::parse(text);
                    apply_tcf(
                        config,
                        &mut d,
                        tc.as_ref().map_err(Clone::clone),
                        Source::Standalone,
                    )
                }
                (None, Some(GppSection::TcfEuV2(tc))) => {
                    apply_tcf(config, &mut d, Ok(tc), Source::Gpp)
                }
                (None, Some(GppSection::Invalid { error, .. })) => {
                    d.reasons.push(Reason::TcfInvalid {
                        source: Source::Gpp,
                        error: error.clone(),
                    })
                }
                (None, _) => d.reasons.push(Reason::TcfMissing),
            }
        }
        None => {
            if s.tc_string.is_some() || gpp_tcf.is_some() {
                d.reasons.push(Reason::TcfIgnored);
            }
            d.store_viewer_id = config.default_store_viewer_id;
            d.personalisation = config.default_personalisation && config.default_store_viewer_id;
            d.reasons.push(Reason::DefaultApplied {
                store_viewer_id: d.store_viewer_id,
                personalisation: d.personalisation,
            });
        }
    }

    if let Some(text) = s.us_privacy {
        apply_usp(&mut d, UsPrivacy::parse(text), Source::Standalone);
    }
    match gpp {
        Some(Ok(g)) => apply_gpp(&mut d, &g, &applicable, config.honour_gpc),
        Some(Err(e)) => d.opt_out(Reason::GppInvalid {
            error: e.to_string(),
        }),
        None => {}
    }
    if s.lmt {
        d.deny(Reason::Lmt);
    }
    if s.dnt {
        if config.honour_dnt {
            d.deny(Reason::Dnt);
        } else {
            d.reasons.push(Reason::DntIgnored);
        }
    }
    if s.gpc {
        if config.honour_gpc {
            d.opt_out(Reason::Gpc);
        } else {
            d.reasons.push(Reason::GpcIgnored);
        }
    }
    if s.coppa {
        d.child(Reason::Coppa);
    }
    if s.child_directed_content {
        d.child(Reason::ChildDirectedContent);
    }
    d.personalisation &= d.store_viewer_id;
    d
}

/// Whether `purpose` is usable for us under `tc`, pushing the reasons it is not.
fn purpose_usable(
    config: &ConsentConfig,
    tc: &TcString,
    purpose: u8,
    why: &mut Vec<Reason>,
) -> bool {
    let mut ok = tc.purpose_consent(purpose);
    if !ok {
        why.push(Reason::TcfPurposeNotConsented { purpose });
    }
    if let Some(v) = config.vendor_id {
        // Consent is our only legal basis for 1, 3 and 4: "not allowed", "require legitimate interest" and
        // the undefined type all make it unusable; "require consent" changes nothing.
        match tc.restriction(purpose, v) {
            None | Some(RestrictionType::RequireConsent) => {}
            Some(restriction) => {
                why.push(Reason::TcfPublisherRestriction {
                    purpose,
                    restriction,
                });
                ok = false;
            }
        }
    }
    ok
}

fn apply_tcf(
    config: &ConsentConfig,
    d: &mut ConsentDecision,
    tc: Result<&TcString>,
    source: Source,
) {
    let tc = match tc {
        Ok(tc) => tc,
        Err(e) => {
            d.reasons.push(Reason::TcfInvalid {
                source,
                error: e.to_string(),
            });
            return;
        }
    };
    let mut why = Vec::new();
    let vendor_ok = match config.vendor_id {
        Some(v) if !tc.vendor_consent(v) => {
            why.push(Reason::TcfVendorNotConsented { vendor_id: v });
            false
        }
        _ => true,
    };
    let p1 = purpose_usable(config, tc, 1, &mut why);
    let p3 = purpose_usable(config, tc, 3, &mut why);
    let p4 = purpose_usable(config, tc, 4, &mut why);
    d.store_viewer_id = vendor_ok && p1;
    d.personalisation = d.store_viewer_id && p3 && p4;
    if d.store_viewer_id {
        d.reasons.push(Reason::TcfConsented {
            source,
            vendor_id: config.vendor_id,
            personalisation: d.personalisation,
        });
    }
    d.reasons.extend(why);
}

fn apply_usp(d: &mut ConsentDecision, usp: Result<UsPrivacy>, source: Source) {
    match usp {
        Ok(u) if u.opted_out() => d.opt_out(Reason::UspOptOut { source }),
        Ok(_) => d.reasons.push(Reason::UspNoOptOut { source }),
        Err(e) => d.opt_out(Reason::UspInvalid {
            source,
            error: e.to_string(),
        }),
    }
}

fn apply_gpp(
    d: &mut ConsentDecision,
    g: &GppString,
    applicable: &dyn Fn(u16) -> bool,
    honour_gpc: bool,
) {
    use crate::usnat::OptOut;
    for section in &g.sections {
        let id = section.id();
        if !applicable(id) {
            d.reasons.push(Reason::GppSectionNotApplicable { id });
            continue;
        }
        match section {
            // Handled with the GDPR base.
            GppSection::TcfEuV2(_) => {}
            GppSection::Invalid {
                id: gpp::SECTION_TCF_EU_V2,
                ..
            } => {}
            GppSection::UspV1(u) => apply_usp(d, Ok(*u), Source::Gpp),
            GppSection::UsNat(n) => {
                let before = d.reasons.len();
                if n.sale_opt_out == OptOut::OptedOut {
                    d.opt_out(Reason::UsNatSaleOptOut);
                }
                if n.sharing_opt_out == OptOut::OptedOut {
                    d.opt_out(Reason::UsNatSharingOptOut);
                }
                if n.targeted_advertising_opt_out == OptOut::OptedOut {
                    d.deny(Reason::UsNatTargetedAdvertisingOptOut);
                }
                if n.known_child_without_consent() {
                    d.child(Reason::UsNatKnownChild);
                }
                if honour_gpc && n.gpc == Some(true) {
                    d.opt_out(Reason::UsNatGpc);
                }
                if d.reasons.len() == before {
                    d.reasons.push(Reason::UsNatNoOptOut);
                }
            }
            GppSection::Invalid { id, error } => d.opt_out(Reason::GppSectionInvalid {
                id: *id,
                error: error.clone(),
            }),
            GppSection::Other { id, .. } => {
                d.reasons.push(Reason::GppSectionNotDecoded { id: *id })
            }
        }
    }
}
