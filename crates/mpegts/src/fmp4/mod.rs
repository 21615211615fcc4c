//! Reading and shifting the timestamps of fragmented MP4 (CMAF) media segments, ISO/IEC 14496-12 §8.8.
//!
//! An fMP4 stream is an init segment (`ftyp` + `moov`: the tracks, each with its timescale in `mdhd`, §8.4.2)
//! and media segments of movie fragments (`moof` + `mdat`). A fragment's timing is one number per track: the
//! `tfdt` box's baseMediaDecodeTime (§8.8.12), the decode time of the fragment's first sample in the track's
//! timescale; every later sample's time follows from the `trun` durations. Shifting a segment in time is thus
//! adding a per-track constant to each `traf/tfdt`, and renumbering is rewriting `mfhd`'s sequence_number
//! (§8.8.5), which must increase from fragment to fragment of a track.
//!
//! The origin simulator uses this so its looped content plays as one live stream, as it uses
//! [`shift_timestamps`](crate::shift_timestamps) for TS. Input is untrusted: boxes are bounds-checked and a
//! malformed segment is an [`Fmp4Error`], never a panic. Only the timing fields change, in place: box sizes
//! never do, so `trun` data offsets stay valid.

mod retime;
mod track;

pub use retime::{first_presentation_times, rewrite_decode_times, truncate};
pub use track::{SingleTrack, TRACK_ID, TrackSelector};

/// Why an fMP4 segment could not be read or shifted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Fmp4Error {
    /// A box header or body runs past its parent.
    #[error("box {kind:?} at byte {offset} is truncated or overruns its parent")]
    Truncated {
        /// The box type (`????` when even the header is cut).
        kind: String,
        /// Its offset in the input.
        offset: usize,
    },
    /// The init segment has no `moov`, or a track lacks `tkhd` or `mdhd`.
    #[error("init segment: {0}")]
    NoTracks(&'static str),
    /// A fragment names a track the init segment does not have.
    #[error("fragment of track {0}, which the init segment does not describe")]
    UnknownTrack(u32),
    /// A `traf` has no `tfhd` (§8.8.7 makes it mandatory).
    #[error("track fragment without tfhd at byte {0}")]
    NoTrackHeader(usize),
    /// No track matches what was asked for (in the init segment, or in any fragment of a media segment).
    #[error("no {0}")]
    NoSuchTrack(String),
    /// Valid input this code does not handle.
    #[error("not supported: {0}")]
    Unsupported(&'static str),
    /// The shifted decode time does not fit the `tfdt` field (version 0 holds 32 bits).
    #[error("track {track}: decode time {value} + {shift} does not fit tfdt version {version}")]
    DecodeTimeOverflow {
        /// The track.
        track: u32,
        /// The decode time as found.
        value: u64,
        /// What was to be added.
        shift: u64,
        /// The `tfdt` version.
        version: u8,
    },
}

/// One track of an init segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Track {
    /// `tkhd` track_ID.
    pub id: u32,
    /// `mdhd` timescale: ticks per second of the track's decode times.
    pub timescale: u32,
    /// `hdlr` handler_type: `vide`, `soun`, …
    pub handler: [u8; 4],
}

/// What a media segment needs from its init segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitSegment {
    /// The tracks, in `moov` order.
    pub tracks: Vec<Track>,
}

impl InitSegment {
    /// Reads the tracks of an init segment (`moov/trak/{tkhd, mdia/{mdhd, hdlr}}`).
    pub fn parse(init: &[u8]) -> Result<InitSegment, Fmp4Error> {
        let moov = boxes(init, 0)
            .find(|b| !matches!(b, Ok(b) if &b.kind != b"moov"))
            .ok_or(Fmp4Error::NoTracks("no moov box"))??;
        let mut tracks = Vec::new();
        for trak in boxes(moov.body(init), moov.body_start) {
            let trak = trak?;
            if &trak.kind != b"trak" {
                continue;
            }
            let mut id = None;
            let mut timescale = None;
            let mut handler = [0; 4];
            for child in boxes(trak.body(init), trak.body_start) {
                let child = child?;
                match &child.kind {
                    // FullBox; version 1 has 64-bit creation and modification times before track_ID.
                    b"tkhd" => {
                        let body = child.body(init);
                        let at = if body.first() == Some(&1) { 20 } else { 12 };
                        id = read_u32(body, at);
                    }
                    b"mdia" => {
                        for m in boxes(child.body(init), child.body_start) {
                            let m = m?;
                            let body = m.body(init);
                            match &m.kind {
                                b"mdhd" => {
                                    let at = if body.first() == Some(&1) { 20 } else { 12 };
                                    timescale = read_u32(body, at);
                                }
                                b"hdlr" => {
                                    if let Some(h) = body.get(8..12) {
                                        handler.copy_from_slice(h);
                                    }
                                }
                                _ => {}
                            }
                        }
                    }
                    _ => {}
                }
            }
            match (id, timescale) {
                (Some(id), Some(timescale)) if timescale > 0 => tracks.push(Track {
                    id,
                    timescale,
                    handler,
                }),
                _ => {
                    return Err(Fmp4Error::NoTracks(
                        "a trak lacks tkhd or a non-zero mdhd timescale",
                    ));
                }
            }
        }
        if tracks.is_empty() {
            return Err(Fmp4Error::NoTracks("moov has no trak"));
        }
        Ok(InitSegment { tracks })
    }

