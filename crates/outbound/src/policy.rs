//! The guard's decisions, pure: which URLs may be requested, which resolved addresses may be connected to, and
//! how URLs are written in errors and logs.
//!
//! Three places consult it: the request itself ([`Policy::check_url`]), every redirect hop
//! ([`Policy::check_redirect`]) and the DNS resolver for every address a host name resolves to
//! ([`Policy::check_resolved`]), so a name that resolves (or re-resolves, DNS rebinding) to a private address is
//! caught where the connection is made. IP literals never reach the resolver, so the first two check them.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;
use reqwest::Url;
use url::Host;

use crate::error::{Error, Refusal};
use crate::ip::classify;

/// The parsed allowlist and scheme rules.
#[derive(Debug, Clone, Default)]
pub(crate) struct Policy {
    allow_http: bool,
    max_redirects: usize,
    /// Addresses and networks re-opened on any port.
    nets: Vec<IpNet>,
    /// Sockets re-opened (literal-IP URLs only: the resolver does not see ports).
    sockets: Vec<SocketAddr>,
    /// Host names trusted whatever they resolve to, on any port (`None`) or one port.
    names: Vec<(String, Option<u16>)>,
}

/// One allowlist entry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    Net(IpNet),
    Socket(SocketAddr),
    Name(String, Option<u16>),
}

impl Policy {
    /// The policy of `allow` (config key `outbound.allow`), `allow_http` and `max_redirects`.
    pub(crate) fn new(
        allow: &[String],
        allow_http: bool,
        max_redirects: usize,
    ) -> Result<Policy, Error> {
        let mut policy = Policy {
            allow_http,
            max_redirects,
            ..Policy::default()
        };
        for (i, text) in allow.iter().enumerate() {
            match parse_entry(text).map_err(|reason| Error::Config {
                key: format!("outbound.allow[{i}]"),
                reason: format!("`{text}`: {reason}"),
            })? {
                Entry::Net(net) => policy.nets.push(net),
                Entry::Socket(socket) => policy.sockets.push(socket),
                Entry::Name(name, port) => policy.names.push((name, port)),
            }
        }
        Ok(policy)
    }

    /// Whether `url` may be requested: an http(s) scheme, plain http only where allowed, and an IP literal
    /// outside the reserved ranges unless re-opened. Host names are judged again when resolved.
    pub(crate) fn check_url(&self, url: &Url) -> Result<(), Refusal> {
        let scheme = url.scheme();
        if scheme != "http" && scheme != "https" {
            return Err(Refusal::Scheme {
                scheme: scheme.to_owned(),
            });
        }
        let port = url.port_or_known_default().unwrap_or(0);
        let opened = match url.host() {
            None => return Err(Refusal::NoHost),
            Some(Host::Domain(name)) => self.name_opened(name, port)?,
            Some(Host::Ipv4(v4)) => self.literal_opened(IpAddr::V4(v4), port)?,
            Some(Host::Ipv6(v6)) => self.literal_opened(IpAddr::V6(v6), port)?,
        };
        if scheme == "http" && !self.allow_http && !opened {
            return Err(Refusal::Scheme {
                scheme: scheme.to_owned(),
            });
        }
        Ok(())
    }

    /// Whether a redirect to `to` may be followed after `followed` earlier ones.
    pub(crate) fn check_redirect(&self, to: &Url, followed: usize) -> Result<(), Refusal> {
        if followed > self.max_redirects {
            return Err(Refusal::TooManyRedirects {
                limit: self.max_redirects,
            });
        }
        self.check_url(to).map_err(|reason| Refusal::Redirect {
            to: redact_url(to),
            reason: Box::new(reason),
        })
    }

    /// Whether `addr`, which `host` resolved to, may be connected to.
    pub(crate) fn check_resolved(&self, host: &str, addr: IpAddr) -> Result<(), Refusal> {
        let host = normalize(host);
        if self.names.iter().any(|(name, _)| *name == host) {
            return Ok(());
        }
        if self
            .nets
            .iter()
            .any(|net| net.contains(&addr.to_canonical()))
        {
            return Ok(());
        }
        match classify(addr) {
            None => Ok(()),
            Some(reserved) => Err(Refusal::Address {
                host: Some(host.to_owned()),
                addr,
                reserved,
            }),
        }
    }

    /// Whether the literal `ip` on `port` is re-opened; refuses it when reserved and not.
    fn literal_opened(&self, ip: IpAddr, port: u16) -> Result<bool, Refusal> {
        let canonical = ip.to_canonical();
        let opened = self.nets.iter().any(|net| net.contains(&canonical))
            || self
                .sockets
                .iter()
                .any(|s| s.ip() == canonical && s.port() == port);
        if !opened {
            if let Some(reserved) = classify(ip) {
                return Err(Refusal::Address {
                    host: None,
                    addr: ip,
                    reserved,
                });
            }
        }
        Ok(opened)
    }

