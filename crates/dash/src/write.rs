//! The MPD writer: the [`Mpd`] model back to XML. Known attributes first in a fixed order, then the kept
//! ones in document order; children in schema order (see [`crate::order`]). Reading what this writes gives
//! the same model.

use crate::model::{
    AdaptationSet, BaseUrl, Descriptor, EventStream, Mpd, Period, Representation, SegmentTemplate,
};
use crate::order::{Parent, rank};
use crate::time::{format_date_time, format_duration};
use crate::xml::{XmlElement, XmlNode, write_document};

/// Writes an MPD document.
#[must_use]
pub fn write_mpd(mpd: &Mpd) -> String {
    write_document(&mpd_element(mpd))
}

/// Children collected with their schema rank, then sorted (stably) into schema order.
struct Children {
    parent: Parent,
    items: Vec<(u8, XmlElement)>,
}

impl Children {
    fn new(parent: Parent) -> Self {
        Self {
            parent,
            items: Vec::new(),
        }
    }

    fn push(&mut self, el: XmlElement) {
        let r = rank(self.parent, el.local_name());
        self.items.push((r, el));
    }

    fn into_element(mut self, mut el: XmlElement) -> XmlElement {
        self.items.sort_by_key(|(r, _)| *r);
        el.children
            .extend(self.items.into_iter().map(|(_, c)| XmlNode::Element(c)));
        el
    }
}

fn extend_attrs(el: &mut XmlElement, extra: &[(String, String)]) {
    el.attrs.extend(extra.iter().cloned());
}

pub(crate) fn mpd_element(mpd: &Mpd) -> XmlElement {
    let mut el = XmlElement::new("MPD");
    el.push_attr_opt("id", mpd.id.as_ref());
    el.push_attr_opt("type", mpd.mpd_type.map(|t| t.as_str()));
    el.push_attr_opt("profiles", mpd.profiles.as_ref());
    el.push_attr_opt(
        "availabilityStartTime",
        mpd.availability_start_time.as_ref().map(format_date_time),
    );
    el.push_attr_opt(
        "publishTime",
        mpd.publish_time.as_ref().map(format_date_time),
    );
    el.push_attr_opt(
        "mediaPresentationDuration",
        mpd.media_presentation_duration.map(format_duration),
    );
    el.push_attr_opt(
        "minimumUpdatePeriod",
        mpd.minimum_update_period.map(format_duration),
    );
    el.push_attr_opt("minBufferTime", mpd.min_buffer_time.map(format_duration));
    el.push_attr_opt(
        "timeShiftBufferDepth",
        mpd.time_shift_buffer_depth.map(format_duration),
    );
    el.push_attr_opt(
        "suggestedPresentationDelay",
        mpd.suggested_presentation_delay.map(format_duration),
    );
    el.push_attr_opt(
        "maxSegmentDuration",
        mpd.max_segment_duration.map(format_duration),
    );
    extend_attrs(&mut el, &mpd.extra_attrs);
    let mut children = Children::new(Parent::Mpd);
    for b in &mpd.base_urls {
        children.push(base_url_element(b));
    }
    for p in &mpd.periods {
        children.push(period_element(p));
    }
    for x in &mpd.extra_children {
        children.push(x.clone());
    }
    children.into_element(el)
}

fn base_url_element(b: &BaseUrl) -> XmlElement {
    XmlElement {
        name: "BaseURL".to_string(),
        attrs: b.attrs.clone(),
        children: if b.url.is_empty() {
            Vec::new()
        } else {
            vec![XmlNode::Text(b.url.clone())]
        },
    }
}

pub(crate) fn period_element(p: &Period) -> XmlElement {
    let mut el = XmlElement::new("Period");
    el.push_attr_opt("id", p.id.as_ref());
    el.push_attr_opt("start", p.start.map(format_duration));
    el.push_attr_opt("duration", p.duration.map(format_duration));
    extend_attrs(&mut el, &p.extra_attrs);
    let mut children = Children::new(Parent::Period);
    for b in &p.base_urls {
        children.push(base_url_element(b));
    }
    if let Some(t) = &p.segment_template {
        children.push(segment_template_element(t));
    }
    for s in &p.event_streams {
        children.push(event_stream_element(s));
    }
    for a in &p.adaptation_sets {
        children.push(adaptation_set_element(a));
    }
    for x in &p.extra_children {
        children.push(x.clone());
    }
    children.into_element(el)
}

fn descriptor_element(name: &str, d: &Descriptor) -> XmlElement {
    let mut el = XmlElement::new(name);
    el.attrs
        .push(("schemeIdUri".to_string(), d.scheme_id_uri.clone()));
    el.push_attr_opt("value", d.value.as_ref());
    el.push_attr_opt("id", d.id.as_ref());
    extend_attrs(&mut el, &d.extra_attrs);
    el.children.clone_from(&d.children);
    el
}

