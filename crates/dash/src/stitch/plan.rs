//! What a session's stitching is made of: the plan the caller decides (breaks, ads, renditions, slate), the
//! hook that makes ad segment URLs, and what the stitcher reports back (placements).

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::model::ContentKind;

/// One break of a session's plan, on the content MPD's presentation timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedBreak {
    /// A stable id (for example [`crate::AdBreak::id`]); Period ids are made from it.
    pub id: String,
    /// Where the break starts (the cue-out's time).
    pub start: Duration,
    /// Its planned length.
    pub duration: Duration,
    /// When the content returned, if it returned before `start + duration` (an early cue-in): the break is
    /// cut there, the ad playing is truncated and later ads are dropped.
    pub ended_at: Option<Duration>,
    /// The ads in play order.
    pub ads: Vec<Ad>,
    /// What fills the break after the ads, repeated as often as needed; without one the content resumes as
    /// soon as the ads end.
    pub slate: Option<Ad>,
}

impl PlannedBreak {
    /// Where the break really ends: the planned end, or the early return.
    #[must_use]
    pub fn end(&self) -> Duration {
        let planned = self.start.saturating_add(self.duration);
        match self.ended_at {
            Some(e) if e < planned => e.max(self.start),
            _ => planned,
        }
    }
}

/// An ad (or the slate): its length and its renditions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ad {
    /// The ad instance id (what beacons count); goes into nothing the player sees except through URLs.
    pub id: String,
    /// Its length.
    pub duration: Duration,
    /// Its renditions; the stitcher picks per content adaptation set.
    pub renditions: Vec<AdRendition>,
}

/// One rendition of an ad, addressed with `$Number$` segments of constant duration (the last one shorter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdRendition {
    /// Its id, unique within the ad; becomes Representation@id.
    pub id: String,
    /// Video, audio or text.
    pub kind: ContentKind,
    /// MIME type, e.g. `video/mp4`.
    pub mime_type: String,
    /// RFC 6381 codecs, e.g. `avc1.64001f`.
    pub codecs: String,
    /// Bits per second.
    pub bandwidth: u64,
    /// Width in pixels (video).
    pub width: Option<u32>,
    /// Height in pixels (video).
    pub height: Option<u32>,
    /// Frame rate, e.g. `30000/1001` (video).
    pub frame_rate: Option<String>,
    /// Sampling rate in Hz (audio).
    pub audio_sampling_rate: Option<u32>,
    /// Language (audio, text), BCP 47.
    pub lang: Option<String>,
    /// Timescale of the segment times.
    pub timescale: u64,
    /// Duration of every segment but the last, in `timescale` units.
    pub segment_duration: u64,
    /// Number of the first segment.
    pub start_number: u64,
    /// The media URL template as the ad is stored (with `$Number$`); handed to [`AdUrls`].
    pub media: String,
    /// The initialization segment URL as stored.
    pub initialization: String,
}

/// What an ad segment URL is being made for.
#[derive(Debug, Clone, Copy)]
pub struct AdUrlRequest<'a> {
    /// The break's id.
    pub break_id: &'a str,
    /// The Period@id the URLs go into.
    pub period_id: &'a str,
    /// The ad's index in the break (slate periods count on after the ads).
    pub index: usize,
    /// Whether this is slate.
    pub is_slate: bool,
    /// The ad.
    pub ad: &'a Ad,
    /// The rendition.
    pub rendition: &'a AdRendition,
}

/// The URLs written into an ad Representation's SegmentTemplate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdTemplateUrls {
    /// SegmentTemplate@media: must keep `$Number$` (or `$Time$`) so each segment has its URL.
    pub media: String,
    /// SegmentTemplate@initialization.
    pub initialization: String,
}

