//! Lenient reading: one bad ad costs that ad, not the document.
//!
//! Ad servers answer with documents whose every other ad is fine, but where one ad has a `Duration` of
//! `undefined`, a Wrapper lacks its `VASTAdTagURI`, or an attribute holds a word where a number belongs.
//! The widely used client SDKs (Google IMA, vast-client-js, video.js' VAST plugins) keep the other ads and
//! report the broken one through its own `<Error>` URIs; so does [`parse_vast_lenient`]:
//!
//! - what fails the whole document still fails it: bytes that are not XML (100), a root that is not
//!   `VAST` (101), a version this reader does not know (102);
//! - an ad that cannot be read (a required element missing, a required value unreadable) is dropped and
//!   listed as a [`DroppedAd`] with the code it earned (VAST 4.2 §2.3.6.3) and its `Error` URIs, for the
//!   caller to ping with `[ERRORCODE]` filled in ([`DroppedAd::pings`]);
//! - a form that means something clear but is not what the schema says is read, with a [`Warning`]: a
//!   `Duration` of plain seconds (`30`), VAST 1's `VASTAdTagURL` in a VAST 2+ Wrapper, an optional
//!   attribute whose value does not parse (read as absent).
//!
//! Hostile input is bounded ([`ParseLimits`]): ads read per document, `Error` URIs kept per dropped ad, and
//! warnings recorded.

use std::cell::{Cell, RefCell};
use std::fmt;

use super::node::Node;
use super::vast_from_element_with;
use crate::error::{Error, Result, line_of, shorten};
use crate::error_code::VastErrorCode;
use crate::macros::expand_error_code;
use crate::model::{Ad, Vast};
use crate::xml::read::read;

/// Bounds on what one document may make the reader do and keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseLimits {
    /// `Ad` elements read per document; the rest are skipped with a warning (default 100).
    pub max_ads: usize,
    /// `Error` URIs kept per dropped ad and at the document's root (default 16).
    pub max_error_uris: usize,
    /// Warnings recorded per document; a last one says how many more there were (default 100).
    pub max_warnings: usize,
}

impl Default for ParseLimits {
    fn default() -> ParseLimits {
        ParseLimits {
            max_ads: 100,
            max_error_uris: 16,
            max_warnings: 100,
        }
    }
}

/// Something read leniently: where, and what was done about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Path of the element, e.g. `VAST/Ad[2]/InLine/Creatives/Creative[1]/Linear/Duration`.
    pub path: String,
    /// 1-based line of the element's start tag.
    pub line: u64,
    /// What was read, and how.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (line {}): {}", self.path, self.line, self.message)
    }
}

/// An ad left out of the document because it could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DroppedAd {
    /// Its place among the document's `Ad` elements, from 0 (error paths count from 1: `Ad[1]` is 0).
    pub index: usize,
    /// Its `id`.
    pub id: Option<String>,
    /// The VAST error code it earned.
    pub error_code: VastErrorCode,
    /// Its `Error` URIs (InLine's or Wrapper's), macros unexpanded, at most
    /// [`ParseLimits::max_error_uris`].
    pub error_uris: Vec<String>,
    /// Why, with the element path and line.
    pub reason: String,
}

impl DroppedAd {
    /// The `Error` URIs with `[ERRORCODE]` filled in, ready to ping (other macros are left for the firing
    /// party).
    pub fn pings(&self) -> Vec<String> {
        self.error_uris
            .iter()
            .map(|u| expand_error_code(u, self.error_code.code()))
            .collect()
    }
}

/// What lenient reading made of a document.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Parsed {
    /// The ads that could be read, in document order.
    pub vast: Vast,
    /// What was read leniently.
    pub warnings: Vec<Warning>,
    /// The ads that could not be read.
    pub dropped: Vec<DroppedAd>,
}

/// Reads a VAST document (1.0 to 4.3) leniently, with the default [`ParseLimits`]. Never panics.
///
/// Fails only for what no ad of the document survives: not XML ([`Error::Xml`], code 100), not VAST
/// ([`Error::WrongRoot`], 101), an unsupported version ([`Error::UnsupportedVersion`], 102); see
/// [`Error::vast_error_code`].
pub fn parse_vast_lenient(input: &str) -> Result<Parsed> {
    parse_vast_lenient_with(input, &ParseLimits::default())
}

/// [`parse_vast_lenient`] with explicit limits.
pub fn parse_vast_lenient_with(input: &str, limits: &ParseLimits) -> Result<Parsed> {
    let input = input.strip_prefix('\u{feff}').unwrap_or(input);
    let root = read(input)?;
    if root.name == "VAST" {
        check_version(root.attr("version"), || line_of(input, root.start))?;
    }
    let ctx = ReadCtx::new_lenient(limits.clone());
    let mut vast = vast_from_element_with(&root, input, &ctx)?;
    let node = Node::root(&root, input, &ctx);
    if vast.errors.len() > limits.max_error_uris {
        let n = vast.errors.len();
        vast.errors.truncate(limits.max_error_uris);
        node.warn(|| {
            format!(
                "{n} root Error URIs, only the first {} kept",
                limits.max_error_uris
            )
        });
    }
    let skipped = ctx.skipped_ads.get();
    if skipped > 0 {
        node.warn(|| {
            format!(
                "{skipped} Ad elements past the limit of {} not read",
                limits.max_ads
            )
        });
    }
    if root.name == "VAST" && root.attr("version").is_none() {
        node.warn(|| "no version attribute; read as VAST 2 to 4".to_string());
    }
    Ok(ctx.finish(vast))
}

