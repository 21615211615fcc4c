//! One track out of a muxed fMP4 stream: what a DASH player needs when the stream carries audio and video in
//! one file (as CMAF HLS may) but the MPD offers them as separate AdaptationSets (DASH-IF IOP §3.2.1: one
//! media component per AdaptationSet; dash.js plays no muxed Representation).
//!
//! The init segment keeps `ftyp` and, in `moov` (ISO/IEC 14496-12 §8.2.1), everything but the other tracks'
//! `trak`s and their `mvex/trex`es (§8.8.3); the kept track becomes track [`TRACK_ID`] (`tkhd`, `trex`,
//! `tfhd`). A media segment keeps its `styp` and other top-level boxes, and
//! each `moof` keeps `mfhd` and the selected track's `traf` only, followed by a new `mdat` holding just that
//! track's sample bytes, in `trun` order. The `tfhd` is rewritten to default-base-is-moof (§8.8.7.1) without a
//! base_data_offset, and every `trun` gets a data_offset (§8.8.8) into the new `mdat`: whatever addressing
//! the input used (an explicit base_data_offset, default-base-is-moof, or the implicit "after the previous
//! track fragment's data"), the output uses one. `sidx` boxes (§8.16.3) are dropped: their sizes describe the
//! muxed file, and DASH SegmentTemplate addressing does not use them. Track fragments with CENC auxiliary
//! information (`saio`, whose offsets would move) are refused.

use super::{BoxRef, Fmp4Error, InitSegment, boxes, read_u32, read_u64};

/// Which track to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackSelector {
    /// The first track with this `hdlr` handler_type (`vide`, `soun`, …).
    Handler([u8; 4]),
    /// The track with this `tkhd` track_ID.
    Id(u32),
}

impl std::fmt::Display for TrackSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrackSelector::Handler(h) => write!(f, "handler {:?}", String::from_utf8_lossy(h)),
            TrackSelector::Id(id) => write!(f, "track {id}"),
        }
    }
}

/// One track of a muxed fMP4 stream, ready to cut its segments out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SingleTrack {
    /// The track kept, as the muxed init segment describes it (its id there: the output's is [`TRACK_ID`]).
    pub track: super::Track,
    /// The init segment with only that track.
    pub init: Vec<u8>,
    /// `trex` default_sample_size, for track fragments that give sizes neither per sample nor in `tfhd`.
    default_sample_size: Option<u32>,
}

/// The track_ID of the kept track in the output: a single-track file's track is 1, as DASH packagers write
/// them. MSE lets a lone track's ID change from one init segment to the next, but demuxers that read a
/// stream of init and media segments as one file (ffmpeg's) keep the first init segment's IDs.
pub const TRACK_ID: u32 = 1;

fn set_u32(b: &mut [u8], at: usize, value: u32) {
    if let Some(field) = b.get_mut(at..at + 4) {
        field.copy_from_slice(&value.to_be_bytes());
    }
}

