//! A small element tree over quick-xml events, borrowing from the input: what the VAST and VMAP readers walk.
//!
//! Tolerance lives here: CDATA and text are one value (XML 1.0 §2.7 makes them equivalent), whitespace
//! around values is dropped, namespace prefixes are ignored (VAST is read by local name, as players do),
//! comments, processing instructions and DOCTYPE are skipped. Strictness too: the input must be well-formed
//! (matching tags, one root, quoted and unique attributes, only the five predefined entities, only
//! characters XML 1.0 allows), and nest no deeper than [`MAX_DEPTH`] so that nothing recursive can blow the
//! stack.

use std::borrow::Cow;

use quick_xml::XmlVersion;
use quick_xml::events::Event;
use quick_xml::events::attributes::Attributes;

use crate::error::{Error, Result, line_of};

/// Deepest element nesting accepted; real VAST needs about 12.
pub(crate) const MAX_DEPTH: usize = 64;

/// One element: local name, attributes, trimmed text, children, and where it sits in the input.
#[derive(Debug)]
pub(crate) struct Element<'a> {
    /// The name without its namespace prefix.
    pub(crate) name: &'a str,
    /// Attributes as (qualified name, normalised value); namespace declarations left out.
    pub(crate) attrs: Vec<(&'a str, Cow<'a, str>)>,
    /// Child elements in order.
    pub(crate) children: Vec<Element<'a>>,
    /// Direct text and CDATA, concatenated, XML whitespace trimmed.
    pub(crate) text: Cow<'a, str>,
    /// Byte offset of the start tag's `<`.
    pub(crate) start: usize,
    /// Byte offset just past the end tag.
    pub(crate) end: usize,
    /// Byte range of the content between the tags.
    pub(crate) inner_start: usize,
    /// End of the content.
    pub(crate) inner_end: usize,
}

impl<'a> Element<'a> {
    /// The value of the unprefixed attribute `name`; an empty value counts as absent.
    pub(crate) fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_ref())
            .filter(|v| !v.is_empty())
    }
}

/// Whitespace as XML defines it (space, tab, CR, LF): only this is trimmed, never NBSP and friends.
pub(crate) fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

pub(crate) fn trim_xml(s: &str) -> &str {
    s.trim_matches(is_xml_space)
}

/// True for characters XML 1.0 §2.2 allows in a document.
pub(crate) fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// XML 1.0 (5th edition) §2.3 `Name`: a `NameStartChar` then `NameChar`s.
pub(crate) fn is_name(name: &str) -> bool {
    fn start(c: char) -> bool {
        matches!(c, ':' | 'A'..='Z' | '_' | 'a'..='z' | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}'
            | '\u{F8}'..='\u{2FF}' | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}' | '\u{200C}'..='\u{200D}'
            | '\u{2070}'..='\u{218F}' | '\u{2C00}'..='\u{2FEF}' | '\u{3001}'..='\u{D7FF}'
            | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}' | '\u{10000}'..='\u{EFFFF}')
    }
    fn rest(c: char) -> bool {
        start(c)
            || matches!(c, '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
    }
    let bytes = name.as_bytes();
    // Nearly every name is ASCII: check those bytes without decoding characters.
    if name.is_ascii() {
        let ascii_start = |b: u8| b.is_ascii_alphabetic() || b == b'_' || b == b':';
        return bytes.first().is_some_and(|&b| ascii_start(b))
            && bytes
                .iter()
                .all(|&b| ascii_start(b) || b.is_ascii_digit() || b == b'-' || b == b'.');
    }
    let mut chars = name.chars();
    chars.next().is_some_and(start) && chars.all(rest)
}

struct Open<'a> {
    element: Element<'a>,
    /// Whitespace-only text seen after some text, kept until more text shows it was inside the value.
    pending: Cow<'a, str>,
}

impl<'a> Open<'a> {
    fn push_text(&mut self, piece: Cow<'a, str>) {
        let text = &mut self.element.text;
        if trim_xml(&piece).is_empty() {
            if !text.is_empty() {
                self.pending.to_mut().push_str(&piece);
            }
        } else if text.is_empty() {
            *text = piece;
        } else {
            let owned = text.to_mut();
            owned.push_str(&self.pending);
            owned.push_str(&piece);
            self.pending = Cow::Borrowed("");
        }
    }

    fn finish(mut self, inner_end: usize, end: usize) -> Element<'a> {
        self.element.text = match self.element.text {
            Cow::Borrowed(s) => Cow::Borrowed(trim_xml(s)),
            Cow::Owned(s) => {
                let trimmed = trim_xml(&s);
                if trimmed.len() == s.len() {
                    Cow::Owned(s)
                } else {
                    Cow::Owned(trimmed.to_string())
                }
            }
        };
        self.element.inner_end = inner_end;
        self.element.end = end;
        self.element
    }
}

