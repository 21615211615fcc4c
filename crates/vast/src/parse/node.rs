//! A cursor over the element tree that knows its path, so that every error can say where it is
//! (`VAST/Ad[2]/InLine/Creatives/Creative[1]/Linear/Duration`), and typed accessors for attributes and text.

use std::fmt::Write as _;

use crate::error::{Error, Result, line_of, shorten};
use crate::model::UnknownElement;
use crate::xml::read::{Element, trim_xml};

/// The attribute naming where a carried unknown element came from.
pub(crate) const UNKNOWN_PARENT_ATTR: &str = "parent";

/// Elements that may repeat under their parent: their path segment always carries `[n]`.
const REPEATABLE: &[&str] = &[
    "Ad",
    "AdBreak",
    "BlockedAdCategories",
    "Category",
    "ClickTracking",
    "ClosedCaptionFile",
    "Companion",
    "CompanionClickTracking",
    "Creative",
    "CreativeExtension",
    "CustomClick",
    "Error",
    "ExecutableResource",
    "Extension",
    "HTMLResource",
    "IFrameResource",
    "Icon",
    "IconClickFallbackImage",
    "IconClickTracking",
    "IconViewTracking",
    "Impression",
    "InteractiveCreativeFile",
    "JavaScriptResource",
    "MediaFile",
    "Mezzanine",
    "NonLinear",
    "NonLinearClickTracking",
    "NotViewable",
    "StaticResource",
    "Tracking",
    "URL",
    "UniversalAdId",
    "Verification",
    "ViewUndetermined",
    "Viewable",
];

/// An element with its ancestry.
#[derive(Clone, Copy)]
pub(crate) struct Node<'p, 'a> {
    pub(crate) el: &'p Element<'a>,
    parent: Option<&'p Node<'p, 'a>>,
    /// The parent's children (the root alone for the root), to number this element on demand.
    siblings: &'p [Element<'a>],
    pos: usize,
    depth: usize,
    input: &'a str,
}

impl<'p, 'a> Node<'p, 'a> {
    pub(crate) fn root(el: &'p Element<'a>, input: &'a str) -> Node<'p, 'a> {
        Node {
            el,
            parent: None,
            siblings: std::slice::from_ref(el),
            pos: 0,
            depth: 0,
            input,
        }
    }

