//! Ads from outside the catalog's own creatives, offered to a pod at decision time: a line item's third-party
//! VAST tag once fetched and resolved, or a programmatic bid's VAST markup.
//!
//! Server-side insertion splices the ad's segments into the stream. An ad with an HLS rendition (a streaming
//! `MediaFile` of type `application/x-mpegURL`) is stitched as it is; an ad that offers only files to
//! transcode (a `Mezzanine` or a progressive video `MediaFile`) carries them as its
//! [`ConditioningSource`], and the stitcher plays it once it has been conditioned to the channel's renditions
//! (never on the request path: until then it is skipped). What cannot be used either way is refused with the
//! VAST 4.2 error code the third party should hear (§2.3.6.3: 200, 202, 403).

use crate::{ConditioningSource, CreativeRendition, PodAd, SourceFile};
use interlude_vast::{Ad, AdBody, Creative, Delivery, Linear};
use serde::Serialize;

use crate::pod::Tier;

/// An ad offered to the pod by the caller, next to the catalog's line items.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExternalAd {
    /// Id in explanations: the line item's id for third-party tags, `bid:<seat>:<bid id>` for bids.
    pub id: String,
    /// The catalog line item it serves, for third-party tags.
    pub line_item_id: Option<String>,
    /// Tier it competes in.
    pub tier: Tier,
    /// Value within the tier (CPM).
    pub value: f64,
    /// Duration in milliseconds (the VAST `Duration`).
    pub duration_ms: u32,
    /// Advertiser key for separation (the advertiser's domain when known).
    pub advertiser: String,
    /// Competitive categories.
    pub categories: Vec<String>,
    /// The ad as the stitcher will play it (its `ad_instance_id` is set when it is chosen).
    pub ad: PodAd,
}

/// Why a VAST ad cannot be stitched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("VAST error {code}: {reason}")]
pub struct Unusable {
    /// The VAST error code to report through the ad's Error URIs.
    pub code: u16,
    /// What is missing.
    pub reason: String,
}

fn unusable(code: u16, reason: impl Into<String>) -> Unusable {
    Unusable {
        code,
        reason: reason.into(),
    }
}

fn is_hls(mime: &str) -> bool {
    let m = mime.trim().to_ascii_lowercase();
    m == "application/x-mpegurl" || m == "application/vnd.apple.mpegurl"
}

/// Whether a file could be a transcoding source: progressive, not interactive, with a URL, and video (a
/// mezzanine's type is optional in VAST 4). The conditioner makes the final choice among them.
fn transcodable(f: &SourceFile) -> bool {
    f.progressive
        && f.api_framework.is_none()
        && !f.uri.is_empty()
        && (f.mime_type.starts_with("video/") || (f.mezzanine && f.mime_type.is_empty()))
}

/// What conditioning needs of `creative`, when it offers at least one file that could be transcoded.
fn conditioning_source(creative: &Creative, linear: &Linear) -> Option<ConditioningSource> {
    let files = &linear.media_files;
    let sources: Vec<SourceFile> = files
        .mezzanines
        .iter()
        .map(|m| SourceFile {
            uri: m.url.trim().to_owned(),
            mime_type: m.mime_type.trim().to_ascii_lowercase(),
            progressive: m.delivery == Delivery::Progressive,
            width: m.width,
            height: m.height,
            bitrate_kbps: None,
            file_size: m.file_size,
            mezzanine: true,
            api_framework: None,
        })
        .chain(files.media_files.iter().map(|f| SourceFile {
            uri: f.url.trim().to_owned(),
            mime_type: f.mime_type.trim().to_ascii_lowercase(),
            progressive: f.delivery == Delivery::Progressive,
            width: f.width,
            height: f.height,
            bitrate_kbps: f.max_bitrate.or(f.bitrate),
            file_size: f.file_size,
            mezzanine: false,
            api_framework: f.api_framework.clone(),
        }))
        .collect();
    if !sources.iter().any(transcodable) {
        return None;
    }
    Some(ConditioningSource {
        universal_ad_id: creative
            .universal_ad_ids
            .iter()
            .find(|u| !u.value.trim().is_empty() && !u.value.trim().eq_ignore_ascii_case("unknown"))
            .map(|u| (u.id_registry.trim().to_owned(), u.value.trim().to_owned())),
        ad_id: creative.ad_id.clone(),
        creative_id: creative.id.clone(),
        files: sources,
    })
}

