//! `segmentation_descriptor()` (ANSI/SCTE 35 §10.3.3).
//!
//! `descriptor_length` decides what follows `segments_expected` (§10.3.3.1: "the presence or absence of this
//! optional data block is determined by the descriptor_length"). Encoders send more than the 2022b table lists:
//! SCTE 35 2023 (and threefive, Comcast/scte35-go) reads `sub_segment_num`/`sub_segments_expected` also on
//! Provider/Distributor Advertisement Start (0x30/0x32) and Ad Block Start (0x44/0x46), and some encoders pad
//! descriptors further. So: the sub-segment fields are read when the type may carry them and two bytes are
//! left, and whatever is still left is kept in [`SegmentationDescriptor::trailing_bytes`] so that encoding
//! gives back the same bytes.

use serde::{Deserialize, Serialize};

use crate::bits::{BitReader, BitWriter};
use crate::error::Result;
use crate::segmentation_type::SegmentationTypeId;
use crate::upid::SegmentationUpid;

/// `segmentation_descriptor()`. When `segmentation_event_cancel_indicator` is set the fields after it are not
/// carried: they decode as defaults and are ignored on encode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentationDescriptor {
    /// `segmentation_event_id`.
    pub segmentation_event_id: u32,
    /// `segmentation_event_cancel_indicator`.
    pub segmentation_event_cancel_indicator: bool,
    /// `segmentation_event_id_compliance_indicator` (SCTE 35 2023; a reserved bit, normally 1, before that).
    #[serde(default)]
    pub segmentation_event_id_compliance_indicator: bool,
    /// Reserved 6 bits after the indicators, when not all ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved1: Option<u8>,
    /// Delivery restrictions; `None` means `delivery_not_restricted_flag` = 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_restrictions: Option<DeliveryRestrictions>,
    /// Reserved 5 bits in place of the restriction flags (delivery not restricted), when not all ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved2: Option<u8>,
    /// Component offsets; `None` means `program_segmentation_flag` = 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub components: Option<Vec<SegmentationComponent>>,
    /// `segmentation_duration` in 90 kHz ticks (40 bits) when `segmentation_duration_flag` is 1.
    #[serde(flatten, with = "crate::serde_util::segmentation_duration")]
    pub segmentation_duration: Option<u64>,
    /// The UPID.
    #[serde(default = "not_used")]
    pub segmentation_upid: SegmentationUpid,
    /// `segmentation_type_id`; JSON also carries its name as `segmentation_message`.
    #[serde(flatten, with = "type_id_json")]
    pub segmentation_type_id: SegmentationTypeId,
    /// `segment_num`.
    #[serde(default)]
    pub segment_num: u8,
    /// `segments_expected`.
    #[serde(default)]
    pub segments_expected: u8,
    /// `sub_segment_num` and `sub_segments_expected`: decoded only for the types that may carry them
    /// ([`SegmentationTypeId::carries_sub_segments`]) and only when `descriptor_length` leaves room for them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_segment: Option<SubSegment>,
    /// Bytes `descriptor_length` counts after the last field this type has (after `sub_segment_num`/
    /// `sub_segments_expected`, or after `segments_expected` for other types, or after the reserved bits of a
    /// cancel), kept so that encoding reproduces the descriptor; hex in JSON. A value with no `sub_segment`, a
    /// type that carries one and two or more trailing bytes would decode back with those bytes as the
    /// sub-segment fields.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        with = "crate::serde_util::hex_bytes"
    )]
    pub trailing_bytes: Vec<u8>,
}

fn not_used() -> SegmentationUpid {
    SegmentationUpid::NotUsed
}

/// The restriction flags present when `delivery_not_restricted_flag` is 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRestrictions {
    /// `web_delivery_allowed_flag`.
    pub web_delivery_allowed_flag: bool,
    /// `no_regional_blackout_flag`.
    pub no_regional_blackout_flag: bool,
    /// `archive_allowed_flag`.
    pub archive_allowed_flag: bool,
    /// `device_restrictions` (2 bits).
    pub device_restrictions: u8,
}

/// One component of a component-mode segmentation descriptor.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentationComponent {
    /// `component_tag`.
    pub component_tag: u8,
    /// Reserved 7 bits, when not all ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved: Option<u8>,
    /// `pts_offset` in 90 kHz ticks (33 bits).
    #[serde(flatten, with = "crate::serde_util::pts_offset")]
    pub pts_offset: u64,
}

/// `sub_segment_num` / `sub_segments_expected`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubSegment {
    /// `sub_segment_num`.
    pub sub_segment_num: u8,
    /// `sub_segments_expected`.
    pub sub_segments_expected: u8,
}

impl Default for SegmentationDescriptor {
    fn default() -> Self {
        Self {
            segmentation_event_id: 0,
            segmentation_event_cancel_indicator: false,
            segmentation_event_id_compliance_indicator: true,
            reserved1: None,
            delivery_restrictions: None,
            reserved2: None,
            components: None,
            segmentation_duration: None,
            segmentation_upid: SegmentationUpid::NotUsed,
            segmentation_type_id: SegmentationTypeId::NotIndicated,
            segment_num: 0,
            segments_expected: 0,
            sub_segment: None,
            trailing_bytes: Vec::new(),
        }
    }
}

