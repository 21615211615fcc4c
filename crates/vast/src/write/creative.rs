//! Writing creatives in the order of the 4.2 schema's sequences (`Creative_Inline_type`: CompanionAds,
//! CreativeExtensions, Linear, NonLinearAds, UniversalAdId; `Linear_Inline_type`: Icons, TrackingEvents,
//! AdParameters, Duration, MediaFiles, VideoClicks; …).

use super::{bool_str, is_decimal, write_extension};
use crate::error::Result;
use crate::model::*;
use crate::time::{Offset, Time};
use crate::xml::write::XmlWriter;

/// `xs:time` allows hours 00 to 23.
fn xs_time(w: &XmlWriter, name: &str, t: Time) -> Result<String> {
    if t.hours() >= 24 {
        return Err(w.unwritable(
            Some(name),
            format!("{t} does not fit xs:time (hours must be below 24)"),
        ));
    }
    Ok(t.to_string())
}

/// The schema's offset pattern has exactly two hour digits.
fn offset(w: &XmlWriter, name: &str, o: Offset) -> Result<String> {
    if let Offset::Time(t) = o {
        if t.hours() >= 100 {
            return Err(w.unwritable(
                Some(name),
                format!("offset {t} has more than two hour digits"),
            ));
        }
    }
    Ok(o.to_string())
}

fn num(v: Option<u64>) -> Option<String> {
    v.map(|v| v.to_string())
}

pub(super) fn write_creative(w: &mut XmlWriter, c: &Creative, index: usize) -> Result<()> {
    let sequence = num(c.sequence);
    w.open(
        "Creative",
        Some(index),
        &[
            ("id", c.id.as_deref()),
            ("sequence", sequence.as_deref()),
            ("adId", c.ad_id.as_deref()),
            ("apiFramework", c.api_framework.as_deref()),
        ],
    )?;
    if let Some(ads) = &c.companion_ads {
        write_companion_ads(w, ads)?;
    }
    write_creative_extensions(w, &c.creative_extensions)?;
    if let Some(linear) = &c.linear {
        write_linear(w, linear)?;
    }
    if let Some(ads) = &c.non_linear_ads {
        w.open("NonLinearAds", None, &[])?;
        write_tracking(w, &ads.tracking)?;
        for (i, nl) in ads.non_linears.iter().enumerate() {
            write_non_linear(w, nl, i + 1)?;
        }
        w.close();
    }
    if c.universal_ad_ids.is_empty() {
        w.text_element(
            "UniversalAdId",
            Some(1),
            &[("idRegistry", Some(UNKNOWN_ID))],
            UNKNOWN_ID,
        )?;
    }
    for (i, id) in c.universal_ad_ids.iter().enumerate() {
        w.text_element(
            "UniversalAdId",
            Some(i + 1),
            &[("idRegistry", Some(&id.id_registry))],
            &id.value,
        )?;
    }
    w.close();
    Ok(())
}

pub(super) fn write_wrapper_creative(
    w: &mut XmlWriter,
    c: &WrapperCreative,
    index: usize,
) -> Result<()> {
    let sequence = num(c.sequence);
    w.open(
        "Creative",
        Some(index),
        &[
            ("id", c.id.as_deref()),
            ("sequence", sequence.as_deref()),
            ("adId", c.ad_id.as_deref()),
            ("apiFramework", c.api_framework.as_deref()),
        ],
    )?;
    if let Some(ads) = &c.companion_ads {
        write_companion_ads(w, ads)?;
    }
    if let Some(linear) = &c.linear {
        let skip = linear
            .skip_offset
            .map(|o| offset(w, "Linear", o))
            .transpose()?;
        w.open("Linear", None, &[("skipoffset", skip.as_deref())])?;
        write_icons(w, &linear.icons)?;
        write_tracking(w, &linear.tracking)?;
        if let Some(clicks) = &linear.video_clicks {
            write_video_clicks(w, clicks)?;
        }
        w.close();
    }
    if let Some(ads) = &c.non_linear_ads {
        w.open("NonLinearAds", None, &[])?;
        write_tracking(w, &ads.tracking)?;
        for (i, nl) in ads.non_linears.iter().enumerate() {
            w.open("NonLinear", Some(i + 1), &[])?;
            if let Some(click) = &nl.click_tracking {
                w.text_element(
                    "NonLinearClickTracking",
                    None,
                    &[("id", click.id.as_deref())],
                    &click.url,
                )?;
            }
            w.close();
        }
        w.close();
    }
    w.close();
    Ok(())
}

