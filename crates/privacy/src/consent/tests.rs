//! Every consent combination's effect on the decision, as a table. TC strings are either real (the IAB
//! reference decoder's test strings, see `tcf_tests.rs`) or built field by field with the spec-derived test
//! encoder (`testutil.rs`); GPP strings are the IAB GPP library's test strings (`IABTechLab/iabgpp-java`
//! `GppModelTest.java`, `UsNatTest.java`) or headers built by the test encoder around them.

use super::*;
use crate::testutil::{TcFields, gpp_header};

const OUR_VENDOR: u16 = 755;

/// Real: purposes 2 and 10 only (iabtcf-java TCStringV2Test).
const TC_REAL_NO_P1: &str = "COtybn4PA_zT4KjACBENAPCIAEBAAECAAIAAAAAAAAAA";
/// Real: purposes 3–9, vendors 23, 37, 47, 48, 53, 65, 98 (iabtcf-java TCStringV2Test).
const TC_REAL_P3_TO_9: &str =
    "COrEAV4OrXx94ACABBENAHCIAD-AAAAAAACAAxAAAAgAIAwgAgAAAAEAgQAAAAAEAYQAQAAAACAAAABAAA";
/// GPP usnat with SaleOptOut, SharingOptOut, TargetedAdvertisingOptOut = 1, a known child without consent
/// and Gpc (iabgpp-java UsNatTest.testDecode1).
const USNAT_ALL_OPTED_OUT: &str = "BVVVkkkklWA.YA";
/// GPP usnat with every field "not applicable" and Gpc = 0 (iabgpp-java UsNatTest.testEncode1).
const USNAT_NONE: &str = "BAAAAAAAAQA.QA";

