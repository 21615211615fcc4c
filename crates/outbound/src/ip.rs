//! Which IP addresses an outbound request must not reach unless the operator re-opens them.
//!
//! The table follows the IANA special-purpose address registries (RFC 6890 and its updates): everything that is
//! not globally reachable unicast is refused — loopback, RFC 1918, carrier-grade NAT, link-local (where cloud
//! metadata services live, 169.254.169.254), multicast, broadcast, documentation and benchmarking ranges. IPv6
//! addresses that carry an IPv4 address (IPv4-mapped `::ffff:0:0/96`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`)
//! are judged by the IPv4 address they carry, and IPv6 outside global unicast `2000::/3` is refused outright
//! (fail closed: a range allocated later is opened by a code change, not by accident).
//!
//! Pure: no I/O, no DNS.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A special-purpose range an address falls in, and so the reason it is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reserved {
    /// The range in CIDR notation, e.g. `127.0.0.0/8`.
    pub range: &'static str,
    /// What the range is for, e.g. `loopback`.
    pub purpose: &'static str,
    /// The IPv4 address that an IPv6 address carries (mapped, NAT64, 6to4) when that address is the one in
    /// `range`.
    pub embedded: Option<Ipv4Addr>,
}

impl std::fmt::Display for Reserved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(v4) = self.embedded {
            write!(f, "carries {v4}, ")?;
        }
        write!(f, "in {} ({})", self.range, self.purpose)
    }
}

/// One IPv4 range: network, prefix length, notation, purpose.
type V4Range = (u32, u8, &'static str, &'static str);

/// IPv4 ranges refused (IANA IPv4 special-purpose registry plus multicast and class E). First match names it.
const V4: &[V4Range] = &[
    (
        0x0000_0000,
        8,
        "0.0.0.0/8",
        "this network; 0.0.0.0 reaches the local host",
    ),
    (0x0a00_0000, 8, "10.0.0.0/8", "private, RFC 1918"),
    (
        0x6440_0000,
        10,
        "100.64.0.0/10",
        "carrier-grade NAT, RFC 6598",
    ),
    (0x7f00_0000, 8, "127.0.0.0/8", "loopback"),
    (
        0xa9fe_0000,
        16,
        "169.254.0.0/16",
        "link-local, cloud metadata",
    ),
    (0xac10_0000, 12, "172.16.0.0/12", "private, RFC 1918"),
    (0xc000_0000, 24, "192.0.0.0/24", "IETF protocol assignments"),
    (0xc000_0200, 24, "192.0.2.0/24", "documentation, TEST-NET-1"),
    (
        0xc058_6300,
        24,
        "192.88.99.0/24",
        "6to4 relay anycast, deprecated",
    ),
    (0xc0a8_0000, 16, "192.168.0.0/16", "private, RFC 1918"),
    (0xc612_0000, 15, "198.18.0.0/15", "benchmarking, RFC 2544"),
    (
        0xc633_6400,
        24,
        "198.51.100.0/24",
        "documentation, TEST-NET-2",
    ),
    (
        0xcb00_7100,
        24,
        "203.0.113.0/24",
        "documentation, TEST-NET-3",
    ),
    (0xe000_0000, 4, "224.0.0.0/4", "multicast"),
    (0xffff_ffff, 32, "255.255.255.255/32", "limited broadcast"),
    (0xf000_0000, 4, "240.0.0.0/4", "reserved"),
];

/// One IPv6 range: network, prefix length, notation, purpose.
type V6Range = (u128, u8, &'static str, &'static str);

/// IPv6 ranges refused by name, checked after the IPv4-carrying forms. First match names it.
const V6: &[V6Range] = &[
    (0, 128, "::/128", "unspecified"),
    (1, 128, "::1/128", "loopback"),
    (0, 96, "::/96", "IPv4-compatible, deprecated"),
    (
        0x0064_ff9b_0001 << 80,
        48,
        "64:ff9b:1::/48",
        "local-use NAT64, RFC 8215",
    ),
    (0x0100 << 112, 64, "100::/64", "discard-only, RFC 6666"),
    (0xfc00 << 112, 7, "fc00::/7", "unique local, RFC 4193"),
    (0xfe80 << 112, 10, "fe80::/10", "link-local"),
    (0xfec0 << 112, 10, "fec0::/10", "site-local, deprecated"),
    (0xff00 << 112, 8, "ff00::/8", "multicast"),
    (0x2001_0db8 << 96, 32, "2001:db8::/32", "documentation"),
    (
        0x2001 << 112,
        23,
        "2001::/23",
        "IETF protocol assignments, Teredo",
    ),
    (0x3fff << 112, 20, "3fff::/20", "documentation, RFC 9637"),
];