fn write_box(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 16);
    match u32::try_from(body.len() + 8) {
        Ok(size) if size > 1 => {
            out.extend_from_slice(&size.to_be_bytes());
            out.extend_from_slice(kind);
        }
        // §4.2: size 1 and a 64-bit largesize.
        _ => {
            out.extend_from_slice(&1u32.to_be_bytes());
            out.extend_from_slice(kind);
            out.extend_from_slice(&((body.len() + 16) as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(body);
    out
}

fn raw<'a>(all: &'a [u8], b: &BoxRef) -> &'a [u8] {
    all.get(b.start..b.end).unwrap_or_default()
}

fn truncated(kind: &str, offset: usize) -> Fmp4Error {
    Fmp4Error::Truncated {
        kind: kind.into(),
        offset,
    }
}

impl SingleTrack {
    /// The track `which` of the muxed init segment `init`.
    ///
    /// # Errors
    /// A malformed init segment, or [`Fmp4Error::NoSuchTrack`] when none matches.
    pub fn new(init: &[u8], which: TrackSelector) -> Result<SingleTrack, Fmp4Error> {
        let parsed = InitSegment::parse(init)?;
        let index = parsed
            .tracks
            .iter()
            .position(|t| match which {
                TrackSelector::Handler(h) => t.handler == h,
                TrackSelector::Id(id) => t.id == id,
            })
            .ok_or_else(|| Fmp4Error::NoSuchTrack(which.to_string()))?;
        let track = parsed.tracks[index];
        let mut out = Vec::with_capacity(init.len());
        let mut default_sample_size = None;
        for top in boxes(init, 0) {
            let top = top?;
            if &top.kind != b"moov" {
                out.extend_from_slice(raw(init, &top));
                continue;
            }
            let mut moov = Vec::with_capacity(top.end - top.start);
            // `InitSegment::parse` found one track per `trak`, in order.
            let mut trak_index = 0;
            for child in boxes(top.body(init), top.body_start) {
                let child = child?;
                match &child.kind {
                    b"trak" => {
                        if trak_index == index {
                            let mut trak = raw(init, &child).to_vec();
                            // tkhd's track_ID (after 64-bit times in version 1), relative to the trak.
                            for b in boxes(child.body(init), child.body_start).flatten() {
                                if &b.kind == b"tkhd" {
                                    let body = b.body(init);
                                    let at = if body.first() == Some(&1) { 20 } else { 12 };
                                    set_u32(&mut trak, b.body_start - child.start + at, TRACK_ID);
                                }
                            }
                            moov.extend_from_slice(&trak);
                        }
                        trak_index += 1;
                    }
                    b"mvex" => {
                        let mut mvex = Vec::new();
                        for m in boxes(child.body(init), child.body_start) {
                            let m = m?;
                            if &m.kind == b"trex" {
                                // FullBox header, track_ID, default sample description index, duration,
                                // size, flags.
                                let body = m.body(init);
                                if read_u32(body, 4) != Some(track.id) {
                                    continue;
                                }
                                default_sample_size = read_u32(body, 16);
                                let mut trex = raw(init, &m).to_vec();
                                set_u32(&mut trex, m.body_start - m.start + 4, TRACK_ID);
                                mvex.extend_from_slice(&trex);
                                continue;
                            }
                            mvex.extend_from_slice(raw(init, &m));
                        }
                        moov.extend_from_slice(&write_box(b"mvex", &mvex));
                    }
                    _ => moov.extend_from_slice(raw(init, &child)),
                }
            }
            out.extend_from_slice(&write_box(b"moov", &moov));
        }
        Ok(SingleTrack {
            track,
            init: out,
            default_sample_size,
        })
    }

    /// `segment` (a media segment of the muxed stream) with only this track: see the [module
    /// documentation](self).
    ///
    /// # Errors
    /// A malformed segment (a sample outside the input, a `trun` shorter than its sample count), a track
    /// fragment with `saio`, or [`Fmp4Error::NoSuchTrack`] when no fragment of the segment has the track.
    pub fn segment(&self, segment: &[u8]) -> Result<Vec<u8>, Fmp4Error> {
        let mut out = Vec::with_capacity(segment.len());
        let mut fragments = 0;
        for top in boxes(segment, 0) {
            let top = top?;
            match &top.kind {
                // The muxed file's index and sample data: replaced below.
                b"sidx" | b"mdat" => {}
                b"moof" => {
                    if let Some(fragment) = self.fragment(segment, &top)? {
                        out.extend_from_slice(&fragment);
                        fragments += 1;
                    }
                }
                _ => out.extend_from_slice(raw(segment, &top)),
            }
        }
        if fragments == 0 {
            return Err(Fmp4Error::NoSuchTrack(format!(
                "track {} in the media segment",
                self.track.id
            )));
        }
        Ok(out)
    }

    /// One `moof` with only this track's `traf`, then its `mdat`; `None` when the fragment lacks the track.
    fn fragment(&self, segment: &[u8], moof: &BoxRef) -> Result<Option<Vec<u8>>, Fmp4Error> {
        let mut before = Vec::new();
        let mut after = Vec::new();
        let mut kept: Option<Traf> = None;
        // §8.8.7.1: without base_data_offset or default-base-is-moof, a track fragment's data starts where
        // the previous one's ended (the first one's at the moof).
        let mut data_end = moof.start;
        for child in boxes(moof.body(segment), moof.body_start) {
            let child = child?;
            if &child.kind != b"traf" {
                let bytes = raw(segment, &child);
                if kept.is_none() {
                    before.extend_from_slice(bytes);
                } else {
                    after.extend_from_slice(bytes);
                }
                continue;
            }
            let traf = Traf::read(segment, &child, moof.start, data_end, self)?;
            data_end = traf.data_end;
            if traf.track == self.track.id && kept.is_none() {
                kept = Some(traf);
            }
        }
        let Some(traf) = kept else {
            return Ok(None);
        };
        let data: usize = traf.runs.iter().map(|r| r.bytes.len()).sum();
        // The moof's size does not depend on the offsets written into it: build once to size it, then again.
        let sized = traf.write(segment, 0)?;
        let moof_len = write_box(b"moof", &[&before[..], &sized, &after].concat()).len();
        let mdat_header = if u32::try_from(data + 8).is_ok() {
            8
        } else {
            16
        };
        let traf_bytes = traf.write(segment, moof_len + mdat_header)?;
        let mut out = write_box(b"moof", &[&before[..], &traf_bytes, &after].concat());
        let mut mdat = Vec::with_capacity(data);
        for run in &traf.runs {
            mdat.extend_from_slice(run.bytes);
        }
        out.extend_from_slice(&write_box(b"mdat", &mdat));
        Ok(Some(out))
    }
}

/// A `trun` as read: the sample bytes it addresses.
struct Run<'a> {
    bytes: &'a [u8],
}

