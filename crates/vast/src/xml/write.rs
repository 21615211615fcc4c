//! An indenting XML writer that refuses what XML 1.0 cannot carry and names the element path when it does.
//!
//! Text goes out as CDATA when it holds `&` or `<` (URIs with query strings, HTML snippets: the form VAST
//! documents use), otherwise escaped; a `\r` is written as `&#13;` outside CDATA because a reader would turn
//! a literal one into `\n` (XML 1.0 §2.11). Raw fragments (extensions, unknown elements) are checked to be
//! well-formed elements before they are copied in.

use std::fmt::Write as _;

use quick_xml::events::Event;

use super::read::{is_name, is_xml_char, trim_xml};
use crate::error::{Error, Result};

/// Builds a document; every `open` is matched by a `close`.
pub(crate) struct XmlWriter {
    out: String,
    /// Open elements as (name, 1-based index among repeated siblings) for error paths.
    stack: Vec<(&'static str, Option<usize>)>,
}

impl XmlWriter {
    pub(crate) fn new(capacity: usize) -> XmlWriter {
        let mut out = String::with_capacity(capacity);
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        XmlWriter {
            out,
            stack: Vec::new(),
        }
    }

    pub(crate) fn finish(mut self) -> String {
        self.out.push('\n');
        self.out
    }

    /// The path of the element being written, then `child` if given.
    pub(crate) fn path(&self, child: Option<&str>) -> String {
        let mut path = String::new();
        for (i, (name, index)) in self.stack.iter().enumerate() {
            if i > 0 {
                path.push('/');
            }
            path.push_str(name);
            if let Some(index) = index {
                let _ = write!(path, "[{index}]");
            }
        }
        if let Some(child) = child {
            if !path.is_empty() {
                path.push('/');
            }
            path.push_str(child);
        }
        path
    }

    /// An error about `child` of the element being written (or the element itself).
    pub(crate) fn unwritable(&self, child: Option<&str>, reason: impl Into<String>) -> Error {
        Error::Unwritable {
            path: self.path(child),
            reason: reason.into(),
        }
    }

    fn indent(&mut self) {
        self.out.push('\n');
        for _ in 0..self.stack.len() {
            self.out.push_str("  ");
        }
    }

    fn start_tag(
        &mut self,
        name: &'static str,
        index: Option<usize>,
        attrs: &[(&str, Option<&str>)],
    ) -> Result<()> {
        if !self.stack.is_empty() || !self.out.ends_with('\n') {
            self.indent();
        }
        self.out.push('<');
        self.out.push_str(name);
        // Pushed before the attributes so that an error in one names this element.
        self.stack.push((name, index));
        for (key, value) in attrs {
            if let Some(value) = value {
                self.out.push(' ');
                self.out.push_str(key);
                self.out.push_str("=\"");
                self.escape(value, true)?;
                self.out.push('"');
            }
        }
        Ok(())
    }

    /// Opens `name` (with `index` when it repeats) and its attributes; `None` values are left out.
    pub(crate) fn open(
        &mut self,
        name: &'static str,
        index: Option<usize>,
        attrs: &[(&str, Option<&str>)],
    ) -> Result<()> {
        self.start_tag(name, index, attrs)?;
        self.out.push('>');
        Ok(())
    }

    /// Closes the element opened last.
    pub(crate) fn close(&mut self) {
        if let Some((name, _)) = self.stack.pop() {
            self.indent();
            self.out.push_str("</");
            self.out.push_str(name);
            self.out.push('>');
        }
    }

    /// An element holding only `text`.
    pub(crate) fn text_element(
        &mut self,
        name: &'static str,
        index: Option<usize>,
        attrs: &[(&str, Option<&str>)],
        text: &str,
    ) -> Result<()> {
        self.start_tag(name, index, attrs)?;
        if text.is_empty() {
            self.out.push_str("/>");
        } else {
            self.out.push('>');
            self.text(text)?;
            self.out.push_str("</");
            self.out.push_str(name);
            self.out.push('>');
        }
        self.stack.pop();
        Ok(())
    }

    fn text(&mut self, text: &str) -> Result<()> {
        if (text.contains('&') || text.contains('<')) && !text.contains('\r') {
            if let Some(c) = text.chars().find(|&c| !is_xml_char(c)) {
                return Err(self.unwritable(
                    None,
                    format!("character U+{:04X} is not allowed in XML", c as u32),
                ));
            }
            self.out.push_str("<![CDATA[");
            // "]]>" cannot occur inside CDATA: end the section between "]]" and ">".
            self.out.push_str(&text.replace("]]>", "]]]]><![CDATA[>"));
            self.out.push_str("]]>");
            Ok(())
        } else {
            self.escape(text, false)
        }
    }

    fn escape(&mut self, value: &str, attribute: bool) -> Result<()> {
        // Runs of characters that need no escaping are copied whole: URLs and ids are almost all of a
        // document's text, and a pod's tracking URLs are most of its bytes.
        let mut copied = 0;
        for (i, c) in value.char_indices() {
            let replacement = match c {
                '&' => "&amp;",
                '<' => "&lt;",
                '>' => "&gt;",
                '"' if attribute => "&quot;",
                '\r' => "&#13;",
                '\t' if attribute => "&#9;",
                '\n' if attribute => "&#10;",
                c if is_xml_char(c) => continue,
                c => {
                    return Err(self.unwritable(
                        None,
                        format!("character U+{:04X} is not allowed in XML", c as u32),
                    ));
                }
            };
            self.out.push_str(value.get(copied..i).unwrap_or_default());
            self.out.push_str(replacement);
            copied = i + c.len_utf8();
        }
        self.out.push_str(value.get(copied..).unwrap_or_default());
        Ok(())
    }

