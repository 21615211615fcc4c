//! Ad and slate media for DASH sessions over a CMAF channel: one track at a time.
//!
//! The creatives and slate a CMAF channel stitches are muxed fMP4 (audio and video in one file, as HLS with
//! `EXT-X-MAP` has them), but a DASH MPD offers each media component in its own AdaptationSet (DASH-IF IOP
//! §3.2.1) and players such as dash.js play no muxed Representation. So the session's ad route serves, next
//! to the muxed `{n}.m4s`, each track on its own: `video-init.mp4` and `video-{n}.m4s`, `audio-init.mp4` and
//! `audio-{n}.m4s`, cut out of the creative's init and media segments
//! ([`interlude_mpegts::fmp4::SingleTrack`]) with their own timestamps; the MPD's `@presentationTimeOffset`
//! per track ([`TrackTimes`]) puts them at the Period start. Server-side beacons fire for the video track's
//! media segments only, so a player fetching both tracks counts each segment once. Slate is served the same
//! way under `/s/{session}/slate-tracks/{rendition}/…` (no beacons: slate is no ad).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use dashmap::DashMap;
use interlude_mpegts::fmp4::{InitSegment, SingleTrack, TrackSelector, first_presentation_times};

use super::proxy::{FetchError, SegmentCache};
use super::{StitchError, Stitcher};

/// A media component of a muxed creative.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TrackKind {
    /// The `vide` track.
    Video,
    /// The `soun` track.
    Audio,
}

impl TrackKind {
    /// The `hdlr` handler_type of the track (ISO/IEC 14496-12 §8.4.3).
    pub(crate) fn handler(self) -> [u8; 4] {
        match self {
            TrackKind::Video => *b"vide",
            TrackKind::Audio => *b"soun",
        }
    }

    fn name(self) -> &'static str {
        match self {
            TrackKind::Video => "video",
            TrackKind::Audio => "audio",
        }
    }

    /// The SegmentTemplate@initialization and @media of the track, relative to the rendition's route.
    pub(crate) fn templates(self) -> (String, String) {
        (
            format!("{}-init.mp4", self.name()),
            format!("{}-$Number$.m4s", self.name()),
        )
    }
}

/// One file of a track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TrackFile {
    /// The init segment.
    Init,
    /// Media segment `n` (from 0).
    Media(usize),
}

/// The track file a segment name asks for (`video-init.mp4`, `audio-3.m4s`), `None` for any other name.
pub(crate) fn parse_track_file(name: &str) -> Option<(TrackKind, TrackFile)> {
    let (kind, rest) = if let Some(rest) = name.strip_prefix("video-") {
        (TrackKind::Video, rest)
    } else {
        (TrackKind::Audio, name.strip_prefix("audio-")?)
    };
    if rest == "init.mp4" {
        return Some((kind, TrackFile::Init));
    }
    let n = rest.strip_suffix(".m4s")?;
    // Digits only: `+3` or `03` are not names the MPD writes.
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) || (n.len() > 1 && n.starts_with('0'))
    {
        return None;
    }
    Some((kind, TrackFile::Media(n.parse().ok()?)))
}

/// Where each track of a creative (or slate) starts, as its init and first segment say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TrackTimes {
    /// (handler, `mdhd` timescale, earliest presentation time of the first segment in that timescale).
    tracks: Vec<([u8; 4], u32, u64)>,
}

impl TrackTimes {
    /// The track's timescale and first presentation time: the Representation's @timescale and
    /// @presentationTimeOffset (ISO/IEC 23009-1 §5.3.9.2), so its first sample plays at the Period start.
    pub(crate) fn of(&self, kind: TrackKind) -> Option<(u32, u64)> {
        self.tracks
            .iter()
            .find(|(h, ..)| *h == kind.handler())
            .map(|(_, ts, t)| (*ts, *t))
    }

    /// Reads them from the muxed init segment and first media segment.
    pub(crate) fn read(init: &[u8], first: &[u8]) -> Option<TrackTimes> {
        let init = InitSegment::parse(init).ok()?;
        let shown = first_presentation_times(first).ok()?;
        let tracks = init
            .tracks
            .iter()
            .filter_map(|t| {
                let (_, at) = shown.iter().find(|(id, _)| *id == t.id)?;
                Some((t.handler, t.timescale, *at))
            })
            .collect();
        Some(TrackTimes { tracks })
    }
}

/// Creative and slate files fetched for track delivery, and their track times.
pub(crate) struct TrackSource {
    cache: SegmentCache,
    times: DashMap<String, Arc<TrackTimes>>,
}

/// Creatives whose [`TrackTimes`] are remembered; past this the memory starts over.
const MAX_TRACK_TIMES: usize = 10_000;

impl TrackSource {
    /// Files fetched with `http` (the guarded third-party client), at most `capacity` bytes kept.
    pub(crate) fn new(http: interlude_outbound::GuardedClient, capacity: usize) -> Self {
        TrackSource {
            cache: SegmentCache::new(http, Duration::from_secs(5), capacity),
            times: DashMap::new(),
        }
    }

    /// The `kind` track of `file`: the init segment at `init_url`, or the media segment at `url`, cut to it.
    pub(crate) async fn serve(
        &self,
        init_url: &str,
        url: &str,
        kind: TrackKind,
        file: TrackFile,
    ) -> Result<Bytes, StitchError> {
        let init = self.cache.get(init_url).await?;
        let bad = |url: &str, e: interlude_mpegts::fmp4::Fmp4Error| {
            StitchError::Upstream(FetchError {
                url: url.to_owned(),
                reason: format!("cannot take its {} track: {e}", kind.name()),
            })
        };
        let single = SingleTrack::new(&init, TrackSelector::Handler(kind.handler()))
            .map_err(|e| bad(init_url, e))?;
        match file {
            TrackFile::Init => Ok(single.init.into()),
            TrackFile::Media(_) => {
                let bytes = self.cache.get(url).await?;
                Ok(single.segment(&bytes).map_err(|e| bad(url, e))?.into())
            }
        }
    }

