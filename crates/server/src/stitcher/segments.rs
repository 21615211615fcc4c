//! Ad and slate segment delivery: an ad segment request resolved to the creative's segment (a redirect), or
//! in proxy mode its bytes retimed to continue the content (audio fitted and continuity counters chained at
//! every seam, see `seams`); either way the server-side beacons the segment stands for are fired (impression
//! and start with the first segment, quartiles as the ad's play position passes them, complete with the
//! last), the way MediaTailor reports SSAI impressions, each with the third parties' pixels it stands for
//! (fired once the pipeline counts it, see `collector::beacon_sink`).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use interlude_mpegts::{first_counters, last_counters, truncate};
use interlude_stitch::TrackedBreak;
use interlude_stitch::pod::secs_to_micros;

use super::StitchError;
use interlude_events::{AdEvent, ServerSideReport};
use interlude_stitch::beacons::events_for_segment;

use super::beacons::BeaconSink;
use super::channel::{Channel, NewBreak};
use super::channels::Channels;
use super::config::{AdDelivery, StitcherConfig};
use super::fmp4_proxy::{self, Fmp4Anchors, map_uri};
use super::proxy::{Anchors, BreakStart, SegmentCache, fetch, reference_pts, retimed, ticks};
use super::seams::{ItemPlace, Original, audio_window, break_end, counters};
use super::session::{Session, SessionMode};
use super::tracks::TrackSource;

/// Where an ad segment request leads: the creative's URL, and where the segment sits in the break.
#[derive(Debug, Clone)]
pub(super) struct AdSegmentTarget {
    pub(super) url: String,
    /// URL of the ad's first segment in the same rendition (its first PTS is the ad's time origin).
    first_url: String,
    /// Microseconds from the break start to the ad's start (the segment keeps its place within the ad).
    ad_start_micros: u64,
    /// The ad's duration.
    ad_micros: u64,
    /// The segment is the ad's first, its last.
    first: bool,
    last: bool,
    tracked: TrackedBreak,
    /// The ad's `EXT-X-MAP` line in this rendition when it is fragmented MP4.
    pub(super) map: Option<String>,
}

/// Proxy-mode state: fetched segments and per-break timestamp anchors (MPEG-TS PTS, fMP4 decode times).
struct Proxy {
    segments: SegmentCache,
    anchors: Anchors,
    fmp4_anchors: Fmp4Anchors,
}

/// Where this node's ad and slate segments come from, and where their beacons go.
pub(crate) struct Segments {
    proxy: Option<Arc<Proxy>>,
    beacons: Arc<dyn BeaconSink>,
    http: reqwest::Client,
    clock: interlude_events::Clock,
    /// Creatives' media, for [`Segments::creative_first_pts`] when not proxying.
    third_party: interlude_outbound::GuardedClient,
    /// First PTS of creative and slate segments served unchanged, by URL: read once (segments are immutable).
    first_pts: dashmap::DashMap<String, u64>,
    /// Muxed fMP4 creatives and slate served one track at a time (DASH sessions over CMAF, see `tracks`).
    tracks: TrackSource,
}

/// Creative segments whose first PTS [`Segments`] remembers; past this the memory starts over.
const MAX_FIRST_PTS: usize = 10_000;

impl Segments {
    /// Segments as `config.ad_delivery` says (origins read with `http`, ad and slate segments with
    /// `third_party`), beacons to `beacons`.
    pub(crate) fn new(
        config: &StitcherConfig,
        http: reqwest::Client,
        third_party: interlude_outbound::GuardedClient,
        beacons: Arc<dyn BeaconSink>,
        clock: interlude_events::Clock,
    ) -> Self {
        let proxy = (config.ad_delivery == AdDelivery::Proxy).then(|| {
            Arc::new(Proxy {
                segments: SegmentCache::new(
                    third_party.clone(),
                    Duration::from_secs(5),
                    usize::try_from(config.proxy_cache_mb.saturating_mul(1 << 20))
                        .unwrap_or(usize::MAX),
                ),
                anchors: Anchors::default(),
                fmp4_anchors: Fmp4Anchors::default(),
            })
        });
        Segments {
            proxy,
            beacons,
            http,
            clock,
            tracks: TrackSource::new(
                third_party.clone(),
                usize::try_from(config.proxy_cache_mb.saturating_mul(1 << 20))
                    .unwrap_or(usize::MAX),
            ),
            third_party,
            first_pts: dashmap::DashMap::new(),
        }
    }

