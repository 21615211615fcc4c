//! One id per break whichever part of it a window shows: a node that starts (or restarts) mid-break must name
//! the break as the node that saw it begin did, or it finds no decision for the viewers who were deciding it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use interlude_scte35::SpliceInfoSection;
use interlude_stitch::hls::origin::parse_media;

const URL: &str = "http://origin.test/live/media.m3u8";

/// MediaPackage style: `EXT-X-CUE-OUT` with no cue, then `EXT-X-CUE-OUT-CONT` tags carrying it (event 77),
/// 2 s segments from media sequence `first`, the break starting at sequence 100 (2026-12-04T10:00:00Z).
fn window(first: u64, count: u64, pdt: bool) -> String {
    let cue = SpliceInfoSection::splice_insert_out(77, Some(900_000), Some(2_700_000))
        .to_base64()
        .unwrap();
    let mut out = format!("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:{first}\n");
    for msn in first..first + count {
        if pdt {
            let secs = 10 * 3600 + (msn as i64 - 100) * 2;
            out.push_str(&format!(
                "#EXT-X-PROGRAM-DATE-TIME:2026-12-04T{:02}:{:02}:{:02}.000Z\n",
                secs / 3600,
                secs % 3600 / 60,
                secs % 60
            ));
        }
        match msn {
            100 => out.push_str("#EXT-X-CUE-OUT:DURATION=30.000\n"),
            101..=114 => out.push_str(&format!(
                "#EXT-X-CUE-OUT-CONT:ElapsedTime={}.000,Duration=30.000,SCTE35={cue}\n",
                (msn - 100) * 2
            )),
            115 => out.push_str("#EXT-X-CUE-IN\n"),
            _ => {}
        }
        out.push_str(&format!("#EXTINF:2.000,\n{msn}.ts\n"));
    }
    out
}

fn ids(text: &str) -> Vec<String> {
    parse_media(text, URL)
        .unwrap()
        .observed
        .into_iter()
        .map(|b| b.id)
        .collect()
}

#[test]
fn a_break_is_named_by_its_start_time_from_any_window() {
    // The start in the window; then only the CONT tags (with the cue and its event id); then the end.
    let from_start = ids(&window(96, 8, true));
    let mid_break = ids(&window(104, 6, true));
    let at_the_end = ids(&window(110, 8, true));
    assert_eq!(from_start, ["pdt-1796378400"]);
    assert_eq!(mid_break, from_start);
    assert_eq!(at_the_end, from_start);
}

#[test]
fn without_program_date_times_the_start_is_estimated_from_the_elapsed_time() {
    // The parser's id: `msn-<start>` from the CUE-OUT, the event id from a CONT that carries one. The
    // estimate only helps a break whose cue names no event; here the windows disagree, as documented.
    assert_eq!(ids(&window(96, 8, false)), ["msn-100"]);
    assert_eq!(ids(&window(104, 6, false)), ["scte35-77"]);
}

#[test]
fn a_tag_id_is_kept() {
    let cue = SpliceInfoSection::splice_insert_out(9, Some(900_000), Some(2_700_000))
        .to_hex()
        .unwrap();
    let text = format!(
        "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:1\n\
         #EXT-X-PROGRAM-DATE-TIME:2026-12-04T10:00:00.000Z\n\
         #EXT-X-DATERANGE:ID=\"splice-9\",START-DATE=\"2026-12-04T10:00:00.000Z\",PLANNED-DURATION=30.0,SCTE35-OUT={cue}\n\
         #EXTINF:2.000,\n1.ts\n#EXTINF:2.000,\n2.ts\n"
    );
    assert_eq!(ids(&text), ["splice-9"]);
}
