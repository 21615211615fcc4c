//! Attribute lists (RFC 8216bis §4.2): `NAME=value` pairs separated by commas, where a quoted string may itself
//! contain commas. Values are kept as written (quotes included) and in order, so unknown attributes survive a
//! round trip untouched; typed accessors read them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An ordered attribute list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributeList {
    pairs: Vec<(String, String)>,
}

impl AttributeList {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses `text`. Returns the reason on malformed input (unterminated quote, missing `=`, empty name).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut pairs = Vec::new();
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            while i < bytes.len() && (bytes[i] == b' ' || bytes[i] == b'\t') {
                i += 1;
            }
            if i >= bytes.len() {
                break;
            }
            let name_start = i;
            while i < bytes.len() && bytes[i] != b'=' && bytes[i] != b',' {
                i += 1;
            }
            let name = text[name_start..i].trim();
            if name.is_empty() {
                return Err(format!("empty attribute name at column {}", name_start + 1));
            }
            if i >= bytes.len() || bytes[i] != b'=' {
                return Err(format!("attribute {name} has no value"));
            }
            i += 1;
            let value_start = i;
            if i < bytes.len() && bytes[i] == b'"' {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += 1;
                }
                if i >= bytes.len() {
                    return Err(format!(
                        "attribute {name} has an unterminated quoted string"
                    ));
                }
                i += 1;
            }
            while i < bytes.len() && bytes[i] != b',' {
                i += 1;
            }
            pairs.push((name.to_owned(), text[value_start..i].trim().to_owned()));
            i += 1;
        }
        Ok(AttributeList { pairs })
    }

    /// The raw value of `name` as written (quotes included).
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `name` with surrounding quotes removed.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.raw(name).map(unquote)
    }

    /// The value of `name` as a decimal integer.
    pub fn get_u64(&self, name: &str) -> Option<u64> {
        self.get(name)?.trim().parse().ok()
    }

    /// The value of `name` as a decimal floating-point number.
    pub fn get_f64(&self, name: &str) -> Option<f64> {
        // A stray trailing quote (`DURATION=14.666000"`) is seen in the wild; read the number anyway.
        self.get(name)?
            .trim()
            .trim_matches('"')
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())
    }

    /// The value of `name` as a decimal resolution `WIDTHxHEIGHT`.
    pub fn get_resolution(&self, name: &str) -> Option<(u32, u32)> {
        let (w, h) = self.get(name)?.split_once(['x', 'X'])?;
        Some((w.trim().parse().ok()?, h.trim().parse().ok()?))
    }

    /// Sets `name` to a raw value (written as given), replacing an existing one in place.
    pub fn set_raw(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self.pairs.iter_mut().find(|(n, _)| n == name) {
            Some(pair) => pair.1 = value,
            None => self.pairs.push((name.to_owned(), value)),
        }
    }

    /// Sets `name` to a quoted string.
    pub fn set_quoted(&mut self, name: &str, value: &str) {
        self.set_raw(name, format!("\"{value}\""));
    }

    /// Removes `name`.
    pub fn remove(&mut self, name: &str) {
        self.pairs.retain(|(n, _)| n != name);
    }

    /// The pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

impl fmt::Display for AttributeList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (name, value)) in self.pairs.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{name}={value}")?;
        }
        Ok(())
    }
}

fn unquote(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_strings_may_hold_commas_and_equals() {
        let a = AttributeList::parse(
            r#"BANDWIDTH=1280000,CODECS="avc1.4d401f,mp4a.40.2",NAME="a=b",RESOLUTION=640x360"#,
        )
        .unwrap();
        assert_eq!(a.get_u64("BANDWIDTH"), Some(1_280_000));
        assert_eq!(a.get("CODECS"), Some("avc1.4d401f,mp4a.40.2"));
        assert_eq!(a.get("NAME"), Some("a=b"));
        assert_eq!(a.get_resolution("RESOLUTION"), Some((640, 360)));
        assert_eq!(
            a.to_string(),
            r#"BANDWIDTH=1280000,CODECS="avc1.4d401f,mp4a.40.2",NAME="a=b",RESOLUTION=640x360"#
        );
    }

    #[test]
    fn hex_and_float_values_are_kept_verbatim() {
        let a = AttributeList::parse("SCTE35-OUT=0xFC30,PLANNED-DURATION=30.000, X-CUSTOM=abc")
            .unwrap();
        assert_eq!(a.raw("SCTE35-OUT"), Some("0xFC30"));
        assert_eq!(a.get_f64("PLANNED-DURATION"), Some(30.0));
        assert_eq!(a.get("X-CUSTOM"), Some("abc"));
    }

    #[test]
    fn malformed_lists_are_rejected_with_a_reason() {
        assert!(
            AttributeList::parse(r#"URI="unterminated"#)
                .unwrap_err()
                .contains("unterminated")
        );
        assert!(
            AttributeList::parse("NOVALUE")
                .unwrap_err()
                .contains("no value")
        );
        assert!(
            AttributeList::parse("=x")
                .unwrap_err()
                .contains("empty attribute name")
        );
        assert!(AttributeList::parse("").unwrap().is_empty());
        assert_eq!(AttributeList::parse("A=1,").unwrap().get_u64("A"), Some(1));
    }
}
