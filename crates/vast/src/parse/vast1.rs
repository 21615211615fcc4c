//! VAST 1.0 (`VideoAdServingTemplate`, IAB 2008) mapped onto the 4.x model: `Video` becomes a linear
//! creative, `CompanionAds` and `NonLinearAds` become creatives of their own, URIs wrapped in `URL` elements
//! are unwrapped, ad-level `TrackingEvents` go to the linear (or else the non-linear) creative, and
//! `VASTAdTagURL` becomes `VASTAdTagURI`. Old ad servers still answer with it now and then.

use super::common::extensions;
use super::creative::{ad_parameters, media_file, parse_required};
use super::node::{Node, Unknowns, parse_u64};
use crate::error::Result;
use crate::model::*;

pub(super) fn parse_root(node: &Node<'_, '_>) -> Result<Vast> {
    let mut vast = Vast {
        version: "1.0".to_string(),
        ..Vast::default()
    };
    let mut index = 0;
    for child in node.children() {
        if child.name() == "Ad" {
            vast.ads.extend(super::lenient::isolate(&child, index, ad)?);
            index += 1;
        }
    }
    Ok(vast)
}

/// The URIs of `node`: its `URL` children, or its own text when it has none.
fn urls(node: &Node<'_, '_>) -> Vec<Click> {
    let urls: Vec<Click> = node
        .children()
        .filter(|c| c.name() == "URL")
        .map(|c| Click {
            id: c.attr_string("id"),
            url: c.string(),
        })
        .collect();
    if urls.is_empty() && !node.text().is_empty() {
        return vec![Click {
            id: None,
            url: node.string(),
        }];
    }
    urls
}

fn first_url(node: &Node<'_, '_>) -> Option<String> {
    urls(node).into_iter().next().map(|c| c.url)
}

fn ad(node: &Node<'_, '_>) -> Result<Ad> {
    let mut u = Unknowns::new(node.depth() + 1);
    let mut body = None;
    for child in node.children() {
        match child.name() {
            "InLine" if body.is_none() => {
                body = Some(AdBody::InLine(Box::new(inline(&child, &mut u)?)))
            }
            "Wrapper" if body.is_none() => {
                body = Some(AdBody::Wrapper(Box::new(wrapper(&child, &mut u)?)))
            }
            _ => u.keep(&child),
        }
    }
    let mut body = body.ok_or_else(|| node.missing("InLine or Wrapper"))?;
    match &mut body {
        AdBody::InLine(i) => i.common.unknown = u.list,
        AdBody::Wrapper(w) => w.common.unknown = u.list,
    }
    Ok(Ad {
        id: node.attr_string("id"),
        sequence: None,
        conditional_ad: None,
        ad_type: None,
        body,
    })
}

/// Reads a child both versions share; false if `child` is something else.
fn common_child(common: &mut AdCommon, child: &Node<'_, '_>, u: &mut Unknowns) -> bool {
    match child.name() {
        "AdSystem" if common.ad_system.is_none() => {
            common.ad_system = child.opt_string().map(|name| AdSystem {
                name,
                version: None,
            });
        }
        "Error" => common.errors.extend(urls(child).into_iter().map(|c| c.url)),
        "Impression" => common.impressions.extend(
            urls(child)
                .into_iter()
                .filter(|c| !c.url.eq_ignore_ascii_case(NO_IMPRESSION))
                .map(|c| Impression {
                    id: c.id,
                    url: c.url,
                }),
        ),
        "Extensions" => extensions(child, &mut common.extensions, u, false),
        _ => return false,
    }
    true
}

fn tracking(node: &Node<'_, '_>, non_linear: bool, u: &mut Unknowns) -> Vec<Tracking> {
    let mut out = Vec::new();
    for t in node.children() {
        let event = t
            .attr("event")
            .and_then(|e| TrackingEvent::parse_legacy(e.trim(), non_linear));
        match (t.name(), event) {
            ("Tracking", Some(event)) => out.extend(urls(&t).into_iter().map(|c| Tracking {
                event,
                offset: None,
                url: c.url,
            })),
            _ => u.keep(&t),
        }
    }
    out
}

