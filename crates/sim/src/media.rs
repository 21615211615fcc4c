//! The real media the simulator serves, embedded in the binary so tests and the demo work from any directory:
//! a content loop, ad creatives and a slate, each in the same two H.264/AAC renditions (see `assets/README.md`
//! for how they were made), as MPEG-TS and as CMAF (fragmented MP4 with an init segment per rendition).

use std::sync::OnceLock;

use include_dir::{Dir, include_dir};
use interlude_mpegts::fmp4::{InitSegment, Track, decode_times};

static ASSETS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../assets");

/// Segment duration of every asset, in seconds (fixed by `scripts/make-assets.sh`).
pub const SEGMENT_SECS: u64 = 2;

/// One video rendition of every asset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendition {
    /// Directory name (`r0`, `r1`).
    pub name: &'static str,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Peak bit rate over the content segments, in bits per second (EXT-X-STREAM-INF BANDWIDTH).
    pub bandwidth: u64,
    /// Average bit rate over the content segments (AVERAGE-BANDWIDTH).
    pub average_bandwidth: u64,
}

/// `CODECS` of every rendition: H.264 Main level 3.0 and AAC-LC.
pub const CODECS: &str = "avc1.4d401e,mp4a.40.2";

/// How segments are packaged: the origin serves each channel both ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Packaging {
    /// MPEG-TS segments (`NNN.ts`).
    Ts,
    /// CMAF: fragmented MP4 media segments (`NNN.m4s`) after an init segment (`init.mp4`), ISO/IEC 23000-19.
    Cmaf,
}

impl Packaging {
    /// The media segment file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Packaging::Ts => "ts",
            Packaging::Cmaf => "m4s",
        }
    }

    /// The asset directory prefix (`""` or `"cmaf/"`).
    fn prefix(self) -> &'static str {
        match self {
            Packaging::Ts => "",
            Packaging::Cmaf => "cmaf/",
        }
    }
}

