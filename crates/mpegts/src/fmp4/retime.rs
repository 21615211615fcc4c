//! Moving a media segment to another place in time per track, and cutting it short: what the stitcher's proxy
//! mode does to an fMP4 ad or slate so that its timestamps continue the content's (players and decoders that
//! ignore `EXT-X-DISCONTINUITY`, such as ffmpeg's HLS demuxer, then play the break without a jump back).
//!
//! Cutting lowers each `trun`'s sample_count (ISO/IEC 14496-12 §8.8.8) to the samples that start before the
//! cut; the `mdat` keeps the dropped samples' bytes, which nothing then references, so no offset changes.

use super::{Fmp4Error, InitSegment, boxes, fragments, read_u32, write_decode_times};

/// Sets every `tfdt` (and `sidx` earliest_presentation_time) of `segment` to `new_time(track_id, old)`, in
/// place; `None` leaves that one unchanged. Checks everything before writing anything.
pub fn rewrite_decode_times(
    segment: &mut [u8],
    new_time: impl Fn(u32, u64) -> Option<u64>,
) -> Result<(), Fmp4Error> {
    let found = fragments(segment)?;
    let mut writes = Vec::new();
    for t in found
        .times
        .into_iter()
        .flatten()
        .chain(found.sidx.into_iter().map(|(_, t)| t))
    {
        let Some(value) = new_time(t.track, t.base_media_decode_time) else {
            continue;
        };
        if t.version != 1 && value > u64::from(u32::MAX) {
            return Err(Fmp4Error::DecodeTimeOverflow {
                track: t.track,
                value: t.base_media_decode_time,
                shift: value.saturating_sub(t.base_media_decode_time),
                version: t.version,
            });
        }
        writes.push((t.field, t.version, value));
    }
    write_decode_times(segment, writes);
    Ok(())
}

/// Each track fragment's earliest presentation time as (track, `tfdt` + the first sample's composition offset
/// from its `trun`, §8.8.8), in the track's timescale: where a fragment with B-frames starts on screen, two
/// frames or so after its first decode time. A fragment without composition offsets starts at its `tfdt`.
pub fn first_presentation_times(segment: &[u8]) -> Result<Vec<(u32, u64)>, Fmp4Error> {
    let mut out = Vec::new();
    for moof in boxes(segment, 0) {
        let moof = moof?;
        if &moof.kind != b"moof" {
            continue;
        }
        for traf in boxes(moof.body(segment), moof.body_start) {
            let traf = traf?;
            if &traf.kind != b"traf" {
                continue;
            }
            let mut track = None;
            let mut decode = None;
            let mut offset: i64 = 0;
            let mut seen_trun = false;
            for child in boxes(traf.body(segment), traf.body_start) {
                let child = child?;
                let body = child.body(segment);
                match &child.kind {
                    b"tfhd" => track = read_u32(body, 4),
                    b"tfdt" => {
                        decode = if body.first() == Some(&1) {
                            super::read_u64(body, 4)
                        } else {
                            read_u32(body, 4).map(u64::from)
                        }
                    }
                    b"trun" if !seen_trun => {
                        seen_trun = true;
                        let Some(vf) = read_u32(body, 0) else {
                            continue;
                        };
                        let flags = vf & 0x00FF_FFFF;
                        if flags & 0x800 == 0 || read_u32(body, 4).unwrap_or(0) == 0 {
                            continue;
                        }
                        let mut at = 8;
                        for f in [0x01, 0x04, 0x100, 0x200, 0x400] {
                            if flags & f != 0 {
                                at += 4;
                            }
                        }
                        let raw = read_u32(body, at).ok_or(Fmp4Error::Truncated {
                            kind: "trun".into(),
                            offset: child.start,
                        })?;
                        // Version 1 offsets are signed.
                        offset = if vf >> 24 == 1 {
                            i64::from(raw as i32)
                        } else {
                            i64::from(raw)
                        };
                    }
                    _ => {}
                }
            }
            if let (Some(track), Some(decode)) = (track, decode) {
                out.push((track, decode.saturating_add_signed(offset)));
            }
        }
    }
    Ok(out)
}

