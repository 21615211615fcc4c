//! The channel's variant set: the renditions an ad must be encoded to so that its segments can replace the
//! content's in every variant stream.
//!
//! Built from the content's HLS master playlist (RFC 8216bis §4.4.6.2 `EXT-X-STREAM-INF`: `CODECS`,
//! `RESOLUTION`, `FRAME-RATE`, `BANDWIDTH`) plus what a master playlist does not say (audio sample rate and
//! channels, segment duration, container), which the caller gives as [`ChannelDefaults`] read from the media
//! playlists or configuration.
//!
//! `BANDWIDTH` is a measured peak that moves a little whenever the content is re-encoded, so it is rounded to
//! two significant figures before it enters the set: two master playlists whose bitrates round alike give the
//! same [`VariantSet::hash`], and the ad conditioned for one is reused for the other.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::codec::{AudioCodec, Codec, VideoCodec, parse_codec};
use crate::error::{Error, Result};

/// How segments are packaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Container {
    /// MPEG-2 transport stream segments (ISO/IEC 13818-1).
    Ts,
    /// Fragmented MP4 / CMAF segments (ISO/IEC 23000-19).
    Cmaf,
}

/// A frame rate as a ratio (`30000/1001`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FrameRate {
    /// Numerator.
    pub num: u32,
    /// Denominator (never 0).
    pub den: u32,
}

impl FrameRate {
    /// The ratio for a decimal `FRAME-RATE`: the NTSC rates (23.976, 29.97, 59.94) as `N*1000/1001`, others
    /// as a whole number when they are one, else in thousandths. `None` for a rate outside 1–300.
    pub fn from_f64(fps: f64) -> Option<FrameRate> {
        if !(1.0..=300.0).contains(&fps) {
            return None;
        }
        for whole in [24u32, 30, 48, 60, 120] {
            let ntsc = f64::from(whole) * 1000.0 / 1001.0;
            if (fps - ntsc).abs() < 0.005 {
                return Some(FrameRate {
                    num: whole * 1000,
                    den: 1001,
                });
            }
        }
        if (fps - fps.round()).abs() < 0.001 {
            return Some(FrameRate {
                num: fps.round() as u32,
                den: 1,
            });
        }
        Some(FrameRate {
            num: (fps * 1000.0).round() as u32,
            den: 1000,
        })
    }

    /// Frames per second.
    pub fn as_f64(self) -> f64 {
        f64::from(self.num) / f64::from(self.den.max(1))
    }

    /// `num/den`, as ffmpeg's `fps` filter and `-r` take it.
    pub fn ffmpeg(self) -> String {
        format!("{}/{}", self.num, self.den.max(1))
    }

    /// For names: `25`, `29.97`.
    pub fn label(self) -> String {
        if self.den == 1 {
            self.num.to_string()
        } else {
            format!("{:.2}", self.as_f64())
        }
    }
}

/// The video of a rendition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VideoSpec {
    /// Codec, profile and level.
    pub codec: VideoCodec,
    /// Picture width in pixels.
    pub width: u32,
    /// Picture height in pixels.
    pub height: u32,
    /// Frame rate.
    pub frame_rate: FrameRate,
    /// Video bits per second (the encoder's target and `maxrate`).
    pub bitrate: u64,
}

/// The audio of a rendition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AudioSpec {
    /// Codec.
    pub codec: AudioCodec,
    /// Samples per second.
    pub sample_rate: u32,
    /// Channels (1, 2 or 6).
    pub channels: u8,
    /// Audio bits per second.
    pub bitrate: u64,
}

/// One rendition of the channel.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RenditionSpec {
    /// A name derived from the spec (`640x360_25_350k`), used as its directory.
    pub name: String,
    /// `BANDWIDTH` rounded to two significant figures, bits per second.
    pub bandwidth: u64,
    /// Video.
    pub video: VideoSpec,
    /// Audio (`None`: the content's variant carries no audio).
    pub audio: Option<AudioSpec>,
    /// Target segment duration in milliseconds.
    pub segment_duration_ms: u32,
    /// The content's container.
    pub container: Container,
}

impl RenditionSpec {
    /// The output's `CODECS`.
    pub fn codecs(&self) -> String {
        match &self.audio {
            Some(a) => format!("{},{}", self.video.codec.rfc6381(), a.codec.rfc6381()),
            None => self.video.codec.rfc6381(),
        }
    }

