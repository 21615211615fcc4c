//! Ad and slate Periods: adaptation sets that mirror the content's (same @id, kind, language, roles, so
//! players keep the selected tracks across the Period boundary), each filled with the ad renditions that
//! come closest to the content's representations in codec and bandwidth, addressed by a SegmentTimeline
//! of the ad's segments (ISO/IEC 23009-1 §5.3.9.6) with URLs from the caller's [`AdUrls`].

use std::time::Duration;

use crate::model::{AdaptationSet, ContentKind, Period, Representation, SegmentTemplate};
use crate::segment::{Segment, compress_timeline};
use crate::time::duration_to_ticks;

use super::plan::{Ad, AdRendition, AdUrlRequest, AdUrls, StitchWarning};

fn fourcc(codecs: &str) -> &str {
    codecs.split(['.', ',']).next().unwrap_or("").trim()
}

fn primary_language(lang: &str) -> String {
    lang.split(['-', '_'])
        .next()
        .unwrap_or("")
        .to_ascii_lowercase()
}

/// The renditions of `ad` that may stand in for `set`'s representations: of the same kind, the same language
/// (when the content names one and the ad has it), the same codec family when the ad has it.
fn candidates<'a>(set: &AdaptationSet, ad: &'a Ad) -> Vec<&'a AdRendition> {
    let kind = set.kind();
    if kind == ContentKind::Other {
        return Vec::new();
    }
    let mut candidates: Vec<&AdRendition> =
        ad.renditions.iter().filter(|r| r.kind == kind).collect();
    if let Some(lang) = set.lang.as_deref().map(primary_language) {
        let same: Vec<&AdRendition> = candidates
            .iter()
            .copied()
            .filter(|r| r.lang.as_deref().map(primary_language).as_deref() == Some(lang.as_str()))
            .collect();
        if !same.is_empty() {
            candidates = same;
        }
    }
    let content_codecs = set
        .codecs
        .as_deref()
        .or_else(|| set.representations.iter().find_map(|r| r.codecs.as_deref()))
        .unwrap_or("");
    let family = fourcc(content_codecs);
    if !family.is_empty() {
        let same: Vec<&AdRendition> = candidates
            .iter()
            .copied()
            .filter(|r| fourcc(&r.codecs) == family)
            .collect();
        if !same.is_empty() {
            candidates = same;
        }
    }
    candidates
}

/// For each representation of `set` (in order), the ad rendition that stands in for it in the ad Period:
/// among the [`candidates`], the one closest in bandwidth (on a log scale). Renditions repeat when the ad
/// has fewer than the content, so every content Representation@id is in every ad Period: players that join
/// Periods by Representation@id (video.js / mpd-parser) then keep one track per content rendition.
/// Empty when the ad has nothing for the set.
pub(crate) fn stand_ins<'a>(set: &AdaptationSet, ad: &'a Ad) -> Vec<(usize, &'a AdRendition)> {
    let candidates = candidates(set, ad);
    if candidates.is_empty() {
        return Vec::new();
    }
    set.representations
        .iter()
        .enumerate()
        .filter_map(|(ri, rep)| {
            let bw = rep.bandwidth.unwrap_or(0);
            let best = candidates.iter().copied().min_by(|a, b| {
                let da = log_distance(a.bandwidth, bw);
                let db = log_distance(b.bandwidth, bw);
                da.total_cmp(&db).then(a.bandwidth.cmp(&b.bandwidth))
            })?;
            Some((ri, best))
        })
        .collect()
}

fn log_distance(a: u64, b: u64) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let (a, b) = ((a.max(1)) as f64, (b.max(1)) as f64);
    (a.ln() - b.ln()).abs()
}

/// The ad's segments for one rendition, those starting before `plays` (the placed length), timed from
/// `origin`.
fn ad_segments(r: &AdRendition, full: Duration, plays: Duration, origin: u64) -> Vec<Segment> {
    let ts = r.timescale.max(1);
    let d = r.segment_duration.max(1);
    let total = duration_to_ticks(full, ts);
    let cut = duration_to_ticks(plays, ts);
    let mut out = Vec::new();
    let mut t = 0u64;
    let mut n = r.start_number;
    while t < total && t < cut {
        let dur = d.min(total - t);
        out.push(Segment {
            number: n,
            time: origin.saturating_add(t),
            duration: dur,
        });
        t += dur;
        n += 1;
        if out.len() as u64 >= crate::parse::MAX_TIMELINE_SEGMENTS {
            break;
        }
    }
    out
}

/// Whether the content Period addresses its segments by `@duration` alone (no SegmentTimeline in any of
/// its templates): ad Periods then do the same.
///
/// One addressing scheme across Periods (DASH-IF IOP §4.3.3.3) matters to players that correct clock drift
/// from explicit segment times: Shaka Player, seeing any SegmentTimeline, places its live edge at the end
/// of the last segment it lists, at every MPD refresh. Ad Periods written with timelines over `@duration`
/// content therefore pin the live edge to the end of the last break for as long as that break is in the
/// MPD, and the content after it is asked for before it exists (404) until the break leaves the MPD: the
/// player stalls after every break, and a viewer who joins just after one stalls from the start. An ad's
/// segments are uniform with a shorter last one ([`AdRendition::segment_duration`]), which `@duration`
/// expresses exactly (the Period's duration ends the last segment, ISO/IEC 23009-1 §5.3.9.5.3).
pub(crate) fn addressed_by_duration(content: &Period) -> bool {
    let templates = super::content::effective_templates(content);
    !templates.is_empty()
        && templates
            .iter()
            .all(|(_, _, t)| t.timeline.is_none() && t.duration.is_some())
}

