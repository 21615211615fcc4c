//! Coarse geo lookup from an operator-supplied table: country (ISO 3166-1 alpha-2) and, where the table has
//! it, region (ISO 3166-2 subdivision code, e.g. `DE-BY`, `US-CA`). Nothing finer: no city, no coordinates.
//! The lookup uses the full address at the edge, before [`truncate_ip`](crate::ip::truncate_ip) drops the host
//! bits; only the country/region and the truncated address travel further.
//!
//! Table format: CSV text, one `cidr,country,region` row per line (region may be empty or left out), `#`
//! comments and blank lines ignored, an optional `cidr,country,region` header line. Longest prefix wins, so a
//! country-wide /8 and a region-specific /16 inside it can coexist.

use std::collections::HashMap;
use std::net::IpAddr;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::ip::{canonical, mask_u32, mask_u128};

/// Where an address is, coarsely.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GeoLocation {
    /// ISO 3166-1 alpha-2 country code, upper case.
    pub country: String,
    /// ISO 3166-2 subdivision code (`CC-XXX`), when the table has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// A longest-prefix-match table from CIDR blocks to [`GeoLocation`]s.
#[derive(Debug, Clone, Default)]
pub struct GeoTable {
    /// Per IPv4 prefix length present, longest first: network → entry index.
    v4: Vec<(u8, HashMap<u32, usize>)>,
    /// Per IPv6 prefix length present, longest first.
    v6: Vec<(u8, HashMap<u128, usize>)>,
    entries: Vec<GeoLocation>,
}

fn row_err(line: usize, field: &'static str, value: &str, reason: impl Into<String>) -> Error {
    Error::GeoRow {
        line,
        field,
        value: value.chars().take(64).collect(),
        reason: reason.into(),
    }
}

enum Network {
    V4(u32, u8),
    V6(u128, u8),
}

fn parse_cidr(line: usize, text: &str) -> Result<Network> {
    let (addr, len) = match text.split_once('/') {
        Some((a, l)) => {
            let len: u8 = l
                .parse()
                .map_err(|_| row_err(line, "cidr", text, "prefix length is not a number"))?;
            (a, Some(len))
        }
        None => (text, None),
    };
    let ip: IpAddr = addr
        .parse()
        .map_err(|_| row_err(line, "cidr", text, "not an IPv4 or IPv6 address"))?;
    match ip {
        IpAddr::V4(v4) => {
            let len = len.unwrap_or(32);
            if len > 32 {
                return Err(row_err(line, "cidr", text, "IPv4 prefix longer than 32"));
            }
            let n = u32::from(v4);
            if n & !mask_u32(len) != 0 {
                return Err(row_err(
                    line,
                    "cidr",
                    text,
                    "host bits set after the prefix",
                ));
            }
            Ok(Network::V4(n, len))
        }
        IpAddr::V6(v6) => {
            let len = len.unwrap_or(128);
            if len > 128 {
                return Err(row_err(line, "cidr", text, "IPv6 prefix longer than 128"));
            }
            if v6.to_ipv4_mapped().is_some() {
                return Err(row_err(
                    line,
                    "cidr",
                    text,
                    "IPv4-mapped IPv6 block: write it as IPv4",
                ));
            }
            let n = u128::from(v6);
            if n & !mask_u128(len) != 0 {
                return Err(row_err(
                    line,
                    "cidr",
                    text,
                    "host bits set after the prefix",
                ));
            }
            Ok(Network::V6(n, len))
        }
    }
}

fn parse_country(line: usize, text: &str) -> Result<String> {
    if text.len() != 2 || !text.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(row_err(
            line,
            "country",
            text,
            "must be an ISO 3166-1 alpha-2 code (two letters)",
        ));
    }
    Ok(text.to_ascii_uppercase())
}

fn parse_region(line: usize, text: &str, country: &str) -> Result<Option<String>> {
    if text.is_empty() {
        return Ok(None);
    }
    let upper = text.to_ascii_uppercase();
    let ok = match upper.split_once('-') {
        Some((cc, sub)) => {
            cc == country
                && (1..=3).contains(&sub.len())
                && sub.bytes().all(|b| b.is_ascii_alphanumeric())
        }
        None => false,
    };
    if !ok {
        return Err(row_err(
            line,
            "region",
            text,
            format!("must be an ISO 3166-2 code of {country} ({country}-XXX)"),
        ));
    }
    Ok(Some(upper))
}

