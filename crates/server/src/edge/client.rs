//! Who the client is: the socket peer, or what a trusted proxy says it saw.
//!
//! `X-Forwarded-For` is a list anyone can start: a client sends `X-Forwarded-For: 203.0.113.7` and every proxy
//! on the way appends the address it received the request from. Only the entries added by our own proxies are
//! facts, so the client is found by walking the list from the right past trusted proxies; the first address
//! that is not one of ours is the client (what the outermost trusted proxy saw). Without trusted proxies the
//! header is ignored.
//!
//! [`layer`] resolves the address once per request into a [`ClientIp`] extension; handlers extract
//! [`ClientIp`].

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::middleware::{self, Next};
use axum::response::Response;
use ipnet::IpNet;

/// The client's address as this node believes it; `None` when there is no socket (in-process calls).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClientIp(pub Option<IpAddr>);

/// Most `X-Forwarded-For` entries read: a longer chain is either a loop or an attack.
const MAX_HOPS: usize = 32;

/// The client behind `peer`: `peer` itself unless it is a trusted proxy, else the rightmost
/// `X-Forwarded-For` entry that is not a trusted proxy.
pub fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    // Repeated headers are one list in order (RFC 9110 §5.3).
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev().take(MAX_HOPS) {
        match parse_hop(hop) {
            Some(ip) if is_trusted(&ip) => client = ip,
            Some(ip) => return ip,
            // Garbage where a proxy should have written an address: stop at what our proxies vouched for.
            None => return client,
        }
    }
    client
}

/// An `X-Forwarded-For` entry: an address, possibly with a port or in brackets (`[2001:db8::1]:443`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse() {
        return Some(ip);
    }
    hop.parse::<SocketAddr>().ok().map(|s| s.ip())
}

async fn resolve_client(
    State(trusted): State<Arc<[IpNet]>>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    let client = peer.map(|peer| resolve(peer, request.headers(), &trusted));
    request.extensions_mut().insert(ClientIp(client));
    next.run(request).await
}

/// `routes` with each request's [`ClientIp`] resolved against `trusted` proxies.
pub fn layer(routes: Router, trusted: &[IpNet]) -> Router {
    let trusted: Arc<[IpNet]> = trusted.into();
    routes.layer(middleware::from_fn_with_state(trusted, resolve_client))
}

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = Infallible;

    /// The address [`layer`] resolved; without the layer the socket peer (never a header).
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        if let Some(client) = parts.extensions.get::<ClientIp>() {
            return Ok(*client);
        }
        Ok(ClientIp(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.ip()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        let h = headers(&["203.0.113.7"]);
        assert_eq!(resolve(ip("198.51.100.1"), &h, &[]), ip("198.51.100.1"));
    }

    #[test]
    fn an_untrusted_peer_cannot_speak_for_others() {
        let h = headers(&["203.0.113.7"]);
        let trusted = nets(&["10.0.0.0/8"]);
        assert_eq!(
            resolve(ip("198.51.100.1"), &h, &trusted),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        // The client forged the first entry; our load balancer (10.0.0.5) appended what it saw.
        let h = headers(&["192.0.2.66, 203.0.113.7", "10.0.0.9"]);
        let trusted = nets(&["10.0.0.0/8"]);
        assert_eq!(resolve(ip("10.0.0.5"), &h, &trusted), ip("203.0.113.7"));
    }

    #[test]
    fn ports_brackets_and_ipv6_are_understood() {
        let trusted = nets(&["10.0.0.0/8", "fd00::/8"]);
        let h = headers(&["[2001:db8::7]:443"]);
        assert_eq!(resolve(ip("fd00::1"), &h, &trusted), ip("2001:db8::7"));
        let h = headers(&["203.0.113.7:5555"]);
        assert_eq!(resolve(ip("10.1.1.1"), &h, &trusted), ip("203.0.113.7"));
    }

    #[test]
    fn garbage_stops_at_the_last_vouched_address() {
        let trusted = nets(&["10.0.0.0/8"]);
        let h = headers(&["not-an-ip, 10.0.0.9"]);
        assert_eq!(resolve(ip("10.0.0.5"), &h, &trusted), ip("10.0.0.9"));
        let h = headers(&[]);
        assert_eq!(resolve(ip("10.0.0.5"), &h, &trusted), ip("10.0.0.5"));
    }
}