    /// The track with `id`.
    pub fn track(&self, id: u32) -> Option<&Track> {
        self.tracks.iter().find(|t| t.id == id)
    }
}

/// A box header: where it is and what it holds.
#[derive(Debug, Clone, Copy)]
struct BoxRef {
    kind: [u8; 4],
    /// Offset of the header in the whole input.
    start: usize,
    /// Offset of the body in the whole input.
    body_start: usize,
    /// Offset just past the box in the whole input.
    end: usize,
}

impl BoxRef {
    /// The body, given the whole input the offsets index into.
    fn body<'a>(&self, all: &'a [u8]) -> &'a [u8] {
        all.get(self.body_start..self.end).unwrap_or_default()
    }
}

/// The boxes laid end to end in `data`, which starts at `base` in the whole input (§4.2: 32-bit size, or 1 and a
/// 64-bit largesize, or 0 for "to the end").
fn boxes(data: &[u8], base: usize) -> impl Iterator<Item = Result<BoxRef, Fmp4Error>> + '_ {
    let mut at = 0usize;
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || at >= data.len() {
            return None;
        }
        let here = at;
        let truncated = |kind: &[u8]| Fmp4Error::Truncated {
            kind: String::from_utf8_lossy(kind).into_owned(),
            offset: base + here,
        };
        let result = (|| {
            let header = data.get(here..here + 8).ok_or_else(|| truncated(b"????"))?;
            let mut kind = [0; 4];
            kind.copy_from_slice(&header[4..8]);
            let size32 = u64::from(u32::from_be_bytes([
                header[0], header[1], header[2], header[3],
            ]));
            let (size, header_len) = match size32 {
                0 => ((data.len() - here) as u64, 8),
                1 => {
                    let large = data
                        .get(here + 8..here + 16)
                        .ok_or_else(|| truncated(&kind))?;
                    let mut b = [0; 8];
                    b.copy_from_slice(large);
                    (u64::from_be_bytes(b), 16)
                }
                n => (n, 8),
            };
            let size = usize::try_from(size).map_err(|_| truncated(&kind))?;
            if size < header_len || size > data.len() - here {
                return Err(truncated(&kind));
            }
            Ok(BoxRef {
                kind,
                start: base + here,
                body_start: base + here + header_len,
                end: base + here + size,
            })
        })();
        if let Ok(b) = &result {
            at = b.end - base;
        }
        failed = result.is_err();
        Some(result)
    })
}

fn read_u32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + 4)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn read_u64(b: &[u8], at: usize) -> Option<u64> {
    let s = b.get(at..at + 8)?;
    let mut a = [0; 8];
    a.copy_from_slice(s);
    Some(u64::from_be_bytes(a))
}

/// `offset` 90 kHz ticks in a track's timescale, rounded down (exact for whole milliseconds at the usual
/// timescales: 90000, 48000, 44100 per 10 ms, 12800, 1000).
pub fn ticks_in_timescale(offset_90k: u64, timescale: u32) -> u64 {
    let t = u128::from(offset_90k) * u128::from(timescale) / 90_000;
    u64::try_from(t).unwrap_or(u64::MAX)
}

/// A `tfdt` found in a media segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeTime {
    /// The track (`tfhd` track_ID).
    pub track: u32,
    /// baseMediaDecodeTime, in the track's timescale.
    pub base_media_decode_time: u64,
    /// `tfdt` version (0: 32-bit field, 1: 64-bit).
    pub version: u8,
    /// Offset of the field in the segment.
    field: usize,
}