fn full_consent() -> String {
    TcFields::consenting(&[1, 2, 3, 4, 7], &[1, OUR_VENDOR]).encode()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Want {
    store: bool,
    pers: bool,
    sale: bool,
    child: bool,
}

const ALLOW: Want = Want {
    store: true,
    pers: true,
    sale: false,
    child: false,
};
const ID_ONLY: Want = Want {
    store: true,
    pers: false,
    sale: false,
    child: false,
};
const DENY: Want = Want {
    store: false,
    pers: false,
    sale: false,
    child: false,
};
const OPT_OUT: Want = Want {
    store: false,
    pers: false,
    sale: true,
    child: false,
};
const CHILD: Want = Want {
    store: false,
    pers: false,
    sale: true,
    child: true,
};

fn config(vendor_id: Option<u16>) -> ConsentConfig {
    ConsentConfig {
        vendor_id,
        ..ConsentConfig::default()
    }
}

fn check(
    name: &str,
    cfg: &ConsentConfig,
    s: ConsentSignals<'_>,
    want: Want,
    reason: &dyn Fn(&Reason) -> bool,
) {
    let d = decide(cfg, &s);
    let got = Want {
        store: d.store_viewer_id,
        pers: d.personalisation,
        sale: d.opt_out_sale,
        child: d.child_directed,
    };
    assert_eq!(got, want, "{name}: {:#?}", d.explain());
    assert!(
        d.reasons.iter().any(reason),
        "{name}: expected reason missing from {:#?}",
        d.explain()
    );
    assert!(
        !d.personalisation || d.store_viewer_id,
        "{name}: personalisation implies viewer id"
    );
    assert_eq!(
        ConsentFlags::from(&d),
        ConsentFlags {
            store_viewer_id: want.store,
            personalisation: want.pers,
            opt_out_sale: want.sale
        },
        "{name}: event contract flags"
    );
}

#[test]
fn every_signal_combination_has_its_documented_effect() {
    let full = full_consent();
    let no_p1 = TcFields::consenting(&[2, 3, 4], &[OUR_VENDOR]).encode();
    let no_p34 = TcFields::consenting(&[1, 2], &[OUR_VENDOR]).encode();
    let other_vendor = TcFields::consenting(&[1, 2, 3, 4], &[1, 2]).encode();
    let restricted = TcFields {
        restrictions: vec![(3, 0, vec![OUR_VENDOR])],
        ..TcFields::consenting(&[1, 2, 3, 4], &[OUR_VENDOR])
    }
    .encode();
    let restricted_require_consent = TcFields {
        restrictions: vec![(1, 1, vec![OUR_VENDOR])],
        ..TcFields::consenting(&[1, 2, 3, 4], &[OUR_VENDOR])
    }
    .encode();
    let gpp_usnat_out = format!("{}~{USNAT_ALL_OPTED_OUT}", gpp_header(&[7]));
    let gpp_usnat_none = format!("{}~{USNAT_NONE}", gpp_header(&[7]));
    let gpp_usp_out = format!("{}~1YYN", gpp_header(&[6]));
    let gpp_tcf_full = format!("{}~{full}", gpp_header(&[2]));
    let gpp_tcf_and_usp = "DBACNYA~CPSG_8APSG_8ANwAAAENAwCAAAAAAAAAAAAAAAAAAAAA.QAAA.IAAA~1YNN";

    let ours = config(Some(OUR_VENDOR));
    let any = config(None);
    let gdpr = |tc: &'static str| ConsentSignals {
        gdpr_applies: Some(true),
        tc_string: Some(tc),
        ..ConsentSignals::default()
    };
    // Leak the built strings so the table can hold `ConsentSignals<'static>`.
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let full: &'static str = leak(full);

    type Case<'a> = (
        &'a str,
        &'a ConsentConfig,
        ConsentSignals<'static>,
        Want,
        Box<dyn Fn(&Reason) -> bool>,
    );
    let cases: Vec<Case<'_>> = vec![
        (
            "nothing sent, not in a regulated region: default",
            &ours,
            ConsentSignals::default(),
            ALLOW,
            Box::new(|r| matches!(r, Reason::DefaultApplied { .. })),
        ),
        (
            "nothing sent, viewer in Germany: GDPR by country, no TC string",
            &ours,
            ConsentSignals {
                country: Some("DE"),
                ..ConsentSignals::default()
            },
            DENY,
            Box::new(|r| *r == Reason::TcfMissing),
        ),
        (
            "gdpr=1 without a TC string",
            &ours,
            ConsentSignals {
                gdpr_applies: Some(true),
                ..ConsentSignals::default()
            },
            DENY,
            Box::new(|r| *r == Reason::TcfMissing),
        ),
        (
            "TCF purposes 1, 3, 4 and our vendor",
            &ours,
            gdpr(full),
            ALLOW,
            Box::new(|r| {
                matches!(
                    r,
                    Reason::TcfConsented {
                        personalisation: true,
                        ..
                    }
                )
            }),
        ),
        (
            "TCF purposes 1, 3, 4 with no vendor id configured",
            &any,
            gdpr(full),
            ALLOW,
            Box::new(|r| {
                matches!(
                    r,
                    Reason::TcfConsented {
                        vendor_id: None,
                        ..
                    }
                )
            }),
        ),
        (
            "TCF without purpose 1",
            &ours,
            gdpr(leak(no_p1)),
            DENY,
            Box::new(|r| *r == Reason::TcfPurposeNotConsented { purpose: 1 }),
        ),
        (
            "TCF purpose 1 without 3 and 4: viewer id, no personalisation",
            &ours,
            gdpr(leak(no_p34)),
            ID_ONLY,
            Box::new(|r| *r == Reason::TcfPurposeNotConsented { purpose: 3 }),
        ),
        (
            "TCF purposes granted but not to our vendor",
            &ours,
            gdpr(leak(other_vendor.clone())),
            DENY,
            Box::new(|r| {
                *r == Reason::TcfVendorNotConsented {
                    vendor_id: OUR_VENDOR,
                }
            }),
        ),
        (
            "the same string with no vendor id configured: purposes decide",
            &any,
            gdpr(leak(other_vendor)),
            ALLOW,
            Box::new(|r| matches!(r, Reason::TcfConsented { .. })),
        ),
        (
            "publisher restriction 'not allowed' on purpose 3 for our vendor",
            &ours,
            gdpr(leak(restricted)),
            ID_ONLY,
            Box::new(|r| {
                *r == Reason::TcfPublisherRestriction {
                    purpose: 3,
                    restriction: RestrictionType::NotAllowed,
                }
            }),
        ),
        (
            "publisher restriction 'require consent' changes nothing",
            &ours,
            gdpr(leak(restricted_require_consent)),
            ALLOW,
            Box::new(|r| matches!(r, Reason::TcfConsented { .. })),
        ),
        (
            "real string without purpose 1",
            &any,
            gdpr(TC_REAL_NO_P1),
            DENY,
            Box::new(|r| *r == Reason::TcfPurposeNotConsented { purpose: 1 }),
        ),
        (
            "real string with purposes 3-9 but not 1",
            &any,
            gdpr(TC_REAL_P3_TO_9),
            DENY,
            Box::new(|r| *r == Reason::TcfPurposeNotConsented { purpose: 1 }),
        ),
        (
            "invalid TC string when GDPR applies",
            &ours,
            gdpr("not-a-tc-string!"),
            DENY,
            Box::new(|r| matches!(r, Reason::TcfInvalid { .. })),
        ),
        (
            "gdpr=0 with a TC string: ignored, default",
            &ours,
            ConsentSignals {
                gdpr_applies: Some(false),
                tc_string: Some(TC_REAL_NO_P1),
                ..ConsentSignals::default()
            },
            ALLOW,
            Box::new(|r| *r == Reason::TcfIgnored),
        ),
        (
            "TC string without gdpr flag or country: the CMP's judgement stands",
            &ours,
            ConsentSignals {
                tc_string: Some(TC_REAL_NO_P1),
                ..ConsentSignals::default()
            },
            DENY,
            Box::new(|r| {
                *r == Reason::GdprApplies {
                    basis: GdprBasis::TcStringPresent,
                }
            }),
        ),
        (
            "TCF EU section in GPP with gpp_sid=2",
            &ours,
            ConsentSignals {
                gpp: Some(leak(gpp_tcf_full)),
                gpp_sid: Some("2"),
                ..ConsentSignals::default()
            },
            ALLOW,
            Box::new(|r| {
                matches!(
                    r,
                    Reason::TcfConsented {
                        source: Source::Gpp,
                        ..
                    }
                )
            }),
        ),
        (
            "USP 1YNN: no opt-out, default",
            &ours,
            ConsentSignals {
                us_privacy: Some("1YNN"),
                ..ConsentSignals::default()
            },
            ALLOW,
            Box::new(|r| matches!(r, Reason::UspNoOptOut { .. })),
        ),
        (
            "USP 1YYN: opt-out of sale",
            &ours,
            ConsentSignals {
                us_privacy: Some("1YYN"),
                ..ConsentSignals::default()
            },
            OPT_OUT,
            Box::new(|r| {
                *r == Reason::UspOptOut {
                    source: Source::Standalone,
                }
            }),
        ),
        (
            "USP opt-out overrides TCF consent",
            &ours,
            ConsentSignals {
                us_privacy: Some("1YYN"),
                ..gdpr(full)
            },
            OPT_OUT,
            Box::new(|r| matches!(r, Reason::UspOptOut { .. })),
        ),
        (
            "invalid USP: treated as an opt-out",
            &ours,
            ConsentSignals {
                us_privacy: Some("YES"),
                ..ConsentSignals::default()
            },
            OPT_OUT,
            Box::new(|r| matches!(r, Reason::UspInvalid { .. })),
        ),
        (
            "GPP usp section opted out",
            &ours,
            ConsentSignals {
                gpp: Some(leak(gpp_usp_out)),
                gpp_sid: Some("6"),
                ..ConsentSignals::default()
            },
            OPT_OUT,
            Box::new(|r| {
                *r == Reason::UspOptOut {
                    source: Source::Gpp,
                }
            }),
        ),
        (
            "GPP usnat opted out of sale, sharing and targeted ads, known child, GPC",
            &ours,
            ConsentSignals {
                gpp: Some(leak(gpp_usnat_out.clone())),
                gpp_sid: Some("7"),
                ..ConsentSignals::default()
            },
            CHILD,
            Box::new(|r| *r == Reason::UsNatTargetedAdvertisingOptOut),
        ),
        (
            "GPP usnat section not listed in gpp_sid: ignored",
            &ours,
            ConsentSignals {
                gpp: Some(leak(gpp_usnat_out)),
                gpp_sid: Some("8"),
                ..ConsentSignals::default()
            },
            ALLOW,
            Box::new(|r| *r == Reason::GppSectionNotApplicable { id: 7 }),
        ),
        (
            "GPP usnat with nothing applicable",
            &ours,
            ConsentSignals {
                gpp: Some(leak(gpp_usnat_none)),
                ..ConsentSignals::default()
            },
            ALLOW,
            Box::new(|r| *r == Reason::UsNatNoOptOut),
        ),
        (
            "GPP TCF EU and USP without gpp_sid or gdpr flag: TCF applies (string present), no purposes",
            &ours,
            ConsentSignals {
                gpp: Some(gpp_tcf_and_usp),
                ..ConsentSignals::default()
            },
            DENY,
            Box::new(|r| *r == Reason::TcfPurposeNotConsented { purpose: 1 }),
        ),
        (
            "invalid GPP string: treated as an opt-out",
            &ours,
            ConsentSignals {
                gpp: Some("DBABTA"),
                ..ConsentSignals::default()
            },
            OPT_OUT,
            Box::new(|r| matches!(r, Reason::GppInvalid { .. })),
        ),
        (
            "LMT",
            &ours,
            ConsentSignals {
                lmt: true,
                ..ConsentSignals::default()
            },
            DENY,
            Box::new(|r| *r == Reason::Lmt),
        ),
        (
            "LMT overrides TCF consent",
            &ours,
            ConsentSignals {
                lmt: true,
                ..gdpr(full)
            },
            DENY,
            Box::new(|r| *r == Reason::Lmt),
        ),
        (
            "DNT",
            &ours,
            ConsentSignals {
                dnt: true,
                ..ConsentSignals::default()
            },
            DENY,
            Box::new(|r| *r == Reason::Dnt),
        ),
        (
            "Sec-GPC",
            &ours,
            ConsentSignals {
                gpc: true,
                ..ConsentSignals::default()
            },
            OPT_OUT,
            Box::new(|r| *r == Reason::Gpc),
        ),
        (
            "COPPA",
            &ours,
            ConsentSignals {
                coppa: true,
                ..ConsentSignals::default()
            },
            CHILD,
            Box::new(|r| *r == Reason::Coppa),
        ),
        (
            "COPPA overrides TCF consent",
            &ours,
            ConsentSignals {
                coppa: true,
                ..gdpr(full)
            },
            CHILD,
            Box::new(|r| *r == Reason::Coppa),
        ),
        (
            "child-directed content",
            &ours,
            ConsentSignals {
                child_directed_content: true,
                ..ConsentSignals::default()
            },
            CHILD,
            Box::new(|r| *r == Reason::ChildDirectedContent),
        ),
    ];
    for (name, cfg, signals, want, reason) in &cases {
        check(name, cfg, *signals, *want, reason.as_ref());
    }
}

