//! Decoding any bytes (as a section, as a transport stream, as text) must not panic.
#![no_main]

use interlude_scte35::{SpliceInfoSection, TsExtractor};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = SpliceInfoSection::decode(data);
    if let Ok((s, _)) = SpliceInfoSection::decode_unchecked(data) {
        let _ = s.encode();
        let _ = s.is_ad_break_start();
        let _ = s.break_duration();
        let _ = s.splice_pts();
    }
    let _ = TsExtractor::new(data).count();
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = SpliceInfoSection::parse_any(text);
    }
});
