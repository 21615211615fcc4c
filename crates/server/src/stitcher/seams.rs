//! Where a stitched item's audio and continuity counters must lie so that every seam of a proxied break plays
//! like the content it replaces (issue 24): pure functions of the break's measured edges (`proxy::BreakStart`,
//! `proxy::BreakEnd`) and the item's place, applied by `segments` with `interlude_mpegts::fit_audio` and
//! `interlude_mpegts::set_counters`.
//!
//! Audio: an item's audio covers its video span on the shifted timeline, except at the break's edges, where it
//! meets the content's audio (which leads its video by a few frames at every content segment boundary): the
//! first item's audio starts where the content's stops, the last item's ends where the content's resumes.
//! Continuity counters (ISO/IEC 13818-1 §2.4.3.3): every item starts each PES PID at the counter the content
//! would have continued with and ends one before it, so items chain whatever their order; the break's last
//! segment ends where the content after it continues.

use interlude_mpegts::{AudioWindow, Counters, WRAP};

use interlude_stitch::TrackedBreak;

use super::proxy::{BreakEnd, BreakStart, ticks};

/// An item ending within this of the break's end is the break's last: the content resumes after it.
const SLACK_MICROS: u64 = 250_000;

/// A break's length and its last replaced content segment, once known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LastSegment {
    /// The break's length (microseconds, including any part elapsed before it was first seen).
    pub(crate) micros: u64,
    /// Media sequence number of its last replaced content segment.
    pub(crate) msn: u64,
}

impl LastSegment {
    /// Whether an item ending `item_end` microseconds into the break is its last.
    pub(crate) fn ends_with(&self, item_end: u64) -> bool {
        item_end + SLACK_MICROS >= self.micros
    }
}

/// Where `tracked` ends: when it has ended, its last replaced segment; before that, the replaced segment
/// that completes its planned duration, once seen (a live player asks for the break's last segment as soon as
/// it is listed, before the content after it is published).
pub(crate) fn break_end(tracked: &TrackedBreak) -> Option<LastSegment> {
    if let Some(end) = tracked.end_msn {
        return Some(LastSegment {
            micros: tracked.elapsed_micros(),
            msn: end.checked_sub(1)?,
        });
    }
    let planned = tracked.planned_micros?;
    let mut elapsed = tracked.start_offset_micros;
    for (msn, micros) in (tracked.start_msn..).zip(&tracked.replaced_micros) {
        elapsed += micros;
        if elapsed + SLACK_MICROS >= planned {
            return Some(LastSegment {
                micros: elapsed,
                msn,
            });
        }
    }
    None
}

/// Where one stitched item sits in its break (microseconds from the break start) and which of its edges a
/// segment carries.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ItemPlace {
    /// The item's start in the break.
    pub(crate) start_micros: u64,
    /// The item's duration.
    pub(crate) micros: u64,
    /// The segment is the item's first.
    pub(crate) opens: bool,
    /// The segment is the item's last.
    pub(crate) closes: bool,
}

/// The audio window of an item's segment: the item's video span on the shifted timeline, widened at the
/// break's start to where the content's audio stops, and at its end cut to `audio_end`, where the content's
/// audio resumes (when measured). `ends_break` says the item is the break's last.
pub(crate) fn audio_window(
    start: &BreakStart,
    place: ItemPlace,
    ends_break: bool,
    audio_end: Option<u64>,
) -> AudioWindow {
    let video_start = (start.video + ticks(place.start_micros)) % WRAP;
    let video_end = (video_start + ticks(place.micros)) % WRAP;
    AudioWindow {
        start: match start.audio {
            Some(audio) if place.start_micros == 0 => audio,
            _ => video_start,
        },
        end: match audio_end {
            Some(audio) if ends_break => audio,
            _ => video_end,
        },
        pad_start: place.opens,
        pad_end: place.closes,
    }
}

/// The continuity counters a segment carries as fetched, per PES PID: its own first and last, and the first
/// of its item's first segment.
#[derive(Debug, Clone, Default)]
pub(crate) struct Original {
    /// The item's first segment's first counters.
    pub(crate) item_first: Vec<(u16, u8)>,
    /// This segment's first counters.
    pub(crate) first: Vec<(u16, u8)>,
    /// This segment's last counters.
    pub(crate) last: Vec<(u16, u8)>,
}

