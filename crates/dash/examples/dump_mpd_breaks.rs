//! Prints the SCTE-35 cues and ad breaks of MPD files: `cargo run -p interlude-dash --example dump_mpd_breaks -- FILE...`
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut status = ExitCode::SUCCESS;
    for path in std::env::args().skip(1) {
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("{path}: {e}");
                status = ExitCode::FAILURE;
                continue;
            }
        };
        match interlude_dash::parse_mpd_bytes(&text) {
            Ok(mpd) => {
                let scan = interlude_dash::scan(&mpd);
                println!(
                    "{path}: {} periods, {} cues, {} in-band declarations",
                    mpd.periods.len(),
                    scan.cues.len(),
                    scan.inband.len()
                );
                for c in &scan.cues {
                    println!(
                        "  cue {:?} at {:?} period {:?} event {:?} id {:?} signalled {:?} seg {:?}",
                        c.direction,
                        c.time,
                        c.period_id,
                        c.event_id,
                        c.splice_event_id(),
                        c.signalled_duration(),
                        c.segmentation().map(|(t, _)| t)
                    );
                }
                for b in &scan.breaks {
                    println!(
                        "  break {} start {:?} duration {:?} ({:?}) ended {:?}",
                        b.id, b.start, b.duration, b.duration_source, b.ended_at
                    );
                }
                for p in &scan.problems {
                    println!("  problem: {p}");
                }
            }
            Err(e) => {
                println!("{path}: error: {e}");
            }
        }
    }
    status
}