/// The stitchable form of a resolved InLine ad: its first linear creative, HLS renditions (or, without any,
/// the files to condition), impression and linear tracking URLs. `ad_instance_id` is left empty for the
/// engine to assign.
pub fn pod_ad_from_vast(ad: &Ad) -> Result<PodAd, Unusable> {
    let AdBody::InLine(inline) = &ad.body else {
        return Err(unusable(200, "a Wrapper where an InLine ad was expected"));
    };
    let (creative, linear) = inline
        .creatives
        .iter()
        .find_map(|c| c.linear.as_ref().map(|l| (c, l)))
        .ok_or_else(|| unusable(200, "no Linear creative"))?;
    let duration = linear
        .duration
        .filter(|d| d.as_millis() > 0)
        .ok_or_else(|| unusable(202, "the Linear has no positive Duration"))?;
    let renditions: Vec<CreativeRendition> = linear
        .media_files
        .media_files
        .iter()
        .filter(|f| f.delivery == Delivery::Streaming || is_hls(&f.mime_type))
        .filter(|f| is_hls(&f.mime_type) && !f.url.trim().is_empty())
        .map(|f| CreativeRendition {
            bandwidth: f
                .max_bitrate
                .or(f.bitrate)
                .unwrap_or(0)
                .saturating_mul(1000),
            resolution: (f.width > 0 && f.height > 0).then(|| {
                (
                    u32::try_from(f.width).unwrap_or(u32::MAX),
                    u32::try_from(f.height).unwrap_or(u32::MAX),
                )
            }),
            playlist_url: f.url.trim().to_owned(),
        })
        .collect();
    let source = if renditions.is_empty() {
        let source = conditioning_source(creative, linear).ok_or_else(|| {
            unusable(
                403,
                format!(
                    "neither an HLS MediaFile nor a progressive video file or Mezzanine to transcode among {} files",
                    linear.media_files.media_files.len() + linear.media_files.mezzanines.len()
                ),
            )
        })?;
        Some(Box::new(source))
    } else {
        None
    };
    let creative_id = creative
        .universal_ad_ids
        .iter()
        .map(|u| u.value.trim())
        .find(|v| !v.is_empty() && *v != "unknown")
        .map(str::to_owned)
        .or_else(|| creative.ad_id.clone())
        .or_else(|| creative.id.clone())
        .or_else(|| ad.id.clone())
        .unwrap_or_else(|| "third-party".to_owned());
    Ok(PodAd {
        ad_instance_id: String::new(),
        creative_id,
        campaign_id: None,
        line_item_id: None,
        duration_secs: duration.as_millis() as f64 / 1000.0,
        renditions,
        impression_urls: inline
            .common
            .impressions
            .iter()
            .map(|i| i.url.trim().to_owned())
            .filter(|u| !u.is_empty())
            .collect(),
        tracking_urls: linear
            .tracking
            .iter()
            .map(|t| (t.event.as_str().to_owned(), t.url.trim().to_owned()))
            .filter(|(_, u)| !u.is_empty())
            .collect(),
        bid: None,
        source,
    })
}

