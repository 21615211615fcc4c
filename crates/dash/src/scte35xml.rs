//! SCTE-35 in an MPD `Event` (SCTE 214-1 §6.7.2 / §6.7.4): the XML form of `urn:scte:scte35:2013:xml`
//! (`scte35:SpliceInfoSection` with `SpliceInsert` / `TimeSignal` and descriptors, per the SCTE-35 2023 XML
//! schema) read into the same [`SpliceInfoSection`] the binary decoder produces, and the
//! `urn:scte:scte35:2014:xml+bin` form (`scte35:Signal/scte35:Binary`, base64) decoded with
//! `interlude-scte35`.
//!
//! Elements are matched on their local name, case-insensitively (Signal/Binary appear lower-case in the
//! wild), whatever the namespace prefix or URI (2013:xml, `http://www.scte.org/schemas/35/2016`, ...). The
//! XML form is mapped field by field to the binary structures of SCTE-35 §9 and §10; `SpliceSchedule`,
//! `AudioDescriptor` and encrypted packets are not mapped (an error says so).
//!
//! Producers get fields wrong, so the XML form degrades per field, not per cue: what a break needs — the
//! command, event ids, cancel and out-of-network flags, splice times, `segmentationTypeId` — must read or
//! the cue is refused; a field a break can do without (a UPID, a duration, delivery restrictions, counters,
//! other descriptors) that does not read is left at its default or out, with a warning naming it
//! ([`read_event_payload_with_warnings`]). A UPID whose text is not in the format it declares (or, with no
//! `@segmentationUpidFormat`, is not hex) is taken as the text it is.

use interlude_scte35::{
    AvailDescriptor, BreakDuration, DeliveryRestrictions, DtmfDescriptor, PrivateCommand,
    SegmentationComponent, SegmentationDescriptor, SegmentationTypeId, SegmentationUpid,
    SpliceCommand, SpliceDescriptor, SpliceInfoSection, SpliceInsert, SpliceInsertComponent,
    SpliceTime, SubSegment, TimeDescriptor, TimeSignal, base64_to_bytes, hex_to_bytes,
};

use crate::xml::{XmlElement, XmlNode};

/// Which SCTE-35 carriage an EventStream uses (SCTE 214-1 §6.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scte35Scheme {
    /// `urn:scte:scte35:2013:xml`: the section as XML elements.
    Xml,
    /// `urn:scte:scte35:2014:xml+bin`: the binary section in base64 inside `Signal/Binary`.
    XmlBin,
}

impl Scte35Scheme {
    /// The scheme of an EventStream or InbandEventStream @schemeIdUri, if it is SCTE-35. The older
    /// `urn:scte:scte35:2013:bin` is read like xml+bin.
    #[must_use]
    pub fn from_uri(uri: &str) -> Option<Self> {
        match uri.trim() {
            "urn:scte:scte35:2013:xml" => Some(Self::Xml),
            "urn:scte:scte35:2014:xml+bin" | "urn:scte:scte35:2013:bin" => Some(Self::XmlBin),
            _ => None,
        }
    }
}

/// Reads the SCTE-35 payload of an `Event`: a `SpliceInfoSection` element, or `Signal` holding `Binary`
/// (base64) or `SpliceInfoSection`, whichever the content holds (producers mix up the schemes). Fields a
/// break can do without that do not read are left out silently; [`read_event_payload_with_warnings`] says
/// which.
///
/// # Errors
/// A message saying what is missing or wrong; the caller adds where.
pub fn read_event_payload(content: &[XmlNode]) -> Result<SpliceInfoSection, String> {
    read_event_payload_with_warnings(content).map(|(s, _)| s)
}

/// [`read_event_payload`], with a message for every field that did not read and was left at its default.
///
/// # Errors
/// As [`read_event_payload`]: the payload is missing, or a field a break needs does not read.
pub fn read_event_payload_with_warnings(
    content: &[XmlNode],
) -> Result<(SpliceInfoSection, Vec<String>), String> {
    let mut warnings = Vec::new();
    for node in content {
        let XmlNode::Element(el) = node else {
            continue;
        };
        if let Some(s) = read_payload_element(el, &mut warnings)? {
            return Ok((s, warnings));
        }
    }
    // Some producers put the base64 text straight into the Event.
    let text: String = content
        .iter()
        .filter_map(|n| match n {
            XmlNode::Text(t) => Some(t.as_str()),
            XmlNode::Element(_) => None,
        })
        .collect();
    if !text.trim().is_empty() {
        return decode_binary(&text).map(|s| (s, warnings));
    }
    Err("no SpliceInfoSection or Signal/Binary element in the Event".to_string())
}