fn xml_error(input: &str, offset: usize, reason: impl Into<String>) -> Error {
    Error::Xml {
        offset: offset as u64,
        line: line_of(input, offset),
        reason: reason.into(),
    }
}

/// Reads `input` into its root element.
pub(crate) fn read(input: &str) -> Result<Element<'_>> {
    if let Some((i, c)) = find_illegal_char(input) {
        return Err(xml_error(
            input,
            i,
            format!("character U+{c:04X} is not allowed in XML"),
        ));
    }
    let mut reader = quick_xml::Reader::from_str(input);
    let mut stack: Vec<Open<'_>> = Vec::new();
    let mut root: Option<Element<'_>> = None;
    loop {
        let before = reader.buffer_position() as usize;
        let event = reader.read_event().map_err(|e| {
            let at = reader.error_position() as usize;
            xml_error(input, at, e.to_string())
        })?;
        let after = reader.buffer_position() as usize;
        match event {
            Event::Start(_) | Event::Empty(_) => {
                let is_empty = matches!(event, Event::Empty(_));
                if root.is_some() {
                    return Err(xml_error(input, before, "content after the root element"));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(xml_error(
                        input,
                        before,
                        format!("elements nest deeper than {MAX_DEPTH}"),
                    ));
                }
                let element = start_element(input, before, after, is_empty)?;
                if is_empty {
                    attach(&mut stack, &mut root, element);
                } else {
                    stack.push(Open {
                        element,
                        pending: Cow::Borrowed(""),
                    });
                }
            }
            Event::End(_) => {
                let open = stack
                    .pop()
                    .ok_or_else(|| xml_error(input, before, "end tag without a start tag"))?;
                let element = open.finish(before, after);
                attach(&mut stack, &mut root, element);
            }
            Event::Text(t) => {
                if t.windows(3).any(|w| w == b"]]>") {
                    return Err(xml_error(input, before, "\"]]>\" is not allowed in text"));
                }
                let text = t
                    .xml10_content()
                    .map_err(|e| xml_error(input, before, e.to_string()))?;
                push_text(input, &mut stack, before, text)?;
            }
            Event::CData(c) => {
                let text = c
                    .xml10_content()
                    .map_err(|e| xml_error(input, before, e.to_string()))?;
                push_text(input, &mut stack, before, text)?;
            }
            Event::GeneralRef(r) => {
                let name = r
                    .decode()
                    .map_err(|e| xml_error(input, before, e.to_string()))?;
                let resolved: Cow<'_, str> = match r.resolve_char_ref() {
                    Ok(Some(c)) if is_xml_char(c) => Cow::Owned(c.to_string()),
                    Ok(Some(_)) | Err(_) => {
                        return Err(xml_error(
                            input,
                            before,
                            format!("bad character reference &{name};"),
                        ));
                    }
                    Ok(None) => match quick_xml::escape::resolve_xml_entity(&name) {
                        Some(s) => Cow::Borrowed(s),
                        None => {
                            return Err(xml_error(
                                input,
                                before,
                                format!("undefined entity &{name};"),
                            ));
                        }
                    },
                };
                push_text(input, &mut stack, before, resolved)?;
            }
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
            Event::Eof => break,
        }
    }
    if let Some(open) = stack.last() {
        return Err(xml_error(
            input,
            input.len(),
            format!("<{}> is never closed", open.element.name),
        ));
    }
    root.ok_or_else(|| xml_error(input, input.len(), "no root element"))
}

/// The first character XML 1.0 forbids, by byte scan: C0 controls other than tab, LF and CR, and
/// U+FFFE/U+FFFF (surrogates cannot occur in a `str`).
fn find_illegal_char(input: &str) -> Option<(usize, u32)> {
    let bytes = input.as_bytes();
    // The common case, in branch-free chunks the compiler vectorises: no control character and no 0xEF
    // (the lead byte of U+F000..U+FFFF, which holds the two non-characters).
    let clean = bytes.chunks(64).all(|chunk| {
        let mut suspect = false;
        for &b in chunk {
            suspect |= (b < 0x20) & (b != b'\t') & (b != b'\n') & (b != b'\r') | (b == 0xEF);
        }
        !suspect
    });
    if clean {
        return None;
    }
    bytes.iter().enumerate().find_map(|(i, &b)| {
        if b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r') {
            return Some((i, u32::from(b)));
        }
        if b == 0xEF && bytes.get(i + 1) == Some(&0xBF) {
            match bytes.get(i + 2) {
                Some(0xBE) => return Some((i, 0xFFFE)),
                Some(0xBF) => return Some((i, 0xFFFF)),
                _ => {}
            }
        }
        None
    })
}

fn push_text<'a>(
    input: &'a str,
    stack: &mut [Open<'a>],
    at: usize,
    text: Cow<'a, str>,
) -> Result<()> {
    match stack.last_mut() {
        Some(open) => {
            open.push_text(text);
            Ok(())
        }
        None if trim_xml(&text).is_empty() => Ok(()),
        None => Err(xml_error(input, at, "text outside the root element")),
    }
}

