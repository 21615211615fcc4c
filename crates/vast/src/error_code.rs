//! The VAST error codes a player (or a server acting for one) reports through an ad's `<Error>` URIs with the
//! `[ERRORCODE]` macro (VAST 4.2 §2.3.6.3 "VAST Error Codes"; 1xx–6xx and 9xx, the 2xx/3xx/4xx additions of
//! 4.1 included). The reader, the resolver and the stitching checks each report the one their failure
//! earned, so the ad server that sent a broken ad learns what was wrong with it.

use std::fmt;

/// A VAST error code (`[ERRORCODE]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum VastErrorCode {
    /// 100: XML parsing error.
    XmlParse,
    /// 101: VAST schema validation error (a required element missing, a value of the wrong type).
    SchemaValidation,
    /// 102: VAST version of response not supported.
    VersionNotSupported,
    /// 200: trafficking error; an ad type the player was not expecting or cannot display.
    Trafficking,
    /// 201: the player expected a different linearity.
    UnexpectedLinearity,
    /// 202: the player expected a different duration.
    UnexpectedDuration,
    /// 203: the player expected a different size.
    UnexpectedSize,
    /// 204: an ad category was required but not provided.
    CategoryRequired,
    /// 205: the InLine's `Category` violates a Wrapper's `BlockedAdCategories`.
    CategoryBlocked,
    /// 206: the ad break was shortened; the ad was not served.
    BreakShortened,
    /// 300: general Wrapper error.
    Wrapper,
    /// 301: a `VASTAdTagURI` timed out or was unavailable.
    Timeout,
    /// 302: the wrapper limit was reached.
    WrapperLimit,
    /// 303: no ads in the VAST response after one or more Wrappers.
    NoAds,
    /// 304: the InLine ad failed to result in ad display within the time limit.
    InLineTimeout,
    /// 400: general Linear error.
    Linear,
    /// 401: file not found; the `MediaFile` URI could not be fetched.
    FileNotFound,
    /// 402: timeout of a `MediaFile` URI.
    MediaFileTimeout,
    /// 403: no `MediaFile` the player supports, going by the `MediaFile` attributes.
    NoSupportedMediaFile,
    /// 405: a supported `MediaFile` could not be displayed.
    MediaFileDisplay,
    /// 406: a `Mezzanine` was required but not provided.
    MezzanineRequired,
    /// 407: the `Mezzanine` is being downloaded for the first time.
    MezzanineDownloading,
    /// 408: conditional ad rejected (deprecated with `conditionalAd`).
    ConditionalAdRejected,
    /// 409: the `InteractiveCreativeFile` was not executed.
    InteractiveNotExecuted,
    /// 410: a `Verification` was not executed.
    VerificationNotExecuted,
    /// 411: the `Mezzanine` does not meet the required specification.
    MezzanineInvalid,
    /// 500: general NonLinearAds error.
    NonLinear,
    /// 501: the NonLinear's dimensions do not fit the display area.
    NonLinearDimensions,
    /// 502: the NonLinear resource could not be fetched.
    NonLinearFetch,
    /// 503: no supported NonLinear resource type.
    NonLinearUnsupported,
    /// 600: general CompanionAds error.
    Companion,
    /// 601: the companion's dimensions do not fit the companion area.
    CompanionDimensions,
    /// 602: a required companion could not be displayed.
    CompanionRequired,
    /// 603: the companion resource could not be fetched.
    CompanionFetch,
    /// 604: no supported companion resource type.
    CompanionUnsupported,
    /// 900: undefined error.
    Undefined,
    /// 901: general VPAID error.
    Vpaid,
    /// 902: general InteractiveCreativeFile error.
    InteractiveCreativeFile,
}