/// The timing fields of a media segment.
struct Fragments {
    /// Every `moof/traf`'s `tfdt` (`None` when the fragment has none), in order.
    times: Vec<Option<DecodeTime>>,
    /// Offsets of the `mfhd` sequence_number fields.
    sequence_fields: Vec<usize>,
    /// Each top-level `sidx` (§8.16.3): its timescale, and its earliest_presentation_time as a decode time of
    /// its reference track.
    sidx: Vec<(u32, DecodeTime)>,
}

fn fragments(segment: &[u8]) -> Result<Fragments, Fmp4Error> {
    let mut times = Vec::new();
    let mut sequence_fields = Vec::new();
    let mut sidx = Vec::new();
    for moof in boxes(segment, 0) {
        let moof = moof?;
        if &moof.kind == b"sidx" {
            // FullBox header, reference_ID, timescale, then earliest_presentation_time (32 or 64 bits).
            let body = moof.body(segment);
            let version = body.first().copied().unwrap_or(0);
            let time = if version == 1 {
                read_u64(body, 12)
            } else {
                read_u32(body, 12).map(u64::from)
            };
            let (Some(track), Some(timescale), Some(time)) =
                (read_u32(body, 4), read_u32(body, 8), time)
            else {
                return Err(Fmp4Error::Truncated {
                    kind: "sidx".into(),
                    offset: moof.start,
                });
            };
            sidx.push((
                timescale,
                DecodeTime {
                    track,
                    base_media_decode_time: time,
                    version,
                    field: moof.body_start + 12,
                },
            ));
            continue;
        }
        if &moof.kind != b"moof" {
            continue;
        }
        for child in boxes(moof.body(segment), moof.body_start) {
            let child = child?;
            match &child.kind {
                // FullBox header (version, flags), then sequence_number.
                b"mfhd" if child.end - child.body_start >= 8 => {
                    sequence_fields.push(child.body_start + 4);
                }
                b"traf" => {
                    let mut track = None;
                    let mut tfdt = None;
                    for t in boxes(child.body(segment), child.body_start) {
                        let t = t?;
                        let body = t.body(segment);
                        match &t.kind {
                            b"tfhd" => track = read_u32(body, 4),
                            b"tfdt" => {
                                let version = body.first().copied().unwrap_or(0);
                                let value = if version == 1 {
                                    read_u64(body, 4)
                                } else {
                                    read_u32(body, 4).map(u64::from)
                                };
                                let value = value.ok_or_else(|| Fmp4Error::Truncated {
                                    kind: "tfdt".into(),
                                    offset: t.start,
                                })?;
                                tfdt = Some((version, value, t.body_start + 4));
                            }
                            _ => {}
                        }
                    }
                    let track = track.ok_or(Fmp4Error::NoTrackHeader(child.start))?;
                    times.push(tfdt.map(|(version, value, field)| DecodeTime {
                        track,
                        base_media_decode_time: value,
                        version,
                        field,
                    }));
                }
                _ => {}
            }
        }
    }
    Ok(Fragments {
        times,
        sequence_fields,
        sidx,
    })
}

/// The `tfdt` decode times of `segment`, one per track fragment that has one, in order.
pub fn decode_times(segment: &[u8]) -> Result<Vec<DecodeTime>, Fmp4Error> {
    Ok(fragments(segment)?.times.into_iter().flatten().collect())
}