fn read_payload_element(
    el: &XmlElement,
    w: &mut Vec<String>,
) -> Result<Option<SpliceInfoSection>, String> {
    let name = el.local_name();
    if name.eq_ignore_ascii_case("SpliceInfoSection") {
        return section(el, w).map(Some);
    }
    if name.eq_ignore_ascii_case("Binary") {
        return decode_binary(&el.text()).map(Some);
    }
    if name.eq_ignore_ascii_case("Signal") {
        for child in el.elements() {
            if let Some(s) = read_payload_element(child, w)? {
                return Ok(Some(s));
            }
        }
        return Err("Signal holds neither Binary nor SpliceInfoSection".to_string());
    }
    Ok(None)
}

fn decode_binary(text: &str) -> Result<SpliceInfoSection, String> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = base64_to_bytes(&compact).map_err(|e| format!("Binary is not base64: {e}"))?;
    SpliceInfoSection::decode(&bytes).map_err(|e| format!("Binary: {e}"))
}

fn attr<'a>(el: &'a XmlElement, name: &str) -> Option<&'a str> {
    el.attrs
        .iter()
        .find(|(k, _)| crate::xml::local(k) == name)
        .map(|(_, v)| v.trim())
}

fn num<T: std::str::FromStr>(el: &XmlElement, name: &str) -> Result<Option<T>, String> {
    match attr(el, name) {
        None => Ok(None),
        Some(v) => v
            .parse::<T>()
            .map(Some)
            .map_err(|_| format!("{}@{name}={v:?} is not a number in range", el.local_name())),
    }
}

fn flag(el: &XmlElement, name: &str) -> Result<Option<bool>, String> {
    match attr(el, name) {
        None => Ok(None),
        Some("true" | "1") => Ok(Some(true)),
        Some("false" | "0") => Ok(Some(false)),
        Some(v) => Err(format!("{}@{name}={v:?} is not a boolean", el.local_name())),
    }
}

/// A field a break can do without: its value, or `None` with a warning when it does not read.
fn soft<T>(r: Result<Option<T>, String>, w: &mut Vec<String>) -> Option<T> {
    r.unwrap_or_else(|reason| {
        w.push(format!("{reason}; left out"));
        None
    })
}

fn child<'a>(el: &'a XmlElement, name: &str) -> Option<&'a XmlElement> {
    el.elements()
        .find(|c| c.local_name().eq_ignore_ascii_case(name))
}

fn splice_time(el: Option<&XmlElement>) -> Result<Option<SpliceTime>, String> {
    let Some(el) = el else {
        return Ok(None);
    };
    Ok(Some(SpliceTime {
        pts_time: num(el, "ptsTime")?,
        reserved: None,
    }))
}

/// Maps `scte35:SpliceInfoSection` (SCTE-35 2023 XML schema `SpliceInfoSectionType`) to the binary model.
/// Fields a break can do without that do not read are left out (see the module documentation).
///
/// # Errors
/// A message naming the element or attribute that cannot be mapped.
pub fn splice_info_section(el: &XmlElement) -> Result<SpliceInfoSection, String> {
    section(el, &mut Vec::new())
}

