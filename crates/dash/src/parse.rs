//! The MPD reader: XML text into the [`Mpd`] model (ISO/IEC 23009-1 §5.3). Tolerant where players are
//! (unknown elements and attributes are kept, elements are matched on their local name whatever the
//! namespace prefix), strict where a wrong value would make stitching wrong (a number, duration or date
//! that cannot be read is an error naming the element and the attribute).

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::error::{Error, Result, snippet};
use crate::model::{
    AdaptationSet, BaseUrl, Descriptor, Event, EventStream, Mpd, MpdType, Period, Representation,
    SegmentTemplate, TimelineEntry,
};
use crate::order::{Parent, rank};
use crate::time::{parse_date_time, parse_duration};
use crate::xml::{self, XmlElement, XmlNode};

/// Reads an MPD document.
///
/// # Errors
/// [`Error::Xml`] for text that is not XML, [`Error::NotAnMpd`] when the root is something else, and
/// [`Error::InvalidAttribute`] / [`Error::MissingAttribute`] / [`Error::Invalid`] for values that cannot be
/// read, with the element path.
pub fn parse_mpd(text: &str) -> Result<Mpd> {
    let root = xml::read(text)?;
    mpd_from_element(root)
}

/// Reads an MPD from bytes: UTF-8, with or without a byte-order mark.
///
/// # Errors
/// As [`parse_mpd`], and [`Error::Xml`] when the bytes are not UTF-8.
pub fn parse_mpd_bytes(bytes: &[u8]) -> Result<Mpd> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| Error::Xml {
        offset: e.valid_up_to() as u64,
        line: 0,
        reason: "not UTF-8".to_string(),
    })?;
    parse_mpd(text)
}

/// Attributes of one element, taken one by one; what is left over is kept as extra attributes.
struct Attrs {
    path: String,
    list: Vec<(String, String)>,
}

impl Attrs {
    fn new(path: &str, el: &XmlElement) -> Self {
        Self {
            path: path.to_string(),
            list: el.attrs.clone(),
        }
    }

    fn take(&mut self, name: &str) -> Option<String> {
        let i = self.list.iter().position(|(k, _)| k == name)?;
        Some(self.list.remove(i).1)
    }

    fn invalid(&self, name: &str, value: &str, expected: &'static str) -> Error {
        Error::InvalidAttribute {
            path: self.path.clone(),
            attribute: name.to_string(),
            value: snippet(value),
            expected,
        }
    }

    fn take_u64(&mut self, name: &str) -> Result<Option<u64>> {
        match self.take(name) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse::<u64>()
                .map(Some)
                .map_err(|_| self.invalid(name, &v, "an unsigned integer")),
        }
    }

    fn take_u32(&mut self, name: &str) -> Result<Option<u32>> {
        match self.take(name) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse::<u32>()
                .map(Some)
                .map_err(|_| self.invalid(name, &v, "an unsigned 32-bit integer")),
        }
    }

    fn take_i64(&mut self, name: &str) -> Result<Option<i64>> {
        match self.take(name) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse::<i64>()
                .map(Some)
                .map_err(|_| self.invalid(name, &v, "an integer")),
        }
    }

    fn take_duration(&mut self, name: &str) -> Result<Option<Duration>> {
        match self.take(name) {
            None => Ok(None),
            Some(v) => parse_duration(&v)
                .map(Some)
                .map_err(|_| self.invalid(name, &v, "an ISO 8601 duration (PnDTnHnMnS)")),
        }
    }

    fn take_date_time(&mut self, name: &str) -> Result<Option<DateTime<Utc>>> {
        match self.take(name) {
            None => Ok(None),
            Some(v) => parse_date_time(&v)
                .map(Some)
                .map_err(|_| self.invalid(name, &v, "an xs:dateTime")),
        }
    }

    fn rest(self) -> Vec<(String, String)> {
        self.list
    }
}

fn child_path(parent: &str, name: &str, index: usize) -> String {
    format!("{parent}/{name}[{index}]")
}

/// Keeps unknown children in schema order so that what is written reads back in the same order.
fn sort_extras(parent: Parent, extras: &mut [XmlElement]) {
    extras.sort_by_key(|e| rank(parent, e.local_name()));
}

