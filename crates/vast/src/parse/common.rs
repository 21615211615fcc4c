//! Reading `InLine` and `Wrapper` and what they share: `AdSystem`, `Error`, `Impression`, `Pricing`,
//! `ViewableImpression`, `AdVerifications`, `Extensions` (VAST 4.2 schema `AdDefinitionBase_type`,
//! `Inline_type`, `Wrapper_type`, `Verification_type`).

use super::creative::{creative, wrapper_creative};
use super::node::{Node, UNKNOWN_PARENT_ATTR, Unknowns, parse_bool, parse_u64};
use crate::error::Result;
use crate::model::*;
use crate::write::is_decimal;

pub(super) fn inline(node: &Node<'_, '_>, u: &mut Unknowns) -> Result<InLine> {
    let mut inline = InLine::default();
    for child in node.children() {
        if common_child(&mut inline.common, &child, u)? {
            continue;
        }
        match child.name() {
            "AdServingId" if inline.ad_serving_id.is_none() => {
                inline.ad_serving_id = child.opt_string()
            }
            "AdTitle" if inline.ad_title.is_none() => inline.ad_title = child.opt_string(),
            "Advertiser" if inline.advertiser.is_none() => inline.advertiser = child.opt_string(),
            "Category" => match child.attr_string("authority") {
                Some(authority) => inline.categories.push(Category {
                    authority,
                    value: child.string(),
                }),
                None => u.keep(&child),
            },
            "Creatives" => {
                for c in child.children() {
                    match c.name() {
                        "Creative" => inline.creatives.push(creative(&c, u)?),
                        _ => u.keep(&c),
                    }
                }
            }
            "Description" if inline.description.is_none() => {
                inline.description = child.opt_string()
            }
            "Expires" if inline.expires.is_none() => {
                inline.expires = child.optional_text_as(parse_u64)?
            }
            "Survey" if inline.survey.is_none() => {
                inline.survey = Some(Survey {
                    mime_type: child.attr_string("type"),
                    url: child.string(),
                });
            }
            _ => u.keep(&child),
        }
    }
    Ok(inline)
}

pub(super) fn wrapper(node: &Node<'_, '_>, u: &mut Unknowns) -> Result<Wrapper> {
    let mut wrapper = Wrapper {
        follow_additional_wrappers: node.attr_as("followAdditionalWrappers", parse_bool)?,
        allow_multiple_ads: node.attr_as("allowMultipleAds", parse_bool)?,
        fallback_on_no_ad: node.attr_as("fallbackOnNoAd", parse_bool)?,
        ..Wrapper::default()
    };
    let (mut tag_uri, mut legacy_tag_uri) = (None, None);
    for child in node.children() {
        if common_child(&mut wrapper.common, &child, u)? {
            continue;
        }
        match child.name() {
            "VASTAdTagURI" if tag_uri.is_none() => tag_uri = Some(child.string()),
            // VAST 1's name, still sent in VAST 2 Wrappers (vast-client-js and IMA read it), with the URI
            // as text or in a `URL` child.
            "VASTAdTagURL" if legacy_tag_uri.is_none() => {
                let url = child
                    .children()
                    .find(|c| c.name() == "URL")
                    .map_or_else(|| child.string(), |c| c.string());
                child.warn(|| "VAST 1's VASTAdTagURL read as VASTAdTagURI".into());
                legacy_tag_uri = Some(url);
            }
            "BlockedAdCategories" => wrapper.blocked_ad_categories.push(BlockedAdCategories {
                authority: child.attr_string("authority"),
                value: child.string(),
            }),
            "Creatives" => {
                for c in child.children() {
                    match c.name() {
                        "Creative" => wrapper.creatives.push(wrapper_creative(&c, u)?),
                        _ => u.keep(&c),
                    }
                }
            }
            _ => u.keep(&child),
        }
    }
    wrapper.vast_ad_tag_uri = tag_uri
        .or(legacy_tag_uri)
        .ok_or_else(|| node.missing("VASTAdTagURI"))?;
    if wrapper.vast_ad_tag_uri.is_empty() && node.lenient() {
        return Err(node.invalid("VASTAdTagURI", "", "a Wrapper needs a URI to follow"));
    }
    Ok(wrapper)
}

/// Reads `child` into `common` if it is one of the shared elements; false if it is not.
fn common_child(common: &mut AdCommon, child: &Node<'_, '_>, u: &mut Unknowns) -> Result<bool> {
    match child.name() {
        "AdSystem" if common.ad_system.is_none() => {
            let ad_system = AdSystem {
                name: child.string(),
                version: child.attr_string("version"),
            };
            if !ad_system.name.is_empty() || ad_system.version.is_some() {
                common.ad_system = Some(ad_system);
            }
        }
        "Error" => common.errors.push(child.string()),
        "Impression" => {
            if !child.text().eq_ignore_ascii_case(NO_IMPRESSION) {
                common.impressions.push(Impression {
                    id: child.attr_string("id"),
                    url: child.string(),
                });
            }
        }
        "Pricing" if common.pricing.is_none() => match pricing(child) {
            Some(p) => common.pricing = Some(p),
            None => u.keep(child),
        },
        "ViewableImpression" if common.viewable_impression.is_none() => {
            common.viewable_impression = Some(viewable_impression(child, u));
        }
        "AdVerifications" => {
            for v in child.children() {
                match v.name() {
                    "Verification" => common.ad_verifications.push(verification(&v, u)?),
                    _ => u.keep(&v),
                }
            }
        }
        "Extensions" => extensions(child, &mut common.extensions, u, true),
        _ => return Ok(false),
    }
    Ok(true)
}

