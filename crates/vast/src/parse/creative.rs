//! Reading creatives (VAST 4.2 schema `Creative_Inline_type`, `Creative_Wrapper_type` and what they hold).

use super::common::extensions;
use super::node::{Node, Unknowns, parse_bool, parse_u64};
use crate::error::Result;
use crate::model::*;
use crate::time::{Offset, Time};

pub(super) fn creative(node: &Node<'_, '_>, u: &mut Unknowns) -> Result<Creative> {
    let mut c = Creative {
        id: node.attr_string("id"),
        sequence: node.attr_as("sequence", parse_u64)?,
        ad_id: node
            .attr_string("adId")
            .or_else(|| node.attr_string("AdID")),
        api_framework: node.attr_string("apiFramework"),
        ..Creative::default()
    };
    for child in node.children() {
        match child.name() {
            "UniversalAdId" => {
                let id_registry = child
                    .attr_string("idRegistry")
                    .unwrap_or_else(|| UNKNOWN_ID.to_string());
                let value = child
                    .opt_string()
                    .or_else(|| child.attr_string("idValue"))
                    .unwrap_or_default();
                if id_registry != UNKNOWN_ID || value != UNKNOWN_ID {
                    c.universal_ad_ids
                        .push(UniversalAdId { id_registry, value });
                }
            }
            "CreativeExtensions" => extensions(&child, &mut c.creative_extensions, u, false),
            "Linear" if c.linear.is_none() => c.linear = Some(linear(&child, u)?),
            "NonLinearAds" if c.non_linear_ads.is_none() => {
                c.non_linear_ads = Some(non_linear_ads(&child, u)?)
            }
            "CompanionAds" if c.companion_ads.is_none() => {
                c.companion_ads = Some(companion_ads(&child, u)?)
            }
            _ => u.keep(&child),
        }
    }
    Ok(c)
}

pub(super) fn wrapper_creative(node: &Node<'_, '_>, u: &mut Unknowns) -> Result<WrapperCreative> {
    let mut c = WrapperCreative {
        id: node.attr_string("id"),
        sequence: node.attr_as("sequence", parse_u64)?,
        ad_id: node
            .attr_string("adId")
            .or_else(|| node.attr_string("AdID")),
        api_framework: node.attr_string("apiFramework"),
        ..WrapperCreative::default()
    };
    for child in node.children() {
        match child.name() {
            "Linear" if c.linear.is_none() => {
                let mut l = WrapperLinear {
                    skip_offset: child.attr_as("skipoffset", Offset::parse)?,
                    ..WrapperLinear::default()
                };
                for g in child.children() {
                    match g.name() {
                        "TrackingEvents" => tracking_events(&g, false, &mut l.tracking, u)?,
                        "VideoClicks" if l.video_clicks.is_none() => {
                            l.video_clicks = Some(video_clicks(&g, u))
                        }
                        "Icons" => icons(&g, &mut l.icons, u)?,
                        _ => u.keep(&g),
                    }
                }
                c.linear = Some(l);
            }
            "NonLinearAds" if c.non_linear_ads.is_none() => {
                let mut n = WrapperNonLinearAds::default();
                for g in child.children() {
                    match g.name() {
                        "TrackingEvents" => tracking_events(&g, true, &mut n.tracking, u)?,
                        "NonLinear" => {
                            let mut nl = WrapperNonLinear::default();
                            for h in g.children() {
                                match h.name() {
                                    "NonLinearClickTracking" if nl.click_tracking.is_none() => {
                                        nl.click_tracking = Some(click(&h));
                                    }
                                    _ => u.keep(&h),
                                }
                            }
                            n.non_linears.push(nl);
                        }
                        _ => u.keep(&g),
                    }
                }
                c.non_linear_ads = Some(n);
            }
            "CompanionAds" if c.companion_ads.is_none() => {
                c.companion_ads = Some(companion_ads(&child, u)?)
            }
            _ => u.keep(&child),
        }
    }
    Ok(c)
}

