//! Any text as a tracking token: verification never panics and never accepts what we did not sign; any bytes
//! as a signed payload: what verifies reads back exactly as signed.
#![no_main]

use interlude_events::{EventType, Keyring, TokenClaims};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let keys = Keyring::new(7, b"fuzz-key".to_vec());
    if let Ok(text) = std::str::from_utf8(data) {
        // Random text essentially never carries a valid 128-bit tag; if it ever does, it must parse cleanly.
        let _ = keys.verify(text);
    }
    // Claims built from the input: sign then verify must give them back.
    let mut parts = data.splitn(5, |&b| b == 0);
    let mut next = || String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let claims = TokenClaims {
        ad_instance_id: next(),
        session_id: next(),
        creative_id: next(),
        line_item_id: Some(next()).filter(|s| !s.is_empty()),
        channel: next(),
        event_type: EventType::from_code(data.first().copied().unwrap_or(0) % 12).unwrap_or(EventType::Start),
        issued_at: data.len() as u32,
        demand: None,
    };
    if let Ok(token) = keys.sign(&claims) {
        assert_eq!(keys.verify(&token), Ok(claims));
    }
});
