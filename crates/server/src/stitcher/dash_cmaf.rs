//! The ad and slate Periods of a DASH session over a CMAF channel: the origin's MPD offers fMP4 video and
//! audio in separate AdaptationSets (`video/mp4`, `audio/mp4`), so each ad and the slate is offered as a
//! video track per content rendition and one audio track, each with its init segment, served by this
//! server one track at a time (see `tracks`). Each Representation's @timescale is its track's (`mdhd`), its
//! @presentationTimeOffset and first `S@t` the track's first presentation time as served (ISO/IEC 23009-1
//! §5.3.9.2; the video's is two frames past its first decode time when it has B-frames), so both tracks
//! start at the Period start.

use std::collections::HashMap;
use std::time::Duration;

use interlude_dash::{Ad, AdRendition, ContentKind, Mpd};

use super::Stitcher;
use super::channel::ChannelSnapshot;
use super::dash::content_rendition;
use super::fmp4_proxy::map_uri;
use super::session::BreakDecision;
use super::tracks::{TrackKind, TrackTimes};

/// Whether the MPD's content is fragmented MP4 (an AdaptationSet or Representation of `video/mp4` or
/// `audio/mp4`), rather than MPEG-2 TS.
pub(crate) fn is_fmp4(mpd: &Mpd) -> bool {
    let mp4 = |m: Option<&String>| m.is_some_and(|m| m == "video/mp4" || m == "audio/mp4");
    mpd.periods
        .iter()
        .flat_map(|p| &p.adaptation_sets)
        .any(|s| {
            mp4(s.mime_type.as_ref()) || s.representations.iter().any(|r| mp4(r.mime_type.as_ref()))
        })
}

/// The bandwidth of the content's first audio Representation: the ad's audio track stands for it (the demo
/// creatives' audio is encoded as the content's). 128 kb/s when the MPD says none.
pub(crate) fn audio_bandwidth(mpd: &Mpd) -> u64 {
    mpd.periods
        .iter()
        .flat_map(|p| &p.adaptation_sets)
        .filter(|s| s.kind() == ContentKind::Audio)
        .flat_map(|s| &s.representations)
        .find_map(|r| r.bandwidth)
        .unwrap_or(128_000)
}

/// The video or the audio entry of an RFC 6381 codecs list such as `avc1.4d401e,mp4a.40.2`.
fn codec_of(codecs: &str, kind: TrackKind) -> String {
    const VIDEO: [&str; 7] = ["avc1", "avc3", "hvc1", "hev1", "av01", "vp09", "vp08"];
    codecs
        .split(',')
        .map(str::trim)
        .find(|c| {
            let fourcc = c.split('.').next().unwrap_or("");
            VIDEO.contains(&fourcc) == (kind == TrackKind::Video)
        })
        .unwrap_or("")
        .to_owned()
}

/// What one track rendition is made from.
pub(crate) struct TrackRendition {
    pub(crate) kind: TrackKind,
    /// AdRendition@id (unique within the ad).
    pub(crate) id: String,
    /// The route serving the track's files, without the file name.
    pub(crate) route: String,
    /// Length of every segment but the last, in microseconds.
    pub(crate) segment_micros: u64,
    /// The content rendition (HLS variant) the ad's rendition stands for.
    pub(crate) content: usize,
}