fn mpd_from_element(root: XmlElement) -> Result<Mpd> {
    if root.local_name() != "MPD" {
        return Err(Error::NotAnMpd {
            found: snippet(&root.name),
        });
    }
    let path = "MPD";
    let mut a = Attrs::new(path, &root);
    let mpd_type = match a.take("type") {
        None => None,
        Some(v) => match v.trim() {
            "static" => Some(MpdType::Static),
            "dynamic" => Some(MpdType::Dynamic),
            _ => return Err(a.invalid("type", &v, "\"static\" or \"dynamic\"")),
        },
    };
    let mut mpd = Mpd {
        id: a.take("id"),
        mpd_type,
        profiles: a.take("profiles"),
        availability_start_time: a.take_date_time("availabilityStartTime")?,
        publish_time: a.take_date_time("publishTime")?,
        media_presentation_duration: a.take_duration("mediaPresentationDuration")?,
        minimum_update_period: a.take_duration("minimumUpdatePeriod")?,
        min_buffer_time: a.take_duration("minBufferTime")?,
        time_shift_buffer_depth: a.take_duration("timeShiftBufferDepth")?,
        suggested_presentation_delay: a.take_duration("suggestedPresentationDelay")?,
        max_segment_duration: a.take_duration("maxSegmentDuration")?,
        ..Mpd::default()
    };
    mpd.extra_attrs = a.rest();
    for child in root.children {
        let XmlNode::Element(el) = child else {
            continue;
        };
        match el.local_name() {
            "BaseURL" => mpd.base_urls.push(base_url(el)),
            "Period" => {
                let p = child_path(path, "Period", mpd.periods.len() + 1);
                mpd.periods.push(period(&p, el)?);
            }
            _ => mpd.extra_children.push(el),
        }
    }
    sort_extras(Parent::Mpd, &mut mpd.extra_children);
    Ok(mpd)
}

fn base_url(el: XmlElement) -> BaseUrl {
    BaseUrl {
        url: el.text(),
        attrs: el.attrs,
    }
}

fn period(path: &str, el: XmlElement) -> Result<Period> {
    let mut a = Attrs::new(path, &el);
    let mut p = Period {
        id: a.take("id"),
        start: a.take_duration("start")?,
        duration: a.take_duration("duration")?,
        ..Period::default()
    };
    p.extra_attrs = a.rest();
    for child in el.children {
        let XmlNode::Element(c) = child else {
            continue;
        };
        match c.local_name() {
            "BaseURL" => p.base_urls.push(base_url(c)),
            "SegmentTemplate" if p.segment_template.is_none() => {
                p.segment_template = Some(segment_template(&format!("{path}/SegmentTemplate"), c)?);
            }
            "EventStream" => {
                let cp = child_path(path, "EventStream", p.event_streams.len() + 1);
                p.event_streams.push(event_stream(&cp, c)?);
            }
            "AdaptationSet" => {
                let cp = child_path(path, "AdaptationSet", p.adaptation_sets.len() + 1);
                p.adaptation_sets.push(adaptation_set(&cp, c)?);
            }
            _ => p.extra_children.push(c),
        }
    }
    sort_extras(Parent::Period, &mut p.extra_children);
    Ok(p)
}

fn descriptor(path: &str, el: XmlElement) -> Result<Descriptor> {
    let mut a = Attrs::new(path, &el);
    let scheme_id_uri = a.take("schemeIdUri").ok_or(Error::MissingAttribute {
        path: path.to_string(),
        attribute: "schemeIdUri",
    })?;
    let value = a.take("value");
    let id = a.take("id");
    Ok(Descriptor {
        scheme_id_uri,
        value,
        id,
        extra_attrs: a.rest(),
        children: el.children,
    })
}

fn adaptation_set(path: &str, el: XmlElement) -> Result<AdaptationSet> {
    let mut a = Attrs::new(path, &el);
    let mut s = AdaptationSet {
        id: a.take("id"),
        content_type: a.take("contentType"),
        mime_type: a.take("mimeType"),
        codecs: a.take("codecs"),
        lang: a.take("lang"),
        segment_alignment: a.take("segmentAlignment"),
        width: a.take_u32("width")?,
        height: a.take_u32("height")?,
        frame_rate: a.take("frameRate"),
        audio_sampling_rate: a.take("audioSamplingRate"),
        ..AdaptationSet::default()
    };
    s.extra_attrs = a.rest();
    for child in el.children {
        let XmlNode::Element(c) = child else {
            continue;
        };
        match c.local_name() {
            "InbandEventStream" => {
                let cp = child_path(path, "InbandEventStream", s.inband_event_streams.len() + 1);
                s.inband_event_streams.push(descriptor(&cp, c)?);
            }
            "Accessibility" => {
                let cp = child_path(path, "Accessibility", s.accessibility.len() + 1);
                s.accessibility.push(descriptor(&cp, c)?);
            }
            "Role" => {
                let cp = child_path(path, "Role", s.roles.len() + 1);
                s.roles.push(descriptor(&cp, c)?);
            }
            "BaseURL" => s.base_urls.push(base_url(c)),
            "SegmentTemplate" if s.segment_template.is_none() => {
                s.segment_template = Some(segment_template(&format!("{path}/SegmentTemplate"), c)?);
            }
            "Representation" => {
                let cp = child_path(path, "Representation", s.representations.len() + 1);
                s.representations.push(representation(&cp, c)?);
            }
            _ => s.extra_children.push(c),
        }
    }
    sort_extras(Parent::AdaptationSet, &mut s.extra_children);
    Ok(s)
}