fn linear(node: &Node<'_, '_>, u: &mut Unknowns) -> Result<Linear> {
    let mut l = Linear {
        skip_offset: node.attr_as("skipoffset", Offset::parse)?,
        ..Linear::default()
    };
    for child in node.children() {
        match child.name() {
            "Duration" if l.duration.is_none() => l.duration = Some(child.duration()?),
            "AdParameters" if l.ad_parameters.is_none() => {
                l.ad_parameters = Some(ad_parameters(&child)?)
            }
            "MediaFiles" => media_files(&child, &mut l.media_files, u)?,
            "TrackingEvents" => tracking_events(&child, false, &mut l.tracking, u)?,
            "VideoClicks" if l.video_clicks.is_none() => {
                l.video_clicks = Some(video_clicks(&child, u))
            }
            "Icons" => icons(&child, &mut l.icons, u)?,
            _ => u.keep(&child),
        }
    }
    Ok(l)
}

pub(super) fn ad_parameters(node: &Node<'_, '_>) -> Result<AdParameters> {
    Ok(AdParameters {
        xml_encoded: node.attr_as("xmlEncoded", parse_bool)?,
        value: node.string(),
    })
}

pub(super) fn parse_delivery(s: &str) -> Result<Delivery, &'static str> {
    match s.trim() {
        v if v.eq_ignore_ascii_case("progressive") => Ok(Delivery::Progressive),
        v if v.eq_ignore_ascii_case("streaming") => Ok(Delivery::Streaming),
        _ => Err("expected progressive or streaming"),
    }
}

pub(super) fn media_file(node: &Node<'_, '_>, url: String) -> Result<MediaFile> {
    Ok(MediaFile {
        id: node.attr_string("id"),
        delivery: node
            .attr_as("delivery", parse_delivery)?
            .unwrap_or_default(),
        mime_type: node.attr_string("type").unwrap_or_default(),
        width: node.attr_as("width", parse_u64)?.unwrap_or(0),
        height: node.attr_as("height", parse_u64)?.unwrap_or(0),
        codec: node.attr_string("codec"),
        bitrate: node.attr_as("bitrate", parse_u64)?,
        min_bitrate: node.attr_as("minBitrate", parse_u64)?,
        max_bitrate: node.attr_as("maxBitrate", parse_u64)?,
        scalable: node.attr_as("scalable", parse_bool)?,
        maintain_aspect_ratio: node.attr_as("maintainAspectRatio", parse_bool)?,
        file_size: node.attr_as("fileSize", parse_u64)?,
        media_type: node.attr_string("mediaType"),
        api_framework: node.attr_string("apiFramework"),
        url,
    })
}

fn media_files(node: &Node<'_, '_>, out: &mut MediaFiles, u: &mut Unknowns) -> Result<()> {
    for child in node.children() {
        match child.name() {
            "MediaFile" => out.media_files.push(media_file(&child, child.string())?),
            "Mezzanine" => out.mezzanines.push(Mezzanine {
                id: child.attr_string("id"),
                delivery: child
                    .attr_as("delivery", parse_delivery)?
                    .unwrap_or_default(),
                mime_type: child.attr_string("type").unwrap_or_default(),
                width: child.attr_as("width", parse_u64)?.unwrap_or(0),
                height: child.attr_as("height", parse_u64)?.unwrap_or(0),
                codec: child.attr_string("codec"),
                file_size: child.attr_as("fileSize", parse_u64)?,
                media_type: child.attr_string("mediaType"),
                url: child.string(),
            }),
            "InteractiveCreativeFile" => {
                out.interactive_creative_files
                    .push(InteractiveCreativeFile {
                        mime_type: child.attr_string("type"),
                        api_framework: child.attr_string("apiFramework"),
                        variable_duration: child.attr_as("variableDuration", parse_bool)?,
                        url: child.string(),
                    })
            }
            "ClosedCaptionFiles" => {
                for f in child.children() {
                    match f.name() {
                        "ClosedCaptionFile" => out.closed_caption_files.push(ClosedCaptionFile {
                            mime_type: f.attr_string("type"),
                            language: f.attr_string("language"),
                            url: f.string(),
                        }),
                        _ => u.keep(&f),
                    }
                }
            }
            _ => u.keep(&child),
        }
    }
    Ok(())
}

