//! Time values of VAST and VMAP: `HH:MM:SS[.mmm]` clock times (VAST 4.2 `Duration`, tracking `offset`,
//! `skipoffset`, icon `offset`/`duration`, typed `xs:time` or the pattern
//! `\d{2}:[0-5]\d:[0-5]\d(\.\d\d\d)?` in `vast_4.2.xsd`; VMAP 1.0 `timeOffset`) and the percentages that
//! `offset`, `skipoffset` and `timeOffset` also accept (`n%`).
//!
//! Values are kept in whole milliseconds (the precision VAST can express) and thousandths of a percent, so
//! they compare exactly and round-trip through text.

use std::fmt;

/// A VAST clock time, `HH:MM:SS` or `HH:MM:SS.mmm`, in whole milliseconds.
///
/// Parsing accepts any number of hour digits and any number of fraction digits (digits past the third are
/// truncated, never rounded up into the next second); writing gives two-digit hours (more when needed) and
/// `.mmm` only when there is a fraction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Time {
    millis: u64,
}

impl Time {
    /// Zero.
    pub const ZERO: Time = Time { millis: 0 };

    /// A time of `millis` milliseconds.
    pub const fn from_millis(millis: u64) -> Time {
        Time { millis }
    }

    /// A time of `secs` whole seconds (saturating).
    pub const fn from_secs(secs: u64) -> Time {
        Time {
            millis: secs.saturating_mul(1000),
        }
    }

    /// Milliseconds.
    pub const fn as_millis(self) -> u64 {
        self.millis
    }

    /// As a [`std::time::Duration`].
    pub const fn as_duration(self) -> std::time::Duration {
        std::time::Duration::from_millis(self.millis)
    }

    /// Whole hours (the `HH` field).
    pub const fn hours(self) -> u64 {
        self.millis / 3_600_000
    }

    /// Parses `H+:MM:SS` with an optional `.f+` fraction; surrounding whitespace is ignored.
    pub fn parse(text: &str) -> Result<Time, &'static str> {
        let text = text.trim();
        let (clock, fraction) = match text.split_once('.') {
            Some((clock, fraction)) => (clock, Some(fraction)),
            None => (text, None),
        };
        let mut fields = clock.split(':');
        let (Some(h), Some(m), Some(s), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err("expected HH:MM:SS or HH:MM:SS.mmm");
        };
        let hours = digits(h, 1, 12).ok_or("hours must be digits")?;
        let minutes = digits(m, 2, 2).ok_or("minutes must be two digits")?;
        let seconds = digits(s, 2, 2).ok_or("seconds must be two digits")?;
        if minutes > 59 || seconds > 59 {
            return Err("minutes and seconds must be below 60");
        }
        let millis = match fraction {
            None => 0,
            Some(f) => {
                if f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) {
                    return Err("the fraction of a second must be digits");
                }
                let mut ms = 0u64;
                for i in 0..3 {
                    ms = ms * 10 + f.as_bytes().get(i).map_or(0, |b| u64::from(b - b'0'));
                }
                ms
            }
        };
        let total = hours
            .checked_mul(3_600_000)
            .and_then(|h| h.checked_add(minutes * 60_000 + seconds * 1000 + millis))
            .ok_or("time too large")?;
        Ok(Time { millis: total })
    }
}

fn digits(s: &str, min: usize, max: usize) -> Option<u64> {
    if s.len() < min || s.len() > max || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.millis % 1000;
        let s = (self.millis / 1000) % 60;
        let m = (self.millis / 60_000) % 60;
        write!(f, "{:02}:{m:02}:{s:02}", self.hours())?;
        if ms != 0 {
            write!(f, ".{ms:03}")?;
        }
        Ok(())
    }
}

/// A percentage from 0% to 100%, in thousandths of a percent (`12.5%` is 12 500).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Percent {
    thousandths: u32,
}

impl Percent {
    /// The largest percentage, 100%.
    pub const MAX: Percent = Percent {
        thousandths: 100_000,
    };

    /// A percentage of `thousandths` thousandths of a percent; `None` above 100%.
    pub const fn from_thousandths(thousandths: u32) -> Option<Percent> {
        if thousandths > 100_000 {
            None
        } else {
            Some(Percent { thousandths })
        }
    }

    /// Whole percent (`whole` ≤ 100).
    pub const fn from_whole(whole: u8) -> Option<Percent> {
        Percent::from_thousandths(whole as u32 * 1000)
    }

    /// Thousandths of a percent.
    pub const fn thousandths(self) -> u32 {
        self.thousandths
    }

