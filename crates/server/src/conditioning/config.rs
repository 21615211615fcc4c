//! The `[condition]` section: whether this node conditions creatives, where the outputs live and how they
//! are served, the worker pool and the loudness standard.

use std::path::{Path, PathBuf};

use interlude_condition::{ChannelDefaults, LoudnessStandard};
use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// Creative conditioning: ads offered only as progressive or mezzanine files are transcoded to each
/// channel's renditions and loudness before they are stitched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConditionConfig {
    /// Whether creatives without HLS renditions are conditioned (off: such ads are skipped as
    /// `NO_VARIANT_MATCH`).
    pub enabled: bool,
    /// Output root: `<root>/<creative identity>/<recipe hash>/<rendition>/…`. Unset: `conditioned/` in
    /// `events.data_dir`. In distributed mode every node must see the same directory (a shared mount).
    pub root: Option<PathBuf>,
    /// URL under which players (and the stitcher in proxy mode) reach `root`. Unset: this server's
    /// `/v1/conditioned/` route (`server.public_base_url`).
    pub public_base_url: Option<String>,
    /// Conditioning jobs this node runs at once (each one ffmpeg at a time); 0: none, the node only queues
    /// (distributed mode, with `interlude condition` workers elsewhere).
    pub workers: usize,
    /// `nice` increment of the ffmpeg children, so conditioning yields to stitching.
    pub niceness: i32,
    /// Threads per ffmpeg encode.
    pub ffmpeg_threads: u32,
    /// The ffmpeg binary.
    pub ffmpeg: PathBuf,
    /// The ffprobe binary.
    pub ffprobe: PathBuf,
    /// Loudness target: `ebu-r128` (−23 LUFS) or `atsc-a85` (−24 LKFS).
    pub loudness: LoudnessStandard,
    /// x264/x265 preset.
    pub preset: String,
    /// Largest source file fetched, MiB.
    pub max_source_mb: u64,
    /// Longest run of one job, seconds.
    pub job_timeout_secs: u64,
    /// Audio sample rate of the channels' renditions (a master playlist does not say it).
    pub audio_sample_rate: u32,
    /// Audio channels of the channels' renditions.
    pub audio_channels: u8,
    /// Audio bit rate, bits per second.
    pub audio_bitrate: u64,
    /// Segment duration of the conditioned ads, ms; unset: the channel's `EXT-X-TARGETDURATION`.
    pub segment_duration_ms: Option<u32>,
}

impl Default for ConditionConfig {
    fn default() -> Self {
        let defaults = ChannelDefaults::default();
        ConditionConfig {
            enabled: false,
            root: None,
            public_base_url: None,
            workers: 1,
            niceness: 10,
            ffmpeg_threads: 2,
            ffmpeg: "ffmpeg".into(),
            ffprobe: "ffprobe".into(),
            loudness: LoudnessStandard::EbuR128,
            preset: "veryfast".into(),
            max_source_mb: 512,
            job_timeout_secs: 3_600,
            audio_sample_rate: defaults.audio_sample_rate,
            audio_channels: defaults.audio_channels,
            audio_bitrate: defaults.audio_bitrate,
            segment_duration_ms: None,
        }
    }
}

impl ConditionConfig {
    /// The output root, given the event store's data directory.
    pub fn root_in(&self, data_dir: &Path) -> PathBuf {
        self.root
            .clone()
            .unwrap_or_else(|| data_dir.join("conditioned"))
    }

    /// Rejects values that cannot work, naming the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, reason: &str| ConfigError {
            key: format!("condition.{key}"),
            reason: reason.to_owned(),
        };
        if self.workers > 64 {
            return Err(bad("workers", "must be 0-64"));
        }
        if !(-20..=19).contains(&self.niceness) {
            return Err(bad("niceness", "must be -20..19"));
        }
        if self.ffmpeg_threads == 0 {
            return Err(bad("ffmpeg_threads", "must be at least 1"));
        }
        if self.max_source_mb == 0 {
            return Err(bad("max_source_mb", "must be at least 1"));
        }
        if !matches!(self.audio_channels, 1 | 2 | 6) {
            return Err(bad("audio_channels", "must be 1, 2 or 6"));
        }
        if self.segment_duration_ms.is_some_and(|ms| ms < 500) {
            return Err(bad("segment_duration_ms", "must be at least 500"));
        }
        if let Some(url) = &self.public_base_url
            && url::Url::parse(url).is_err()
        {
            return Err(bad("public_base_url", "must be an absolute URL"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn section_reads_with_defaults_and_names_bad_keys() {
        let c: ConditionConfig =
            toml::from_str("enabled = true\nworkers = 2\nloudness = \"atsc-a85\"\nniceness = 15\n")
                .expect("a partial section reads");
        assert!(c.enabled);
        assert_eq!((c.workers, c.niceness), (2, 15));
        assert_eq!(c.loudness, LoudnessStandard::AtscA85);
        assert_eq!(
            c.root_in(Path::new("/data")),
            Path::new("/data/conditioned")
        );
        assert!(c.validate().is_ok());
        assert!(toml::from_str::<ConditionConfig>("worker = 2").is_err());
        let bad = ConditionConfig {
            niceness: 30,
            ..ConditionConfig::default()
        };
        assert_eq!(
            bad.validate().map_err(|e| e.key),
            Err("condition.niceness".to_owned())
        );
    }
}