/// Reads `Tracking` children; `non_linear` says how to read the VAST 2/3 `expand`/`collapse`.
pub(super) fn tracking_events(
    node: &Node<'_, '_>,
    non_linear: bool,
    out: &mut Vec<Tracking>,
    u: &mut Unknowns,
) -> Result<()> {
    for child in node.children() {
        let event = child
            .attr("event")
            .and_then(|e| TrackingEvent::parse_legacy(e.trim(), non_linear));
        match (child.name(), event) {
            ("Tracking", Some(event)) => out.push(Tracking {
                event,
                offset: child.attr_as("offset", Offset::parse)?,
                url: child.string(),
            }),
            _ => u.keep(&child),
        }
    }
    Ok(())
}

pub(super) fn click(node: &Node<'_, '_>) -> Click {
    Click {
        id: node.attr_string("id"),
        url: node.string(),
    }
}

fn video_clicks(node: &Node<'_, '_>, u: &mut Unknowns) -> VideoClicks {
    let mut v = VideoClicks::default();
    for child in node.children() {
        match child.name() {
            "ClickThrough" if v.click_through.is_none() => v.click_through = Some(click(&child)),
            "ClickTracking" => v.click_tracking.push(click(&child)),
            "CustomClick" => v.custom_clicks.push(click(&child)),
            _ => u.keep(&child),
        }
    }
    v
}

/// Reads `child` into `res` if it is a resource element; false if it is not.
fn resource(res: &mut Resources, child: &Node<'_, '_>) -> bool {
    match child.name() {
        "StaticResource" => res.static_resources.push(StaticResource {
            creative_type: child.attr_string("creativeType").unwrap_or_default(),
            url: child.string(),
        }),
        "IFrameResource" => res.iframe.push(child.string()),
        "HTMLResource" => res.html.push(child.string()),
        _ => return false,
    }
    true
}

fn icons(node: &Node<'_, '_>, out: &mut Vec<Icon>, u: &mut Unknowns) -> Result<()> {
    for child in node.children() {
        if child.name() != "Icon" {
            u.keep(&child);
            continue;
        }
        let mut icon = Icon {
            program: child.attr_string("program"),
            width: child.attr_as("width", parse_u64)?,
            height: child.attr_as("height", parse_u64)?,
            x_position: child.attr_string("xPosition"),
            y_position: child.attr_string("yPosition"),
            duration: child.attr_as("duration", Time::parse)?,
            offset: child.attr_as("offset", Time::parse)?,
            api_framework: child.attr_string("apiFramework"),
            pxratio: child.attr_string("pxratio"),
            ..Icon::default()
        };
        for g in child.children() {
            if resource(&mut icon.resources, &g) {
                continue;
            }
            match g.name() {
                "IconClicks" if icon.icon_clicks.is_none() => {
                    icon.icon_clicks = Some(icon_clicks(&g, u)?)
                }
                "IconViewTracking" => icon.view_tracking.push(g.string()),
                _ => u.keep(&g),
            }
        }
        out.push(icon);
    }
    Ok(())
}

fn icon_clicks(node: &Node<'_, '_>, u: &mut Unknowns) -> Result<IconClicks> {
    let mut clicks = IconClicks::default();
    for child in node.children() {
        match child.name() {
            "IconClickThrough" if clicks.click_through.is_none() => {
                clicks.click_through = Some(child.string())
            }
            "IconClickTracking" => clicks.click_tracking.push(click(&child)),
            "IconClickFallbackImages" => {
                for f in child.children() {
                    if f.name() != "IconClickFallbackImage" {
                        u.keep(&f);
                        continue;
                    }
                    let mut image = IconClickFallbackImage {
                        width: f.attr_as("width", parse_u64)?,
                        height: f.attr_as("height", parse_u64)?,
                        ..IconClickFallbackImage::default()
                    };
                    for g in f.children() {
                        match g.name() {
                            "AltText" if image.alt_text.is_none() => {
                                image.alt_text = Some(g.string())
                            }
                            "StaticResource" if image.static_resource.is_none() => {
                                image.static_resource = Some(g.string());
                            }
                            _ => u.keep(&g),
                        }
                    }
                    clicks.fallback_images.push(image);
                }
            }
            _ => u.keep(&child),
        }
    }
    Ok(clicks)
}

