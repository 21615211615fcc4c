//! What other players need of a session MPD (DASH-IF IOP multi-Period conventions, and what video.js's
//! mpd-parser, Shaka Player and dash.js key on): content Representation@ids in every ad Period, no empty
//! attributes, period connectivity and continuity, BaseURLs players group tracks by, and a live window for
//! `$Number$` content taken from the request time. `tests/browser-dash/check.sh` feeds the same kind of
//! MPDs to those players' parsers.

use super::tests::{ad, ids, live, plan, rendition, secs, stand_in};
use super::*;
use crate::model::{AdaptationSet, BaseUrl, ContentKind, Representation};
use crate::parse_mpd;
use crate::stitch::plan::{AdTemplateUrls, AdUrlRequest, AdUrls, DirectAdUrls};
use crate::xml::XmlElement;

fn property(set: &AdaptationSet) -> Vec<(String, String)> {
    set.extra_children
        .iter()
        .filter(|c| c.local_name() == "SupplementalProperty")
        .map(|c| {
            (
                c.attr("schemeIdUri").unwrap_or("").to_string(),
                c.attr("value").unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn period<'a>(s: &'a Stitched, id: &str) -> &'a Period {
    s.mpd
        .periods
        .iter()
        .find(|p| p.id.as_deref() == Some(id))
        .unwrap_or_else(|| panic!("no Period {id}: {:?}", ids(s)))
}

fn rep_ids(p: &Period) -> Vec<Vec<&str>> {
    p.adaptation_sets
        .iter()
        .map(|a| a.representations.iter().map(|r| r.id.as_str()).collect())
        .collect()
}

#[test]
fn every_ad_period_holds_every_content_representation_id() {
    let mut content = live(1, 40);
    // Three video renditions in the content, an ad with one.
    content.periods[0].adaptation_sets[0]
        .representations
        .push(Representation {
            id: "v3".into(),
            bandwidth: Some(6_000_000),
            ..Representation::default()
        });
    let mut single = ad("x", 30);
    single.renditions.remove(0);
    let s = stitch(
        &content,
        &[plan(20, 30, vec![single], None)],
        &DirectAdUrls,
        &StitchOptions::default(),
    )
    .expect("stitches");
    let content_ids = rep_ids(&content.periods[0]);
    for p in &s.mpd.periods {
        assert_eq!(rep_ids(p), content_ids, "Period {:?}", p.id);
        let set_ids: Vec<_> = p.adaptation_sets.iter().map(|a| a.id.clone()).collect();
        assert_eq!(set_ids, [Some("1".into()), Some("2".into())]);
    }
    let ad_video = &period(&s, "p0_b1_ad0").adaptation_sets[0];
    let played: Vec<_> = ad_video.representations.iter().map(stand_in).collect();
    assert_eq!(played, ["x-v-high", "x-v-high", "x-v-high"]);
}

#[test]
fn an_ad_without_initialization_writes_none_and_nothing_is_written_empty() {
    let content = live(1, 40);
    let urls = |r: &AdUrlRequest<'_>| AdTemplateUrls {
        media: format!("https://ssai.example/{}/$Number$.ts", r.rendition.id),
        initialization: String::new(),
    };
    let mut x = ad("x", 20);
    for r in &mut x.renditions {
        r.codecs = String::new();
        r.frame_rate = Some(String::new());
    }
    let s = stitch(
        &content,
        &[plan(20, 20, vec![x], None)],
        &urls,
        &StitchOptions::default(),
    )
    .expect("stitches");
    let text = crate::write_mpd(&s.mpd);
    assert!(!text.contains("=\"\""), "an empty attribute:\n{text}");
    let t = period(&s, "p0_b1_ad0").adaptation_sets[0].representations[0]
        .segment_template
        .as_ref()
        .expect("template");
    assert_eq!(t.initialization, None);
    assert_eq!(
        t.media.as_deref(),
        Some("https://ssai.example/x-v-low/$Number$.ts")
    );
}

#[test]
fn ad_url_identifiers_name_the_ad_rendition_not_the_content_one() {
    let content = live(1, 40);
    let mut x = ad("x", 20);
    for r in &mut x.renditions {
        r.media = "https://ads.example/$RepresentationID$/$Bandwidth$/$Number%05d$.m4s".into();
        r.initialization = "https://ads.example/$RepresentationID$/init.mp4".into();
    }
    let s = stitch(
        &content,
        &[plan(20, 20, vec![x], None)],
        &DirectAdUrls,
        &StitchOptions::default(),
    )
    .expect("stitches");
    let rep = &period(&s, "p0_b1_ad0").adaptation_sets[0].representations[0];
    assert_eq!(rep.id, "v1");
    let t = rep.segment_template.as_ref().expect("template");
    assert_eq!(
        t.media.as_deref(),
        Some("https://ads.example/x-v-low/700000/$Number%05d$.m4s")
    );
    assert_eq!(
        t.initialization.as_deref(),
        Some("https://ads.example/x-v-low/init.mp4")
    );
}

#[test]
fn content_after_a_break_is_period_connected_to_the_content_before() {
    let s = stitch(
        &live(1, 40),
        &[plan(20, 30, vec![ad("x", 10)], Some(ad("slate", 8)))],
        &DirectAdUrls,
        &StitchOptions::default(),
    )
    .expect("stitches");
    let connected = |to: &str| vec![(PERIOD_CONNECTIVITY.to_string(), to.to_string())];
    for set in &period(&s, "p0_b1_post").adaptation_sets {
        assert_eq!(property(set), connected("p0"));
    }
    for set in &period(&s, "p0").adaptation_sets {
        assert!(property(set).is_empty());
    }
    // Slate repetitions play the same media from its start: connected, not continuous.
    assert!(property(&period(&s, "p0_b1_slate0").adaptation_sets[0]).is_empty());
    assert_eq!(
        property(&period(&s, "p0_b1_slate1").adaptation_sets[0]),
        connected("p0_b1_slate0")
    );
    // An ad is not the content: no signal.
    assert!(property(&period(&s, "p0_b1_ad0").adaptation_sets[0]).is_empty());
    // Once the content before the break has left the window the signal stays as it was.
    let later = stitch(
        &live(20, 50),
        &[plan(20, 30, vec![ad("x", 10)], Some(ad("slate", 8)))],
        &DirectAdUrls,
        &StitchOptions::default(),
    )
    .expect("stitches");
    assert!(!ids(&later).contains(&"p0"), "{:?}", ids(&later));
    assert_eq!(
        property(&period(&later, "p0_b1_post").adaptation_sets[0]),
        connected("p0")
    );
}

#[test]
fn a_break_that_places_nothing_leaves_the_content_period_continuous() {
    let s = stitch(
        &live(1, 40),
        &[plan(20, 30, Vec::new(), None)],
        &DirectAdUrls,
        &StitchOptions::default(),
    )
    .expect("stitches");
    assert_eq!(ids(&s), ["p0", "p0_b1_post"]);
    assert_eq!(s.mpd.periods[1].start, Some(secs(20)));
    for set in &s.mpd.periods[1].adaptation_sets {
        assert_eq!(
            property(set),
            [(PERIOD_CONTINUITY.to_string(), "p0".to_string())]
        );
    }
}

#[test]
fn continuity_signals_copied_from_the_content_are_replaced_in_later_pieces() {
    let mut content = live(1, 40);
    for set in &mut content.periods[0].adaptation_sets {
        let mut prop = XmlElement::new("SupplementalProperty");
        prop.attrs
            .push(("schemeIdUri".into(), PERIOD_CONTINUITY.into()));
        prop.attrs.push(("value".into(), "origin-previous".into()));
        set.extra_children.push(prop);
    }
    let s = stitch(
        &content,
        &[plan(20, 30, vec![ad("x", 30)], None)],
        &DirectAdUrls,
        &StitchOptions::default(),
    )
    .expect("stitches");
    // The first piece still follows the origin's previous Period; the piece after the break does not.
    assert_eq!(
        property(&period(&s, "p0").adaptation_sets[0]),
        [(PERIOD_CONTINUITY.to_string(), "origin-previous".to_string())]
    );
    assert_eq!(
        property(&period(&s, "p0_b1_post").adaptation_sets[0]),
        [(PERIOD_CONNECTIVITY.to_string(), "p0".to_string())]
    );
}

#[test]
fn ad_periods_resolve_against_the_content_base_urls() {
    let mut content = live(1, 40);
    content.periods[0].base_urls.push(BaseUrl {
        url: "p0/".into(),
        attrs: Vec::new(),
    });
    content.periods[0].adaptation_sets[1]
        .base_urls
        .push(BaseUrl {
            url: "audio/".into(),
            attrs: Vec::new(),
        });
    let s = stitch(
        &content,
        &[plan(20, 30, vec![ad("x", 30)], None)],
        &DirectAdUrls,
        &StitchOptions::default(),
    )
    .expect("stitches");
    let p = period(&s, "p0_b1_ad0");
    assert_eq!(p.base_urls, content.periods[0].base_urls);
    assert_eq!(
        p.adaptation_sets[1].base_urls,
        content.periods[0].adaptation_sets[1].base_urls
    );
}

/// The origin simulator's kind of channel: MPEG-2 TS, `$Number$` with `@duration`, no timeline.
fn number_content() -> Mpd {
    parse_mpd(
        r#"<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="dynamic" availabilityStartTime="2024-01-01T00:00:00Z"
  publishTime="2024-01-01T00:00:00Z" minimumUpdatePeriod="PT2S" timeShiftBufferDepth="PT40S">
 <Period id="p0" start="PT0S">
  <AdaptationSet id="0" contentType="video" mimeType="video/mp2t" codecs="avc1.4d401e,mp4a.40.2">
   <SegmentTemplate timescale="90000" duration="180000" startNumber="0" presentationTimeOffset="900000" media="$RepresentationID$/$Number$.ts"/>
   <Representation id="r0" bandwidth="400000"/>
   <Representation id="r1" bandwidth="900000"/>
  </AdaptationSet>
 </Period>
</MPD>"#,
    )
    .expect("reads")
}

#[test]
fn number_content_takes_its_live_window_from_the_request_time() {
    let content = number_content();
    let mut x = ad("x", 15);
    let mut y = ad("y", 15);
    for r in x.renditions.iter_mut().chain(&mut y.renditions) {
        r.codecs = "avc1.4d401e,mp4a.40.2".into();
        r.mime_type = "video/mp2t".into();
    }
    let b = plan(60, 30, vec![x, y], None);
    let at = |secs: i64| StitchOptions {
        now: chrono::DateTime::from_timestamp(1_704_067_200 + secs, 0),
        ..StitchOptions::default()
    };
    let run = |secs: i64| {
        stitch(&content, std::slice::from_ref(&b), &DirectAdUrls, &at(secs)).expect("stitches")
    };
    // Without the time every placed Period shows at once.
    let timeless = stitch(
        &content,
        std::slice::from_ref(&b),
        &DirectAdUrls,
        &StitchOptions::default(),
    )
    .expect("stitches");
    assert_eq!(
        ids(&timeless),
        ["p0", "p0_b1_ad0", "p0_b1_ad1", "p0_b1_post"]
    );
    assert_eq!(ids(&run(50)), ["p0"]);
    assert_eq!(ids(&run(70)), ["p0", "p0_b1_ad0"]);
    assert_eq!(
        ids(&run(98)),
        ["p0", "p0_b1_ad0", "p0_b1_ad1", "p0_b1_post"]
    );
    // At 130 s the window starts at 90: the content before the break and the ads are gone.
    assert_eq!(ids(&run(130)), ["p0_b1_post"]);
    let post = &run(130).mpd.periods[0];
    let t = post.adaptation_sets[0]
        .segment_template
        .as_ref()
        .expect("template");
    assert_eq!(
        (post.start, t.start_number, t.presentation_time_offset),
        (Some(secs(90)), Some(45), Some(900_000 + 90 * 90_000))
    );
}

#[test]
fn a_period_lookahead_lists_the_next_periods_before_the_edge_reaches_them() {
    let content = number_content();
    let mut x = ad("x", 15);
    let mut y = ad("y", 15);
    for r in x.renditions.iter_mut().chain(&mut y.renditions) {
        r.codecs = "avc1.4d401e,mp4a.40.2".into();
        r.mime_type = "video/mp2t".into();
    }
    // The break is 60..90 s: ad x 60..75, ad y 75..90, content again from 90.
    let b = plan(60, 30, vec![x, y], None);
    let run = |secs: i64, lookahead: u64| {
        let options = StitchOptions {
            now: chrono::DateTime::from_timestamp(1_704_067_200 + secs, 0),
            period_lookahead: Duration::from_secs(lookahead),
            ..StitchOptions::default()
        };
        let out = stitch(&content, std::slice::from_ref(&b), &DirectAdUrls, &options);
        ids(&out.expect("stitches"))
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<String>>()
    };
    // Without lookahead a Period shows once the edge passes its start.
    assert_eq!(run(55, 0), ["p0"]);
    assert_eq!(run(72, 0), ["p0", "p0_b1_ad0"]);
    assert_eq!(run(88, 0), ["p0", "p0_b1_ad0", "p0_b1_ad1"]);
    // With 6 s of lookahead each one shows 6 s before: the player knows what follows the Period it plays.
    assert_eq!(run(55, 6), ["p0", "p0_b1_ad0"]);
    assert_eq!(run(72, 6), ["p0", "p0_b1_ad0", "p0_b1_ad1"]);
    assert_eq!(run(88, 6), ["p0", "p0_b1_ad0", "p0_b1_ad1", "p0_b1_post"]);
    // Nothing of it moves the window's start: at 130 s (window from 90) the same Periods have left.
    assert_eq!(run(130, 6), run(130, 0));
    assert_eq!(run(130, 6), ["p0_b1_post"]);
}

#[test]
fn a_muxed_ad_rendition_stands_in_for_muxed_content() {
    let content = number_content();
    let mut x = ad("x", 20);
    x.renditions = vec![rendition(
        "ts-0",
        ContentKind::Video,
        "avc1.4d401e,mp4a.40.2",
        500_000,
        None,
    )];
    let s = stitch(
        &content,
        &[plan(60, 20, vec![x], None)],
        &DirectAdUrls,
        &StitchOptions::default(),
    )
    .expect("stitches");
    let p = period(&s, "p0_b1_ad0");
    assert_eq!(rep_ids(p), [vec!["r0", "r1"]]);
    assert_eq!(p.adaptation_sets[0].content_type.as_deref(), Some("video"));
}

#[test]
fn the_request_time_names_the_clock_when_the_origin_names_none() {
    let content = number_content();
    let options = StitchOptions {
        now: chrono::DateTime::from_timestamp(1_704_067_298, 500_000_000),
        ..StitchOptions::default()
    };
    let s = stitch(&content, &[], &DirectAdUrls, &options).expect("stitches");
    let text = crate::write_mpd(&s.mpd);
    assert!(
        text.contains(r#"<UTCTiming schemeIdUri="urn:mpeg:dash:utc:direct:2014" value="2024-01-01T00:01:38.500Z"/>"#),
        "{text}"
    );
    // An origin's own clock is kept, and none is added.
    let mut with_clock = content.clone();
    let mut timing = XmlElement::new("UTCTiming");
    timing.attrs.push((
        "schemeIdUri".into(),
        "urn:mpeg:dash:utc:http-iso:2014".into(),
    ));
    timing
        .attrs
        .push(("value".into(), "https://time.example/".into()));
    with_clock.extra_children.push(timing);
    let s = stitch(&with_clock, &[], &DirectAdUrls, &options).expect("stitches");
    assert_eq!(s.mpd.extra_children, with_clock.extra_children);
}

/// A router whose ad segments carry the content's timestamps (a server retiming MPEG-TS ads).
struct Retimed;

impl AdUrls for Retimed {
    fn urls(&self, r: &AdUrlRequest<'_>) -> AdTemplateUrls {
        DirectAdUrls.urls(r)
    }

    fn media_time_at_start(&self, r: &AdUrlRequest<'_>) -> u64 {
        // 10 s of PTS before the content's zero, plus where the Period starts (in the rendition's timescale).
        let start_secs = 20 + 15 * r.index as u64;
        (10 + start_secs) * r.rendition.timescale
    }
}

#[test]
fn ad_timestamps_that_do_not_start_at_zero_get_a_presentation_time_offset() {
    let s = stitch(
        &live(1, 40),
        &[plan(20, 30, vec![ad("x", 15), ad("y", 15)], None)],
        &Retimed,
        &StitchOptions::default(),
    )
    .expect("stitches");
    for (id, origin) in [("p0_b1_ad0", 30 * 90_000), ("p0_b1_ad1", 45 * 90_000)] {
        let t = period(&s, id).adaptation_sets[0].representations[0]
            .segment_template
            .as_ref()
            .expect("template");
        let tl = t.timeline.as_ref().expect("timeline");
        assert_eq!(
            (t.presentation_time_offset, tl[0].t),
            (Some(origin), Some(origin)),
            "{id}"
        );
    }
    // The default router times ads from zero and writes no offset.
    let plain = stitch(
        &live(1, 40),
        &[plan(20, 30, vec![ad("x", 30)], None)],
        &DirectAdUrls,
        &StitchOptions::default(),
    )
    .expect("stitches");
    let t = period(&plain, "p0_b1_ad0").adaptation_sets[0].representations[0]
        .segment_template
        .as_ref()
        .expect("template");
    assert_eq!(t.presentation_time_offset, None);
}

#[test]
fn added_signals_keep_the_schema_order_so_the_mpd_reads_back_as_written() {
    // Found by fuzzing (a Unified Streaming MPD whose subtitle AdaptationSet has a Label): the connectivity
    // SupplementalProperty was appended after Label, but the schema (and so the writer) puts it before.
    let mut content = live(1, 40);
    for set in &mut content.periods[0].adaptation_sets {
        let mut label = XmlElement::new("Label");
        label
            .children
            .push(crate::xml::XmlNode::Text("main".into()));
        set.extra_children.push(label);
    }
    let mut leap = XmlElement::new("LeapSecondInformation");
    leap.attrs
        .push(("availabilityStartLeapOffset".into(), "37".into()));
    content.extra_children.push(leap);
    let options = StitchOptions {
        now: chrono::DateTime::from_timestamp(1_704_067_280, 0),
        ..StitchOptions::default()
    };
    let s = stitch(
        &content,
        &[plan(20, 30, vec![ad("x", 10)], Some(ad("slate", 8)))],
        &DirectAdUrls,
        &options,
    )
    .expect("stitches");
    let text = crate::write_mpd(&s.mpd);
    assert_eq!(parse_mpd(&text).expect("reads back"), s.mpd, "{text}");
    let names: Vec<_> = period(&s, "p0_b1_slate1").adaptation_sets[0]
        .extra_children
        .iter()
        .map(|c| c.local_name())
        .collect();
    assert_eq!(names, ["SupplementalProperty", "Label"]);
}

/// Each ad Representation's (timeline, @duration) as written.
fn addressing(p: &Period) -> Vec<(bool, Option<u64>)> {
    p.adaptation_sets
        .iter()
        .flat_map(|s| &s.representations)
        .filter_map(|r| r.segment_template.as_ref())
        .map(|t| (t.timeline.is_some(), t.duration))
        .collect()
}

#[test]
fn ad_periods_address_their_segments_as_the_content_does() {
    // `@duration` content (the simulator's): ads by `@duration` too, which says the same segments (uniform,
    // a shorter last one ended by the Period) without a timeline that a drift-correcting player would take
    // for the live edge.
    let mut x = ad("x", 15);
    for r in &mut x.renditions {
        r.codecs = "avc1.4d401e,mp4a.40.2".into();
        r.mime_type = "video/mp2t".into();
    }
    let b = plan(60, 30, vec![x.clone()], None);
    let by_number = stitch(
        &number_content(),
        std::slice::from_ref(&b),
        &DirectAdUrls,
        &StitchOptions::default(),
    )
    .expect("stitches");
    let ad_period = period(&by_number, "p0_b1_ad0");
    let written = addressing(ad_period);
    assert!(!written.is_empty());
    assert!(
        written
            .iter()
            .all(|&(timeline, d)| !timeline && d == Some(x.renditions[0].segment_duration)),
        "{written:?}"
    );
    assert_eq!(ad_period.duration, Some(secs(15)));

    // Timeline content: ads by timeline.
    let b = plan(60, 30, vec![ad("x", 15)], None);
    let by_timeline = stitch(
        &live(1, 60),
        std::slice::from_ref(&b),
        &DirectAdUrls,
        &StitchOptions::default(),
    )
    .expect("stitches");
    let written = addressing(period(&by_timeline, "p0_b1_ad0"));
    assert!(!written.is_empty());
    assert!(
        written.iter().all(|&(timeline, d)| timeline && d.is_none()),
        "{written:?}"
    );
}