/// A `traf` as read.
struct Traf<'a> {
    at: BoxRef,
    track: u32,
    runs: Vec<Run<'a>>,
    /// Where the fragment's data ends in the input.
    data_end: usize,
}

impl<'a> Traf<'a> {
    fn read(
        segment: &'a [u8],
        traf: &BoxRef,
        moof_start: usize,
        previous_end: usize,
        single: &SingleTrack,
    ) -> Result<Traf<'a>, Fmp4Error> {
        let mut track = None;
        let mut base = previous_end;
        let mut default_size = single.default_sample_size;
        let mut runs = Vec::new();
        let mut next = None;
        let mut saio = false;
        for child in boxes(traf.body(segment), traf.body_start) {
            let child = child?;
            let body = child.body(segment);
            match &child.kind {
                b"tfhd" => {
                    let flags = read_u32(body, 0).ok_or_else(|| truncated("tfhd", child.start))?
                        & 0x00FF_FFFF;
                    let id = read_u32(body, 4).ok_or_else(|| truncated("tfhd", child.start))?;
                    track = Some(id);
                    let mut at = 8;
                    if flags & 0x01 != 0 {
                        let offset =
                            read_u64(body, at).ok_or_else(|| truncated("tfhd", child.start))?;
                        base = usize::try_from(offset).unwrap_or(usize::MAX);
                        at += 8;
                    } else if flags & 0x02_0000 != 0 {
                        base = moof_start;
                    }
                    if flags & 0x02 != 0 {
                        at += 4;
                    }
                    if flags & 0x08 != 0 {
                        at += 4;
                    }
                    if flags & 0x10 != 0 {
                        default_size =
                            Some(read_u32(body, at).ok_or_else(|| truncated("tfhd", child.start))?);
                    }
                    next = Some(base);
                }
                b"trun" => {
                    let start = next.ok_or(Fmp4Error::NoTrackHeader(traf.start))?;
                    let (data_offset, len) = trun_data(body, default_size)
                        .ok_or_else(|| truncated("trun", child.start))?;
                    // §8.8.8.1: an explicit data_offset is from the base; without one, the run's data
                    // follows the previous run's.
                    let from = match data_offset {
                        Some(o) => base.checked_add_signed(o as isize),
                        None => Some(start),
                    };
                    let bytes = from
                        .and_then(|f| segment.get(f..f.checked_add(len)?).map(|b| (f, b)))
                        .ok_or_else(|| truncated("trun", child.start))?;
                    next = Some(bytes.0 + len);
                    runs.push(Run { bytes: bytes.1 });
                }
                b"saio" => saio = true,
                _ => {}
            }
        }
        let track = track.ok_or(Fmp4Error::NoTrackHeader(traf.start))?;
        if saio && track == single.track.id {
            return Err(Fmp4Error::Unsupported(
                "a track fragment with sample auxiliary information offsets (saio)",
            ));
        }
        Ok(Traf {
            at: *traf,
            track,
            runs,
            data_end: next.unwrap_or(previous_end),
        })
    }

    /// The `traf` with `tfhd` set to default-base-is-moof and each `trun`'s data_offset pointing into an
    /// `mdat` whose data starts `data_start` bytes after the moof's start.
    fn write(&self, segment: &[u8], data_start: usize) -> Result<Vec<u8>, Fmp4Error> {
        let mut body = Vec::with_capacity(self.at.end - self.at.start);
        let mut run = 0;
        let mut offset = data_start;
        for child in boxes(self.at.body(segment), self.at.body_start) {
            let child = child?;
            let b = child.body(segment);
            match &child.kind {
                b"tfhd" => {
                    let vf = read_u32(b, 0).ok_or_else(|| truncated("tfhd", child.start))?;
                    let mut out = ((vf & !0x01) | 0x02_0000).to_be_bytes().to_vec();
                    out.extend_from_slice(&TRACK_ID.to_be_bytes());
                    let rest = if vf & 0x01 != 0 { 16 } else { 8 };
                    out.extend_from_slice(b.get(rest..).unwrap_or_default());
                    body.extend_from_slice(&write_box(b"tfhd", &out));
                }
                b"trun" => {
                    let vf = read_u32(b, 0).ok_or_else(|| truncated("trun", child.start))?;
                    let mut out = (vf | 0x01).to_be_bytes().to_vec();
                    out.extend_from_slice(b.get(4..8).unwrap_or_default());
                    let value = i32::try_from(offset)
                        .map_err(|_| Fmp4Error::Unsupported("a data offset past 2 GiB"))?;
                    out.extend_from_slice(&value.to_be_bytes());
                    let rest = if vf & 0x01 != 0 { 12 } else { 8 };
                    out.extend_from_slice(b.get(rest..).unwrap_or_default());
                    body.extend_from_slice(&write_box(b"trun", &out));
                    offset += self.runs.get(run).map_or(0, |r| r.bytes.len());
                    run += 1;
                }
                _ => body.extend_from_slice(raw(segment, &child)),
            }
        }
        Ok(write_box(b"traf", &body))
    }
}