/// Adds `offset_90k` (90 kHz ticks, converted to each track's timescale from `init`) to every `traf/tfdt` of
/// `segment` and to the earliest_presentation_time of every `sidx` (in its own timescale), in place, and when `sequence_number` is given numbers the segment's fragments from it (`mfhd`,
/// one per `moof`). Checks everything before writing anything: on an error the segment is unchanged.
///
/// A version 0 `tfdt` whose shifted value does not fit 32 bits is an error rather than an upgrade to
/// version 1, which would grow the box and move every `trun` data offset.
pub fn shift_decode_times(
    segment: &mut [u8],
    init: &InitSegment,
    offset_90k: u64,
    sequence_number: Option<u32>,
) -> Result<(), Fmp4Error> {
    let Fragments {
        times,
        sequence_fields,
        sidx,
    } = fragments(segment)?;
    let mut writes = Vec::with_capacity(times.len() + sidx.len());
    let tracks = times.into_iter().flatten().map(|t| {
        init.track(t.track)
            .map(|track| (track.timescale, t))
            .ok_or(Fmp4Error::UnknownTrack(t.track))
    });
    // The segment index's times move with the media's (in its own timescale), or a player that reads it
    // would look for the media where it no longer is.
    for timed in tracks.chain(sidx.into_iter().map(Ok)) {
        let (timescale, t) = timed?;
        let shift = ticks_in_timescale(offset_90k, timescale);
        let overflow = || Fmp4Error::DecodeTimeOverflow {
            track: t.track,
            value: t.base_media_decode_time,
            shift,
            version: t.version,
        };
        let value = t
            .base_media_decode_time
            .checked_add(shift)
            .ok_or_else(overflow)?;
        if t.version != 1 && value > u64::from(u32::MAX) {
            return Err(overflow());
        }
        writes.push((t.field, t.version, value));
    }
    write_decode_times(segment, writes);
    if let Some(first) = sequence_number {
        for (i, field) in sequence_fields.into_iter().enumerate() {
            let n = first.wrapping_add(i as u32);
            if let Some(b) = segment.get_mut(field..field + 4) {
                b.copy_from_slice(&n.to_be_bytes());
            }
        }
    }
    Ok(())
}

/// The `mfhd` sequence numbers of `segment`, one per `moof`.
pub fn sequence_numbers(segment: &[u8]) -> Result<Vec<u32>, Fmp4Error> {
    Ok(fragments(segment)?
        .sequence_fields
        .into_iter()
        .filter_map(|at| read_u32(segment, at))
        .collect())
}

