//! Parse and stitch of a realistic live MPD, each against a baseline measured in the same run: reading the
//! bare XML tree (the least any MPD parser must do), and writing the content MPD unchanged (what serving the
//! origin's MPD through the server would cost per viewer).
//!
//! `cargo bench -p interlude-dash --bench dash -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_main};
use interlude_dash::{
    Ad, AdRendition, AdTemplateUrls, AdUrlRequest, ContentKind, PlannedBreak, StitchOptions,
    parse_mpd, scan, stitch, write_mpd, xml,
};

/// A live MPD as MediaPackage-style packagers write it: 5 video representations sharing an
/// AdaptationSet-level timeline, two audio languages with AAC's alternating segment durations, subtitles,
/// a 5-minute window of 2 s segments, and a SCTE-35 EventStream with a 30 s break.
fn live_mpd(segments: u64) -> String {
    let first = 10_000u64;
    let video_t = first * 180_000;
    let audio_t = first * 96_000;
    let mut audio = String::new();
    for i in 0..segments {
        let d = if i % 2 == 0 { 96_256 } else { 95_744 };
        if i == 0 {
            audio.push_str(&format!("<S t=\"{audio_t}\" d=\"{d}\"/>"));
        } else {
            audio.push_str(&format!("<S d=\"{d}\"/>"));
        }
    }
    let mut video_reps = String::new();
    for (i, (w, h, bw)) in [
        (416, 234, 300_000),
        (640, 360, 800_000),
        (960, 540, 1_800_000),
        (1280, 720, 3_500_000),
        (1920, 1080, 6_000_000),
    ]
    .iter()
    .enumerate()
    {
        video_reps.push_str(&format!(
            r#"<Representation id="v{i}" bandwidth="{bw}" width="{w}" height="{h}" frameRate="30000/1001" codecs="avc1.64001f"/>"#
        ));
    }
    let audio_set = |id: u32, lang: &str| {
        format!(
            r#"<AdaptationSet id="{id}" contentType="audio" mimeType="audio/mp4" lang="{lang}" segmentAlignment="true">
      <Role schemeIdUri="urn:mpeg:dash:role:2011" value="main"/>
      <SegmentTemplate timescale="48000" startNumber="{first}" media="audio_{lang}_$Number$.mp4" initialization="audio_{lang}_init.mp4">
        <SegmentTimeline>{audio}</SegmentTimeline>
      </SegmentTemplate>
      <Representation id="a{id}" bandwidth="128000" codecs="mp4a.40.2" audioSamplingRate="48000">
        <AudioChannelConfiguration schemeIdUri="urn:mpeg:dash:23003:3:audio_channel_configuration:2011" value="2"/>
      </Representation>
    </AdaptationSet>"#
        )
    };
    let break_at = (first + segments / 2) * 180_000;
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" xmlns:scte35="http://www.scte.org/schemas/35/2016" type="dynamic"
  availabilityStartTime="2024-01-01T00:00:00Z" publishTime="2024-01-01T06:00:00Z" minimumUpdatePeriod="PT2S"
  timeShiftBufferDepth="PT5M" suggestedPresentationDelay="PT6S" minBufferTime="PT4S" profiles="urn:mpeg:dash:profile:isoff-live:2011">
  <Period id="live" start="PT0S">
    <EventStream schemeIdUri="urn:scte:scte35:2014:xml+bin" timescale="90000">
      <Event presentationTime="{break_at}" duration="5400000" id="1">
        <scte35:Signal><scte35:Binary>/DAlAAAAAAAAAP/wFAUAAA+if+/+INAJ0P4AKTLgAAAAAAAA9UTkTA==</scte35:Binary></scte35:Signal>
      </Event>
    </EventStream>
    <AdaptationSet id="1" contentType="video" mimeType="video/mp4" segmentAlignment="true" startWithSAP="1">
      <SegmentTemplate timescale="90000" startNumber="{first}" media="video_$RepresentationID$_$Number$.mp4" initialization="video_$RepresentationID$_init.mp4">
        <SegmentTimeline><S t="{video_t}" d="180000" r="{r}"/></SegmentTimeline>
      </SegmentTemplate>
      {video_reps}
    </AdaptationSet>
    {a2}
    {a3}
    <AdaptationSet id="4" contentType="text" mimeType="application/mp4" codecs="stpp" lang="en">
      <Role schemeIdUri="urn:mpeg:dash:role:2011" value="subtitle"/>
      <SegmentTemplate timescale="1000" startNumber="{first}" media="text_$Number$.mp4" initialization="text_init.mp4">
        <SegmentTimeline><S t="{text_t}" d="2000" r="{r}"/></SegmentTimeline>
      </SegmentTemplate>
      <Representation id="t1" bandwidth="2000"/>
    </AdaptationSet>
  </Period>
</MPD>"#,
        r = segments - 1,
        a2 = audio_set(2, "en"),
        a3 = audio_set(3, "es"),
        text_t = first * 2000,
    )
}

