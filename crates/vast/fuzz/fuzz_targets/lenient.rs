//! Any bytes through the lenient VAST reader: no panic; what it keeps and reports stays within its limits;
//! where strict reading succeeds, lenient reading keeps the same ads and drops none; whatever it keeps
//! writes (or is refused with an error) to a document that strict reading reads back to the same ads.
#![no_main]

use interlude_vast::{ParseLimits, parse_vast, parse_vast_lenient, write_vast};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(parsed) = parse_vast_lenient(&text) else {
        return;
    };
    let limits = ParseLimits::default();
    assert!(parsed.vast.ads.len() + parsed.dropped.len() <= limits.max_ads);
    assert!(parsed.dropped.iter().all(|d| d.error_uris.len() <= limits.max_error_uris));
    assert!(parsed.warnings.len() <= limits.max_warnings + 1);
    if let Ok(strict) = parse_vast(&text) {
        if strict.ads.len() <= limits.max_ads {
            assert_eq!(parsed.vast.ads, strict.ads, "lenient reading changed a strictly valid ad");
            assert!(parsed.dropped.is_empty(), "lenient reading dropped a strictly valid ad");
        }
    }
    if let Ok(written) = write_vast(&parsed.vast) {
        let reread = parse_vast(&written).expect("a written VAST document reads back strictly");
        assert_eq!(reread.ads, parsed.vast.ads, "write then parse changed a leniently read ad:\n{written}");
    }
});