#[test]
fn configuration_switches_change_the_outcome() {
    let dnt = ConsentSignals {
        dnt: true,
        ..ConsentSignals::default()
    };
    let cfg = ConsentConfig {
        honour_dnt: false,
        ..ConsentConfig::default()
    };
    check("DNT not honoured", &cfg, dnt, ALLOW, &|r| {
        *r == Reason::DntIgnored
    });
    let gpc = ConsentSignals {
        gpc: true,
        ..ConsentSignals::default()
    };
    let cfg = ConsentConfig {
        honour_gpc: false,
        ..ConsentConfig::default()
    };
    check("GPC not honoured", &cfg, gpc, ALLOW, &|r| {
        *r == Reason::GpcIgnored
    });
    let cfg = ConsentConfig {
        default_store_viewer_id: true,
        default_personalisation: false,
        ..ConsentConfig::default()
    };
    check(
        "default without personalisation",
        &cfg,
        ConsentSignals::default(),
        ID_ONLY,
        &|r| {
            *r == Reason::DefaultApplied {
                store_viewer_id: true,
                personalisation: false,
            }
        },
    );
    let cfg = ConsentConfig {
        default_store_viewer_id: false,
        default_personalisation: false,
        ..ConsentConfig::default()
    };
    check(
        "strict default",
        &cfg,
        ConsentSignals::default(),
        DENY,
        &|r| matches!(r, Reason::DefaultApplied { .. }),
    );
}