/// Every code with its number and the specification's description, in numeric order.
const TABLE: &[(VastErrorCode, u16, &str)] = &[
    (VastErrorCode::XmlParse, 100, "XML parsing error"),
    (
        VastErrorCode::SchemaValidation,
        101,
        "VAST schema validation error",
    ),
    (
        VastErrorCode::VersionNotSupported,
        102,
        "VAST version of response not supported",
    ),
    (VastErrorCode::Trafficking, 200, "trafficking error"),
    (
        VastErrorCode::UnexpectedLinearity,
        201,
        "player expecting different linearity",
    ),
    (
        VastErrorCode::UnexpectedDuration,
        202,
        "player expecting different duration",
    ),
    (
        VastErrorCode::UnexpectedSize,
        203,
        "player expecting different size",
    ),
    (
        VastErrorCode::CategoryRequired,
        204,
        "ad category was required but not provided",
    ),
    (
        VastErrorCode::CategoryBlocked,
        205,
        "InLine Category violates Wrapper BlockedAdCategories",
    ),
    (VastErrorCode::BreakShortened, 206, "ad break shortened"),
    (VastErrorCode::Wrapper, 300, "general Wrapper error"),
    (
        VastErrorCode::Timeout,
        301,
        "timeout or unavailable VAST URI of a Wrapper",
    ),
    (VastErrorCode::WrapperLimit, 302, "Wrapper limit reached"),
    (
        VastErrorCode::NoAds,
        303,
        "no ads VAST response after one or more Wrappers",
    ),
    (
        VastErrorCode::InLineTimeout,
        304,
        "InLine ad failed to display within the time limit",
    ),
    (VastErrorCode::Linear, 400, "general Linear error"),
    (VastErrorCode::FileNotFound, 401, "MediaFile not found"),
    (
        VastErrorCode::MediaFileTimeout,
        402,
        "timeout of MediaFile URI",
    ),
    (
        VastErrorCode::NoSupportedMediaFile,
        403,
        "couldn't find a supported MediaFile",
    ),
    (
        VastErrorCode::MediaFileDisplay,
        405,
        "problem displaying MediaFile",
    ),
    (
        VastErrorCode::MezzanineRequired,
        406,
        "Mezzanine required but not provided",
    ),
    (
        VastErrorCode::MezzanineDownloading,
        407,
        "Mezzanine being downloaded for the first time",
    ),
    (
        VastErrorCode::ConditionalAdRejected,
        408,
        "conditional ad rejected",
    ),
    (
        VastErrorCode::InteractiveNotExecuted,
        409,
        "InteractiveCreativeFile not executed",
    ),
    (
        VastErrorCode::VerificationNotExecuted,
        410,
        "Verification not executed",
    ),
    (
        VastErrorCode::MezzanineInvalid,
        411,
        "Mezzanine does not meet the required specification",
    ),
    (VastErrorCode::NonLinear, 500, "general NonLinearAds error"),
    (
        VastErrorCode::NonLinearDimensions,
        501,
        "NonLinear dimensions do not fit",
    ),
    (
        VastErrorCode::NonLinearFetch,
        502,
        "unable to fetch NonLinear resource",
    ),
    (
        VastErrorCode::NonLinearUnsupported,
        503,
        "no supported NonLinear resource type",
    ),
    (VastErrorCode::Companion, 600, "general CompanionAds error"),
    (
        VastErrorCode::CompanionDimensions,
        601,
        "companion dimensions do not fit",
    ),
    (
        VastErrorCode::CompanionRequired,
        602,
        "unable to display a required companion",
    ),
    (
        VastErrorCode::CompanionFetch,
        603,
        "unable to fetch companion resource",
    ),
    (
        VastErrorCode::CompanionUnsupported,
        604,
        "no supported companion resource type",
    ),
    (VastErrorCode::Undefined, 900, "undefined error"),
    (VastErrorCode::Vpaid, 901, "general VPAID error"),
    (
        VastErrorCode::InteractiveCreativeFile,
        902,
        "general InteractiveCreativeFile error",
    ),
];

impl VastErrorCode {
    fn entry(self) -> (u16, &'static str) {
        TABLE
            .iter()
            .find(|(c, ..)| *c == self)
            .map_or((900, "undefined error"), |&(_, n, d)| (n, d))
    }

    /// The number for `[ERRORCODE]`.
    pub fn code(self) -> u16 {
        self.entry().0
    }

    /// The specification's description, shortened.
    pub fn description(self) -> &'static str {
        self.entry().1
    }

    /// The code of a number, if the specification defines it.
    pub fn from_code(code: u16) -> Option<VastErrorCode> {
        TABLE.iter().find(|(_, n, _)| *n == code).map(|(c, ..)| *c)
    }
}

impl fmt::Display for VastErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (code, description) = self.entry();
        write!(f, "{code} ({description})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_maps_to_its_number_and_back() {
        for &(code, number, _) in TABLE {
            assert_eq!(code.code(), number);
            assert_eq!(VastErrorCode::from_code(number), Some(code));
        }
        assert_eq!(VastErrorCode::from_code(404), None);
        assert_eq!(TABLE.len(), 38);
    }

    #[test]
    fn codes_display_with_their_meaning() {
        assert_eq!(
            VastErrorCode::SchemaValidation.to_string(),
            "101 (VAST schema validation error)"
        );
    }
}
