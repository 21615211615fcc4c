//! Any bytes as a channel's master playlist: building the variant set never panics, and a set that builds
//! gives argument vectors for every rendition and a stable hash.
#![no_main]

use std::path::Path;

use interlude_condition::probe::{SourceInfo, SourceVideo};
use interlude_condition::recipe::{EncoderSettings, cmaf_args, encode_args, ts_args};
use interlude_condition::{ChannelDefaults, VariantSet};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(set) = VariantSet::from_master_text(&text, &ChannelDefaults::default()) else {
        return;
    };
    assert_eq!(set.hash(), set.clone().hash());
    let info = SourceInfo {
        duration: 15.0,
        video: Some(SourceVideo { width: 1920, height: 1080, sar: (1, 1), frame_rate: None, interlaced: false }),
        has_audio: true,
    };
    for r in &set.renditions {
        let _ = encode_args(Path::new("s"), &info, r, None, &EncoderSettings::default(), 1, Path::new("o"));
        let _ = ts_args(Path::new("o"), Path::new("d"), r);
        let _ = cmaf_args(Path::new("o"), Path::new("d"), r);
    }
});