fn adaptation_set_element(a: &AdaptationSet) -> XmlElement {
    let mut el = XmlElement::new("AdaptationSet");
    el.push_attr_opt("id", a.id.as_ref());
    el.push_attr_opt("contentType", a.content_type.as_ref());
    el.push_attr_opt("mimeType", a.mime_type.as_ref());
    el.push_attr_opt("codecs", a.codecs.as_ref());
    el.push_attr_opt("lang", a.lang.as_ref());
    el.push_attr_opt("segmentAlignment", a.segment_alignment.as_ref());
    el.push_attr_opt("width", a.width);
    el.push_attr_opt("height", a.height);
    el.push_attr_opt("frameRate", a.frame_rate.as_ref());
    el.push_attr_opt("audioSamplingRate", a.audio_sampling_rate.as_ref());
    extend_attrs(&mut el, &a.extra_attrs);
    let mut children = Children::new(Parent::AdaptationSet);
    for d in &a.inband_event_streams {
        children.push(descriptor_element("InbandEventStream", d));
    }
    for d in &a.accessibility {
        children.push(descriptor_element("Accessibility", d));
    }
    for d in &a.roles {
        children.push(descriptor_element("Role", d));
    }
    for b in &a.base_urls {
        children.push(base_url_element(b));
    }
    if let Some(t) = &a.segment_template {
        children.push(segment_template_element(t));
    }
    for r in &a.representations {
        children.push(representation_element(r));
    }
    for x in &a.extra_children {
        children.push(x.clone());
    }
    children.into_element(el)
}

fn representation_element(r: &Representation) -> XmlElement {
    let mut el = XmlElement::new("Representation");
    el.attrs.push(("id".to_string(), r.id.clone()));
    el.push_attr_opt("bandwidth", r.bandwidth);
    el.push_attr_opt("codecs", r.codecs.as_ref());
    el.push_attr_opt("mimeType", r.mime_type.as_ref());
    el.push_attr_opt("width", r.width);
    el.push_attr_opt("height", r.height);
    el.push_attr_opt("frameRate", r.frame_rate.as_ref());
    el.push_attr_opt("audioSamplingRate", r.audio_sampling_rate.as_ref());
    extend_attrs(&mut el, &r.extra_attrs);
    let mut children = Children::new(Parent::Representation);
    for d in &r.inband_event_streams {
        children.push(descriptor_element("InbandEventStream", d));
    }
    for b in &r.base_urls {
        children.push(base_url_element(b));
    }
    if let Some(t) = &r.segment_template {
        children.push(segment_template_element(t));
    }
    for x in &r.extra_children {
        children.push(x.clone());
    }
    children.into_element(el)
}

fn segment_template_element(t: &SegmentTemplate) -> XmlElement {
    let mut el = XmlElement::new("SegmentTemplate");
    el.push_attr_opt("timescale", t.timescale);
    el.push_attr_opt("presentationTimeOffset", t.presentation_time_offset);
    el.push_attr_opt("startNumber", t.start_number);
    el.push_attr_opt("duration", t.duration);
    el.push_attr_opt("initialization", t.initialization.as_ref());
    el.push_attr_opt("media", t.media.as_ref());
    extend_attrs(&mut el, &t.extra_attrs);
    let mut children = Children::new(Parent::SegmentTemplate);
    if let Some(entries) = &t.timeline {
        let mut tl = XmlElement::new("SegmentTimeline");
        for s in entries {
            let mut se = XmlElement::new("S");
            se.push_attr_opt("t", s.t);
            se.push_attr_opt("n", s.n);
            se.attrs.push(("d".to_string(), s.d.to_string()));
            if s.r != 0 {
                se.attrs.push(("r".to_string(), s.r.to_string()));
            }
            extend_attrs(&mut se, &s.extra_attrs);
            tl.push_element(se);
        }
        children.push(tl);
    }
    for x in &t.extra_children {
        children.push(x.clone());
    }
    children.into_element(el)
}

fn event_stream_element(s: &EventStream) -> XmlElement {
    let mut el = XmlElement::new("EventStream");
    el.attrs
        .push(("schemeIdUri".to_string(), s.scheme_id_uri.clone()));
    el.push_attr_opt("value", s.value.as_ref());
    el.push_attr_opt("timescale", s.timescale);
    el.push_attr_opt("presentationTimeOffset", s.presentation_time_offset);
    extend_attrs(&mut el, &s.extra_attrs);
    for e in &s.events {
        let mut ee = XmlElement::new("Event");
        ee.push_attr_opt("presentationTime", e.presentation_time);
        ee.push_attr_opt("duration", e.duration);
        ee.push_attr_opt("id", e.id.as_ref());
        ee.push_attr_opt("messageData", e.message_data.as_ref());
        extend_attrs(&mut ee, &e.extra_attrs);
        ee.children.clone_from(&e.content);
        el.push_element(ee);
    }
    for x in &s.extra_children {
        el.push_element(x.clone());
    }
    el
}