/// Refuses versions outside 1.x–4.x (VAST 4.3 is the newest the IAB has published).
fn check_version(version: Option<&str>, line: impl FnOnce() -> u64) -> Result<()> {
    let Some(version) = version else {
        return Ok(());
    };
    let major = version.trim().split('.').next().unwrap_or("");
    match major.parse::<u32>() {
        Ok(1..=4) => Ok(()),
        _ => Err(Error::UnsupportedVersion {
            version: shorten(version),
            line: line(),
        }),
    }
}

/// How a document is being read, and what lenient reading collects on the way.
pub(crate) struct ReadCtx {
    lenient: bool,
    limits: ParseLimits,
    warnings: RefCell<Vec<Warning>>,
    unrecorded_warnings: Cell<usize>,
    dropped: RefCell<Vec<DroppedAd>>,
    skipped_ads: Cell<usize>,
}

impl ReadCtx {
    /// Strict reading: the first error fails the document; nothing is bounded or collected.
    pub(crate) fn strict() -> ReadCtx {
        ReadCtx {
            lenient: false,
            limits: ParseLimits {
                max_ads: usize::MAX,
                max_error_uris: usize::MAX,
                max_warnings: 0,
            },
            warnings: RefCell::default(),
            unrecorded_warnings: Cell::new(0),
            dropped: RefCell::default(),
            skipped_ads: Cell::new(0),
        }
    }

    fn new_lenient(limits: ParseLimits) -> ReadCtx {
        ReadCtx {
            lenient: true,
            limits,
            ..ReadCtx::strict()
        }
    }

    pub(crate) fn lenient(&self) -> bool {
        self.lenient
    }

    /// Records a warning made by `make` (path, line, message) unless the limit is reached.
    pub(crate) fn warn(&self, make: impl FnOnce() -> (String, u64, String)) {
        if !self.lenient {
            return;
        }
        let mut warnings = self.warnings.borrow_mut();
        if warnings.len() < self.limits.max_warnings {
            let (path, line, message) = make();
            warnings.push(Warning {
                path,
                line,
                message,
            });
        } else {
            self.unrecorded_warnings
                .set(self.unrecorded_warnings.get() + 1);
        }
    }

    fn finish(self, vast: Vast) -> Parsed {
        let mut warnings = self.warnings.into_inner();
        let unrecorded = self.unrecorded_warnings.get();
        if unrecorded > 0 {
            warnings.push(Warning {
                path: "VAST".to_string(),
                line: 1,
                message: format!("{unrecorded} more warnings not recorded"),
            });
        }
        Parsed {
            vast,
            warnings,
            dropped: self.dropped.into_inner(),
        }
    }
}

/// Reads the `index`-th `Ad` with `read`. Strict reading passes its error on; lenient reading drops the ad
/// (with the warnings it made, which the reason supersedes) and records why. Ads past the limit are not
/// read at all.
pub(super) fn isolate(
    node: &Node<'_, '_>,
    index: usize,
    read: impl FnOnce(&Node<'_, '_>) -> Result<Ad>,
) -> Result<Option<Ad>> {
    let ctx = node.ctx();
    if index >= ctx.limits.max_ads {
        ctx.skipped_ads.set(ctx.skipped_ads.get() + 1);
        return Ok(None);
    }
    let warnings_before = ctx.warnings.borrow().len();
    match read(node) {
        Ok(ad) => Ok(Some(ad)),
        Err(e) if ctx.lenient => {
            ctx.warnings.borrow_mut().truncate(warnings_before);
            ctx.dropped.borrow_mut().push(DroppedAd {
                index,
                id: node.attr_string("id"),
                error_code: e.vast_error_code(),
                error_uris: error_uris(node, ctx.limits.max_error_uris),
                reason: e.to_string(),
            });
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// The `Error` URIs of an ad that could not be read: the text of each `Error` under its InLine or Wrapper,
/// or of the `URL` elements VAST 1 puts inside it.
fn error_uris(ad: &Node<'_, '_>, max: usize) -> Vec<String> {
    let mut out = Vec::new();
    let bodies = ad
        .children()
        .filter(|c| matches!(c.name(), "InLine" | "Wrapper"))
        .collect::<Vec<_>>();
    for body in &bodies {
        for error in body.children().filter(|c| c.name() == "Error") {
            let urls: Vec<String> = error
                .children()
                .filter(|c| c.name() == "URL")
                .filter_map(|c| c.opt_string())
                .collect();
            if urls.is_empty() {
                out.extend(error.opt_string());
            } else {
                out.extend(urls);
            }
            if out.len() >= max {
                out.truncate(max);
                return out;
            }
        }
    }
    out
}
