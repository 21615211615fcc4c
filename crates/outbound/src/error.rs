//! Errors of outbound requests. No variant carries body content, and every URL is redacted
//! ([`crate::redact`]): its query string may hold viewer ids or tokens.

use std::net::IpAddr;
use std::time::Duration;

use crate::Kind;
use crate::ip::Reserved;

/// Result of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why an outbound request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The guard refused the request (or one of its redirects) before connecting.
    #[error("refused {url}: {reason}")]
    Refused {
        /// The requested URL, redacted.
        url: String,
        /// What was refused.
        reason: Refusal,
    },
    /// The body was larger than the cap of its kind; reading stopped there.
    #[error("{url}: {kind} body larger than {limit} bytes")]
    TooLarge {
        /// The requested URL, redacted.
        url: String,
        /// The kind of fetch, whose cap applied.
        kind: Kind,
        /// The cap in bytes.
        limit: u64,
    },
    /// No complete answer (connection, headers and body) within the time allowed.
    #[error("{url}: no complete answer within {} ms", after.as_millis())]
    Timeout {
        /// The requested URL, redacted.
        url: String,
        /// The limit that ran out.
        after: Duration,
    },
    /// The server answered with a status the caller does not accept (see
    /// [`crate::Response::require_success`]).
    #[error("{url}: HTTP {status}")]
    Status {
        /// The requested URL, redacted.
        url: String,
        /// The HTTP status code.
        status: u16,
    },
    /// Connecting, TLS or HTTP failed (the message comes from the transport, never from the body).
    #[error("{url}: {reason}")]
    Transport {
        /// The requested URL, redacted.
        url: String,
        /// What the transport said, without the URL.
        reason: String,
    },
    /// The request could not be built: a URL that does not parse, a header that is not valid.
    #[error("invalid request to {url}: {reason}")]
    Invalid {
        /// The requested URL, redacted.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The configuration is not usable.
    #[error("config `{key}`: {reason}")]
    Config {
        /// The key, e.g. `outbound.allow[2]`.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl Error {
    /// The outcome label of this error in metrics: `refused`, `too_large`, `timeout`, `status`, `transport`,
    /// `invalid` or `config`.
    pub fn outcome(&self) -> &'static str {
        match self {
            Error::Refused { .. } => "refused",
            Error::TooLarge { .. } => "too_large",
            Error::Timeout { .. } => "timeout",
            Error::Status { .. } => "status",
            Error::Transport { .. } => "transport",
            Error::Invalid { .. } => "invalid",
            Error::Config { .. } => "config",
        }
    }
}

/// What the guard refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The scheme is not http(s), or plain http to a host the allowlist does not name while `allow_http` is off.
    #[error("{}", scheme_reason(scheme))]
    Scheme {
        /// The URL's scheme.
        scheme: String,
    },
    /// The URL has no host.
    #[error("the URL has no host")]
    NoHost,
    /// The host is in the allowlist only with other ports.
    #[error("{host} is allowed only on other ports than {port}")]
    Port {
        /// The host as written in the URL.
        host: String,
        /// The port asked for.
        port: u16,
    },
    /// The address (literal, or what the host name resolved to) is in a reserved range and not re-opened.
    #[error("{}", address_reason(host.as_deref(), *addr, reserved))]
    Address {
        /// The host name that resolved to `addr`; `None` for an IP literal in the URL.
        host: Option<String>,
        /// The refused address.
        addr: IpAddr,
        /// The range it is in.
        reserved: Reserved,
    },
    /// The redirect chain is longer than `max_redirects`.
    #[error("more than {limit} redirects")]
    TooManyRedirects {
        /// The configured limit.
        limit: usize,
    },
    /// A redirect went where the first request could not have gone.
    #[error("redirect to {to} refused: {reason}")]
    Redirect {
        /// The redirect target, redacted.
        to: String,
        /// Why it was refused.
        reason: Box<Refusal>,
    },
}

impl Refusal {
    /// The `reason` label of this refusal in metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Refusal::Scheme { .. } => "scheme",
            Refusal::NoHost => "no_host",
            Refusal::Port { .. } => "port",
            Refusal::Address { .. } => "address",
            Refusal::TooManyRedirects { .. } => "too_many_redirects",
            Refusal::Redirect { .. } => "redirect",
        }
    }
}

fn scheme_reason(scheme: &str) -> String {
    if scheme == "http" {
        "plain http goes only to hosts in `allow` (or everywhere with `allow_http`)".to_owned()
    } else {
        format!("scheme `{scheme}` is not http(s)")
    }
}

fn address_reason(host: Option<&str>, addr: IpAddr, reserved: &Reserved) -> String {
    match host {
        Some(host) => format!("{host} resolves to {addr}, {reserved}"),
        None => format!("address {addr} is {reserved}"),
    }
}
