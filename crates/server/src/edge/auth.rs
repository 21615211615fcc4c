//! Bearer scopes: who may call a guarded route.
//!
//! Three kinds of caller hold tokens: event producers (each its own token, some allowed to report server-side
//! events), readers (reports, ledger, quarantine, per-ad events, the explainer, metrics) and administrators
//! (catalog, operator, erasure). A scope is a set of accepted tokens; the admin token is accepted wherever the
//! read token is.
//!
//! Tokens are compared as SHA-256 digests: a timing difference could at most reveal how much of a digest
//! matched, which says nothing usable about the token.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::EdgeConfig;
use crate::error::ApiError;

type TokenDigest = [u8; 32];

fn digest(token: &str) -> TokenDigest {
    Sha256::digest(token.trim().as_bytes()).into()
}

/// The bearer token of `headers`: `Authorization: <scheme> <token>` with the scheme `Bearer` in any case
/// (RFC 7235 §2.1: auth-scheme is case-insensitive).
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(char::is_whitespace)?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// A set of accepted tokens, or open (development only).
#[derive(Clone)]
pub struct Scope {
    accepted: Vec<TokenDigest>,
    open: bool,
}

impl std::fmt::Debug for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scope")
            .field("tokens", &self.accepted.len())
            .field("open", &self.open)
            .finish()
    }
}

impl Scope {
    /// Accepts any of `tokens` (blank ones ignored); with none, nobody.
    pub fn of<'a>(tokens: impl IntoIterator<Item = &'a str>) -> Scope {
        Scope {
            accepted: tokens
                .into_iter()
                .filter(|t| !t.trim().is_empty())
                .map(digest)
                .collect(),
            open: false,
        }
    }

    /// Accepts anyone: `--insecure-dev` only.
    pub fn open() -> Scope {
        Scope {
            accepted: Vec::new(),
            open: true,
        }
    }

    /// Whether `headers` carry an accepted token.
    pub fn allows(&self, headers: &HeaderMap) -> bool {
        if self.open {
            return true;
        }
        bearer_token(headers).is_some_and(|t| self.accepted.contains(&digest(t)))
    }

    /// `Ok` when [`Scope::allows`], else 401.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        if self.allows(headers) {
            Ok(())
        } else {
            Err(ApiError::Unauthorized)
        }
    }
}

async fn require(State(scope): State<Arc<Scope>>, request: Request, next: Next) -> Response {
    match scope.check(request.headers()) {
        Ok(()) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}

/// `routes` behind `scope`.
pub fn guard(routes: Router, scope: Scope) -> Router {
    routes.layer(middleware::from_fn_with_state(Arc::new(scope), require))
}

async fn require_header_or_query(
    State(scope): State<Arc<Scope>>,
    request: Request,
    next: Next,
) -> Response {
    let from_query = request.uri().query().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "access_token")
            .map(|(_, v)| v.into_owned())
    });
    let allowed = scope.allows(request.headers())
        || from_query.is_some_and(|t| scope.accepted.contains(&digest(&t)));
    if allowed {
        next.run(request).await
    } else {
        ApiError::Unauthorized.into_response()
    }
}

/// `routes` behind `scope`, the token also accepted as the `access_token` query parameter (RFC 6750 §2.3): for
/// browser APIs that cannot set headers (`EventSource`). Query strings reach logs more easily than headers,
/// so only read-only routes take it.
pub fn guard_with_query_token(routes: Router, scope: Scope) -> Router {
    routes.layer(middleware::from_fn_with_state(
        Arc::new(scope),
        require_header_or_query,
    ))
}

/// `routes` behind `Authorization: Bearer <token>`.
pub fn bearer(routes: Router, token: &str) -> Router {
    guard(routes, Scope::of([token]))
}

/// The read scope: the read token or the admin token; open under `--insecure-dev` when no read token is set.
pub fn read_scope(edge: &EdgeConfig, admin_token: Option<&str>, insecure_dev: bool) -> Scope {
    if edge.read_token.is_none() && insecure_dev {
        return Scope::open();
    }
    Scope::of(edge.read_token.as_deref().into_iter().chain(admin_token))
}

/// An authenticated event producer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The producer's name (`anonymous` for unauthenticated development posts).
    pub name: Arc<str>,
    /// Whether it may report server-side events (and name ad instances of its own: a trusted producer).
    pub server_side: bool,
    /// Whether its events must name ad instances this platform issued (every configured producer that is not
    /// server-side; not anonymous development posts).
    pub verify_instances: bool,
}

/// The event producers of `[edge] producers`.
#[derive(Debug, Clone, Default)]
pub struct Producers {
    by_token: HashMap<TokenDigest, Caller>,
    /// Without producers under `--insecure-dev`: anyone may post client-side events.
    open: bool,
}

