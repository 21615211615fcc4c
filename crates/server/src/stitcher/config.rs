//! Stitcher configuration: the channels (the origin allowlist), slate, sessions and the configured pod source.

use serde::{Deserialize, Serialize};

/// The stitcher: which channels exist and how sessions behave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StitcherConfig {
    /// The channels. Origins are only ever fetched from these URLs, never from a URL taken from a request.
    pub channels: Vec<ChannelConfig>,
    /// Seconds a session lives without a playlist request.
    pub session_ttl_secs: u64,
    /// What a viewer who joins in the middle of a break gets.
    pub join_policy: JoinPolicy,
    /// Milliseconds an ad or slate item may end after the content it replaces (absorbs EXTINF rounding; DOMAIN:
    /// CUE-OUT durations rounded down must not cut ads short).
    pub tolerance_ms: u64,
    /// Milliseconds to wait for the pod source before filling the break with slate.
    pub decision_timeout_ms: u64,
    /// Milliseconds over which the decisions of a channel's sessions are spread when a break appears (each
    /// session at a stable offset in the window), so the whole audience does not hit the ad server in the same
    /// instant. A session whose playlist is requested before its turn is decided then.
    pub decision_spread_ms: u64,
    /// Ads served to every viewer by the built-in configured pod source (used until a decision engine is wired).
    pub creatives: Vec<CreativeConfig>,
    /// How ad and slate segments reach the player.
    pub ad_delivery: AdDelivery,
    /// Megabytes of creative and slate segments kept in memory in proxy mode.
    pub proxy_cache_mb: u64,
    /// Sessions this node keeps at once; a new one over the cap is refused (503, to be started on another
    /// node). Sessions adopted from other nodes are not refused: they are viewers already watching.
    pub max_sessions: usize,
    /// Sessions one client address (IPv6: one /64) may start per second, on average (a token bucket of
    /// `session_burst_per_ip`); over it, 429 with `Retry-After`. The address is the TCP peer: behind a load
    /// balancer or CDN, raise it or set 0 (no per-address limit).
    pub session_rate_per_ip: f64,
    /// Sessions one client address may start at once before `session_rate_per_ip` applies.
    pub session_burst_per_ip: u32,
}

/// How ad and slate segments reach the player.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdDelivery {
    /// A 307 redirect to the creative's CDN URL; the player resets its decoder at `EXT-X-DISCONTINUITY`.
    Redirect,
    /// The server serves the segment itself with its timestamps continuing the content's, for players that
    /// ignore discontinuities. Costs the server the ad bytes.
    Proxy,
}

impl Default for StitcherConfig {
    fn default() -> Self {
        StitcherConfig {
            channels: Vec::new(),
            session_ttl_secs: 120,
            join_policy: JoinPolicy::RestOfPod,
            tolerance_ms: 500,
            decision_timeout_ms: 1_000,
            decision_spread_ms: 2_000,
            creatives: Vec::new(),
            ad_delivery: AdDelivery::Redirect,
            proxy_cache_mb: 512,
            max_sessions: 200_000,
            session_rate_per_ip: 10.0,
            session_burst_per_ip: 100,
        }
    }
}

/// What a viewer who joins mid-break sees for that break.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JoinPolicy {
    /// The rest of a freshly decided pod.
    RestOfPod,
    /// Slate until the break ends (no partial ads, so no partial impressions).
    Slate,
    /// The origin's own break content.
    Passthrough,
}

/// One live channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    /// Channel id, used in URLs.
    pub id: String,
    /// URL of the origin's master playlist.
    pub origin: String,
    /// Milliseconds between origin polls; default: half the target duration.
    #[serde(default)]
    pub poll_interval_ms: Option<u64>,
    /// Milliseconds before an origin request is abandoned (MediaTailor's yardstick: 2 s).
    #[serde(default = "default_origin_timeout_ms")]
    pub origin_timeout_ms: u64,
    /// Seconds the last good window is served while the origin fails, before answering 502.
    #[serde(default = "default_stale_after_secs")]
    pub stale_after_secs: u64,
    /// Slate renditions (each a media playlist whose first segment is looped).
    #[serde(default)]
    pub slate: Vec<RenditionConfig>,
    /// URL of the same channel as a live DASH MPD, for DASH sessions (`/s/{session}/manifest.mpd`); breaks are
    /// matched to the HLS ones by SCTE-35 splice event id, so a viewer gets the same pod in both.
    #[serde(default)]
    pub dash_origin: Option<String>,
    /// `@codecs` of the ad and slate Representations in DASH sessions (RFC 6381): the codecs the creatives
    /// are encoded with (default: H.264 Main 3.0 with AAC-LC, as the demo creatives and origin).
    #[serde(default = "default_dash_ad_codecs")]
    pub dash_ad_codecs: String,
}