/// The continuity counters of an item's segment. Each item's counters are moved by one offset per PID so
/// that it starts where the content would have continued at the break (`start.counters`): inside the item
/// they stay continuous as encoded, with no packet added. Only the item's edges change their packet count: its
/// first segment keeps its original count whatever audio was trimmed, and its last ends one step before the
/// break's start value, so the next item starts the same way; the break's last segment ends where the
/// content after it continues (`end`).
pub(crate) fn counters(
    start: &BreakStart,
    end: Option<&BreakEnd>,
    place: ItemPlace,
    original: &Original,
) -> Vec<Counters> {
    start
        .counters
        .iter()
        .map(|&(pid, base)| {
            let find = |list: &[(u16, u8)]| list.iter().find(|(p, _)| *p == pid).map(|&(_, c)| c);
            let shift = find(&original.item_first).map(|c| base.wrapping_sub(c));
            let moved = |c: Option<u8>| Some(c?.wrapping_add(shift?) & 0x0F);
            let before_base = base.wrapping_sub(1) & 0x0F;
            let first = match moved(find(&original.first)) {
                Some(cc) if !place.opens => cc,
                _ => base,
            };
            let last = match (
                end.and_then(|e| find(&e.counters)),
                moved(find(&original.last)),
            ) {
                (Some(resumes), _) => resumes,
                (None, Some(cc)) if !place.closes => cc,
                _ => before_base,
            };
            Counters { pid, first, last }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    use crate::stitcher::proxy::{reference_pts, retimed};

    /// A break whose first video frame is at 10 s, after content whose audio leads by 80 ms.
    fn break_start() -> BreakStart {
        BreakStart {
            video: 900_000,
            audio: Some(900_000 - 7_200),
            counters: vec![(256, 3), (257, 0)],
        }
    }

    fn place(start_micros: u64, micros: u64) -> ItemPlace {
        ItemPlace {
            start_micros,
            micros,
            opens: true,
            closes: true,
        }
    }

    #[test]
    fn audio_meets_the_content_at_the_break_edges_and_the_video_elsewhere() {
        let start = break_start();
        let first = audio_window(&start, place(0, 15_000_000), false, None);
        assert_eq!((first.start, first.end), (892_800, 900_000 + 1_350_000));
        assert!(first.pad_start && first.pad_end);
        let middle = audio_window(&start, place(15_000_000, 2_000_000), false, None);
        assert_eq!((middle.start, middle.end), (2_250_000, 2_430_000));
        let last = audio_window(&start, place(17_000_000, 2_000_000), true, Some(2_602_800));
        assert_eq!((last.start, last.end), (2_430_000, 2_602_800));
        let unmeasured = audio_window(&start, place(17_000_000, 2_000_000), true, None);
        assert_eq!(
            unmeasured.end, 2_610_000,
            "the video's end without a measurement"
        );
    }

    fn tracked(replaced: usize, end_msn: Option<u64>) -> TrackedBreak {
        TrackedBreak {
            id: "b".to_owned(),
            start_msn: 100,
            start_offset_micros: 0,
            start_pdt: None,
            planned_micros: Some(20_000_000),
            dsn_before: 0,
            replaced_micros: vec![2_000_000; replaced],
            replaced_discontinuities: 0,
            end_msn,
            end_discontinuity: false,
            scte35: None,
            event_id: None,
        }
    }

    #[test]
    fn a_break_ends_at_its_planned_duration_before_the_content_resumes() {
        assert_eq!(
            break_end(&tracked(9, None)),
            None,
            "a segment still to come"
        );
        let planned = break_end(&tracked(10, None)).expect("planned duration covered");
        assert_eq!(
            planned,
            LastSegment {
                micros: 20_000_000,
                msn: 109
            }
        );
        assert!(planned.ends_with(19_900_000) && !planned.ends_with(18_000_000));
        // Ended early (a CUE-IN before the planned end): the actual end wins.
        let early = break_end(&tracked(6, Some(106))).expect("ended");
        assert_eq!(
            early,
            LastSegment {
                micros: 12_000_000,
                msn: 105
            }
        );
        let mut unplanned = tracked(12, None);
        unplanned.planned_micros = None;
        assert_eq!(break_end(&unplanned), None);
    }

    #[test]
    fn items_keep_their_own_counters_moved_to_continue_the_break() {
        let start = break_start();
        // An ad whose first segment starts video at 7, audio at 12; this middle segment runs 4..=9 and 1..=3.
        let original = Original {
            item_first: vec![(256, 7), (257, 12)],
            first: vec![(256, 4), (257, 1)],
            last: vec![(256, 9), (257, 3)],
        };
        let middle = ItemPlace {
            opens: false,
            closes: false,
            ..place(2_000_000, 15_000_000)
        };
        // Moved by 3 - 7 (video) and 0 - 12 (audio).
        assert_eq!(
            counters(&start, None, middle, &original),
            vec![
                Counters {
                    pid: 256,
                    first: 0,
                    last: 5
                },
                Counters {
                    pid: 257,
                    first: 5,
                    last: 7
                },
            ]
        );
        let opening = ItemPlace {
            closes: false,
            ..middle
        };
        let opening = ItemPlace {
            opens: true,
            ..opening
        };
        assert_eq!(
            counters(&start, None, opening, &original)[0],
            Counters {
                pid: 256,
                first: 3,
                last: 5
            }
        );
        let closing = ItemPlace {
            closes: true,
            ..middle
        };
        assert_eq!(
            counters(&start, None, closing, &original)[1],
            Counters {
                pid: 257,
                first: 5,
                last: 15
            },
            "the item's last segment ends one before the break's start value"
        );
        let end = BreakEnd {
            audio: None,
            counters: vec![(256, 9)],
        };
        let last = counters(&start, Some(&end), closing, &original);
        assert_eq!(
            last[0],
            Counters {
                pid: 256,
                first: 0,
                last: 9
            },
            "the content after the break continues"
        );
        assert_eq!(
            last[1].last, 15,
            "a PID the end does not name ends as any item does"
        );
        let unknown = counters(&start, None, middle, &Original::default());
        assert_eq!(
            unknown[0],
            Counters {
                pid: 256,
                first: 3,
                last: 2
            },
            "nothing known: chained by padding"
        );
    }

    #[test]
    fn an_ad_opening_a_break_plays_silence_until_its_own_audio() {
        let file = Bytes::from_static(include_bytes!("../../../../assets/ads/ad15/r0/000.ts"));
        let start = break_start();
        let out = retimed(&file, reference_pts(&file), Some(start.video), 0);
        let window = audio_window(&start, place(0, 15_000_000), false, None);
        let fitted = interlude_mpegts::fit_audio(&out, &window);
        let frames = interlude_mpegts::audio_frames(&fitted);
        // The ad's own audio starts a frame (1920 ticks) before its video; 5280 ticks are left to the content's
        // audio, two whole frames of silence fill them.
        assert_eq!(frames.first(), Some(&(900_000 - 1_920 - 2 * 1_920)));
        assert!(frames.windows(2).all(|w| w[1] - w[0] == 1_920));
    }
}