fn video_clicks(node: &Node<'_, '_>, u: &mut Unknowns) -> VideoClicks {
    let mut clicks = VideoClicks::default();
    for c in node.children() {
        match c.name() {
            "ClickThrough" if clicks.click_through.is_none() => {
                clicks.click_through = urls(&c).into_iter().next()
            }
            "ClickTracking" => clicks.click_tracking.extend(urls(&c)),
            "CustomClick" => clicks.custom_clicks.extend(urls(&c)),
            _ => u.keep(&c),
        }
    }
    clicks
}

fn inline(node: &Node<'_, '_>, u: &mut Unknowns) -> Result<InLine> {
    let mut inline = InLine::default();
    let mut tracking_node = None;
    let mut video = None;
    let mut non_linear = None;
    let mut companions = None;
    for child in node.children() {
        if common_child(&mut inline.common, &child, u) {
            continue;
        }
        match child.name() {
            "AdTitle" if inline.ad_title.is_none() => inline.ad_title = child.opt_string(),
            "Description" if inline.description.is_none() => {
                inline.description = child.opt_string()
            }
            "Survey" if inline.survey.is_none() => {
                inline.survey = first_url(&child).map(|url| Survey {
                    mime_type: None,
                    url,
                });
            }
            "TrackingEvents" if tracking_node.is_none() => tracking_node = Some(child),
            "Video" if video.is_none() => video = Some(video_creative(&child, u)?),
            "NonLinearAds" if non_linear.is_none() => {
                non_linear = Some(non_linear_creative(&child, u)?)
            }
            "CompanionAds" if companions.is_none() => {
                companions = Some(companion_creative(&child, u)?)
            }
            _ => u.keep(&child),
        }
    }
    if let Some(t) = tracking_node {
        if let Some(linear) = video
            .as_mut()
            .and_then(|c: &mut Creative| c.linear.as_mut())
        {
            linear.tracking = tracking(&t, false, u);
        } else if let Some(ads) = non_linear
            .as_mut()
            .and_then(|c: &mut Creative| c.non_linear_ads.as_mut())
        {
            ads.tracking = tracking(&t, true, u);
        } else {
            u.keep(&t);
        }
    }
    inline
        .creatives
        .extend(video.into_iter().chain(non_linear).chain(companions));
    Ok(inline)
}

fn video_creative(node: &Node<'_, '_>, u: &mut Unknowns) -> Result<Creative> {
    let mut creative = Creative::default();
    let mut linear = Linear::default();
    for c in node.children() {
        match c.name() {
            "Duration" if linear.duration.is_none() => linear.duration = Some(c.duration()?),
            "AdID" if creative.ad_id.is_none() => creative.ad_id = c.opt_string(),
            "AdParameters" if linear.ad_parameters.is_none() => {
                linear.ad_parameters = Some(ad_parameters(&c)?)
            }
            "VideoClicks" if linear.video_clicks.is_none() => {
                linear.video_clicks = Some(video_clicks(&c, u))
            }
            "MediaFiles" => {
                for m in c.children() {
                    match m.name() {
                        "MediaFile" => {
                            let url = first_url(&m).unwrap_or_default();
                            linear.media_files.media_files.push(media_file(&m, url)?);
                        }
                        _ => u.keep(&m),
                    }
                }
            }
            _ => u.keep(&c),
        }
    }
    creative.linear = Some(linear);
    Ok(creative)
}

/// A VAST 1 resource: `resourceType` says which 4.x resource element its `URL` or `Code` becomes.
fn resource(node: &Node<'_, '_>) -> Resources {
    let mut res = Resources::default();
    let url = node
        .children()
        .find(|c| c.name() == "URL")
        .map(|c| c.string());
    let code = node
        .children()
        .find(|c| c.name() == "Code")
        .map(|c| c.string());
    let kind = node
        .attr("resourceType")
        .unwrap_or("static")
        .to_ascii_lowercase();
    match (kind.as_str(), url, code) {
        (_, None, Some(code)) => res.html.push(code),
        ("iframe", Some(url), _) => res.iframe.push(url),
        ("html", Some(url), _) => res.iframe.push(url),
        (_, Some(url), _) => res.static_resources.push(StaticResource {
            creative_type: node.attr_string("creativeType").unwrap_or_default(),
            url,
        }),
        (_, None, None) => {}
    }
    res
}