/// `None` when the element does not make a 4.2 `Pricing` (no or bad `model`/`currency`, a price that is not a
/// decimal, typically an auction macro left unexpanded): it is then kept as an unknown element.
fn pricing(node: &Node<'_, '_>) -> Option<Pricing> {
    let model = match node.attr("model")?.trim().to_ascii_lowercase().as_str() {
        "cpc" => PricingModel::Cpc,
        "cpm" => PricingModel::Cpm,
        "cpe" => PricingModel::Cpe,
        "cpv" => PricingModel::Cpv,
        _ => return None,
    };
    let currency = node.attr("currency")?.trim();
    let value = node.string();
    if currency.len() != 3
        || !currency.bytes().all(|b| b.is_ascii_alphabetic())
        || !is_decimal(&value)
    {
        return None;
    }
    Some(Pricing {
        model,
        currency: currency.to_string(),
        value,
    })
}

fn viewable_impression(node: &Node<'_, '_>, u: &mut Unknowns) -> ViewableImpression {
    let mut vi = ViewableImpression {
        id: node.attr_string("id"),
        ..ViewableImpression::default()
    };
    for child in node.children() {
        match child.name() {
            "Viewable" => vi.viewable.push(child.string()),
            "NotViewable" => vi.not_viewable.push(child.string()),
            "ViewUndetermined" => vi.view_undetermined.push(child.string()),
            _ => u.keep(&child),
        }
    }
    vi
}

fn verification(node: &Node<'_, '_>, u: &mut Unknowns) -> Result<Verification> {
    let mut v = Verification {
        vendor: node.attr_string("vendor"),
        ..Verification::default()
    };
    for child in node.children() {
        match child.name() {
            "JavaScriptResource" => v.javascript_resources.push(JavaScriptResource {
                api_framework: child.attr_string("apiFramework"),
                browser_optional: child.attr_as("browserOptional", parse_bool)?,
                url: child.string(),
            }),
            "ExecutableResource" => v.executable_resources.push(ExecutableResource {
                api_framework: child.attr_string("apiFramework"),
                resource_type: child.attr_string("type"),
                url: child.string(),
            }),
            "TrackingEvents" => {
                for t in child.children() {
                    match (t.name(), t.attr("event")) {
                        ("Tracking", Some(event)) => v.tracking.push(VerificationTracking {
                            event: event.to_string(),
                            url: t.string(),
                        }),
                        _ => u.keep(&t),
                    }
                }
            }
            "VerificationParameters" if v.verification_parameters.is_none() => {
                v.verification_parameters = Some(child.string());
            }
            _ => u.keep(&child),
        }
    }
    Ok(v)
}

/// Reads `Extensions`/`CreativeExtensions` children. In an ad's `Extensions` (`restore`), the extension
/// that carries unknown elements through a write is unpacked back into them.
pub(super) fn extensions(
    node: &Node<'_, '_>,
    out: &mut Vec<Extension>,
    u: &mut Unknowns,
    restore: bool,
) {
    for child in node.children() {
        if !matches!(child.name(), "Extension" | "CreativeExtension") {
            u.keep(&child);
            continue;
        }
        let extension_type = child.attr_string("type");
        if restore
            && extension_type.as_deref() == Some(UNKNOWN_ELEMENTS_EXTENSION)
            && restore_unknown(&child, u)
        {
            continue;
        }
        out.push(Extension {
            extension_type,
            xml: child.inner_raw().to_string(),
        });
    }
}

/// Unpacks `<Unknown parent="…">element</Unknown>` children; false (nothing taken) if the extension holds
/// anything else, so that a foreign extension of the same type stays an extension.
fn restore_unknown(node: &Node<'_, '_>, u: &mut Unknowns) -> bool {
    let well_formed = node.children().all(|c| {
        c.name() == "Unknown"
            && c.el.children.len() == 1
            && c.text().is_empty()
            && c.el.attrs.iter().any(|(k, _)| *k == UNKNOWN_PARENT_ATTR)
    });
    if !well_formed || node.el.children.is_empty() {
        return false;
    }
    for c in node.children() {
        let parent =
            c.el.attrs
                .iter()
                .find(|(k, _)| *k == UNKNOWN_PARENT_ATTR)
                .map(|(_, v)| v.to_string());
        u.list.push(UnknownElement {
            parent: parent.unwrap_or_default(),
            xml: c.inner_raw().to_string(),
        });
    }
    true
}