/// One packaging of the content loop.
#[derive(Debug)]
struct Content {
    renditions: Vec<Rendition>,
    /// Segments per rendition.
    segments: Vec<Vec<&'static [u8]>>,
    /// Init segment per rendition (CMAF only).
    init: Vec<Option<(&'static [u8], InitSegment)>>,
}

/// One CMAF track of the content loop for DASH, audio and video apart (DASH-IF IOP: one media component per
/// AdaptationSet).
#[derive(Debug)]
pub struct DashTrack {
    /// Representation id and directory name (`v0`, `v1`, `a`).
    pub id: &'static str,
    /// `video` or `audio`.
    pub content_type: &'static str,
    /// `codecs`.
    pub codecs: &'static str,
    /// Picture size, for video.
    pub size: Option<(u32, u32)>,
    /// Peak bit rate over the loop, in bits per second.
    pub bandwidth: u64,
    /// The init segment.
    pub init: &'static [u8],
    /// Its track (one per init segment).
    pub track: Track,
    /// The loop's segments.
    pub segments: Vec<&'static [u8]>,
    /// Each segment's `tfdt` as encoded, in the track's timescale.
    pub decode_times: Vec<u64>,
}

/// The embedded media.
#[derive(Debug)]
pub struct Media {
    ts: Content,
    cmaf: Content,
    dash: Vec<DashTrack>,
}

/// A DASH track as laid out under `assets/cmaf/content/dash/`: id, content type, codecs, picture size.
type DashTrackLayout = (&'static str, &'static str, &'static str, Option<(u32, u32)>);

const DASH_TRACKS: [DashTrackLayout; 3] = [
    ("v0", "video", "avc1.4d401e", Some((320, 180))),
    ("v1", "video", "avc1.4d401e", Some((640, 360))),
    ("a", "audio", "mp4a.40.2", None),
];

fn load_dash() -> Vec<DashTrack> {
    let mut tracks = Vec::new();
    for (id, content_type, codecs, size) in DASH_TRACKS {
        let dir = format!("cmaf/content/dash/{id}");
        let Some(init) = ASSETS
            .get_file(format!("{dir}/init.mp4"))
            .map(|f| f.contents())
        else {
            continue;
        };
        // The assets are ours (checked by tests): a track that does not read is left out.
        let Some(track) = InitSegment::parse(init)
            .ok()
            .and_then(|i| i.tracks.first().copied())
        else {
            continue;
        };
        let mut segments: Vec<&'static [u8]> = Vec::new();
        for i in 0.. {
            match ASSETS.get_file(format!("{dir}/{i:03}.m4s")) {
                Some(f) => segments.push(f.contents()),
                None => break,
            }
        }
        let decode_times = segments
            .iter()
            .map(|s| {
                decode_times(s)
                    .ok()
                    .and_then(|t| t.first().map(|t| t.base_media_decode_time))
                    .unwrap_or(0)
            })
            .collect();
        let bandwidth = segments
            .iter()
            .map(|f| f.len() as u64 * 8 / SEGMENT_SECS)
            .max()
            .unwrap_or(0);
        tracks.push(DashTrack {
            id,
            content_type,
            codecs,
            size,
            bandwidth,
            init,
            track,
            segments,
            decode_times,
        });
    }
    tracks
}

const RENDITIONS: [(&str, u32, u32); 2] = [("r0", 320, 180), ("r1", 640, 360)];

fn load(packaging: Packaging) -> Content {
    let (prefix, ext) = (packaging.prefix(), packaging.extension());
    let mut renditions = Vec::new();
    let mut segments = Vec::new();
    let mut init = Vec::new();
    for (name, width, height) in RENDITIONS {
        let mut files: Vec<&'static [u8]> = Vec::new();
        for i in 0.. {
            match ASSETS.get_file(format!("{prefix}content/{name}/{i:03}.{ext}")) {
                Some(f) => files.push(f.contents()),
                None => break,
            }
        }
        let init_file = ASSETS
            .get_file(format!("{prefix}content/{name}/init.mp4"))
            .map(|f| f.contents());
        // The assets are ours and checked by tests; an unreadable init segment serves the segments unshifted.
        init.push(init_file.and_then(|f| Some((f, InitSegment::parse(f).ok()?))));
        let bits = |f: &&[u8]| f.len() as u64 * 8 / SEGMENT_SECS;
        let bandwidth = files.iter().map(bits).max().unwrap_or(0);
        let average_bandwidth = files.iter().map(bits).sum::<u64>() / (files.len().max(1) as u64);
        renditions.push(Rendition {
            name,
            width,
            height,
            bandwidth,
            average_bandwidth,
        });
        segments.push(files);
    }
    Content {
        renditions,
        segments,
        init,
    }
}

impl Media {
    /// The media embedded at build time.
    pub fn embedded() -> &'static Media {
        static MEDIA: OnceLock<Media> = OnceLock::new();
        MEDIA.get_or_init(|| Media {
            ts: load(Packaging::Ts),
            cmaf: load(Packaging::Cmaf),
            dash: load_dash(),
        })
    }

    fn content(&self, packaging: Packaging) -> &Content {
        match packaging {
            Packaging::Ts => &self.ts,
            Packaging::Cmaf => &self.cmaf,
        }
    }

    /// The renditions (of the TS packaging; see [`Media::renditions_of`]).
    pub fn renditions(&self) -> &[Rendition] {
        &self.ts.renditions
    }

    /// The renditions of one packaging (the same pictures; bit rates differ by the container's overhead).
    pub fn renditions_of(&self, packaging: Packaging) -> &[Rendition] {
        &self.content(packaging).renditions
    }

    /// Index of a rendition by name.
    pub fn rendition_index(&self, name: &str) -> Option<usize> {
        self.ts.renditions.iter().position(|r| r.name == name)
    }

    /// Number of segments in the content loop.
    pub fn content_len(&self) -> usize {
        self.ts.segments.first().map_or(0, Vec::len)
    }

    /// Content segment `k` of the loop in rendition `rendition`, as MPEG-TS.
    pub fn content_segment(&self, k: usize, rendition: usize) -> Option<&'static [u8]> {
        self.packaged_segment(Packaging::Ts, k, rendition)
    }

    /// Content segment `k` of the loop in rendition `rendition`, as `packaging`.
    pub fn packaged_segment(
        &self,
        packaging: Packaging,
        k: usize,
        rendition: usize,
    ) -> Option<&'static [u8]> {
        self.content(packaging)
            .segments
            .get(rendition)?
            .get(k)
            .copied()
    }

    /// The content loop as separate CMAF tracks for DASH.
    pub fn dash_tracks(&self) -> &[DashTrack] {
        &self.dash
    }

    /// The CMAF init segment of rendition `rendition`, and its tracks.
    pub fn cmaf_init(&self, rendition: usize) -> Option<(&'static [u8], &InitSegment)> {
        let (bytes, init) = self.cmaf.init.get(rendition)?.as_ref()?;
        Some((bytes, init))
    }

    /// A static asset by its path under `assets/` (`ads/ad15/r0/index.m3u8`, `slate/r1/000.ts`,
    /// `cmaf/ads/ad15/r0/init.mp4`, …). Only ads and slate are served this way.
    pub fn static_file(&self, path: &str) -> Option<&'static [u8]> {
        let published = ["ads/", "slate/", "thirdparty/", "cmaf/ads/", "cmaf/slate/"];
        if !published.iter().any(|p| path.starts_with(p)) || path.contains("..") {
            return None;
        }
        ASSETS.get_file(path).map(|f| f.contents())
    }

    /// Names of the ad creatives (`ad15`, `ad30`).
    pub fn creatives(&self) -> Vec<&'static str> {
        ASSETS
            .get_dir("ads")
            .map(|d| {
                d.dirs()
                    .filter_map(|c| c.path().file_name()?.to_str())
                    .collect()
            })
            .unwrap_or_default()
    }
}
