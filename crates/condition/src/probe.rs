//! What ffprobe says about a source file (`ffprobe -show_streams -show_format -of json`), reduced to what the
//! recipe needs.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::variant::FrameRate;

/// A source file's first video and audio streams.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceInfo {
    /// Duration in seconds: the video stream's, else the container's.
    pub duration: f64,
    /// The first video stream, if any.
    pub video: Option<SourceVideo>,
    /// Whether there is an audio stream.
    pub has_audio: bool,
}

/// A source's video stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceVideo {
    /// Stored width.
    pub width: u32,
    /// Stored height.
    pub height: u32,
    /// Sample aspect ratio (1:1 when unknown).
    pub sar: (u32, u32),
    /// Average frame rate, when ffprobe knows it.
    pub frame_rate: Option<FrameRate>,
    /// Interlaced (`field_order` other than `progressive`), so the recipe deinterlaces.
    pub interlaced: bool,
}

/// The ffprobe arguments [`parse_ffprobe`] reads the output of.
pub fn ffprobe_args(path: &str) -> Vec<String> {
    [
        "-v",
        "error",
        "-show_entries",
        "stream=codec_type,width,height,sample_aspect_ratio,avg_frame_rate,r_frame_rate,duration,field_order:format=duration",
        "-of",
        "json",
        path,
    ]
    .map(String::from)
    .to_vec()
}

fn ratio(text: Option<&str>) -> Option<(u32, u32)> {
    let (n, d) = text?.split_once([':', '/'])?;
    let (n, d) = (n.trim().parse().ok()?, d.trim().parse().ok()?);
    (n > 0 && d > 0).then_some((n, d))
}

fn seconds(v: Option<&serde_json::Value>) -> Option<f64> {
    v?.as_str()?
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|d| d.is_finite() && *d > 0.0)
}

/// Reads ffprobe's JSON. A file with neither video nor audio, or with no duration, is an error.
pub fn parse_ffprobe(json: &str) -> Result<SourceInfo> {
    let err = |reason: &str| Error::ToolOutput {
        tool: "ffprobe",
        reason: reason.to_owned(),
    };
    let doc: serde_json::Value = serde_json::from_str(json).map_err(|e| err(&e.to_string()))?;
    let streams = doc
        .get("streams")
        .and_then(serde_json::Value::as_array)
        .cloned()
        .unwrap_or_default();
    let kind =
        |s: &serde_json::Value, k: &str| s.get("codec_type").and_then(|t| t.as_str()) == Some(k);
    let video_stream = streams.iter().find(|s| kind(s, "video"));
    let has_audio = streams.iter().any(|s| kind(s, "audio"));
    let video = match video_stream {
        Some(s) => {
            let dim = |k: &str| {
                s.get(k)
                    .and_then(serde_json::Value::as_u64)
                    .and_then(|v| u32::try_from(v).ok())
                    .filter(|v| *v > 0)
            };
            let str_of = |k: &str| s.get(k).and_then(serde_json::Value::as_str);
            let frame_rate = ratio(str_of("avg_frame_rate"))
                .or(ratio(str_of("r_frame_rate")))
                .map(|(num, den)| FrameRate { num, den })
                .filter(|f| (1.0..=300.0).contains(&f.as_f64()));
            Some(SourceVideo {
                width: dim("width").ok_or_else(|| err("video stream without width"))?,
                height: dim("height").ok_or_else(|| err("video stream without height"))?,
                sar: ratio(str_of("sample_aspect_ratio")).unwrap_or((1, 1)),
                frame_rate,
                interlaced: str_of("field_order")
                    .is_some_and(|f| !matches!(f, "progressive" | "unknown")),
            })
        }
        None => None,
    };
    if video.is_none() && !has_audio {
        return Err(err("no video or audio stream"));
    }
    let duration = video_stream
        .and_then(|s| seconds(s.get("duration")))
        .or_else(|| seconds(doc.get("format").and_then(|f| f.get("duration"))))
        .ok_or_else(|| err("no duration"))?;
    Ok(SourceInfo {
        duration,
        video,
        has_audio,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ffprobe 5.1 on `testsrc2=size=1280x720:rate=30` + a sine, muxed to MP4 by ffmpeg 5.1.
    const MP4: &str = r#"{ "programs": [], "streams": [
        { "codec_type": "video", "width": 1280, "height": 720, "sample_aspect_ratio": "1:1",
          "r_frame_rate": "30/1", "avg_frame_rate": "30/1", "field_order": "progressive", "duration": "12.000000" },
        { "codec_type": "audio", "r_frame_rate": "0/0", "avg_frame_rate": "0/0", "duration": "12.000000" } ],
        "format": { "duration": "12.000000" } }"#;

    #[test]
    fn mp4_probe_is_read() {
        let info = parse_ffprobe(MP4).expect("ffprobe's JSON parses");
        assert_eq!(info.duration, 12.0);
        assert!(info.has_audio);
        let v = info.video.expect("a video stream");
        assert_eq!((v.width, v.height, v.sar), (1280, 720, (1, 1)));
        assert_eq!(v.frame_rate, Some(FrameRate { num: 30, den: 1 }));
        assert!(!v.interlaced);
    }

    #[test]
    fn stream_without_duration_falls_back_to_the_container() {
        let json = r#"{"streams":[{"codec_type":"video","width":720,"height":576,"sample_aspect_ratio":"64:45",
            "avg_frame_rate":"25/1","field_order":"tt"}],"format":{"duration":"15.04"}}"#;
        let info = parse_ffprobe(json).expect("parses");
        assert_eq!(info.duration, 15.04);
        let v = info.video.expect("video");
        assert_eq!(v.sar, (64, 45));
        assert!(v.interlaced);
        assert!(!info.has_audio);
    }

    #[test]
    fn empty_file_is_refused() {
        assert!(parse_ffprobe(r#"{"streams":[],"format":{}}"#).is_err());
        assert!(parse_ffprobe("not json").is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_text_never_panics(s in "\\PC{0,200}") {
            let _ = parse_ffprobe(&s);
        }
    }
}