impl GeoTable {
    /// Load from CSV text (see the module docs for the format).
    pub fn from_csv(text: &str) -> Result<GeoTable> {
        let mut v4: HashMap<u8, HashMap<u32, usize>> = HashMap::new();
        let mut v6: HashMap<u8, HashMap<u128, usize>> = HashMap::new();
        let mut entries = Vec::new();
        let mut lines_of = Vec::new();
        let mut seen_row = false;
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let row = raw.trim();
            if row.is_empty() || row.starts_with('#') {
                continue;
            }
            if !seen_row
                && row
                    .replace(' ', "")
                    .eq_ignore_ascii_case("cidr,country,region")
            {
                seen_row = true;
                continue;
            }
            seen_row = true;
            let fields: Vec<&str> = row.split(',').map(str::trim).collect();
            if !(2..=3).contains(&fields.len()) {
                return Err(row_err(
                    line,
                    "row",
                    row,
                    format!("{} fields, expected cidr,country[,region]", fields.len()),
                ));
            }
            let network = parse_cidr(line, fields[0])?;
            let country = parse_country(line, fields[1])?;
            let region = parse_region(line, fields.get(2).copied().unwrap_or(""), &country)?;
            let idx = entries.len();
            let previous = match network {
                Network::V4(n, len) => v4.entry(len).or_default().insert(n, idx),
                Network::V6(n, len) => v6.entry(len).or_default().insert(n, idx),
            };
            if let Some(prev) = previous {
                let first = lines_of.get(prev).copied().unwrap_or(0);
                return Err(row_err(
                    line,
                    "cidr",
                    fields[0],
                    format!("duplicate of the block on line {first}"),
                ));
            }
            entries.push(GeoLocation { country, region });
            lines_of.push(line);
        }
        let mut v4: Vec<_> = v4.into_iter().collect();
        v4.sort_by_key(|g| std::cmp::Reverse(g.0));
        let mut v6: Vec<_> = v6.into_iter().collect();
        v6.sort_by_key(|g| std::cmp::Reverse(g.0));
        Ok(GeoTable { v4, v6, entries })
    }

    /// The most specific block holding `ip` (IPv4-mapped IPv6 looked up as IPv4).
    pub fn lookup(&self, ip: IpAddr) -> Option<&GeoLocation> {
        let idx = match canonical(ip) {
            IpAddr::V4(v4) => {
                let n = u32::from(v4);
                self.v4
                    .iter()
                    .find_map(|(len, m)| m.get(&(n & mask_u32(*len))))
            }
            IpAddr::V6(v6) => {
                let n = u128::from(v6);
                self.v6
                    .iter()
                    .find_map(|(len, m)| m.get(&(n & mask_u128(*len))))
            }
        }?;
        self.entries.get(*idx)
    }

    /// Number of blocks.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table is empty (every lookup misses).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = include_str!("../tests/data/geo-sample.csv");

    fn table() -> GeoTable {
        GeoTable::from_csv(SAMPLE).unwrap_or_else(|e| panic!("{e}"))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn longest_prefix_wins() {
        let t = table();
        let inner = t.lookup(ip("198.51.100.7"));
        assert_eq!(inner.map(|g| g.country.as_str()), Some("DE"));
        assert_eq!(
            inner.and_then(|g| g.region.as_deref()),
            Some("DE-BY"),
            "the /24 inside the /16"
        );
        let outer = t.lookup(ip("198.51.7.1"));
        assert_eq!(outer.map(|g| g.country.as_str()), Some("DE"));
        assert_eq!(outer.and_then(|g| g.region.clone()), None);
    }

    #[test]
    fn ipv6_and_mapped_ipv4() {
        let t = table();
        assert_eq!(
            t.lookup(ip("2001:db8:1::5")).map(|g| g.country.as_str()),
            Some("FR")
        );
        assert_eq!(
            t.lookup(ip("::ffff:203.0.113.9"))
                .and_then(|g| g.region.as_deref()),
            Some("US-CA")
        );
        assert!(t.lookup(ip("192.0.2.1")).is_none());
    }

    #[test]
    fn bad_rows_name_line_and_field() {
        let cases = [
            ("10.0.0.0/33,DE,", "cidr"),
            ("10.0.0.1/8,DE,", "cidr"),
            ("banana,DE,", "cidr"),
            ("10.0.0.0/8,DEU,", "country"),
            ("10.0.0.0/8,DE,FR-75", "region"),
            ("10.0.0.0/8,DE,DE-TOOLONG", "region"),
            ("10.0.0.0/8", "row"),
            ("10.0.0.0/8,DE,DE-BY,extra", "row"),
        ];
        for (row, field) in cases {
            let text = format!("# header comment\ncidr,country,region\n{row}\n");
            match GeoTable::from_csv(&text) {
                Err(Error::GeoRow { line, field: f, .. }) => {
                    assert_eq!((line, f), (3, field), "{row}");
                }
                other => panic!("{row}: {other:?}"),
            }
        }
    }

    #[test]
    fn duplicate_block_points_at_the_first() {
        let err = GeoTable::from_csv("10.0.0.0/8,DE,\n10.0.0.0/8,FR,\n").err();
        assert!(
            err.as_ref()
                .is_some_and(|e| e.to_string().contains("line 1")),
            "{err:?}"
        );
    }
}
