//! Reading VMAP 1.0.

use super::*;
use crate::error::{Error, Result, line_of};
use crate::parse::node::{Node, parse_bool};
use crate::parse::{ReadCtx, vast_from_element};
use crate::xml::read::read;

/// Reads a VMAP document. Never panics.
pub fn parse_vmap(input: &str) -> Result<Vmap> {
    let input = input.strip_prefix('\u{feff}').unwrap_or(input);
    let root = read(input)?;
    if root.name != "VMAP" {
        return Err(Error::WrongRoot {
            expected: "VMAP",
            found: root.name.to_string(),
            line: line_of(input, root.start),
        });
    }
    let ctx = ReadCtx::strict();
    let node = Node::root(&root, input, &ctx);
    let mut vmap = Vmap {
        version: node.attr_string("version").unwrap_or_default(),
        ..Vmap::default()
    };
    for child in node.children() {
        match child.name() {
            "AdBreak" => vmap.ad_breaks.push(ad_break(&child, input)?),
            "Extensions" => extensions(&child, &mut vmap.extensions),
            _ => {}
        }
    }
    Ok(vmap)
}

fn extensions(node: &Node<'_, '_>, out: &mut Vec<Extension>) {
    out.extend(
        node.children()
            .filter(|c| c.name() == "Extension")
            .map(|c| Extension {
                extension_type: c.attr_string("type"),
                xml: c.inner_raw().to_string(),
            }),
    );
}

fn ad_break(node: &Node<'_, '_>, input: &str) -> Result<AdBreak> {
    let time_offset = node
        .attr_as("timeOffset", TimeOffset::parse)?
        .ok_or_else(|| node.missing("@timeOffset"))?;
    let break_types = node
        .attr_as("breakType", BreakType::parse_list)?
        .ok_or_else(|| node.missing("@breakType"))?;
    let mut ad_break = AdBreak {
        time_offset,
        break_types,
        break_id: node.attr_string("breakId"),
        repeat_after: node.attr_as("repeatAfter", Time::parse)?,
        ad_source: None,
        tracking: Vec::new(),
        extensions: Vec::new(),
    };
    for child in node.children() {
        match child.name() {
            "AdSource" if ad_break.ad_source.is_none() => {
                ad_break.ad_source = Some(ad_source(&child, input)?)
            }
            "TrackingEvents" => {
                for t in child.children().filter(|t| t.name() == "Tracking") {
                    let event = t.attr("event").ok_or_else(|| t.missing("@event"))?;
                    ad_break.tracking.push(BreakTracking {
                        event: BreakEvent::parse(event),
                        url: t.string(),
                    });
                }
            }
            "Extensions" => extensions(&child, &mut ad_break.extensions),
            _ => {}
        }
    }
    Ok(ad_break)
}

fn ad_source(node: &Node<'_, '_>, input: &str) -> Result<AdSource> {
    let mut data = None;
    for child in node.children() {
        if data.is_some() {
            break;
        }
        data = match child.name() {
            "VASTAdData" | "VASTData" => {
                let vast = child
                    .el
                    .children
                    .iter()
                    .find(|e| matches!(e.name, "VAST" | "VideoAdServingTemplate"))
                    .ok_or_else(|| child.missing("VAST"))?;
                let parsed = vast_from_element(vast, input).map_err(|e| under(e, &child.path()))?;
                Some(AdSourceData::VastAdData(Box::new(parsed)))
            }
            "AdTagURI" => Some(AdSourceData::AdTagUri {
                template_type: child.attr_string("templateType").unwrap_or_default(),
                uri: child.string(),
            }),
            "CustomAdData" => Some(AdSourceData::CustomAdData {
                template_type: child.attr_string("templateType").unwrap_or_default(),
                xml: child.inner_raw().to_string(),
            }),
            _ => None,
        };
    }
    Ok(AdSource {
        id: node.attr_string("id"),
        allow_multiple_ads: node.attr_as("allowMultipleAds", parse_bool)?,
        follow_redirects: node.attr_as("followRedirects", parse_bool)?,
        data: data.ok_or_else(|| node.missing("VASTAdData, AdTagURI or CustomAdData"))?,
    })
}

/// Puts the path of the enclosing `VASTAdData` in front of an error from the embedded VAST.
fn under(e: Error, prefix: &str) -> Error {
    match e {
        Error::InvalidValue {
            path,
            field,
            value,
            reason,
            offset,
            line,
        } => Error::InvalidValue {
            path: format!("{prefix}/{path}"),
            field,
            value,
            reason,
            offset,
            line,
        },
        Error::Missing {
            path,
            what,
            offset,
            line,
        } => Error::Missing {
            path: format!("{prefix}/{path}"),
            what,
            offset,
            line,
        },
        other => other,
    }
}