fn section(el: &XmlElement, w: &mut Vec<String>) -> Result<SpliceInfoSection, String> {
    let mut command = None;
    let mut descriptors = Vec::new();
    for c in el.elements() {
        match c.local_name() {
            "SpliceNull" => command = Some(SpliceCommand::SpliceNull),
            "BandwidthReservation" => command = Some(SpliceCommand::BandwidthReservation),
            "TimeSignal" => {
                let t = splice_time(child(c, "SpliceTime"))?.unwrap_or_default();
                command = Some(SpliceCommand::TimeSignal(TimeSignal { splice_time: t }));
            }
            "SpliceInsert" => command = Some(SpliceCommand::SpliceInsert(splice_insert(c, w)?)),
            "PrivateCommand" => {
                let bytes = child(c, "PrivateBytes")
                    .map(|b| hex_to_bytes(&b.text()))
                    .transpose()
                    .map_err(|e| format!("PrivateCommand/PrivateBytes: {e}"))?
                    .unwrap_or_default();
                command = Some(SpliceCommand::PrivateCommand(PrivateCommand {
                    identifier: num(c, "identifier")?.unwrap_or(0),
                    private_bytes: bytes,
                }));
            }
            "SpliceSchedule" => return Err("SpliceSchedule in XML form is not supported".into()),
            "EncryptedPacket" => return Err("encrypted SpliceInfoSection is not supported".into()),
            "AvailDescriptor" => {
                descriptors.push(SpliceDescriptor::AvailDescriptor(AvailDescriptor {
                    provider_avail_id: soft(num(c, "providerAvailId"), w).unwrap_or(0),
                }))
            }
            "DTMFDescriptor" => {
                descriptors.push(SpliceDescriptor::DtmfDescriptor(DtmfDescriptor {
                    preroll: soft(num(c, "preroll"), w).unwrap_or(0),
                    reserved: None,
                    dtmf_chars: attr(c, "chars").unwrap_or("").to_string(),
                }))
            }
            "TimeDescriptor" => {
                descriptors.push(SpliceDescriptor::TimeDescriptor(TimeDescriptor {
                    tai_seconds: soft(num(c, "taiSeconds"), w).unwrap_or(0),
                    tai_ns: soft(num(c, "taiNs"), w).unwrap_or(0),
                    utc_offset: soft(num(c, "utcOffset"), w).unwrap_or(0),
                }))
            }
            "SegmentationDescriptor" => descriptors.push(SpliceDescriptor::SegmentationDescriptor(
                segmentation_descriptor(c, w)?,
            )),
            _ => {}
        }
    }
    let command = command.ok_or("SpliceInfoSection has no splice command")?;
    let mut section = SpliceInfoSection::new(command);
    // pts_adjustment moves the splice PTS, which a DASH cue's time does not come from (the Event's does).
    section.pts_adjustment = soft(num(el, "ptsAdjustment"), w).unwrap_or(0);
    section.tier = soft(num(el, "tier"), w).unwrap_or(0xFFF);
    section.protocol_version = soft(num(el, "protocolVersion"), w).unwrap_or(0);
    section.sap_type = soft(num(el, "sapType"), w).unwrap_or(3);
    section.splice_descriptors = descriptors;
    Ok(section)
}

fn splice_insert(el: &XmlElement, w: &mut Vec<String>) -> Result<SpliceInsert, String> {
    let mut s = SpliceInsert {
        splice_event_id: num(el, "spliceEventId")?.unwrap_or(0),
        splice_event_cancel_indicator: flag(el, "spliceEventCancelIndicator")?.unwrap_or(false),
        out_of_network_indicator: flag(el, "outOfNetworkIndicator")?.unwrap_or(false),
        splice_immediate_flag: soft(flag(el, "spliceImmediateFlag"), w).unwrap_or(false),
        event_id_compliance_flag: soft(flag(el, "eventIdComplianceFlag"), w).unwrap_or(true),
        unique_program_id: soft(num(el, "uniqueProgramId"), w).unwrap_or(0),
        avail_num: soft(num(el, "availNum"), w).unwrap_or(0),
        avails_expected: soft(num(el, "availsExpected"), w).unwrap_or(0),
        program_splice_flag: true,
        ..SpliceInsert::default()
    };
    if let Some(program) = child(el, "Program") {
        s.splice_time = splice_time(child(program, "SpliceTime"))?;
        if s.splice_time.is_none() && !s.splice_immediate_flag {
            s.splice_immediate_flag = true;
        }
    } else {
        for c in el.elements().filter(|c| c.local_name() == "Component") {
            s.program_splice_flag = false;
            s.components.push(SpliceInsertComponent {
                component_tag: num(c, "componentTag")?.unwrap_or(0),
                splice_time: splice_time(child(c, "SpliceTime"))?,
            });
        }
        if s.program_splice_flag && !s.splice_event_cancel_indicator {
            // Neither Program nor Component: a splice with no time is immediate.
            s.splice_immediate_flag = true;
        }
    }
    if let Some(b) = child(el, "BreakDuration") {
        // A break without a readable duration is still a break: its length comes from elsewhere.
        if let Some(duration) = soft(
            num(b, "duration")
                .and_then(|d| d.ok_or_else(|| "BreakDuration@duration is missing".into()))
                .map(Some),
            w,
        ) {
            s.break_duration = Some(BreakDuration {
                auto_return: soft(flag(b, "autoReturn"), w).unwrap_or(true),
                reserved: None,
                duration,
            });
        }
    }
    Ok(s)
}