/// The ad rendition of one track, and the track's first presentation time (the Representation's
/// presentationTimeOffset); `None` when the creative has no such track.
pub(crate) fn track_rendition(
    spec: &TrackRendition,
    times: &TrackTimes,
    codecs: &str,
    snapshot: &ChannelSnapshot,
    audio_bw: u64,
) -> Option<(AdRendition, u64)> {
    let (timescale, first) = times.of(spec.kind)?;
    let (initialization, media) = spec.kind.templates();
    let (kind, mime, (bandwidth, size)) = match spec.kind {
        TrackKind::Video => (
            ContentKind::Video,
            "video/mp4",
            content_rendition(snapshot, spec.content),
        ),
        TrackKind::Audio => (ContentKind::Audio, "audio/mp4", (audio_bw, None)),
    };
    let ticks = u128::from(spec.segment_micros) * u128::from(timescale) / 1_000_000;
    Some((
        AdRendition {
            id: spec.id.clone(),
            kind,
            mime_type: mime.into(),
            codecs: codec_of(codecs, spec.kind),
            bandwidth,
            width: size.map(|s| s.0),
            height: size.map(|s| s.1),
            frame_rate: None,
            // An AAC track's timescale is its sampling rate.
            audio_sampling_rate: (spec.kind == TrackKind::Audio).then_some(timescale),
            lang: None,
            timescale: u64::from(timescale),
            segment_duration: u64::try_from(ticks).unwrap_or(u64::MAX).max(1),
            start_number: 0,
            media: format!("{}/{media}", spec.route),
            initialization: format!("{}/{initialization}", spec.route),
        },
        first,
    ))
}

/// Where each ad and slate track rendition starts, by (ad id, rendition id), in the rendition's timescale.
pub(crate) type MediaStarts = HashMap<(String, String), u64>;

/// Everything the CMAF ads of one session MPD are built with.
pub(crate) struct CmafAds<'a> {
    /// `{base_url}/s/{session}`.
    pub(crate) base: &'a str,
    pub(crate) codecs: &'a str,
    pub(crate) snapshot: &'a ChannelSnapshot,
    pub(crate) audio_bw: u64,
}

impl Stitcher {
    /// The decided ads as DASH ads of a CMAF channel: per ad, a video track per rendition and the audio
    /// track of its first rendition, through the session's ad route; their starts go into `starts`. An ad
    /// whose creative cannot be read now is left out of this MPD (slate takes its time).
    pub(crate) async fn cmaf_ads(
        &self,
        decision: &BreakDecision,
        with: &CmafAds<'_>,
        starts: &mut MediaStarts,
    ) -> Vec<Ad> {
        let mut out = Vec::new();
        for a in decision.ads.iter().filter(|a| !a.segment_micros.is_empty()) {
            let id = &a.ad.ad_instance_id;
            let first_micros = a.segment_micros.first().copied().unwrap_or(1);
            let mut renditions = Vec::new();
            for (i, urls) in a.segment_urls.iter().enumerate() {
                let (Some(first), Some(init)) = (urls.first(), a.map(i).and_then(map_uri)) else {
                    continue;
                };
                let Some(times) = self.segments.tracks().times(init, first).await else {
                    continue;
                };
                let route = format!("{}/ads/{id}/{i}", with.base);
                let mut kinds = vec![(TrackKind::Video, i.to_string())];
                if i == 0 {
                    kinds.push((TrackKind::Audio, "a0".to_owned()));
                }
                for (kind, rendition_id) in kinds {
                    let spec = TrackRendition {
                        kind,
                        id: rendition_id,
                        route: route.clone(),
                        segment_micros: first_micros,
                        content: i,
                    };
                    if let Some((r, first)) =
                        track_rendition(&spec, &times, with.codecs, with.snapshot, with.audio_bw)
                    {
                        starts.insert((id.clone(), r.id.clone()), first);
                        renditions.push(r);
                    }
                }
            }
            if renditions.is_empty() {
                tracing::debug!(ad = %id, "fMP4 ad's tracks not read yet; left out of the DASH MPD.");
                continue;
            }
            out.push(Ad {
                id: id.clone(),
                duration: Duration::from_micros(a.segment_micros.iter().sum()),
                renditions,
            });
        }
        out
    }

