//! Configuration of the guarded client (`[outbound]` in the server's file) and the kinds of fetch.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What a request fetches: picks the body cap and labels the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A VAST or VMAP document (ad tags, wrappers' `VASTAdTagURI`).
    Vast,
    /// An HLS playlist or a DASH MPD (origins, creative renditions).
    Playlist,
    /// An OpenRTB bid request/response exchange.
    Bid,
    /// A tracking pixel or notice (`<Impression>`, `<Error>`, tracking events, nurl/burl/lurl); body discarded.
    Pixel,
    /// A media segment or a MediaFile.
    Segment,
}

impl Kind {
    /// The label of this kind in metrics and errors.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Vast => "vast",
            Kind::Playlist => "playlist",
            Kind::Bid => "bid",
            Kind::Pixel => "pixel",
            Kind::Segment => "segment",
        }
    }

    /// Every kind, for describing metrics.
    pub const ALL: [Kind; 5] = [
        Kind::Vast,
        Kind::Playlist,
        Kind::Bid,
        Kind::Pixel,
        Kind::Segment,
    ];
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The guarded client's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboundConfig {
    /// Hosts, sockets and networks re-opened despite the address guard, and to which plain http may go:
    /// `"10.0.0.0/8"` or `"127.0.0.1"` (an address or network, any port), `"127.0.0.1:8081"` or `"[::1]:8081"`
    /// (one socket, literal-IP URLs only), `"origin.internal"` or `"origin.internal:8081"` (a host name: whatever
    /// it resolves to is trusted). Plain http goes to the hosts as written in the URL: a network entry opens
    /// http for literal addresses in it, not for names that resolve into it (list the name). Empty by default:
    /// only public addresses, only https.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Allow plain `http://` to every host, not only to the hosts in `allow`. Off by default: VAST 4.1+ requires
    /// secure URIs, plain http exposes viewer ids in query strings and lets anyone on the path rewrite ads.
    #[serde(default)]
    pub allow_http: bool,
    /// PEM file with extra CA certificates to trust (private ad servers, internal origins), beside the built-in
    /// roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Trust the built-in roots (Mozilla's via webpki-roots, and the system's). Off: only `ca_file` is trusted.
    #[serde(default = "default_true")]
    pub built_in_roots: bool,
    /// Longest wait for a TCP connection (and TLS handshake), in milliseconds.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Longest wait for a whole request, from connecting to the last body byte, in milliseconds. A request may
    /// ask for less (or more) with [`crate::Request::timeout`].
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Redirects followed per request; every hop passes the same guard. 0 refuses any redirect.
    #[serde(default = "default_max_redirects")]
    pub max_redirects: usize,
    /// Largest body accepted per kind, in bytes (decompressed).
    #[serde(default)]
    pub max_body: BodyLimits,
    /// `User-Agent` of every request (callers may forward the viewer's in `X-Device-User-Agent`).
    #[serde(default = "default_user_agent")]
    pub user_agent: String,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        OutboundConfig {
            allow: Vec::new(),
            allow_http: false,
            ca_file: None,
            built_in_roots: true,
            connect_timeout_ms: default_connect_timeout_ms(),
            timeout_ms: default_timeout_ms(),
            max_redirects: default_max_redirects(),
            max_body: BodyLimits::default(),
            user_agent: default_user_agent(),
        }
    }
}

impl OutboundConfig {
    /// The connect timeout.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    /// The whole-request timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

/// Largest body per kind, in bytes, after decompression.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BodyLimits {
    /// VAST and VMAP documents. Real ones are tens of KiB; 1 MiB leaves room for many ads and extensions.
    #[serde(default = "default_vast")]
    pub vast: u64,
    /// HLS playlists and DASH MPDs. A long live window of an HLS media playlist is a few hundred KiB.
    #[serde(default = "default_playlist")]
    pub playlist: u64,
    /// OpenRTB bid responses. Markup (`adm`) is inline VAST, so the same order as `vast`.
    #[serde(default = "default_bid")]
    pub bid: u64,
    /// Tracking pixels and notices: the body is read (to reuse the connection) and discarded up to this.
    #[serde(default = "default_pixel")]
    pub pixel: u64,
    /// Media segments and MediaFiles. 16 MiB holds a 6 s segment at 20 Mbit/s.
    #[serde(default = "default_segment")]
    pub segment: u64,
}

impl Default for BodyLimits {
    fn default() -> Self {
        BodyLimits {
            vast: default_vast(),
            playlist: default_playlist(),
            bid: default_bid(),
            pixel: default_pixel(),
            segment: default_segment(),
        }
    }
}

impl BodyLimits {
    /// The cap of `kind`.
    pub fn of(&self, kind: Kind) -> u64 {
        match kind {
            Kind::Vast => self.vast,
            Kind::Playlist => self.playlist,
            Kind::Bid => self.bid,
            Kind::Pixel => self.pixel,
            Kind::Segment => self.segment,
        }
    }
}

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

fn default_true() -> bool {
    true
}

fn default_connect_timeout_ms() -> u64 {
    2_000
}

fn default_timeout_ms() -> u64 {
    10_000
}

fn default_max_redirects() -> usize {
    5
}

fn default_user_agent() -> String {
    concat!("Interlude/", env!("CARGO_PKG_VERSION")).to_owned()
}

fn default_vast() -> u64 {
    MIB
}

fn default_playlist() -> u64 {
    2 * MIB
}

fn default_bid() -> u64 {
    MIB
}

fn default_pixel() -> u64 {
    64 * KIB
}

fn default_segment() -> u64 {
    16 * MIB
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_table_gives_the_documented_defaults() {
        let config: OutboundConfig = toml::from_str("").expect("empty config");
        assert_eq!(config, OutboundConfig::default());
        assert_eq!(config.max_body.of(Kind::Vast), 1024 * 1024);
        assert_eq!(config.max_body.of(Kind::Playlist), 2 * 1024 * 1024);
        assert_eq!(config.max_body.of(Kind::Bid), 1024 * 1024);
        assert_eq!(config.max_body.of(Kind::Pixel), 64 * 1024);
        assert_eq!(config.max_body.of(Kind::Segment), 16 * 1024 * 1024);
        assert!(!config.allow_http);
        assert!(config.allow.is_empty());
    }

    #[test]
    fn full_table_parses() {
        let config: OutboundConfig = toml::from_str(
            r#"
            allow = ["127.0.0.1:8081", "10.0.0.0/8", "origin.internal"]
            allow_http = true
            ca_file = "/etc/interlude/private-ca.pem"
            built_in_roots = false
            connect_timeout_ms = 500
            timeout_ms = 3000
            max_redirects = 2
            user_agent = "test"
            [max_body]
            vast = 1000
            segment = 2000
            "#,
        )
        .expect("config");
        assert_eq!(config.allow.len(), 3);
        assert_eq!(config.max_body.vast, 1000);
        assert_eq!(config.max_body.pixel, 64 * 1024);
        assert_eq!(config.timeout(), Duration::from_secs(3));
    }

    #[test]
    fn unknown_key_is_rejected() {
        let err = toml::from_str::<OutboundConfig>("allowed = []").expect_err("unknown key");
        assert!(err.to_string().contains("allowed"), "{err}");
        let err =
            toml::from_str::<OutboundConfig>("[max_body]\nvideo = 1").expect_err("unknown key");
        assert!(err.to_string().contains("video"), "{err}");
    }
}
