//! The time types of an MPD: `xs:duration` (ISO 8601 `PnDTnHnMnS`, used by MPD@minimumUpdatePeriod,
//! Period@start, ...) and `xs:dateTime` (MPD@availabilityStartTime, MPD@publishTime), ISO/IEC 23009-1 §5.3.1.2
//! and §5.3.2.2, read to nanosecond precision and written back so that they read the same.
//!
//! Years and months have no fixed length, so a duration with non-zero `Y` or `M` (before `T`) is refused:
//! no MPD in the wild uses them. Negative durations are refused too (no MPD attribute allows one).

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::error::{Error, Result, snippet};

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// Reads an `xs:duration` such as `PT1H2M3.5S`, `P1DT0.5S` or `PT0S`.
///
/// # Errors
/// [`Error::BadDuration`] naming what is wrong.
pub fn parse_duration(text: &str) -> Result<Duration> {
    let bad = |reason: &'static str| Error::BadDuration {
        value: snippet(text),
        reason,
    };
    let s = text.trim();
    if s.starts_with('-') {
        return Err(bad("negative durations are not allowed here"));
    }
    let rest = s
        .strip_prefix('P')
        .ok_or_else(|| bad("must start with P"))?;
    if rest.is_empty() {
        return Err(bad("no components after P"));
    }
    let mut nanos: u128 = 0;
    let mut in_time = false;
    let mut seen_any = false;
    let mut last_rank = 0u8;
    let mut number = String::new();
    for c in rest.chars() {
        match c {
            '0'..='9' | '.' | ',' => number.push(if c == ',' { '.' } else { c }),
            'T' => {
                if in_time || !number.is_empty() {
                    return Err(bad("misplaced T"));
                }
                in_time = true;
            }
            'Y' | 'M' | 'D' | 'H' | 'S' | 'W' => {
                if number.is_empty() {
                    return Err(bad("designator without a number"));
                }
                let (unit_secs, rank): (u128, u8) = match (c, in_time) {
                    ('Y', false) => (0, 1),
                    ('M', false) => (0, 2),
                    ('W', false) => (7 * 86_400, 3),
                    ('D', false) => (86_400, 4),
                    ('H', true) => (3_600, 5),
                    ('M', true) => (60, 6),
                    ('S', true) => (1, 7),
                    _ => return Err(bad("designator in the wrong part (before or after T)")),
                };
                if rank <= last_rank {
                    return Err(bad("designators out of order or repeated"));
                }
                last_rank = rank;
                let value = decimal_nanos(&number).ok_or_else(|| bad("bad number"))?;
                if unit_secs == 0 {
                    if value != 0 {
                        return Err(bad("years and months have no fixed length"));
                    }
                } else {
                    let add = value
                        .checked_mul(unit_secs)
                        .ok_or_else(|| bad("too large"))?;
                    nanos = nanos.checked_add(add).ok_or_else(|| bad("too large"))?;
                }
                number.clear();
                seen_any = true;
            }
            _ => return Err(bad("unexpected character")),
        }
    }
    if !number.is_empty() {
        return Err(bad("number without a designator"));
    }
    if !seen_any {
        return Err(bad("no components"));
    }
    let secs = u64::try_from(nanos / NANOS_PER_SEC).map_err(|_| bad("too large"))?;
    let sub = u32::try_from(nanos % NANOS_PER_SEC).map_err(|_| bad("too large"))?;
    Ok(Duration::new(secs, sub))
}

/// A decimal number as nanounits (value × 10^9), digits past the ninth decimal rounded half up.
fn decimal_nanos(number: &str) -> Option<u128> {
    let (int, frac) = match number.split_once('.') {
        Some((i, f)) => (i, f),
        None => (number, ""),
    };
    if int.is_empty() && frac.is_empty() || frac.contains('.') {
        return None;
    }
    let mut value: u128 = 0;
    for b in int.bytes() {
        value = value.checked_mul(10)?.checked_add(u128::from(b - b'0'))?;
    }
    value = value.checked_mul(NANOS_PER_SEC)?;
    let mut scale = NANOS_PER_SEC / 10;
    let mut round_up = false;
    for (i, b) in frac.bytes().enumerate() {
        let digit = u128::from(b - b'0');
        if i < 9 {
            value += digit * scale;
            scale /= 10;
        } else if i == 9 {
            round_up = digit >= 5;
        }
    }
    Some(value + u128::from(round_up))
}

/// Writes a duration as `xs:duration`: `PT0S`, `PT30S`, `PT1H2M3.5S`, seconds to at most nine decimals.
#[must_use]
pub fn format_duration(d: Duration) -> String {
    let total = d.as_secs();
    let (h, m, s) = (total / 3600, (total % 3600) / 60, total % 60);
    let mut out = String::from("PT");
    if h > 0 {
        out.push_str(&h.to_string());
        out.push('H');
    }
    if m > 0 {
        out.push_str(&m.to_string());
        out.push('M');
    }
    let nanos = d.subsec_nanos();
    if s > 0 || nanos > 0 || (h == 0 && m == 0) {
        out.push_str(&s.to_string());
        if nanos > 0 {
            let frac = format!("{nanos:09}");
            out.push('.');
            out.push_str(frac.trim_end_matches('0'));
        }
        out.push('S');
    }
    out
}

