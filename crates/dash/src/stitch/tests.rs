//! Stitching: splitting, ad Periods, slate, early return, joining mid-break, the live edge and URLs.

use std::time::Duration;

use super::*;
use crate::model::ContentKind;
use crate::parse_mpd;
use crate::segment::{TemplateValues, fill_template, segments_between};
use crate::stitch::plan::{Ad, AdRendition, AdTemplateUrls, AdUrlRequest, DirectAdUrls};

const SEG: u64 = 180_000; // 2 s at 90 kHz

/// A live MPD whose video and audio timelines hold segments `first..=last` (2 s each, numbered from 1 at
/// t=0) in one Period starting at 0.
pub(super) fn live(first: u64, last: u64) -> Mpd {
    let count = last - first + 1;
    let text = format!(
        r#"<?xml version="1.0"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="dynamic" availabilityStartTime="2024-01-01T00:00:00Z"
     publishTime="2024-01-01T00:01:00Z" minimumUpdatePeriod="PT2S" timeShiftBufferDepth="PT60S"
     minBufferTime="PT4S" profiles="urn:mpeg:dash:profile:isoff-live:2011">
  <Period id="p0" start="PT0S">
    <AdaptationSet id="1" contentType="video" mimeType="video/mp4" codecs="avc1.64001f" segmentAlignment="true">
      <SegmentTemplate timescale="90000" startNumber="{first}" media="v/$RepresentationID$/$Number$.m4s" initialization="v/$RepresentationID$/init.mp4">
        <SegmentTimeline><S t="{t}" d="{SEG}" r="{r}"/></SegmentTimeline>
      </SegmentTemplate>
      <Representation id="v1" bandwidth="800000" width="640" height="360"/>
      <Representation id="v2" bandwidth="3000000" width="1280" height="720"/>
    </AdaptationSet>
    <AdaptationSet id="2" contentType="audio" mimeType="audio/mp4" codecs="mp4a.40.2" lang="en">
      <Role schemeIdUri="urn:mpeg:dash:role:2011" value="main"/>
      <SegmentTemplate timescale="48000" startNumber="{first}" media="a/$Number$.m4s" initialization="a/init.mp4">
        <SegmentTimeline><S t="{ta}" d="96000" r="{r}"/></SegmentTimeline>
      </SegmentTemplate>
      <Representation id="a1" bandwidth="128000" audioSamplingRate="48000"/>
    </AdaptationSet>
  </Period>
</MPD>"#,
        t = (first - 1) * SEG,
        ta = (first - 1) * 96_000,
        r = count - 1,
    );
    parse_mpd(&text).expect("test MPD reads")
}

pub(super) fn rendition(
    id: &str,
    kind: ContentKind,
    codecs: &str,
    bandwidth: u64,
    lang: Option<&str>,
) -> AdRendition {
    let (mime, ts, d) = match kind {
        ContentKind::Audio => ("audio/mp4", 48_000, 96_000),
        _ => ("video/mp4", 90_000, SEG),
    };
    AdRendition {
        id: id.to_string(),
        kind,
        mime_type: mime.to_string(),
        codecs: codecs.to_string(),
        bandwidth,
        width: (kind == ContentKind::Video).then_some(1280),
        height: (kind == ContentKind::Video).then_some(720),
        frame_rate: None,
        audio_sampling_rate: (kind == ContentKind::Audio).then_some(48_000),
        lang: lang.map(str::to_string),
        timescale: ts,
        segment_duration: d,
        start_number: 1,
        media: format!("https://ads.example/{id}/$Number$.m4s"),
        initialization: format!("https://ads.example/{id}/init.mp4"),
    }
}

pub(super) fn ad(id: &str, secs: u64) -> Ad {
    Ad {
        id: id.to_string(),
        duration: Duration::from_secs(secs),
        renditions: vec![
            rendition(
                &format!("{id}-v-low"),
                ContentKind::Video,
                "avc1.4d401e",
                700_000,
                None,
            ),
            rendition(
                &format!("{id}-v-high"),
                ContentKind::Video,
                "avc1.64001f",
                2_500_000,
                None,
            ),
            rendition(
                &format!("{id}-a"),
                ContentKind::Audio,
                "mp4a.40.2",
                128_000,
                Some("en"),
            ),
        ],
    }
}

pub(super) fn plan(start: u64, duration: u64, ads: Vec<Ad>, slate: Option<Ad>) -> PlannedBreak {
    PlannedBreak {
        id: "b1".to_string(),
        start: Duration::from_secs(start),
        duration: Duration::from_secs(duration),
        ended_at: None,
        ads,
        slate,
    }
}