/// Global unicast `2000::/3`: the only IPv6 space handed out for the public internet.
const GLOBAL_UNICAST: (u128, u8) = (0x2000 << 112, 3);
/// NAT64 well-known prefix `64:ff9b::/96` (RFC 6052): the low 32 bits are an IPv4 address.
const NAT64: (u128, u8) = (0x0064_ff9b << 96, 96);
/// 6to4 `2002::/16` (RFC 3056): bits 16..48 are an IPv4 address.
const SIX_TO_FOUR: (u128, u8) = (0x2002 << 112, 16);

/// The reserved range `ip` is in, or `None` when it is globally reachable unicast.
pub fn classify(ip: IpAddr) -> Option<Reserved> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

/// The reserved IPv4 range `ip` is in.
pub fn classify_v4(ip: Ipv4Addr) -> Option<Reserved> {
    let bits = u32::from(ip);
    V4.iter()
        .find(|(net, len, _, _)| in_v4(bits, *net, *len))
        .map(|&(_, _, range, purpose)| Reserved {
            range,
            purpose,
            embedded: None,
        })
}

/// The reserved IPv6 range `ip` is in, judging IPv4-carrying forms by the IPv4 address they carry.
pub fn classify_v6(ip: Ipv6Addr) -> Option<Reserved> {
    let bits = u128::from(ip);
    let carried = if let Some(v4) = ip.to_ipv4_mapped() {
        Some(v4)
    } else if in_v6(bits, NAT64.0, NAT64.1) {
        Some(Ipv4Addr::from(bits as u32))
    } else if in_v6(bits, SIX_TO_FOUR.0, SIX_TO_FOUR.1) {
        Some(Ipv4Addr::from((bits >> 80) as u32))
    } else {
        None
    };
    if let Some(v4) = carried {
        return classify_v4(v4).map(|r| Reserved {
            embedded: Some(v4),
            ..r
        });
    }
    if let Some(&(_, _, range, purpose)) =
        V6.iter().find(|(net, len, _, _)| in_v6(bits, *net, *len))
    {
        return Some(Reserved {
            range,
            purpose,
            embedded: None,
        });
    }
    if !in_v6(bits, GLOBAL_UNICAST.0, GLOBAL_UNICAST.1) {
        return Some(Reserved {
            range: "outside 2000::/3",
            purpose: "not global unicast",
            embedded: None,
        });
    }
    None
}

fn in_v4(bits: u32, net: u32, len: u8) -> bool {
    let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
    bits & mask == net & mask
}

