//! The typed MPD model (ISO/IEC 23009-1 §5.3): what server-side ad insertion reads and rewrites, typed;
//! everything else kept as attributes and elements in document order so a written MPD carries it unchanged.
//!
//! Attributes are `Option` exactly when the document may leave them out, so a round trip keeps "absent"
//! apart from "present with the default value"; accessors such as [`SegmentTemplate::timescale`] apply the
//! defaults of the standard.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::xml::{XmlElement, XmlNode};

/// MPD@type (§5.3.1.2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum MpdType {
    /// `static`: on-demand, or a finished live event (the default when absent).
    #[default]
    Static,
    /// `dynamic`: live; periods and segments appear over time and the MPD is refreshed.
    Dynamic,
}

impl MpdType {
    /// The attribute value.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Static => "static",
            Self::Dynamic => "dynamic",
        }
    }
}

/// A Media Presentation Description (§5.3.1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mpd {
    /// MPD@id.
    pub id: Option<String>,
    /// MPD@type; `None` when absent (which means static).
    pub mpd_type: Option<MpdType>,
    /// MPD@profiles (comma-separated URNs).
    pub profiles: Option<String>,
    /// MPD@availabilityStartTime: the wall-clock anchor of a dynamic MPD's timeline.
    pub availability_start_time: Option<DateTime<Utc>>,
    /// MPD@publishTime.
    pub publish_time: Option<DateTime<Utc>>,
    /// MPD@mediaPresentationDuration.
    pub media_presentation_duration: Option<Duration>,
    /// MPD@minimumUpdatePeriod: how often a player refreshes a dynamic MPD.
    pub minimum_update_period: Option<Duration>,
    /// MPD@minBufferTime.
    pub min_buffer_time: Option<Duration>,
    /// MPD@timeShiftBufferDepth: the live window.
    pub time_shift_buffer_depth: Option<Duration>,
    /// MPD@suggestedPresentationDelay.
    pub suggested_presentation_delay: Option<Duration>,
    /// MPD@maxSegmentDuration.
    pub max_segment_duration: Option<Duration>,
    /// MPD-level BaseURL elements.
    pub base_urls: Vec<BaseUrl>,
    /// The Periods in document order.
    pub periods: Vec<Period>,
    /// Other attributes, namespace declarations included, in document order.
    pub extra_attrs: Vec<(String, String)>,
    /// Other child elements (ProgramInformation, Location, UTCTiming, ...).
    pub extra_children: Vec<XmlElement>,
}

impl Mpd {
    /// MPD@type with its default applied.
    #[must_use]
    pub fn kind(&self) -> MpdType {
        self.mpd_type.unwrap_or_default()
    }

    /// Whether the MPD is dynamic (live).
    #[must_use]
    pub fn is_dynamic(&self) -> bool {
        self.kind() == MpdType::Dynamic
    }

    /// The start of every Period on the presentation timeline (§5.3.2.1): Period@start, else the previous
    /// Period's start plus its duration, else zero for the first Period of a static MPD; `None` for an
    /// early-available Period whose start cannot be known.
    #[must_use]
    pub fn period_starts(&self) -> Vec<Option<Duration>> {
        let mut starts: Vec<Option<Duration>> = Vec::with_capacity(self.periods.len());
        for (i, p) in self.periods.iter().enumerate() {
            let start = match p.start {
                Some(s) => Some(s),
                None if i == 0 && !self.is_dynamic() => Some(Duration::ZERO),
                None => i.checked_sub(1).and_then(|j| {
                    let prev = self.periods.get(j)?;
                    Some(starts.get(j).copied().flatten()? + prev.duration?)
                }),
            };
            starts.push(start);
        }
        starts
    }