pub(super) fn ids(s: &Stitched) -> Vec<&str> {
    s.mpd
        .periods
        .iter()
        .filter_map(|p| p.id.as_deref())
        .collect()
}

/// The ad rendition a Representation of an ad Period plays (its id is in the URL [`DirectAdUrls`] gives).
pub(super) fn stand_in(r: &crate::model::Representation) -> &str {
    r.segment_template
        .as_ref()
        .and_then(|t| t.media.as_deref())
        .and_then(|m| m.split('/').nth(3))
        .unwrap_or("")
}

fn audio_ids(p: &crate::model::Period) -> Vec<&str> {
    p.adaptation_sets
        .iter()
        .filter(|a| a.kind() == ContentKind::Audio)
        .flat_map(|a| a.representations.iter().map(|r| r.id.as_str()))
        .collect()
}

pub(super) fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn break_splits_content_and_keeps_segment_addressing() {
    let content = live(1, 40); // 0..80 s
    let b = plan(20, 30, vec![ad("x", 15), ad("y", 15)], None);
    let s = stitch(&content, &[b], &DirectAdUrls, &StitchOptions::default()).expect("stitches");
    assert_eq!(ids(&s), ["p0", "p0_b1_ad0", "p0_b1_ad1", "p0_b1_post"]);
    let starts: Vec<_> = s.mpd.periods.iter().map(|p| p.start).collect();
    assert_eq!(
        starts,
        [
            Some(secs(0)),
            Some(secs(20)),
            Some(secs(35)),
            Some(secs(50))
        ]
    );
    assert_eq!(s.mpd.periods[0].duration, Some(secs(20)));
    let post = &s.mpd.periods[3];
    let video = post.adaptation_sets[0]
        .segment_template
        .as_ref()
        .expect("template stays on the adaptation set");
    // 50 s at 90 kHz; the segment starting at 50 s is number 26 ([2(n-1), 2n) s).
    assert_eq!(video.presentation_time_offset, Some(4_500_000));
    assert_eq!(video.start_number, Some(26));
    let first = segments_between(video, 4_500_000, None)
        .expect("small")
        .segments[0];
    let url = fill_template(
        video.media.as_deref().unwrap_or(""),
        &TemplateValues {
            representation_id: "v1",
            number: Some(first.number),
            time: Some(first.time),
            bandwidth: None,
        },
    );
    assert_eq!(url, "v/v1/26.m4s");
    assert_eq!(first.time, 25 * SEG);
    // Availability anchors are untouched.
    assert_eq!(
        s.mpd.availability_start_time,
        content.availability_start_time
    );
    assert_eq!(s.mpd.minimum_update_period, content.minimum_update_period);
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
}

#[test]
fn ad_periods_mirror_the_content_adaptation_sets() {
    let content = live(1, 40);
    let s = stitch(
        &content,
        &[plan(20, 30, vec![ad("x", 30)], None)],
        &DirectAdUrls,
        &StitchOptions::default(),
    )
    .expect("stitches");
    let p = &s.mpd.periods[1];
    assert_eq!(p.adaptation_sets.len(), 2);
    let video = &p.adaptation_sets[0];
    assert_eq!(video.id.as_deref(), Some("1"));
    // The content's avc1.64001f family wins over avc1.4d401e? Both are avc1: bandwidth decides, one per
    // content representation (800 kbit/s → 700k, 3 Mbit/s → 2.5M).
    // Each content Representation@id is there, standing for the ad rendition closest to it.
    let reps: Vec<_> = video
        .representations
        .iter()
        .map(|r| (r.id.as_str(), stand_in(r)))
        .collect();
    assert_eq!(reps, [("v1", "x-v-low"), ("v2", "x-v-high")]);
    assert_eq!(audio_ids(p), ["a1"]);
    let audio = &p.adaptation_sets[1];
    assert_eq!(audio.lang.as_deref(), Some("en"));
    assert_eq!(audio.roles.len(), 1);
    let t = audio.representations[0]
        .segment_template
        .as_ref()
        .expect("template");
    // 30 s of 2 s audio segments: fifteen.
    let tl = t.timeline.as_ref().expect("timeline");
    assert_eq!((tl[0].t, tl[0].d, tl[0].r), (Some(0), 96_000, 14));
    assert_eq!(
        t.media.as_deref(),
        Some("https://ads.example/x-a/$Number$.m4s")
    );
}

