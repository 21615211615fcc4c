//! The scan reads around producers' mistakes per field, not per cue: a malformed UPID or BreakDuration
//! leaves the break-start cue standing (with a warning), and durations that contradict each other by orders
//! of magnitude give way to the plausible one. Fields a break needs still refuse the cue.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use interlude_dash::{DurationSource, ScanWarning, parse_mpd, scan};
use interlude_scte35::{SegmentationTypeId, SegmentationUpid};

/// A static MPD whose one Period holds `events` in an EventStream of `scheme` at `timescale`.
fn mpd(scheme: &str, timescale: u64, events: &str) -> String {
    format!(
        r#"<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" xmlns:scte35="http://www.scte.org/schemas/35/2016"
  type="static" mediaPresentationDuration="PT10M">
 <Period id="p" start="PT0S">
  <EventStream schemeIdUri="{scheme}" timescale="{timescale}">{events}</EventStream>
 </Period>
</MPD>"#
    )
}

const XML: &str = "urn:scte:scte35:2013:xml";

/// A time_signal at 10 s (90 kHz) with a provider advertisement start (0x30) of 30 s and `upid` inside.
fn time_signal_with(upid: &str) -> String {
    mpd(
        XML,
        90_000,
        &format!(
            r#"<Event presentationTime="900000" id="1"><scte35:SpliceInfoSection>
  <scte35:TimeSignal><scte35:SpliceTime ptsTime="900000"/></scte35:TimeSignal>
  <scte35:SegmentationDescriptor segmentationEventId="77" segmentationTypeId="48" segmentationDuration="2700000">
   {upid}
  </scte35:SegmentationDescriptor>
 </scte35:SpliceInfoSection></Event>"#
        ),
    )
}

fn upid_of(text: &str) -> (SegmentationUpid, Vec<ScanWarning>) {
    let s = scan(&parse_mpd(text).expect("reads"));
    assert!(s.problems.is_empty(), "{:?}", s.problems);
    assert_eq!(s.breaks.len(), 1, "the break-start cue stands");
    let b = &s.breaks[0];
    assert_eq!(
        (b.start, b.duration, b.splice_event_id),
        (
            Duration::from_secs(10),
            Some(Duration::from_secs(30)),
            Some(77)
        )
    );
    assert_eq!(
        b.segmentation_type_id,
        Some(SegmentationTypeId::ProviderAdvertisementStart)
    );
    let (_, upid) = b.out.segmentation().expect("descriptor");
    (upid.clone(), s.warnings)
}

#[test]
fn a_text_upid_without_a_format_keeps_the_break_and_reads_as_text() {
    let (upid, warnings) = upid_of(&time_signal_with(
        r#"<scte35:SegmentationUpid segmentationUpidType="9">SIGNAL:Ly9jYWxsLW91dC0x</scte35:SegmentationUpid>"#,
    ));
    assert_eq!(
        upid,
        SegmentationUpid::Adi("SIGNAL:Ly9jYWxsLW91dC0x".into())
    );
    assert!(
        matches!(&warnings[..], [ScanWarning::FieldIgnored { path, reason }]
            if path == "MPD/Period[1]/EventStream[1]/Event[1]" && reason.contains("taken as text")),
        "{warnings:?}"
    );
}

#[test]
fn an_ad_id_that_is_also_hex_reads_as_the_ad_id_it_is() {
    // Twelve characters of an Ad-ID are valid hex too; without a format only the text is a valid Ad-ID.
    let (upid, warnings) = upid_of(&time_signal_with(
        r#"<scte35:SegmentationUpid segmentationUpidType="3">ABCD01234567</scte35:SegmentationUpid>"#,
    ));
    assert_eq!(upid, SegmentationUpid::AdId("ABCD01234567".into()));
    assert_eq!(warnings.len(), 1, "{warnings:?}");
}

#[test]
fn an_empty_upid_keeps_the_break() {
    for empty in [
        r#"<scte35:SegmentationUpid segmentationUpidType="" segmentationUpidFormat="hexbinary"/>"#,
        r#"<scte35:SegmentationUpid/>"#,
        r#"<scte35:SegmentationUpid segmentationUpidType="12" segmentationUpidFormat="base-64"></scte35:SegmentationUpid>"#,
    ] {
        let (upid, _) = upid_of(&time_signal_with(empty));
        assert!(
            matches!(
                upid,
                SegmentationUpid::NotUsed | SegmentationUpid::Other { .. }
            ),
            "{empty}: {upid:?}"
        );
    }
}

#[test]
fn a_upid_not_in_its_declared_format_keeps_the_break() {
    let (upid, warnings) = upid_of(&time_signal_with(
        r#"<scte35:SegmentationUpid segmentationUpidType="1" segmentationUpidFormat="base-64">%%not base64%%</scte35:SegmentationUpid>"#,
    ));
    assert_eq!(
        upid,
        SegmentationUpid::UserDefined(b"%%not base64%%".to_vec())
    );
    assert_eq!(warnings.len(), 1);
}

#[test]
fn a_field_a_break_needs_still_refuses_the_cue() {
    let text = mpd(
        XML,
        90_000,
        r#"<Event presentationTime="900000"><scte35:SpliceInfoSection>
  <scte35:TimeSignal><scte35:SpliceTime ptsTime="900000"/></scte35:TimeSignal>
  <scte35:SegmentationDescriptor segmentationEventId="77" segmentationTypeId="ad-start"/>
 </scte35:SpliceInfoSection></Event>"#,
    );
    let s = scan(&parse_mpd(&text).expect("reads"));
    assert!(s.breaks.is_empty());
    assert_eq!(s.problems.len(), 1);
}