    /// Segment duration in seconds.
    pub fn segment_seconds(&self) -> f64 {
        f64::from(self.segment_duration_ms) / 1000.0
    }
}

/// What the master playlist does not say, and fallbacks for what it may leave out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelDefaults {
    /// Audio samples per second.
    pub audio_sample_rate: u32,
    /// Audio channels.
    pub audio_channels: u8,
    /// Audio bits per second (lowered to a quarter of a small variant's budget, but not under 24 kbit/s a
    /// channel).
    pub audio_bitrate: u64,
    /// Segment duration in milliseconds (the media playlists' `EXT-X-TARGETDURATION`).
    pub segment_duration_ms: u32,
    /// The content's container (`EXT-X-MAP` in the media playlists means CMAF).
    pub container: Container,
    /// Frame rate for variants without `FRAME-RATE`.
    pub frame_rate: Option<f64>,
    /// Share of `BANDWIDTH` kept for container overhead (TS packet headers, PES, PSI): 0.10.
    pub container_overhead: f64,
}

impl Default for ChannelDefaults {
    fn default() -> ChannelDefaults {
        ChannelDefaults {
            audio_sample_rate: 48_000,
            audio_channels: 2,
            audio_bitrate: 96_000,
            segment_duration_ms: 2_000,
            container: Container::Ts,
            frame_rate: None,
            container_overhead: 0.10,
        }
    }
}

/// One `EXT-X-STREAM-INF`, as plain values.
#[derive(Debug, Clone, PartialEq)]
pub struct VariantInfo {
    /// The variant's URI (for error messages and [`VariantSet::rendition_for`]).
    pub uri: String,
    /// `BANDWIDTH`.
    pub bandwidth: u64,
    /// `CODECS`.
    pub codecs: Option<String>,
    /// `RESOLUTION`.
    pub resolution: Option<(u32, u32)>,
    /// `FRAME-RATE`.
    pub frame_rate: Option<f64>,
}

/// The renditions of a channel, sorted and without duplicates.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VariantSet {
    /// The renditions, by height then bandwidth.
    pub renditions: Vec<RenditionSpec>,
    /// Each content variant URI with the name of the rendition that serves it (not part of the hash).
    pub variants: Vec<(String, String)>,
}

/// `bits` rounded to two significant figures (347 812 → 350 000).
pub fn round_bandwidth(bits: u64) -> u64 {
    if bits < 100 {
        return bits;
    }
    let digits = bits.ilog10();
    let unit = 10u64.pow(digits - 1);
    ((bits + unit / 2) / unit).saturating_mul(unit)
}

impl VariantSet {
    /// The set for `variants`. Audio-only variants are left out (an ad break in an audio-only stream is
    /// another product); a variant that cannot be encoded to fails the whole set, since an ad must fit every
    /// variant to be stitched.
    pub fn from_variants(
        variants: &[VariantInfo],
        defaults: &ChannelDefaults,
    ) -> Result<VariantSet> {
        let mut renditions: Vec<RenditionSpec> = Vec::new();
        let mut map = Vec::new();
        for v in variants {
            let Some(r) = rendition(v, defaults)? else {
                continue;
            };
            map.push((v.uri.clone(), r.name.clone()));
            if !renditions.contains(&r) {
                renditions.push(r);
            }
        }
        if renditions.is_empty() {
            return Err(Error::VariantSet("no video variant".into()));
        }
        renditions.sort_by(|a, b| {
            (a.video.height, a.bandwidth, &a.name).cmp(&(b.video.height, b.bandwidth, &b.name))
        });
        let mut names: Vec<&str> = renditions.iter().map(|r| r.name.as_str()).collect();
        names.dedup();
        if names.len() != renditions.len() {
            return Err(Error::VariantSet(
                "two variants differ only in codec or audio; their names collide".into(),
            ));
        }
        Ok(VariantSet {
            renditions,
            variants: map,
        })
    }

