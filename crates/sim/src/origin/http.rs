//! The origin's HTTP routes.
//!
//! - `GET /live/{channel}/master.m3u8`: two variants.
//! - `GET /live/{channel}/{rendition}/index.m3u8`: the sliding window at the clock's now.
//! - `GET /live/{channel}/manifest.mpd`: the same channel as a live DASH MPD (TS segments, SCTE-35 EventStream).
//! - `GET /live/{channel}/{rendition}/{n}.ts`: segment `n`, timestamps shifted to continue the stream; 404
//!   outside what the window has recently published.
//! - The same under `/live/{channel}-cmaf/…` in CMAF: media playlists with `EXT-X-MAP`, `{rendition}/init.mp4`,
//!   segments `{rendition}/{n}.m4s` (each `tfdt` shifted, `mfhd` numbered `n + 1`), and an MPD of the same
//!   content as separate video and audio tracks, `dash/{v0,v1,a}/{init.mp4,{n}.m4s}`.
//! - `GET /assets/{path}`: ad creatives and slate (VOD playlists and segments), and a third party's MP4.
//! - `GET /vast/loud-mp4.xml`: a third-party VAST tag whose only creative is that plain MP4
//!   (`thirdparty/loud-10s.mp4`: 640×480, 30 fps, stereo, about −14 LUFS — nothing like the channel), which a
//!   stitcher must condition before it can play it.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::{OriginConfig, Timeline};
use crate::clock::Clock;
use crate::media::{CODECS, Media, Packaging};
use interlude_mpegts::fmp4::{first_presentation_times, shift_decode_times};
use interlude_mpegts::{first_pts, shift_timestamps};

/// What the routes share.
#[derive(Clone)]
pub struct OriginState {
    timeline: Arc<Timeline>,
    clock: Arc<dyn Clock>,
    media: &'static Media,
}

impl OriginState {
    /// A channel from `config` over the embedded media, timed by `clock`.
    pub fn new(config: OriginConfig, clock: Arc<dyn Clock>) -> Self {
        let media = Media::embedded();
        let base_pts = media.content_segment(0, 0).and_then(first_pts).unwrap_or(0);
        OriginState {
            timeline: Arc::new(Timeline::new(config, media.content_len(), base_pts)),
            clock,
            media,
        }
    }

    /// The channel's timeline.
    pub fn timeline(&self) -> &Timeline {
        &self.timeline
    }

    /// The packaging a channel id in a URL names, if it names this channel.
    fn packaging(&self, channel: &str) -> Option<Packaging> {
        let ours = &self.timeline.config().channel;
        if channel == ours {
            Some(Packaging::Ts)
        } else if channel.strip_suffix(super::CMAF_SUFFIX) == Some(ours.as_str()) {
            Some(Packaging::Cmaf)
        } else {
            None
        }
    }
}

/// The origin's routes. Readable from any web origin, as a CDN serves live streams to browser players.
pub fn router(state: OriginState) -> Router {
    let cors = tower_http::cors::CorsLayer::new()
        .allow_origin(tower_http::cors::Any)
        .allow_methods([axum::http::Method::GET, axum::http::Method::HEAD]);
    Router::new()
        .route("/live/{channel}/master.m3u8", get(master))
        .route("/live/{channel}/manifest.mpd", get(dash_manifest))
        .route(
            "/live/{channel}/{rendition}/index.m3u8",
            get(media_playlist),
        )
        .route("/live/{channel}/{rendition}/{segment}", get(segment))
        .route("/live/{channel}/dash/{track}/{segment}", get(dash_segment))
        .route("/assets/{*path}", get(asset))
        .route("/vast/loud-mp4.xml", get(loud_mp4_vast))
        .route("/vast/impression", get(|| async { StatusCode::NO_CONTENT }))
        .with_state(state)
        .layer(cors)
}

/// Requests the simulated origin answered, by route.
pub const ORIGIN_REQUESTS: &str = "origin_requests_total";

/// Describes the origin's metrics to the recorder (`# HELP`); call once after installing it.
pub fn describe_metrics() {
    metrics::describe_counter!(
        ORIGIN_REQUESTS,
        "Requests the simulated origin answered, by route."
    );
}

fn count(route: &'static str) {
    metrics::counter!(ORIGIN_REQUESTS, "route" => route).increment(1);
}

fn not_found(what: String) -> Response {
    (StatusCode::NOT_FOUND, format!("{what}\n")).into_response()
}

fn respond(
    body: impl Into<axum::body::Body>,
    content_type: &'static str,
    cache: &'static str,
) -> Response {
    let mut response = Response::new(body.into());
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}

const M3U8: &str = "application/vnd.apple.mpegurl";
/// Live playlists change every segment; segments never change.
const LIVE: &str = "max-age=1";
const IMMUTABLE: &str = "max-age=86400";