#[test]
fn renditions_prefer_language_then_codec_then_bandwidth() {
    let mut content = live(1, 40);
    let mut french = content.periods[0].adaptation_sets[1].clone();
    french.id = Some("3".into());
    french.lang = Some("fr-FR".into());
    content.periods[0].adaptation_sets.push(french);
    let mut x = ad("x", 30);
    x.renditions.push(rendition(
        "x-a-fr",
        ContentKind::Audio,
        "mp4a.40.2",
        96_000,
        Some("fr"),
    ));
    x.renditions.push(rendition(
        "x-v-hevc",
        ContentKind::Video,
        "hvc1.1.6.L93.B0",
        800_000,
        None,
    ));
    x.renditions.push(rendition(
        "x-a-ec3",
        ContentKind::Audio,
        "ec-3",
        128_000,
        Some("fr"),
    ));
    let s = stitch(
        &content,
        &[plan(20, 30, vec![x], None)],
        &DirectAdUrls,
        &StitchOptions::default(),
    )
    .expect("stitches");
    let p = &s.mpd.periods[1];
    let picked: Vec<Vec<&str>> = p
        .adaptation_sets
        .iter()
        .map(|a| a.representations.iter().map(stand_in).collect())
        .collect();
    assert_eq!(
        picked,
        [vec!["x-v-low", "x-v-high"], vec!["x-a"], vec!["x-a-fr"]]
    );
}

#[test]
fn cue_in_before_planned_end_truncates_pod() {
    let content = live(1, 40);
    let mut b = plan(20, 30, vec![ad("x", 15), ad("y", 15)], None);
    b.ended_at = Some(secs(30));
    let s = stitch(&content, &[b], &DirectAdUrls, &StitchOptions::default()).expect("stitches");
    assert_eq!(ids(&s), ["p0", "p0_b1_ad0", "p0_b1_post"]);
    assert_eq!(s.mpd.periods[1].duration, Some(secs(10)));
    assert_eq!(s.mpd.periods[2].start, Some(secs(30)));
    assert!(s.placements[0].truncated);
    // The truncated ad's timeline stops at the cut: five 2 s segments.
    let t = s.mpd.periods[1].adaptation_sets[0].representations[0]
        .segment_template
        .as_ref()
        .and_then(|t| t.timeline.clone())
        .expect("timeline");
    assert_eq!((t[0].d, t[0].r), (SEG, 4));
    assert_eq!(
        s.warnings,
        [StitchWarning::AdsDropped {
            break_id: "b1".into(),
            ad_ids: vec!["y".into()]
        }]
    );
}

#[test]
fn unfilled_break_time_is_slate() {
    let content = live(1, 40);
    let b = plan(20, 30, vec![ad("x", 10)], Some(ad("slate", 8)));
    let s = stitch(&content, &[b], &DirectAdUrls, &StitchOptions::default()).expect("stitches");
    assert_eq!(
        ids(&s),
        [
            "p0",
            "p0_b1_ad0",
            "p0_b1_slate0",
            "p0_b1_slate1",
            "p0_b1_slate2",
            "p0_b1_post"
        ]
    );
    let durations: Vec<_> = s.mpd.periods.iter().map(|p| p.duration).collect();
    assert_eq!(
        durations[1..5],
        [Some(secs(10)), Some(secs(8)), Some(secs(8)), Some(secs(4))]
    );
    assert_eq!(s.mpd.periods[5].start, Some(secs(50)));
    let kinds: Vec<_> = s.placements.iter().map(|p| p.kind).collect();
    assert_eq!(
        kinds,
        [
            PlacementKind::Ad,
            PlacementKind::Slate,
            PlacementKind::Slate,
            PlacementKind::Slate
        ]
    );
}

#[test]
fn without_slate_content_resumes_when_the_ads_end() {
    let content = live(1, 40);
    let s = stitch(
        &content,
        &[plan(20, 30, vec![ad("x", 10)], None)],
        &DirectAdUrls,
        &StitchOptions::default(),
    )
    .expect("stitches");
    assert_eq!(ids(&s), ["p0", "p0_b1_ad0", "p0_b1_post"]);
    assert_eq!(s.mpd.periods[2].start, Some(secs(30)));
}

