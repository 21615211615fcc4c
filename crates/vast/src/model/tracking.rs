//! Tracking and clicks: `TrackingEvents` with the 4.2 schema's event enumeration (and the VAST 2/3 names it
//! replaced), and the click URIs of `VideoClicks` and its non-linear, companion and icon counterparts
//! (VAST 4.2 schema `TrackingEvents_type`, `VideoClicks_type`).

use crate::time::Offset;

/// `Tracking` in `TrackingEvents`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracking {
    /// `event`.
    pub event: TrackingEvent,
    /// `offset` (for `progress`).
    pub offset: Option<Offset>,
    /// The URI.
    pub url: String,
}

macro_rules! tracking_events {
    ($($variant:ident = $name:literal: $doc:literal,)*) => {
        /// The `event` of a `Tracking` element: the 4.2 schema's enumeration.
        ///
        /// Names of earlier versions map to their 4.x successor when read ([`TrackingEvent::parse_legacy`]);
        /// a `Tracking` with an event outside this list is kept as an unknown element.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum TrackingEvent {
            $(#[doc = $doc] $variant,)*
        }

        impl TrackingEvent {
            /// Every event, in schema order.
            pub const ALL: &'static [TrackingEvent] = &[$(TrackingEvent::$variant,)*];

            /// The attribute value.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(TrackingEvent::$variant => $name,)*
                }
            }

            /// The 4.x event named `name` exactly.
            pub fn parse(name: &str) -> Option<TrackingEvent> {
                match name {
                    $($name => Some(TrackingEvent::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

tracking_events! {
    Mute = "mute": "The player was muted.",
    Unmute = "unmute": "The player was unmuted.",
    Pause = "pause": "The ad was paused.",
    Resume = "resume": "The ad resumed.",
    Rewind = "rewind": "The ad was rewound.",
    Skip = "skip": "The ad was skipped.",
    PlayerExpand = "playerExpand": "The player was expanded (was `fullscreen`/`expand` before 4.0).",
    PlayerCollapse = "playerCollapse": "The player was collapsed (was `exitFullscreen`/`collapse`).",
    Loaded = "loaded": "The ad loaded and is buffered.",
    Start = "start": "The ad started.",
    FirstQuartile = "firstQuartile": "25% played.",
    Midpoint = "midpoint": "50% played.",
    ThirdQuartile = "thirdQuartile": "75% played.",
    Complete = "complete": "100% played.",
    Progress = "progress": "The ad reached the `offset` of the `Tracking`.",
    CloseLinear = "closeLinear": "The linear ad was closed.",
    CreativeView = "creativeView": "The creative was displayed.",
    AcceptInvitation = "acceptInvitation": "The user accepted a non-linear invitation.",
    AdExpand = "adExpand": "A non-linear ad was expanded.",
    AdCollapse = "adCollapse": "A non-linear ad was collapsed.",
    Minimize = "minimize": "A non-linear ad was minimised.",
    Close = "close": "A non-linear ad was closed.",
    OverlayViewDuration = "overlayViewDuration": "A non-linear ad was viewed for its duration.",
    OtherAdInteraction = "otherAdInteraction": "Another interaction with the ad.",
    InteractiveStart = "interactiveStart": "An interactive creative started.",
}

impl TrackingEvent {
    /// Reads an event name of any VAST version: the 4.x names, and the VAST 2/3 names that 4.0 renamed
    /// (`fullscreen`, `exitFullscreen`, `expand`, `collapse`, `acceptInvitationLinear`). `expand` and
    /// `collapse` meant the player in a linear creative and the ad in a non-linear one.
    pub fn parse_legacy(name: &str, non_linear: bool) -> Option<TrackingEvent> {
        TrackingEvent::parse(name).or(match name {
            "fullscreen" => Some(TrackingEvent::PlayerExpand),
            "exitFullscreen" => Some(TrackingEvent::PlayerCollapse),
            "expand" if non_linear => Some(TrackingEvent::AdExpand),
            "collapse" if non_linear => Some(TrackingEvent::AdCollapse),
            "expand" => Some(TrackingEvent::PlayerExpand),
            "collapse" => Some(TrackingEvent::PlayerCollapse),
            "acceptInvitationLinear" => Some(TrackingEvent::AcceptInvitation),
            _ => None,
        })
    }
}

/// A click URI with its optional `id` (`ClickThrough`, `ClickTracking`, `CustomClick`, and the
/// non-linear, companion and icon counterparts).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Click {
    /// `id`.
    pub id: Option<String>,
    /// The URI.
    pub url: String,
}

/// `VideoClicks`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VideoClicks {
    /// `ClickThrough`: where a click takes the viewer.
    pub click_through: Option<Click>,
    /// `ClickTracking` URIs.
    pub click_tracking: Vec<Click>,
    /// `CustomClick` URIs.
    pub custom_clicks: Vec<Click>,
}
