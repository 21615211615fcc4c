//! Writes the session MPDs the stitcher makes for two realistic live channels around one ad break — before,
//! during, just after, and once the break has left the time-shift window — for other players' manifest
//! parsers to read (`tests/browser-dash/check.sh`):
//! `cargo run -p interlude-dash --example session_mpds -- OUT_DIR`.
//!
//! - `ts`: the origin simulator's channel (MPEG-2 TS simple profile, `$Number$` with `@duration` and a
//!   running presentationTimeOffset, one muxed AdaptationSet of two renditions, the cue as a binary
//!   splice_insert in an EventStream), with ads and slate described the way `crates/server` describes them
//!   (TS renditions named `0`, `1`, no initialization segment, segments through the server's ad route);
//! - `fmp4`: an fMP4 live channel (SegmentTimeline, separate video of three renditions and audio in two
//!   languages, a 10 MHz timescale on audio), ads with their own initialization segments.
//!
//! `OUT_DIR/index.json` lists each file with the number of content video and audio renditions, which is
//! how many playlists a parser that joins Periods must make.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use interlude_dash::{
    Ad, AdRendition, AdTemplateUrls, AdUrlRequest, ContentKind, Mpd, PlannedBreak, StitchOptions,
    parse_mpd, scan, stitch, write_mpd,
};
use interlude_scte35::SpliceInfoSection;

/// Seconds of channel time at which the break starts, and its length.
const BREAK_AT: u64 = 60;
const BREAK_LEN: u64 = 30;
/// The live window (time-shift buffer depth).
const WINDOW: u64 = 40;
const SEG: u64 = 2;

/// The phases written: (name, channel time of the refresh).
const PHASES: [(&str, u64); 4] = [
    ("before", 50),
    ("during", 76),
    ("after", 98),
    ("later", 140),
];

fn splice_out(event_id: u32, pts: u64) -> String {
    SpliceInfoSection::splice_insert_out(event_id, Some(pts), Some(BREAK_LEN * 90_000))
        .to_base64()
        .unwrap_or_default()
}

/// The origin simulator's MPD (crates/sim `Timeline::dash_manifest`) at channel time `now`.
fn ts_origin(now: u64) -> String {
    let pto = 10 * 90_000u64;
    let mut events = String::new();
    if BREAK_AT < now && BREAK_AT + BREAK_LEN + WINDOW > now {
        let _ = write!(
            events,
            r#"<Event presentationTime="{BREAK_AT}" duration="{BREAK_LEN}" id="7"><scte35:Signal><scte35:Binary>{}</scte35:Binary></scte35:Signal></Event>"#,
            splice_out(7, pto + BREAK_AT * 90_000)
        );
    }
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" xmlns:scte35="http://www.scte.org/schemas/35/2016" type="dynamic" profiles="urn:mpeg:dash:profile:mp2t-simple:2011" availabilityStartTime="2024-01-01T00:00:00Z" publishTime="{}" minimumUpdatePeriod="PT2S" timeShiftBufferDepth="PT{WINDOW}S" suggestedPresentationDelay="PT6S" minBufferTime="PT2S">
<Period id="p0" start="PT0S">
<EventStream schemeIdUri="urn:scte:scte35:2014:xml+bin" timescale="1">
{events}
</EventStream>
<AdaptationSet id="0" contentType="video" mimeType="video/mp2t" codecs="avc1.4d401e,mp4a.40.2" segmentAlignment="true" startWithSAP="1">
<SegmentTemplate timescale="90000" duration="180000" startNumber="0" presentationTimeOffset="{pto}" media="$RepresentationID$/$Number$.ts"/>
<Representation id="r0" bandwidth="400000" width="320" height="180" frameRate="25"/>
<Representation id="r1" bandwidth="900000" width="640" height="360" frameRate="25"/>
</AdaptationSet>
</Period>
</MPD>
"#,
        iso(now)
    )
}

