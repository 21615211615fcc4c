//! HLS on both sides of stitching: reading an origin's playlists into the window and breaks the core works on
//! ([`origin`]), and writing a viewer's media playlist from the rendered window ([`playlist`]). As DASH's
//! equivalent lives in the `dash` crate, this is the HLS glue, pure like the rest of the crate.

pub mod origin;
pub mod playlist;

pub use origin::{
    ContentSegment, OriginMedia, Variant, VodMedia, parse_master, parse_media, parse_vod_media,
    parse_vod_segments,
};
pub use playlist::{AdRef, ItemUrls, write_media_playlist};