/// A `trun` body's data_offset (if present) and the bytes of its samples (sizes per sample, else the
/// default); `None` when the body is shorter than its fields or no size is known.
fn trun_data(body: &[u8], default_size: Option<u32>) -> Option<(Option<i32>, usize)> {
    let flags = read_u32(body, 0)? & 0x00FF_FFFF;
    let count = usize::try_from(read_u32(body, 4)?).ok()?;
    let mut at: usize = 8;
    let data_offset = if flags & 0x01 != 0 {
        at += 4;
        Some(read_u32(body, 8)? as i32)
    } else {
        None
    };
    if flags & 0x04 != 0 {
        at += 4;
    }
    let fields = [0x100, 0x200, 0x400, 0x800];
    let per_sample = fields.iter().filter(|f| flags & **f != 0).count() * 4;
    let size_at = if flags & 0x100 != 0 { 4 } else { 0 };
    if body.len() < at.checked_add(count.checked_mul(per_sample)?)? {
        return None;
    }
    let len = if flags & 0x200 != 0 {
        let mut total = 0usize;
        for i in 0..count {
            let size = read_u32(body, at + i * per_sample + size_at)?;
            total = total.checked_add(usize::try_from(size).ok()?)?;
        }
        total
    } else {
        count.checked_mul(usize::try_from(default_size?).ok()?)?
    };
    Some((data_offset, len))
}

#[cfg(test)]
mod tests {
    use super::super::{decode_times, first_presentation_times};
    use super::*;
    use proptest::prelude::*;

    const INIT: &[u8] = include_bytes!("../../../../assets/cmaf/ads/ad15/r0/init.mp4");
    const SEG: &[u8] = include_bytes!("../../../../assets/cmaf/ads/ad15/r0/001.m4s");
    const SLATE_INIT: &[u8] = include_bytes!("../../../../assets/cmaf/slate/r0/init.mp4");
    const SLATE: &[u8] = include_bytes!("../../../../assets/cmaf/slate/r0/000.m4s");

    fn make_box(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        write_box(kind, body)
    }