#[test]
fn timeline_content_resumes_exactly_at_the_break_end() {
    let content = live(1, 40);
    let mut b = plan(20, 30, vec![ad("x", 10)], Some(ad("slate", 60)));
    b.duration = Duration::from_millis(30_900); // ends at 50.9 s, inside the segment [50, 52)
    let s = stitch(
        &content,
        std::slice::from_ref(&b),
        &DirectAdUrls,
        &StitchOptions::default(),
    )
    .expect("stitches");
    let post = s.mpd.periods.last().expect("post");
    assert_eq!(post.start, Some(Duration::from_millis(50_900)));
    // The segment [50, 52) starts before the Period: presentationTimeOffset says where to begin.
    let t = post.adaptation_sets[0]
        .segment_template
        .as_ref()
        .expect("template");
    assert_eq!(t.start_number, Some(26));
    assert_eq!(t.presentation_time_offset, Some(50_900 * 90));
    // The server snaps the plan once, when it learns the end: the content then resumes on the boundary.
    let snapped = segment_boundary_after(&content, b.end())
        .expect("ok")
        .expect("inside a segment");
    assert_eq!(snapped, secs(52));
    b.duration = snapped - b.start;
    let s = stitch(&content, &[b], &DirectAdUrls, &StitchOptions::default()).expect("stitches");
    assert_eq!(s.mpd.periods.last().and_then(|p| p.start), Some(secs(52)));
    assert_eq!(
        segment_boundary_after(&content, secs(52)).expect("ok"),
        None
    );
}

#[test]
fn duration_template_content_resumes_on_the_next_boundary() {
    let mut content = live(1, 40);
    content.mpd_type = Some(crate::model::MpdType::Static);
    for set in &mut content.periods[0].adaptation_sets {
        if let Some(t) = &mut set.segment_template {
            t.timeline = None;
            t.duration = Some(if t.timescale == Some(90_000) {
                SEG
            } else {
                96_000
            });
            t.start_number = Some(1);
        }
    }
    content.periods[0].duration = Some(secs(80));
    let mut b = plan(20, 30, vec![ad("x", 10)], Some(ad("slate", 60)));
    b.duration = Duration::from_millis(30_900);
    let s = stitch(&content, &[b], &DirectAdUrls, &StitchOptions::default()).expect("stitches");
    let post = s.mpd.periods.last().expect("post");
    assert_eq!(post.start, Some(secs(52)));
    assert_eq!(
        s.mpd.periods[2].duration,
        Some(secs(22)),
        "slate fills 30..52"
    );
    let t = post.adaptation_sets[0]
        .segment_template
        .as_ref()
        .expect("template");
    assert_eq!(
        (t.start_number, t.presentation_time_offset),
        (Some(27), Some(52 * 90_000))
    );
}

#[test]
fn ad_periods_appear_when_the_live_edge_reaches_them() {
    let b = plan(20, 30, vec![ad("x", 15), ad("y", 15)], None);
    // Live edge at 18 s: the break is known but not reached.
    let before = stitch(
        &live(1, 9),
        std::slice::from_ref(&b),
        &DirectAdUrls,
        &StitchOptions::default(),
    )
    .expect("ok");
    assert_eq!(ids(&before), ["p0"]);
    assert_eq!(before.mpd.periods[0].duration, Some(secs(20)));
    assert!(before.placements.iter().all(|p| !p.in_mpd));
    // Live edge at 24 s: the first ad plays.
    let during = stitch(
        &live(1, 12),
        std::slice::from_ref(&b),
        &DirectAdUrls,
        &StitchOptions::default(),
    )
    .expect("ok");
    assert_eq!(ids(&during), ["p0", "p0_b1_ad0"]);
    // Live edge at 52 s: the content is back.
    let after = stitch(&live(1, 26), &[b], &DirectAdUrls, &StitchOptions::default()).expect("ok");
    assert_eq!(ids(&after), ["p0", "p0_b1_ad0", "p0_b1_ad1", "p0_b1_post"]);
}

#[test]
fn viewer_joining_mid_break_sees_the_same_periods() {
    let b = plan(20, 30, vec![ad("x", 15), ad("y", 15)], None);
    let early = stitch(
        &live(1, 20),
        std::slice::from_ref(&b),
        &DirectAdUrls,
        &StitchOptions::default(),
    )
    .expect("ok");
    // A later snapshot (the window slid to 14 s): a viewer joining now gets the ads already played too.
    let late = stitch(&live(8, 22), &[b], &DirectAdUrls, &StitchOptions::default()).expect("ok");
    assert_eq!(ids(&late), ["p0", "p0_b1_ad0", "p0_b1_ad1"]);
    for p in &late.mpd.periods[1..] {
        let same = early
            .mpd
            .periods
            .iter()
            .find(|q| q.id == p.id)
            .expect("present before");
        assert_eq!(
            same, p,
            "ad Periods do not depend on when they are asked for"
        );
    }
    assert_eq!(late.mpd.periods[0].start, Some(secs(0)));
}

