//! VAST 1.0–4.3 and VMAP 1.0 for Interlude: a typed model, a tolerant parser, a writer of schema-valid
//! VAST 4.2, the IAB macros, wrapper resolution over an injected fetcher, and the choice of a `MediaFile`
//! for server-side stitching.
//!
//! Pure and I/O-free (the architecture's "cores are pure"): text in, typed values out, and back. Wrapper
//! resolution is the one async part; it does no I/O itself but calls a [`Fetcher`] the caller supplies (the
//! server's is an HTTP client) and enforces timeouts with `tokio::time`.
//!
//! | module | what |
//! |---|---|
//! | [`model`] | the document: [`Vast`], [`Ad`], [`InLine`], [`Wrapper`], [`Creative`], [`Linear`], [`MediaFile`], … |
//! | [`parse_vast`] | any version into the model; errors name the element path, line and byte offset |
//! | [`parse_vast_lenient`] | the same, but an ad that cannot be read is dropped with its VAST error code ([`DroppedAd`]) and the rest kept; lenient forms read with a [`Warning`] |
//! | [`VastErrorCode`] | the IAB error codes for `[ERRORCODE]` (VAST 4.2 §2.3.6.3) |
//! | [`write_vast`] | VAST 4.2 valid against the IAB's `vast_4.2.xsd`, or [`Error::Unwritable`] with the path |
//! | [`macros`] | `[TIMESTAMP]`, `[ERRORCODE]`, … with RFC 3986 percent-encoding |
//! | [`vmap`] | VMAP 1.0 model, reader and writer |
//! | [`resolve`](mod@resolve) | Wrapper chains to InLine ads, tracking merged, failures as VAST error codes, hostile answers bounded ([`ResolveLimits`]) |
//! | [`select`](mod@select) | the rendition to stitch into a content variant, or why the creative is not conditioned |
//!
//! Round trips are exact: parse → write → parse gives the model back, unknown elements included (they
//! travel in an `Extension`); the reader reads the placeholders the writer needs for 4.2
//! (`about:blank`, `unknown`, empty required strings) as absent.
//!
//! ```
//! let xml = r#"<VAST version="3.0"><Ad id="1"><InLine><AdSystem>x</AdSystem><AdTitle>t</AdTitle>
//!   <Impression><![CDATA[https://t.example/imp]]></Impression>
//!   <Creatives><Creative><Linear><Duration>00:00:15</Duration><MediaFiles>
//!   <MediaFile delivery="streaming" type="application/x-mpegURL" width="1280" height="720">
//!   https://cdn.example/ad.m3u8</MediaFile></MediaFiles></Linear></Creative></Creatives>
//!   </InLine></Ad></VAST>"#;
//! let vast = interlude_vast::parse_vast(xml)?;
//! let written = interlude_vast::write_vast(&vast)?; // VAST 4.2
//! assert_eq!(interlude_vast::parse_vast(&written)?.ads, vast.ads);
//! # Ok::<(), interlude_vast::Error>(())
//! ```

mod error;
mod error_code;
pub mod macros;
pub mod model;
mod parse;
pub mod resolve;
pub mod select;
pub mod time;
pub mod vmap;
mod write;
mod xml;

pub use error::{Error, Result};
pub use error_code::VastErrorCode;
pub use model::*;
pub use parse::{
    DroppedAd, ParseLimits, Parsed, Warning, parse_vast, parse_vast_bytes, parse_vast_lenient,
    parse_vast_lenient_with,
};
pub use resolve::{
    Fetcher, ResolveConfig, ResolveLimits, ResolveWarning, Resolved, WrapperFailure, resolve,
    resolve_tag, resolve_tag_with, resolve_with,
};
pub use select::{ContentVariant, Rendition, Selection, StitchPolicy, select, select_media_file};
pub use time::{Offset, Percent, Time};
pub use vmap::{Vmap, parse_vmap, write_vmap};
pub use write::{WRITTEN_VERSION, write_vast};