    /// Every trun's samples as bytes, per track, by following the data offsets of a well-formed segment.
    fn samples(segment: &[u8], init: &[u8], id: u32) -> Vec<u8> {
        let single = SingleTrack::new(init, TrackSelector::Id(id)).unwrap();
        let mut out = Vec::new();
        for moof in boxes(segment, 0).flatten().filter(|b| &b.kind == b"moof") {
            let mut end = moof.start;
            for traf in boxes(moof.body(segment), moof.body_start)
                .flatten()
                .filter(|b| &b.kind == b"traf")
            {
                let t = Traf::read(segment, &traf, moof.start, end, &single).unwrap();
                end = t.data_end;
                if t.track == id {
                    for r in t.runs {
                        out.extend_from_slice(r.bytes);
                    }
                }
            }
        }
        out
    }

    #[test]
    fn the_init_segment_keeps_one_track_and_its_trex() {
        for (selector, id, handler) in [
            (TrackSelector::Handler(*b"vide"), 1, *b"vide"),
            (TrackSelector::Handler(*b"soun"), 2, *b"soun"),
            (TrackSelector::Id(2), 2, *b"soun"),
        ] {
            let single = SingleTrack::new(INIT, selector).unwrap();
            let parsed = InitSegment::parse(&single.init).unwrap();
            assert_eq!(parsed.tracks.len(), 1);
            assert_eq!(parsed.tracks[0].id, TRACK_ID);
            assert_eq!(parsed.tracks[0].handler, handler);
            assert_eq!(single.track.id, id);
            assert_eq!(single.track.timescale, parsed.tracks[0].timescale);
            let moov = boxes(&single.init, 0)
                .flatten()
                .find(|b| &b.kind == b"moov")
                .unwrap();
            let mvex = boxes(moov.body(&single.init), moov.body_start)
                .flatten()
                .find(|b| &b.kind == b"mvex")
                .unwrap();
            let trex: Vec<u32> = boxes(mvex.body(&single.init), mvex.body_start)
                .flatten()
                .filter(|b| &b.kind == b"trex")
                .map(|b| read_u32(b.body(&single.init), 4).unwrap())
                .collect();
            assert_eq!(trex, vec![TRACK_ID]);
        }
        assert_eq!(
            SingleTrack::new(INIT, TrackSelector::Handler(*b"subt")),
            Err(Fmp4Error::NoSuchTrack("handler \"subt\"".into()))
        );
    }

    #[test]
    fn a_segment_keeps_one_track_with_its_samples_times_and_styp() {
        for (init, seg) in [(INIT, SEG), (SLATE_INIT, SLATE)] {
            for id in [1, 2] {
                let single = SingleTrack::new(init, TrackSelector::Id(id)).unwrap();
                let out = single.segment(seg).unwrap();
                let kinds: Vec<[u8; 4]> = boxes(&out, 0).map(|b| b.unwrap().kind).collect();
                assert_eq!(kinds, vec![*b"styp", *b"moof", *b"mdat"]);
                let times = decode_times(&out).unwrap();
                assert_eq!(times.len(), 1);
                assert_eq!(times[0].track, TRACK_ID);
                let original = decode_times(seg).unwrap();
                let same = original.iter().find(|t| t.track == id).unwrap();
                assert_eq!(times[0].base_media_decode_time, same.base_media_decode_time);
                let shown = first_presentation_times(seg).unwrap();
                assert_eq!(
                    first_presentation_times(&out).unwrap(),
                    shown
                        .into_iter()
                        .filter(|(t, _)| *t == id)
                        .map(|(_, at)| (TRACK_ID, at))
                        .collect::<Vec<_>>()
                );
                // The samples the output addresses are the input's, byte for byte, and fill its mdat.
                let wanted = samples(seg, init, id);
                assert_eq!(samples(&out, &single.init, TRACK_ID), wanted);
                let mdat = boxes(&out, 0)
                    .flatten()
                    .find(|b| &b.kind == b"mdat")
                    .unwrap();
                assert_eq!(mdat.body(&out), &wanted[..]);
            }
        }
    }