impl SegmentationDescriptor {
    /// Decodes the body after `identifier`; `r` holds exactly the rest of the descriptor.
    pub(crate) fn decode(r: &mut BitReader<'_>) -> Result<Self> {
        let mut d = Self {
            segmentation_event_id: r.u32("segmentation_event_id")?,
            segmentation_event_cancel_indicator: r.flag("segmentation_event_cancel_indicator")?,
            segmentation_event_id_compliance_indicator: r
                .flag("segmentation_event_id_compliance_indicator")?,
            reserved1: r.reserved(6, "segmentation_descriptor.reserved")?,
            ..Self::default()
        };
        if d.segmentation_event_cancel_indicator {
            d.trailing_bytes = r.rest("segmentation_descriptor.trailing_bytes")?.to_vec();
            return Ok(d);
        }
        let program = r.flag("program_segmentation_flag")?;
        let duration_flag = r.flag("segmentation_duration_flag")?;
        if r.flag("delivery_not_restricted_flag")? {
            d.reserved2 = r.reserved(5, "segmentation_descriptor.reserved")?;
        } else {
            d.delivery_restrictions = Some(DeliveryRestrictions {
                web_delivery_allowed_flag: r.flag("web_delivery_allowed_flag")?,
                no_regional_blackout_flag: r.flag("no_regional_blackout_flag")?,
                archive_allowed_flag: r.flag("archive_allowed_flag")?,
                device_restrictions: r.bits(2, "device_restrictions")? as u8,
            });
        }
        if !program {
            let n = r.u8("component_count")?;
            let mut list = Vec::with_capacity(usize::from(n));
            for _ in 0..n {
                list.push(SegmentationComponent {
                    component_tag: r.u8("component_tag")?,
                    reserved: r.reserved(7, "segmentation_descriptor.reserved")?,
                    pts_offset: r.bits(33, "pts_offset")?,
                });
            }
            d.components = Some(list);
        }
        if duration_flag {
            d.segmentation_duration = Some(r.bits(40, "segmentation_duration")?);
        }
        let upid_type = r.u8("segmentation_upid_type")?;
        let upid_len = r.u8("segmentation_upid_length")?;
        d.segmentation_upid = SegmentationUpid::from_bytes(
            upid_type,
            r.bytes(usize::from(upid_len), "segmentation_upid")?,
        );
        d.segmentation_type_id = SegmentationTypeId::from(r.u8("segmentation_type_id")?);
        d.segment_num = r.u8("segment_num")?;
        d.segments_expected = r.u8("segments_expected")?;
        if d.segmentation_type_id.carries_sub_segments() && r.remaining() >= 2 {
            d.sub_segment = Some(SubSegment {
                sub_segment_num: r.u8("sub_segment_num")?,
                sub_segments_expected: r.u8("sub_segments_expected")?,
            });
        }
        d.trailing_bytes = r.rest("segmentation_descriptor.trailing_bytes")?.to_vec();
        Ok(d)
    }

    pub(crate) fn encode(&self, w: &mut BitWriter) -> Result<()> {
        w.u32(self.segmentation_event_id);
        w.flag(self.segmentation_event_cancel_indicator);
        w.flag(self.segmentation_event_id_compliance_indicator);
        w.reserved(6, self.reserved1, "segmentation_descriptor.reserved")?;
        if self.segmentation_event_cancel_indicator {
            return w.bytes(
                &self.trailing_bytes,
                "segmentation_descriptor.trailing_bytes",
            );
        }
        w.flag(self.components.is_none());
        w.flag(self.segmentation_duration.is_some());
        w.flag(self.delivery_restrictions.is_none());
        match &self.delivery_restrictions {
            None => w.reserved(5, self.reserved2, "segmentation_descriptor.reserved")?,
            Some(f) => {
                w.flag(f.web_delivery_allowed_flag);
                w.flag(f.no_regional_blackout_flag);
                w.flag(f.archive_allowed_flag);
                w.bits(2, u64::from(f.device_restrictions), "device_restrictions")?;
            }
        }
        if let Some(list) = &self.components {
            let n = u8::try_from(list.len()).map_err(|_| crate::Error::ValueOutOfRange {
                field: "component_count",
                value: list.len() as u64,
                bits: 8,
            })?;
            w.u8(n);
            for c in list {
                w.u8(c.component_tag);
                w.reserved(7, c.reserved, "segmentation_descriptor.reserved")?;
                w.bits(33, c.pts_offset, "pts_offset")?;
            }
        }
        if let Some(d) = self.segmentation_duration {
            w.bits(40, d, "segmentation_duration")?;
        }
        self.segmentation_upid.encode(w)?;
        w.u8(self.segmentation_type_id.into());
        w.u8(self.segment_num);
        w.u8(self.segments_expected);
        if let Some(s) = &self.sub_segment {
            w.u8(s.sub_segment_num);
            w.u8(s.sub_segments_expected);
        }
        w.bytes(
            &self.trailing_bytes,
            "segmentation_descriptor.trailing_bytes",
        )
    }
}

/// `segmentation_type_id` as a number plus `segmentation_message` (its name) in JSON; only the number is read.
mod type_id_json {
    use serde::de::{self, IgnoredAny, MapAccess, Visitor};
    use serde::ser::SerializeMap;
    use serde::{Deserializer, Serializer};

    use crate::segmentation_type::SegmentationTypeId;

    pub(crate) fn serialize<S: Serializer>(
        v: &SegmentationTypeId,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("segmentation_type_id", &v.value())?;
        m.serialize_entry("segmentation_message", v.message())?;
        m.end()
    }

    struct V;

    impl<'de> Visitor<'de> for V {
        type Value = SegmentationTypeId;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a map with `segmentation_type_id`")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = None;
            while let Some(k) = map.next_key::<String>()? {
                if k == "segmentation_type_id" {
                    out = Some(map.next_value::<u8>()?);
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            out.map(SegmentationTypeId::from)
                .ok_or_else(|| de::Error::missing_field("segmentation_type_id"))
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<SegmentationTypeId, D::Error> {
        d.deserialize_map(V)
    }
}