fn segmentation_descriptor(
    el: &XmlElement,
    w: &mut Vec<String>,
) -> Result<SegmentationDescriptor, String> {
    let type_id: u8 = match num(el, "segmentationTypeId")? {
        Some(t) => t,
        // AWS MediaTailor's documented origin example puts segmentationTypeId (and segmentNum,
        // segmentsExpected) on the SegmentationUpid child instead of the descriptor.
        None => match child(el, "SegmentationUpid")
            .map(|u| num::<u8>(u, "segmentationTypeId"))
            .transpose()?
            .flatten()
        {
            Some(t) => {
                w.push(format!(
                    "segmentationTypeId={t} is on SegmentationUpid, not on SegmentationDescriptor; taken from there"
                ));
                t
            }
            None => 0,
        },
    };
    let mut d = SegmentationDescriptor {
        segmentation_event_id: num(el, "segmentationEventId")?
            .or(num(el, "spliceEventId")?)
            .unwrap_or(0),
        segmentation_event_cancel_indicator: flag(el, "segmentationEventCancelIndicator")?
            .unwrap_or(false),
        segmentation_duration: soft(num(el, "segmentationDuration"), w),
        segmentation_type_id: SegmentationTypeId::from(type_id),
        segment_num: soft(num(el, "segmentNum"), w).unwrap_or(0),
        segments_expected: soft(num(el, "segmentsExpected"), w).unwrap_or(0),
        ..SegmentationDescriptor::default()
    };
    if let (Some(num_), Some(expected)) = (
        soft(num::<u8>(el, "subSegmentNum"), w),
        soft(num::<u8>(el, "subSegmentsExpected"), w),
    ) {
        d.sub_segment = Some(SubSegment {
            sub_segment_num: num_,
            sub_segments_expected: expected,
        });
    }
    if let Some(r) = child(el, "DeliveryRestrictions") {
        d.delivery_restrictions = Some(DeliveryRestrictions {
            web_delivery_allowed_flag: soft(flag(r, "webDeliveryAllowedFlag"), w).unwrap_or(true),
            no_regional_blackout_flag: soft(flag(r, "noRegionalBlackoutFlag"), w).unwrap_or(true),
            archive_allowed_flag: soft(flag(r, "archiveAllowedFlag"), w).unwrap_or(true),
            device_restrictions: soft(num(r, "deviceRestrictions"), w).unwrap_or(3),
        });
    }
    let components: Vec<SegmentationComponent> = el
        .elements()
        .filter(|c| c.local_name() == "Component")
        .map(|c| SegmentationComponent {
            component_tag: soft(num(c, "componentTag"), w).unwrap_or(0),
            reserved: None,
            pts_offset: soft(num(c, "ptsOffset"), w).unwrap_or(0),
        })
        .collect();
    if !components.is_empty() {
        d.components = Some(components);
    }
    let upids: Vec<SegmentationUpid> = el
        .elements()
        .filter(|c| c.local_name() == "SegmentationUpid")
        .map(|c| upid(c, w))
        .collect();
    d.segmentation_upid = match upids.len() {
        0 => match (
            soft(num::<u8>(el, "segmentationUpidType"), w),
            attr(el, "segmentationUpid"),
        ) {
            // Older producers (Telestream) write the UPID as attributes of the descriptor, as text.
            (Some(t), Some(v)) => SegmentationUpid::from_bytes(t, v.as_bytes()),
            _ => SegmentationUpid::NotUsed,
        },
        1 => upids
            .into_iter()
            .next()
            .unwrap_or(SegmentationUpid::NotUsed),
        _ => SegmentationUpid::Mid(upids),
    };
    Ok(d)
}

