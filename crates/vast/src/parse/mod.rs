//! The VAST reader: any version from 1.0 to 4.3 into the [model](crate::model).
//!
//! Tolerant where real documents differ without meaning anything different: CDATA or plain text, surrounding
//! whitespace, namespace prefixes or none, elements in any order (the 4.x schema fixes an order; 2.0/3.0
//! documents and ad servers often ignore it), `AdID`/`adId`, booleans as `true`/`1`/`TRUE`, a missing
//! `MediaFile@delivery`. Strict where a wrong value would mislead a player: times, offsets, integers and
//! enumerations must parse, or the error names the element path. Unknown elements are kept raw
//! ([`UnknownElement`](crate::model::UnknownElement)); a repeated element the schema allows once keeps its
//! first occurrence and the rest as unknown.

mod common;
mod creative;
mod lenient;
pub(crate) mod node;
mod vast1;

use crate::error::{Error, Result, line_of};
use crate::model::{Ad, AdBody, AdType, Vast};
use crate::xml::read::{Element, read};
pub(crate) use lenient::ReadCtx;
pub use lenient::{
    DroppedAd, ParseLimits, Parsed, Warning, parse_vast_lenient, parse_vast_lenient_with,
};
use node::{Node, Unknowns, parse_bool, parse_u64};

/// Reads a VAST document (1.0 to 4.3) from text, strictly: the first error anywhere fails the whole
/// document. Never panics. [`parse_vast_lenient`] keeps the ads that can be read.
pub fn parse_vast(input: &str) -> Result<Vast> {
    let input = input.strip_prefix('\u{feff}').unwrap_or(input);
    let root = read(input)?;
    vast_from_element(&root, input)
}

/// Reads a VAST document from bytes, which must be UTF-8 (with or without a byte order mark).
pub fn parse_vast_bytes(input: &[u8]) -> Result<Vast> {
    let text = std::str::from_utf8(input).map_err(|e| Error::Xml {
        offset: e.valid_up_to() as u64,
        line: input
            .get(..e.valid_up_to())
            .map_or(1, |b| b.iter().filter(|&&c| c == b'\n').count() as u64 + 1),
        reason: "not UTF-8".into(),
    })?;
    parse_vast(text)
}

/// Reads a VAST document whose root element is `root` (also used for VAST inside VMAP).
pub(crate) fn vast_from_element(root: &Element<'_>, input: &str) -> Result<Vast> {
    vast_from_element_with(root, input, &ReadCtx::strict())
}

fn vast_from_element_with(root: &Element<'_>, input: &str, ctx: &ReadCtx) -> Result<Vast> {
    let node = Node::root(root, input, ctx);
    match root.name {
        "VAST" => parse_root(&node),
        "VideoAdServingTemplate" => vast1::parse_root(&node),
        other => Err(Error::WrongRoot {
            expected: "VAST",
            found: other.to_string(),
            line: line_of(input, root.start),
        }),
    }
}

fn parse_root(node: &Node<'_, '_>) -> Result<Vast> {
    let mut vast = Vast {
        version: node.attr_string("version").unwrap_or_default(),
        ..Vast::default()
    };
    let mut index = 0;
    for child in node.children() {
        match child.name() {
            "Ad" => {
                vast.ads.extend(lenient::isolate(&child, index, parse_ad)?);
                index += 1;
            }
            "Error" => vast.errors.push(child.string()),
            // Nothing outside an Ad is carried: the 4.2 root has room for Ad and Error only.
            _ => {}
        }
    }
    Ok(vast)
}

fn parse_ad(node: &Node<'_, '_>) -> Result<Ad> {
    let mut unknown = Unknowns::new(node.depth() + 1);
    let mut body = None;
    let mut ad_level = Vec::new();
    for child in node.children() {
        match child.name() {
            "InLine" if body.is_none() => {
                body = Some(AdBody::InLine(Box::new(common::inline(
                    &child,
                    &mut unknown,
                )?)))
            }
            "Wrapper" if body.is_none() => {
                body = Some(AdBody::Wrapper(Box::new(common::wrapper(
                    &child,
                    &mut unknown,
                )?)));
            }
            "InLine" | "Wrapper" => {
                child.warn(|| {
                    "a second InLine or Wrapper in one Ad; kept as an unknown element".into()
                });
                ad_level.push(child);
            }
            _ => ad_level.push(child),
        }
    }
    let mut body = body.ok_or_else(|| node.missing("InLine or Wrapper"))?;
    for child in &ad_level {
        unknown.keep(child);
    }
    let common = match &mut body {
        AdBody::InLine(i) => &mut i.common,
        AdBody::Wrapper(w) => &mut w.common,
    };
    common.unknown = unknown.list;
    Ok(Ad {
        id: node.attr_string("id"),
        sequence: node.attr_as("sequence", parse_u64)?,
        conditional_ad: node.attr_as("conditionalAd", parse_bool)?,
        ad_type: node.attr_as("adType", parse_ad_type)?,
        body,
    })
}

fn parse_ad_type(s: &str) -> Result<AdType, &'static str> {
    match s.trim() {
        v if v.eq_ignore_ascii_case("video") => Ok(AdType::Video),
        v if v.eq_ignore_ascii_case("audio") => Ok(AdType::Audio),
        v if v.eq_ignore_ascii_case("hybrid") => Ok(AdType::Hybrid),
        _ => Err("expected video, audio or hybrid"),
    }
}

#[cfg(test)]
mod tests;