fn ad(id: &str, secs: u64) -> Ad {
    let mut renditions = Vec::new();
    for (i, bw) in [400_000u64, 1_200_000, 3_000_000, 5_000_000]
        .iter()
        .enumerate()
    {
        renditions.push(AdRendition {
            id: format!("{id}-v{i}"),
            kind: ContentKind::Video,
            mime_type: "video/mp4".into(),
            codecs: "avc1.640028".into(),
            bandwidth: *bw,
            width: Some(1280),
            height: Some(720),
            frame_rate: Some("30".into()),
            audio_sampling_rate: None,
            lang: None,
            timescale: 90_000,
            segment_duration: 540_000,
            start_number: 1,
            media: format!("https://ads.example/{id}/v{i}/$Number$.mp4"),
            initialization: format!("https://ads.example/{id}/v{i}/init.mp4"),
        });
    }
    renditions.push(AdRendition {
        id: format!("{id}-a"),
        kind: ContentKind::Audio,
        mime_type: "audio/mp4".into(),
        codecs: "mp4a.40.2".into(),
        bandwidth: 128_000,
        width: None,
        height: None,
        frame_rate: None,
        audio_sampling_rate: Some(48_000),
        lang: None,
        timescale: 48_000,
        segment_duration: 288_000,
        start_number: 1,
        media: format!("https://ads.example/{id}/a/$Number$.mp4"),
        initialization: format!("https://ads.example/{id}/a/init.mp4"),
    });
    Ad {
        id: id.into(),
        duration: Duration::from_secs(secs),
        renditions,
    }
}

fn bench(c: &mut Criterion) {
    let text = live_mpd(150);
    let content = parse_mpd(&text).expect("bench MPD reads");
    let found = scan(&content);
    let b = found.breaks.first().expect("the bench MPD has a break");
    let plan = vec![PlannedBreak {
        id: b.id.clone(),
        start: b.start,
        duration: b.duration.expect("signalled"),
        ended_at: None,
        ads: vec![ad("a1", 10), ad("a2", 10), ad("a3", 5)],
        slate: Some(ad("slate", 6)),
    }];
    let router = |r: &AdUrlRequest<'_>| AdTemplateUrls {
        media: format!(
            "https://ssai.example/s/123/{}/{}/$Number$.mp4",
            r.period_id, r.rendition.id
        ),
        initialization: format!(
            "https://ssai.example/s/123/{}/{}/init.mp4",
            r.period_id, r.rendition.id
        ),
    };
    let options = StitchOptions::default();

    let mut group = c.benchmark_group("mpd_5min_window");
    group.bench_function("baseline_xml_tree", |b| {
        b.iter(|| xml::read(black_box(&text)))
    });
    group.bench_function("parse", |b| b.iter(|| parse_mpd(black_box(&text))));
    group.bench_function("parse_and_scan", |b| {
        b.iter(|| parse_mpd(black_box(&text)).map(|m| scan(&m)))
    });
    group.bench_function("write", |b| b.iter(|| write_mpd(black_box(&content))));
    group.finish();

    let mut group = c.benchmark_group("session_mpd");
    group.bench_function("baseline_write_content", |b| {
        b.iter(|| write_mpd(black_box(&content)))
    });
    group.bench_function("stitch", |b| {
        b.iter(|| stitch(black_box(&content), &plan, &router, &options))
    });
    group.bench_function("stitch_and_write", |b| {
        b.iter(|| stitch(black_box(&content), &plan, &router, &options).map(|s| write_mpd(&s.mpd)))
    });
    group.finish();
}

/// criterion's macro generates an undocumented `pub fn`.
mod group {
    #![allow(missing_docs, unreachable_pub)]
    criterion::criterion_group!(benches, super::bench);
}
criterion_main!(group::benches);