/// One `SegmentationUpid` element: `@segmentationUpidType` and a value whose encoding
/// `@segmentationUpidFormat` names (`hexbinary` when absent, `text`, `base-64`). A value that is not in its
/// format is taken as text (producers write text and leave the format out), an unreadable type as 0x01
/// (user defined) when there is a value and 0x00 (not used) when there is none; each with a warning.
fn upid(el: &XmlElement, w: &mut Vec<String>) -> SegmentationUpid {
    let text = el.text();
    let value = text.trim();
    let upid_type: u8 = soft(num(el, "segmentationUpidType"), w).unwrap_or(if value.is_empty() {
        0x00
    } else {
        0x01
    });
    let declared = attr(el, "segmentationUpidFormat");
    let format = declared.unwrap_or("hexbinary");
    let decoded = match format {
        "base-64" => base64_to_bytes(value).map_err(|e| e.to_string()),
        "hexbinary" => hex_to_bytes(value).map_err(|e| e.to_string()),
        _ => Ok(value.as_bytes().to_vec()),
    };
    let as_text = SegmentationUpid::from_bytes(upid_type, value.as_bytes());
    let typed = |u: &SegmentationUpid| !matches!(u, SegmentationUpid::Other { .. });
    match decoded {
        Ok(bytes) => {
            let upid = SegmentationUpid::from_bytes(upid_type, &bytes);
            // Without a declared format, text such as an Ad-ID can also be valid hex: the reading that gives
            // the type its form wins.
            // Only the UPID types SCTE-35 defines as text (ISCI, Ad-ID, TID, ADI, ADS information, URI).
            let text_type = matches!(upid_type, 0x02 | 0x03 | 0x07 | 0x09 | 0x0E | 0x0F);
            if declared.is_none() && text_type && !typed(&upid) && typed(&as_text) {
                w.push(format!(
                    "SegmentationUpid {value:?} has no @segmentationUpidFormat and reads as type \
                     {upid_type:#04x} only as text; taken as text"
                ));
                return as_text;
            }
            upid
        }
        Err(e) => {
            w.push(format!(
                "SegmentationUpid {value:?} is not {format} ({e}); taken as text"
            ));
            as_text
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::read;

    fn payload(xml: &str) -> Result<SpliceInfoSection, String> {
        let root = read(xml).map_err(|e| e.to_string())?;
        read_event_payload(&root.children)
    }

    /// ANSI/SCTE 35 2022b §14.2: a splice_insert with break_duration and an avail_descriptor, in base64 and
    /// written out as the XML of the SCTE-35 schema; both forms must give the same section.
    #[test]
    fn xml_splice_insert_equals_its_binary_form() {
        let binary = "/DAvAAAAAAAA///wFAVIAACPf+/+c2nALv4AUsz1AAAAAAAKAAhDVUVJAAABNWLbowo=";
        let from_bin = payload(&format!(
            r#"<Event><scte35:Signal xmlns:scte35="http://www.scte.org/schemas/35/2016"><scte35:Binary>{binary}</scte35:Binary></scte35:Signal></Event>"#
        ))
        .expect("binary decodes");
        let xml = r#"<Event><SpliceInfoSection xmlns="http://www.scte.org/schemas/35" ptsAdjustment="0" tier="4095">
            <SpliceInsert spliceEventId="1207959695" outOfNetworkIndicator="true" spliceImmediateFlag="false"
                eventIdComplianceFlag="true" uniqueProgramId="0" availNum="0" availsExpected="0">
              <Program><SpliceTime ptsTime="1936310318"/></Program>
              <BreakDuration autoReturn="true" duration="5426421"/>
            </SpliceInsert>
            <AvailDescriptor providerAvailId="309"/>
          </SpliceInfoSection></Event>"#;
        let from_xml = payload(xml).expect("XML maps");
        assert_eq!(from_xml.splice_insert(), from_bin.splice_insert());
        assert_eq!(from_xml.splice_descriptors, from_bin.splice_descriptors);
        assert_eq!(from_xml.splice_pts(), Some(0x0_7369_C02E));
        assert!(from_xml.is_ad_break_start());
        assert_eq!(from_xml.event_id(), Some(0x4800_008F));
    }

    #[test]
    fn xml_time_signal_with_segmentation_upids_and_restrictions() {
        let xml = r#"<Event><scte35:SpliceInfoSection xmlns:scte35="urn:scte:scte35:2013:xml" ptsAdjustment="10">
            <scte35:TimeSignal><scte35:SpliceTime ptsTime="900000"/></scte35:TimeSignal>
            <scte35:SegmentationDescriptor segmentationEventId="42" segmentationTypeId="48"
                segmentationDuration="2700000" segmentNum="1" segmentsExpected="2">
              <scte35:DeliveryRestrictions webDeliveryAllowedFlag="false" noRegionalBlackoutFlag="true"
                  archiveAllowedFlag="true" deviceRestrictions="3"/>
              <scte35:SegmentationUpid segmentationUpidType="9" segmentationUpidFormat="text">SIGNAL:abc</scte35:SegmentationUpid>
            </scte35:SegmentationDescriptor>
          </scte35:SpliceInfoSection></Event>"#;
        let s = payload(xml).expect("maps");
        assert_eq!(s.splice_pts(), Some(900_010));
        assert!(s.is_ad_break_start());
        assert_eq!(s.break_duration(), Some(std::time::Duration::from_secs(30)));
        let d = s.segmentation_descriptors().next().expect("descriptor");
        assert_eq!(
            d.segmentation_type_id,
            SegmentationTypeId::ProviderAdvertisementStart
        );
        assert_eq!(
            d.segmentation_upid,
            SegmentationUpid::Adi("SIGNAL:abc".into())
        );
        assert_eq!(
            d.delivery_restrictions.map(|r| r.web_delivery_allowed_flag),
            Some(false)
        );
        // The section encodes: every field the XML gave fits the binary form.
        let bytes = s.encode().expect("encodes");
        assert_eq!(SpliceInfoSection::decode(&bytes).expect("decodes"), s);
    }

    #[test]
    fn hex_upids_and_several_upids_make_a_mid() {
        // Hex by default (no @segmentationUpidFormat), text when it says so.
        let xml = r#"<Event><SpliceInfoSection><TimeSignal><SpliceTime ptsTime="1"/></TimeSignal>
            <SegmentationDescriptor segmentationEventId="1" segmentationTypeId="52">
              <SegmentationUpid segmentationUpidType="8">0000000000000001</SegmentationUpid>
              <SegmentationUpid segmentationUpidType="3" segmentationUpidFormat="text">ABCD01234567</SegmentationUpid>
            </SegmentationDescriptor></SpliceInfoSection></Event>"#;
        let s = payload(xml).expect("maps");
        let d = s.segmentation_descriptors().next().expect("descriptor");
        assert_eq!(
            d.segmentation_upid,
            SegmentationUpid::Mid(vec![
                SegmentationUpid::Ti(1),
                SegmentationUpid::AdId("ABCD01234567".into())
            ])
        );
    }

    #[test]
    fn bad_payloads_say_what_is_wrong() {
        for (xml, needle) in [
            ("<Event/>", "no SpliceInfoSection"),
            (
                "<Event><Signal><Binary>%%%</Binary></Signal></Event>",
                "base64",
            ),
            (
                "<Event><Signal><Binary>/DAvAAAA</Binary></Signal></Event>",
                "Binary",
            ),
            ("<Event><SpliceInfoSection/></Event>", "no splice command"),
            (
                r#"<Event><SpliceInfoSection><SpliceInsert spliceEventId="x"/></SpliceInfoSection></Event>"#,
                "spliceEventId",
            ),
            (
                r#"<Event><SpliceInfoSection><SpliceInsert outOfNetworkIndicator="maybe"/></SpliceInfoSection></Event>"#,
                "boolean",
            ),
            ("<Event><Signal><Other/></Signal></Event>", "neither"),
        ] {
            let err = payload(xml).expect_err(xml);
            assert!(err.contains(needle), "{xml}: {err}");
        }
    }

    #[test]
    fn schemes_are_recognised() {
        assert_eq!(
            Scte35Scheme::from_uri("urn:scte:scte35:2013:xml"),
            Some(Scte35Scheme::Xml)
        );
        assert_eq!(
            Scte35Scheme::from_uri(" urn:scte:scte35:2014:xml+bin "),
            Some(Scte35Scheme::XmlBin)
        );
        assert_eq!(Scte35Scheme::from_uri("urn:mpeg:dash:event:2012"), None);
    }
}