    /// The end of Period `index` when known: the next Period's start, else its own duration, else for the
    /// last Period of a static MPD the media presentation duration.
    #[must_use]
    pub fn period_end(&self, index: usize, starts: &[Option<Duration>]) -> Option<Duration> {
        let start = starts.get(index).copied().flatten()?;
        if let Some(next) = starts.get(index + 1).copied().flatten() {
            return Some(next);
        }
        let period = self.periods.get(index)?;
        if let Some(d) = period.duration {
            return Some(start + d);
        }
        if index + 1 == self.periods.len() && !self.is_dynamic() {
            return self.media_presentation_duration;
        }
        None
    }
}

/// A BaseURL element (§5.6).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BaseUrl {
    /// The URL text.
    pub url: String,
    /// Its attributes (serviceLocation, byteRange, ...).
    pub attrs: Vec<(String, String)>,
}

/// A Period (§5.3.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Period {
    /// Period@id: what players key continuity and caching on; must be unique and stable across refreshes.
    pub id: Option<String>,
    /// Period@start, relative to the presentation start (availabilityStartTime for dynamic MPDs).
    pub start: Option<Duration>,
    /// Period@duration.
    pub duration: Option<Duration>,
    /// Period-level BaseURLs.
    pub base_urls: Vec<BaseUrl>,
    /// A Period-level SegmentTemplate, inherited by adaptation sets and representations (§5.3.9.1).
    pub segment_template: Option<SegmentTemplate>,
    /// EventStream elements (§5.10.2).
    pub event_streams: Vec<EventStream>,
    /// The adaptation sets.
    pub adaptation_sets: Vec<AdaptationSet>,
    /// Other attributes.
    pub extra_attrs: Vec<(String, String)>,
    /// Other child elements (AssetIdentifier, SupplementalProperty, ...).
    pub extra_children: Vec<XmlElement>,
}

/// A descriptor (`DescriptorType`, §5.8.2): Role, Accessibility, EssentialProperty, ...
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Descriptor {
    /// @schemeIdUri.
    pub scheme_id_uri: String,
    /// @value.
    pub value: Option<String>,
    /// @id.
    pub id: Option<String>,
    /// Other attributes.
    pub extra_attrs: Vec<(String, String)>,
    /// Child content.
    pub children: Vec<XmlNode>,
}

/// What kind of media an adaptation set or an ad rendition carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ContentKind {
    /// Video.
    Video,
    /// Audio.
    Audio,
    /// Subtitles and captions.
    Text,
    /// Images (thumbnails) and anything else.
    Other,
}

/// An AdaptationSet (§5.3.3).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdaptationSet {
    /// @id: players match adaptation sets across periods on it.
    pub id: Option<String>,
    /// @contentType (`video`, `audio`, `text`, `image`).
    pub content_type: Option<String>,
    /// @mimeType.
    pub mime_type: Option<String>,
    /// @codecs.
    pub codecs: Option<String>,
    /// @lang (BCP 47).
    pub lang: Option<String>,
    /// @segmentAlignment (`true`, `false` or a number).
    pub segment_alignment: Option<String>,
    /// @width.
    pub width: Option<u32>,
    /// @height.
    pub height: Option<u32>,
    /// @frameRate.
    pub frame_rate: Option<String>,
    /// @audioSamplingRate.
    pub audio_sampling_rate: Option<String>,
    /// InbandEventStream declarations: events carried as `emsg` boxes in the segments (§5.10.3).
    pub inband_event_streams: Vec<Descriptor>,
    /// Accessibility descriptors.
    pub accessibility: Vec<Descriptor>,
    /// Role descriptors.
    pub roles: Vec<Descriptor>,
    /// AdaptationSet-level BaseURLs.
    pub base_urls: Vec<BaseUrl>,
    /// AdaptationSet-level SegmentTemplate.
    pub segment_template: Option<SegmentTemplate>,
    /// The representations.
    pub representations: Vec<Representation>,
    /// Other attributes.
    pub extra_attrs: Vec<(String, String)>,
    /// Other child elements (ContentProtection, AudioChannelConfiguration, Label, ...).
    pub extra_children: Vec<XmlElement>,
}