    /// The track times of the creative whose init segment is at `init_url` and first segment at
    /// `first_url`; `None` when they cannot be read now (asked again on the next MPD).
    pub(crate) async fn times(&self, init_url: &str, first_url: &str) -> Option<Arc<TrackTimes>> {
        if let Some(t) = self.times.get(first_url) {
            return Some(t.clone());
        }
        let read = async {
            let init = self.cache.get(init_url).await?;
            let first = self.cache.get(first_url).await?;
            Ok::<_, FetchError>(TrackTimes::read(&init, &first))
        };
        let times = match read.await {
            Ok(Some(t)) => Arc::new(t),
            Ok(None) => {
                tracing::debug!(%first_url, "Creative's tracks not read for their times.");
                return None;
            }
            Err(error) => {
                tracing::debug!(%first_url, %error, "Creative not fetched for its track times.");
                return None;
            }
        };
        if self.times.len() >= MAX_TRACK_TIMES {
            self.times.clear();
        }
        self.times.insert(first_url.to_owned(), times.clone());
        Some(times)
    }
}

impl Stitcher {
    /// A track file of an ad in the session (see the module documentation); the video track's media
    /// segments fire the server-side beacons they stand for.
    pub async fn ad_track_segment(
        &self,
        session: &super::session::Session,
        ad_instance_id: &str,
        rendition: usize,
        name: &str,
    ) -> Result<Bytes, StitchError> {
        let (kind, file) = parse_track_file(name).ok_or(StitchError::UnknownAdSegment)?;
        let (segment, fire) = match file {
            // The ad's first segment names the init segment (its `EXT-X-MAP`); nothing is played yet.
            TrackFile::Init => (0, false),
            TrackFile::Media(n) => (n, kind == TrackKind::Video),
        };
        let target = self.segments.ad_target(
            &self.channels,
            session,
            ad_instance_id,
            rendition,
            segment,
            fire,
        )?;
        let init = target
            .map
            .as_deref()
            .and_then(super::fmp4_proxy::map_uri)
            .ok_or(StitchError::UnknownAdSegment)?;
        self.segments
            .tracks()
            .serve(init, &target.url, kind, file)
            .await
    }

    /// A track file of the channel's slate, for rendition `rendition` (every media number is the slate's
    /// one segment).
    pub async fn slate_track_segment(
        &self,
        session: &super::session::Session,
        rendition: usize,
        name: &str,
    ) -> Result<Bytes, StitchError> {
        let (kind, file) = parse_track_file(name).ok_or(StitchError::UnknownAdSegment)?;
        let entry = self.channels.entry(&session.channel)?;
        let slate = self
            .channels
            .slate(entry)
            .await
            .ok_or(StitchError::UnknownRendition(rendition))?;
        let url = slate
            .urls
            .get(rendition)
            .ok_or(StitchError::UnknownRendition(rendition))?;
        let init = slate
            .maps
            .get(rendition)
            .and_then(|m| super::fmp4_proxy::map_uri(m))
            .ok_or(StitchError::UnknownAdSegment)?;
        self.segments.tracks().serve(init, url, kind, file).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn track_file_names_are_read_strictly() {
        assert_eq!(
            parse_track_file("video-init.mp4"),
            Some((TrackKind::Video, TrackFile::Init))
        );
        assert_eq!(
            parse_track_file("audio-12.m4s"),
            Some((TrackKind::Audio, TrackFile::Media(12)))
        );
        assert_eq!(
            parse_track_file("video-0.m4s"),
            Some((TrackKind::Video, TrackFile::Media(0)))
        );
        for bad in [
            "3.m4s",
            "video-.m4s",
            "video-03.m4s",
            "video-+3.m4s",
            "audio-3.ts",
            "text-1.m4s",
            "video-init.m4s",
            "audio-99999999999999999999999.m4s",
        ] {
            assert_eq!(parse_track_file(bad), None, "{bad}");
        }
        let (init, media) = TrackKind::Audio.templates();
        assert_eq!(
            parse_track_file(&init),
            Some((TrackKind::Audio, TrackFile::Init))
        );
        assert_eq!(
            parse_track_file(&media.replace("$Number$", "7")),
            Some((TrackKind::Audio, TrackFile::Media(7)))
        );
    }

    #[test]
    fn track_times_are_each_tracks_first_presentation_time_in_its_timescale() {
        let init: &[u8] = include_bytes!("../../../../assets/cmaf/ads/ad15/r0/init.mp4");
        let first: &[u8] = include_bytes!("../../../../assets/cmaf/ads/ad15/r0/000.m4s");
        let times = TrackTimes::read(init, first).unwrap();
        // Video at 12.8 kHz shown two frames (2 × 512 ticks, B-frames) after its first decode time 0; audio
        // from 0 at 48 kHz.
        assert_eq!(times.of(TrackKind::Video), Some((12_800, 1024)));
        assert_eq!(times.of(TrackKind::Audio), Some((48_000, 0)));
        let slate_init: &[u8] = include_bytes!("../../../../assets/cmaf/slate/r0/init.mp4");
        let slate: &[u8] = include_bytes!("../../../../assets/cmaf/slate/r0/000.m4s");
        let times = TrackTimes::read(slate_init, slate).unwrap();
        assert_eq!(times.of(TrackKind::Video), Some((12_800, 0)), "no B-frames");
        assert!(TrackTimes::read(b"", slate).is_none());
    }
}
