//! The real media the simulator serves, embedded in the binary so tests and the demo work from any directory:
//! a content loop, ad creatives and a slate, each in the same two H.264/AAC renditions (see `assets/README.md`
//! for how they were made).

use std::sync::OnceLock;

use include_dir::{Dir, include_dir};

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

/// The embedded media.
#[derive(Debug)]
pub struct Media {
    renditions: Vec<Rendition>,
    content: Vec<Vec<&'static [u8]>>,
}

const RENDITIONS: [(&str, u32, u32); 2] = [("r0", 320, 180), ("r1", 640, 360)];

impl Media {
    /// The media embedded at build time.
    pub fn embedded() -> &'static Media {
        static MEDIA: OnceLock<Media> = OnceLock::new();
        MEDIA.get_or_init(|| {
            let mut renditions = Vec::new();
            let mut content = Vec::new();
            for (name, width, height) in RENDITIONS {
                let mut files: Vec<&'static [u8]> = Vec::new();
                for i in 0.. {
                    match ASSETS.get_file(format!("content/{name}/{i:03}.ts")) {
                        Some(f) => files.push(f.contents()),
                        None => break,
                    }
                }
                let bits = |f: &&[u8]| f.len() as u64 * 8 / SEGMENT_SECS;
                let bandwidth = files.iter().map(bits).max().unwrap_or(0);
                let average_bandwidth =
                    files.iter().map(bits).sum::<u64>() / (files.len().max(1) as u64);
                renditions.push(Rendition {
                    name,
                    width,
                    height,
                    bandwidth,
                    average_bandwidth,
                });
                content.push(files);
            }
            Media {
                renditions,
                content,
            }
        })
    }

    /// The renditions.
    pub fn renditions(&self) -> &[Rendition] {
        &self.renditions
    }

    /// Index of a rendition by name.
    pub fn rendition_index(&self, name: &str) -> Option<usize> {
        self.renditions.iter().position(|r| r.name == name)
    }

    /// Number of segments in the content loop.
    pub fn content_len(&self) -> usize {
        self.content.first().map_or(0, Vec::len)
    }

    /// Content segment `k` of the loop in rendition `rendition`.
    pub fn content_segment(&self, k: usize, rendition: usize) -> Option<&'static [u8]> {
        self.content.get(rendition)?.get(k).copied()
    }

    /// A static asset by its path under `assets/` (`ads/ad15/r0/index.m3u8`, `slate/r1/000.ts`, …). Only ads and
    /// slate are served this way.
    pub fn static_file(&self, path: &str) -> Option<&'static [u8]> {
        let published = ["ads/", "slate/", "thirdparty/"];
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
