//! Any bytes through every consent parser and the reduction: no panic, and the decision's invariants hold
//! (personalisation implies the viewer id; any restricting flag removes both). The input is split on NUL into
//! the TC string, GPP string, gpp_sid, US Privacy string and a flags byte, so one input drives them together.
#![no_main]

use interlude_privacy::consent::decide;
use interlude_privacy::{ConsentConfig, ConsentSignals, GppString, TcString, UsNat, UsPrivacy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = TcString::parse(&text);
    let _ = GppString::parse(&text);
    let _ = UsPrivacy::parse(&text);
    let _ = UsNat::parse(&text);

    let mut parts = text.split('\0');
    let mut next = || parts.next().filter(|s| !s.is_empty());
    let (tc, gpp, sid, usp) = (next(), next(), next(), next());
    let flags = data.last().copied().unwrap_or(0);
    let signals = ConsentSignals {
        gdpr_applies: match flags & 0b11 {
            1 => Some(true),
            2 => Some(false),
            _ => None,
        },
        tc_string: tc,
        gpp,
        gpp_sid: sid,
        us_privacy: usp,
        lmt: flags & 0x04 != 0,
        dnt: flags & 0x08 != 0,
        gpc: flags & 0x10 != 0,
        coppa: flags & 0x20 != 0,
        child_directed_content: flags & 0x40 != 0,
        country: (flags & 0x80 != 0).then_some("DE"),
    };
    let d = decide(&ConsentConfig::default(), &signals);
    assert!(
        !d.personalisation || d.store_viewer_id,
        "personalisation without viewer id"
    );
    if flags & 0x7c != 0 {
        assert!(
            !d.store_viewer_id,
            "a restricting flag left the viewer id: {:?}",
            d.explain()
        );
    }
});
