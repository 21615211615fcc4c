//! Writing VMAP 1.0, with the `vmap:` prefix; inline VAST is written as VAST 4.2.

use super::*;
use crate::error::Result;
use crate::write::{bool_str, write_extension, write_vast_into};
use crate::xml::write::XmlWriter;

/// The version every written VMAP declares.
pub const WRITTEN_VMAP_VERSION: &str = "1.0";

/// Writes `vmap` as a VMAP 1.0 document.
pub fn write_vmap(vmap: &Vmap) -> Result<String> {
    let mut w = XmlWriter::new(1024 + vmap.ad_breaks.len() * 2048);
    w.open(
        "vmap:VMAP",
        None,
        &[
            ("xmlns:vmap", Some(VMAP_NAMESPACE)),
            ("version", Some(WRITTEN_VMAP_VERSION)),
        ],
    )?;
    for (i, b) in vmap.ad_breaks.iter().enumerate() {
        write_break(&mut w, b, i + 1)?;
    }
    write_extensions(&mut w, &vmap.extensions)?;
    w.close();
    Ok(w.finish())
}

fn write_extensions(w: &mut XmlWriter, extensions: &[Extension]) -> Result<()> {
    if extensions.is_empty() {
        return Ok(());
    }
    w.open("vmap:Extensions", None, &[])?;
    for (i, e) in extensions.iter().enumerate() {
        write_extension(w, "vmap:Extension", e, i + 1)?;
    }
    w.close();
    Ok(())
}

fn write_break(w: &mut XmlWriter, b: &AdBreak, index: usize) -> Result<()> {
    if b.break_types.is_empty() {
        return Err(w.unwritable(
            Some("vmap:AdBreak"),
            "an AdBreak needs at least one breakType",
        ));
    }
    let offset = b.time_offset.to_string();
    let types: Vec<&str> = b.break_types.iter().map(|t| t.as_str()).collect();
    let types = types.join(",");
    let repeat = b.repeat_after.map(|t| t.to_string());
    w.open(
        "vmap:AdBreak",
        Some(index),
        &[
            ("timeOffset", Some(&offset)),
            ("breakType", Some(&types)),
            ("breakId", b.break_id.as_deref()),
            ("repeatAfter", repeat.as_deref()),
        ],
    )?;
    if let Some(source) = &b.ad_source {
        w.open(
            "vmap:AdSource",
            None,
            &[
                ("id", source.id.as_deref()),
                ("allowMultipleAds", source.allow_multiple_ads.map(bool_str)),
                ("followRedirects", source.follow_redirects.map(bool_str)),
            ],
        )?;
        match &source.data {
            AdSourceData::VastAdData(vast) => {
                w.open("vmap:VASTAdData", None, &[])?;
                write_vast_into(w, vast)?;
                w.close();
            }
            AdSourceData::AdTagUri { template_type, uri } => {
                w.text_element(
                    "vmap:AdTagURI",
                    None,
                    &[("templateType", Some(template_type))],
                    uri,
                )?;
            }
            AdSourceData::CustomAdData { template_type, xml } => {
                w.open(
                    "vmap:CustomAdData",
                    None,
                    &[("templateType", Some(template_type))],
                )?;
                w.raw(xml, false)?;
                w.close();
            }
        }
        w.close();
    }
    if !b.tracking.is_empty() {
        w.open("vmap:TrackingEvents", None, &[])?;
        for (i, t) in b.tracking.iter().enumerate() {
            w.text_element(
                "vmap:Tracking",
                Some(i + 1),
                &[("event", Some(t.event.as_str()))],
                &t.url,
            )?;
        }
        w.close();
    }
    write_extensions(w, &b.extensions)?;
    w.close();
    Ok(())
}