async fn master(State(s): State<OriginState>, Path(channel): Path<String>) -> Response {
    count("master");
    let Some(packaging) = s.packaging(&channel) else {
        return not_found(format!("unknown channel {channel:?}"));
    };
    let mut out = String::from("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    for r in s.media.renditions_of(packaging) {
        out.push_str(&format!(
            "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},CODECS=\"{CODECS}\",RESOLUTION={}x{},FRAME-RATE=25.000\n{}/index.m3u8\n",
            r.bandwidth, r.average_bandwidth, r.width, r.height, r.name
        ));
    }
    respond(out, M3U8, LIVE)
}

async fn dash_manifest(State(s): State<OriginState>, Path(channel): Path<String>) -> Response {
    count("mpd");
    let Some(packaging) = s.packaging(&channel) else {
        return not_found(format!("unknown channel {channel:?}"));
    };
    let mpd = match packaging {
        Packaging::Ts => {
            let renditions: Vec<(&str, u64, u32, u32)> = s
                .media
                .renditions()
                .iter()
                .map(|r| (r.name, r.bandwidth, r.width, r.height))
                .collect();
            s.timeline.dash_manifest(s.clock.now(), &renditions)
        }
        Packaging::Cmaf => s.timeline.cmaf_dash_manifest(
            s.clock.now(),
            s.media.dash_tracks(),
            cmaf_first_media_time(s.media),
        ),
    };
    respond(mpd, "application/dash+xml", LIVE)
}

async fn media_playlist(
    State(s): State<OriginState>,
    Path((channel, rendition)): Path<(String, String)>,
) -> Response {
    count("media");
    let (Some(packaging), Some(_)) = (s.packaging(&channel), s.media.rendition_index(&rendition))
    else {
        return not_found(format!(
            "unknown channel or rendition {channel}/{rendition}"
        ));
    };
    respond(
        s.timeline.packaged_media_playlist(s.clock.now(), packaging),
        M3U8,
        LIVE,
    )
}

async fn segment(
    State(s): State<OriginState>,
    Path((channel, rendition, file)): Path<(String, String, String)>,
) -> Response {
    count("segment");
    let packaging = s.packaging(&channel);
    if packaging == Some(Packaging::Cmaf) && file == "init.mp4" {
        return match s
            .media
            .rendition_index(&rendition)
            .and_then(|r| s.media.cmaf_init(r))
        {
            Some((bytes, _)) => respond(bytes, "video/mp4", IMMUTABLE),
            None => not_found(format!("no init segment {channel}/{rendition}")),
        };
    }
    let (Some(packaging), Some(r), Some(i)) = (
        packaging,
        s.media.rendition_index(&rendition),
        packaging.and_then(|p| {
            file.strip_suffix(p.extension())?
                .strip_suffix('.')?
                .parse::<u64>()
                .ok()
        }),
    ) else {
        return not_found(format!("no segment {channel}/{rendition}/{file}"));
    };
    // Only what was published recently: a window's worth behind, plus slack for slow players.
    let window = s.timeline.window(s.clock.now());
    let oldest = window
        .start
        .saturating_sub(s.timeline.config().window_segments * 2);
    if i < oldest || i >= window.end {
        return not_found(format!(
            "segment {i} is not available (window {}..{})",
            window.start, window.end
        ));
    }
    let Some(file) = s
        .media
        .packaged_segment(packaging, s.timeline.content_file(i), r)
    else {
        return not_found(format!("no content for segment {i}"));
    };
    let mut bytes = file.to_vec();
    match packaging {
        Packaging::Ts => {
            shift_timestamps(&mut bytes, s.timeline.pts_offset(i));
            respond(bytes, "video/mp2t", IMMUTABLE)
        }
        Packaging::Cmaf => {
            let Some((_, init)) = s.media.cmaf_init(r) else {
                return not_found(format!("no init segment for rendition {rendition}"));
            };
            // One moof per segment: numbering by segment index keeps mfhd increasing across loops.
            let sequence = u32::try_from(i + 1).unwrap_or(u32::MAX);
            if let Err(error) = shift_decode_times(
                &mut bytes,
                init,
                s.timeline.decode_offset(i),
                Some(sequence),
            ) {
                tracing::error!(%error, segment = i, "CMAF content segment not shifted.");
                return (StatusCode::INTERNAL_SERVER_ERROR, "segment not shifted\n")
                    .into_response();
            }
            respond(bytes, "video/iso.segment", IMMUTABLE)
        }
    }
}