    /// A two-track fragment without data offsets or default-base-is-moof: the first track fragment names
    /// its base_data_offset, the second's data follows the first's (§8.8.7.1).
    #[test]
    fn implicit_and_explicit_base_offsets_are_followed() {
        let tfhd = |id: u32, base: Option<u64>| {
            let mut b = vec![0, 0, 0, if base.is_some() { 0x11 } else { 0x10 }];
            b.extend_from_slice(&id.to_be_bytes());
            if let Some(base) = base {
                b.extend_from_slice(&base.to_be_bytes());
            }
            b.extend_from_slice(&4u32.to_be_bytes()); // default_sample_size
            make_box(b"tfhd", &b)
        };
        // Two samples per track, 4 bytes each, no per-sample fields, no data offset.
        let trun = make_box(b"trun", &[0, 0, 0, 0, 0, 0, 0, 2]);
        let traf = |id, base| make_box(b"traf", &[tfhd(id, base), trun.clone()].concat());
        let mfhd = make_box(b"mfhd", &[0, 0, 0, 0, 0, 0, 0, 1]);
        let init = |ids: &[u32]| {
            let traks: Vec<u8> = ids
                .iter()
                .map(|id| {
                    let mut tkhd = vec![0; 20];
                    tkhd[12..16].copy_from_slice(&id.to_be_bytes());
                    let mut mdhd = vec![0; 20];
                    mdhd[12..16].copy_from_slice(&1000u32.to_be_bytes());
                    let mdia = make_box(
                        b"mdia",
                        &[make_box(b"mdhd", &mdhd), make_box(b"hdlr", &[0; 12])].concat(),
                    );
                    make_box(b"trak", &[make_box(b"tkhd", &tkhd), mdia].concat())
                })
                .collect::<Vec<Vec<u8>>>()
                .concat();
            make_box(b"moov", &traks)
        };
        let init = init(&[1, 2]);
        let data: Vec<u8> = (0u8..16).collect();
        // Track 1 names its base (the mdat's body, byte 8), track 2 names none: its data follows track 1's.
        let mdat = make_box(b"mdat", &data);
        let moof = make_box(
            b"moof",
            &[mfhd.clone(), traf(1, Some(8)), traf(2, None)].concat(),
        );
        let segment = [mdat.clone(), moof].concat();
        let one = SingleTrack::new(&init, TrackSelector::Id(1)).unwrap();
        let two = SingleTrack::new(&init, TrackSelector::Id(2)).unwrap();
        let out1 = one.segment(&segment).unwrap();
        let out2 = two.segment(&segment).unwrap();
        assert_eq!(samples(&out1, &one.init, TRACK_ID), data[..8].to_vec());
        assert_eq!(samples(&out2, &two.init, TRACK_ID), data[8..].to_vec());
        assert!(two.segment(&mdat).is_err(), "no fragment of the track");
    }

    #[test]
    fn cut_input_is_an_error_not_a_panic() {
        let single = SingleTrack::new(INIT, TrackSelector::Id(1)).unwrap();
        for cut in [0, 1, 7, 8, 100, SEG.len() / 2, SEG.len() - 1] {
            assert!(single.segment(&SEG[..cut]).is_err(), "cut at {cut}");
        }
        for cut in [0, 8, INIT.len() / 2, INIT.len() - 1] {
            assert!(SingleTrack::new(&INIT[..cut], TrackSelector::Id(1)).is_err());
        }
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..1024), id in 0u32..4) {
            let _ = SingleTrack::new(&bytes, TrackSelector::Id(id));
            let single = SingleTrack::new(INIT, TrackSelector::Id(id.clamp(1, 2))).unwrap();
            let _ = single.segment(&bytes);
        }

        #[test]
        fn mutated_segments_and_inits_never_panic(
            changes in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
            id in 1u32..3,
        ) {
            let mut seg = SEG.to_vec();
            let mut init = INIT.to_vec();
            for (i, v) in &changes {
                let at = i.index(seg.len());
                seg[at] = *v;
                let at = i.index(init.len());
                init[at] = *v;
            }
            if let Ok(single) = SingleTrack::new(&init, TrackSelector::Id(id)) {
                let _ = single.segment(&seg);
            }
            let single = SingleTrack::new(INIT, TrackSelector::Id(id)).unwrap();
            if let Ok(out) = single.segment(&seg) {
                // Whatever comes out is itself well-formed enough to extract again.
                let _ = single.segment(&out);
            }
        }
    }
}
