//! Any bytes as the output of ffprobe and ffmpeg's filters (the text the conditioner reads back from child
//! processes): no reader panics.
#![no_main]

use interlude_condition::probe::parse_ffprobe;
use interlude_condition::qc::parse::{
    black_intervals, ebur128_integrated, packet_spans, segment_frames, silence_intervals,
};
use interlude_condition::recipe::loudness::parse_measurement;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = parse_ffprobe(&text);
    let _ = parse_measurement(&text);
    let _ = packet_spans(&text).video.duration();
    let _ = segment_frames(&text);
    let _ = ebur128_integrated(&text);
    let _ = black_intervals(&text);
    let _ = silence_intervals(&text, 30.0);
});
