//! VAST macros: `[NAME]` placeholders in tracking, error and request URIs that whoever fires the URI
//! replaces (the IAB VAST 4.x macro list, as published in the IAB's `vast4macros` data, 59 macros from
//! `[TIMESTAMP]` to `[DSAPUBRENDER]`).
//!
//! Values are percent-encoded as RFC 3986 §2.3 requires for URI data: everything but the unreserved
//! characters `A–Z a–z 0–9 - . _ ~`; a list value is its items encoded one by one and joined with unencoded
//! commas (`[PLAYERSIZE]` → `640,360`). Names this list does not know are left as they are, and so, by
//! default, are known macros with no value, so that a later hop can fill them (the stitcher fills what the
//! server knows, the player the rest); VAST's sentinels for "not supported" (`-1`) and "unknown" (`-2`)
//! are available as an explicit choice ([`Unfilled`]).
//!
//! Pure: the caller supplies the time ([`MacroValues::set_timestamp`]) and the random number
//! ([`MacroValues::set_cachebusting`]).

use std::time::{Duration, SystemTime};

use crate::time::Time;

macro_rules! vast_macros {
    ($($variant:ident = $name:literal,)*) => {
        /// A VAST 4.x macro.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[allow(missing_docs)]
        pub enum Macro {
            $($variant,)*
        }

        impl Macro {
            /// Every macro of the IAB list, in its order.
            pub const ALL: &'static [Macro] = &[$(Macro::$variant,)*];

            /// The name between the brackets.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Macro::$variant => $name,)*
                }
            }

            /// The macro called `name` (without brackets, case as written in the list).
            pub fn from_name(name: &str) -> Option<Macro> {
                match name {
                    $($name => Some(Macro::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

vast_macros! {
    Timestamp = "TIMESTAMP",
    Cachebusting = "CACHEBUSTING",
    ContentPlayhead = "CONTENTPLAYHEAD",
    MediaPlayhead = "MEDIAPLAYHEAD",
    BreakPosition = "BREAKPOSITION",
    BlockedAdCategories = "BLOCKEDADCATEGORIES",
    AdCategories = "ADCATEGORIES",
    AdCount = "ADCOUNT",
    TransactionId = "TRANSACTIONID",
    PlacementType = "PLACEMENTTYPE",
    AdType = "ADTYPE",
    UniversalAdId = "UNIVERSALADID",
    BreakMaxDuration = "BREAKMAXDURATION",
    BreakMaxAds = "BREAKMAXADS",
    BreakMinAdLength = "BREAKMINADLENGTH",
    BreakMaxAdLength = "BREAKMAXADLENGTH",
    Ifa = "IFA",
    IfaType = "IFATYPE",
    ClientUa = "CLIENTUA",
    ServerUa = "SERVERUA",
    DeviceUa = "DEVICEUA",
    ServerSide = "SERVERSIDE",
    DeviceIp = "DEVICEIP",
    LatLong = "LATLONG",
    Domain = "DOMAIN",
    PageUrl = "PAGEURL",
    AppBundle = "APPBUNDLE",
    VastVersions = "VASTVERSIONS",
    ApiFrameworks = "APIFRAMEWORKS",
    Extensions = "EXTENSIONS",
    VerificationVendors = "VERIFICATIONVENDORS",
    OmidPartner = "OMIDPARTNER",
    MediaMime = "MEDIAMIME",
    PlayerCapabilities = "PLAYERCAPABILITIES",
    ClickType = "CLICKTYPE",
    PlayerState = "PLAYERSTATE",
    InventoryState = "INVENTORYSTATE",
    PlayerSize = "PLAYERSIZE",
    AdPlayhead = "ADPLAYHEAD",
    AssetUri = "ASSETURI",
    ContentId = "CONTENTID",
    ContentUri = "CONTENTURI",
    PodSequence = "PODSEQUENCE",
    AdServingId = "ADSERVINGID",
    ClickPos = "CLICKPOS",
    ErrorCode = "ERRORCODE",
    Reason = "REASON",
    LimitAdTracking = "LIMITADTRACKING",
    Regulations = "REGULATIONS",
    GdprConsent = "GDPRCONSENT",
    StoreId = "STOREID",
    StoreUrl = "STOREURL",
    PlaybackMethods = "PLAYBACKMETHODS",
    ContentCat = "CONTENTCAT",
    GppString = "GPPSTRING",
    GppSectionId = "GPPSECTIONID",
    DsaRequired = "DSAREQUIRED",
    DsaParams = "DSAPARAMS",
    DsaPubRender = "DSAPUBRENDER",
}

/// What to put where a known macro has no value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Unfilled {
    /// Leave `[NAME]` for a later hop to fill.
    #[default]
    Keep,
    /// `-1`: the macro is not supported.
    NotSupported,
    /// `-2`: the value is unknown or withheld.
    Unknown,
}

/// The value of a macro, before encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MacroValue {
    /// One value.
    Text(String),
    /// A list (`Array<…>` in the IAB list): items encoded one by one, joined with `,`.
    List(Vec<String>),
}

/// Values for the macros of one firing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MacroValues {
    values: Vec<(Macro, MacroValue)>,
}

impl MacroValues {
    /// No values.
    pub fn new() -> MacroValues {
        MacroValues::default()
    }

    /// Sets `m` to one value.
    pub fn set(&mut self, m: Macro, value: impl Into<String>) -> &mut Self {
        self.put(m, MacroValue::Text(value.into()))
    }

    /// Sets `m` to a list.
    pub fn set_list<I, S>(&mut self, m: Macro, items: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.put(
            m,
            MacroValue::List(items.into_iter().map(Into::into).collect()),
        )
    }

    /// Sets a playhead macro (`[CONTENTPLAYHEAD]`, `[MEDIAPLAYHEAD]`, `[ADPLAYHEAD]`) as `HH:MM:SS.mmm`.
    pub fn set_time(&mut self, m: Macro, t: Time) -> &mut Self {
        let ms = t.as_millis();
        let text = format!(
            "{:02}:{:02}:{:02}.{:03}",
            t.hours(),
            (ms / 60_000) % 60,
            (ms / 1000) % 60,
            ms % 1000
        );
        self.set(m, text)
    }

    /// Sets `[TIMESTAMP]`: ISO 8601 with milliseconds and the zone offset, `at` shown in the zone
    /// `utc_offset_minutes` east of UTC (e.g. `2016-01-17T08:15:07.127-05:00`).
    pub fn set_timestamp(&mut self, at: SystemTime, utc_offset_minutes: i32) -> &mut Self {
        self.set(Macro::Timestamp, iso8601(at, utc_offset_minutes))
    }

    /// Sets `[CACHEBUSTING]` to the 8-digit form of `random` (the caller's random number).
    pub fn set_cachebusting(&mut self, random: u32) -> &mut Self {
        self.set(Macro::Cachebusting, format!("{:08}", random % 100_000_000))
    }

    /// The value of `m`, if set.
    pub fn get(&self, m: Macro) -> Option<&MacroValue> {
        self.values.iter().find(|(k, _)| *k == m).map(|(_, v)| v)
    }

    fn put(&mut self, m: Macro, value: MacroValue) -> &mut Self {
        match self.values.iter_mut().find(|(k, _)| *k == m) {
            Some(slot) => slot.1 = value,
            None => self.values.push((m, value)),
        }
        self
    }
}

/// Replaces the macros of `template`; see the module documentation for the rules.
pub fn expand(template: &str, values: &MacroValues, unfilled: Unfilled) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('[') {
        let (before, from_open) = rest.split_at(open);
        out.push_str(before);
        let name_len = from_open[1..]
            .bytes()
            .take_while(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_')
            .count();
        let known = from_open
            .get(1 + name_len..)
            .filter(|after| after.starts_with(']'))
            .and_then(|_| Macro::from_name(&from_open[1..1 + name_len]));
        let Some(m) = known else {
            out.push('[');
            rest = &from_open[1..];
            continue;
        };
        match (values.get(m), unfilled) {
            (Some(MacroValue::Text(v)), _) => percent_encode_into(v, &mut out),
            (Some(MacroValue::List(items)), _) => {
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    percent_encode_into(item, &mut out);
                }
            }
            (None, Unfilled::Keep) => out.push_str(&from_open[..name_len + 2]),
            (None, Unfilled::NotSupported) => out.push_str("-1"),
            (None, Unfilled::Unknown) => out.push_str("-2"),
        }
        rest = &from_open[name_len + 2..];
    }
    out.push_str(rest);
    out
}

/// Replaces `[ERRORCODE]` with `code` and leaves every other macro for the firing party.
pub fn expand_error_code(template: &str, code: u16) -> String {
    let mut values = MacroValues::new();
    values.set(Macro::ErrorCode, code.to_string());
    expand(template, &values, Unfilled::Keep)
}

/// Percent-encodes everything but RFC 3986's unreserved characters, with upper-case hex digits.
pub fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    percent_encode_into(value, &mut out);
    out
}

