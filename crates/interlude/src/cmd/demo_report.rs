//! What `interlude demo` tells the person running it beyond the counts: what viewers joining mid-break are
//! counted for, where the run's data goes (and its removal at exit), and whether the last break was cut off.

use super::demo::Stack;

/// The counters line printed every ten seconds.
pub(crate) fn print_counts(c: &interlude_events::Counts) {
    println!(
        "  counted so far: impressions {}, starts {}, first quartiles {}, midpoints {}, third quartiles {}, completes {}",
        c.impressions, c.starts, c.first_quartiles, c.midpoints, c.third_quartiles, c.completes
    );
}

/// A break in progress on the demo's channel.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OpenBreak {
    /// Seconds of it played.
    pub(crate) elapsed_secs: f64,
    /// Its planned length.
    pub(crate) planned_secs: f64,
}

/// The break running on `channel` now, if any.
pub(crate) fn open_break(stack: &Stack, channel: &str) -> Option<OpenBreak> {
    let summary = stack
        .stitcher
        .channel_summaries()
        .into_iter()
        .find(|c| c.id == channel)?;
    summary.open_break.as_ref()?;
    Some(OpenBreak {
        elapsed_secs: summary.open_break_elapsed_secs?,
        planned_secs: summary.open_break_planned_secs?,
    })
}

/// What viewers joining now will see first, and so why the first counts look as they do.
pub(crate) fn join_note(open: Option<&OpenBreak>, break_interval_secs: u64) -> String {
    match open {
        Some(open) => format!(
            "a break is running ({:.0} of {:.0} s played): viewers joining now get the rest of its pod. An ad \
             already under way counts no impression (that is its first segment, which they never fetched) but \
             its later quartiles and complete do count, so completes run ahead of impressions for this break",
            open.elapsed_secs, open.planned_secs
        ),
        None => format!(
            "no break is running: counts stay at 0 until the next one starts (one every {break_interval_secs} s)"
        ),
    }
}

/// The summary's lines on how the run ended: whether the last break was cut off and by how much, and why
/// completes may exceed impressions.
pub(crate) fn ending_lines(
    stopped_in: Option<&OpenBreak>,
    c: &interlude_events::Counts,
) -> Vec<String> {
    let mut lines = vec![match stopped_in {
        Some(b) => format!(
            "the last break was cut off: stopped {:.0} s into its {:.0} s, so {:.0} s of its ads never played \
             and their quartiles and completes are missing",
            b.elapsed_secs,
            b.planned_secs,
            (b.planned_secs - b.elapsed_secs).max(0.0)
        ),
        None => "the last break played to its end: no ad was cut off".to_owned(),
    }];
    if c.completes > c.impressions {
        lines.push(format!(
            "completes exceed impressions by {}: viewers who joined mid-ad at the start completed ads they \
             were not counted as starting",
            c.completes - c.impressions
        ));
    }
    lines
}

/// The banner's line saying where the run's data goes.
pub(crate) fn data_line(events: &std::path::Path, temporary: &[std::path::PathBuf]) -> String {
    if temporary.iter().any(|t| t == events) {
        format!(
            "events in {}, removed at exit with the catalog (set INTERLUDE_EVENTS__DATA_DIR to keep them)",
            events.display()
        )
    } else {
        format!("events in {} (kept)", events.display())
    }
}

/// Removes the run's temporary files and directories when dropped.
pub(crate) struct Cleanup(pub(crate) Vec<std::path::PathBuf>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for path in &self.0 {
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(path)
            } else {
                std::fs::remove_file(path)
            };
            if let Err(e) = removed {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(path = %path.display(), error = %e, "Could not remove the demo's temporary data.");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(impressions: u64, completes: u64) -> interlude_events::Counts {
        interlude_events::Counts {
            impressions,
            completes,
            ..interlude_events::Counts::default()
        }
    }

    #[test]
    fn the_summary_says_whether_and_by_how_much_the_last_break_was_cut_off() {
        let cut = OpenBreak {
            elapsed_secs: 12.0,
            planned_secs: 30.0,
        };
        let lines = ending_lines(Some(&cut), &counts(3400, 3000));
        assert_eq!(
            lines,
            [
                "the last break was cut off: stopped 12 s into its 30 s, so 18 s of its ads never played and \
              their quartiles and completes are missing"
            ]
        );
        let lines = ending_lines(None, &counts(4250, 5250));
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("the last break played to its end"));
        assert!(lines[1].starts_with("completes exceed impressions by 1000"));
    }

    #[test]
    fn the_join_note_says_what_viewers_joining_mid_break_are_counted_for() {
        let open = OpenBreak {
            elapsed_secs: 22.0,
            planned_secs: 30.0,
        };
        assert!(join_note(Some(&open), 40).starts_with("a break is running (22 of 30 s played)"));
        assert!(join_note(None, 40).contains("until the next one starts (one every 40 s)"));
    }

    #[test]
    fn the_run_removes_its_temporary_files_and_directories() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let events = dir.path().join("events");
        std::fs::create_dir_all(events.join("nested")).expect("creating the store directory");
        std::fs::write(events.join("nested/events.redb"), b"x").expect("writing a file");
        let catalog = dir.path().join("catalog.toml");
        std::fs::write(&catalog, b"x").expect("writing the catalog");
        let kept = dir.path().join("kept");
        std::fs::write(&kept, b"x").expect("writing a file not to remove");
        drop(Cleanup(vec![
            events.clone(),
            catalog.clone(),
            dir.path().join("never-made"),
        ]));
        assert!(!events.exists() && !catalog.exists());
        assert!(kept.exists());
    }

    #[test]
    fn the_banner_says_where_data_goes_and_whether_it_is_kept() {
        let events = std::path::PathBuf::from("/tmp/interlude-1-events");
        assert!(data_line(&events, std::slice::from_ref(&events)).contains("removed at exit"));
        assert!(data_line(&events, &[]).ends_with("(kept)"));
    }
}