    /// Creatives and slate served one track at a time.
    pub(crate) fn tracks(&self) -> &TrackSource {
        &self.tracks
    }

    /// DASH: the PTS (90 kHz) at which an ad's segments start as this server serves them — retimed to
    /// continue the content in proxy mode (the break's anchor plus `ad_start_micros`, the ad's place in the
    /// break), else the creative's own first PTS, read from its first segment `first_url`. `None` when it
    /// cannot be read now (asked again on the next MPD).
    pub(crate) async fn ad_first_pts(
        &self,
        channels: &Channels,
        channel: &str,
        tracked: &TrackedBreak,
        rendition: usize,
        ad_start_micros: u64,
        first_url: &str,
    ) -> Option<u64> {
        let Some(proxy) = &self.proxy else {
            return self.creative_first_pts(channels, channel, first_url).await;
        };
        let entry = channels.entry(channel).ok()?;
        let anchor = proxy
            .anchors
            .anchor(
                &entry.channel,
                tracked,
                rendition,
                &self.http,
                origin_timeout(&entry.channel),
            )
            .await?;
        Some((anchor + ticks(ad_start_micros)) % interlude_mpegts::WRAP)
    }

    /// The first PTS (90 kHz) of a creative or slate segment served unchanged (a redirect, or DASH slate),
    /// read once per URL.
    pub(crate) async fn creative_first_pts(
        &self,
        channels: &Channels,
        channel: &str,
        url: &str,
    ) -> Option<u64> {
        if let Some(pts) = self.first_pts.get(url) {
            return Some(*pts);
        }
        let timeout = origin_timeout(&channels.entry(channel).ok()?.channel);
        let bytes = match &self.proxy {
            Some(proxy) => proxy.segments.get(url).await,
            None => fetch(&self.third_party, url, timeout).await,
        };
        let pts = match bytes {
            Ok(bytes) => reference_pts(&bytes),
            Err(error) => {
                tracing::debug!(%url, %error, "Creative segment not read for its first PTS.");
                None
            }
        }?;
        if self.first_pts.len() >= MAX_FIRST_PTS {
            self.first_pts.clear();
        }
        self.first_pts.insert(url.to_owned(), pts);
        Some(pts)
    }

    /// Whether ad and slate segments are served by this server (rather than redirected to).
    pub(crate) fn proxies(&self) -> bool {
        self.proxy.is_some()
    }

    /// Measures the new break's timestamp anchors while its first segment is still in the origin window, and
    /// forgets anchors of breaks that are gone.
    pub(crate) fn warm_anchors(&self, channels: &Channels, new_break: &NewBreak) {
        let Some(proxy) = &self.proxy else { return };
        let Ok(entry) = channels.entry(&new_break.channel) else {
            return;
        };
        let snapshot = entry.channel.snapshot();
        if let Some(oldest) = snapshot.breaks.first() {
            proxy.anchors.prune(&new_break.channel, oldest.start_msn);
            proxy
                .fmp4_anchors
                .prune(&new_break.channel, oldest.start_msn);
        }
        let fmp4 = snapshot
            .renditions
            .first()
            .is_some_and(|r| r.media.is_fmp4());
        for rendition in 0..snapshot.renditions.len() {
            let (proxy, http, channel, tracked) = (
                proxy.clone(),
                self.http.clone(),
                entry.channel.clone(),
                new_break.tracked.clone(),
            );
            tokio::spawn(async move {
                let timeout = origin_timeout(&channel);
                if fmp4 {
                    proxy
                        .fmp4_anchors
                        .anchor(&channel, &tracked, rendition, &http, timeout)
                        .await;
                } else {
                    proxy
                        .anchors
                        .anchor(&channel, &tracked, rendition, &http, timeout)
                        .await;
                }
            });
        }
    }