    /// The element's local name.
    pub(crate) fn name(&self) -> &'a str {
        self.el.name
    }

    /// Nesting depth (the root is 0).
    pub(crate) fn depth(&self) -> usize {
        self.depth
    }

    /// Child elements, in order.
    pub(crate) fn children<'s>(&'s self) -> impl Iterator<Item = Node<'s, 'a>> + 's {
        self.el
            .children
            .iter()
            .enumerate()
            .map(move |(pos, el)| Node {
                el,
                parent: Some(self),
                siblings: &self.el.children,
                pos,
                depth: self.depth + 1,
                input: self.input,
            })
    }

    fn segment(&self, out: &mut String) {
        out.push_str(self.el.name);
        let same = |e: &&Element<'_>| e.name == self.el.name;
        if REPEATABLE.contains(&self.el.name) || self.siblings.iter().filter(same).count() > 1 {
            let index = self.siblings.iter().take(self.pos).filter(same).count() + 1;
            let _ = write!(out, "[{index}]");
        }
    }

    /// The path from the root, e.g. `VAST/Ad[1]/InLine`.
    pub(crate) fn path(&self) -> String {
        self.path_from(0)
    }

    /// The path made of this element and its ancestors at `min_depth` or deeper (empty if this element is
    /// above `min_depth`).
    pub(crate) fn path_from(&self, min_depth: usize) -> String {
        let mut chain = Vec::new();
        let mut node = Some(self);
        while let Some(n) = node.filter(|n| n.depth >= min_depth) {
            chain.push(n);
            node = n.parent;
        }
        let mut out = String::new();
        for n in chain.iter().rev() {
            if !out.is_empty() {
                out.push('/');
            }
            n.segment(&mut out);
        }
        out
    }

    fn offset(&self) -> u64 {
        self.el.start as u64
    }

    fn line(&self) -> u64 {
        line_of(self.input, self.el.start)
    }

    /// The element, start tag to end tag, as written in the input.
    pub(crate) fn raw(&self) -> &'a str {
        self.input.get(self.el.start..self.el.end).unwrap_or("")
    }

    /// The content between the tags, as written, whitespace trimmed.
    pub(crate) fn inner_raw(&self) -> &'a str {
        trim_xml(
            self.input
                .get(self.el.inner_start..self.el.inner_end)
                .unwrap_or(""),
        )
    }

    /// Trimmed text content.
    pub(crate) fn text(&self) -> &str {
        &self.el.text
    }

    /// Trimmed text content, owned.
    pub(crate) fn string(&self) -> String {
        self.el.text.to_string()
    }

    /// Trimmed text content; `None` when empty.
    pub(crate) fn opt_string(&self) -> Option<String> {
        Some(self.string()).filter(|s| !s.is_empty())
    }

    /// The text parsed by `parse`, an error naming this element when it fails.
    pub(crate) fn text_as<T>(&self, parse: impl Fn(&str) -> Result<T, &'static str>) -> Result<T> {
        parse(self.text()).map_err(|reason| self.invalid("text", self.text(), reason))
    }

    /// A non-empty attribute.
    pub(crate) fn attr(&self, name: &str) -> Option<&str> {
        self.el.attr(name)
    }

    /// A non-empty attribute, owned.
    pub(crate) fn attr_string(&self, name: &str) -> Option<String> {
        self.attr(name).map(str::to_string)
    }

    /// A non-empty attribute parsed by `parse`; an error naming the attribute when it fails.
    pub(crate) fn attr_as<T>(
        &self,
        name: &str,
        parse: impl Fn(&str) -> Result<T, &'static str>,
    ) -> Result<Option<T>> {
        match self.attr(name) {
            None => Ok(None),
            Some(v) => parse(v)
                .map(Some)
                .map_err(|reason| self.invalid(&format!("@{name}"), v, reason)),
        }
    }

    pub(crate) fn invalid(&self, field: &str, value: &str, reason: &'static str) -> Error {
        Error::InvalidValue {
            path: self.path(),
            field: field.to_string(),
            value: shorten(value),
            reason,
            offset: self.offset(),
            line: self.line(),
        }
    }

    pub(crate) fn missing(&self, what: &'static str) -> Error {
        Error::Missing {
            path: self.path(),
            what,
            offset: self.offset(),
            line: self.line(),
        }
    }
}

/// Collects the unknown elements of one ad, with their place relative to the InLine/Wrapper.
pub(crate) struct Unknowns {
    pub(crate) list: Vec<UnknownElement>,
    /// Depth of the InLine/Wrapper element.
    body_depth: usize,
}

impl Unknowns {
    pub(crate) fn new(body_depth: usize) -> Unknowns {
        Unknowns {
            list: Vec::new(),
            body_depth,
        }
    }

    /// Keeps `node` (a child of something the reader knows) as raw XML.
    pub(crate) fn keep(&mut self, node: &Node<'_, '_>) {
        let parent = match node.parent {
            Some(p) if p.depth() >= self.body_depth => p.path_from(self.body_depth + 1),
            _ => "..".to_string(),
        };
        self.list.push(UnknownElement {
            parent,
            xml: node.raw().to_string(),
        });
    }
}

// Parsers for the value types attributes and texts hold.

pub(crate) fn parse_u64(s: &str) -> Result<u64, &'static str> {
    let s = trim_xml(s);
    let digits = s.strip_prefix('+').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("expected a non-negative integer");
    }
    digits.parse().map_err(|_| "integer too large")
}

pub(crate) fn parse_bool(s: &str) -> Result<bool, &'static str> {
    match trim_xml(s) {
        "1" => Ok(true),
        "0" => Ok(false),
        v if v.eq_ignore_ascii_case("true") => Ok(true),
        v if v.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err("expected true, false, 1 or 0"),
    }
}
