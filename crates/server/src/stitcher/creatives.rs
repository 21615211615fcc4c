//! Creative media: each creative rendition's segments, fetched once and cached.
//!
//! A creative arrives as HLS media playlists per rendition (the transcoded form an SSAI stitches). The library
//! fetches each playlist once, keeps its segment URLs and durations, and matches renditions to the channel's
//! content variants. A rendition of fragmented MP4 segments carries its init segment's `EXT-X-MAP`, which the
//! stitched playlist writes before the ad (RFC 8216bis §4.4.4.5).
//!
//! The cache is bounded: an entry lives [`HIT_TTL`], at most [`CAPACITY`] entries are kept (the oldest go
//! first), and a failure is remembered for [`MISS_TTL`] so that a broken creative chosen for every viewer of a
//! break costs one fetch and one warning, not one per decision.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use interlude_outbound::{GuardedClient, Kind};

use interlude_stitch::hls::parse_vod_media;

/// A creative rendition's segments: absolute URLs and durations in microseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct CreativeMedia {
    /// Segment URLs.
    pub urls: Arc<[String]>,
    /// Segment durations.
    pub micros: Arc<[u64]>,
    /// The `EXT-X-MAP` line (absolute URI) of its init segment when the segments are fragmented MP4; `None`
    /// for MPEG-TS.
    pub map: Option<Arc<str>>,
}

/// How long a fetched rendition is kept: creatives do not change under a URL, but a campaign's end frees them.
pub const HIT_TTL: Duration = Duration::from_secs(3600);
/// How long a failed fetch is remembered before the URL is tried again.
pub const MISS_TTL: Duration = Duration::from_secs(60);
/// Renditions kept at most (a few hundred bytes each).
pub const CAPACITY: usize = 20_000;

/// A cached fetch: the media, or why it failed; and when.
#[derive(Debug, Clone)]
struct Cached {
    result: Result<Arc<CreativeMedia>, String>,
    at: Instant,
}

/// Fetches and caches creative renditions.
#[derive(Debug)]
pub struct CreativeLibrary {
    http: GuardedClient,
    timeout: Duration,
    cache: DashMap<String, Cached>,
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
    /// The playlist failed recently and is not tried again yet.
    #[error("creative playlist {url}: {reason} (remembered; retried in at most {} s)", MISS_TTL.as_secs())]
    Remembered {
        /// The playlist URL.
        url: String,
        /// What went wrong the last time.
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
        if let Some(cached) = self.cache.get(url).map(|c| c.clone()) {
            let age = cached.at.elapsed();
            match cached.result {
                Ok(media) if age < HIT_TTL => return Ok(media),
                Err(reason) if age < MISS_TTL => {
                    return Err(CreativeError::Remembered {
                        url: url.to_owned(),
                        reason,
                    });
                }
                _ => {}
            }
        }
        let fetched = self.fetch(url).await;
        self.remember(
            url,
            match &fetched {
                Ok(media) => Ok(media.clone()),
                Err(
                    CreativeError::Playlist { reason, .. }
                    | CreativeError::Remembered { reason, .. },
                ) => Err(reason.clone()),
            },
        );
        fetched
    }

    /// Entries cached now.
    pub fn len(&self) -> usize {
        self.cache.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.cache.is_empty()
    }

    fn remember(&self, url: &str, result: Result<Arc<CreativeMedia>, String>) {
        if self.cache.len() >= CAPACITY {
            self.evict();
        }
        self.cache.insert(
            url.to_owned(),
            Cached {
                result,
                at: Instant::now(),
            },
        );
    }

    /// Drops expired entries, then the oldest tenth: amortised, a scan every `CAPACITY / 10` inserts at most.
    fn evict(&self) {
        self.cache.retain(|_, c| match c.result {
            Ok(_) => c.at.elapsed() < HIT_TTL,
            Err(_) => c.at.elapsed() < MISS_TTL,
        });
        if self.cache.len() < CAPACITY {
            return;
        }
        let mut ages: Vec<(Instant, String)> = self
            .cache
            .iter()
            .map(|e| (e.value().at, e.key().clone()))
            .collect();
        ages.sort_unstable();
        for (_, url) in ages.into_iter().take(CAPACITY / 10) {
            self.cache.remove(&url);
        }
    }

    async fn fetch(&self, url: &str) -> Result<Arc<CreativeMedia>, CreativeError> {
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
        let vod = parse_vod_media(&text, url).map_err(|e| err(e.to_string()))?;
        if vod.segments.is_empty() {
            return Err(err("no segments".to_owned()));
        }
        let (urls, micros): (Vec<String>, Vec<u64>) = vod.segments.into_iter().unzip();
        Ok(Arc::new(CreativeMedia {
            urls: urls.into(),
            micros: micros.into(),
            map: vod.map.map(Arc::from),
        }))
    }
}