#[test]
fn query_parameters_are_read_and_macros_ignored() {
    let pairs = [
        ("gdpr", "1"),
        ("gdpr_consent", "[GDPRCONSENT]"),
        ("us_privacy", "1YNN"),
        ("gpp", "${GPP_STRING}"),
        ("gpp_sid", "2,6"),
        ("lmt", "1"),
        ("coppa", "0"),
        ("channel", "live1"),
    ];
    let s = ConsentSignals::from_query(pairs);
    assert_eq!(s.gdpr_applies, Some(true));
    assert_eq!(s.tc_string, None, "unexpanded macro is no signal");
    assert_eq!(s.gpp, None);
    assert_eq!(s.us_privacy, Some("1YNN"));
    assert_eq!(s.gpp_sid, Some("2,6"));
    assert!(s.lmt && !s.coppa && !s.dnt);
}

#[test]
fn every_reason_explains_itself() {
    let d = decide(
        &config(Some(OUR_VENDOR)),
        &ConsentSignals {
            gdpr_applies: Some(true),
            tc_string: Some(TC_REAL_NO_P1),
            us_privacy: Some("1YYN"),
            lmt: true,
            dnt: true,
            coppa: true,
            ..ConsentSignals::default()
        },
    );
    let text = d.explain().join("\n");
    for needle in [
        "gdpr=1",
        "vendor 755",
        "purpose 1",
        "US Privacy",
        "lmt=1",
        "DNT",
        "coppa=1",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
    let json = serde_json::to_value(&d).unwrap_or_default();
    assert_eq!(json["reasons"][0]["reason"], "gdpr_applies");
}
