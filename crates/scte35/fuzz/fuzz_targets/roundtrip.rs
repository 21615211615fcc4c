//! decode → encode → decode gives an equal value; when the input's CRC was valid, encode gives back the
//! input's bytes. CRC checking is skipped on the first decode so the fuzzer reaches the inner parsers.
#![no_main]

use interlude_scte35::SpliceInfoSection;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok((section, len)) = SpliceInfoSection::decode_unchecked(data) else {
        return;
    };
    let bytes = section.encode().expect("a decoded section encodes");
    let again = SpliceInfoSection::decode(&bytes).expect("an encoded section decodes");
    assert_eq!(again, section);
    if SpliceInfoSection::decode(data).is_ok() {
        assert_eq!(Some(&bytes[..]), data.get(..len));
    }
});