fn non_linear_ads(node: &Node<'_, '_>, u: &mut Unknowns) -> Result<NonLinearAds> {
    let mut ads = NonLinearAds::default();
    for child in node.children() {
        match child.name() {
            "TrackingEvents" => tracking_events(&child, true, &mut ads.tracking, u)?,
            "NonLinear" => {
                let mut nl = NonLinear {
                    id: child.attr_string("id"),
                    width: child.attr_as("width", parse_u64)?.unwrap_or(0),
                    height: child.attr_as("height", parse_u64)?.unwrap_or(0),
                    expanded_width: child.attr_as("expandedWidth", parse_u64)?,
                    expanded_height: child.attr_as("expandedHeight", parse_u64)?,
                    scalable: child.attr_as("scalable", parse_bool)?,
                    maintain_aspect_ratio: child.attr_as("maintainAspectRatio", parse_bool)?,
                    min_suggested_duration: child.attr_as("minSuggestedDuration", Time::parse)?,
                    api_framework: child.attr_string("apiFramework"),
                    ..NonLinear::default()
                };
                for g in child.children() {
                    if resource(&mut nl.resources, &g) {
                        continue;
                    }
                    match g.name() {
                        "AdParameters" if nl.ad_parameters.is_none() => {
                            nl.ad_parameters = Some(ad_parameters(&g)?)
                        }
                        "NonLinearClickThrough" if nl.click_through.is_none() => {
                            nl.click_through = Some(g.string())
                        }
                        "NonLinearClickTracking" => nl.click_tracking.push(click(&g)),
                        _ => u.keep(&g),
                    }
                }
                ads.non_linears.push(nl);
            }
            _ => u.keep(&child),
        }
    }
    Ok(ads)
}

pub(super) fn parse_required(s: &str) -> Result<CompanionRequired, &'static str> {
    match s.trim() {
        "all" => Ok(CompanionRequired::All),
        "any" => Ok(CompanionRequired::Any),
        "none" => Ok(CompanionRequired::None),
        _ => Err("expected all, any or none"),
    }
}

fn parse_rendering_mode(s: &str) -> Result<RenderingMode, &'static str> {
    match s.trim() {
        "default" => Ok(RenderingMode::Default),
        "end-card" => Ok(RenderingMode::EndCard),
        "concurrent" => Ok(RenderingMode::Concurrent),
        _ => Err("expected default, end-card or concurrent"),
    }
}

fn companion_ads(node: &Node<'_, '_>, u: &mut Unknowns) -> Result<CompanionAds> {
    let mut ads = CompanionAds {
        required: node.attr_as("required", parse_required)?,
        companions: Vec::new(),
    };
    for child in node.children() {
        if child.name() != "Companion" {
            u.keep(&child);
            continue;
        }
        let mut c = Companion {
            id: child.attr_string("id"),
            width: child.attr_as("width", parse_u64)?.unwrap_or(0),
            height: child.attr_as("height", parse_u64)?.unwrap_or(0),
            asset_width: child.attr_as("assetWidth", parse_u64)?,
            asset_height: child.attr_as("assetHeight", parse_u64)?,
            expanded_width: child.attr_as("expandedWidth", parse_u64)?,
            expanded_height: child.attr_as("expandedHeight", parse_u64)?,
            api_framework: child.attr_string("apiFramework"),
            ad_slot_id: child.attr_string("adSlotId"),
            pxratio: child.attr_string("pxratio"),
            rendering_mode: child.attr_as("renderingMode", parse_rendering_mode)?,
            ..Companion::default()
        };
        for g in child.children() {
            if resource(&mut c.resources, &g) {
                continue;
            }
            match g.name() {
                "AdParameters" if c.ad_parameters.is_none() => {
                    c.ad_parameters = Some(ad_parameters(&g)?)
                }
                "AltText" if c.alt_text.is_none() => c.alt_text = Some(g.string()),
                "CompanionClickThrough" if c.click_through.is_none() => {
                    c.click_through = Some(g.string())
                }
                "CompanionClickTracking" => c.click_tracking.push(click(&g)),
                "CreativeExtensions" => extensions(&g, &mut c.creative_extensions, u, false),
                "TrackingEvents" => tracking_events(&g, true, &mut c.tracking, u)?,
                _ => u.keep(&g),
            }
        }
        ads.companions.push(c);
    }
    Ok(ads)
}
