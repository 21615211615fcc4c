//! Prints the ad breaks found in media playlists: `cargo run -p interlude-hls --example dump_breaks -- FILE...`

fn main() {
    for path in std::env::args().skip(1) {
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("{path}: {e}");
                continue;
            }
        };
        match interlude_hls::parse_media_playlist_with_warnings(&text) {
            Ok(parsed) => {
                for w in &parsed.warnings {
                    println!("{path}: warning {w}");
                }
                let found = parsed.breaks();
                for w in &found.warnings {
                    println!("{path}: warning {w}");
                }
                for b in found.breaks {
                    println!(
                        "{path}: id={} start={:?} first={} elapsed={} planned={:?} end={:?} last_cont={:?} event={:?} {:?} scte35={} warn={:?}",
                        b.id,
                        b.start_segment,
                        b.first_segment,
                        b.elapsed_at_first,
                        b.planned_duration,
                        b.end_segment,
                        b.last_signalled_segment,
                        b.event_id,
                        b.dialect,
                        b.scte35.is_some(),
                        b.warnings
                    );
                }
            }
            Err(e) => println!("{path}: error {e}"),
        }
    }
}
