//! Property tests over the public API: the consent parsers and the reduction never panic on any input (they
//! read untrusted query parameters on every request), IP truncation is idempotent and never keeps more than
//! /24 or /48, and the geo table finds every address of a block it holds.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use interlude_privacy::consent::decide;
use interlude_privacy::{
    ConsentConfig, ConsentSignals, GeoTable, GppString, TcString, UaRules, UsNat, UsPrivacy,
    truncate_ip,
};
use proptest::prelude::*;

/// Text that gets past the base64url check so the bit-level decoders run deep.
fn base64url_segments() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-]{0,300}(\\.[A-Za-z0-9_-]{0,60}){0,3}"
}

/// GPP-shaped text: a valid header prefix, then `~`-separated segments.
fn gpp_like() -> impl Strategy<Value = String> {
    "(DBA[A-Za-z0-9_-]{0,8})(~[A-Za-z0-9_.-]{0,40}){0,6}"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn consent_parsers_never_panic_on_any_text(s in any::<String>()) {
        let _ = TcString::parse(&s);
        let _ = GppString::parse(&s);
        let _ = UsPrivacy::parse(&s);
        let _ = UsNat::parse(&s);
    }

    #[test]
    fn bit_level_decoders_never_panic_on_base64url(s in base64url_segments()) {
        let _ = TcString::parse(&s);
        let _ = UsNat::parse(&s);
        let _ = GppString::parse(&s);
    }

    #[test]
    fn gpp_decoder_never_panics_on_gpp_shaped_text(s in gpp_like()) {
        let _ = GppString::parse(&s);
    }

    #[test]
    fn decision_is_total_and_consistent(
        tc in proptest::option::of(base64url_segments()),
        gpp in proptest::option::of(gpp_like()),
        sid in proptest::option::of("[0-9,]{0,8}"),
        usp in proptest::option::of("[1-2][YN-]{0,4}"),
        gdpr in proptest::option::of(any::<bool>()),
        flags in any::<[bool; 5]>(),
        country in proptest::option::of("[A-Z]{2}"),
    ) {
        let s = ConsentSignals {
            gdpr_applies: gdpr,
            tc_string: tc.as_deref(),
            gpp: gpp.as_deref(),
            gpp_sid: sid.as_deref(),
            us_privacy: usp.as_deref(),
            lmt: flags[0],
            dnt: flags[1],
            gpc: flags[2],
            coppa: flags[3],
            child_directed_content: flags[4],
            country: country.as_deref(),
        };
        let d = decide(&ConsentConfig::default(), &s);
        prop_assert!(!d.personalisation || d.store_viewer_id);
        prop_assert!(!d.reasons.is_empty());
        if flags[0] || flags[1] || flags[2] || flags[3] || flags[4] {
            prop_assert!(!d.store_viewer_id && !d.personalisation);
        }
        if flags[3] || flags[4] {
            prop_assert!(d.child_directed && d.opt_out_sale);
        }
    }

    #[test]
    fn geo_csv_and_ua_rules_never_panic(text in any::<String>(), ua in any::<String>()) {
        let _ = GeoTable::from_csv(&text);
        let _ = UaRules::parse(&text);
        let _ = UaRules::builtin().reduce(&ua);
    }

    #[test]
    fn ipv4_truncation_is_idempotent_and_keeps_24_bits(n in any::<u32>()) {
        let t = truncate_ip(IpAddr::V4(Ipv4Addr::from(n)));
        prop_assert_eq!(truncate_ip(t.addr()), t);
        prop_assert_eq!(t.prefix_len(), 24);
        match t.addr() {
            IpAddr::V4(v4) => {
                prop_assert_eq!(u32::from(v4) & 0xff, 0);
                prop_assert_eq!(u32::from(v4), n & 0xffff_ff00);
            }
            IpAddr::V6(_) => prop_assert!(false, "IPv4 stays IPv4"),
        }
    }

    #[test]
    fn ipv6_truncation_is_idempotent_and_keeps_48_bits(n in any::<u128>()) {
        let ip = IpAddr::V6(Ipv6Addr::from(n));
        let t = truncate_ip(ip);
        prop_assert_eq!(truncate_ip(t.addr()), t);
        match t.addr() {
            IpAddr::V6(v6) => {
                prop_assert_eq!(u128::from(v6) & ((1u128 << 80) - 1), 0);
                prop_assert_eq!(t.prefix_len(), 48);
            }
            // Only an IPv4-mapped input becomes IPv4, and then it keeps 24 bits.
            IpAddr::V4(v4) => {
                prop_assert_eq!(n >> 32, 0xffff);
                prop_assert_eq!(u32::from(v4) & 0xff, 0);
            }
        }
    }

    #[test]
    fn ipv4_mapped_truncates_like_ipv4(n in any::<u32>()) {
        let mapped = IpAddr::V6(Ipv4Addr::from(n).to_ipv6_mapped());
        prop_assert_eq!(truncate_ip(mapped), truncate_ip(IpAddr::V4(Ipv4Addr::from(n))));
    }

    #[test]
    fn geo_lookup_finds_the_longest_block(outer in any::<u8>(), inner in any::<u16>(), host in any::<u8>()) {
        let o = u32::from(outer) << 24;
        let i = o | (u32::from(inner) << 8);
        let csv = format!(
            "{}/8,DE,\n{}/24,DE,DE-BY\n",
            Ipv4Addr::from(o),
            Ipv4Addr::from(i)
        );
        let table = GeoTable::from_csv(&csv).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let hit = table.lookup(IpAddr::V4(Ipv4Addr::from(i | u32::from(host))));
        prop_assert_eq!(hit.and_then(|g| g.region.as_deref()), Some("DE-BY"));
        let elsewhere = Ipv4Addr::from((i ^ 0x0000_0100) | u32::from(host));
        let hit = table.lookup(IpAddr::V4(elsewhere));
        prop_assert_eq!(hit.map(|g| (g.country.as_str(), g.region.clone())), Some(("DE", None)));
    }
}
