//! Any bytes through the VAST and VMAP readers: no panic; whatever reads writes (or is refused with an
//! error), the written document reads back to the same model, and writing that again gives the same text.
#![no_main]

use interlude_vast::{WRITTEN_VERSION, parse_vast, parse_vast_bytes, parse_vmap, write_vast, write_vmap};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_vast_bytes(data);
    let text = String::from_utf8_lossy(data);
    if let Ok(mut vast) = parse_vast(&text) {
        if let Ok(written) = write_vast(&vast) {
            let reread = parse_vast(&written).expect("a written VAST document reads back");
            vast.version = WRITTEN_VERSION.to_string();
            assert_eq!(reread, vast, "write then parse changed the model:\n{written}");
            let again = write_vast(&reread).expect("a model read from a written document writes again");
            assert_eq!(again, written, "writing is not a fixed point");
        }
    }
    if let Ok(vmap) = parse_vmap(&text) {
        if let Ok(written) = write_vmap(&vmap) {
            let reread = parse_vmap(&written).expect("a written VMAP document reads back");
            let again = write_vmap(&reread).expect("a model read from a written VMAP writes again");
            assert_eq!(again, written, "VMAP writing is not a fixed point");
        }
    }
});
