//! Ad creative conditioning: any VAST media file becomes an ad that can be stitched into a channel — encoded
//! to the channel's renditions (codec, profile and level, picture size, frame rate, bitrate), cut into
//! segments that each start with a keyframe, loudness-normalised, and packaged as HLS with MPEG-TS
//! segments, HLS with CMAF segments, and DASH over the same CMAF segments.
//!
//! | module | what |
//! |---|---|
//! | [`variant`] | the channel's renditions, from its master playlist; the variant-set hash |
//! | [`source`] | which of an ad's files to transcode (`Mezzanine` first) |
//! | [`identity`] | creative key (UniversalAdId / creative id) and content hash |
//! | [`recipe`] | the ffmpeg argument vectors per rendition, loudness passes, the recipe hash |
//! | [`layout`] | `<root>/<identity>/<recipe hash>/<rendition>/…` |
//! | [`qc`] | quality checks on the outputs |
//! | [`jobs`] | job states, [`Readiness`], the [`JobQueue`] trait and its redb (and PostgreSQL) stores |
//!
//! Everything above except the stores is pure. The I/O — fetching, running ffmpeg, the worker pool — is in
//! [`fetch`], [`run`] and [`pool`]; [`service::Conditioner`] is what a stitcher calls.

pub mod codec;
mod error;
pub mod fetch;
pub mod identity;
pub mod jobs;
pub mod layout;
pub mod pool;
pub mod probe;
pub mod qc;
pub mod recipe;
pub mod run;
pub mod service;
pub mod source;
pub mod variant;

pub use error::{Error, Result};
pub use fetch::{LocalFetcher, SourceFetcher};
pub use identity::{CreativeIdentity, CreativeKey};
pub use jobs::redb::RedbQueue;
pub use jobs::{
    Conditioned, JobQueue, JobRecord, JobSpec, JobState, NotReadyReason, Readiness, RenditionOutput,
};
pub use pool::{Pool, PoolConfig};
pub use recipe::loudness::{LoudnessStandard, LoudnessTarget};
pub use recipe::{EncoderSettings, Recipe};
pub use run::PoolEvent;
pub use service::Conditioner;
pub use source::SourceCandidate;
pub use variant::{ChannelDefaults, Container, VariantSet};