fn percent_encode_into(value: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in value.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0F)]));
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmm±HH:MM` without a date library: days to a civil date by the
/// era arithmetic of the proleptic Gregorian calendar.
fn iso8601(at: SystemTime, utc_offset_minutes: i32) -> String {
    let since_epoch = match at.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i128::try_from(d.as_millis()).unwrap_or(i128::MAX / 2),
        Err(e) => -i128::try_from(e.duration().as_millis()).unwrap_or(i128::MAX / 2),
    };
    let offset = i128::from(utc_offset_minutes.clamp(-18 * 60, 18 * 60));
    let local = since_epoch + offset * 60_000;
    let millis = local.rem_euclid(1000);
    let secs = local.div_euclid(1000);
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i128::from(month <= 2);
    let sign = if offset < 0 { '-' } else { '+' };
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}{sign}{:02}:{:02}",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60,
        offset.abs() / 60,
        offset.abs() % 60
    )
}

/// Milliseconds after the epoch as a [`SystemTime`] (for tests and callers holding a number).
pub fn system_time_from_millis(millis: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_has_the_59_iab_macros() {
        assert_eq!(Macro::ALL.len(), 59);
        for m in Macro::ALL {
            assert_eq!(Macro::from_name(m.name()), Some(*m));
        }
    }

    #[test]
    fn values_are_percent_encoded_and_lists_joined_with_commas() {
        let mut v = MacroValues::new();
        v.set(Macro::DeviceUa, "Mozilla/5.0 (X11; Linux)")
            .set_list(Macro::PlayerSize, ["640", "360"])
            .set_list(Macro::UniversalAdId, ["ad-id.org CNPA0484000H", "x y"])
            .set_time(Macro::ContentPlayhead, Time::from_millis(321_123));
        let url = "https://t/e?ua=[DEVICEUA]&ps=[PLAYERSIZE]&u=[UNIVERSALADID]&c=[CONTENTPLAYHEAD]";
        assert_eq!(
            expand(url, &v, Unfilled::Keep),
            "https://t/e?ua=Mozilla%2F5.0%20%28X11%3B%20Linux%29&ps=640,360\
             &u=ad-id.org%20CNPA0484000H,x%20y&c=00%3A05%3A21.123"
        );
    }

    #[test]
    fn unknown_names_and_brackets_stay_as_they_are() {
        let v = MacroValues::new();
        for s in [
            "[NOTAMACRO]",
            "[",
            "a[b]c",
            "[[ERRORCODE]",
            "[ERRORCODE",
            "[errorcode]",
            "[]",
            "é[ERRORCODE]",
        ] {
            let expected = s.replace("[ERRORCODE]", "-1");
            assert_eq!(expand(s, &v, Unfilled::NotSupported), expected, "{s}");
        }
    }

    #[test]
    fn unfilled_known_macros_follow_the_policy() {
        let v = MacroValues::new();
        let url = "https://t/?g=[GDPRCONSENT]&r=[REGULATIONS]";
        assert_eq!(expand(url, &v, Unfilled::Keep), url);
        assert_eq!(
            expand(url, &v, Unfilled::NotSupported),
            "https://t/?g=-1&r=-1"
        );
        assert_eq!(expand(url, &v, Unfilled::Unknown), "https://t/?g=-2&r=-2");
    }

    #[test]
    fn error_code_alone_is_filled_for_error_pings() {
        assert_eq!(
            expand_error_code("https://e/?c=[ERRORCODE]&t=[TIMESTAMP]", 303),
            "https://e/?c=303&t=[TIMESTAMP]"
        );
    }

    #[test]
    fn timestamps_carry_milliseconds_and_the_zone_offset() {
        // 2016-01-17T13:15:07.127Z, the IAB list's example (08:15:07.127 Eastern).
        let at = system_time_from_millis(1_453_036_507_127);
        let mut v = MacroValues::new();
        v.set_timestamp(at, -5 * 60);
        assert_eq!(
            v.get(Macro::Timestamp),
            Some(&MacroValue::Text("2016-01-17T08:15:07.127-05:00".into()))
        );
        assert_eq!(
            expand("[TIMESTAMP]", &v, Unfilled::Keep),
            "2016-01-17T08%3A15%3A07.127-05%3A00"
        );
        assert_eq!(
            iso8601(system_time_from_millis(951_782_400_000), 0),
            "2000-02-29T00:00:00.000+00:00"
        );
    }

    #[test]
    fn cachebusting_is_eight_digits() {
        let mut v = MacroValues::new();
        v.set_cachebusting(42);
        assert_eq!(expand("[CACHEBUSTING]", &v, Unfilled::Keep), "00000042");
        v.set_cachebusting(u32::MAX);
        assert_eq!(expand("[CACHEBUSTING]", &v, Unfilled::Keep), "94967295");
    }
}