    /// The set for a parsed master playlist.
    pub fn from_master_playlist(
        master: &interlude_hls::MasterPlaylist,
        defaults: &ChannelDefaults,
    ) -> Result<VariantSet> {
        let infos: Vec<VariantInfo> = master
            .variants
            .iter()
            .map(|v| VariantInfo {
                uri: v.uri.clone(),
                bandwidth: v.bandwidth(),
                codecs: v.attributes.get("CODECS").map(str::to_owned),
                resolution: v.resolution(),
                frame_rate: v.attributes.get_f64("FRAME-RATE"),
            })
            .collect();
        VariantSet::from_variants(&infos, defaults)
    }

    /// The set for the text of a master playlist.
    pub fn from_master_text(text: &str, defaults: &ChannelDefaults) -> Result<VariantSet> {
        let master = interlude_hls::parse_master_playlist(text)
            .map_err(|e| Error::VariantSet(format!("master playlist: {e}")))?;
        VariantSet::from_master_playlist(&master, defaults)
    }

    /// A short stable digest of the renditions (not of the variant URIs): the key under which an ad's
    /// conditioning for this channel is stored.
    pub fn hash(&self) -> String {
        digest16(&serde_json::to_vec(&self.keyed_renditions()).unwrap_or_default())
    }

    /// The renditions as they decide the outputs: every job writes each container's form (TS, muxed fMP4 and
    /// per-track CMAF), so the container the channel plays is left out, and a TS channel and its CMAF twin
    /// share one conditioning.
    pub fn keyed_renditions(&self) -> Vec<RenditionSpec> {
        self.renditions
            .iter()
            .cloned()
            .map(|mut r| {
                r.container = Container::Ts;
                r
            })
            .collect()
    }

    /// The rendition serving the content variant at `uri`.
    pub fn rendition_for(&self, uri: &str) -> Option<&RenditionSpec> {
        let (_, name) = self.variants.iter().find(|(u, _)| u == uri)?;
        self.renditions.iter().find(|r| &r.name == name)
    }
}

/// The first 16 hex digits of SHA-256.
pub(crate) fn digest16(bytes: &[u8]) -> String {
    let mut h = hex::encode(Sha256::digest(bytes));
    h.truncate(16);
    h
}