fn write_creative_extensions(w: &mut XmlWriter, extensions: &[Extension]) -> Result<()> {
    if extensions.is_empty() {
        return Ok(());
    }
    w.open("CreativeExtensions", None, &[])?;
    for (i, e) in extensions.iter().enumerate() {
        write_extension(w, "CreativeExtension", e, i + 1)?;
    }
    w.close();
    Ok(())
}

fn write_linear(w: &mut XmlWriter, l: &Linear) -> Result<()> {
    let skip = l.skip_offset.map(|o| offset(w, "Linear", o)).transpose()?;
    w.open("Linear", None, &[("skipoffset", skip.as_deref())])?;
    write_icons(w, &l.icons)?;
    write_tracking(w, &l.tracking)?;
    if let Some(p) = &l.ad_parameters {
        write_ad_parameters(w, p)?;
    }
    let Some(duration) = l.duration else {
        return Err(w.unwritable(Some("Duration"), "a linear creative needs a Duration"));
    };
    let duration = xs_time(w, "Duration", duration)?;
    w.text_element("Duration", None, &[], &duration)?;
    write_media_files(w, &l.media_files)?;
    if let Some(clicks) = &l.video_clicks {
        write_video_clicks(w, clicks)?;
    }
    w.close();
    Ok(())
}

fn write_ad_parameters(w: &mut XmlWriter, p: &AdParameters) -> Result<()> {
    w.text_element(
        "AdParameters",
        None,
        &[("xmlEncoded", p.xml_encoded.map(bool_str))],
        &p.value,
    )
}

fn write_media_files(w: &mut XmlWriter, m: &MediaFiles) -> Result<()> {
    w.open("MediaFiles", None, &[])?;
    if !m.closed_caption_files.is_empty() {
        w.open("ClosedCaptionFiles", None, &[])?;
        for (i, f) in m.closed_caption_files.iter().enumerate() {
            w.text_element(
                "ClosedCaptionFile",
                Some(i + 1),
                &[
                    ("type", f.mime_type.as_deref()),
                    ("language", f.language.as_deref()),
                ],
                &f.url,
            )?;
        }
        w.close();
    }
    if m.media_files.is_empty() {
        return Err(w.unwritable(
            Some("MediaFile"),
            "a linear creative needs at least one MediaFile",
        ));
    }
    for (i, f) in m.media_files.iter().enumerate() {
        let (width, height) = (f.width.to_string(), f.height.to_string());
        let (bitrate, min, max, size) = (
            num(f.bitrate),
            num(f.min_bitrate),
            num(f.max_bitrate),
            num(f.file_size),
        );
        w.text_element(
            "MediaFile",
            Some(i + 1),
            &[
                ("id", f.id.as_deref()),
                ("delivery", Some(f.delivery.as_str())),
                ("type", Some(&f.mime_type)),
                ("width", Some(&width)),
                ("height", Some(&height)),
                ("codec", f.codec.as_deref()),
                ("bitrate", bitrate.as_deref()),
                ("minBitrate", min.as_deref()),
                ("maxBitrate", max.as_deref()),
                ("scalable", f.scalable.map(bool_str)),
                ("maintainAspectRatio", f.maintain_aspect_ratio.map(bool_str)),
                ("fileSize", size.as_deref()),
                ("mediaType", f.media_type.as_deref()),
                ("apiFramework", f.api_framework.as_deref()),
            ],
            &f.url,
        )?;
    }
    for (i, f) in m.mezzanines.iter().enumerate() {
        let (width, height) = (f.width.to_string(), f.height.to_string());
        let size = num(f.file_size);
        w.text_element(
            "Mezzanine",
            Some(i + 1),
            &[
                ("id", f.id.as_deref()),
                ("delivery", Some(f.delivery.as_str())),
                ("type", Some(&f.mime_type)),
                ("width", Some(&width)),
                ("height", Some(&height)),
                ("codec", f.codec.as_deref()),
                ("fileSize", size.as_deref()),
                ("mediaType", f.media_type.as_deref()),
            ],
            &f.url,
        )?;
    }
    for (i, f) in m.interactive_creative_files.iter().enumerate() {
        w.text_element(
            "InteractiveCreativeFile",
            Some(i + 1),
            &[
                ("type", f.mime_type.as_deref()),
                ("apiFramework", f.api_framework.as_deref()),
                ("variableDuration", f.variable_duration.map(bool_str)),
            ],
            &f.url,
        )?;
    }
    w.close();
    Ok(())
}

