//! A cursor over the element tree that knows its path, so that every error can say where it is
//! (`VAST/Ad[2]/InLine/Creatives/Creative[1]/Linear/Duration`), and typed accessors for attributes and text.

use std::fmt::Write as _;

use super::lenient::ReadCtx;
use crate::error::{Error, Result, line_of, shorten};
use crate::model::UnknownElement;
use crate::time::Time;
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
    /// Strict or lenient reading, and where warnings and dropped ads go.
    ctx: &'p ReadCtx,
}

impl<'p, 'a> Node<'p, 'a> {
    pub(crate) fn root(el: &'p Element<'a>, input: &'a str, ctx: &'p ReadCtx) -> Node<'p, 'a> {
        Node {
            el,
            parent: None,
            siblings: std::slice::from_ref(el),
            pos: 0,
            depth: 0,
            input,
            ctx,
        }
    }

    /// The reading context.
    pub(crate) fn ctx(&self) -> &'p ReadCtx {
        self.ctx
    }

    /// Whether a bad value is read leniently (with a warning) instead of failing.
    pub(crate) fn lenient(&self) -> bool {
        self.ctx.lenient()
    }

    /// Records a warning about this element (lenient reading only keeps them).
    pub(crate) fn warn(&self, message: impl FnOnce() -> String) {
        self.ctx.warn(|| (self.path(), self.line(), message()));
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
                ctx: self.ctx,
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

    pub(crate) fn line(&self) -> u64 {
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

    /// The text parsed by `parse` when it is optional: a bad value fails strict reading and is read as
    /// absent, with a warning, by lenient reading.
    pub(crate) fn optional_text_as<T>(
        &self,
        parse: impl Fn(&str) -> Result<T, &'static str>,
    ) -> Result<Option<T>> {
        match parse(self.text()) {
            Ok(v) => Ok(Some(v)),
            Err(reason) if self.lenient() => {
                self.warn(|| format!("{:?} ignored: {reason}", shorten(self.text())));
                Ok(None)
            }
            Err(reason) => Err(self.invalid("text", self.text(), reason)),
        }
    }

    /// A `Duration`: `HH:MM:SS[.mmm]`; lenient reading also takes a number of seconds (`30`, `15.5`) and
    /// one-digit minutes or seconds (`0:0:15`), with a warning, as vast-client-js and rs/vast do. What
    /// neither form reads (`undefined`, empty) fails: a linear ad without a length cannot be placed.
    pub(crate) fn duration(&self) -> Result<Time> {
        let text = self.text();
        match Time::parse(text) {
            Ok(t) => Ok(t),
            Err(reason) => match lenient_time(text).filter(|_| self.lenient()) {
                Some(t) => {
                    self.warn(|| format!("{:?} read as {t}", shorten(text)));
                    Ok(t)
                }
                None => Err(self.invalid("text", text, reason)),
            },
        }
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
            Some(v) => match parse(v) {
                Ok(v) => Ok(Some(v)),
                // A bad optional attribute costs the ad nothing it needs: read as absent.
                Err(reason) if self.lenient() => {
                    self.warn(|| format!("@{name} {:?} ignored: {reason}", shorten(v)));
                    Ok(None)
                }
                Err(reason) => Err(self.invalid(&format!("@{name}"), v, reason)),
            },
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

/// The forms of a time that real ad servers send besides `HH:MM:SS[.mmm]`: whole or decimal seconds
/// (`30`, `15.5`) and a clock with one-digit fields (`0:0:15`).
pub(crate) fn lenient_time(s: &str) -> Option<Time> {
    let s = trim_xml(s);
    let (whole, fraction) = match s.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (s, None),
    };
    let millis = match fraction {
        None => 0,
        Some(f) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => f
            .bytes()
            .chain(std::iter::repeat(b'0'))
            .take(3)
            .fold(0u64, |ms, b| ms * 10 + u64::from(b - b'0')),
        Some(_) => return None,
    };
    let field = |f: &str, max_len: usize| {
        (!f.is_empty() && f.len() <= max_len && f.bytes().all(|b| b.is_ascii_digit()))
            .then(|| f.parse::<u64>().ok())
            .flatten()
    };
    let seconds = match whole.split(':').collect::<Vec<_>>().as_slice() {
        [secs] => field(secs, 9)?,
        [h, m, s] => {
            let (h, m, s) = (field(h, 9)?, field(m, 2)?, field(s, 2)?);
            if m > 59 || s > 59 {
                return None;
            }
            h * 3600 + m * 60 + s
        }
        _ => return None,
    };
    Some(Time::from_millis(seconds * 1000 + millis))
}

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