fn default_dash_ad_codecs() -> String {
    "avc1.4d401e,mp4a.40.2".to_owned()
}

fn default_origin_timeout_ms() -> u64 {
    2_000
}

fn default_stale_after_secs() -> u64 {
    30
}

/// One rendition of a creative or slate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenditionConfig {
    /// Peak bandwidth in bits per second.
    pub bandwidth: u64,
    /// `WIDTHxHEIGHT`, when video.
    #[serde(default)]
    pub resolution: Option<String>,
    /// URL of the media playlist.
    pub playlist: String,
}

/// A creative for the configured pod source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreativeConfig {
    /// Creative id.
    pub id: String,
    /// Duration in seconds.
    pub duration_secs: f64,
    /// Renditions.
    pub renditions: Vec<RenditionConfig>,
}

/// Parses `WIDTHxHEIGHT`.
pub fn parse_resolution(text: &str) -> Option<(u32, u32)> {
    let (w, h) = text.split_once(['x', 'X'])?;
    Some((w.trim().parse().ok()?, h.trim().parse().ok()?))
}

impl StitcherConfig {
    /// Checks what types cannot; errors name the key.
    pub fn validate(&self) -> Result<(), crate::error::ConfigError> {
        let mut ids = std::collections::HashSet::new();
        for (i, channel) in self.channels.iter().enumerate() {
            let key = |k: &str| format!("stitcher.channels[{i}].{k}");
            if channel.id.is_empty()
                || !channel
                    .id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(crate::error::ConfigError::new(
                    key("id"),
                    "must be non-empty and use only A-Z, a-z, 0-9, - and _",
                ));
            }
            if !ids.insert(&channel.id) {
                return Err(crate::error::ConfigError::new(
                    key("id"),
                    format!("duplicates channel {:?}", channel.id),
                ));
            }
            if !(channel.origin.starts_with("http://") || channel.origin.starts_with("https://")) {
                return Err(crate::error::ConfigError::new(
                    key("origin"),
                    format!("must be an http(s) URL, got {:?}", channel.origin),
                ));
            }
            if channel.slate.is_empty() {
                return Err(crate::error::ConfigError::new(
                    key("slate"),
                    "needs at least one rendition to fill unsold break time",
                ));
            }
            for (j, r) in channel.slate.iter().enumerate() {
                if let Some(res) = &r.resolution {
                    if parse_resolution(res).is_none() {
                        return Err(crate::error::ConfigError::new(
                            key(&format!("slate[{j}].resolution")),
                            format!("{res:?} is not WIDTHxHEIGHT"),
                        ));
                    }
                }
            }
        }
        for (i, creative) in self.creatives.iter().enumerate() {
            if !(creative.duration_secs.is_finite() && creative.duration_secs > 0.0) {
                return Err(crate::error::ConfigError::new(
                    format!("stitcher.creatives[{i}].duration_secs"),
                    "must be > 0",
                ));
            }
            if creative.renditions.is_empty() {
                return Err(crate::error::ConfigError::new(
                    format!("stitcher.creatives[{i}].renditions"),
                    "must not be empty",
                ));
            }
        }
        if self.max_sessions == 0 {
            return Err(crate::error::ConfigError::new(
                "stitcher.max_sessions",
                "must be > 0",
            ));
        }
        if !(self.session_rate_per_ip.is_finite() && self.session_rate_per_ip >= 0.0) {
            return Err(crate::error::ConfigError::new(
                "stitcher.session_rate_per_ip",
                "must be >= 0 (0: no per-address limit)",
            ));
        }
        if self.session_rate_per_ip > 0.0 && self.session_burst_per_ip == 0 {
            return Err(crate::error::ConfigError::new(
                "stitcher.session_burst_per_ip",
                "must be > 0 while session_rate_per_ip is set",
            ));
        }
        if self.session_ttl_secs == 0 {
            return Err(crate::error::ConfigError::new(
                "stitcher.session_ttl_secs",
                "must be > 0",
            ));
        }
        Ok(())
    }
}