fn attach<'a>(stack: &mut [Open<'a>], root: &mut Option<Element<'a>>, element: Element<'a>) {
    match stack.last_mut() {
        Some(parent) => parent.element.children.push(element),
        None => *root = Some(element),
    }
}

/// Builds an element from its start tag, found between `before` and `after`.
fn start_element(input: &str, before: usize, after: usize, is_empty: bool) -> Result<Element<'_>> {
    let region = input.get(before..after).unwrap_or("");
    let start = before + region.find('<').unwrap_or(0);
    let close = if is_empty { 2 } else { 1 };
    let tag = input
        .get(start + 1..after.saturating_sub(close))
        .ok_or_else(|| xml_error(input, start, "malformed start tag"))?;
    let name_len = tag
        .find(|c: char| is_xml_space(c) || c == '/')
        .unwrap_or(tag.len());
    let qname = tag.get(..name_len).unwrap_or("");
    if !is_name(qname) {
        return Err(xml_error(
            input,
            start,
            format!("{qname:?} is not an XML name"),
        ));
    }
    let name = qname.rsplit(':').next().unwrap_or(qname);
    let mut attrs = Vec::new();
    for attr in Attributes::new(tag, name_len) {
        let attr = attr.map_err(|e| xml_error(input, start, e.to_string()))?;
        // The key borrows from `tag`: take the same bytes as a `str` slice instead of validating UTF-8 again.
        let key_bytes = attr.key.into_inner();
        let key_at = (key_bytes.as_ptr() as usize).wrapping_sub(tag.as_ptr() as usize);
        let key = tag
            .get(key_at..key_at + key_bytes.len())
            .ok_or_else(|| xml_error(input, start, "malformed attribute"))?;
        if !is_name(key) {
            return Err(xml_error(
                input,
                start,
                format!("{key:?} is not an XML name"),
            ));
        }
        if attr.value.contains(&b'<') {
            return Err(xml_error(
                input,
                start,
                format!("attribute {key}: '<' is not allowed in a value"),
            ));
        }
        if key == "xmlns" || key.starts_with("xmlns:") {
            continue;
        }
        let value = attr
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|e| xml_error(input, start, format!("attribute {key}: {e}")))?;
        attrs.push((key, value));
    }
    Ok(Element {
        name,
        attrs,
        children: Vec::new(),
        text: Cow::Borrowed(""),
        start,
        end: after,
        inner_start: after,
        inner_end: after,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cdata_and_text_read_the_same_and_are_trimmed() {
        let root =
            read("<a> <b>\n  <![CDATA[ x&y ]]>\n </b><c> x&amp;y </c></a>").expect("well-formed");
        assert_eq!(root.children[0].text, "x&y");
        assert_eq!(root.children[1].text, "x&y");
    }

    #[test]
    fn text_split_by_cdata_keeps_inner_whitespace() {
        let root = read("<a><![CDATA[x]]> <![CDATA[y]]></a>").expect("well-formed");
        assert_eq!(root.text, "x y");
    }

    #[test]
    fn prefixes_are_dropped_and_namespace_declarations_skipped() {
        let root = read(r#"<v:VAST xmlns:v="http://www.iab.com/VAST" version="4.2"/>"#)
            .expect("well-formed");
        assert_eq!(root.name, "VAST");
        assert_eq!(root.attrs.len(), 1);
        assert_eq!(root.attr("version"), Some("4.2"));
    }

    #[test]
    fn malformed_input_is_an_error_with_a_line() {
        for bad in [
            "<a>",
            "<a></b>",
            "<a x=1/>",
            "<a>&nbsp;</a>",
            "<a/><b/>",
            "text",
            "",
            "<a>\u{1}</a>",
            "<a>&#1;</a>",
            "<a>x]]>y</a>",
            "<a k=\"<\"/>",
            "<1a/>",
            "<a -k=\"v\"/>",
            "<a\u{D7}/>",
        ] {
            assert!(matches!(read(bad), Err(Error::Xml { .. })), "{bad:?}");
        }
        let Err(Error::Xml { line, .. }) = read("<a>\n<b>\n</c></a>") else {
            panic!("mismatched end tag must fail");
        };
        assert_eq!(line, 3);
    }

    #[test]
    fn deep_nesting_is_refused() {
        let deep = "<a>".repeat(MAX_DEPTH + 1) + &"</a>".repeat(MAX_DEPTH + 1);
        assert!(matches!(read(&deep), Err(Error::Xml { .. })));
    }

    #[test]
    fn spans_cover_the_element_and_its_content() {
        let input = "<?xml version=\"1.0\"?>\n<r><x a='1'><y/></x></r>";
        let root = read(input).expect("well-formed");
        let x = &root.children[0];
        assert_eq!(&input[x.start..x.end], "<x a='1'><y/></x>");
        assert_eq!(&input[x.inner_start..x.inner_end], "<y/>");
    }
}