/// Makes the URLs of ad segments: lets the server route ad segment requests through itself (server-side
/// beacons fire when a segment is fetched). URLs should be absolute: relative ones resolve against the
/// content's BaseURL.
pub trait AdUrls {
    /// The URLs for one rendition of one placed ad.
    fn urls(&self, request: &AdUrlRequest<'_>) -> AdTemplateUrls;

    /// The media time, in the rendition's timescale, at which the placed ad's segments start: 0 for a
    /// creative packaged from zero (the default); for MPEG-TS segments whose PTS continue the content's
    /// (a server that retimes ad segments) the content's media time there; for a creative whose first PTS is
    /// not zero, that PTS. The stitcher writes it as the first `S@t` and as `@presentationTimeOffset`, so the
    /// player maps the ad's first sample to the Period start (ISO/IEC 23009-1 §5.3.9.2).
    fn media_time_at_start(&self, request: &AdUrlRequest<'_>) -> u64 {
        let _ = request;
        0
    }
}

impl<F> AdUrls for F
where
    F: Fn(&AdUrlRequest<'_>) -> AdTemplateUrls,
{
    fn urls(&self, request: &AdUrlRequest<'_>) -> AdTemplateUrls {
        self(request)
    }
}

/// Uses the renditions' own URLs unchanged.
#[derive(Debug, Clone, Copy, Default)]
pub struct DirectAdUrls;

impl AdUrls for DirectAdUrls {
    fn urls(&self, request: &AdUrlRequest<'_>) -> AdTemplateUrls {
        AdTemplateUrls {
            media: request.rendition.media.clone(),
            initialization: request.rendition.initialization.clone(),
        }
    }
}

/// Knobs of [`crate::stitch()`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StitchOptions {
    /// MPD@publishTime of the output; defaults to the content's. Pass the time the plan last changed when
    /// that is later, so players see that the MPD changed.
    pub publish_time: Option<DateTime<Utc>>,
    /// Where the content really is (the origin's MPD URL or directory): the session MPD is served from
    /// elsewhere, so relative content URLs are made absolute against this.
    pub content_base_url: Option<String>,
    /// Drop SCTE-35 EventStreams from the output (players need not see the cues of breaks already
    /// stitched).
    pub strip_scte35_events: bool,
    /// The time of the request, for a dynamic MPD whose content has no SegmentTimeline (`$Number$` with
    /// `@duration`, as MPEG-2 TS origins write): its live edge (`now − availabilityStartTime`) and
    /// time-shift window say which ad Periods are there yet and which Periods have left the window. Without
    /// it such content shows every placed Period of the plan. Timeline content needs none: its segments say
    /// where the edge and the window are. When the content names no clock, the output gets a
    /// `UTCTiming` of scheme `urn:mpeg:dash:utc:direct:2014` with this time (DASH-IF IOP wants one in every
    /// dynamic MPD; Shaka Player warns without).
    pub now: Option<DateTime<Utc>>,
    /// How far past the live edge ad, slate and content Periods of the plan are listed already (zero by
    /// default: a Period shows once the edge reaches it). A player learns of the next Period only from an
    /// MPD refresh, so one that plays close to the edge, or has buffered up to the end of the last listed
    /// Period, may take that end for the end of the presentation and stall there (Shaka Player does, at
    /// every ad-to-slate boundary, when the next Period appears only once its start is live). A couple of
    /// `minimumUpdatePeriod`s is enough. Segments of a listed Period become available at their time all the
    /// same (ISO/IEC 23009-1 §5.3.9.5.3).
    pub period_lookahead: Duration,
}

/// What fills a piece of a break.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PlacementKind {
    /// An ad of the plan.
    Ad,
    /// Slate.
    Slate,
}

/// One ad or slate Period of the output: what the server needs to map segment requests to beacons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// Period@id.
    pub period_id: String,
    /// The break.
    pub break_id: String,
    /// Ad or slate.
    pub kind: PlacementKind,
    /// Index in the break's ads (for slate: index of the slate repetition).
    pub index: usize,
    /// The ad's id.
    pub ad_id: String,
    /// Period start.
    pub start: Duration,
    /// How long it plays (shorter than the ad when truncated).
    pub duration: Duration,
    /// Whether the ad was cut (early return, or the break too short for it).
    pub truncated: bool,
    /// Whether the Period is in this MPD (it may lie beyond the live edge, or behind the time-shift
    /// window).
    pub in_mpd: bool,
}

/// Something the stitcher had to work around.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StitchWarning {
    /// An ad has no rendition for a content adaptation set; that adaptation set is left out of the ad's
    /// Period.
    NoRendition {
        /// The break.
        break_id: String,
        /// The ad.
        ad_id: String,
        /// The content AdaptationSet@id (or its index).
        adaptation_set: String,
    },
    /// Ads that did not fit in the break (after an early return, or a pod longer than the break).
    AdsDropped {
        /// The break.
        break_id: String,
        /// Their ids.
        ad_ids: Vec<String>,
    },
}