    /// Resolves an ad segment request to the creative's URL, firing the server-side beacons it stands for.
    pub(crate) fn ad_segment(
        &self,
        channels: &Channels,
        session: &Session,
        ad_instance_id: &str,
        rendition: usize,
        segment: usize,
    ) -> Result<String, StitchError> {
        Ok(self
            .ad_target(channels, session, ad_instance_id, rendition, segment, true)?
            .url)
    }

    /// Where ad segment `segment` of `ad_instance_id` in `rendition` is, firing the server-side beacons it
    /// stands for when `fire` (a segment requested for play; not an init segment, nor a second track of
    /// the same media).
    pub(super) fn ad_target(
        &self,
        channels: &Channels,
        session: &Session,
        ad_instance_id: &str,
        rendition: usize,
        segment: usize,
        fire: bool,
    ) -> Result<AdSegmentTarget, StitchError> {
        // An interstitials session's player fetches the ads from their own URLs and reports its own beacons:
        // no ad segment of ours belongs to it, and none may fire server-side beacons for it.
        if session.mode == SessionMode::Interstitials {
            return Err(StitchError::UnknownAdSegment);
        }
        let snapshot = channels.entry(&session.channel)?.channel.snapshot();
        for tracked in snapshot.breaks.iter().rev() {
            let Some(decision) = session.decision(&tracked.id) else {
                continue;
            };
            let Some(position) = decision
                .ads
                .iter()
                .position(|a| a.ad.ad_instance_id == ad_instance_id)
            else {
                continue;
            };
            let ad_start: u64 = decision.ads[..position]
                .iter()
                .map(|a| a.segment_micros.iter().sum::<u64>())
                .sum();
            let ad = &decision.ads[position];
            let urls = ad
                .segment_urls
                .get(rendition)
                .ok_or(StitchError::UnknownAdSegment)?;
            let url = urls
                .get(segment)
                .ok_or(StitchError::UnknownAdSegment)?
                .clone();
            let first_url = urls.first().ok_or(StitchError::UnknownAdSegment)?.clone();
            let start: u64 = ad.segment_micros.iter().take(segment).sum();
            let duration = ad.segment_micros.get(segment).copied().unwrap_or(0);
            let total: u64 = ad.segment_micros.iter().sum();
            let last = segment + 1 == ad.segment_micros.len();
            let now = (self.clock)();
            let consent = crate::privacy::edge::flags_of(&session.viewer);
            let fetch = crate::pixels::SegmentFetch {
                at: now,
                pod_sequence: u32::try_from(position + 1).unwrap_or(u32::MAX),
                ad_micros: total,
                // Device data goes to third parties only with the viewer's consent and no opt-out of sale.
                share_device: consent.personalisation && !consent.opt_out_sale,
            };
            let events = if fire {
                events_for_segment(segment, start, start + duration, total, last)
            } else {
                Vec::new()
            };
            for event in events {
                let pixels = crate::pixels::server_side_pixels(&ad.ad, event, fetch);
                let beacon = AdEvent::server_side(ServerSideReport {
                    ad_instance_id: ad_instance_id.to_owned(),
                    event_type: event,
                    session_id: session.id.clone(),
                    channel: session.channel.clone(),
                    break_id: tracked.id.clone(),
                    creative_id: ad.ad.creative_id.clone(),
                    line_item_id: ad.ad.line_item_id.clone(),
                    occurred_at: now,
                    viewer_id: session.viewer.viewer_id.clone(),
                    consent,
                    demand: ad.ad.bid.as_ref().map(crate::decisioning::demand::of_bid),
                });
                self.beacons.emit_with_pixels(beacon, pixels);
            }
            return Ok(AdSegmentTarget {
                url,
                first_url,
                ad_start_micros: ad_start,
                ad_micros: total,
                first: segment == 0,
                last,
                tracked: tracked.clone(),
                map: ad.map(rendition).map(str::to_owned),
            });
        }
        Err(StitchError::UnknownAdSegment)
    }

