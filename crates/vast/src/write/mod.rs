//! The VAST 4.2 writer: a document valid against the IAB's `vast_4.2.xsd`, or an [`Error::Unwritable`]
//! naming the path of what 4.2 cannot express. Nothing is invented and nothing is silently dropped:
//!
//! - elements go out in the order the schema's sequences fix, whatever order the source had;
//! - placeholders the schema requires and the specification defines are written for absent values: an
//!   `Impression` of `about:blank`, a `UniversalAdId` of `unknown`; required strings with no value
//!   (`AdSystem`, `AdTitle`, `AdServingId` of a pre-4.1 ad) are written empty; the reader reads all of these
//!   back as absent, so a model survives write → parse unchanged; required dimensions the model holds as 0
//!   (absent, or audio) are written as 0, the value the schema documents for "no picture";
//! - unknown elements travel in one `Extension` of type
//!   [`UNKNOWN_ELEMENTS_EXTENSION`](crate::model::UNKNOWN_ELEMENTS_EXTENSION) per ad;
//! - what has no valid form is an error: an InLine without creatives, a linear creative without
//!   `Duration` or `MediaFile`, a `Pricing` that is not a decimal, a time of 24 hours or more where the
//!   schema says `xs:time`, characters XML cannot carry.

mod creative;

use crate::error::Result;
use crate::model::*;
use crate::parse::node::UNKNOWN_PARENT_ATTR;
use crate::xml::write::XmlWriter;

/// The version every written document declares.
pub const WRITTEN_VERSION: &str = "4.2";

const VAST_NAMESPACE: &str = "http://www.iab.com/VAST";
/// Namespace of the element that wraps each carried unknown element.
const UNKNOWN_NAMESPACE: &str = "urn:interlude:vast:unknown";

/// Writes `vast` as a VAST 4.2 document.
pub fn write_vast(vast: &Vast) -> Result<String> {
    let mut w = XmlWriter::new(2048 + vast.ads.len() * 4096);
    write_vast_into(&mut w, vast)?;
    Ok(w.finish())
}

/// Writes the `VAST` element into `w` (also used for VAST inside VMAP).
pub(crate) fn write_vast_into(w: &mut XmlWriter, vast: &Vast) -> Result<()> {
    w.open(
        "VAST",
        None,
        &[
            ("version", Some(WRITTEN_VERSION)),
            ("xmlns", Some(VAST_NAMESPACE)),
        ],
    )?;
    if !vast.ads.is_empty() && !vast.errors.is_empty() {
        return Err(w.unwritable(
            Some("Error"),
            "VAST 4.2 allows root-level Error only in a response without ads",
        ));
    }
    for (i, ad) in vast.ads.iter().enumerate() {
        write_ad(w, ad, i + 1)?;
    }
    for (i, error) in vast.errors.iter().enumerate() {
        w.text_element("Error", Some(i + 1), &[], error)?;
    }
    w.close();
    Ok(())
}

fn write_ad(w: &mut XmlWriter, ad: &Ad, index: usize) -> Result<()> {
    let sequence = ad.sequence.map(|s| s.to_string());
    w.open(
        "Ad",
        Some(index),
        &[
            ("id", ad.id.as_deref()),
            ("sequence", sequence.as_deref()),
            ("conditionalAd", ad.conditional_ad.map(bool_str)),
            ("adType", ad.ad_type.map(AdType::as_str)),
        ],
    )?;
    match &ad.body {
        AdBody::InLine(inline) => write_inline(w, inline)?,
        AdBody::Wrapper(wrapper) => write_wrapper(w, wrapper)?,
    }
    w.close();
    Ok(())
}

