//! `segmentation_type_id` values (ANSI/SCTE 35 §10.3.3.1, Table 23) as a named enum.

use serde::{Deserialize, Serialize};

macro_rules! segmentation_types {
    ($($(#[$doc:meta])* $name:ident = $value:literal, $text:literal;)*) => {
        /// A `segmentation_type_id`; values the standard does not name are kept in [`SegmentationTypeId::Other`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(from = "u8", into = "u8")]
        pub enum SegmentationTypeId {
            $($(#[$doc])* #[doc = concat!("`", stringify!($value), "` ", $text, ".")] $name,)*
            /// Any other value.
            Other(u8),
        }

        impl From<u8> for SegmentationTypeId {
            fn from(v: u8) -> Self {
                match v {
                    $($value => Self::$name,)*
                    other => Self::Other(other),
                }
            }
        }

        impl From<SegmentationTypeId> for u8 {
            fn from(v: SegmentationTypeId) -> u8 {
                match v {
                    $(SegmentationTypeId::$name => $value,)*
                    SegmentationTypeId::Other(other) => other,
                }
            }
        }

        impl SegmentationTypeId {
            /// The name the standard gives this type ("Provider Placement Opportunity Start"), or "Unknown".
            #[must_use]
            pub fn message(self) -> &'static str {
                match self {
                    $(Self::$name => $text,)*
                    Self::Other(_) => "Unknown",
                }
            }
        }
    };
}

segmentation_types! {
    NotIndicated = 0x00, "Not Indicated";
    ContentIdentification = 0x01, "Content Identification";
    Private = 0x02, "Private";
    ProgramStart = 0x10, "Program Start";
    ProgramEnd = 0x11, "Program End";
    ProgramEarlyTermination = 0x12, "Program Early Termination";
    ProgramBreakaway = 0x13, "Program Breakaway";
    ProgramResumption = 0x14, "Program Resumption";
    ProgramRunoverPlanned = 0x15, "Program Runover Planned";
    ProgramRunoverUnplanned = 0x16, "Program Runover Unplanned";
    ProgramOverlapStart = 0x17, "Program Overlap Start";
    ProgramBlackoutOverride = 0x18, "Program Blackout Override";
    ProgramJoin = 0x19, "Program Join";
    ChapterStart = 0x20, "Chapter Start";
    ChapterEnd = 0x21, "Chapter End";
    BreakStart = 0x22, "Break Start";
    BreakEnd = 0x23, "Break End";
    OpeningCreditStart = 0x24, "Opening Credit Start";
    OpeningCreditEnd = 0x25, "Opening Credit End";
    ClosingCreditStart = 0x26, "Closing Credit Start";
    ClosingCreditEnd = 0x27, "Closing Credit End";
    ProviderAdvertisementStart = 0x30, "Provider Advertisement Start";
    ProviderAdvertisementEnd = 0x31, "Provider Advertisement End";
    DistributorAdvertisementStart = 0x32, "Distributor Advertisement Start";
    DistributorAdvertisementEnd = 0x33, "Distributor Advertisement End";
    ProviderPlacementOpportunityStart = 0x34, "Provider Placement Opportunity Start";
    ProviderPlacementOpportunityEnd = 0x35, "Provider Placement Opportunity End";
    DistributorPlacementOpportunityStart = 0x36, "Distributor Placement Opportunity Start";
    DistributorPlacementOpportunityEnd = 0x37, "Distributor Placement Opportunity End";
    ProviderOverlayPlacementOpportunityStart = 0x38, "Provider Overlay Placement Opportunity Start";
    ProviderOverlayPlacementOpportunityEnd = 0x39, "Provider Overlay Placement Opportunity End";
    DistributorOverlayPlacementOpportunityStart = 0x3A, "Distributor Overlay Placement Opportunity Start";
    DistributorOverlayPlacementOpportunityEnd = 0x3B, "Distributor Overlay Placement Opportunity End";
    ProviderPromoStart = 0x3C, "Provider Promo Start";
    ProviderPromoEnd = 0x3D, "Provider Promo End";
    DistributorPromoStart = 0x3E, "Distributor Promo Start";
    DistributorPromoEnd = 0x3F, "Distributor Promo End";
    UnscheduledEventStart = 0x40, "Unscheduled Event Start";
    UnscheduledEventEnd = 0x41, "Unscheduled Event End";
    AlternateContentOpportunityStart = 0x42, "Alternate Content Opportunity Start";
    AlternateContentOpportunityEnd = 0x43, "Alternate Content Opportunity End";
    ProviderAdBlockStart = 0x44, "Provider Ad Block Start";
    ProviderAdBlockEnd = 0x45, "Provider Ad Block End";
    DistributorAdBlockStart = 0x46, "Distributor Ad Block Start";
    DistributorAdBlockEnd = 0x47, "Distributor Ad Block End";
    NetworkStart = 0x50, "Network Start";
    NetworkEnd = 0x51, "Network End";
}

impl SegmentationTypeId {
    /// The raw value.
    #[must_use]
    pub fn value(self) -> u8 {
        u8::from(self)
    }

    /// Whether the type starts an ad break as the stitcher sees it (0x22, 0x30, 0x32, 0x34, 0x36, 0x38, 0x3A,
    /// 0x44, 0x46).
    #[must_use]
    pub fn is_break_start(self) -> bool {
        matches!(
            self.value(),
            0x22 | 0x30 | 0x32 | 0x34 | 0x36 | 0x38 | 0x3A | 0x44 | 0x46
        )
    }

    /// Whether the type ends an ad break (the matching ends: 0x23, 0x31, 0x33, 0x35, 0x37, 0x39, 0x3B, 0x45,
    /// 0x47).
    #[must_use]
    pub fn is_break_end(self) -> bool {
        matches!(
            self.value(),
            0x23 | 0x31 | 0x33 | 0x35 | 0x37 | 0x39 | 0x3B | 0x45 | 0x47
        )
    }

    /// Whether `sub_segment_num` / `sub_segments_expected` may follow: the placement opportunity starts of the
    /// 2022b syntax table (0x34, 0x36, 0x38, 0x3A) and, as of SCTE 35 2023 (and as threefive and
    /// Comcast/scte35-go read them), the advertisement and ad block starts (0x30, 0x32, 0x44, 0x46).
    #[must_use]
    pub fn carries_sub_segments(self) -> bool {
        matches!(
            self.value(),
            0x30 | 0x32 | 0x34 | 0x36 | 0x38 | 0x3A | 0x44 | 0x46
        )
    }
}
