//! MPEG-DASH for Interlude's live server-side ad insertion. Pure: no I/O, no clock.
//!
//! - [`parse_mpd`] / [`write_mpd`]: a typed MPD model (ISO/IEC 23009-1 §5.3) that keeps what it does not
//!   type, so parse → write → parse gives the same model.
//! - [`scan`]: SCTE-35 cues and ad breaks from EventStreams (SCTE 214-1 §6.7, XML and binary forms) and
//!   Period-based signalling, plus the InbandEventStream declarations of cues carried in `emsg` boxes
//!   ([`emsg::read_emsg_boxes`] reads those from segment bytes). Producers' mistakes are read around per
//!   field (a bad UPID or duration does not cost the cue), each with a [`ScanWarning`].
//! - [`mod@stitch`]: a session's MPD from a content MPD snapshot and the session's plan of breaks and ads;
//!   [`segment::period_segments`] maps a Period back to its segment URLs.
//!
//! How a server produces a session's MPD on each refresh (the origin MPD is fetched and parsed once per
//! channel; the plan is the session's state):
//!
//! ```
//! use std::time::Duration;
//! use interlude_dash::*;
//!
//! let origin = r#"<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="dynamic"
//!     availabilityStartTime="2024-01-01T00:00:00Z" publishTime="2024-01-01T00:01:00Z" minimumUpdatePeriod="PT2S">
//!   <Period id="p0" start="PT0S">
//!     <EventStream schemeIdUri="urn:scte:scte35:2014:xml+bin" timescale="90000">
//!       <Event presentationTime="270000"><Signal><Binary>/DAlAAAAAAAAAP/wFAUAAA+if+/+INAJ0P4AKTLgAAAAAAAA9UTkTA==</Binary></Signal></Event>
//!     </EventStream>
//!     <AdaptationSet id="1" contentType="video" mimeType="video/mp4" codecs="avc1.64001f">
//!       <SegmentTemplate timescale="90000" media="v/$Number$.m4s" initialization="v/init.mp4">
//!         <SegmentTimeline><S t="0" d="180000" r="29"/></SegmentTimeline>
//!       </SegmentTemplate>
//!       <Representation id="v1" bandwidth="3000000"/>
//!     </AdaptationSet>
//!   </Period>
//! </MPD>"#;
//! let content = parse_mpd(origin)?;
//! // The break: a splice_insert out at 3 s with a 30 s break_duration.
//! let found = scan(&content);
//! let brk = &found.breaks[0];
//! assert_eq!((brk.start, brk.duration), (Duration::from_secs(3), Some(Duration::from_secs(30))));
//!
//! // The session's plan, decided once when the break was first seen (ads from the decision engine).
//! let video = AdRendition {
//!     id: "ad1-720p".into(), kind: ContentKind::Video, mime_type: "video/mp4".into(),
//!     codecs: "avc1.64001f".into(), bandwidth: 2_500_000, width: Some(1280), height: Some(720),
//!     frame_rate: None, audio_sampling_rate: None, lang: None, timescale: 90_000,
//!     segment_duration: 180_000, start_number: 1,
//!     media: "https://cdn.example/ad1/720p/$Number$.m4s".into(),
//!     initialization: "https://cdn.example/ad1/720p/init.mp4".into(),
//! };
//! let plan = vec![PlannedBreak {
//!     id: brk.id.clone(),
//!     start: brk.start,
//!     duration: brk.duration.unwrap_or(Duration::from_secs(30)),
//!     ended_at: brk.ended_at,
//!     ads: vec![Ad { id: "ad1".into(), duration: Duration::from_secs(20), renditions: vec![video.clone()] }],
//!     slate: Some(Ad { id: "slate".into(), duration: Duration::from_secs(10), renditions: vec![video] }),
//! }];
//! // Ad segments are fetched through the server, which fires server-side beacons.
//! let urls = |r: &AdUrlRequest<'_>| AdTemplateUrls {
//!     media: format!("https://ssai.example/s/SESSION/{}/{}/$Number$.m4s", r.period_id, r.rendition.id),
//!     initialization: format!("https://ssai.example/s/SESSION/{}/{}/init.mp4", r.period_id, r.rendition.id),
//! };
//! let options = StitchOptions {
//!     content_base_url: Some("https://origin.example/live/".into()),
//!     ..StitchOptions::default()
//! };
//! let session = stitch(&content, &plan, &urls, &options)?;
//! let ids: Vec<_> = session.mpd.periods.iter().filter_map(|p| p.id.as_deref()).collect();
//! assert_eq!(ids, ["p0", "p0_e4002-3000_ad0", "p0_e4002-3000_slate0", "p0_e4002-3000_post"]);
//! let body = write_mpd(&session.mpd); // serve as application/dash+xml
//! assert!(body.contains("https://ssai.example/s/SESSION/p0_e4002-3000_ad0/ad1-720p/$Number$.m4s"));
//! # Ok::<(), interlude_dash::Error>(())
//! ```
//!
//! Not handled: SegmentList and SegmentBase (on-demand byte ranges) in content Periods that are cut
//! (they are passed through unchanged when no break falls in them); xlink-resolved Periods; MPD patches;
//! the XML form of `SpliceSchedule` and encrypted sections; VOD insertion that pushes content later (ads
//! here replace content, the live semantics).

mod breaks;
pub mod emsg;
mod error;
mod model;
mod order;
mod parse;
pub mod scte35xml;
pub mod segment;
pub mod time;
mod write;
pub mod xml;

pub use breaks::{
    AdBreak, Cue, CueDirection, DURATION_DISAGREEMENT, DurationSource, InbandScte35,
    PLAUSIBLE_BREAK, Scan, ScanWarning, scan,
};
pub use error::{Error, Result};
pub use model::{
    AdaptationSet, BaseUrl, ContentKind, Descriptor, Event, EventStream, Mpd, MpdType, Period,
    Representation, SegmentTemplate, TimelineEntry, codec_kind,
};
pub use parse::{MAX_TIMELINE_SEGMENTS, parse_mpd, parse_mpd_bytes};
pub use write::write_mpd;
pub mod stitch;

pub use stitch::plan::{
    Ad, AdRendition, AdTemplateUrls, AdUrlRequest, AdUrls, DirectAdUrls, Placement, PlacementKind,
    PlannedBreak, StitchOptions, StitchWarning,
};
pub use stitch::{Stitched, segment_boundary_after, stitch};