pub(crate) fn bool_str(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

fn write_inline(w: &mut XmlWriter, inline: &InLine) -> Result<()> {
    w.open("InLine", None, &[])?;
    write_common_head(w, &inline.common)?;
    w.text_element(
        "AdServingId",
        None,
        &[],
        inline.ad_serving_id.as_deref().unwrap_or(""),
    )?;
    w.text_element(
        "AdTitle",
        None,
        &[],
        inline.ad_title.as_deref().unwrap_or(""),
    )?;
    write_verifications(w, &inline.common.ad_verifications)?;
    if let Some(advertiser) = &inline.advertiser {
        w.text_element("Advertiser", None, &[], advertiser)?;
    }
    for (i, category) in inline.categories.iter().enumerate() {
        w.text_element(
            "Category",
            Some(i + 1),
            &[("authority", Some(&category.authority))],
            &category.value,
        )?;
    }
    if inline.creatives.is_empty() {
        return Err(w.unwritable(
            Some("Creatives"),
            "an InLine ad needs at least one Creative",
        ));
    }
    w.open("Creatives", None, &[])?;
    for (i, c) in inline.creatives.iter().enumerate() {
        creative::write_creative(w, c, i + 1)?;
    }
    w.close();
    if let Some(description) = &inline.description {
        w.text_element("Description", None, &[], description)?;
    }
    if let Some(expires) = inline.expires {
        w.text_element("Expires", None, &[], &expires.to_string())?;
    }
    if let Some(survey) = &inline.survey {
        w.text_element(
            "Survey",
            None,
            &[("type", survey.mime_type.as_deref())],
            &survey.url,
        )?;
    }
    w.close();
    Ok(())
}

fn write_wrapper(w: &mut XmlWriter, wrapper: &Wrapper) -> Result<()> {
    w.open(
        "Wrapper",
        None,
        &[
            (
                "followAdditionalWrappers",
                wrapper.follow_additional_wrappers.map(bool_str),
            ),
            ("allowMultipleAds", wrapper.allow_multiple_ads.map(bool_str)),
            ("fallbackOnNoAd", wrapper.fallback_on_no_ad.map(bool_str)),
        ],
    )?;
    write_common_head(w, &wrapper.common)?;
    write_verifications(w, &wrapper.common.ad_verifications)?;
    for (i, blocked) in wrapper.blocked_ad_categories.iter().enumerate() {
        w.text_element(
            "BlockedAdCategories",
            Some(i + 1),
            &[("authority", blocked.authority.as_deref())],
            &blocked.value,
        )?;
    }
    if !wrapper.creatives.is_empty() {
        w.open("Creatives", None, &[])?;
        for (i, c) in wrapper.creatives.iter().enumerate() {
            creative::write_wrapper_creative(w, c, i + 1)?;
        }
        w.close();
    }
    w.text_element("VASTAdTagURI", None, &[], &wrapper.vast_ad_tag_uri)?;
    w.close();
    Ok(())
}

/// `AdDefinitionBase_type`: AdSystem, Error*, Extensions?, Impression+, Pricing?, ViewableImpression?.
fn write_common_head(w: &mut XmlWriter, common: &AdCommon) -> Result<()> {
    let (name, version) = match &common.ad_system {
        Some(s) => (s.name.as_str(), s.version.as_deref()),
        None => ("", None),
    };
    w.text_element("AdSystem", None, &[("version", version)], name)?;
    for (i, error) in common.errors.iter().enumerate() {
        w.text_element("Error", Some(i + 1), &[], error)?;
    }
    if !common.extensions.is_empty() || !common.unknown.is_empty() {
        w.open("Extensions", None, &[])?;
        for (i, e) in common.extensions.iter().enumerate() {
            write_extension(w, "Extension", e, i + 1)?;
        }
        if !common.unknown.is_empty() {
            let index = common.extensions.len() + 1;
            w.open(
                "Extension",
                Some(index),
                &[("type", Some(UNKNOWN_ELEMENTS_EXTENSION))],
            )?;
            for (i, unknown) in common.unknown.iter().enumerate() {
                w.open(
                    "u:Unknown",
                    Some(i + 1),
                    &[
                        ("xmlns:u", Some(UNKNOWN_NAMESPACE)),
                        (UNKNOWN_PARENT_ATTR, Some(&unknown.parent)),
                    ],
                )?;
                w.raw(&unknown.xml, true)?;
                w.close();
            }
            w.close();
        }
        w.close();
    }
    if common.impressions.is_empty() {
        w.text_element("Impression", Some(1), &[], NO_IMPRESSION)?;
    }
    for (i, impression) in common.impressions.iter().enumerate() {
        w.text_element(
            "Impression",
            Some(i + 1),
            &[("id", impression.id.as_deref())],
            &impression.url,
        )?;
    }
    if let Some(pricing) = &common.pricing {
        if !is_decimal(&pricing.value) {
            return Err(w.unwritable(Some("Pricing"), "the price must be a decimal number"));
        }
        if pricing.currency.len() != 3 || !pricing.currency.bytes().all(|b| b.is_ascii_alphabetic())
        {
            return Err(w.unwritable(
                Some("Pricing"),
                "the currency must be three letters (ISO 4217)",
            ));
        }
        w.text_element(
            "Pricing",
            None,
            &[
                ("model", Some(pricing.model.as_str())),
                ("currency", Some(&pricing.currency)),
            ],
            &pricing.value,
        )?;
    }
    if let Some(vi) = &common.viewable_impression {
        w.open("ViewableImpression", None, &[("id", vi.id.as_deref())])?;
        for (name, urls) in [
            ("Viewable", &vi.viewable),
            ("NotViewable", &vi.not_viewable),
            ("ViewUndetermined", &vi.view_undetermined),
        ] {
            for (i, url) in urls.iter().enumerate() {
                w.text_element(name, Some(i + 1), &[], url)?;
            }
        }
        w.close();
    }
    Ok(())
}

pub(crate) fn write_extension(
    w: &mut XmlWriter,
    name: &'static str,
    e: &Extension,
    index: usize,
) -> Result<()> {
    w.open(name, Some(index), &[("type", e.extension_type.as_deref())])?;
    w.raw(&e.xml, false)?;
    w.close();
    Ok(())
}

fn write_verifications(w: &mut XmlWriter, verifications: &[Verification]) -> Result<()> {
    if verifications.is_empty() {
        return Ok(());
    }
    w.open("AdVerifications", None, &[])?;
    for (i, v) in verifications.iter().enumerate() {
        w.open(
            "Verification",
            Some(i + 1),
            &[("vendor", v.vendor.as_deref())],
        )?;
        for (j, r) in v.executable_resources.iter().enumerate() {
            w.text_element(
                "ExecutableResource",
                Some(j + 1),
                &[
                    ("apiFramework", r.api_framework.as_deref()),
                    ("type", r.resource_type.as_deref()),
                ],
                &r.url,
            )?;
        }
        for (j, r) in v.javascript_resources.iter().enumerate() {
            w.text_element(
                "JavaScriptResource",
                Some(j + 1),
                &[
                    ("apiFramework", r.api_framework.as_deref()),
                    ("browserOptional", r.browser_optional.map(bool_str)),
                ],
                &r.url,
            )?;
        }
        if !v.tracking.is_empty() {
            w.open("TrackingEvents", None, &[])?;
            for (j, t) in v.tracking.iter().enumerate() {
                w.text_element(
                    "Tracking",
                    Some(j + 1),
                    &[("event", Some(&t.event))],
                    &t.url,
                )?;
            }
            w.close();
        }
        if let Some(params) = &v.verification_parameters {
            w.text_element("VerificationParameters", None, &[], params)?;
        }
        w.close();
    }
    w.close();
    Ok(())
}

/// `xs:decimal`: an optional sign, digits, an optional fraction (surrounding whitespace allowed).
pub(crate) fn is_decimal(s: &str) -> bool {
    let s = crate::xml::read::trim_xml(s);
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    (!int.is_empty() || !frac.is_empty())
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
}
