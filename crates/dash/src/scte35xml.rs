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
/// (base64) or `SpliceInfoSection`, whichever the content holds (producers mix up the schemes).
///
/// # Errors
/// A message saying what is missing or wrong; the caller adds where.
pub fn read_event_payload(content: &[XmlNode]) -> Result<SpliceInfoSection, String> {
    for node in content {
        let XmlNode::Element(el) = node else {
            continue;
        };
        if let Some(s) = read_payload_element(el)? {
            return Ok(s);
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
        return decode_binary(&text);
    }
    Err("no SpliceInfoSection or Signal/Binary element in the Event".to_string())
}

fn read_payload_element(el: &XmlElement) -> Result<Option<SpliceInfoSection>, String> {
    let name = el.local_name();
    if name.eq_ignore_ascii_case("SpliceInfoSection") {
        return splice_info_section(el).map(Some);
    }
    if name.eq_ignore_ascii_case("Binary") {
        return decode_binary(&el.text()).map(Some);
    }
    if name.eq_ignore_ascii_case("Signal") {
        for child in el.elements() {
            if let Some(s) = read_payload_element(child)? {
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
///
/// # Errors
/// A message naming the element or attribute that cannot be mapped.
pub fn splice_info_section(el: &XmlElement) -> Result<SpliceInfoSection, String> {
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
            "SpliceInsert" => command = Some(SpliceCommand::SpliceInsert(splice_insert(c)?)),
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
                    provider_avail_id: num(c, "providerAvailId")?.unwrap_or(0),
                }))
            }
            "DTMFDescriptor" => {
                descriptors.push(SpliceDescriptor::DtmfDescriptor(DtmfDescriptor {
                    preroll: num(c, "preroll")?.unwrap_or(0),
                    reserved: None,
                    dtmf_chars: attr(c, "chars").unwrap_or("").to_string(),
                }))
            }
            "TimeDescriptor" => {
                descriptors.push(SpliceDescriptor::TimeDescriptor(TimeDescriptor {
                    tai_seconds: num(c, "taiSeconds")?.unwrap_or(0),
                    tai_ns: num(c, "taiNs")?.unwrap_or(0),
                    utc_offset: num(c, "utcOffset")?.unwrap_or(0),
                }))
            }
            "SegmentationDescriptor" => descriptors.push(SpliceDescriptor::SegmentationDescriptor(
                segmentation_descriptor(c)?,
            )),
            _ => {}
        }
    }
    let command = command.ok_or("SpliceInfoSection has no splice command")?;
    let mut section = SpliceInfoSection::new(command);
    section.pts_adjustment = num(el, "ptsAdjustment")?.unwrap_or(0);
    section.tier = num(el, "tier")?.unwrap_or(0xFFF);
    section.protocol_version = num(el, "protocolVersion")?.unwrap_or(0);
    section.sap_type = num(el, "sapType")?.unwrap_or(3);
    section.splice_descriptors = descriptors;
    Ok(section)
}

fn splice_insert(el: &XmlElement) -> Result<SpliceInsert, String> {
    let mut s = SpliceInsert {
        splice_event_id: num(el, "spliceEventId")?.unwrap_or(0),
        splice_event_cancel_indicator: flag(el, "spliceEventCancelIndicator")?.unwrap_or(false),
        out_of_network_indicator: flag(el, "outOfNetworkIndicator")?.unwrap_or(false),
        splice_immediate_flag: flag(el, "spliceImmediateFlag")?.unwrap_or(false),
        event_id_compliance_flag: flag(el, "eventIdComplianceFlag")?.unwrap_or(true),
        unique_program_id: num(el, "uniqueProgramId")?.unwrap_or(0),
        avail_num: num(el, "availNum")?.unwrap_or(0),
        avails_expected: num(el, "availsExpected")?.unwrap_or(0),
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
        s.break_duration = Some(BreakDuration {
            auto_return: flag(b, "autoReturn")?.unwrap_or(true),
            reserved: None,
            duration: num(b, "duration")?.ok_or("BreakDuration@duration is missing")?,
        });
    }
    Ok(s)
}

fn segmentation_descriptor(el: &XmlElement) -> Result<SegmentationDescriptor, String> {
    let type_id: u8 = num(el, "segmentationTypeId")?.unwrap_or(0);
    let mut d = SegmentationDescriptor {
        segmentation_event_id: num(el, "segmentationEventId")?
            .or(num(el, "spliceEventId")?)
            .unwrap_or(0),
        segmentation_event_cancel_indicator: flag(el, "segmentationEventCancelIndicator")?
            .unwrap_or(false),
        segmentation_duration: num(el, "segmentationDuration")?,
        segmentation_type_id: SegmentationTypeId::from(type_id),
        segment_num: num(el, "segmentNum")?.unwrap_or(0),
        segments_expected: num(el, "segmentsExpected")?.unwrap_or(0),
        ..SegmentationDescriptor::default()
    };
    if let (Some(num_), Some(expected)) = (
        num::<u8>(el, "subSegmentNum")?,
        num::<u8>(el, "subSegmentsExpected")?,
    ) {
        d.sub_segment = Some(SubSegment {
            sub_segment_num: num_,
            sub_segments_expected: expected,
        });
    }
    if let Some(r) = child(el, "DeliveryRestrictions") {
        d.delivery_restrictions = Some(DeliveryRestrictions {
            web_delivery_allowed_flag: flag(r, "webDeliveryAllowedFlag")?.unwrap_or(true),
            no_regional_blackout_flag: flag(r, "noRegionalBlackoutFlag")?.unwrap_or(true),
            archive_allowed_flag: flag(r, "archiveAllowedFlag")?.unwrap_or(true),
            device_restrictions: num(r, "deviceRestrictions")?.unwrap_or(3),
        });
    }
    let components: Vec<SegmentationComponent> = el
        .elements()
        .filter(|c| c.local_name() == "Component")
        .map(|c| {
            Ok(SegmentationComponent {
                component_tag: num(c, "componentTag")?.unwrap_or(0),
                reserved: None,
                pts_offset: num(c, "ptsOffset")?.unwrap_or(0),
            })
        })
        .collect::<Result<_, String>>()?;
    if !components.is_empty() {
        d.components = Some(components);
    }
    let upids: Vec<SegmentationUpid> = el
        .elements()
        .filter(|c| c.local_name() == "SegmentationUpid")
        .map(upid)
        .collect::<Result<_, String>>()?;
    d.segmentation_upid = match upids.len() {
        0 => match (
            num::<u8>(el, "segmentationUpidType")?,
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
/// `@segmentationUpidFormat` names (`hexbinary` when absent, `text`, `base-64`).
fn upid(el: &XmlElement) -> Result<SegmentationUpid, String> {
    let upid_type: u8 = num(el, "segmentationUpidType")?.unwrap_or(0);
    let text = el.text();
    let bytes = match attr(el, "segmentationUpidFormat").unwrap_or("hexbinary") {
        "text" => text.into_bytes(),
        "base-64" => base64_to_bytes(text.trim()).map_err(|e| format!("SegmentationUpid: {e}"))?,
        "hexbinary" => hex_to_bytes(text.trim()).map_err(|e| format!("SegmentationUpid: {e}"))?,
        _ => text.into_bytes(),
    };
    Ok(SegmentationUpid::from_bytes(upid_type, &bytes))
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