fn in_v6(bits: u128, net: u128, len: u8) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
    bits & mask == net & mask
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range_of(ip: &str) -> Option<&'static str> {
        classify(ip.parse().expect("test address")).map(|r| r.range)
    }

    /// Each IPv4 range with the addresses just inside and just outside its borders.
    #[test]
    fn every_ipv4_range_refuses_its_borders_and_not_its_neighbours() {
        let table: &[(&str, Option<&str>)] = &[
            ("0.0.0.0", Some("0.0.0.0/8")),
            ("0.255.255.255", Some("0.0.0.0/8")),
            ("1.0.0.0", None),
            ("9.255.255.255", None),
            ("10.0.0.0", Some("10.0.0.0/8")),
            ("10.255.255.255", Some("10.0.0.0/8")),
            ("11.0.0.0", None),
            ("100.63.255.255", None),
            ("100.64.0.0", Some("100.64.0.0/10")),
            ("100.127.255.255", Some("100.64.0.0/10")),
            ("100.128.0.0", None),
            ("126.255.255.255", None),
            ("127.0.0.0", Some("127.0.0.0/8")),
            ("127.0.0.1", Some("127.0.0.0/8")),
            ("127.255.255.255", Some("127.0.0.0/8")),
            ("128.0.0.0", None),
            ("169.253.255.255", None),
            ("169.254.0.0", Some("169.254.0.0/16")),
            ("169.254.169.254", Some("169.254.0.0/16")),
            ("169.254.255.255", Some("169.254.0.0/16")),
            ("169.255.0.0", None),
            ("172.15.255.255", None),
            ("172.16.0.0", Some("172.16.0.0/12")),
            ("172.31.255.255", Some("172.16.0.0/12")),
            ("172.32.0.0", None),
            ("191.255.255.255", None),
            ("192.0.0.0", Some("192.0.0.0/24")),
            ("192.0.0.255", Some("192.0.0.0/24")),
            ("192.0.1.0", None),
            ("192.0.2.0", Some("192.0.2.0/24")),
            ("192.0.2.255", Some("192.0.2.0/24")),
            ("192.0.3.0", None),
            ("192.88.98.255", None),
            ("192.88.99.0", Some("192.88.99.0/24")),
            ("192.88.99.255", Some("192.88.99.0/24")),
            ("192.88.100.0", None),
            ("192.167.255.255", None),
            ("192.168.0.0", Some("192.168.0.0/16")),
            ("192.168.255.255", Some("192.168.0.0/16")),
            ("192.169.0.0", None),
            ("198.17.255.255", None),
            ("198.18.0.0", Some("198.18.0.0/15")),
            ("198.19.255.255", Some("198.18.0.0/15")),
            ("198.20.0.0", None),
            ("198.51.99.255", None),
            ("198.51.100.0", Some("198.51.100.0/24")),
            ("198.51.100.255", Some("198.51.100.0/24")),
            ("198.51.101.0", None),
            ("203.0.112.255", None),
            ("203.0.113.0", Some("203.0.113.0/24")),
            ("203.0.113.255", Some("203.0.113.0/24")),
            ("203.0.114.0", None),
            ("223.255.255.255", None),
            ("224.0.0.0", Some("224.0.0.0/4")),
            ("239.255.255.255", Some("224.0.0.0/4")),
            ("240.0.0.0", Some("240.0.0.0/4")),
            ("255.255.255.254", Some("240.0.0.0/4")),
            ("255.255.255.255", Some("255.255.255.255/32")),
            ("8.8.8.8", None),
            ("93.184.215.14", None),
        ];
        for (ip, want) in table {
            assert_eq!(range_of(ip), *want, "{ip}");
        }
    }

    /// Each IPv6 range with border addresses, and the IPv4-carrying forms judged by what they carry.
    #[test]
    fn every_ipv6_range_refuses_its_borders_and_not_its_neighbours() {
        let table: &[(&str, Option<&str>)] = &[
            ("::", Some("::/128")),
            ("::1", Some("::1/128")),
            ("::2", Some("::/96")),
            ("::127.0.0.1", Some("::/96")),
            ("::8.8.8.8", Some("::/96")),
            ("::1:0:0", Some("outside 2000::/3")),
            // IPv4-mapped: judged by the IPv4 address.
            ("::ffff:127.0.0.1", Some("127.0.0.0/8")),
            ("::ffff:10.1.2.3", Some("10.0.0.0/8")),
            ("::ffff:169.254.169.254", Some("169.254.0.0/16")),
            ("::ffff:0.0.0.0", Some("0.0.0.0/8")),
            ("::ffff:8.8.8.8", None),
            // NAT64 well-known prefix: judged by the IPv4 address.
            ("64:ff9b::7f00:1", Some("127.0.0.0/8")),
            ("64:ff9b::c0a8:101", Some("192.168.0.0/16")),
            ("64:ff9b::808:808", None),
            ("64:ff9b:1::1", Some("64:ff9b:1::/48")),
            ("64:ff9b:1:ffff:ffff:ffff:ffff:ffff", Some("64:ff9b:1::/48")),
            ("64:ff9b:2::", Some("outside 2000::/3")),
            // 6to4: bits 16..48 are the IPv4 address.
            ("2002:7f00:1::", Some("127.0.0.0/8")),
            ("2002:a9fe:a9fe::1", Some("169.254.0.0/16")),
            ("2002:0a00:0001:1::1", Some("10.0.0.0/8")),
            ("2002:808:808::1", None),
            ("100::", Some("100::/64")),
            ("100::ffff:ffff:ffff:ffff", Some("100::/64")),
            (
                "fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                Some("outside 2000::/3"),
            ),
            ("fc00::", Some("fc00::/7")),
            ("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some("fc00::/7")),
            (
                "fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                Some("outside 2000::/3"),
            ),
            ("fe80::", Some("fe80::/10")),
            ("febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some("fe80::/10")),
            ("fec0::", Some("fec0::/10")),
            ("ff00::", Some("ff00::/8")),
            ("ff02::1", Some("ff00::/8")),
            ("2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", None),
            ("2001:db8::", Some("2001:db8::/32")),
            (
                "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
                Some("2001:db8::/32"),
            ),
            ("2001:db9::", None),
            ("2001::", Some("2001::/23")),
            ("2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff", Some("2001::/23")),
            ("2001:200::", None),
            (
                "1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                Some("outside 2000::/3"),
            ),
            ("2000::", None),
            ("3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff", None),
            ("3fff::", Some("3fff::/20")),
            ("3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff", Some("3fff::/20")),
            ("3fff:1000::", None),
            ("4000::", Some("outside 2000::/3")),
            ("2606:4700:4700::1111", None),
            ("2a00:1450:4001:80b::200e", None),
        ];
        for (ip, want) in table {
            assert_eq!(range_of(ip), *want, "{ip}");
        }
    }

    #[test]
    fn refusal_of_a_carried_address_names_the_carried_address() {
        let reserved = classify("::ffff:127.0.0.1".parse().expect("test address"));
        assert_eq!(
            reserved.map(|r| r.to_string()).as_deref(),
            Some("carries 127.0.0.1, in 127.0.0.0/8 (loopback)")
        );
    }
}
