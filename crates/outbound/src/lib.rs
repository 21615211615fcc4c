//! The one guarded HTTP client for every call Interlude makes to a third party: VAST ad tags and wrappers'
//! `VASTAdTagURI`, tracking pixels and `<Error>` URIs, OpenRTB bidders and their nurl/burl/lurl, creative
//! playlists and MediaFiles, live origins.
//!
//! Those URLs come from ad servers, bidders and configuration, so the client treats them as hostile:
//! - TLS by rustls (ring), Mozilla's and the system's roots plus an extra CA bundle; HTTP/1.1 and HTTP/2.
//! - An SSRF guard ([`ip`], the policy): loopback, private, CGNAT, link-local (cloud metadata), multicast,
//!   documentation and other reserved addresses are refused, in every spelling (decimal and hex IPv4,
//!   IPv4-mapped, NAT64, 6to4 IPv6), on the URL, on every redirect hop and on every address a host name
//!   resolves to (so DNS rebinding does not get through). `allow` re-opens named hosts, sockets and networks.
//! - Plain http only to hosts in `allow` unless `allow_http` is set.
//! - A body cap per [`Kind`], checked on `Content-Length` and while streaming, after gzip decoding.
//! - One timeout for the whole exchange; errors ([`Error`]) and logs never hold body content, and URLs in them
//!   have their query string redacted ([`redact`]).
//! - Metrics per kind and outcome ([`telemetry`]).
//!
//! ```
//! use interlude_outbound::{Error, GuardedClient, Kind, OutboundConfig, Refusal};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Error> {
//! let client = GuardedClient::new(&OutboundConfig::default())?;
//! // A wrapper pointing at a service on the host itself is refused before any connection.
//! let err = client
//!     .get("https://127.0.0.1:9/admin?token=x", Kind::Vast)
//!     .send()
//!     .await
//!     .unwrap_err();
//! assert!(matches!(err, Error::Refused { reason: Refusal::Address { .. }, .. }));
//! assert_eq!(
//!     err.to_string(),
//!     "refused https://127.0.0.1:9/admin?[redacted]: address 127.0.0.1 is in 127.0.0.0/8 (loopback)"
//! );
//! # Ok(())
//! # }
//! ```

mod client;
mod config;
mod error;
pub mod ip;
mod policy;
mod resolve;
mod response;
pub mod telemetry;

pub use client::{GuardedClient, GuardedClientBuilder, Request};
pub use config::{BodyLimits, Kind, OutboundConfig};
pub use error::{Error, Refusal, Result};
pub use policy::redact;
pub use reqwest::{Method, StatusCode, Url, Version, header};
pub use response::Response;