impl Producers {
    /// The configured producers. Under `--insecure-dev` with none configured, anonymous client-side posts are
    /// accepted (the simulator's players post that way).
    pub fn from_config(edge: &EdgeConfig, insecure_dev: bool) -> Producers {
        let by_token: HashMap<TokenDigest, Caller> = edge
            .producers
            .iter()
            .map(|p| {
                (
                    digest(&p.token),
                    Caller {
                        name: p.name.as_str().into(),
                        server_side: p.server_side,
                        verify_instances: !p.server_side,
                    },
                )
            })
            .collect();
        Producers {
            open: insecure_dev && by_token.is_empty(),
            by_token,
        }
    }

    /// Nobody may post.
    pub fn closed() -> Producers {
        Producers::default()
    }

    /// Anyone may post client-side events (tests and development).
    pub fn insecure_dev() -> Producers {
        Producers {
            by_token: HashMap::new(),
            open: true,
        }
    }

    /// Who sent `headers`: 401 without a known producer token (unless open and no token was given).
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        match bearer_token(headers) {
            Some(token) => self
                .by_token
                .get(&digest(token))
                .cloned()
                .ok_or(ApiError::Unauthorized),
            None if self.open => Ok(Caller {
                name: "anonymous".into(),
                server_side: false,
                verify_instances: false,
            }),
            None => Err(ApiError::Unauthorized),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edge::Producer;

    fn with_auth(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, value.parse().unwrap());
        h
    }

    const T: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn the_scheme_is_case_insensitive_and_others_are_refused() {
        let scope = Scope::of([T]);
        for v in [
            format!("Bearer {T}"),
            format!("bearer {T}"),
            format!("BEARER  {T} "),
        ] {
            assert!(scope.allows(&with_auth(&v)), "{v}");
        }
        for v in [
            format!("Basic {T}"),
            format!("Bearer{T}"),
            "Bearer".to_owned(),
            format!("Bearer {T}x"),
        ] {
            assert!(!scope.allows(&with_auth(&v)), "{v}");
        }
        assert!(!scope.allows(&HeaderMap::new()));
    }

    #[test]
    fn an_empty_scope_admits_nobody_and_an_open_one_everybody() {
        assert!(!Scope::of([]).allows(&with_auth(&format!("Bearer {T}"))));
        assert!(!Scope::of([""]).allows(&with_auth("Bearer ")));
        assert!(Scope::open().allows(&HeaderMap::new()));
    }

    #[test]
    fn read_scope_takes_the_admin_token_and_is_open_only_in_development() {
        let admin = "a".repeat(32);
        let edge = EdgeConfig {
            read_token: Some(T.to_owned()),
            ..EdgeConfig::default()
        };
        let scope = read_scope(&edge, Some(&admin), false);
        assert!(scope.allows(&with_auth(&format!("Bearer {T}"))));
        assert!(scope.allows(&with_auth(&format!("Bearer {admin}"))));
        assert!(!read_scope(&EdgeConfig::default(), None, false).allows(&HeaderMap::new()));
        assert!(read_scope(&EdgeConfig::default(), None, true).allows(&HeaderMap::new()));
        // A configured read token is required even in development.
        assert!(!read_scope(&edge, None, true).allows(&HeaderMap::new()));
    }

    #[test]
    fn producers_are_told_apart_by_token() {
        let edge = EdgeConfig {
            producers: vec![
                Producer {
                    name: "stitchers".into(),
                    token: T.into(),
                    server_side: true,
                },
                Producer {
                    name: "relay".into(),
                    token: "r".repeat(32),
                    server_side: false,
                },
            ],
            ..EdgeConfig::default()
        };
        let producers = Producers::from_config(&edge, true);
        let caller = producers
            .authenticate(&with_auth(&format!("Bearer {T}")))
            .unwrap();
        assert!(caller.server_side && &*caller.name == "stitchers");
        let relay = producers
            .authenticate(&with_auth(&format!("bearer {}", "r".repeat(32))))
            .unwrap();
        assert!(!relay.server_side && relay.verify_instances);
        // Configured producers close anonymous posting even in development.
        assert!(producers.authenticate(&HeaderMap::new()).is_err());
        assert!(
            producers
                .authenticate(&with_auth("Bearer wrong-token-wrong-token-wrong-tok"))
                .is_err()
        );
        assert!(Producers::closed().authenticate(&HeaderMap::new()).is_err());
        let open = Producers::from_config(&EdgeConfig::default(), true);
        assert!(!open.authenticate(&HeaderMap::new()).unwrap().server_side);
    }
}
