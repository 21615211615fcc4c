//! User-agent reduction: a raw `User-Agent` header becomes a device class and a platform, and nothing else
//! leaves the edge (no browser version, no model, no build: the long tail of those fields is what makes a UA a
//! fingerprint). Rules are a compact ordered table; the first rule whose needles all occur in the UA
//! (case-insensitively) wins. The order matters: connected-TV platforms first (a Fire TV UA also says
//! "Android … Mobile", a Chromecast UA says "Linux", an Xbox UA says "Windows"), then phones and tablets,
//! then desktops, then a generic browser fallback.
//!
//! Table format (also [`UaRules::parse`]): `needle[+needle…],platform,class` per line, `#` comments.

use std::fmt;

use serde::Serialize;

use crate::error::{Error, Result};

/// What kind of screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceClass {
    /// Connected TV, streaming stick, set-top box.
    Tv,
    /// Phone.
    Mobile,
    /// Tablet.
    Tablet,
    /// Desktop or laptop computer.
    Desktop,
    /// Games console.
    Console,
    /// Not recognised (including crawlers).
    Unknown,
}

/// The software platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Platform {
    /// Roku OS.
    Roku,
    /// Apple tvOS.
    Tvos,
    /// Apple iOS / iPadOS.
    Ios,
    /// Android phones and tablets.
    Android,
    /// Android TV / Google TV.
    Androidtv,
    /// Samsung Tizen.
    Tizen,
    /// LG webOS (and NetCast).
    Webos,
    /// Amazon Fire TV (Fire OS).
    Firetv,
    /// Google Chromecast (Cast OS).
    Chromecast,
    /// Vizio SmartCast.
    Vizio,
    /// HbbTV broadcast-linked TV apps.
    Hbbtv,
    /// Sony PlayStation.
    Playstation,
    /// Microsoft Xbox.
    Xbox,
    /// Nintendo.
    Nintendo,
    /// Microsoft Windows.
    Windows,
    /// Apple macOS.
    Macos,
    /// ChromeOS.
    Chromeos,
    /// Desktop Linux.
    Linux,
    /// A browser on an unrecognised system.
    Web,
    /// A self-declared crawler or bot.
    Bot,
    /// Not recognised.
    Unknown,
}

const PLATFORMS: &[(&str, Platform)] = &[
    ("roku", Platform::Roku),
    ("tvos", Platform::Tvos),
    ("ios", Platform::Ios),
    ("android", Platform::Android),
    ("androidtv", Platform::Androidtv),
    ("tizen", Platform::Tizen),
    ("webos", Platform::Webos),
    ("firetv", Platform::Firetv),
    ("chromecast", Platform::Chromecast),
    ("vizio", Platform::Vizio),
    ("hbbtv", Platform::Hbbtv),
    ("playstation", Platform::Playstation),
    ("xbox", Platform::Xbox),
    ("nintendo", Platform::Nintendo),
    ("windows", Platform::Windows),
    ("macos", Platform::Macos),
    ("chromeos", Platform::Chromeos),
    ("linux", Platform::Linux),
    ("web", Platform::Web),
    ("bot", Platform::Bot),
    ("unknown", Platform::Unknown),
];

const CLASSES: &[(&str, DeviceClass)] = &[
    ("tv", DeviceClass::Tv),
    ("mobile", DeviceClass::Mobile),
    ("tablet", DeviceClass::Tablet),
    ("desktop", DeviceClass::Desktop),
    ("console", DeviceClass::Console),
    ("unknown", DeviceClass::Unknown),
];

impl Platform {
    /// The name used in rule tables, reports and targeting (`roku`, `androidtv`, …).
    pub fn as_str(self) -> &'static str {
        PLATFORMS
            .iter()
            .find(|(_, p)| *p == self)
            .map_or("unknown", |(n, _)| n)
    }
}

impl DeviceClass {
    /// The name used in rule tables, reports and targeting (`tv`, `mobile`, …).
    pub fn as_str(self) -> &'static str {
        CLASSES
            .iter()
            .find(|(_, c)| *c == self)
            .map_or("unknown", |(n, _)| n)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for DeviceClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// All a UA is reduced to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Device {
    /// Device class.
    pub class: DeviceClass,
    /// Platform.
    pub platform: Platform,
}

impl Device {
    /// Nothing recognised.
    pub const UNKNOWN: Device = Device {
        class: DeviceClass::Unknown,
        platform: Platform::Unknown,
    };
}