fn write_tracking(w: &mut XmlWriter, tracking: &[Tracking]) -> Result<()> {
    if tracking.is_empty() {
        return Ok(());
    }
    w.open("TrackingEvents", None, &[])?;
    for (i, t) in tracking.iter().enumerate() {
        let at = t.offset.map(|o| offset(w, "Tracking", o)).transpose()?;
        w.text_element(
            "Tracking",
            Some(i + 1),
            &[("event", Some(t.event.as_str())), ("offset", at.as_deref())],
            &t.url,
        )?;
    }
    w.close();
    Ok(())
}

fn write_clicks(w: &mut XmlWriter, name: &'static str, clicks: &[Click]) -> Result<()> {
    for (i, c) in clicks.iter().enumerate() {
        w.text_element(name, Some(i + 1), &[("id", c.id.as_deref())], &c.url)?;
    }
    Ok(())
}

fn write_video_clicks(w: &mut XmlWriter, v: &VideoClicks) -> Result<()> {
    w.open("VideoClicks", None, &[])?;
    write_clicks(w, "ClickTracking", &v.click_tracking)?;
    if let Some(c) = &v.click_through {
        w.text_element("ClickThrough", None, &[("id", c.id.as_deref())], &c.url)?;
    }
    write_clicks(w, "CustomClick", &v.custom_clicks)?;
    w.close();
    Ok(())
}

/// `CreativeResource_type`: HTMLResource*, IFrameResource*, StaticResource*.
fn write_resources(w: &mut XmlWriter, r: &Resources) -> Result<()> {
    for (i, html) in r.html.iter().enumerate() {
        w.text_element("HTMLResource", Some(i + 1), &[], html)?;
    }
    for (i, url) in r.iframe.iter().enumerate() {
        w.text_element("IFrameResource", Some(i + 1), &[], url)?;
    }
    for (i, s) in r.static_resources.iter().enumerate() {
        w.text_element(
            "StaticResource",
            Some(i + 1),
            &[("creativeType", Some(&s.creative_type))],
            &s.url,
        )?;
    }
    Ok(())
}

fn position_ok(value: &str, words: [&str; 2]) -> bool {
    words.contains(&value) || value.bytes().all(|b| b.is_ascii_digit())
}

fn write_icons(w: &mut XmlWriter, icons: &[Icon]) -> Result<()> {
    if icons.is_empty() {
        return Ok(());
    }
    w.open("Icons", None, &[])?;
    for (i, icon) in icons.iter().enumerate() {
        if icon
            .x_position
            .as_deref()
            .is_some_and(|x| !position_ok(x, ["left", "right"]))
        {
            return Err(w.unwritable(Some("Icon"), "xPosition must be pixels, left or right"));
        }
        if icon
            .y_position
            .as_deref()
            .is_some_and(|y| !position_ok(y, ["top", "bottom"]))
        {
            return Err(w.unwritable(Some("Icon"), "yPosition must be pixels, top or bottom"));
        }
        if icon.pxratio.as_deref().is_some_and(|p| !is_decimal(p)) {
            return Err(w.unwritable(Some("Icon"), "pxratio must be a decimal number"));
        }
        let duration = icon.duration.map(|t| xs_time(w, "Icon", t)).transpose()?;
        let at = icon.offset.map(|t| xs_time(w, "Icon", t)).transpose()?;
        let (width, height) = (num(icon.width), num(icon.height));
        w.open(
            "Icon",
            Some(i + 1),
            &[
                ("program", icon.program.as_deref()),
                ("width", width.as_deref()),
                ("height", height.as_deref()),
                ("xPosition", icon.x_position.as_deref()),
                ("yPosition", icon.y_position.as_deref()),
                ("duration", duration.as_deref()),
                ("offset", at.as_deref()),
                ("apiFramework", icon.api_framework.as_deref()),
                ("pxratio", icon.pxratio.as_deref()),
            ],
        )?;
        write_resources(w, &icon.resources)?;
        if let Some(clicks) = &icon.icon_clicks {
            w.open("IconClicks", None, &[])?;
            if !clicks.fallback_images.is_empty() {
                w.open("IconClickFallbackImages", None, &[])?;
                for (j, image) in clicks.fallback_images.iter().enumerate() {
                    let (width, height) = (num(image.width), num(image.height));
                    w.open(
                        "IconClickFallbackImage",
                        Some(j + 1),
                        &[("height", height.as_deref()), ("width", width.as_deref())],
                    )?;
                    if let Some(alt) = &image.alt_text {
                        w.text_element("AltText", None, &[], alt)?;
                    }
                    if let Some(url) = &image.static_resource {
                        w.text_element("StaticResource", None, &[], url)?;
                    }
                    w.close();
                }
                w.close();
            }
            if let Some(url) = &clicks.click_through {
                w.text_element("IconClickThrough", None, &[], url)?;
            }
            write_clicks(w, "IconClickTracking", &clicks.click_tracking)?;
            w.close();
        }
        for (j, url) in icon.view_tracking.iter().enumerate() {
            w.text_element("IconViewTracking", Some(j + 1), &[], url)?;
        }
        w.close();
    }
    w.close();
    Ok(())
}

