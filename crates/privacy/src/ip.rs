//! IP address truncation: the collector keeps an IPv4 address to its /24 and an IPv6 address to its /48,
//! after the coarse geo lookup has used the full address. A /24 (256 addresses) or a /48 (a site) no longer
//! identifies a household on its own, and is still enough for data-centre (GIVT) range checks and regional
//! reporting. IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`, RFC 4291 §2.5.5.2) are IPv4 and are truncated as
//! IPv4.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::Serialize;

/// Bits of an IPv4 address that are kept.
pub const IPV4_PREFIX_LEN: u8 = 24;
/// Bits of an IPv6 address that are kept.
pub const IPV6_PREFIX_LEN: u8 = 48;

/// An address with its host bits cleared: only this type leaves the edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct TruncatedIp(IpAddr);

impl TruncatedIp {
    /// The network address (host bits zero).
    pub fn addr(&self) -> IpAddr {
        self.0
    }

    /// The prefix length kept (24 or 48).
    pub fn prefix_len(&self) -> u8 {
        match self.0 {
            IpAddr::V4(_) => IPV4_PREFIX_LEN,
            IpAddr::V6(_) => IPV6_PREFIX_LEN,
        }
    }
}

impl fmt::Display for TruncatedIp {
    /// CIDR notation, e.g. `203.0.113.0/24`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.0, self.prefix_len())
    }
}

/// The address as the rest of this crate sees it: IPv4-mapped IPv6 becomes IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// Truncate to /24 (IPv4, including IPv4-mapped IPv6) or /48 (IPv6). Idempotent.
pub fn truncate_ip(ip: IpAddr) -> TruncatedIp {
    TruncatedIp(match canonical(ip) {
        IpAddr::V4(v4) => IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask_u32(IPV4_PREFIX_LEN))),
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask_u128(IPV6_PREFIX_LEN))),
    })
}

/// The netmask of a /`len` IPv4 prefix.
pub(crate) fn mask_u32(len: u8) -> u32 {
    match len {
        0 => 0,
        l if l >= 32 => u32::MAX,
        l => u32::MAX << (32 - u32::from(l)),
    }
}

/// The netmask of a /`len` IPv6 prefix.
pub(crate) fn mask_u128(len: u8) -> u128 {
    match len {
        0 => 0,
        l if l >= 128 => u128::MAX,
        l => u128::MAX << (128 - u32::from(l)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn ipv4_keeps_24_bits() {
        // RFC 5737 documentation addresses.
        let t = truncate_ip(ip("203.0.113.77"));
        assert_eq!(t.addr(), ip("203.0.113.0"));
        assert_eq!(t.to_string(), "203.0.113.0/24");
    }

    #[test]
    fn ipv6_keeps_48_bits() {
        // RFC 3849 documentation prefix.
        let t = truncate_ip(ip("2001:db8:abcd:12:34:56:78:9a"));
        assert_eq!(t.addr(), ip("2001:db8:abcd::"));
        assert_eq!(t.to_string(), "2001:db8:abcd::/48");
    }

    #[test]
    fn ipv4_mapped_ipv6_is_truncated_as_ipv4() {
        let t = truncate_ip(ip("::ffff:198.51.100.200"));
        assert_eq!(t.addr(), ip("198.51.100.0"));
        assert_eq!(t.prefix_len(), 24);
    }

    #[test]
    fn truncation_is_idempotent() {
        for s in [
            "192.0.2.255",
            "2001:db8:1:2:3:4:5:6",
            "::ffff:10.1.2.3",
            "::1",
        ] {
            let once = truncate_ip(ip(s));
            assert_eq!(truncate_ip(once.addr()), once);
        }
    }
}