fn rendition(v: &VariantInfo, d: &ChannelDefaults) -> Result<Option<RenditionSpec>> {
    let err = |reason: &str| Error::Variant {
        uri: v.uri.clone(),
        reason: reason.to_owned(),
    };
    let codecs = v.codecs.as_deref().ok_or_else(|| err("no CODECS"))?;
    let mut video = None;
    let mut audio = None;
    for c in codecs.split(',').filter(|c| !c.trim().is_empty()) {
        match parse_codec(c)? {
            Codec::Video(codec) if video.is_none() => video = Some(codec),
            Codec::Audio(codec) if audio.is_none() => audio = Some(codec),
            _ => return Err(err("more than one video or audio codec")),
        }
    }
    let Some(video_codec) = video else {
        return Ok(None);
    };
    let (width, height) = v
        .resolution
        .ok_or_else(|| err("video without RESOLUTION"))?;
    if width < 16 || height < 16 || width > 8192 || height > 8192 {
        return Err(err("RESOLUTION out of range"));
    }
    if width % 2 == 1 || height % 2 == 1 {
        return Err(err("odd RESOLUTION: 4:2:0 chroma needs even sizes"));
    }
    let fps = v
        .frame_rate
        .or(d.frame_rate)
        .ok_or_else(|| err("no FRAME-RATE and no default"))?;
    let frame_rate = FrameRate::from_f64(fps).ok_or_else(|| err("FRAME-RATE out of range"))?;
    let bandwidth = round_bandwidth(v.bandwidth);
    let budget = (bandwidth as f64 * (1.0 - d.container_overhead.clamp(0.0, 0.5))) as u64;
    let audio = audio.map(|codec| AudioSpec {
        codec,
        sample_rate: d.audio_sample_rate,
        channels: d.audio_channels,
        // Not under 24 kbit/s a channel: AAC-LC starved below that adds audible noise, which also measures
        // louder (a −23 LUFS tone encoded at 40 kbit/s stereo measures −22.1), failing the loudness check.
        bitrate: d
            .audio_bitrate
            .min(budget / 4 / 8_000 * 8_000)
            .max((24_000 * u64::from(d.audio_channels)).max(32_000)),
    });
    let video_bitrate = budget.saturating_sub(audio.as_ref().map_or(0, |a| a.bitrate));
    if video_bitrate < 32_000 {
        return Err(err("BANDWIDTH leaves under 32 kbit/s for video"));
    }
    if d.segment_duration_ms < 500 {
        return Err(Error::VariantSet("segment duration under 0.5 s".into()));
    }
    Ok(Some(RenditionSpec {
        name: format!(
            "{width}x{height}_{}_{}k",
            frame_rate.label(),
            bandwidth / 1000
        ),
        bandwidth,
        video: VideoSpec {
            codec: video_codec,
            width,
            height,
            frame_rate,
            bitrate: video_bitrate,
        },
        audio,
        segment_duration_ms: d.segment_duration_ms,
        container: d.container,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The shape of the origin simulator's master playlist (crates/sim `origin/http.rs`).
    const SIM_MASTER: &str = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n\
        #EXT-X-STREAM-INF:BANDWIDTH=183000,AVERAGE-BANDWIDTH=150000,CODECS=\"avc1.4d401e,mp4a.40.2\",RESOLUTION=320x180,FRAME-RATE=25.000\nr0/index.m3u8\n\
        #EXT-X-STREAM-INF:BANDWIDTH=412345,AVERAGE-BANDWIDTH=330000,CODECS=\"avc1.4d401e,mp4a.40.2\",RESOLUTION=640x360,FRAME-RATE=25.000\nr1/index.m3u8\n";

    #[test]
    fn simulator_master_gives_two_renditions() {
        let set = VariantSet::from_master_text(SIM_MASTER, &ChannelDefaults::default())
            .expect("the simulator's master playlist is a valid variant set");
        let names: Vec<&str> = set.renditions.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["320x180_25_180k", "640x360_25_410k"]);
        let r1 = set.rendition_for("r1/index.m3u8").expect("r1 is mapped");
        assert_eq!(r1.video.frame_rate, FrameRate { num: 25, den: 1 });
        assert_eq!(r1.codecs(), "avc1.4d401e,mp4a.40.2");
        // 410 000 less 10% overhead, less 92 kbit/s of audio (a quarter of the budget, in 8k steps).
        let audio = r1.audio.as_ref().expect("AAC in CODECS");
        assert_eq!(audio.bitrate, 88_000);
        assert_eq!(r1.video.bitrate, 369_000 - 88_000);
    }

    #[test]
    fn order_of_variants_and_uris_do_not_change_the_hash() {
        let a = VariantSet::from_master_text(SIM_MASTER, &ChannelDefaults::default()).ok();
        let swapped = SIM_MASTER
            .replace("r0/index.m3u8", "@")
            .replace("r1/index.m3u8", "r0/index.m3u8")
            .replace('@', "low.m3u8");
        let b = VariantSet::from_master_text(&swapped, &ChannelDefaults::default()).ok();
        assert_eq!(a.map(|s| s.hash()), b.map(|s| s.hash()));
    }

    #[test]
    fn a_ts_channel_and_its_cmaf_twin_share_a_hash() {
        let ts = VariantSet::from_master_text(SIM_MASTER, &ChannelDefaults::default()).ok();
        let cmaf_defaults = ChannelDefaults {
            container: Container::Cmaf,
            ..ChannelDefaults::default()
        };
        let cmaf = VariantSet::from_master_text(SIM_MASTER, &cmaf_defaults).ok();
        assert!(
            cmaf.as_ref()
                .is_some_and(|s| s.renditions.iter().all(|r| r.container == Container::Cmaf))
        );
        assert_eq!(ts.map(|s| s.hash()), cmaf.map(|s| s.hash()));
    }

    #[test]
    fn audio_only_variant_is_left_out_and_vp9_refused() {
        let d = ChannelDefaults::default();
        let audio_only = VariantInfo {
            uri: "a.m3u8".into(),
            bandwidth: 64_000,
            codecs: Some("mp4a.40.2".into()),
            resolution: None,
            frame_rate: None,
        };
        let video = VariantInfo {
            uri: "v.m3u8".into(),
            bandwidth: 1_000_000,
            codecs: Some("avc1.64001f,mp4a.40.2".into()),
            resolution: Some((1280, 720)),
            frame_rate: Some(29.97),
        };
        let set = VariantSet::from_variants(&[audio_only, video.clone()], &d)
            .expect("one video variant is enough");
        assert_eq!(set.renditions.len(), 1);
        assert_eq!(set.renditions[0].name, "1280x720_29.97_1000k");
        let vp9 = VariantInfo {
            codecs: Some("vp09.00.10.08".into()),
            ..video
        };
        assert!(matches!(
            VariantSet::from_variants(&[vp9], &d),
            Err(Error::UnsupportedCodec { .. })
        ));
    }

    #[test]
    fn missing_frame_rate_uses_the_default_or_fails() {
        let v = VariantInfo {
            uri: "v.m3u8".into(),
            bandwidth: 800_000,
            codecs: Some("avc1.4d401f".into()),
            resolution: Some((960, 540)),
            frame_rate: None,
        };
        assert!(
            VariantSet::from_variants(std::slice::from_ref(&v), &ChannelDefaults::default())
                .is_err()
        );
        let d = ChannelDefaults {
            frame_rate: Some(50.0),
            ..ChannelDefaults::default()
        };
        let set = VariantSet::from_variants(&[v], &d).expect("default frame rate applies");
        assert_eq!(set.renditions[0].audio, None);
        assert_eq!(set.renditions[0].video.bitrate, 720_000);
    }

    #[test]
    fn audio_of_a_small_variant_keeps_24_kbits_a_channel() {
        let small = VariantInfo {
            uri: "v.m3u8".into(),
            bandwidth: 210_000,
            codecs: Some("avc1.4d401e,mp4a.40.2".into()),
            resolution: Some((320, 180)),
            frame_rate: Some(25.0),
        };
        let bitrate = |channels| {
            let d = ChannelDefaults {
                audio_channels: channels,
                ..ChannelDefaults::default()
            };
            VariantSet::from_variants(std::slice::from_ref(&small), &d)
                .ok()
                .and_then(|s| s.renditions[0].audio.as_ref().map(|a| a.bitrate))
        };
        // A quarter of 189 kbit/s is 40 kbit/s in 8k steps: enough for mono, too little for stereo.
        assert_eq!(bitrate(1), Some(40_000));
        assert_eq!(bitrate(2), Some(48_000));
    }

    #[test]
    fn ntsc_rates_become_ratios() {
        assert_eq!(
            FrameRate::from_f64(29.97).map(FrameRate::ffmpeg),
            Some("30000/1001".into())
        );
        assert_eq!(
            FrameRate::from_f64(23.976).map(FrameRate::ffmpeg),
            Some("24000/1001".into())
        );
        assert_eq!(
            FrameRate::from_f64(12.5).map(FrameRate::ffmpeg),
            Some("12500/1000".into())
        );
        assert_eq!(FrameRate::from_f64(0.0), None);
    }

    proptest! {
        #[test]
        fn rounding_keeps_two_significant_figures(bits in 100u64..10_000_000_000) {
            let r = round_bandwidth(bits);
            prop_assert!((r as f64 - bits as f64).abs() <= bits as f64 * 0.05 + 1.0);
            let unit = 10u64.pow(r.ilog10().saturating_sub(1));
            prop_assert_eq!(r % unit, 0);
        }

        #[test]
        fn bitrates_within_a_rounding_step_share_a_hash(base in 200u64..900, jitter in 0u64..400) {
            // Both within ±0.4% of base*1000 round to the same two figures.
            let mk = |bw: u64| VariantInfo {
                uri: "v".into(), bandwidth: bw, codecs: Some("avc1.4d401e,mp4a.40.2".into()),
                resolution: Some((640, 360)), frame_rate: Some(25.0),
            };
            let d = ChannelDefaults::default();
            let center = round_bandwidth(base * 1000);
            let a = VariantSet::from_variants(&[mk(center)], &d).map(|s| s.hash()).ok();
            let b = VariantSet::from_variants(&[mk(center + jitter)], &d).map(|s| s.hash()).ok();
            prop_assert_eq!(a, b);
        }

        #[test]
        fn any_variant_values_never_panic(bw: u64, w: u32, h: u32, fps in proptest::option::of(-10.0f64..1000.0),
                                          codecs in proptest::option::of("\\PC{0,30}")) {
            let v = VariantInfo { uri: "v".into(), bandwidth: bw, codecs, resolution: Some((w, h)), frame_rate: fps };
            let _ = VariantSet::from_variants(&[v], &ChannelDefaults::default());
        }
    }
}
