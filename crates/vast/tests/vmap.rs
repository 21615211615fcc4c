//! VMAP 1.0: every AdBreak form reads, writes and reads back the same; the VAST inside is valid 4.2.

mod common;

use interlude_vast::vmap::{AdSourceData, BreakEvent, BreakType, TimeOffset};
use interlude_vast::{Error, Percent, Time, parse_vmap, write_vmap};

fn schedule() -> String {
    std::fs::read_to_string(common::data_dir().join("vmap").join("schedule.xml"))
        .expect("test data")
}

#[test]
fn a_schedule_with_every_break_form_reads_into_the_model() {
    let vmap = parse_vmap(&schedule()).expect("valid VMAP");
    assert_eq!(vmap.version, "1.0");
    let offsets: Vec<TimeOffset> = vmap.ad_breaks.iter().map(|b| b.time_offset).collect();
    assert_eq!(
        offsets,
        [
            TimeOffset::Start,
            TimeOffset::Time(Time::from_secs(600)),
            TimeOffset::Percent(Percent::from_whole(50).expect("≤ 100")),
            TimeOffset::Position(2),
            TimeOffset::End,
        ]
    );
    let pre = &vmap.ad_breaks[0];
    let events: Vec<&BreakEvent> = pre.tracking.iter().map(|t| &t.event).collect();
    assert_eq!(
        events,
        [
            &BreakEvent::BreakStart,
            &BreakEvent::BreakEnd,
            &BreakEvent::Error
        ]
    );
    let Some(AdSourceData::VastAdData(vast)) = pre.ad_source.as_ref().map(|s| &s.data) else {
        panic!("the pre-roll carries its VAST inline");
    };
    assert_eq!(vast.ads[0].id.as_deref(), Some("pre-1"));
    assert_eq!(vmap.ad_breaks[1].repeat_after, Some(Time::from_secs(600)));
    assert!(matches!(
        vmap.ad_breaks[1].ad_source.as_ref().map(|s| &s.data),
        Some(AdSourceData::AdTagUri { template_type, uri }) if template_type == "vast4" && uri.contains("pos=mid")
    ));
    assert_eq!(
        vmap.ad_breaks[2].break_types,
        [BreakType::NonLinear, BreakType::Display]
    );
}

#[test]
fn a_schedule_round_trips_and_its_inline_vast_is_valid_4_2() {
    let vmap = parse_vmap(&schedule()).expect("valid VMAP");
    let written = write_vmap(&vmap).expect("writable");
    let reread = parse_vmap(&written).expect("written VMAP parses");
    let mut expected = vmap.clone();
    for b in &mut expected.ad_breaks {
        if let Some(AdSourceData::VastAdData(v)) = b.ad_source.as_mut().map(|s| &mut s.data) {
            v.version = interlude_vast::WRITTEN_VERSION.to_string();
        }
    }
    assert_eq!(reread, expected);
    let start = written.find("<VAST ").expect("inline VAST written");
    let end = written.find("</VAST>").expect("inline VAST closed") + "</VAST>".len();
    common::assert_valid_vast_4_2(&written[start..end]);
}

#[test]
fn errors_inside_inline_vast_name_the_whole_path() {
    let bad = schedule().replace("<Duration>00:00:15</Duration>", "<Duration>soon</Duration>");
    let err = parse_vmap(&bad).expect_err("bad duration");
    assert!(
        matches!(&err, Error::InvalidValue { path, .. }
            if path == "VMAP/AdBreak[1]/AdSource/VASTAdData/VAST/Ad[1]/InLine/Creatives/Creative[1]/Linear/Duration"),
        "{err}"
    );
}

#[test]
fn a_break_needs_an_offset_and_a_type() {
    let err = parse_vmap(r#"<VMAP version="1.0"><AdBreak breakType="linear"/></VMAP>"#)
        .expect_err("no timeOffset");
    assert!(
        matches!(
            err,
            Error::Missing {
                what: "@timeOffset",
                ..
            }
        ),
        "{err}"
    );
    let err = parse_vmap(r#"<VMAP><AdBreak timeOffset="later" breakType="linear"/></VMAP>"#)
        .expect_err("bad offset");
    assert!(
        matches!(err, Error::InvalidValue { ref field, .. } if field == "@timeOffset"),
        "{err}"
    );
}
