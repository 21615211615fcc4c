//! Creative media: each creative rendition's segments, fetched once and cached.
//!
//! A creative arrives as HLS media playlists per rendition (the transcoded form an SSAI stitches). The library
//! fetches each playlist once, keeps its segment URLs and durations, and matches renditions to the channel's
//! content variants.

use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use interlude_outbound::{GuardedClient, Kind};

use interlude_stitch::hls::parse_vod_segments;

/// A creative rendition's segments: absolute URLs and durations in microseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct CreativeMedia {
    /// Segment URLs.
    pub urls: Arc<[String]>,
    /// Segment durations.
    pub micros: Arc<[u64]>,
}

/// Fetches and caches creative renditions.
#[derive(Debug)]
pub struct CreativeLibrary {
    http: GuardedClient,
    timeout: Duration,
    cache: DashMap<String, Arc<CreativeMedia>>,
}

/// Why a creative could not be used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CreativeError {
    /// The creative's playlist could not be fetched or read.
    #[error("creative playlist {url}: {reason}")]
    Playlist {
        /// The playlist URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
}

impl CreativeLibrary {
    /// A library fetching with `http` (creatives are named by third parties: the guarded client, its
    /// playlist size cap), each request bounded by `timeout`.
    pub fn new(http: GuardedClient, timeout: Duration) -> Self {
        CreativeLibrary {
            http,
            timeout,
            cache: DashMap::new(),
        }
    }

    /// The segments of the media playlist at `url`.
    pub async fn media(&self, url: &str) -> Result<Arc<CreativeMedia>, CreativeError> {
        if let Some(hit) = self.cache.get(url) {
            return Ok(hit.clone());
        }
        let err = |reason: String| CreativeError::Playlist {
            url: url.to_owned(),
            reason,
        };
        let text = self
            .http
            .get(url, Kind::Playlist)
            .timeout(self.timeout)
            .send()
            .await
            .and_then(|r| r.require_success())
            .map_err(|e| err(e.to_string()))?
            .text();
        let segments = parse_vod_segments(&text, url).map_err(|e| err(e.to_string()))?;
        if segments.is_empty() {
            return Err(err("no segments".to_owned()));
        }
        let (urls, micros): (Vec<String>, Vec<u64>) = segments.into_iter().unzip();
        let media = Arc::new(CreativeMedia {
            urls: urls.into(),
            micros: micros.into(),
        });
        self.cache.insert(url.to_owned(), media.clone());
        Ok(media)
    }
}