    /// Proxy mode: the ad segment's bytes, retimed to continue the content (MPEG-TS PTS, or fMP4 decode times
    /// per track, see `fmp4_proxy`); fires the same beacons as a redirect.
    pub(crate) async fn proxied_ad_segment(
        &self,
        channels: &Channels,
        session: &Session,
        ad_instance_id: &str,
        rendition: usize,
        segment: usize,
    ) -> Result<bytes::Bytes, StitchError> {
        let target = self.ad_target(channels, session, ad_instance_id, rendition, segment, true)?;
        let proxy = self.proxy.as_ref().ok_or(StitchError::UnknownAdSegment)?;
        let entry = channels.entry(&session.channel)?;
        if let Some(map) = &target.map {
            let bytes = proxy.segments.get(&target.url).await?;
            let Some(init_url) = map_uri(map) else {
                return Ok(bytes);
            };
            let init = proxy.segments.get(init_url).await?;
            let first = proxy.segments.get(&target.first_url).await?;
            let anchor = proxy
                .fmp4_anchors
                .anchor(
                    &entry.channel,
                    &target.tracked,
                    rendition,
                    &self.http,
                    origin_timeout(&entry.channel),
                )
                .await;
            return Ok(anchor
                .and_then(|a| {
                    fmp4_proxy::retimed(&bytes, &init, &first, &a, target.ad_start_micros)
                })
                .map_or(bytes, Bytes::from));
        }
        let first = proxy.segments.get(&target.first_url).await?;
        let bytes = proxy.segments.get(&target.url).await?;
        let start = proxy
            .anchors
            .start(
                &entry.channel,
                &target.tracked,
                rendition,
                &self.http,
                origin_timeout(&entry.channel),
            )
            .await;
        let bytes = retimed(
            &bytes,
            reference_pts(&first),
            start.as_ref().map(|s| s.video),
            target.ad_start_micros,
        );
        let place = ItemPlace {
            start_micros: target.ad_start_micros,
            micros: target.ad_micros,
            opens: target.first,
            closes: target.last,
        };
        let item_first = first_counters(&first);
        Ok(self
            .fit_to_break(
                proxy,
                &entry.channel,
                &target.tracked,
                rendition,
                start,
                place,
                &item_first,
                bytes,
            )
            .await)
    }

    /// Proxy mode: `bytes` (an item's segment, retimed) with its audio fitted to the item's place
    /// (`seams::audio_window`) and its continuity counters continuing the break (`seams::counters`;
    /// `item_first` are the counters the item's first segment starts with); unchanged without a break anchor.
    #[allow(clippy::too_many_arguments)] // one call per item kind; a struct would only rename them
    async fn fit_to_break(
        &self,
        proxy: &Proxy,
        channel: &Channel,
        tracked: &TrackedBreak,
        rendition: usize,
        start: Option<BreakStart>,
        place: ItemPlace,
        item_first: &[(u16, u8)],
        bytes: bytes::Bytes,
    ) -> bytes::Bytes {
        let Some(start) = start else {
            return bytes;
        };
        let item_end = place.start_micros + place.micros;
        let last = break_end(tracked).filter(|end| place.closes && end.ends_with(item_end));
        let end = match last {
            Some(last) => {
                let video_end = (start.video + ticks(item_end)) % interlude_mpegts::WRAP;
                let timeout = origin_timeout(channel);
                proxy
                    .anchors
                    .end(
                        channel, tracked, rendition, last.msn, video_end, &self.http, timeout,
                    )
                    .await
            }
            None => None,
        };
        let ends_break = last.is_some();
        let window = audio_window(
            &start,
            place,
            ends_break,
            end.as_ref().and_then(|e| e.audio),
        );
        let original = Original {
            item_first: item_first.to_vec(),
            first: first_counters(&bytes),
            last: last_counters(&bytes),
        };
        let fitted = interlude_mpegts::fit_audio(&bytes, &window);
        let wanted = counters(&start, end.as_ref(), place, &original);
        interlude_mpegts::set_counters(&fitted, &wanted).into()
    }