fn write_non_linear(w: &mut XmlWriter, nl: &NonLinear, index: usize) -> Result<()> {
    let (width, height) = (nl.width.to_string(), nl.height.to_string());
    let (ew, eh) = (num(nl.expanded_width), num(nl.expanded_height));
    let min = nl
        .min_suggested_duration
        .map(|t| xs_time(w, "NonLinear", t))
        .transpose()?;
    w.open(
        "NonLinear",
        Some(index),
        &[
            ("id", nl.id.as_deref()),
            ("width", Some(&width)),
            ("height", Some(&height)),
            ("expandedWidth", ew.as_deref()),
            ("expandedHeight", eh.as_deref()),
            ("scalable", nl.scalable.map(bool_str)),
            (
                "maintainAspectRatio",
                nl.maintain_aspect_ratio.map(bool_str),
            ),
            ("minSuggestedDuration", min.as_deref()),
            ("apiFramework", nl.api_framework.as_deref()),
        ],
    )?;
    write_resources(w, &nl.resources)?;
    if let Some(p) = &nl.ad_parameters {
        write_ad_parameters(w, p)?;
    }
    if let Some(url) = &nl.click_through {
        w.text_element("NonLinearClickThrough", None, &[], url)?;
    }
    write_clicks(w, "NonLinearClickTracking", &nl.click_tracking)?;
    w.close();
    Ok(())
}

fn write_companion_ads(w: &mut XmlWriter, ads: &CompanionAds) -> Result<()> {
    w.open(
        "CompanionAds",
        None,
        &[("required", ads.required.map(CompanionRequired::as_str))],
    )?;
    for (i, c) in ads.companions.iter().enumerate() {
        if c.pxratio.as_deref().is_some_and(|p| !is_decimal(p)) {
            return Err(w.unwritable(Some("Companion"), "pxratio must be a decimal number"));
        }
        let (width, height) = (c.width.to_string(), c.height.to_string());
        let (aw, ah) = (num(c.asset_width), num(c.asset_height));
        let (ew, eh) = (num(c.expanded_width), num(c.expanded_height));
        w.open(
            "Companion",
            Some(i + 1),
            &[
                ("id", c.id.as_deref()),
                ("width", Some(&width)),
                ("height", Some(&height)),
                ("assetWidth", aw.as_deref()),
                ("assetHeight", ah.as_deref()),
                ("expandedWidth", ew.as_deref()),
                ("expandedHeight", eh.as_deref()),
                ("apiFramework", c.api_framework.as_deref()),
                ("adSlotId", c.ad_slot_id.as_deref()),
                ("pxratio", c.pxratio.as_deref()),
                ("renderingMode", c.rendering_mode.map(RenderingMode::as_str)),
            ],
        )?;
        write_resources(w, &c.resources)?;
        if let Some(p) = &c.ad_parameters {
            write_ad_parameters(w, p)?;
        }
        if let Some(alt) = &c.alt_text {
            w.text_element("AltText", None, &[], alt)?;
        }
        if let Some(url) = &c.click_through {
            w.text_element("CompanionClickThrough", None, &[], url)?;
        }
        for (j, click) in c.click_tracking.iter().enumerate() {
            // The 4.2 schema requires the id; an absent one is written empty and reads back as absent.
            let id = click.id.as_deref().unwrap_or("");
            w.text_element(
                "CompanionClickTracking",
                Some(j + 1),
                &[("id", Some(id))],
                &click.url,
            )?;
        }
        write_creative_extensions(w, &c.creative_extensions)?;
        write_tracking(w, &c.tracking)?;
        w.close();
    }
    w.close();
    Ok(())
}