/// Everything an ad Period is built from.
pub(crate) struct AdPeriodSpec<'a> {
    pub(crate) content: &'a Period,
    pub(crate) break_id: &'a str,
    pub(crate) period_id: String,
    pub(crate) index: usize,
    pub(crate) is_slate: bool,
    pub(crate) ad: &'a Ad,
    pub(crate) start: Duration,
    pub(crate) plays: Duration,
}

/// Replaces `$RepresentationID$` and `$Bandwidth$` in an ad URL template with the ad rendition's own values:
/// the Representation carries the content's @id in the ad Period, so the identifiers must not be left for
/// the player to fill. `$Number$`, `$Time$` and `$$` stay.
fn own_identifiers(template: &str, r: &AdRendition) -> String {
    template
        .replace("$RepresentationID$", &r.id)
        .replace("$Bandwidth$", &r.bandwidth.to_string())
}

fn non_empty(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

/// Builds the Period that plays `spec.ad` for `spec.plays` from `spec.start`.
///
/// What players match Periods on is kept from the content (DASH-IF IOP §4.3.3.3, multi-Period content):
/// AdaptationSet@id, @contentType, @lang, Role, Accessibility and Label; every content Representation@id,
/// each standing for the ad rendition closest to it; and the content's Period- and AdaptationSet-level
/// BaseURLs, so a player that groups tracks by resolved base URL (mpd-parser) groups ads with content (ad
/// URLs are absolute in practice; relative ones resolve against that chain). Attributes the ad has no value
/// for are left out rather than written empty (an empty @initialization means "no init segment" to nobody).
pub(crate) fn ad_period(
    spec: &AdPeriodSpec<'_>,
    urls: &dyn AdUrls,
    warnings: &mut Vec<StitchWarning>,
) -> Period {
    let mut period = Period {
        id: Some(spec.period_id.clone()),
        start: Some(spec.start),
        duration: Some(spec.plays),
        base_urls: spec.content.base_urls.clone(),
        ..Period::default()
    };
    let by_duration = addressed_by_duration(spec.content);
    for (ai, set) in spec.content.adaptation_sets.iter().enumerate() {
        let stand_ins = stand_ins(set, spec.ad);
        if stand_ins.is_empty() {
            if matches!(set.kind(), ContentKind::Video | ContentKind::Audio) {
                warnings.push(StitchWarning::NoRendition {
                    break_id: spec.break_id.to_string(),
                    ad_id: spec.ad.id.clone(),
                    adaptation_set: set.id.clone().unwrap_or_else(|| ai.to_string()),
                });
            }
            continue;
        }
        let set_mime = stand_ins.first().and_then(|(_, r)| non_empty(&r.mime_type));
        let mut out = AdaptationSet {
            id: set.id.clone(),
            content_type: set.content_type.clone().or_else(|| {
                Some(
                    match set.kind() {
                        ContentKind::Video => "video",
                        ContentKind::Audio => "audio",
                        ContentKind::Text => "text",
                        ContentKind::Other => "image",
                    }
                    .to_string(),
                )
            }),
            mime_type: set_mime.clone(),
            lang: set.lang.clone(),
            segment_alignment: Some("true".to_string()),
            roles: set.roles.clone(),
            accessibility: set.accessibility.clone(),
            base_urls: set.base_urls.clone(),
            extra_children: set
                .extra_children
                .iter()
                .filter(|c| c.local_name() == "Label")
                .cloned()
                .collect(),
            ..AdaptationSet::default()
        };
        for (ri, r) in stand_ins {
            let Some(content_rep) = set.representations.get(ri) else {
                continue;
            };
            let request = AdUrlRequest {
                break_id: spec.break_id,
                period_id: &spec.period_id,
                index: spec.index,
                is_slate: spec.is_slate,
                ad: spec.ad,
                rendition: r,
            };
            let u = urls.urls(&request);
            let origin = urls.media_time_at_start(&request);
            let segments = ad_segments(r, spec.ad.duration, spec.plays, origin);
            let mime = non_empty(&r.mime_type).filter(|m| Some(m) != set_mime.as_ref());
            out.representations.push(Representation {
                id: content_rep.id.clone(),
                bandwidth: Some(r.bandwidth),
                codecs: non_empty(&r.codecs),
                mime_type: mime,
                width: r.width,
                height: r.height,
                frame_rate: r.frame_rate.as_deref().and_then(non_empty),
                audio_sampling_rate: r.audio_sampling_rate.map(|s| s.to_string()),
                segment_template: Some(SegmentTemplate {
                    media: non_empty(&own_identifiers(&u.media, r)),
                    initialization: non_empty(&own_identifiers(&u.initialization, r)),
                    timescale: Some(r.timescale.max(1)),
                    start_number: Some(r.start_number),
                    presentation_time_offset: (origin > 0).then_some(origin),
                    duration: by_duration.then_some(r.segment_duration.max(1)),
                    timeline: (!by_duration).then(|| compress_timeline(&segments)),
                    ..SegmentTemplate::default()
                }),
                ..Representation::default()
            });
        }
        period.adaptation_sets.push(out);
    }
    period
}
