//! The channel as a pure function of time: which segments are live, their program date times and PTS, where the
//! breaks fall, and the media playlist text with markers in the configured dialect.

use std::fmt::Write;
use std::ops::Range;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use interlude_scte35::{SpliceInfoSection, TICKS_PER_SECOND};

use super::{CueSignal, MarkerDialect, OriginConfig};
use crate::media::{DashTrack, Packaging, SEGMENT_SECS};
use interlude_mpegts::fmp4::ticks_in_timescale;

/// 2^33: PTS wraps here.
const PTS_WRAP: u64 = 1 << 33;
/// Seconds of PTS before segment 0, so the first segments do not start at the wrap point.
const PTS_START_SECS: u64 = 10;

/// Where a segment sits relative to the break schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// Plain content.
    Content,
    /// Segment `offset` (0-based) of break `k`.
    InBreak {
        /// Break number since the epoch.
        k: u64,
        /// Segments into the break.
        offset: u64,
    },
    /// The first content segment after break `k`.
    AfterBreak {
        /// Break number.
        k: u64,
    },
}

/// The schedule of one simulated channel.
#[derive(Debug, Clone)]
pub struct Timeline {
    config: OriginConfig,
    content_len: u64,
    /// First PTS of content file 0 as encoded (ffmpeg starts at ~1.4 s).
    base_pts: u64,
}