fn representation(path: &str, el: XmlElement) -> Result<Representation> {
    let mut a = Attrs::new(path, &el);
    let mut r = Representation {
        id: a.take("id").unwrap_or_default(),
        bandwidth: a.take_u64("bandwidth")?,
        codecs: a.take("codecs"),
        mime_type: a.take("mimeType"),
        width: a.take_u32("width")?,
        height: a.take_u32("height")?,
        frame_rate: a.take("frameRate"),
        audio_sampling_rate: a.take("audioSamplingRate"),
        ..Representation::default()
    };
    r.extra_attrs = a.rest();
    for child in el.children {
        let XmlNode::Element(c) = child else {
            continue;
        };
        match c.local_name() {
            "InbandEventStream" => {
                let cp = child_path(path, "InbandEventStream", r.inband_event_streams.len() + 1);
                r.inband_event_streams.push(descriptor(&cp, c)?);
            }
            "BaseURL" => r.base_urls.push(base_url(c)),
            "SegmentTemplate" if r.segment_template.is_none() => {
                r.segment_template = Some(segment_template(&format!("{path}/SegmentTemplate"), c)?);
            }
            _ => r.extra_children.push(c),
        }
    }
    sort_extras(Parent::Representation, &mut r.extra_children);
    Ok(r)
}

/// Most S entries a timeline may expand to through its repeat counts: a bound that keeps a hostile
/// `r="999999999999"` from turning into a huge allocation anywhere downstream.
pub const MAX_TIMELINE_SEGMENTS: u64 = 1_000_000;

fn segment_template(path: &str, el: XmlElement) -> Result<SegmentTemplate> {
    let mut a = Attrs::new(path, &el);
    let mut t = SegmentTemplate {
        media: a.take("media"),
        initialization: a.take("initialization"),
        timescale: a.take_u64("timescale")?,
        start_number: a.take_u64("startNumber")?,
        presentation_time_offset: a.take_u64("presentationTimeOffset")?,
        duration: a.take_u64("duration")?,
        ..SegmentTemplate::default()
    };
    t.extra_attrs = a.rest();
    for child in el.children {
        let XmlNode::Element(c) = child else {
            continue;
        };
        if c.local_name() == "SegmentTimeline" && t.timeline.is_none() {
            let tl_path = format!("{path}/SegmentTimeline");
            let mut entries = Vec::new();
            let mut total: u64 = 0;
            for s in c.elements() {
                if s.local_name() != "S" {
                    continue;
                }
                let sp = child_path(&tl_path, "S", entries.len() + 1);
                let mut sa = Attrs::new(&sp, s);
                let entry = TimelineEntry {
                    t: sa.take_u64("t")?,
                    n: sa.take_u64("n")?,
                    d: sa.take_u64("d")?.ok_or(Error::MissingAttribute {
                        path: sp.clone(),
                        attribute: "d",
                    })?,
                    r: sa.take_i64("r")?.unwrap_or(0),
                    extra_attrs: sa.rest(),
                };
                if entry.r < -1 {
                    return Err(Error::Invalid {
                        path: sp,
                        reason: format!("@r={} (only -1 or more is allowed)", entry.r),
                    });
                }
                if entry.d == 0 {
                    return Err(Error::Invalid {
                        path: sp,
                        reason: "@d=0: a segment cannot be empty".to_string(),
                    });
                }
                total = total.saturating_add(u64::try_from(entry.r.max(0)).unwrap_or(0) + 1);
                if total > MAX_TIMELINE_SEGMENTS {
                    return Err(Error::Invalid {
                        path: tl_path,
                        reason: format!("more than {MAX_TIMELINE_SEGMENTS} segments"),
                    });
                }
                entries.push(entry);
            }
            t.timeline = Some(entries);
        } else {
            t.extra_children.push(c);
        }
    }
    sort_extras(Parent::SegmentTemplate, &mut t.extra_children);
    Ok(t)
}

fn event_stream(path: &str, el: XmlElement) -> Result<EventStream> {
    let mut a = Attrs::new(path, &el);
    let scheme_id_uri = a.take("schemeIdUri").ok_or(Error::MissingAttribute {
        path: path.to_string(),
        attribute: "schemeIdUri",
    })?;
    let mut s = EventStream {
        scheme_id_uri,
        value: a.take("value"),
        timescale: a.take_u64("timescale")?,
        presentation_time_offset: a.take_u64("presentationTimeOffset")?,
        ..EventStream::default()
    };
    s.extra_attrs = a.rest();
    for child in el.children {
        let XmlNode::Element(c) = child else {
            continue;
        };
        if c.local_name() == "Event" {
            let ep = child_path(path, "Event", s.events.len() + 1);
            let mut ea = Attrs::new(&ep, &c);
            s.events.push(Event {
                presentation_time: ea.take_u64("presentationTime")?,
                duration: ea.take_u64("duration")?,
                id: ea.take("id"),
                message_data: ea.take("messageData"),
                extra_attrs: ea.rest(),
                content: c.children,
            });
        } else {
            s.extra_children.push(c);
        }
    }
    Ok(s)
}