fn non_linear_creative(node: &Node<'_, '_>, u: &mut Unknowns) -> Result<Creative> {
    let mut ads = NonLinearAds::default();
    for n in node.children() {
        if n.name() != "NonLinear" {
            u.keep(&n);
            continue;
        }
        let mut nl = NonLinear {
            id: n.attr_string("id"),
            width: n.attr_as("width", parse_u64)?.unwrap_or(0),
            height: n.attr_as("height", parse_u64)?.unwrap_or(0),
            expanded_width: n.attr_as("expandedWidth", parse_u64)?,
            expanded_height: n.attr_as("expandedHeight", parse_u64)?,
            api_framework: n.attr_string("apiFramework"),
            resources: resource(&n),
            ..NonLinear::default()
        };
        for c in n.children() {
            match c.name() {
                "URL" | "Code" => {}
                "NonLinearClickThrough" if nl.click_through.is_none() => {
                    nl.click_through = first_url(&c)
                }
                "AdParameters" if nl.ad_parameters.is_none() => {
                    nl.ad_parameters = Some(ad_parameters(&c)?)
                }
                _ => u.keep(&c),
            }
        }
        ads.non_linears.push(nl);
    }
    Ok(Creative {
        non_linear_ads: Some(ads),
        ..Creative::default()
    })
}

fn companion_creative(node: &Node<'_, '_>, u: &mut Unknowns) -> Result<Creative> {
    let mut ads = CompanionAds {
        required: node.attr_as("required", parse_required)?,
        companions: Vec::new(),
    };
    for n in node.children() {
        if n.name() != "Companion" {
            u.keep(&n);
            continue;
        }
        let mut companion = Companion {
            id: n.attr_string("id"),
            width: n.attr_as("width", parse_u64)?.unwrap_or(0),
            height: n.attr_as("height", parse_u64)?.unwrap_or(0),
            expanded_width: n.attr_as("expandedWidth", parse_u64)?,
            expanded_height: n.attr_as("expandedHeight", parse_u64)?,
            resources: resource(&n),
            ..Companion::default()
        };
        for c in n.children() {
            match c.name() {
                "URL" | "Code" => {}
                "CompanionClickThrough" if companion.click_through.is_none() => {
                    companion.click_through = first_url(&c);
                }
                "AltText" if companion.alt_text.is_none() => companion.alt_text = Some(c.string()),
                "AdParameters" if companion.ad_parameters.is_none() => {
                    companion.ad_parameters = Some(ad_parameters(&c)?);
                }
                _ => u.keep(&c),
            }
        }
        ads.companions.push(companion);
    }
    Ok(Creative {
        companion_ads: Some(ads),
        ..Creative::default()
    })
}

fn wrapper(node: &Node<'_, '_>, u: &mut Unknowns) -> Result<Wrapper> {
    let mut wrapper = Wrapper::default();
    let mut tag_uri = None;
    let mut linear = WrapperLinear::default();
    for child in node.children() {
        if common_child(&mut wrapper.common, &child, u) {
            continue;
        }
        match child.name() {
            "VASTAdTagURL" if tag_uri.is_none() => {
                tag_uri = Some(first_url(&child).unwrap_or_default())
            }
            "TrackingEvents" => linear.tracking.extend(tracking(&child, false, u)),
            "VideoClicks" if linear.video_clicks.is_none() => {
                linear.video_clicks = Some(video_clicks(&child, u))
            }
            _ => u.keep(&child),
        }
    }
    if linear != WrapperLinear::default() {
        wrapper.creatives.push(WrapperCreative {
            linear: Some(linear),
            ..WrapperCreative::default()
        });
    }
    wrapper.vast_ad_tag_uri = tag_uri.ok_or_else(|| node.missing("VASTAdTagURL"))?;
    if wrapper.vast_ad_tag_uri.is_empty() && node.lenient() {
        return Err(node.invalid("VASTAdTagURL", "", "a Wrapper needs a URI to follow"));
    }
    Ok(wrapper)
}