    /// The channel's fMP4 slate as a DASH ad (`id` "slate"): a video track per rendition and the first
    /// rendition's audio, through the session's slate track route; its starts go into `starts`.
    pub(crate) async fn cmaf_slate(
        &self,
        channel: &str,
        with: &CmafAds<'_>,
        starts: &mut MediaStarts,
    ) -> Option<Ad> {
        let entry = self.channels.entry(channel).ok()?;
        let slate = self.channels.slate(entry).await?;
        let micros = (slate.seconds * 1e6).round() as u64;
        let mut renditions = Vec::new();
        for (i, url) in slate.urls.iter().enumerate() {
            let Some(init) = slate.maps.get(i).and_then(|m| map_uri(m)) else {
                continue;
            };
            let Some(times) = self.segments.tracks().times(init, url).await else {
                continue;
            };
            let mut kinds = vec![(TrackKind::Video, format!("slate{i}"))];
            if i == 0 {
                kinds.push((TrackKind::Audio, "slatea0".to_owned()));
            }
            for (kind, id) in kinds {
                let spec = TrackRendition {
                    kind,
                    id,
                    route: format!("{}/slate-tracks/{i}", with.base),
                    segment_micros: micros,
                    content: i,
                };
                if let Some((r, first)) =
                    track_rendition(&spec, &times, with.codecs, with.snapshot, with.audio_bw)
                {
                    starts.insert(("slate".to_owned(), r.id.clone()), first);
                    renditions.push(r);
                }
            }
        }
        (!renditions.is_empty()).then(|| Ad {
            id: "slate".into(),
            duration: Duration::from_micros(micros),
            renditions,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codecs_split_into_video_and_audio() {
        assert_eq!(
            codec_of("avc1.4d401e,mp4a.40.2", TrackKind::Video),
            "avc1.4d401e"
        );
        assert_eq!(
            codec_of("avc1.4d401e, mp4a.40.2", TrackKind::Audio),
            "mp4a.40.2"
        );
        assert_eq!(codec_of("mp4a.40.2", TrackKind::Video), "");
        assert_eq!(codec_of("hvc1.1.6.L93.B0,ec-3", TrackKind::Audio), "ec-3");
    }

    #[test]
    fn a_track_rendition_has_its_tracks_timescale_and_start() {
        let init: &[u8] = include_bytes!("../../../../assets/cmaf/ads/ad15/r0/init.mp4");
        let first: &[u8] = include_bytes!("../../../../assets/cmaf/ads/ad15/r0/000.m4s");
        let times = TrackTimes::read(init, first).unwrap();
        let snapshot = ChannelSnapshot::default();
        let spec = |kind| TrackRendition {
            kind,
            id: "0".into(),
            route: "http://s/s/x/ads/ad-1/0".into(),
            segment_micros: 2_000_000,
            content: 0,
        };
        let (video, start) = track_rendition(
            &spec(TrackKind::Video),
            &times,
            "avc1.4d401e,mp4a.40.2",
            &snapshot,
            64_000,
        )
        .unwrap();
        assert_eq!(
            (video.timescale, video.segment_duration, start),
            (12_800, 25_600, 1024)
        );
        assert_eq!(video.mime_type, "video/mp4");
        assert_eq!(video.codecs, "avc1.4d401e");
        assert_eq!(
            video.initialization,
            "http://s/s/x/ads/ad-1/0/video-init.mp4"
        );
        assert_eq!(video.media, "http://s/s/x/ads/ad-1/0/video-$Number$.m4s");
        let (audio, start) = track_rendition(
            &spec(TrackKind::Audio),
            &times,
            "avc1.4d401e,mp4a.40.2",
            &snapshot,
            64_000,
        )
        .unwrap();
        assert_eq!(
            (audio.timescale, audio.segment_duration, start),
            (48_000, 96_000, 0)
        );
        assert_eq!(
            (audio.kind, audio.bandwidth, audio.audio_sampling_rate),
            (ContentKind::Audio, 64_000, Some(48_000))
        );
        assert_eq!(audio.media, "http://s/s/x/ads/ad-1/0/audio-$Number$.m4s");
    }
}