/// The ad's Error URIs (to report an [`Unusable`] code through).
pub fn error_uris(ad: &Ad) -> Vec<String> {
    match &ad.body {
        AdBody::InLine(i) => i.common.errors.clone(),
        AdBody::Wrapper(w) => w.common.errors.clone(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn ad(media: &str, duration: &str) -> Ad {
        let xml = format!(
            r#"<VAST version="4.2"><Ad id="a1"><InLine><AdSystem>x</AdSystem><AdTitle>t</AdTitle>
            <Error><![CDATA[https://3p.example/err?c=[ERRORCODE]]]></Error>
            <Impression><![CDATA[https://3p.example/imp]]></Impression>
            <Creatives><Creative id="c1" adId="ad-9"><UniversalAdId idRegistry="ad-id.org">UAID-1</UniversalAdId>
            <Linear>{duration}<TrackingEvents><Tracking event="complete"><![CDATA[https://3p.example/done]]></Tracking></TrackingEvents>
            <MediaFiles>{media}</MediaFiles></Linear></Creative></Creatives></InLine></Ad></VAST>"#
        );
        interlude_vast::parse_vast(&xml).unwrap().ads.remove(0)
    }

    #[test]
    fn an_hls_inline_becomes_a_pod_ad() {
        let a = ad(
            r#"<MediaFile delivery="streaming" type="application/x-mpegURL" width="1280" height="720" bitrate="3000"><![CDATA[https://cdn.example/ad/720p.m3u8]]></MediaFile>
               <MediaFile delivery="progressive" type="video/mp4" width="1280" height="720"><![CDATA[https://cdn.example/ad.mp4]]></MediaFile>"#,
            "<Duration>00:00:15.000</Duration>",
        );
        let p = pod_ad_from_vast(&a).unwrap();
        assert_eq!(p.creative_id, "UAID-1");
        assert_eq!(p.duration_secs, 15.0);
        assert_eq!(p.renditions.len(), 1);
        assert_eq!(p.renditions[0].bandwidth, 3_000_000);
        assert_eq!(p.renditions[0].resolution, Some((1280, 720)));
        assert_eq!(p.impression_urls, ["https://3p.example/imp"]);
        assert_eq!(
            p.tracking_urls,
            [("complete".to_owned(), "https://3p.example/done".to_owned())]
        );
        assert_eq!(error_uris(&a), ["https://3p.example/err?c=[ERRORCODE]"]);
    }

    #[test]
    fn a_progressive_only_inline_carries_its_files_for_conditioning() {
        let mp4 = r#"<MediaFile delivery="progressive" type="video/MP4" width="1280" height="720" bitrate="2000"><![CDATA[https://cdn.example/ad.mp4]]></MediaFile>
            <Mezzanine delivery="progressive" type="video/quicktime" width="1920" height="1080"><![CDATA[https://cdn.example/ad.mov]]></Mezzanine>"#;
        let p = pod_ad_from_vast(&ad(mp4, "<Duration>00:00:15</Duration>")).unwrap();
        assert!(p.renditions.is_empty());
        let source = p.source.expect("a conditioning source");
        assert_eq!(
            source.universal_ad_id,
            Some(("ad-id.org".to_owned(), "UAID-1".to_owned()))
        );
        assert_eq!(source.ad_id.as_deref(), Some("ad-9"));
        let uris: Vec<&str> = source.files.iter().map(|f| f.uri.as_str()).collect();
        assert_eq!(
            uris,
            ["https://cdn.example/ad.mov", "https://cdn.example/ad.mp4"],
            "mezzanines first"
        );
        assert_eq!(source.files[1].mime_type, "video/mp4");
        assert_eq!(source.files[1].bitrate_kbps, Some(2000));
        assert!(source.files[0].mezzanine && source.files[0].progressive);
    }

    #[test]
    fn an_hls_inline_needs_no_conditioning() {
        let hls = r#"<MediaFile delivery="streaming" type="application/x-mpegURL" width="1" height="1"><![CDATA[https://cdn.example/a.m3u8]]></MediaFile>
            <MediaFile delivery="progressive" type="video/mp4" width="1" height="1"><![CDATA[https://cdn.example/a.mp4]]></MediaFile>"#;
        let p = pod_ad_from_vast(&ad(hls, "<Duration>00:00:15</Duration>")).unwrap();
        assert_eq!(p.renditions.len(), 1);
        assert_eq!(p.source, None);
    }

    #[test]
    fn nothing_stitchable_or_transcodable_and_missing_duration_are_refused_with_their_codes() {
        let vpaid = r#"<MediaFile delivery="progressive" type="application/javascript" apiFramework="VPAID" width="1" height="1"><![CDATA[https://cdn.example/ad.js]]></MediaFile>
            <MediaFile delivery="progressive" type="image/png" width="1" height="1"><![CDATA[https://cdn.example/ad.png]]></MediaFile>
            <MediaFile delivery="streaming" type="application/dash+xml" width="1" height="1"><![CDATA[https://cdn.example/ad.mpd]]></MediaFile>"#;
        let e = pod_ad_from_vast(&ad(vpaid, "<Duration>00:00:15</Duration>")).unwrap_err();
        assert_eq!(e.code, 403, "{e}");
        let hls = r#"<MediaFile delivery="streaming" type="application/vnd.apple.mpegurl" width="1" height="1"><![CDATA[https://cdn.example/a.m3u8]]></MediaFile>"#;
        assert_eq!(pod_ad_from_vast(&ad(hls, "")).unwrap_err().code, 202);
    }
}