    /// Proxy mode: the slate segment playing `offset_micros` into the break starting at media sequence
    /// `break_msn`, retimed to continue the content and cut to `duration_micros` (the end of a break).
    pub(crate) async fn proxied_slate_segment(
        &self,
        channels: &Channels,
        session: &Session,
        rendition: usize,
        break_msn: u64,
        offset_micros: u64,
        duration_micros: u64,
    ) -> Result<bytes::Bytes, StitchError> {
        let proxy = self.proxy.as_ref().ok_or(StitchError::UnknownAdSegment)?;
        let entry = channels.entry(&session.channel)?;
        let slate = entry.cached_slate();
        let map = slate
            .as_ref()
            .and_then(|s| s.maps.get(rendition))
            .and_then(|m| map_uri(m).map(str::to_owned));
        let (url, slate_micros) = slate
            .and_then(|s| Some((s.urls.get(rendition)?.clone(), secs_to_micros(s.seconds))))
            .ok_or(StitchError::UnknownRendition(rendition))?;
        let snapshot = entry.channel.snapshot();
        let tracked = snapshot
            .breaks
            .iter()
            .find(|b| b.start_msn == break_msn)
            .ok_or(StitchError::UnknownAdSegment)?;
        let bytes = proxy.segments.get(&url).await?;
        if let Some(init_url) = map {
            let init = proxy.segments.get(&init_url).await?;
            let anchor = proxy
                .fmp4_anchors
                .anchor(
                    &entry.channel,
                    tracked,
                    rendition,
                    &self.http,
                    origin_timeout(&entry.channel),
                )
                .await;
            let moved = anchor
                .and_then(|a| fmp4_proxy::retimed(&bytes, &init, &bytes, &a, offset_micros))
                .unwrap_or_else(|| bytes.to_vec());
            if duration_micros + 1_000 < slate_micros {
                return Ok(fmp4_proxy::cut(&moved, &init, duration_micros)
                    .unwrap_or(moved)
                    .into());
            }
            return Ok(moved.into());
        }
        let start = proxy
            .anchors
            .start(
                &entry.channel,
                tracked,
                rendition,
                &self.http,
                origin_timeout(&entry.channel),
            )
            .await;
        let mut bytes = retimed(
            &bytes,
            reference_pts(&bytes),
            start.as_ref().map(|s| s.video),
            offset_micros,
        );
        if duration_micros + 1_000 < slate_micros {
            bytes = truncate(&bytes, duration_micros * 9 / 100).into();
        }
        // Each slate segment is an item of its own: its audio covers exactly its (possibly cut) video.
        let place = ItemPlace {
            start_micros: offset_micros,
            micros: duration_micros.min(slate_micros),
            opens: true,
            closes: true,
        };
        // Each slate segment is its own item, its own first segment.
        let item_first = first_counters(&bytes);
        Ok(self
            .fit_to_break(
                proxy,
                &entry.channel,
                tracked,
                rendition,
                start,
                place,
                &item_first,
                bytes,
            )
            .await)
    }
}

fn origin_timeout(channel: &Channel) -> Duration {
    Duration::from_millis(channel.config.origin_timeout_ms)
}