    /// Copies in raw XML that must be a sequence of elements (`single`: exactly one), each well-formed.
    pub(crate) fn raw(&mut self, xml: &str, single: bool) -> Result<()> {
        check_fragment(xml, single).map_err(|reason| self.unwritable(None, reason))?;
        let trimmed = trim_xml(xml);
        if !trimmed.is_empty() {
            self.indent();
            self.out.push_str(trimmed);
        }
        Ok(())
    }
}

/// Checks that `xml` is zero or more well-formed elements (exactly one if `single`) with nothing but
/// whitespace, comments and processing instructions between them.
pub(crate) fn check_fragment(xml: &str, single: bool) -> std::result::Result<(), String> {
    if let Some(c) = xml.chars().find(|&c| !is_xml_char(c)) {
        return Err(format!(
            "character U+{:04X} is not allowed in XML",
            c as u32
        ));
    }
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut depth = 0usize;
    let mut elements = 0usize;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("raw XML is not well-formed: {e}"))?;
        if let Event::Start(e) | Event::Empty(e) = &event {
            if !start_tag_ok(e) {
                return Err("raw XML has a bad name or a '<' in an attribute value".into());
            }
        }
        match event {
            Event::Start(_) => {
                if depth == 0 {
                    elements += 1;
                }
                depth += 1;
            }
            Event::Empty(_) if depth == 0 => elements += 1,
            Event::End(_) => depth = depth.saturating_sub(1),
            Event::Text(t) if t.windows(3).any(|w| w == b"]]>") => {
                return Err("\"]]>\" is not allowed in text".into());
            }
            Event::Text(t) if depth == 0 => {
                let text = t.decode().map_err(|e| e.to_string())?;
                if !trim_xml(&text).is_empty() {
                    return Err(
                        "raw XML has text outside any element (VAST 4.2 allows only elements here)"
                            .into(),
                    );
                }
            }
            Event::CData(_) | Event::GeneralRef(_) if depth == 0 => {
                return Err(
                    "raw XML has text outside any element (VAST 4.2 allows only elements here)"
                        .into(),
                );
            }
            Event::Decl(_) | Event::DocType(_) => {
                return Err("raw XML may not hold a declaration or DOCTYPE".into());
            }
            Event::GeneralRef(r) => {
                let name = r.decode().map_err(|e| e.to_string())?;
                let known = match r.resolve_char_ref() {
                    Ok(Some(c)) => is_xml_char(c),
                    Ok(None) => quick_xml::escape::resolve_xml_entity(&name).is_some(),
                    Err(_) => false,
                };
                if !known {
                    return Err(format!(
                        "raw XML uses an undefined entity or bad reference &{name};"
                    ));
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if depth != 0 {
        return Err("raw XML has an unclosed element".into());
    }
    if single && elements != 1 {
        return Err(format!("expected exactly one element, found {elements}"));
    }
    Ok(())
}

fn start_tag_ok(e: &quick_xml::events::BytesStart<'_>) -> bool {
    let name_ok = std::str::from_utf8(e.name().as_ref()).is_ok_and(is_name);
    name_ok
        && e.attributes().all(|a| {
            a.is_ok_and(|a| {
                std::str::from_utf8(a.key.as_ref()).is_ok_and(is_name) && !a.value.contains(&b'<')
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_with_markup_characters_goes_out_as_cdata_and_splits_the_terminator() {
        let mut w = XmlWriter::new(0);
        w.text_element("A", None, &[], "a?b=1&c=]]>")
            .expect("writable");
        assert!(
            w.finish()
                .contains("<A><![CDATA[a?b=1&c=]]]]><![CDATA[>]]></A>")
        );
    }

    #[test]
    fn attributes_escape_quotes_and_whitespace_controls() {
        let mut w = XmlWriter::new(0);
        w.text_element("A", None, &[("x", Some("\"<\t\n"))], "")
            .expect("writable");
        assert!(w.finish().contains(r#"<A x="&quot;&lt;&#9;&#10;"/>"#));
    }

    #[test]
    fn plain_runs_between_escapes_are_kept_whole_with_multibyte_characters() {
        let mut w = XmlWriter::new(0);
        w.text_element("A", None, &[("x", Some("é&ü<z\"ß"))], "")
            .expect("writable");
        assert!(w.finish().contains(r#"<A x="é&amp;ü&lt;z&quot;ß"/>"#));
    }

    #[test]
    fn characters_xml_cannot_carry_are_refused_with_the_path() {
        let mut w = XmlWriter::new(0);
        w.open("VAST", None, &[]).expect("writable");
        let err = w
            .text_element("Error", Some(2), &[], "a\u{1}")
            .expect_err("U+0001 is not XML");
        assert!(
            matches!(err, Error::Unwritable { ref path, .. } if path == "VAST/Error[2]"),
            "{err}"
        );
    }

    #[test]
    fn fragments_must_be_elements() {
        assert!(check_fragment("<a/><b>x</b>", false).is_ok());
        assert!(check_fragment("", false).is_ok());
        assert!(check_fragment("text", false).is_err());
        assert!(check_fragment("<a>", false).is_err());
        assert!(check_fragment("<a/><b/>", true).is_err());
        assert!(check_fragment("<a/>", true).is_ok());
        assert!(check_fragment("<a>]]></a>", false).is_err());
        assert!(check_fragment("<a b='<'/>", false).is_err());
        assert!(check_fragment("<a b='1' b='2'/>", false).is_err());
        assert!(check_fragment("<9/>", false).is_err());
    }
}