impl AdaptationSet {
    /// The kind of content, from @contentType, else @mimeType (here or on the first representation), else
    /// @codecs.
    #[must_use]
    pub fn kind(&self) -> ContentKind {
        if let Some(ct) = &self.content_type {
            return match ct.as_str() {
                "video" => ContentKind::Video,
                "audio" => ContentKind::Audio,
                "text" => ContentKind::Text,
                _ => ContentKind::Other,
            };
        }
        let mime = self.mime_type.as_deref().or_else(|| {
            self.representations
                .iter()
                .find_map(|r| r.mime_type.as_deref())
        });
        match mime {
            Some(m) if m.starts_with("video/") => ContentKind::Video,
            Some(m) if m.starts_with("audio/") => ContentKind::Audio,
            Some(m) if m.starts_with("text/") => ContentKind::Text,
            Some("application/mp4" | "application/ttml+xml") => ContentKind::Text,
            _ => {
                let codecs = self
                    .codecs
                    .as_deref()
                    .or_else(|| {
                        self.representations
                            .iter()
                            .find_map(|r| r.codecs.as_deref())
                    })
                    .unwrap_or("");
                codec_kind(codecs)
            }
        }
    }
}

/// The kind of content a codecs string names (RFC 6381 sample entry 4CCs).
#[must_use]
pub fn codec_kind(codecs: &str) -> ContentKind {
    let fourcc = codecs.split(['.', ',']).next().unwrap_or("").trim();
    match fourcc {
        "avc1" | "avc3" | "hvc1" | "hev1" | "av01" | "vp09" | "vp08" | "dvh1" | "dvhe" => {
            ContentKind::Video
        }
        "mp4a" | "ac-3" | "ec-3" | "ac-4" | "opus" | "Opus" | "flac" | "fLaC" => ContentKind::Audio,
        "stpp" | "wvtt" | "tx3g" => ContentKind::Text,
        _ => ContentKind::Other,
    }
}

/// A Representation (§5.3.5).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Representation {
    /// @id (required by the schema; kept empty when a document leaves it out).
    pub id: String,
    /// @bandwidth in bits per second.
    pub bandwidth: Option<u64>,
    /// @codecs.
    pub codecs: Option<String>,
    /// @mimeType.
    pub mime_type: Option<String>,
    /// @width.
    pub width: Option<u32>,
    /// @height.
    pub height: Option<u32>,
    /// @frameRate (a number or a ratio such as `30000/1001`).
    pub frame_rate: Option<String>,
    /// @audioSamplingRate.
    pub audio_sampling_rate: Option<String>,
    /// InbandEventStream declarations.
    pub inband_event_streams: Vec<Descriptor>,
    /// Representation-level BaseURLs (on-demand profiles address a whole file this way).
    pub base_urls: Vec<BaseUrl>,
    /// Representation-level SegmentTemplate.
    pub segment_template: Option<SegmentTemplate>,
    /// Other attributes.
    pub extra_attrs: Vec<(String, String)>,
    /// Other child elements.
    pub extra_children: Vec<XmlElement>,
}

/// A SegmentTemplate (§5.3.9.4) with its optional SegmentTimeline (§5.3.9.6).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegmentTemplate {
    /// @media: the media segment URL template (`$Number$`, `$Time$`, `$RepresentationID$`, ...).
    pub media: Option<String>,
    /// @initialization: the initialization segment URL template.
    pub initialization: Option<String>,
    /// @timescale (default 1).
    pub timescale: Option<u64>,
    /// @startNumber (default 1).
    pub start_number: Option<u64>,
    /// @presentationTimeOffset (default 0): the media time that maps to the Period start.
    pub presentation_time_offset: Option<u64>,
    /// @duration: the constant segment duration when there is no timeline.
    pub duration: Option<u64>,
    /// The SegmentTimeline.
    pub timeline: Option<Vec<TimelineEntry>>,
    /// Other attributes.
    pub extra_attrs: Vec<(String, String)>,
    /// Other child elements.
    pub extra_children: Vec<XmlElement>,
}

