//! Serde helpers for the JSON form: byte strings as hex, and 90 kHz time fields written as both raw ticks and
//! seconds (`"pts_time": 1234567, "pts_time_seconds": 13.717411`); only the ticks are read back.

use std::fmt;

use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserializer, Serializer};

use crate::TICKS_PER_SECOND;

/// Seconds for a tick count, rounded to the microsecond for display.
pub(crate) fn seconds(ticks: u64) -> f64 {
    (ticks as f64 / TICKS_PER_SECOND as f64 * 1e6).round() / 1e6
}

/// Byte strings as lowercase hex (an optional `0x` prefix is accepted when reading).
pub(crate) mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        let t = s
            .strip_prefix("0x")
            .or_else(|| s.strip_prefix("0X"))
            .unwrap_or(&s);
        hex::decode(t).map_err(serde::de::Error::custom)
    }
}

pub(crate) fn ser_ticks<S: Serializer>(
    s: S,
    key: &'static str,
    secs_key: &'static str,
    v: Option<u64>,
) -> Result<S::Ok, S::Error> {
    let mut m = s.serialize_map(Some(if v.is_some() { 2 } else { 0 }))?;
    if let Some(t) = v {
        m.serialize_entry(key, &t)?;
        m.serialize_entry(secs_key, &seconds(t))?;
    }
    m.end()
}

struct KeyVisitor {
    key: &'static str,
}

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Option<u64>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a map that may hold `{}`", self.key)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = None;
        while let Some(k) = map.next_key::<String>()? {
            if k == self.key {
                out = map.next_value::<Option<u64>>()?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(out)
    }
}

pub(crate) fn de_ticks<'de, D: Deserializer<'de>>(
    d: D,
    key: &'static str,
) -> Result<Option<u64>, D::Error> {
    d.deserialize_map(KeyVisitor { key })
}

pub(crate) fn de_ticks_required<'de, D: Deserializer<'de>>(
    d: D,
    key: &'static str,
) -> Result<u64, D::Error> {
    de_ticks(d, key)?.ok_or_else(|| de::Error::missing_field(key))
}

/// Declares a `#[serde(flatten, with = ...)]` module writing `key` and `key_seconds`.
macro_rules! ticks_field {
    ($module:ident, $key:literal, $secs:literal, Option) => {
        pub(crate) mod $module {
            pub(crate) fn serialize<S: serde::Serializer>(
                v: &Option<u64>,
                s: S,
            ) -> Result<S::Ok, S::Error> {
                super::ser_ticks(s, $key, $secs, *v)
            }
            pub(crate) fn deserialize<'de, D: serde::Deserializer<'de>>(
                d: D,
            ) -> Result<Option<u64>, D::Error> {
                super::de_ticks(d, $key)
            }
        }
    };
    ($module:ident, $key:literal, $secs:literal) => {
        pub(crate) mod $module {
            pub(crate) fn serialize<S: serde::Serializer>(
                v: &u64,
                s: S,
            ) -> Result<S::Ok, S::Error> {
                super::ser_ticks(s, $key, $secs, Some(*v))
            }
            pub(crate) fn deserialize<'de, D: serde::Deserializer<'de>>(
                d: D,
            ) -> Result<u64, D::Error> {
                super::de_ticks_required(d, $key)
            }
        }
    };
}

ticks_field!(pts_adjustment, "pts_adjustment", "pts_adjustment_seconds");
ticks_field!(pts_time, "pts_time", "pts_time_seconds", Option);
ticks_field!(duration, "duration", "duration_seconds");
ticks_field!(pts_offset, "pts_offset", "pts_offset_seconds");
ticks_field!(
    segmentation_duration,
    "segmentation_duration",
    "segmentation_duration_seconds",
    Option
);