#[test]
fn ad_periods_leave_with_the_time_shift_window() {
    let b = plan(20, 10, vec![ad("x", 10)], None);
    // Content from 40 s on: the break (20..30 s) and the content before it are out of the window.
    let s = stitch(
        &live(21, 50),
        &[b],
        &DirectAdUrls,
        &StitchOptions::default(),
    )
    .expect("ok");
    assert_eq!(ids(&s), ["p0_b1_post"]);
    assert!(!s.placements[0].in_mpd);
}

#[test]
fn ad_urls_come_from_the_callers_router() {
    let router = |r: &AdUrlRequest<'_>| AdTemplateUrls {
        media: format!(
            "https://ssai.example/s/42/{}/{}/{}/$Number$.m4s",
            r.period_id, r.ad.id, r.rendition.id
        ),
        initialization: format!(
            "https://ssai.example/s/42/{}/{}/init.mp4",
            r.ad.id, r.rendition.id
        ),
    };
    let s = stitch(
        &live(1, 40),
        &[plan(20, 30, vec![ad("x", 30)], None)],
        &router,
        &StitchOptions::default(),
    )
    .expect("ok");
    let t = s.mpd.periods[1].adaptation_sets[1].representations[0]
        .segment_template
        .as_ref()
        .expect("template");
    assert_eq!(
        t.media.as_deref(),
        Some("https://ssai.example/s/42/p0_b1_ad0/x/x-a/$Number$.m4s")
    );
}

#[test]
fn overlapping_breaks_are_refused() {
    let mut second = plan(40, 30, vec![ad("y", 30)], None);
    second.id = "b2".into();
    let err = stitch(
        &live(1, 40),
        &[plan(20, 30, vec![], None), second],
        &DirectAdUrls,
        &StitchOptions::default(),
    );
    assert!(matches!(err, Err(Error::BadPlan { ref break_id, .. }) if break_id == "b2"));
}

#[test]
fn options_set_publish_time_base_url_and_strip_cues() {
    let mut content = parse_mpd(include_str!("../../tests/data/admanager.xml")).expect("reads");
    content.base_urls.clear();
    let options = StitchOptions {
        publish_time: content
            .publish_time
            .map(|t| t + chrono::Duration::seconds(5)),
        content_base_url: Some("https://origin.example/live/channel.mpd".into()),
        strip_scte35_events: true,
        ..StitchOptions::default()
    };
    let b = plan(3, 30, vec![ad("x", 30)], None);
    let s = stitch(&content, &[b], &DirectAdUrls, &options).expect("ok");
    // The directory of the origin's MPD.
    assert_eq!(s.mpd.base_urls[0].url, "https://origin.example/live/");
    assert!(s.mpd.periods.iter().all(|p| p.event_streams.is_empty()));
    assert_eq!(s.mpd.publish_time, options.publish_time);
    assert_eq!(
        resolve_url("https://o.example/a/b.mpd?x=1", "dash/"),
        "https://o.example/a/dash/"
    );
    assert_eq!(
        resolve_url("https://o.example/a/b.mpd", "/root/"),
        "https://o.example/root/"
    );
    assert_eq!(
        resolve_url("https://o.example", "x/"),
        "https://o.example/x/"
    );
}

#[test]
fn stitched_mpd_round_trips_through_text() {
    let s = stitch(
        &live(1, 40),
        &[plan(20, 30, vec![ad("x", 10)], Some(ad("slate", 8)))],
        &DirectAdUrls,
        &StitchOptions::default(),
    )
    .expect("ok");
    let text = crate::write_mpd(&s.mpd);
    assert_eq!(parse_mpd(&text).expect("reads back"), s.mpd);
}

#[test]
fn an_absurd_segment_duration_does_not_stretch_the_break_with_slate() {
    // Found by fuzzing: a `@duration` template without timescale (so 1) and a segment of 286812 s made the
    // slate fill 80 hours, one Period per slate.
    let mut content = live(1, 40);
    content.mpd_type = Some(crate::model::MpdType::Static);
    content.periods[0].duration = Some(secs(80));
    for set in &mut content.periods[0].adaptation_sets {
        if let Some(t) = &mut set.segment_template {
            t.timeline = None;
            t.timescale = None;
            t.duration = Some(286_812);
        }
    }
    let b = plan(20, 25, vec![ad("x", 10)], Some(ad("slate", 10)));
    let s = stitch(&content, &[b], &DirectAdUrls, &StitchOptions::default()).expect("stitches");
    assert_eq!(
        ids(&s),
        [
            "p0",
            "p0_b1_ad0",
            "p0_b1_slate0",
            "p0_b1_slate1",
            "p0_b1_post"
        ]
    );
    assert_eq!(s.mpd.periods[4].start, Some(secs(45)));
}