/// `segment` cut to its first `duration_90k` (90 kHz ticks): in each track fragment, the samples that start
/// that long or later after the fragment's start are dropped from its `trun`s. Exact when the video has no
/// B-frames (decode order is then display order; our slate is encoded so). Sample durations come from the
/// `trun` or the `tfhd` default; a fragment with neither is an error.
pub fn truncate(
    segment: &[u8],
    init: &InitSegment,
    duration_90k: u64,
) -> Result<Vec<u8>, Fmp4Error> {
    let mut out = segment.to_vec();
    // (offset of a trun's sample_count, new count)
    let mut counts = Vec::new();
    let truncated = |kind: &str, offset: usize| Fmp4Error::Truncated {
        kind: kind.into(),
        offset,
    };
    for moof in boxes(segment, 0) {
        let moof = moof?;
        if &moof.kind != b"moof" {
            continue;
        }
        for traf in boxes(moof.body(segment), moof.body_start) {
            let traf = traf?;
            if &traf.kind != b"traf" {
                continue;
            }
            let mut default_duration = None;
            let mut cut = None;
            let mut elapsed = 0u64;
            for child in boxes(traf.body(segment), traf.body_start) {
                let child = child?;
                let body = child.body(segment);
                let flags = read_u32(body, 0).map(|v| v & 0x00FF_FFFF);
                match &child.kind {
                    b"tfhd" => {
                        let flags = flags.ok_or_else(|| truncated("tfhd", child.start))?;
                        let track =
                            read_u32(body, 4).ok_or_else(|| truncated("tfhd", child.start))?;
                        let timescale = init
                            .track(track)
                            .ok_or(Fmp4Error::UnknownTrack(track))?
                            .timescale;
                        cut = Some(super::ticks_in_timescale(duration_90k, timescale));
                        // track_ID, then the optional fields in flag order (§8.8.7.1).
                        let mut at = 8;
                        if flags & 0x01 != 0 {
                            at += 8;
                        }
                        if flags & 0x02 != 0 {
                            at += 4;
                        }
                        if flags & 0x08 != 0 {
                            default_duration = read_u32(body, at);
                        }
                    }
                    b"trun" => {
                        let flags = flags.ok_or_else(|| truncated("trun", child.start))?;
                        let count =
                            read_u32(body, 4).ok_or_else(|| truncated("trun", child.start))?;
                        let cut = cut.ok_or(Fmp4Error::NoTrackHeader(traf.start))?;
                        let mut at = 8;
                        if flags & 0x01 != 0 {
                            at += 4;
                        }
                        if flags & 0x04 != 0 {
                            at += 4;
                        }
                        let per_sample = [0x100, 0x200, 0x400, 0x800]
                            .iter()
                            .filter(|f| flags & **f != 0)
                            .count()
                            * 4;
                        let mut kept = 0u32;
                        for i in 0..count {
                            if elapsed >= cut {
                                break;
                            }
                            let duration = if flags & 0x100 != 0 {
                                read_u32(body, at + i as usize * per_sample)
                            } else {
                                default_duration
                            }
                            .ok_or_else(|| truncated("trun", child.start))?;
                            elapsed += u64::from(duration);
                            kept += 1;
                        }
                        counts.push((child.body_start + 4, kept));
                    }
                    _ => {}
                }
            }
        }
    }
    for (field, count) in counts {
        if let Some(b) = out.get_mut(field..field + 4) {
            b.copy_from_slice(&count.to_be_bytes());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::decode_times;
    use super::*;
    use proptest::prelude::*;

    const INIT: &[u8] = include_bytes!("../../../../assets/cmaf/slate/r0/init.mp4");
    const SLATE: &[u8] = include_bytes!("../../../../assets/cmaf/slate/r0/000.m4s");

    #[test]
    fn decode_times_are_set_per_track() {
        let mut seg = SLATE.to_vec();
        rewrite_decode_times(&mut seg, |track, old| Some(old + u64::from(track) * 1000)).unwrap();
        for (b, a) in decode_times(SLATE)
            .unwrap()
            .iter()
            .zip(decode_times(&seg).unwrap())
        {
            assert_eq!(
                a.base_media_decode_time,
                b.base_media_decode_time + u64::from(b.track) * 1000
            );
        }
        let mut same = SLATE.to_vec();
        rewrite_decode_times(&mut same, |_, _| None).unwrap();
        assert_eq!(same, SLATE);
    }

    #[test]
    fn b_frames_start_on_screen_after_their_first_decode_time() {
        let ad: &[u8] = include_bytes!("../../../../assets/cmaf/ads/ad15/r0/001.m4s");
        let decode = decode_times(ad).unwrap();
        let shown = first_presentation_times(ad).unwrap();
        // Video (track 1) has B-frames: shown two frames (2 × 512 ticks at 12.8 kHz) after decode; audio not.
        assert_eq!(shown[0], (1, decode[0].base_media_decode_time + 1024));
        assert_eq!(shown[1], (2, decode[1].base_media_decode_time));
        // The slate has no B-frames.
        let slate = first_presentation_times(SLATE).unwrap();
        assert_eq!(
            slate[0].1,
            decode_times(SLATE).unwrap()[0].base_media_decode_time
        );
    }

    #[test]
    fn a_cut_slate_keeps_one_second_of_samples() {
        let init = InitSegment::parse(INIT).unwrap();
        let cut = truncate(SLATE, &init, 90_000).unwrap();
        assert_eq!(cut.len(), SLATE.len(), "only sample counts change");
        assert_ne!(cut, SLATE);
        // 25 video frames (1 s at 25 fps) and 47 AAC frames (1024 samples at 48 kHz: 46.9 per second).
        let counts = |seg: &[u8]| -> Vec<u32> {
            let mut out = Vec::new();
            for moof in boxes(seg, 0).flatten().filter(|b| &b.kind == b"moof") {
                for traf in boxes(moof.body(seg), moof.body_start).flatten() {
                    for trun in boxes(traf.body(seg), traf.body_start)
                        .flatten()
                        .filter(|b| &b.kind == b"trun")
                    {
                        out.push(read_u32(trun.body(seg), 4).unwrap());
                    }
                }
            }
            out
        };
        assert_eq!(counts(&cut), vec![25, 47]);
        assert_eq!(
            truncate(SLATE, &init, 10 * 90_000).unwrap(),
            SLATE,
            "a cut past the end keeps all"
        );
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512), d: u64) {
            let init = InitSegment::parse(INIT).unwrap();
            let _ = truncate(&bytes, &init, d);
            let _ = first_presentation_times(&bytes);
            let mut b = bytes.clone();
            let _ = rewrite_decode_times(&mut b, |_, v| v.checked_add(d));
        }

        #[test]
        fn a_corrupted_slate_never_panics(i in any::<prop::sample::Index>(), v: u8, d in 0u64..400_000) {
            let init = InitSegment::parse(INIT).unwrap();
            let mut seg = SLATE.to_vec();
            let at = i.index(seg.len());
            seg[at] = v;
            let _ = truncate(&seg, &init, d);
            let _ = first_presentation_times(&seg);
            let _ = rewrite_decode_times(&mut seg, |_, v| v.checked_add(d));
        }
    }
}
