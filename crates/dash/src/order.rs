//! Child element order of the MPD schema (ISO/IEC 23009-1 Annex B, the `xs:sequence` of `MPDtype`,
//! `PeriodType`, `AdaptationSetType` / `RepresentationBaseType`, `RepresentationType` and
//! `MultipleSegmentBaseType`): where the writer puts each child, known or kept, so that a written MPD
//! follows the schema whatever order the input had.

/// The element whose children are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Parent {
    Mpd,
    Period,
    AdaptationSet,
    Representation,
    SegmentTemplate,
}

/// The position of a child named `local` under `parent`; unknown names go where extensions usually sit.
pub(crate) fn rank(parent: Parent, local: &str) -> u8 {
    match parent {
        Parent::Mpd => match local {
            "ProgramInformation" => 0,
            "BaseURL" => 1,
            "Location" => 2,
            "PatchLocation" => 3,
            "ServiceDescription" => 4,
            "InitializationSet" | "InitializationGroup" | "InitializationPresentation" => 5,
            "ContentProtection" => 6,
            "Period" => 10,
            "Metrics" => 11,
            "EssentialProperty" => 12,
            "SupplementalProperty" => 13,
            "UTCTiming" => 14,
            "LeapSecondInformation" => 15,
            _ => 7,
        },
        Parent::Period => match local {
            "BaseURL" => 0,
            "SegmentBase" | "SegmentList" => 1,
            "SegmentTemplate" => 2,
            "AssetIdentifier" => 3,
            "EventStream" => 4,
            "ServiceDescription" => 5,
            "ContentProtection" => 6,
            "AdaptationSet" => 10,
            "Subset" => 11,
            "SupplementalProperty" => 12,
            "EmptyAdaptationSet" => 13,
            "GroupLabel" => 14,
            "Preselection" => 15,
            _ => 7,
        },
        Parent::AdaptationSet | Parent::Representation => match local {
            "FramePacking" => 0,
            "AudioChannelConfiguration" => 1,
            "ContentProtection" => 2,
            "OutputProtection" => 3,
            "EssentialProperty" => 4,
            "SupplementalProperty" => 5,
            "InbandEventStream" => 6,
            "Switching" => 7,
            "RandomAccess" => 8,
            "GroupLabel" => 9,
            "Label" => 10,
            "ProducerReferenceTime" => 11,
            "ContentPopularityRate" => 12,
            "Resync" => 13,
            "Accessibility" => 20,
            "Role" => 21,
            "Rating" => 22,
            "Viewpoint" => 23,
            "ContentComponent" => 24,
            "BaseURL" => 25,
            "ExtendedBandwidth" => 26,
            "SubRepresentation" if parent == Parent::Representation => 27,
            "SegmentBase" | "SegmentList" => 28,
            "SegmentTemplate" => 29,
            "Representation" => 30,
            _ => 14,
        },
        Parent::SegmentTemplate => match local {
            "Initialization" | "RepresentationIndex" | "FailoverContent" => 0,
            "SegmentTimeline" => 1,
            _ => 2,
        },
    }
}

/// Inserts `el` into `children` (kept in schema order, as the reader leaves them) after every child that
/// the schema puts before or beside it, so the model stays what reading its written form gives.
pub(crate) fn insert_ordered(
    parent: Parent,
    children: &mut Vec<crate::xml::XmlElement>,
    el: crate::xml::XmlElement,
) {
    let r = rank(parent, el.local_name());
    let at = children
        .iter()
        .position(|c| rank(parent, c.local_name()) > r)
        .unwrap_or(children.len());
    children.insert(at, el);
}
