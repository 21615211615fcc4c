//! The edge: who may call what, and who the caller is.
//!
//! Interlude's routes face the internet. This module holds what every component's routes share about their
//! callers, configured in `[edge]`:
//!
//! - [`auth`]: bearer scopes. Event producers (`POST /v1/events`) each have their own token, and only those
//!   marked `server_side` may report server-side events; a read token guards reports, the ledger, quarantine,
//!   per-ad events, the explainer and `/metrics`; the admin token (`decision.admin_token`) guards the catalog,
//!   operator and erasure APIs. Tokens are at least 32 bytes; the scheme name is case-insensitive (RFC 7235
//!   §2.1).
//! - [`client`]: the client's address: the socket peer, or `X-Forwarded-For` only when the peer is one of the
//!   configured trusted proxies (geo decides whether GDPR applies, and data-center filtering is invalid-traffic
//!   detection: neither may rest on a header anyone can write).
//!
//! Nothing here has an insecure default: without tokens the guarded routes are closed, and `interlude serve`
//! refuses to start without token signing keys and the pseudonym secret unless run with `--insecure-dev`
//! ([`crate::ServerConfig::insecure_dev`]), which `interlude demo` passes. `docs/security.md` is the threat
//! model.

pub mod auth;
pub mod client;

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// The `[edge]` configuration section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EdgeConfig {
    /// Proxies (CIDRs, e.g. the load balancer's subnet) whose `X-Forwarded-For` is believed. Empty: the client
    /// is the socket peer.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Bearer token of the read scope (reports, ledger, quarantine, per-ad events, the decision explainer,
    /// `/metrics`, the dashboard's data). Unset: those routes answer 401 (open only under `--insecure-dev`).
    /// Prefer `INTERLUDE_EDGE__READ_TOKEN` to writing it in a file.
    pub read_token: Option<String>,
    /// Who may post events to `POST /v1/events`, each with its own bearer token.
    pub producers: Vec<Producer>,
    /// Web origins of the players allowed to call the viewer routes (sessions, playlists) from a browser
    /// (`https://player.example.com`). Empty: no CORS headers (browsers on other origins are refused), except
    /// under `--insecure-dev` where any origin may read. Write routes of the collector never answer CORS.
    pub cors_origins: Vec<String>,
}

/// One event producer: a stitcher fleet, a partner's SSAI, a client-side beacon relay.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Producer {
    /// Name, recorded in logs and metrics (not secret).
    pub name: String,
    /// Its bearer token (at least 32 bytes).
    pub token: String,
    /// Whether it may report `source: server_side` events (a stitcher that fetched the segment itself). Such
    /// events skip the too-fast quartile check, so only producers that do their own playback accounting get
    /// it.
    #[serde(default)]
    pub server_side: bool,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("name", &self.name)
            .field("token", &"<redacted>")
            .field("server_side", &self.server_side)
            .finish()
    }
}

/// The shortest token accepted for any scope: 32 bytes is 256 bits when random, beyond guessing online.
pub const MIN_TOKEN_BYTES: usize = 32;

/// Checks a bearer token's length; the error names `key`.
pub fn check_token(key: &str, token: &str) -> Result<(), ConfigError> {
    if token.trim().len() < MIN_TOKEN_BYTES {
        return Err(ConfigError::new(
            key,
            format!(
                "must be at least {MIN_TOKEN_BYTES} bytes (use a random token, e.g. `openssl rand -hex 32`)"
            ),
        ));
    }
    Ok(())
}