/// The built-in rule table. Needles are lower case; `+` joins needles that must all occur.
pub const BUILTIN_RULES: &str = "\
# Crawlers first: a smartphone crawler's UA also looks like a phone.
bot/,bot,unknown
bot;,bot,unknown
bot-,bot,unknown
spider,bot,unknown
crawler,bot,unknown
# Connected TV and consoles, before the mobile/desktop systems their UAs also name.
roku,roku,tv
apple tv,tvos,tv
appletv,tvos,tv
tvos,tvos,tv
; aft,firetv,tv
fire tv,firetv,tv
firetv,firetv,tv
crkey,chromecast,tv
android tv,androidtv,tv
androidtv,androidtv,tv
google tv,androidtv,tv
googletv,androidtv,tv
bravia,androidtv,tv
tizen,tizen,tv
web0s,webos,tv
webos,webos,tv
netcast,webos,tv
smartcast,vizio,tv
vizio,vizio,tv
hbbtv,hbbtv,tv
playstation,playstation,console
xbox,xbox,console
nintendo,nintendo,console
# Phones and tablets.
ipad,ios,tablet
iphone,ios,mobile
ipod,ios,mobile
android+mobile,android,mobile
android,android,tablet
# Desktops.
; cros,chromeos,desktop
windows,windows,desktop
macintosh,macos,desktop
mac os x,macos,desktop
linux,linux,desktop
# A browser we could not place.
mozilla/,web,unknown
";

#[derive(Debug, Clone)]
struct Rule {
    needles: Vec<String>,
    device: Device,
}

/// An ordered user-agent rule table.
#[derive(Debug, Clone)]
pub struct UaRules {
    rules: Vec<Rule>,
}

/// UAs longer than this are cut before matching (real ones are under 400 bytes; this bounds the work).
const MAX_UA_BYTES: usize = 1024;

impl UaRules {
    /// The built-in table ([`BUILTIN_RULES`]).
    pub fn builtin() -> UaRules {
        // The built-in table is a constant checked by `builtin_rules_parse`.
        UaRules::parse(BUILTIN_RULES).unwrap_or(UaRules { rules: Vec::new() })
    }

    /// Parse a rule table (`needle[+needle…],platform,class` per line).
    pub fn parse(text: &str) -> Result<UaRules> {
        let mut rules = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let row = raw.trim();
            if row.is_empty() || row.starts_with('#') {
                continue;
            }
            let err = |field: &'static str, value: &str, reason: &str| Error::UaRule {
                line,
                field,
                value: value.to_string(),
                reason: reason.to_string(),
            };
            let fields: Vec<&str> = row.rsplitn(3, ',').collect();
            let [class, platform, needles] = fields[..] else {
                return Err(err("row", row, "expected needles,platform,class"));
            };
            let needles: Vec<String> = needles.split('+').map(|n| n.to_ascii_lowercase()).collect();
            if needles.iter().any(String::is_empty) {
                return Err(err("needles", row, "empty needle"));
            }
            let platform = PLATFORMS
                .iter()
                .find(|(n, _)| *n == platform.trim())
                .map(|(_, p)| *p)
                .ok_or_else(|| err("platform", platform, "unknown platform"))?;
            let class = CLASSES
                .iter()
                .find(|(n, _)| *n == class.trim())
                .map(|(_, c)| *c)
                .ok_or_else(|| err("class", class, "unknown device class"))?;
            rules.push(Rule {
                needles,
                device: Device { class, platform },
            });
        }
        Ok(UaRules { rules })
    }

    /// Reduce a UA to its device class and platform.
    pub fn reduce(&self, user_agent: &str) -> Device {
        let mut end = user_agent.len().min(MAX_UA_BYTES);
        while !user_agent.is_char_boundary(end) {
            end -= 1;
        }
        let ua = user_agent[..end].to_ascii_lowercase();
        self.rules
            .iter()
            .find(|r| r.needles.iter().all(|n| ua.contains(n.as_str())))
            .map_or(Device::UNKNOWN, |r| r.device)
    }
}

