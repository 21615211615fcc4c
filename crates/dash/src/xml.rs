//! A small owned XML element tree over quick-xml, and its writer: how the MPD reader walks a document and how
//! elements the model does not know (ContentProtection, Label, vendor extensions, the SCTE-35 payload of an
//! `Event`) survive a parse → write round trip.
//!
//! Names are kept qualified (`cenc:pssh`) and namespace declarations are kept as ordinary attributes on the
//! element that declares them, so a subtree written back means what it meant. Text and CDATA are one value
//! (XML 1.0 §2.7), trimmed of XML whitespace; whitespace-only text, comments, processing instructions and
//! the DOCTYPE are dropped. Nesting is limited to [`MAX_DEPTH`] so nothing recursive can exhaust the stack.

use std::borrow::Cow;

use quick_xml::XmlVersion;
use quick_xml::events::Event;

use crate::error::{Error, Result, line_of, snippet};

/// Deepest element nesting accepted; a real MPD needs about 8.
pub const MAX_DEPTH: usize = 64;

/// One element: qualified name, attributes in document order, and child nodes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct XmlElement {
    /// The qualified name as written, e.g. `ContentProtection` or `cenc:pssh`.
    pub name: String,
    /// Attributes (qualified name, unescaped value) in document order, namespace declarations included.
    pub attrs: Vec<(String, String)>,
    /// Child elements and text, in order.
    pub children: Vec<XmlNode>,
}

/// A child of an element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XmlNode {
    /// A child element.
    Element(XmlElement),
    /// Non-blank text (trimmed).
    Text(String),
}

impl XmlElement {
    /// An element with a name and nothing else.
    #[must_use]
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            attrs: Vec::new(),
            children: Vec::new(),
        }
    }

    /// The name without its namespace prefix.
    #[must_use]
    pub fn local_name(&self) -> &str {
        local(&self.name)
    }

    /// The value of attribute `name` (compared on the whole qualified name).
    #[must_use]
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Child elements in order.
    pub fn elements(&self) -> impl Iterator<Item = &XmlElement> {
        self.children.iter().filter_map(|c| match c {
            XmlNode::Element(e) => Some(e),
            XmlNode::Text(_) => None,
        })
    }

    /// The concatenated text children.
    #[must_use]
    pub fn text(&self) -> String {
        let mut out = String::new();
        for c in &self.children {
            if let XmlNode::Text(t) = c {
                out.push_str(t);
            }
        }
        out
    }

    /// Adds an attribute (builder style).
    #[must_use]
    pub fn with_attr(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.attrs.push((name.into(), value.into()));
        self
    }

    /// Adds an attribute when the value is present.
    pub fn push_attr_opt(&mut self, name: &str, value: Option<impl ToString>) {
        if let Some(v) = value {
            self.attrs.push((name.to_string(), v.to_string()));
        }
    }

    /// Adds a child element.
    pub fn push_element(&mut self, child: XmlElement) {
        self.children.push(XmlNode::Element(child));
    }
}

/// The part of a qualified name after its prefix.
pub(crate) fn local(name: &str) -> &str {
    name.rsplit(':').next().unwrap_or(name)
}

fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

fn xml_error(input: &str, offset: usize, reason: impl Into<String>) -> Error {
    Error::Xml {
        offset: offset as u64,
        line: line_of(input, offset),
        reason: reason.into(),
    }
}

struct Open {
    element: XmlElement,
    text: String,
}

impl Open {
    fn flush_text(&mut self) {
        let trimmed = self.text.trim_matches(is_xml_space);
        if !trimmed.is_empty() {
            self.element
                .children
                .push(XmlNode::Text(trimmed.to_string()));
        }
        self.text.clear();
    }
}