/// Writes checked decode times back: each (field offset, box version, value) as 64 bits for a version-1 box,
/// else 32 (the caller has refused values over `u32::MAX` for those). The offsets were bounds-checked when the
/// boxes were read.
pub(crate) fn write_decode_times(segment: &mut [u8], writes: Vec<(usize, u8, u64)>) {
    for (field, version, value) in writes {
        if version == 1 {
            if let Some(b) = segment.get_mut(field..field + 8) {
                b.copy_from_slice(&value.to_be_bytes());
            }
        } else if let Some(b) = segment.get_mut(field..field + 4) {
            b.copy_from_slice(&(value as u32).to_be_bytes());
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const INIT: &[u8] = include_bytes!("../../../../assets/cmaf/content/r0/init.mp4");
    const SEG: &[u8] = include_bytes!("../../../../assets/cmaf/content/r0/001.m4s");

    fn make_box(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let size = u32::try_from(8 + body.len()).unwrap();
        [&size.to_be_bytes()[..], kind, body].concat()
    }

    #[test]
    fn the_init_segment_names_both_tracks_and_their_timescales() {
        let init = InitSegment::parse(INIT).unwrap();
        assert_eq!(
            init.tracks,
            vec![
                Track {
                    id: 1,
                    timescale: 12_800,
                    handler: *b"vide"
                },
                Track {
                    id: 2,
                    timescale: 48_000,
                    handler: *b"soun"
                }
            ]
        );
    }

    #[test]
    fn a_real_segment_is_shifted_per_track_timescale_and_renumbered() {
        let init = InitSegment::parse(INIT).unwrap();
        let before = decode_times(SEG).unwrap();
        assert_eq!(before.len(), 2, "one traf per track");
        let mut shifted = SEG.to_vec();
        // 12 s: 153600 ticks at 12.8 kHz, 576000 at 48 kHz.
        shift_decode_times(&mut shifted, &init, 12 * 90_000, Some(77)).unwrap();
        let after = decode_times(&shifted).unwrap();
        for (b, a) in before.iter().zip(&after) {
            let expected = if b.track == 1 { 153_600 } else { 576_000 };
            assert_eq!(
                a.base_media_decode_time - b.base_media_decode_time,
                expected
            );
        }
        assert_eq!(sequence_numbers(&shifted).unwrap(), vec![77]);
        assert_eq!(shifted.len(), SEG.len());
        let changed = SEG.iter().zip(&shifted).filter(|(a, b)| a != b).count();
        assert!(
            changed <= 8 + 8 + 4,
            "only timing fields change: {changed} bytes"
        );
    }

    #[test]
    fn a_version_0_tfdt_that_would_overflow_is_refused_and_nothing_is_written() {
        let tfhd = make_box(b"tfhd", &[0, 0, 0, 0, 0, 0, 0, 1]);
        let tfdt = make_box(b"tfdt", &[0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0x00]);
        let traf = make_box(b"traf", &[tfhd, tfdt].concat());
        let mfhd = make_box(b"mfhd", &[0, 0, 0, 0, 0, 0, 0, 5]);
        let mut moof = make_box(b"moof", &[mfhd, traf].concat());
        let original = moof.clone();
        let init = InitSegment {
            tracks: vec![Track {
                id: 1,
                timescale: 90_000,
                handler: *b"vide",
            }],
        };
        let err = shift_decode_times(&mut moof, &init, 0x100, Some(9)).unwrap_err();
        assert!(matches!(
            err,
            Fmp4Error::DecodeTimeOverflow { version: 0, .. }
        ));
        assert_eq!(moof, original);
        shift_decode_times(&mut moof, &init, 0xFF, Some(9)).unwrap();
        assert_eq!(
            decode_times(&moof).unwrap()[0].base_media_decode_time,
            0xFFFF_FFFF
        );
        assert_eq!(sequence_numbers(&moof).unwrap(), vec![9]);
    }

    #[test]
    fn a_fragment_of_an_unknown_track_is_an_error() {
        let init = InitSegment {
            tracks: vec![Track {
                id: 7,
                timescale: 1000,
                handler: *b"vide",
            }],
        };
        let mut seg = SEG.to_vec();
        assert_eq!(
            shift_decode_times(&mut seg, &init, 1, None),
            Err(Fmp4Error::UnknownTrack(1))
        );
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        for cut in [1, 7, 8, 100, SEG.len() / 2, SEG.len() - 1] {
            let mut seg = SEG[..cut].to_vec();
            assert!(
                shift_decode_times(&mut seg, &InitSegment::parse(INIT).unwrap(), 1, Some(1))
                    .is_err()
            );
        }
        assert!(InitSegment::parse(&INIT[..INIT.len() - 3]).is_err());
        assert!(InitSegment::parse(b"").is_err());
    }

    #[test]
    fn ticks_convert_exactly_at_common_timescales() {
        assert_eq!(ticks_in_timescale(90_000, 48_000), 48_000);
        assert_eq!(ticks_in_timescale(180_000, 12_800), 25_600);
        assert_eq!(ticks_in_timescale(u64::MAX, u32::MAX), u64::MAX);
    }

    /// Boxes nested as fMP4 nests them, with random sizes and contents, so the walker meets every path.
    fn boxy() -> impl Strategy<Value = Vec<u8>> {
        let leaf = (
            prop::sample::select(vec![
                *b"tfhd", *b"tfdt", *b"mfhd", *b"tkhd", *b"mdhd", *b"hdlr", *b"mdat",
            ]),
            prop::collection::vec(any::<u8>(), 0..24),
        )
            .prop_map(|(k, body)| make_box(&k, &body));
        leaf.prop_recursive(3, 64, 4, |inner| {
            (
                prop::sample::select(vec![*b"moof", *b"traf", *b"moov", *b"trak", *b"mdia"]),
                prop::collection::vec(inner, 0..4),
            )
                .prop_map(|(k, children)| make_box(&k, &children.concat()))
        })
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512), offset: u64) {
            let mut b = bytes.clone();
            let _ = InitSegment::parse(&bytes);
            let _ = decode_times(&bytes);
            let init = InitSegment { tracks: vec![Track { id: 1, timescale: 90_000, handler: *b"vide" }] };
            let _ = shift_decode_times(&mut b, &init, offset, Some(1));
        }

        #[test]
        fn random_box_trees_never_panic_and_a_shift_adds_exactly_or_changes_nothing(
            tree in prop::collection::vec(boxy(), 1..4),
            corrupt in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
        ) {
            let mut bytes = tree.concat();
            for (i, v) in corrupt {
                let at = i.index(bytes.len());
                bytes[at] = v;
            }
            let _ = InitSegment::parse(&bytes);
            let init = InitSegment { tracks: vec![Track { id: 1, timescale: 90_000, handler: *b"vide" }] };
            let original = bytes.clone();
            if shift_decode_times(&mut bytes, &init, 1000, None).is_ok() {
                let shifted = decode_times(&bytes).unwrap();
                for (a, b) in decode_times(&original).unwrap().iter().zip(&shifted) {
                    prop_assert_eq!(a.base_media_decode_time + 1000, b.base_media_decode_time);
                }
            } else {
                prop_assert_eq!(&bytes, &original);
            }
        }
    }
}