/// Reads an `xs:dateTime`. A value without a time zone is taken as UTC, as DASH-IF IOP asks MPDs to use.
///
/// # Errors
/// [`Error::BadDateTime`].
pub fn parse_date_time(text: &str) -> Result<DateTime<Utc>> {
    let s = text.trim();
    let has_zone = s.ends_with('Z')
        || s.ends_with('z')
        || s.get(s.len().saturating_sub(6)..).is_some_and(|tail| {
            tail.starts_with(['+', '-']) && tail.as_bytes().get(3) == Some(&b':')
        });
    let parsed = if has_zone {
        DateTime::parse_from_rfc3339(s)
    } else {
        DateTime::parse_from_rfc3339(&format!("{s}Z"))
    };
    parsed
        .map(|d| d.with_timezone(&Utc))
        .map_err(|e| Error::BadDateTime {
            value: snippet(text),
            reason: e.to_string(),
        })
}

/// Writes an `xs:dateTime` in UTC with `Z`, fractional seconds only when present.
#[must_use]
pub fn format_date_time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// `ticks / timescale` seconds as a [`Duration`], rounded to the nearest nanosecond; `None` for timescale 0
/// or an overflow.
#[must_use]
pub fn ticks_to_duration(ticks: u64, timescale: u64) -> Option<Duration> {
    if timescale == 0 {
        return None;
    }
    let nanos =
        (u128::from(ticks) * NANOS_PER_SEC + u128::from(timescale) / 2) / u128::from(timescale);
    duration_from_nanos(nanos)
}

/// A duration as ticks of `timescale`, rounded to the nearest tick.
#[must_use]
pub fn duration_to_ticks(d: Duration, timescale: u64) -> u64 {
    let ticks = (d.as_nanos() * u128::from(timescale) + NANOS_PER_SEC / 2) / NANOS_PER_SEC;
    u64::try_from(ticks).unwrap_or(u64::MAX)
}

pub(crate) fn duration_from_nanos(nanos: u128) -> Option<Duration> {
    let secs = u64::try_from(nanos / NANOS_PER_SEC).ok()?;
    let sub = u32::try_from(nanos % NANOS_PER_SEC).ok()?;
    Some(Duration::new(secs, sub))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_every_component() {
        let cases = [
            ("PT0S", Duration::ZERO),
            ("PT1H2M3.5S", Duration::from_millis(3_723_500)),
            ("PT14.976S", Duration::from_millis(14_976)),
            ("PT3M23.08333333S", Duration::new(203, 83_333_330)),
            ("P1DT0.5S", Duration::from_millis(86_400_500)),
            ("P0Y0M0DT0H0M2S", Duration::from_secs(2)),
            ("PT1H32M16.072S", Duration::from_millis(5_536_072)),
            ("PT6.013000S", Duration::from_millis(6_013)),
            ("P1W", Duration::from_secs(604_800)),
            ("PT0.0000000005S", Duration::from_nanos(1)),
            ("PT1,5S", Duration::from_millis(1_500)),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_duration(text).expect(text), expected, "{text}");
        }
    }

    #[test]
    fn bad_durations_are_refused_with_a_reason() {
        for bad in [
            "", "P", "PT", "1S", "PT1", "PTS", "P1M", "P1Y", "-PT1S", "PT1S2M", "PT1.2.3S", "P1H",
            "PT1D", "PT1SS", "PT1x",
        ] {
            assert!(
                matches!(parse_duration(bad), Err(Error::BadDuration { .. })),
                "{bad:?} must be refused"
            );
        }
    }

    #[test]
    fn durations_write_back_to_the_same_value() {
        for text in [
            "PT0S",
            "PT1H2M3.5S",
            "PT3M23.08333333S",
            "P1DT0.5S",
            "PT59M",
            "PT2H",
        ] {
            let d = parse_duration(text).expect(text);
            assert_eq!(parse_duration(&format_duration(d)).expect("written"), d);
        }
        assert_eq!(
            format_duration(Duration::from_millis(3_723_500)),
            "PT1H2M3.5S"
        );
        assert_eq!(format_duration(Duration::ZERO), "PT0S");
    }

    #[test]
    fn date_times_with_and_without_zone() {
        let t = parse_date_time("2023-05-24T12:48:37.731482Z").expect("valid");
        assert_eq!(format_date_time(&t), "2023-05-24T12:48:37.731482Z");
        let local = parse_date_time("2017-01-01T10:00:00").expect("no zone is UTC");
        assert_eq!(format_date_time(&local), "2017-01-01T10:00:00Z");
        let offset = parse_date_time("2017-01-01T12:00:00+02:00").expect("offset");
        assert_eq!(offset, local);
        assert!(parse_date_time("yesterday").is_err());
    }

    #[test]
    fn ticks_round_to_nanoseconds() {
        assert_eq!(
            ticks_to_duration(900_000, 90_000),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            ticks_to_duration(1, 3),
            Some(Duration::from_nanos(333_333_333))
        );
        assert_eq!(ticks_to_duration(1, 0), None);
        assert_eq!(
            duration_to_ticks(Duration::from_millis(2_002), 30_000),
            60_060
        );
    }
}