/// Reads `input` into its root element.
///
/// # Errors
/// [`Error::Xml`] when the input is not a well-formed document (or nests deeper than [`MAX_DEPTH`]).
pub fn read(input: &str) -> Result<XmlElement> {
    let mut reader = quick_xml::Reader::from_str(input);
    let mut stack: Vec<Open> = Vec::new();
    let mut root: Option<XmlElement> = None;
    loop {
        let before = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
        let event = reader.read_event().map_err(|e| {
            let at = usize::try_from(reader.error_position()).unwrap_or(usize::MAX);
            xml_error(input, at, e.to_string())
        })?;
        match event {
            Event::Start(ref start) | Event::Empty(ref start) => {
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
                let name = std::str::from_utf8(start.name().into_inner())
                    .map_err(|e| xml_error(input, before, e.to_string()))?
                    .to_string();
                let mut element = XmlElement::new(name);
                for attr in start.attributes() {
                    let attr = attr.map_err(|e| xml_error(input, before, e.to_string()))?;
                    let key = std::str::from_utf8(attr.key.into_inner())
                        .map_err(|e| xml_error(input, before, e.to_string()))?
                        .to_string();
                    let value = attr
                        .normalized_value(XmlVersion::Implicit1_0)
                        .map_err(|e| xml_error(input, before, format!("attribute {key}: {e}")))?;
                    if element.attrs.iter().any(|(k, _)| *k == key) {
                        return Err(xml_error(
                            input,
                            before,
                            format!("attribute {key} appears twice"),
                        ));
                    }
                    element.attrs.push((key, value.into_owned()));
                }
                if let Some(parent) = stack.last_mut() {
                    parent.flush_text();
                }
                if matches!(event, Event::Empty(_)) {
                    attach(&mut stack, &mut root, element);
                } else {
                    stack.push(Open {
                        element,
                        text: String::new(),
                    });
                }
            }
            Event::End(_) => {
                let mut open = stack
                    .pop()
                    .ok_or_else(|| xml_error(input, before, "end tag without a start tag"))?;
                open.flush_text();
                attach(&mut stack, &mut root, open.element);
            }
            Event::Text(t) => {
                let text = t
                    .xml10_content()
                    .map_err(|e| xml_error(input, before, e.to_string()))?;
                push_text(input, &mut stack, before, &text)?;
            }
            Event::CData(c) => {
                let text = c
                    .xml10_content()
                    .map_err(|e| xml_error(input, before, e.to_string()))?;
                push_text(input, &mut stack, before, &text)?;
            }
            Event::GeneralRef(r) => {
                let name = r
                    .decode()
                    .map_err(|e| xml_error(input, before, e.to_string()))?;
                let resolved: Cow<'_, str> = match r.resolve_char_ref() {
                    Ok(Some(c)) => Cow::Owned(c.to_string()),
                    Err(_) => {
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
                push_text(input, &mut stack, before, &resolved)?;
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

fn push_text(input: &str, stack: &mut [Open], at: usize, text: &str) -> Result<()> {
    match stack.last_mut() {
        Some(open) => {
            open.text.push_str(text);
            Ok(())
        }
        None if text.trim_matches(is_xml_space).is_empty() => Ok(()),
        None => Err(xml_error(
            input,
            at,
            format!("text outside the root element: {:?}", snippet(text)),
        )),
    }
}

fn attach(stack: &mut [Open], root: &mut Option<XmlElement>, element: XmlElement) {
    match stack.last_mut() {
        Some(parent) => parent.element.children.push(XmlNode::Element(element)),
        None => *root = Some(element),
    }
}

/// Writes `root` as a document with an XML declaration, indented by two spaces.
#[must_use]
pub fn write_document(root: &XmlElement) -> String {
    let mut out = String::with_capacity(4096);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    write_element(&mut out, root, 0);
    out.push('\n');
    out
}

fn write_element(out: &mut String, el: &XmlElement, depth: usize) {
    out.push('<');
    out.push_str(&el.name);
    for (k, v) in &el.attrs {
        out.push(' ');
        out.push_str(k);
        out.push_str("=\"");
        escape_into(out, v, true);
        out.push('"');
    }
    if el.children.is_empty() {
        out.push_str("/>");
        return;
    }
    out.push('>');
    let only_text = el.children.iter().all(|c| matches!(c, XmlNode::Text(_)));
    if only_text {
        for c in &el.children {
            if let XmlNode::Text(t) = c {
                escape_into(out, t, false);
            }
        }
    } else {
        for c in &el.children {
            out.push('\n');
            for _ in 0..=depth {
                out.push_str("  ");
            }
            match c {
                XmlNode::Element(child) => write_element(out, child, depth + 1),
                XmlNode::Text(t) => escape_into(out, t, false),
            }
        }
        out.push('\n');
        for _ in 0..depth {
            out.push_str("  ");
        }
    }
    out.push_str("</");
    out.push_str(&el.name);
    out.push('>');
}

/// Escapes text or an attribute value. Characters a reader would normalise away (a literal CR anywhere, tab
/// and LF in attribute values, XML 1.0 §2.11 and §3.3.3) are written as character references so they read
/// back unchanged.
fn escape_into(out: &mut String, s: &str, attribute: bool) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attribute => out.push_str("&quot;"),
            '\r' => out.push_str("&#13;"),
            '\n' if attribute => out.push_str("&#10;"),
            '\t' if attribute => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_entities_and_cdata_read_as_one_trimmed_value() {
        let root = read("<a>\n <b> x&amp;<![CDATA[<y>]]> </b></a>").expect("well-formed");
        let b = root.elements().next().expect("child");
        assert_eq!(b.text(), "x&<y>");
    }

    #[test]
    fn written_tree_reads_back_equal() {
        let input = r#"<r xmlns:c="urn:c" a="1&amp;2"><c:x k="v&#10;w">t</c:x><y/>tail</r>"#;
        let root = read(input).expect("well-formed");
        let again = read(&write_document(&root)).expect("written is well-formed");
        assert_eq!(again, root);
        assert_eq!(root.attr("xmlns:c"), Some("urn:c"));
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
            "<a k='1' k='2'/>",
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
}