fn iso(secs: u64) -> String {
    let t = chrono::DateTime::from_timestamp(1_704_067_200 + i64::try_from(secs).unwrap_or(0), 0)
        .unwrap_or_default();
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A TS ad rendition as the server describes one (crates/server/src/stitcher/dash.rs `rendition`).
fn ts_rendition(id: String, media: String, segment_micros: u64, i: usize) -> AdRendition {
    let (bandwidth, width, height) = [(400_000, 320, 180), (900_000, 640, 360)][i % 2];
    AdRendition {
        id,
        kind: ContentKind::Video,
        mime_type: "video/mp2t".into(),
        codecs: "avc1.4d401e,mp4a.40.2".into(),
        bandwidth,
        width: Some(width),
        height: Some(height),
        frame_rate: None,
        audio_sampling_rate: None,
        lang: None,
        timescale: 1_000_000,
        segment_duration: segment_micros,
        start_number: 0,
        media,
        initialization: String::new(),
    }
}

fn ts_plan(mpd: &Mpd) -> Vec<PlannedBreak> {
    let ad = |id: &str, secs: u64| Ad {
        id: id.into(),
        duration: Duration::from_secs(secs),
        renditions: (0..2)
            .map(|i| ts_rendition(i.to_string(), String::new(), 2_000_000, i))
            .collect(),
    };
    let slate = Ad {
        id: "slate".into(),
        duration: Duration::from_secs(2),
        renditions: (0..2)
            .map(|i| {
                ts_rendition(
                    format!("slate{i}"),
                    format!("https://ssai.example/assets/slate/r{i}.ts"),
                    2_000_000,
                    i,
                )
            })
            .collect(),
    };
    planned(mpd, vec![ad("ad-1", 15), ad("ad-2", 10)], Some(slate))
}

/// The plan the server makes: every break the scan finds, with the session's pod.
fn planned(mpd: &Mpd, ads: Vec<Ad>, slate: Option<Ad>) -> Vec<PlannedBreak> {
    scan(mpd)
        .breaks
        .iter()
        .filter_map(|b| {
            Some(PlannedBreak {
                id: b.id.clone(),
                start: b.start,
                duration: b.duration?,
                ended_at: b.ended_at,
                ads: ads.clone(),
                slate: slate.clone(),
            })
        })
        .collect()
}

/// The server's URL hook: ad segments through its ad route, the slate's one file looped, no
/// initialization (TS).
fn ts_urls(r: &AdUrlRequest<'_>) -> AdTemplateUrls {
    if r.is_slate {
        return AdTemplateUrls {
            media: r.rendition.media.clone(),
            initialization: String::new(),
        };
    }
    AdTemplateUrls {
        media: format!(
            "https://ssai.example/s/S1/ads/{}/{}/$Number$.ts",
            r.ad.id, r.rendition.id
        ),
        initialization: String::new(),
    }
}

/// An fMP4 live channel at channel time `now` (segments of 2 s, the newest complete one ending at `now`).
fn fmp4_origin(now: u64) -> String {
    let first = now.saturating_sub(WINDOW) / SEG;
    let last = now / SEG; // exclusive
    let count = last - first;
    let vpto = 3_600 * 90_000u64;
    let apto = 3_600 * 10_000_000u64;
    let mut events = String::new();
    if BREAK_AT < now && BREAK_AT + BREAK_LEN + WINDOW > now {
        let _ = write!(
            events,
            r#"<Event presentationTime="{}" duration="{}" id="42"><scte35:Signal><scte35:Binary>{}</scte35:Binary></scte35:Signal></Event>"#,
            vpto + BREAK_AT * 90_000,
            BREAK_LEN * 90_000,
            splice_out(42, vpto + BREAK_AT * 90_000)
        );
    }
    let audio = |lang: &str| {
        format!(
            r#"<AdaptationSet id="{lang}" contentType="audio" mimeType="audio/mp4" codecs="mp4a.40.2" lang="{lang}" segmentAlignment="true" startWithSAP="1">
<Role schemeIdUri="urn:mpeg:dash:role:2011" value="main"/>
<SegmentTemplate timescale="10000000" presentationTimeOffset="{apto}" startNumber="{first}" media="audio/{lang}/$Number$.m4s" initialization="audio/{lang}/init.mp4">
<SegmentTimeline><S t="{}" d="20000000" r="{}"/></SegmentTimeline>
</SegmentTemplate>
<Representation id="audio-{lang}" bandwidth="128000" audioSamplingRate="48000"><AudioChannelConfiguration schemeIdUri="urn:mpeg:dash:23003:3:audio_channel_configuration:2011" value="2"/></Representation>
</AdaptationSet>
"#,
            apto + first * 20_000_000,
            count - 1
        )
    };
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" xmlns:scte35="http://www.scte.org/schemas/35/2016" type="dynamic" profiles="urn:mpeg:dash:profile:isoff-live:2011" availabilityStartTime="2024-01-01T00:00:00Z" publishTime="{}" minimumUpdatePeriod="PT2S" timeShiftBufferDepth="PT{WINDOW}S" suggestedPresentationDelay="PT6S" minBufferTime="PT4S" maxSegmentDuration="PT2S">
<Period id="live-1" start="PT0S">
<EventStream schemeIdUri="urn:scte:scte35:2014:xml+bin" timescale="90000" presentationTimeOffset="{vpto}">
{events}
</EventStream>
<AdaptationSet id="video" contentType="video" mimeType="video/mp4" codecs="avc1.64001f" segmentAlignment="true" startWithSAP="1" maxWidth="1920" maxHeight="1080">
<SegmentTemplate timescale="90000" presentationTimeOffset="{vpto}" startNumber="{first}" media="video/$RepresentationID$/$Number$.m4s" initialization="video/$RepresentationID$/init.mp4">
<SegmentTimeline><S t="{}" d="180000" r="{}"/></SegmentTimeline>
</SegmentTemplate>
<Representation id="v360" bandwidth="800000" width="640" height="360" frameRate="25"/>
<Representation id="v720" bandwidth="2500000" width="1280" height="720" frameRate="25"/>
<Representation id="v1080" bandwidth="5000000" width="1920" height="1080" frameRate="25"/>
</AdaptationSet>
{}{}</Period>
</MPD>
"#,
        iso(now),
        vpto + first * 180_000,
        count - 1,
        audio("en"),
        audio("es"),
    )
}