impl EdgeConfig {
    /// Checks what types cannot; errors name the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(token) = &self.read_token {
            check_token("edge.read_token", token)?;
        }
        let mut names = std::collections::BTreeSet::new();
        let mut tokens = std::collections::BTreeSet::new();
        for (i, p) in self.producers.iter().enumerate() {
            if p.name.trim().is_empty() {
                return Err(ConfigError::new(
                    format!("edge.producers[{i}].name"),
                    "must not be empty",
                ));
            }
            if !names.insert(p.name.as_str()) {
                return Err(ConfigError::new(
                    format!("edge.producers[{i}].name"),
                    format!("{:?} is used twice", p.name),
                ));
            }
            check_token(&format!("edge.producers[{i}].token"), &p.token)?;
            if !tokens.insert(p.token.trim()) {
                return Err(ConfigError::new(
                    format!("edge.producers[{i}].token"),
                    "is the token of another producer",
                ));
            }
        }
        for (i, origin) in self.cors_origins.iter().enumerate() {
            let ok = (origin.starts_with("https://") || origin.starts_with("http://"))
                && !origin.trim_end_matches('/').contains(['*', ' '])
                && origin.parse::<axum::http::HeaderValue>().is_ok();
            if !ok {
                return Err(ConfigError::new(
                    format!("edge.cors_origins[{i}]"),
                    format!("must be an origin such as https://player.example.com, got {origin:?}"),
                ));
            }
        }
        Ok(())
    }

    /// A copy with every secret replaced, for `interlude config`.
    pub fn redacted(&self) -> EdgeConfig {
        let mut copy = self.clone();
        if copy.read_token.is_some() {
            copy.read_token = Some(REDACTED.to_owned());
        }
        for p in &mut copy.producers {
            p.token = REDACTED.to_owned();
        }
        copy
    }
}

/// The CORS policy of the viewer routes: the configured player origins; any origin only under
/// `--insecure-dev` with none configured; otherwise none (browsers on other origins are refused). Credentials
/// are never allowed: nothing here is authorised by cookies.
pub fn cors(config: &EdgeConfig, insecure_dev: bool) -> Option<tower_http::cors::CorsLayer> {
    use tower_http::cors::{AllowOrigin, Any, CorsLayer};
    let origins: Vec<axum::http::HeaderValue> = config
        .cors_origins
        .iter()
        .filter_map(|o| o.trim_end_matches('/').parse().ok())
        .collect();
    let allow = if !origins.is_empty() {
        AllowOrigin::list(origins)
    } else if insecure_dev {
        AllowOrigin::from(Any)
    } else {
        return None;
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([
                axum::http::Method::GET,
                axum::http::Method::HEAD,
                axum::http::Method::POST,
            ])
            .allow_headers([axum::http::header::CONTENT_TYPE]),
    )
}

/// What a redacted secret reads as.
pub const REDACTED: &str = "<redacted>";

#[cfg(test)]
mod tests {
    use super::*;

    fn producer(name: &str, token: &str) -> Producer {
        Producer {
            name: name.to_owned(),
            token: token.to_owned(),
            server_side: false,
        }
    }

    #[test]
    fn short_tokens_are_refused_with_their_key() {
        let config = EdgeConfig {
            producers: vec![producer("a", "short")],
            ..EdgeConfig::default()
        };
        let err = config.validate().unwrap_err();
        assert_eq!(err.key, "edge.producers[0].token");
        let config = EdgeConfig {
            read_token: Some("x".repeat(31)),
            ..EdgeConfig::default()
        };
        assert_eq!(config.validate().unwrap_err().key, "edge.read_token");
    }

    #[test]
    fn producers_need_distinct_names_and_tokens() {
        let t = "t".repeat(32);
        let config = EdgeConfig {
            producers: vec![producer("a", &t), producer("b", &t)],
            ..EdgeConfig::default()
        };
        assert_eq!(
            config.validate().unwrap_err().key,
            "edge.producers[1].token"
        );
        let config = EdgeConfig {
            producers: vec![producer("a", &t), producer("a", &"u".repeat(32))],
            ..EdgeConfig::default()
        };
        assert_eq!(config.validate().unwrap_err().key, "edge.producers[1].name");
    }

    #[test]
    fn wildcard_origins_are_refused() {
        let config = EdgeConfig {
            cors_origins: vec!["*".to_owned()],
            ..EdgeConfig::default()
        };
        assert_eq!(config.validate().unwrap_err().key, "edge.cors_origins[0]");
    }

    #[test]
    fn redaction_hides_every_token() {
        let config = EdgeConfig {
            read_token: Some("r".repeat(40)),
            producers: vec![producer("a", &"p".repeat(40))],
            ..EdgeConfig::default()
        };
        let text = serde_json::to_string(&config.redacted()).unwrap();
        assert!(!text.contains("rrrr") && !text.contains("pppp"), "{text}");
        assert!(format!("{:?}", config.producers).contains(REDACTED));
    }
}