    /// Whether the host name is in the allowlist for `port`; refuses it when listed only with other ports.
    fn name_opened(&self, name: &str, port: u16) -> Result<bool, Refusal> {
        let name = normalize(name);
        let mut listed = false;
        for (entry, entry_port) in &self.names {
            if *entry == name {
                if entry_port.is_none_or(|p| p == port) {
                    return Ok(true);
                }
                listed = true;
            }
        }
        if listed {
            return Err(Refusal::Port {
                host: name.to_owned(),
                port,
            });
        }
        Ok(false)
    }
}

/// Host names compare without case and without the root's trailing dot.
fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn parse_entry(text: &str) -> Result<Entry, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty".to_owned());
    }
    if let Ok(net) = text.parse::<IpNet>() {
        return Ok(Entry::Net(net.trunc()));
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(Entry::Net(IpNet::from(ip.to_canonical())));
    }
    if let Ok(socket) = text.parse::<SocketAddr>() {
        return Ok(Entry::Socket(SocketAddr::new(
            socket.ip().to_canonical(),
            socket.port(),
        )));
    }
    let (name, port) = match text.rsplit_once(':') {
        Some((name, port)) => (
            name,
            Some(
                port.parse::<u16>()
                    .map_err(|_| format!("`{port}` is not a port"))?,
            ),
        ),
        None => (text, None),
    };
    let name = normalize(name);
    let valid_label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if name.is_empty() || !name.split('.').all(valid_label) {
        return Err("not an address, a network, a socket or a host name".to_owned());
    }
    // WHATWG URL parsing reads a host whose last label is numeric as an IPv4 address, so such a name never
    // reaches the resolver as a name.
    if name
        .rsplit('.')
        .next()
        .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err("looks like an IPv4 address in another form; write it dotted".to_owned());
    }
    Ok(Entry::Name(name, port))
}

/// Longest redacted URL written (a log line is no place for a 4 KiB tracking URL).
const MAX_REDACTED: usize = 200;

/// `url` fit for errors and logs: scheme, host, port and path, no user info, the query string replaced by
/// `[redacted]` (it may carry viewer ids or tokens), no fragment, at most 200 characters.
pub fn redact(url: &str) -> String {
    match Url::parse(url) {
        Ok(url) => redact_url(&url),
        Err(_) => {
            // Keep what precedes any query, user info or fragment; enough to tell which URL it was.
            let end = url.find(['?', '#', '@']).unwrap_or(url.len());
            let mut out = truncate(&url[..end]).to_owned();
            out.push_str(" (unparsable)");
            out
        }
    }
}

/// [`redact`] of a parsed URL.
pub(crate) fn redact_url(url: &Url) -> String {
    let mut out = format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""));
    if let Some(port) = url.port() {
        let _ = write!(out, ":{port}");
    }
    out.push_str(url.path());
    let mut out = truncate(&out).to_owned();
    if url.query().is_some() {
        out.push_str("?[redacted]");
    }
    out
}