impl Default for UaRules {
    fn default() -> Self {
        UaRules::builtin()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_rules_parse() {
        let parsed = UaRules::parse(BUILTIN_RULES).unwrap_or_else(|e| panic!("{e}"));
        assert!(parsed.rules.len() > 30);
    }

    /// The Fire TV UA is Amazon's example from "User Agent Strings (Fire TV)" (developer.amazon.com,
    /// docs/fire-tv/user-agent-strings.html); the others follow the forms the platform vendors document
    /// (Roku, Apple AVFoundation's AppleCoreMedia, Samsung Tizen, LG webOS, Google Cast, Sony, Microsoft),
    /// with version numbers of their time.
    #[test]
    fn real_world_user_agents_reduce_to_class_and_platform() {
        let cases = [
            ("Roku/DVP-12.0 (12.0.0.4182-88)", "tv", "roku"),
            (
                "AppleCoreMedia/1.0.0.19K557 (Apple TV; U; CPU OS 15_2 like Mac OS X; en_us)",
                "tv",
                "tvos",
            ),
            (
                "Mozilla/5.0 (Linux; Android 4.2.2; AFTB Build/JDQ39) AppleWebKit/537.22 (KHTML, like Gecko) Chrome/25.0.1364.173 Mobile Safari/537.22",
                "tv",
                "firetv",
            ),
            (
                "Mozilla/5.0 (SMART-TV; LINUX; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) 76.0.3809.146/6.0 TV Safari/537.36",
                "tv",
                "tizen",
            ),
            (
                "Mozilla/5.0 (Web0S; Linux/SmartTV) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/79.0.3945.79 Safari/537.36 WebAppManager",
                "tv",
                "webos",
            ),
            (
                "Mozilla/5.0 (X11; Linux aarch64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/114.0.0.0 Safari/537.36 CrKey/1.56.500000 DeviceType/AndroidTV",
                "tv",
                "chromecast",
            ),
            (
                "ExoPlayerLib/2.18.1 (Linux; Android 11; BRAVIA 4K UR3 Build/RTM5.240122.001) Android TV",
                "tv",
                "androidtv",
            ),
            (
                "Mozilla/5.0 (PlayStation; PlayStation 5/2.26) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.0 Safari/605.1.15",
                "console",
                "playstation",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64; Xbox; Xbox One) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/70.0.3538.102 Safari/537.36 Edge/18.19041",
                "console",
                "xbox",
            ),
            (
                "AppleCoreMedia/1.0.0.20A362 (iPhone; U; CPU OS 16_0 like Mac OS X; en_us)",
                "mobile",
                "ios",
            ),
            (
                "Mozilla/5.0 (iPad; CPU OS 16_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.0 Mobile/15E148 Safari/604.1",
                "tablet",
                "ios",
            ),
            (
                "Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/116.0.0.0 Mobile Safari/537.36",
                "mobile",
                "android",
            ),
            (
                "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/116.0.0.0 Safari/537.36",
                "tablet",
                "android",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/116.0.0.0 Safari/537.36",
                "desktop",
                "windows",
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.5 Safari/605.1.15",
                "desktop",
                "macos",
            ),
            (
                "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/116.0.0.0 Safari/537.36",
                "desktop",
                "chromeos",
            ),
            (
                "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/117.0",
                "desktop",
                "linux",
            ),
            (
                "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/116.0.0.0 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
                "unknown",
                "bot",
            ),
            ("curl/8.1.2", "unknown", "unknown"),
            ("", "unknown", "unknown"),
        ];
        let rules = UaRules::builtin();
        for (ua, class, platform) in cases {
            let d = rules.reduce(ua);
            assert_eq!(
                (d.class.as_str(), d.platform.as_str()),
                (class, platform),
                "{ua}"
            );
        }
    }

    #[test]
    fn bad_rule_lines_name_line_and_field() {
        assert!(matches!(
            UaRules::parse("# c\nroku,rokuos,tv"),
            Err(Error::UaRule {
                line: 2,
                field: "platform",
                ..
            })
        ));
        assert!(matches!(
            UaRules::parse("roku,roku,television"),
            Err(Error::UaRule { field: "class", .. })
        ));
        assert!(matches!(
            UaRules::parse("roku"),
            Err(Error::UaRule { field: "row", .. })
        ));
        assert!(matches!(
            UaRules::parse("a++b,roku,tv"),
            Err(Error::UaRule {
                field: "needles",
                ..
            })
        ));
    }

    #[test]
    fn long_and_multibyte_uas_do_not_panic() {
        let rules = UaRules::builtin();
        let long = "é".repeat(2000);
        assert_eq!(rules.reduce(&long), Device::UNKNOWN);
    }
}
