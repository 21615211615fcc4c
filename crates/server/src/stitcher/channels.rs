//! The channels a stitcher serves: one origin poller per channel (shared by every session of it), the latest
//! snapshot of each, and each channel's slate. Owns nothing per viewer.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use interlude_stitch::pod::micros_to_secs;
use tokio::sync::{OnceCell, mpsc};

use super::StitchError;
use super::channel::{Channel, NewBreak, poll_channel};
use super::config::StitcherConfig;
use super::creatives::CreativeLibrary;
use super::pods::{best_rendition, to_rendition};

/// A channel at a glance.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ChannelSummary {
    /// Channel id.
    pub id: String,
    /// Live sessions.
    pub sessions: usize,
    /// Breaks tracked (recent history included).
    pub breaks_seen: usize,
    /// The open break, if one is running.
    pub open_break: Option<String>,
    /// Seconds of it played.
    pub open_break_elapsed_secs: Option<f64>,
    /// Its planned length.
    pub open_break_planned_secs: Option<f64>,
    /// Seconds since the origin last answered in full.
    pub origin_age_secs: Option<f64>,
    /// The origin's newest segment.
    pub live_edge_msn: Option<u64>,
}

/// Slate for a channel: the first segment of the best slate rendition for each content rendition.
#[derive(Debug, Clone)]
pub(crate) struct Slate {
    /// One segment URL per content rendition.
    pub(crate) urls: Vec<String>,
    /// Per content rendition, the `EXT-X-MAP` line of a fragmented MP4 slate (empty for MPEG-TS).
    pub(crate) maps: Vec<Arc<str>>,
    /// Its length.
    pub(crate) seconds: f64,
}

/// One channel and its slate (fetched once, on first need).
pub(crate) struct ChannelEntry {
    pub(crate) channel: Arc<Channel>,
    slate: OnceCell<Option<Slate>>,
}

impl ChannelEntry {
    /// The slate, if it was fetched already (rendering never waits for it).
    pub(crate) fn cached_slate(&self) -> Option<Slate> {
        self.slate.get().cloned().flatten()
    }
}

/// The configured channels.
pub(crate) struct Channels {
    entries: HashMap<String, ChannelEntry>,
    creatives: CreativeLibrary,
    tolerance_micros: u64,
}

impl Channels {
    /// The channels of `config`; creative playlists (the slate's) are read through `creatives`.
    pub(crate) fn new(config: &StitcherConfig, creatives: CreativeLibrary) -> Self {
        let entries = config
            .channels
            .iter()
            .map(|c| {
                (
                    c.id.clone(),
                    ChannelEntry {
                        channel: Arc::new(Channel::new(c.clone())),
                        slate: OnceCell::new(),
                    },
                )
            })
            .collect();
        Channels {
            entries,
            creatives,
            tolerance_micros: config.tolerance_ms * 1000,
        }
    }

    /// Break tolerance (a cue-in this close to the planned end ends the break at the planned end).
    pub(crate) fn tolerance_micros(&self) -> u64 {
        self.tolerance_micros
    }

    /// The creative playlists library (slate and pods share its cache).
    pub(crate) fn creatives(&self) -> &CreativeLibrary {
        &self.creatives
    }

    /// Starts one poller per channel; each new break is sent on `breaks`.
    pub(crate) fn start(
        &self,
        http: &reqwest::Client,
        clock: &interlude_events::Clock,
        breaks: &mpsc::Sender<NewBreak>,
    ) {
        for entry in self.entries.values() {
            let clock = clock.clone();
            tokio::spawn(poll_channel(
                entry.channel.clone(),
                http.clone(),
                self.tolerance_micros,
                move || clock(),
                breaks.clone(),
            ));
        }
    }

    /// The channel's entry.
    pub(crate) fn entry(&self, channel: &str) -> Result<&ChannelEntry, StitchError> {
        self.entries
            .get(channel)
            .ok_or_else(|| StitchError::UnknownChannel(channel.to_owned()))
    }

    /// Whether `channel` is configured.
    pub(crate) fn contains(&self, channel: &str) -> bool {
        self.entries.contains_key(channel)
    }

    /// The channel ids.
    pub(crate) fn ids(&self) -> impl Iterator<Item = &String> {
        self.entries.keys()
    }

    /// The channel's slate, fetching its playlists the first time.
    pub(crate) async fn slate(&self, entry: &ChannelEntry) -> Option<Slate> {
        entry
            .slate
            .get_or_init(|| async {
                let snapshot = entry.channel.snapshot();
                let renditions: Vec<_> = entry
                    .channel
                    .config
                    .slate
                    .iter()
                    .map(to_rendition)
                    .collect();
                let mut urls = Vec::new();
                let mut maps = Vec::new();
                let mut seconds = None;
                for content in &snapshot.renditions {
                    let i = best_rendition(
                        &renditions,
                        content.variant.bandwidth,
                        content.variant.resolution,
                    )?;
                    let media = self
                        .creatives
                        .media(&renditions[i].playlist_url)
                        .await
                        .ok()?;
                    if media.map.is_some() != content.media.is_fmp4() {
                        // Slate in another container than the content would not play in the same stream.
                        tracing::warn!(
                            channel = %entry.channel.config.id,
                            "Slate packaging (TS or fMP4) unlike the channel's; breaks play the origin's content."
                        );
                        return None;
                    }
                    urls.push(media.urls.first()?.clone());
                    maps.extend(media.map.clone());
                    seconds.get_or_insert(micros_to_secs(*media.micros.first()?));
                }
                Some(Slate {
                    urls,
                    maps,
                    seconds: seconds?,
                })
            })
            .await
            .clone()
    }

    /// Each channel at a glance; `sessions_of` counts a channel's live sessions.
    pub(crate) fn summaries(
        &self,
        now: DateTime<Utc>,
        sessions_of: impl Fn(&str) -> usize,
    ) -> Vec<ChannelSummary> {
        let mut out: Vec<ChannelSummary> = self
            .entries
            .iter()
            .map(|(id, entry)| {
                let snapshot = entry.channel.snapshot();
                let open = snapshot.breaks.last().filter(|b| !b.is_ended());
                ChannelSummary {
                    id: id.clone(),
                    sessions: sessions_of(id),
                    breaks_seen: snapshot.breaks.len(),
                    open_break: open.map(|b| b.id.clone()),
                    open_break_elapsed_secs: open.map(|b| micros_to_secs(b.elapsed_micros())),
                    open_break_planned_secs: open
                        .and_then(|b| b.planned_micros.map(micros_to_secs)),
                    origin_age_secs: snapshot
                        .refreshed_at
                        .map(|t| (now - t).num_milliseconds() as f64 / 1000.0),
                    live_edge_msn: snapshot.live_edge_msn(),
                }
            })
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }
}