fn truncate(s: &str) -> &str {
    if s.len() <= MAX_REDACTED {
        return s;
    }
    let mut end = MAX_REDACTED;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allow: &[&str], allow_http: bool) -> Policy {
        let allow: Vec<String> = allow.iter().map(|s| (*s).to_owned()).collect();
        Policy::new(&allow, allow_http, 5).expect("policy")
    }

    fn check(p: &Policy, url: &str) -> Result<(), Refusal> {
        p.check_url(&Url::parse(url).expect("test URL"))
    }

    #[test]
    fn public_https_passes_and_plain_http_needs_the_allowlist_or_allow_http() {
        let strict = policy(&[], false);
        assert_eq!(check(&strict, "https://ads.example.com/vast?id=1"), Ok(()));
        assert!(matches!(
            check(&strict, "http://ads.example.com/vast"),
            Err(Refusal::Scheme { .. })
        ));
        assert_eq!(check(&policy(&[], true), "http://ads.example.com/"), Ok(()));
        assert_eq!(
            check(
                &policy(&["ads.example.com"], false),
                "http://ads.example.com/"
            ),
            Ok(())
        );
    }

    #[test]
    fn other_schemes_are_refused() {
        let p = policy(&["127.0.0.1"], true);
        for url in [
            "file:///etc/passwd",
            "ftp://127.0.0.1/",
            "gopher://127.0.0.1:70/",
            "data:text/plain,x",
        ] {
            assert!(
                matches!(check(&p, url), Err(Refusal::Scheme { .. })),
                "{url}"
            );
        }
    }

    #[test]
    fn private_literals_are_refused_in_every_spelling_the_url_parser_accepts() {
        let p = policy(&[], true);
        for url in [
            "http://127.0.0.1/",
            "http://127.1/",
            "http://2130706433/",
            "http://0x7f000001/",
            "http://0177.0.0.1/",
            "http://0x7f.0.0.1/",
            "http://0/",
            "http://0.0.0.0:8080/",
            "http://127%2E0%2E0%2E1/",
            "http://127.0.0.1./",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://[64:ff9b::a9fe:a9fe]/",
            "http://[2002:a9fe:a9fe::]/",
            "http://169.254.169.254/latest/meta-data/",
            "http://[fe80::1]/",
            "http://[fd00::1]/",
            "https://10.0.0.1/",
            "https://100.64.0.1/",
        ] {
            assert!(
                matches!(check(&p, url), Err(Refusal::Address { host: None, .. })),
                "{url}: {:?}",
                check(&p, url)
            );
        }
    }

    #[test]
    fn allowlist_reopens_networks_sockets_and_names() {
        let p = policy(
            &[
                "10.0.0.0/8",
                "127.0.0.1:8081",
                "[::1]:9000",
                "origin.internal:8080",
                "Vast.Internal.",
            ],
            false,
        );
        assert_eq!(check(&p, "http://10.1.2.3:1234/"), Ok(()));
        assert_eq!(check(&p, "http://127.0.0.1:8081/live.m3u8"), Ok(()));
        assert_eq!(check(&p, "http://[::ffff:127.0.0.1]:8081/"), Ok(()));
        assert!(matches!(
            check(&p, "http://127.0.0.1:8082/"),
            Err(Refusal::Address { .. })
        ));
        assert_eq!(check(&p, "http://[::1]:9000/"), Ok(()));
        assert!(matches!(
            check(&p, "http://[::1]:9001/"),
            Err(Refusal::Address { .. })
        ));
        assert_eq!(check(&p, "http://origin.internal:8080/"), Ok(()));
        assert!(matches!(
            check(&p, "http://origin.internal:22/"),
            Err(Refusal::Port { port: 22, .. })
        ));
        assert_eq!(check(&p, "http://vast.internal/"), Ok(()));
    }

    #[test]
    fn resolved_addresses_are_judged_by_range_network_entries_and_name_entries() {
        let p = policy(&["10.0.0.0/8", "127.0.0.1:8081", "origin.internal"], false);
        let ip = |s: &str| s.parse::<IpAddr>().expect("test address");
        assert_eq!(
            p.check_resolved("ads.example.com", ip("93.184.215.14")),
            Ok(())
        );
        assert!(p.check_resolved("localhost", ip("127.0.0.1")).is_err());
        assert!(p.check_resolved("localhost", ip("::1")).is_err());
        assert!(
            p.check_resolved("evil.example", ip("::ffff:169.254.169.254"))
                .is_err()
        );
        // Socket entries do not open resolved names: the resolver cannot see the port.
        assert!(p.check_resolved("evil.example", ip("127.0.0.1")).is_err());
        assert_eq!(p.check_resolved("evil.example", ip("10.9.9.9")), Ok(()));
        assert_eq!(
            p.check_resolved("ORIGIN.internal.", ip("192.168.1.1")),
            Ok(())
        );
    }

    #[test]
    fn redirects_are_counted_and_checked_like_requests() {
        let p = policy(&["127.0.0.1:8081"], false);
        let to = Url::parse("http://127.0.0.1:9/x?viewer=42").expect("URL");
        match p.check_redirect(&to, 1) {
            Err(Refusal::Redirect { to, reason }) => {
                assert_eq!(to, "http://127.0.0.1:9/x?[redacted]");
                assert!(matches!(*reason, Refusal::Address { .. }));
            }
            other => panic!("{other:?}"),
        }
        let ok = Url::parse("http://127.0.0.1:8081/").expect("URL");
        assert_eq!(p.check_redirect(&ok, 5), Ok(()));
        assert_eq!(
            p.check_redirect(&ok, 6),
            Err(Refusal::TooManyRedirects { limit: 5 })
        );
    }

    #[test]
    fn bad_allowlist_entries_name_their_key() {
        for bad in [
            "",
            "10.0.0.0/33",
            "host:99999",
            "*.example.com",
            "http://x",
            "127.1",
            "a b",
        ] {
            let err =
                Policy::new(&["ok.example".to_owned(), bad.to_owned()], false, 5).expect_err(bad);
            assert!(
                err.to_string().contains("outbound.allow[1]"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn redaction_drops_query_user_info_and_fragment() {
        assert_eq!(
            redact("https://user:secret@ads.example.com:8443/vast/tag?ifa=abc&token=xyz#frag"),
            "https://ads.example.com:8443/vast/tag?[redacted]"
        );
        assert_eq!(
            redact("https://ads.example.com/p"),
            "https://ads.example.com/p"
        );
        assert_eq!(redact("http://[::1]:80/"), "http://[::1]/");
        assert_eq!(redact("not a url?token=1"), "not a url (unparsable)");
        let long = format!("https://a.example/{}?q=1", "é".repeat(300));
        let redacted = redact(&long);
        assert!(redacted.len() <= MAX_REDACTED + "?[redacted]".len());
        assert!(redacted.ends_with("?[redacted]"));
    }
}