/// A segment of one of the CMAF channel's DASH tracks (video and audio apart), shifted as the muxed ones are.
async fn dash_segment(
    State(s): State<OriginState>,
    Path((channel, track, file)): Path<(String, String, String)>,
) -> Response {
    count("segment");
    let Some(t) = s
        .media
        .dash_tracks()
        .iter()
        .find(|t| t.id == track)
        .filter(|_| s.packaging(&channel) == Some(Packaging::Cmaf))
    else {
        return not_found(format!("no DASH track {channel}/dash/{track}"));
    };
    if file == "init.mp4" {
        return respond(t.init, "video/mp4", IMMUTABLE);
    }
    let Some(i) = file
        .strip_suffix(".m4s")
        .and_then(|n| n.parse::<u64>().ok())
    else {
        return not_found(format!("no segment {channel}/dash/{track}/{file}"));
    };
    let window = s.timeline.window(s.clock.now());
    let oldest = window
        .start
        .saturating_sub(s.timeline.config().window_segments * 2);
    if i < oldest || i >= window.end {
        return not_found(format!(
            "segment {i} is not available (window {}..{})",
            window.start, window.end
        ));
    }
    let Some(file) = t.segments.get(s.timeline.content_file(i)) else {
        return not_found(format!("no content for segment {i}"));
    };
    let mut bytes = file.to_vec();
    let init = interlude_mpegts::fmp4::InitSegment {
        tracks: vec![t.track],
    };
    let sequence = u32::try_from(i + 1).unwrap_or(u32::MAX);
    if let Err(error) = shift_decode_times(
        &mut bytes,
        &init,
        s.timeline.decode_offset(i),
        Some(sequence),
    ) {
        tracing::error!(%error, segment = i, "CMAF content segment not shifted.");
        return (StatusCode::INTERNAL_SERVER_ERROR, "segment not shifted\n").into_response();
    }
    respond(bytes, "video/iso.segment", IMMUTABLE)
}

/// The earliest presentation time of CMAF content file 0's video (first rendition) as encoded, in 90 kHz ticks:
/// its first frame on screen, the B-frames' composition offset after its first decode time. The MPD's
/// presentationTimeOffset names that instant (DASH-IF IOP: a Period's offset is the earliest presentation time
/// of its media), so content frames play at their nominal place on the Period timeline, as a stitched ad's or
/// slate's (whose offset is its own first frame's) do: frames abut where one Period gives way to the next.
fn cmaf_first_media_time(media: &Media) -> u64 {
    let (Some(segment), Some((_, init))) = (
        media.packaged_segment(Packaging::Cmaf, 0, 0),
        media.cmaf_init(0),
    ) else {
        return 0;
    };
    let Some(video) = init.tracks.iter().find(|t| &t.handler == b"vide") else {
        return 0;
    };
    first_presentation_times(segment)
        .unwrap_or_default()
        .iter()
        .find(|(id, _)| *id == video.id)
        .map_or(0, |(_, t)| {
            t.saturating_mul(90_000) / u64::from(video.timescale).max(1)
        })
}

/// The VAST 4.2 InLine of the third party's MP4 creative; its MediaFile's URL names this origin as the request
/// reached it (the `Host` header).
async fn loud_mp4_vast(headers: axum::http::HeaderMap) -> Response {
    count("vast");
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
        })
        .unwrap_or("127.0.0.1");
    let xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<VAST version="4.2"><Ad id="loud-mp4"><InLine><AdSystem>interlude-sim</AdSystem><AdTitle>Loud MP4 (10 s)</AdTitle>
<Impression><![CDATA[http://{host}/vast/impression]]></Impression><Creatives><Creative id="loud-mp4" adId="loud-mp4">
<UniversalAdId idRegistry="ad-id.org">SIMLOUD0010H</UniversalAdId><Linear><Duration>00:00:10</Duration>
<MediaFiles><MediaFile delivery="progressive" type="video/mp4" width="640" height="480" bitrate="350">
<![CDATA[http://{host}/assets/thirdparty/loud-10s.mp4]]></MediaFile></MediaFiles></Linear></Creative></Creatives>
</InLine></Ad></VAST>"#
    );
    respond(xml, "application/xml", "no-cache")
}

async fn asset(State(s): State<OriginState>, Path(path): Path<String>) -> Response {
    count("asset");
    match s.media.static_file(&path) {
        Some(bytes) if path.ends_with(".m3u8") => respond(bytes, M3U8, IMMUTABLE),
        Some(bytes) if path.ends_with(".mp4") => respond(bytes, "video/mp4", IMMUTABLE),
        Some(bytes) if path.ends_with(".m4s") => respond(bytes, "video/iso.segment", IMMUTABLE),
        Some(bytes) => respond(bytes, "video/mp2t", IMMUTABLE),
        None => not_found(format!("no asset {path}")),
    }
}
