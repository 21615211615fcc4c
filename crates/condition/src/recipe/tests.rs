use std::path::Path;

use proptest::prelude::*;

use super::loudness::LoudnessStandard;
use super::*;
use crate::probe::SourceVideo;
use crate::variant::{ChannelDefaults, FrameRate, VariantInfo};

fn set() -> VariantSet {
    let v = |w, h, bw| VariantInfo {
        uri: format!("{h}.m3u8"),
        bandwidth: bw,
        codecs: Some("avc1.4d401f,mp4a.40.2".into()),
        resolution: Some((w, h)),
        frame_rate: Some(25.0),
    };
    VariantSet::from_variants(
        &[v(640, 360, 600_000), v(960, 540, 1_200_000)],
        &ChannelDefaults::default(),
    )
    .expect("valid ladder")
}

fn source(w: u32, h: u32, fps: u32, duration: f64) -> SourceInfo {
    SourceInfo {
        duration,
        video: Some(SourceVideo {
            width: w,
            height: h,
            sar: (1, 1),
            frame_rate: Some(FrameRate { num: fps, den: 1 }),
            interlaced: false,
        }),
        has_audio: true,
    }
}

fn joined(a: &[String]) -> String {
    a.join(" ")
}

#[test]
fn encode_forces_keyframes_at_segment_boundaries_with_closed_gops() {
    let s = set();
    let r = &s.renditions[0];
    let a = encode_args(
        Path::new("/in/src.mp4"),
        &source(1280, 720, 30, 15.0),
        r,
        Some("loudnorm=I=-23.0"),
        &EncoderSettings::default(),
        1,
        Path::new("/out/enc.mp4"),
    )
    .expect("15 s gives frames");
    let text = joined(&a);
    for expected in [
        "-force_key_frames expr:gte(t,n_forced*2)",
        "-g 50 -keyint_min 50 -sc_threshold 0 -flags +cgop",
        "-frames:v 375",
        "-profile:v main -level:v 3.1",
        "-b:v 444000 -maxrate 444000 -bufsize 444000",
        "fps=25/1:round=near,scale=640:360:flags=bicubic,setsar=1,pad=640:360:0:0:color=black",
        "loudnorm=I=-23.0,aresample=48000,apad=whole_dur=15.000000,atrim=end=15.000000[a]",
        "-c:a aac -b:a 96000 -ar 48000 -ac 2",
    ] {
        assert!(text.contains(expected), "{expected:?} missing from {text}");
    }
    assert_eq!(a.last().map(String::as_str), Some("/out/enc.mp4"));
}

#[test]
fn four_by_three_source_is_pillarboxed_not_stretched() {
    let s = set();
    let a = encode_args(
        Path::new("s.mov"),
        &source(640, 480, 25, 10.0),
        &s.renditions[1],
        None,
        &EncoderSettings::default(),
        2,
        Path::new("o.mp4"),
    )
    .unwrap_or_default();
    assert!(
        joined(&a).contains("scale=720:540:flags=bicubic,setsar=1,pad=960:540:120:0"),
        "{a:?}"
    );
    // No loudnorm for a silent source.
    assert!(!joined(&a).contains("loudnorm"));
}

#[test]
fn duration_is_kept_to_the_nearest_frame_of_the_new_rate() {
    let s = set();
    // 14.99 s at 29.97 fps becomes 375 frames at 25 fps (15.0 s, within one 40 ms frame).
    let (frames, seconds) =
        output_length(&source(1280, 720, 30, 14.99), &s.renditions[0]).unwrap_or((0, 0.0));
    assert_eq!((frames, seconds), (375, 15.0));
    assert!(output_length(&source(1280, 720, 30, 0.001), &s.renditions[0]).is_err());
}

#[test]
fn source_without_audio_gets_silence_of_the_same_length() {
    let s = set();
    let mut info = source(1280, 720, 30, 6.0);
    info.has_audio = false;
    let a = encode_args(
        Path::new("s.mp4"),
        &info,
        &s.renditions[0],
        None,
        &EncoderSettings::default(),
        1,
        Path::new("o.mp4"),
    )
    .unwrap_or_default();
    assert!(
        joined(&a)
            .contains("anullsrc=r=48000:cl=stereo,apad=whole_dur=6.000000,atrim=end=6.000000[a]")
    );
    assert!(
        measure_args(
            Path::new("s.mp4"),
            &s.renditions[0],
            &LoudnessStandard::EbuR128.target()
        )
        .is_some()
    );
}

#[test]
fn remuxes_copy_the_encoded_streams() {
    let s = set();
    let r = &s.renditions[0];
    let ts = joined(&ts_args(Path::new("/w/enc.mp4"), Path::new("/o/ts"), r));
    assert!(
        ts.contains("-c copy -f hls -hls_time 2 -hls_playlist_type vod -hls_segment_type mpegts")
    );
    assert!(ts.ends_with("/o/ts/%03d.ts /o/ts/index.m3u8"));
    let fmp4 = joined(&fmp4_args(Path::new("/w/enc.mp4"), Path::new("/o/fmp4"), r));
    assert!(fmp4.contains(
        "-map 0 -c copy -f hls -hls_time 2 -hls_playlist_type vod -hls_segment_type fmp4 -hls_fmp4_init_filename init.mp4"
    ));
    assert!(fmp4.ends_with("/o/fmp4/%03d.m4s /o/fmp4/index.m3u8"));
    let cmaf = joined(&cmaf_args(Path::new("/w/enc.mp4"), Path::new("/o/cmaf"), r));
    assert!(cmaf.contains("-f dash -seg_duration 2"));
    assert!(cmaf.contains("-hls_playlist 1 -hls_master_name index.m3u8"));
    assert!(cmaf.ends_with("id=0,streams=v id=1,streams=a /o/cmaf/manifest.mpd"));
}

#[test]
fn recipe_hash_follows_loudness_and_preset_but_not_uris() {
    let base = Recipe {
        variant_set: set(),
        loudness: LoudnessStandard::EbuR128.target(),
        encoder: EncoderSettings::default(),
    };
    let mut other_uris = base.clone();
    other_uris.variant_set.variants.clear();
    assert_eq!(base.hash(), other_uris.hash());
    let atsc = Recipe {
        loudness: LoudnessStandard::AtscA85.target(),
        ..base.clone()
    };
    assert_ne!(base.hash(), atsc.hash());
    let slow = Recipe {
        encoder: EncoderSettings {
            preset: "slow".into(),
        },
        ..base.clone()
    };
    assert_ne!(base.hash(), slow.hash());
}

proptest! {
    #[test]
    fn every_rendition_and_source_gives_a_bounded_frame_count(
        dur in 0.05f64..600.0, sw in 16u32..4000, sh in 16u32..4000, fps in 1u32..120, idx in 0usize..2
    ) {
        let s = set();
        let r = &s.renditions[idx];
        let info = source(sw, sh, fps, dur);
        let a = encode_args(Path::new("s"), &info, r, None, &EncoderSettings::default(), 1, Path::new("o"));
        let (frames, secs) = output_length(&info, r).unwrap_or((0, 0.0));
        prop_assert!(a.is_ok());
        // Within half a frame of the source: the QC tolerance of one frame holds by construction.
        prop_assert!((secs - dur).abs() <= 0.5 / 25.0 + 1e-9);
        let frames_arg = format!("-frames:v {frames}");
        prop_assert!(joined(&a.unwrap_or_default()).contains(&frames_arg));
    }
}
