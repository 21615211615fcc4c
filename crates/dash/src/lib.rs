//! MPEG-DASH for Interlude's live server-side ad insertion. Pure: no I/O, no clock.
//!
//! - [`parse_mpd`] / [`write_mpd`]: a typed MPD model (ISO/IEC 23009-1 §5.3) that keeps what it does not
//!   type, so parse → write → parse gives the same model.
//! - [`scan`]: SCTE-35 cues and ad breaks from EventStreams (SCTE 214-1 §6.7, XML and binary forms) and
//!   Period-based signalling, plus the InbandEventStream declarations of cues carried in `emsg` boxes
//!   ([`emsg::read_emsg_boxes`] reads those from segment bytes).
//! - [`stitch`]: a session's MPD from a content MPD snapshot and the session's plan of breaks and ads.

mod breaks;
pub mod emsg;
mod error;
mod model;
mod order;
mod parse;
pub mod scte35xml;
pub mod segment;
pub mod time;
mod write;
pub mod xml;

pub use breaks::{AdBreak, Cue, CueDirection, DurationSource, InbandScte35, Scan, scan};
pub use error::{Error, Result};
pub use model::{
    AdaptationSet, BaseUrl, ContentKind, Descriptor, Event, EventStream, Mpd, MpdType, Period,
    Representation, SegmentTemplate, TimelineEntry, codec_kind,
};
pub use parse::{MAX_TIMELINE_SEGMENTS, parse_mpd, parse_mpd_bytes};
pub use write::write_mpd;
pub mod stitch;

pub use stitch::plan::{
    Ad, AdRendition, AdTemplateUrls, AdUrlRequest, AdUrls, DirectAdUrls, Placement, PlacementKind,
    PlannedBreak, StitchOptions, StitchWarning,
};
pub use stitch::{Stitched, segment_boundary_after, stitch};