impl Timeline {
    /// A timeline over a content loop of `content_len` segments whose file 0 starts at `base_pts`.
    pub fn new(config: OriginConfig, content_len: usize, base_pts: u64) -> Self {
        Timeline {
            config,
            content_len: content_len.max(1) as u64,
            base_pts,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &OriginConfig {
        &self.config
    }

    /// Index of the newest complete segment at `now` (`None` before the first one is complete).
    pub fn live_edge(&self, now: DateTime<Utc>) -> Option<u64> {
        let elapsed = (now - self.config.epoch).num_milliseconds();
        let completed = u64::try_from(elapsed).ok()? / (SEGMENT_SECS * 1000);
        completed.checked_sub(1)
    }

    /// Segment indexes in the live window at `now`.
    pub fn window(&self, now: DateTime<Utc>) -> Range<u64> {
        match self.live_edge(now) {
            Some(edge) => edge.saturating_sub(self.config.window_segments - 1)..edge + 1,
            None => 0..0,
        }
    }

    /// Program date time of segment `i`.
    pub fn pdt(&self, i: u64) -> DateTime<Utc> {
        self.config.epoch + TimeDelta::seconds(i64::try_from(i * SEGMENT_SECS).unwrap_or(i64::MAX))
    }

    /// PTS (90 kHz) at which segment `i` starts once served.
    pub fn pts(&self, i: u64) -> u64 {
        (self.base_pts + (PTS_START_SECS + i * SEGMENT_SECS) * TICKS_PER_SECOND) % PTS_WRAP
    }

    /// Content loop file that segment `i` plays.
    pub fn content_file(&self, i: u64) -> usize {
        (i % self.content_len) as usize
    }

    /// Ticks to add to the content file's timestamps so segment `i` continues the stream.
    pub fn pts_offset(&self, i: u64) -> u64 {
        let loops = i / self.content_len;
        ((PTS_START_SECS + loops * self.content_len * SEGMENT_SECS) * TICKS_PER_SECOND) % PTS_WRAP
    }

    /// CMAF: 90 kHz ticks to add to the content file's decode times (`tfdt`) so segment `i` continues the
    /// stream. Not wrapped, as `tfdt` is a 64-bit count (ISO/IEC 14496-12 §8.8.12); it includes the TS
    /// variant's first PTS, so a CMAF segment's media time modulo 2^33 is the TS segment's PTS and the SCTE-35
    /// `pts_time` of a cue names the same instant in both packagings.
    pub fn decode_offset(&self, i: u64) -> u64 {
        let loops = i / self.content_len;
        self.base_pts
            + (PTS_START_SECS + loops * self.content_len * SEGMENT_SECS) * TICKS_PER_SECOND
    }

    fn segs(&self, secs: u64) -> u64 {
        secs / SEGMENT_SECS
    }

    /// Where segment `i` sits in the break schedule.
    pub fn position(&self, i: u64) -> Position {
        let first = self.segs(self.config.first_break_secs);
        let interval = self.segs(self.config.break_interval_secs).max(1);
        let len = self.segs(self.config.break_duration_secs);
        if i < first {
            return Position::Content;
        }
        let (k, offset) = ((i - first) / interval, (i - first) % interval);
        if offset < len {
            Position::InBreak { k, offset }
        } else if offset == len {
            Position::AfterBreak { k }
        } else {
            Position::Content
        }
    }

    /// First segment of break `k`.
    pub fn break_start(&self, k: u64) -> u64 {
        self.segs(self.config.first_break_secs) + k * self.segs(self.config.break_interval_secs)
    }

    /// SCTE-35 event id of break `k` (stable, so every refresh and every process agrees).
    pub fn event_id(&self, k: u64) -> u32 {
        1000u32.wrapping_add(k as u32)
    }

    /// The cue that starts break `k`.
    pub fn out_cue(&self, k: u64) -> SpliceInfoSection {
        let pts = self.pts(self.break_start(k));
        let duration = self.config.break_duration_secs * TICKS_PER_SECOND;
        match self.config.signal {
            CueSignal::SpliceInsert => {
                SpliceInfoSection::splice_insert_out(self.event_id(k), Some(pts), Some(duration))
            }
            CueSignal::TimeSignal => SpliceInfoSection::time_signal_segmentation(
                pts,
                0x34,
                self.event_id(k),
                Some(duration),
            ),
        }
    }

    /// The cue that ends break `k`.
    pub fn in_cue(&self, k: u64) -> SpliceInfoSection {
        let pts = self.pts(self.break_start(k) + self.segs(self.config.break_duration_secs));
        match self.config.signal {
            CueSignal::SpliceInsert => {
                SpliceInfoSection::splice_insert_in(self.event_id(k), Some(pts))
            }
            CueSignal::TimeSignal => {
                SpliceInfoSection::time_signal_segmentation(pts, 0x35, self.event_id(k), None)
            }
        }
    }

    /// The channel as a live DASH MPD at `now` (ISO/IEC 23009-1, MPEG-2 TS simple profile §8.7): one Period
    /// from the epoch, one AdaptationSet of the muxed TS renditions addressed by `$Number$` (segment `n` is
    /// the same file the HLS playlists list), and the breaks overlapping the time-shift window as an
    /// EventStream of SCTE-35 cues in binary form (`urn:scte:scte35:2014:xml+bin`, SCTE 214-1 §6.7.4).
    /// `renditions` are `(id, bandwidth, width, height)`.
    pub fn dash_manifest(
        &self,
        now: DateTime<Utc>,
        renditions: &[(&str, u64, u32, u32)],
    ) -> String {
        let window = self.window(now);
        let depth = self.config.window_segments * SEGMENT_SECS;
        let mut out = String::with_capacity(2048);
        let _ = write!(
            out,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" xmlns:scte35=\"http://www.scte.org/schemas/35/2016\" \
             type=\"dynamic\" profiles=\"urn:mpeg:dash:profile:mp2t-simple:2011\" \
             availabilityStartTime=\"{}\" publishTime=\"{}\" minimumUpdatePeriod=\"PT{SEGMENT_SECS}S\" \
             timeShiftBufferDepth=\"PT{depth}S\" suggestedPresentationDelay=\"PT{}S\" minBufferTime=\"PT{SEGMENT_SECS}S\">\n\
             <Period id=\"p0\" start=\"PT0S\">\n",
            iso(self.config.epoch),
            iso(self.pdt(window.end)),
            SEGMENT_SECS * 3,
        );
        self.write_event_stream(&mut out, &window);
        let _ = writeln!(
            out,
            "<AdaptationSet id=\"0\" contentType=\"video\" mimeType=\"video/mp2t\" codecs=\"{}\" segmentAlignment=\"true\" startWithSAP=\"1\">",
            crate::media::CODECS
        );
        // Segment n's timestamps start at pts(n); the offset maps PTS to the Period's timeline.
        let _ = writeln!(
            out,
            "<SegmentTemplate timescale=\"90000\" duration=\"{}\" startNumber=\"0\" presentationTimeOffset=\"{}\" media=\"$RepresentationID$/$Number$.ts\"/>",
            SEGMENT_SECS * TICKS_PER_SECOND,
            self.pts(0)
        );
        for (id, bandwidth, width, height) in renditions {
            let _ = writeln!(
                out,
                "<Representation id=\"{id}\" bandwidth=\"{bandwidth}\" width=\"{width}\" height=\"{height}\" frameRate=\"25\"/>"
            );
        }
        out.push_str("</AdaptationSet>\n</Period>\n</MPD>\n");
        out
    }

    /// The breaks overlapping the time-shift window as an EventStream of SCTE-35 cues in binary form
    /// (`urn:scte:scte35:2014:xml+bin`, SCTE 214-1 §6.7.4), times relative to the Period start.
    fn write_event_stream(&self, out: &mut String, window: &Range<u64>) {
        // Breaks whose span touches the window (plus the next one once its cue is in the window's future).
        let first = self.segs(self.config.first_break_secs);
        let interval = self.segs(self.config.break_interval_secs).max(1);
        let len = self.segs(self.config.break_duration_secs);
        let lo = window.start.saturating_sub(len).saturating_sub(first) / interval;
        let hi = window.end.saturating_sub(first) / interval + 1;
        out.push_str(
            "<EventStream schemeIdUri=\"urn:scte:scte35:2014:xml+bin\" timescale=\"1\">\n",
        );
        for k in lo..hi {
            let start = self.break_start(k);
            if start + len < window.start || start >= window.end || start < first {
                continue;
            }
            let _ = writeln!(
                out,
                "<Event presentationTime=\"{}\" duration=\"{}\" id=\"{}\"><scte35:Signal><scte35:Binary>{}</scte35:Binary></scte35:Signal></Event>",
                start * SEGMENT_SECS,
                self.config.break_duration_secs,
                self.event_id(k),
                self.out_cue(k).to_base64().unwrap_or_default()
            );
        }
        out.push_str("</EventStream>\n");
    }

    /// Media time (in a track's `timescale`) at which served segment `i` starts, for a track whose loop files
    /// start at `decode_times` as encoded.
    fn track_time(&self, i: u64, timescale: u32, decode_times: &[u64]) -> u64 {
        let k = self.content_file(i);
        ticks_in_timescale(self.decode_offset(i), timescale)
            + decode_times.get(k).copied().unwrap_or(0)
    }

    /// The live DASH MPD of the CMAF packaging at `now` (ISO/IEC 23009-1 live profile, §8.4): one Period from
    /// the epoch; one AdaptationSet per media component (DASH-IF IOP; dash.js plays no muxed
    /// Representation), video (`v0`, `v1`) and audio (`a`), each with an init segment and a SegmentTimeline
    /// of the window's segments addressed by `$Number$` (segment `n` plays the same part of the loop as the
    /// HLS playlists' segment `n`), and the same SCTE-35 EventStream as the TS MPD. The times are the served
    /// segments' own `tfdt`s, so the audio segments' few milliseconds off 2 s are exact too. The server's
    /// time is in the MPD (`UTCTiming`, direct scheme): the clock may run faster than real time.
    /// `first_media_time_90k` is the content file 0's earliest video presentation time (90 kHz) as encoded.
    pub fn cmaf_dash_manifest(
        &self,
        now: DateTime<Utc>,
        tracks: &[DashTrack],
        first_media_time_90k: u64,
    ) -> String {
        let window = self.window(now);
        let depth = self.config.window_segments * SEGMENT_SECS;
        let mut out = String::with_capacity(4096);
        let _ = write!(
            out,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" xmlns:scte35=\"http://www.scte.org/schemas/35/2016\" \
             type=\"dynamic\" profiles=\"urn:mpeg:dash:profile:isoff-live:2011\" \
             availabilityStartTime=\"{}\" publishTime=\"{}\" minimumUpdatePeriod=\"PT{SEGMENT_SECS}S\" \
             timeShiftBufferDepth=\"PT{depth}S\" suggestedPresentationDelay=\"PT{}S\" minBufferTime=\"PT{SEGMENT_SECS}S\">\n\
             <Period id=\"p0\" start=\"PT0S\">\n",
            iso(self.config.epoch),
            iso(self.pdt(window.end)),
            SEGMENT_SECS * 3,
        );
        self.write_event_stream(&mut out, &window);
        for (set, content_type) in ["video", "audio"].into_iter().enumerate() {
            let group: Vec<&DashTrack> = tracks
                .iter()
                .filter(|t| t.content_type == content_type)
                .collect();
            let Some(first) = group.first() else { continue };
            let timescale = first.track.timescale;
            let _ = writeln!(
                out,
                "<AdaptationSet id=\"{set}\" contentType=\"{content_type}\" mimeType=\"{content_type}/mp4\" codecs=\"{}\" segmentAlignment=\"true\" startWithSAP=\"1\">",
                first.codecs
            );
            let pto = ticks_in_timescale(self.decode_offset(0) + first_media_time_90k, timescale);
            let _ = write!(
                out,
                "<SegmentTemplate timescale=\"{timescale}\" startNumber=\"{}\" presentationTimeOffset=\"{pto}\" initialization=\"dash/$RepresentationID$/init.mp4\" media=\"dash/$RepresentationID$/$Number$.m4s\">\n<SegmentTimeline>",
                window.start
            );
            // Runs of equal durations as one S with a repeat count.
            let mut run: Option<(u64, u64, u64)> = None; // (t, d, r)
            for i in window.clone() {
                let t = self.track_time(i, timescale, &first.decode_times);
                let d = self
                    .track_time(i + 1, timescale, &first.decode_times)
                    .saturating_sub(t);
                run = match run {
                    Some((t0, d0, r)) if d0 == d => Some((t0, d0, r + 1)),
                    Some((t0, d0, r)) => {
                        write_s(&mut out, t0, d0, r);
                        Some((t, d, 0))
                    }
                    None => Some((t, d, 0)),
                };
            }
            if let Some((t, d, r)) = run {
                write_s(&mut out, t, d, r);
            }
            out.push_str("</SegmentTimeline>\n</SegmentTemplate>\n");
            for t in &group {
                let _ = match t.size {
                    Some((width, height)) => writeln!(
                        out,
                        "<Representation id=\"{}\" bandwidth=\"{}\" width=\"{width}\" height=\"{height}\" frameRate=\"25\"/>",
                        t.id, t.bandwidth
                    ),
                    None => writeln!(
                        out,
                        "<Representation id=\"{}\" bandwidth=\"{}\" audioSamplingRate=\"{}\"><AudioChannelConfiguration schemeIdUri=\"urn:mpeg:dash:23003:3:audio_channel_configuration:2011\" value=\"1\"/></Representation>",
                        t.id, t.bandwidth, t.track.timescale
                    ),
                };
            }
            out.push_str("</AdaptationSet>\n");
        }
        let _ = write!(
            out,
            "</Period>\n<UTCTiming schemeIdUri=\"urn:mpeg:dash:utc:direct:2014\" value=\"{}\"/>\n</MPD>\n",
            iso(now)
        );
        out
    }

    /// The media playlist of `rendition` at `now`.
    pub fn media_playlist(&self, now: DateTime<Utc>) -> String {
        self.packaged_media_playlist(now, Packaging::Ts)
    }

    /// The media playlist at `now` for `packaging`: the same segments, times and markers either way; CMAF
    /// adds the init segment (`EXT-X-MAP`, which needs compatibility version 6, RFC 8216bis §4.4.4.5 and
    /// §8) and names segments `{i}.m4s`.
    pub fn packaged_media_playlist(&self, now: DateTime<Utc>, packaging: Packaging) -> String {
        let window = self.window(now);
        let mut out = String::with_capacity(1024);
        let version = match packaging {
            Packaging::Ts => 3,
            Packaging::Cmaf => 6,
        };
        let _ = write!(
            out,
            "#EXTM3U\n#EXT-X-VERSION:{version}\n#EXT-X-TARGETDURATION:{SEGMENT_SECS}\n#EXT-X-MEDIA-SEQUENCE:{}\n",
            window.start
        );
        if packaging == Packaging::Cmaf {
            out.push_str("#EXT-X-MAP:URI=\"init.mp4\"\n");
        }
        let ext = packaging.extension();
        for i in window {
            self.write_markers(&mut out, i);
            let _ = write!(
                out,
                "#EXT-X-PROGRAM-DATE-TIME:{}\n#EXTINF:{SEGMENT_SECS}.000,\n{i}.{ext}\n",
                iso(self.pdt(i))
            );
        }
        out
    }

    fn write_markers(&self, out: &mut String, i: u64) {
        let duration = self.config.break_duration_secs;
        // The builders only produce encodable sections; an encoding error would be a bug in them.
        let b64 = |s: SpliceInfoSection| s.to_base64().unwrap_or_default();
        let hex = |s: SpliceInfoSection| s.to_hex().unwrap_or_default();
        match (self.position(i), self.config.dialect) {
            (Position::Content, _) => {}
            (Position::InBreak { k: _, offset: 0 }, MarkerDialect::CueOut) => {
                let _ = writeln!(out, "#EXT-X-CUE-OUT:DURATION={duration}.000");
            }
            (Position::InBreak { k, offset }, MarkerDialect::CueOut) => {
                let _ = writeln!(
                    out,
                    "#EXT-X-CUE-OUT-CONT:ElapsedTime={}.000,Duration={duration}.000,SCTE35={}",
                    offset * SEGMENT_SECS,
                    b64(self.out_cue(k))
                );
            }
            (Position::InBreak { k, offset: 0 }, MarkerDialect::Oatcls) => {
                let _ = write!(
                    out,
                    "#EXT-OATCLS-SCTE35:{}\n#EXT-X-ASSET:CAID=0x{:08X}\n#EXT-X-CUE-OUT:{duration}.000\n",
                    b64(self.out_cue(k)),
                    self.event_id(k)
                );
            }
            (Position::InBreak { offset, .. }, MarkerDialect::Oatcls) => {
                let _ = writeln!(
                    out,
                    "#EXT-X-CUE-OUT-CONT:{}.000/{duration}",
                    offset * SEGMENT_SECS
                );
            }
            (Position::AfterBreak { .. }, MarkerDialect::CueOut | MarkerDialect::Oatcls) => {
                out.push_str("#EXT-X-CUE-IN\n");
            }
            (Position::InBreak { k, offset: 0 }, MarkerDialect::Daterange) => {
                let _ = writeln!(
                    out,
                    "#EXT-X-DATERANGE:ID=\"splice-{}\",START-DATE=\"{}\",PLANNED-DURATION={duration}.000,SCTE35-OUT={}",
                    self.event_id(k),
                    iso(self.pdt(i)),
                    hex(self.out_cue(k))
                );
            }
            (Position::InBreak { .. }, MarkerDialect::Daterange) => {}
            (Position::AfterBreak { k }, MarkerDialect::Daterange) => {
                let _ = writeln!(
                    out,
                    "#EXT-X-DATERANGE:ID=\"splice-{}\",START-DATE=\"{}\",END-DATE=\"{}\",DURATION={duration}.000,SCTE35-IN={}",
                    self.event_id(k),
                    iso(self.pdt(self.break_start(k))),
                    iso(self.pdt(i)),
                    hex(self.in_cue(k))
                );
            }
        }
    }
}

/// A SegmentTimeline entry: `r` repeats after the first.
fn write_s(out: &mut String, t: u64, d: u64, r: u64) {
    let _ = if r == 0 {
        write!(out, "<S t=\"{t}\" d=\"{d}\"/>")
    } else {
        write!(out, "<S t=\"{t}\" d=\"{d}\" r=\"{r}\"/>")
    };
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}