/// A splice_insert out at 10 s with `<BreakDuration duration="{ticks}">` and `Event@duration` in the
/// stream's `timescale`, optionally followed by a splice_insert in at `cue_in` seconds.
fn splice_insert(
    break_ticks: &str,
    timescale: u64,
    event_duration: u64,
    cue_in: Option<u64>,
) -> String {
    let mut events = format!(
        r#"<Event presentationTime="{}" duration="{event_duration}" id="1"><scte35:SpliceInfoSection>
  <scte35:SpliceInsert spliceEventId="5" outOfNetworkIndicator="true">
   <scte35:Program><scte35:SpliceTime ptsTime="900000"/></scte35:Program>
   <scte35:BreakDuration autoReturn="true" duration="{break_ticks}"/>
  </scte35:SpliceInsert>
 </scte35:SpliceInfoSection></Event>"#,
        10 * timescale
    );
    if let Some(at) = cue_in {
        events.push_str(&format!(
            r#"<Event presentationTime="{}" id="2"><scte35:SpliceInfoSection>
  <scte35:SpliceInsert spliceEventId="5" outOfNetworkIndicator="false">
   <scte35:Program><scte35:SpliceTime ptsTime="1"/></scte35:Program>
  </scte35:SpliceInsert>
 </scte35:SpliceInfoSection></Event>"#,
            at * timescale
        ));
    }
    mpd(XML, timescale, &events)
}

fn break_of(text: &str) -> (Option<Duration>, Option<DurationSource>, Vec<ScanWarning>) {
    let s = scan(&parse_mpd(text).expect("reads"));
    assert!(s.problems.is_empty(), "{:?}", s.problems);
    assert_eq!(s.breaks.len(), 1);
    (
        s.breaks[0].duration,
        s.breaks[0].duration_source,
        s.warnings,
    )
}

#[test]
fn a_break_duration_in_seconds_gives_way_to_the_event_duration() {
    // BreakDuration "30" is 30 ticks of 90 kHz (0.33 ms); Event@duration says 30 s.
    let (d, source, warnings) = break_of(&splice_insert("30", 1, 30, None));
    assert_eq!(
        (d, source),
        (
            Some(Duration::from_secs(30)),
            Some(DurationSource::EventDuration)
        )
    );
    assert_eq!(
        warnings,
        [ScanWarning::DurationsDisagree {
            break_id: "e5-10000".into(),
            signalled: Duration::from_nanos(333_333),
            event_duration: Duration::from_secs(30),
            chosen: DurationSource::EventDuration,
        }]
    );
    assert!(warnings[0].to_string().contains("e5-10000"));
}

#[test]
fn an_event_duration_in_the_wrong_timescale_gives_way_to_the_cue() {
    // Event@duration 2 700 000 in a timescale of 1 is 31 days; the cue's 2 700 000 ticks are 30 s.
    let (d, source, warnings) = break_of(&splice_insert("2700000", 1, 2_700_000, None));
    assert_eq!(
        (d, source),
        (Some(Duration::from_secs(30)), Some(DurationSource::Signal))
    );
    assert_eq!(warnings.len(), 1);
}

#[test]
fn durations_that_are_both_plausible_but_far_apart_are_settled_by_the_cue_in() {
    // The cue says 30 s, the Event 6 min; the content returned after 6 min.
    let (d, source, warnings) = break_of(&splice_insert("2700000", 1, 360, Some(370)));
    assert_eq!(
        (d, source),
        (
            Some(Duration::from_secs(360)),
            Some(DurationSource::EventDuration)
        )
    );
    assert_eq!(warnings.len(), 1);
    // Close durations (within ten times) are not a contradiction: the cue's wins, silently.
    let (d, source, warnings) = break_of(&splice_insert("2700000", 1, 32, None));
    assert_eq!(
        (d, source),
        (Some(Duration::from_secs(30)), Some(DurationSource::Signal))
    );
    assert!(warnings.is_empty());
}

#[test]
fn an_implausible_only_duration_gives_way_to_the_cue_in() {
    // No Event@duration (0 reads as none); the cue's 0.33 ms against a cue-in 30 s later.
    let (d, source, warnings) = break_of(&splice_insert("30", 1, 0, Some(40)));
    assert_eq!(
        (d, source),
        (Some(Duration::from_secs(30)), Some(DurationSource::CueIn))
    );
    assert!(matches!(
        &warnings[..],
        [ScanWarning::ImplausibleDuration {
            source: DurationSource::Signal,
            replaced_by: Some(DurationSource::CueIn),
            ..
        }]
    ));
}

#[test]
fn a_malformed_break_duration_leaves_the_cue_without_one() {
    let (d, source, warnings) = break_of(&splice_insert("thirty", 1, 30, None));
    assert_eq!(
        (d, source),
        (
            Some(Duration::from_secs(30)),
            Some(DurationSource::EventDuration)
        )
    );
    assert!(
        matches!(&warnings[..], [ScanWarning::FieldIgnored { reason, .. }] if reason.contains("BreakDuration")),
        "{warnings:?}"
    );
}