fn fmp4_plan(mpd: &Mpd) -> Vec<PlannedBreak> {
    let rendition = |ad: &str, name: &str, kind, bw: u64, size: Option<(u32, u32)>| AdRendition {
        id: name.into(),
        kind,
        mime_type: if kind == ContentKind::Audio {
            "audio/mp4"
        } else {
            "video/mp4"
        }
        .into(),
        codecs: if kind == ContentKind::Audio {
            "mp4a.40.2"
        } else {
            "avc1.4d401f"
        }
        .into(),
        bandwidth: bw,
        width: size.map(|s| s.0),
        height: size.map(|s| s.1),
        frame_rate: (kind == ContentKind::Video).then(|| "30".into()),
        audio_sampling_rate: (kind == ContentKind::Audio).then_some(48_000),
        lang: None,
        timescale: if kind == ContentKind::Audio {
            48_000
        } else {
            15_360
        },
        segment_duration: if kind == ContentKind::Audio {
            96_256
        } else {
            61_440
        },
        start_number: 1,
        media: format!("https://ads.example/{ad}/{name}/seg-$Number$.m4s"),
        initialization: format!("https://ads.example/{ad}/{name}/init.mp4"),
    };
    let ad = |id: &str, secs: u64| Ad {
        id: id.into(),
        duration: Duration::from_secs(secs),
        renditions: vec![
            rendition(id, "480p", ContentKind::Video, 1_200_000, Some((854, 480))),
            rendition(id, "720p", ContentKind::Video, 3_000_000, Some((1280, 720))),
            rendition(id, "aac", ContentKind::Audio, 128_000, None),
        ],
    };
    planned(
        mpd,
        vec![ad("creative-a", 15), ad("creative-b", 20)],
        Some(ad("slate", 5)),
    )
}

fn fmp4_urls(r: &AdUrlRequest<'_>) -> AdTemplateUrls {
    AdTemplateUrls {
        media: format!(
            "https://ssai.example/s/S2/{}/{}/seg-$Number$.m4s",
            r.period_id, r.rendition.id
        ),
        initialization: format!(
            "https://ssai.example/s/S2/{}/{}/init.mp4",
            r.period_id, r.rendition.id
        ),
    }
}

fn renditions(mpd: &Mpd, kind: ContentKind) -> usize {
    mpd.periods.first().map_or(0, |p| {
        p.adaptation_sets
            .iter()
            .filter(|a| a.kind() == kind)
            .map(|a| a.representations.len())
            .sum()
    })
}

fn run(out: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    std::fs::create_dir_all(out)?;
    let mut index = Vec::new();
    type Origin = fn(u64) -> String;
    type Plan = fn(&Mpd) -> Vec<PlannedBreak>;
    type Urls = fn(&AdUrlRequest<'_>) -> AdTemplateUrls;
    let channels: [(&str, Origin, Plan, Urls, &str); 2] = [
        (
            "ts",
            ts_origin,
            ts_plan,
            ts_urls,
            "https://origin.example/live/ch1/manifest.mpd",
        ),
        (
            "fmp4",
            fmp4_origin,
            fmp4_plan,
            fmp4_urls,
            "https://origin.example/live/ch2/manifest.mpd",
        ),
    ];
    for (channel, origin, plan_of, urls, base) in channels {
        // The session remembers its breaks after their cue has left the origin's MPD, so the Periods
        // named after them keep their ids.
        let mut plan: Vec<PlannedBreak> = Vec::new();
        for (phase, now) in PHASES {
            let content = parse_mpd(&origin(now))?;
            for b in plan_of(&content) {
                if !plan.iter().any(|p| p.id == b.id) {
                    plan.push(b);
                }
            }
            let options = StitchOptions {
                content_base_url: Some(base.into()),
                strip_scte35_events: true,
                now: chrono::DateTime::from_timestamp(
                    1_704_067_200 + i64::try_from(now).unwrap_or(0),
                    0,
                ),
                ..StitchOptions::default()
            };
            let session = stitch(&content, &plan, &urls, &options)?;
            let name = format!("{channel}-{phase}.mpd");
            std::fs::write(out.join(&name), write_mpd(&session.mpd))?;
            index.push(format!(
                r#"{{"file":"{name}","channel":"{channel}","phase":"{phase}","now":{now},"periods":{},"video":{},"audio":{},"breakStart":{BREAK_AT},"breakPlanned":{}}}"#,
                session.mpd.periods.len(),
                renditions(&content, ContentKind::Video),
                renditions(&content, ContentKind::Audio),
                !plan.is_empty(),
            ));
        }
    }
    std::fs::write(
        out.join("index.json"),
        format!("[\n{}\n]\n", index.join(",\n")),
    )?;
    Ok(())
}

fn main() -> ExitCode {
    let Some(out) = std::env::args().nth(1) else {
        eprintln!("usage: session_mpds OUT_DIR");
        return ExitCode::FAILURE;
    };
    match run(std::path::Path::new(&out)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("session_mpds: {e}");
            ExitCode::FAILURE
        }
    }
}