impl SegmentTemplate {
    /// @timescale with the default 1 (a 0 is read as 1, as players do).
    #[must_use]
    pub fn timescale(&self) -> u64 {
        self.timescale.filter(|&t| t > 0).unwrap_or(1)
    }

    /// @startNumber with the default 1.
    #[must_use]
    pub fn start_number(&self) -> u64 {
        self.start_number.unwrap_or(1)
    }

    /// @presentationTimeOffset with the default 0.
    #[must_use]
    pub fn presentation_time_offset(&self) -> u64 {
        self.presentation_time_offset.unwrap_or(0)
    }

    /// This template completed by `parent`'s values where it has none (§5.3.9.1 inheritance).
    #[must_use]
    pub fn inherit(&self, parent: &SegmentTemplate) -> SegmentTemplate {
        let mut extra_attrs = parent.extra_attrs.clone();
        for (k, v) in &self.extra_attrs {
            match extra_attrs.iter_mut().find(|(pk, _)| pk == k) {
                Some(slot) => slot.1.clone_from(v),
                None => extra_attrs.push((k.clone(), v.clone())),
            }
        }
        SegmentTemplate {
            media: self.media.clone().or_else(|| parent.media.clone()),
            initialization: self
                .initialization
                .clone()
                .or_else(|| parent.initialization.clone()),
            timescale: self.timescale.or(parent.timescale),
            start_number: self.start_number.or(parent.start_number),
            presentation_time_offset: self
                .presentation_time_offset
                .or(parent.presentation_time_offset),
            duration: self.duration.or(parent.duration),
            timeline: self.timeline.clone().or_else(|| parent.timeline.clone()),
            extra_attrs,
            extra_children: if self.extra_children.is_empty() {
                parent.extra_children.clone()
            } else {
                self.extra_children.clone()
            },
        }
    }
}

/// One `S` element of a SegmentTimeline.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimelineEntry {
    /// @t: the media time of the first segment; absent means "where the previous entry ended".
    pub t: Option<u64>,
    /// @n: the segment number of the first segment (rare).
    pub n: Option<u64>,
    /// @d: the segment duration in timescale units.
    pub d: u64,
    /// @r: repeat count; -1 repeats until the next entry's @t or the Period end.
    pub r: i64,
    /// Other attributes (@k, ...).
    pub extra_attrs: Vec<(String, String)>,
}

/// An EventStream (§5.10.2): timed events declared in the MPD.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventStream {
    /// @schemeIdUri, e.g. `urn:scte:scte35:2013:xml` or `urn:scte:scte35:2014:xml+bin` (SCTE 214-1 §6.7).
    pub scheme_id_uri: String,
    /// @value.
    pub value: Option<String>,
    /// @timescale (default 1).
    pub timescale: Option<u64>,
    /// @presentationTimeOffset (default 0).
    pub presentation_time_offset: Option<u64>,
    /// The events.
    pub events: Vec<Event>,
    /// Other attributes.
    pub extra_attrs: Vec<(String, String)>,
    /// Other child elements.
    pub extra_children: Vec<XmlElement>,
}

impl EventStream {
    /// @timescale with the default 1.
    #[must_use]
    pub fn timescale(&self) -> u64 {
        self.timescale.filter(|&t| t > 0).unwrap_or(1)
    }
}

/// An Event of an EventStream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Event {
    /// @presentationTime in the stream's timescale (default 0), relative to the Period start plus the
    /// stream's presentationTimeOffset.
    pub presentation_time: Option<u64>,
    /// @duration in the stream's timescale.
    pub duration: Option<u64>,
    /// @id.
    pub id: Option<String>,
    /// @messageData.
    pub message_data: Option<String>,
    /// Other attributes (@contentEncoding, ...).
    pub extra_attrs: Vec<(String, String)>,
    /// The payload: for SCTE-35, a `SpliceInfoSection` or a `Signal` element.
    pub content: Vec<XmlNode>,
}