    /// This percentage of `total` (rounded down to the millisecond).
    pub const fn of(self, total: Time) -> Time {
        Time::from_millis((total.as_millis() as u128 * self.thousandths as u128 / 100_000) as u64)
    }

    /// Parses `n%` or `n.f%` (the `%` is required); digits past the third decimal are truncated.
    pub fn parse(text: &str) -> Result<Percent, &'static str> {
        let body = text
            .trim()
            .strip_suffix('%')
            .ok_or("a percentage ends with %")?;
        let (whole, fraction) = match body.split_once('.') {
            Some((w, f)) => (w, f),
            None => (body, ""),
        };
        if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || whole.len() > 3 {
            return Err("a percentage is 0 to 100");
        }
        if !fraction.bytes().all(|b| b.is_ascii_digit())
            || (body.contains('.') && fraction.is_empty())
        {
            return Err("the fraction of a percentage must be digits");
        }
        let whole: u32 = whole.parse().map_err(|_| "a percentage is 0 to 100")?;
        let mut thousandths = whole * 1000;
        for i in 0..3 {
            let digit = fraction
                .as_bytes()
                .get(i)
                .map_or(0, |b| u32::from(b - b'0'));
            thousandths += digit * [100, 10, 1][i];
        }
        Percent::from_thousandths(thousandths).ok_or("a percentage is 0 to 100")
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.thousandths / 1000;
        let frac = self.thousandths % 1000;
        if frac == 0 {
            write!(f, "{whole}%")
        } else {
            let digits = format!("{frac:03}");
            write!(f, "{whole}.{}%", digits.trim_end_matches('0'))
        }
    }
}

/// A point in an ad: a clock time from its start or a percentage of its duration (tracking `offset`,
/// `skipoffset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Offset {
    /// `HH:MM:SS[.mmm]` from the start.
    Time(Time),
    /// `n%` of the ad's duration.
    Percent(Percent),
}

impl Offset {
    /// Parses either form.
    pub fn parse(text: &str) -> Result<Offset, &'static str> {
        if text.trim().ends_with('%') {
            Percent::parse(text).map(Offset::Percent)
        } else {
            Time::parse(text).map(Offset::Time)
        }
    }

    /// The offset as a time into an ad lasting `duration`.
    pub const fn resolve(self, duration: Time) -> Time {
        match self {
            Offset::Time(t) => t,
            Offset::Percent(p) => p.of(duration),
        }
    }
}

impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Offset::Time(t) => t.fmt(f),
            Offset::Percent(p) => p.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_times_parse_with_and_without_fraction() {
        assert_eq!(Time::parse("00:00:16"), Ok(Time::from_secs(16)));
        assert_eq!(
            Time::parse(" 01:02:03.456 "),
            Ok(Time::from_millis(3_723_456))
        );
        assert_eq!(Time::parse("00:00:01.5"), Ok(Time::from_millis(1500)));
        assert_eq!(Time::parse("00:00:01.99999"), Ok(Time::from_millis(1999)));
        assert_eq!(Time::parse("123:00:00"), Ok(Time::from_secs(123 * 3600)));
    }

    #[test]
    fn malformed_clock_times_are_rejected() {
        for bad in [
            "",
            "16",
            "00:16",
            "00:60:00",
            "00:00:61",
            "0:0:0",
            "00:00:00.",
            "00:00:00.x",
            "a:00:00",
            "00:00:00:00",
        ] {
            assert!(Time::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn clock_times_print_as_vast_writes_them() {
        assert_eq!(Time::from_secs(16).to_string(), "00:00:16");
        assert_eq!(Time::from_millis(3_723_045).to_string(), "01:02:03.045");
        assert_eq!(Time::from_secs(100 * 3600).to_string(), "100:00:00");
    }

    #[test]
    fn percentages_parse_and_print() {
        assert_eq!(Percent::parse("25%").map(|p| p.thousandths()), Ok(25_000));
        assert_eq!(
            Percent::parse("12.5%").map(|p| p.to_string()),
            Ok("12.5%".to_string())
        );
        assert_eq!(
            Percent::parse("33.33333%").map(|p| p.to_string()),
            Ok("33.333%".to_string())
        );
        assert!(Percent::parse("101%").is_err());
        assert!(Percent::parse("25").is_err());
        assert!(Percent::parse("1.%").is_err());
    }

    #[test]
    fn offsets_resolve_against_the_duration() {
        let d = Time::from_secs(30);
        assert_eq!(
            Offset::parse("50%").map(|o| o.resolve(d)),
            Ok(Time::from_secs(15))
        );
        assert_eq!(
            Offset::parse("00:00:05").map(|o| o.resolve(d)),
            Ok(Time::from_secs(5))
        );
    }
}
