//! AAC frames in the ADTS transport syntax (ISO/IEC 13818-7 §6.2.1 adts_frame, §8.1.2 sampling frequencies):
//! enough to split an audio PES at frame boundaries, time each frame, and make a silent frame like the stream's.

/// One ADTS frame within an elementary stream buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Frame {
    /// Offset of the frame's header in the buffer.
    pub(crate) offset: usize,
    /// frame_length: header, optional CRC and raw data blocks.
    pub(crate) len: usize,
    /// PCM samples per channel the frame decodes to: 1024 per raw_data_block.
    pub(crate) samples: u64,
}

/// sampling_frequency_index → Hz (13818-7 Table 35); 13–15 are reserved.
const SAMPLE_RATES: [u64; 13] = [
    96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000,
    7_350,
];

/// The frames filling `es` exactly and their sample rate; `None` unless every byte belongs to a well-formed
/// frame and all frames share one sampling_frequency_index (anything else is left to the decoder).
pub(crate) fn frames(es: &[u8]) -> Option<(Vec<Frame>, u64)> {
    let mut out = Vec::new();
    let mut rate = None;
    let mut offset = 0;
    while offset < es.len() {
        let h = es.get(offset..offset + 7)?;
        // syncword 0xFFF and layer '00'.
        if h[0] != 0xFF || h[1] & 0xF6 != 0xF0 {
            return None;
        }
        let this_rate = *SAMPLE_RATES.get(usize::from((h[2] >> 2) & 0x0F))?;
        if rate.is_some_and(|r| r != this_rate) {
            return None;
        }
        rate = Some(this_rate);
        let len = usize::from(h[3] & 0x03) << 11 | usize::from(h[4]) << 3 | usize::from(h[5] >> 5);
        let header = if h[1] & 0x01 != 0 { 7 } else { 9 };
        if len <= header || offset + len > es.len() {
            return None;
        }
        let blocks = u64::from(h[6] & 0x03) + 1;
        out.push(Frame {
            offset,
            len,
            samples: 1024 * blocks,
        });
        offset += len;
    }
    Some((out, rate?))
}

/// 90 kHz ticks of `samples` PCM samples at `rate`, rounded to the nearest tick.
pub(crate) fn ticks(samples: u64, rate: u64) -> u64 {
    (samples * 90_000 + rate / 2) / rate
}

/// A frame that decodes to 1024 samples of silence, with the sampling frequency and channel configuration of
/// the ADTS `header` it imitates; `None` unless that is AAC-LC mono or stereo.
///
/// The raw_data_block is one single_channel_element (mono) or channel_pair_element (stereo) with no spectral
/// data, then ID_END: the constant bit patterns players use to fill audio gaps (hls.js `AAC.getSilentFrame`).
pub(crate) fn silent_frame(header: &[u8]) -> Option<Vec<u8>> {
    let h = header.get(..7)?;
    let profile = h[2] >> 6; // audio object type - 1: 1 is AAC LC.
    let channels = (h[2] & 0x01) << 2 | h[3] >> 6;
    let raw: &[u8] = match (profile, channels) {
        (1, 1) => &[0x00, 0xC8, 0x00, 0x80, 0x23, 0x80],
        (1, 2) => &[0x21, 0x00, 0x49, 0x90, 0x02, 0x19, 0x00, 0x23, 0x80],
        _ => return None,
    };
    let len = 7 + raw.len();
    let mut frame = vec![
        0xFF,
        // MPEG-4, layer 00, protection_absent: no CRC in a frame we write.
        (h[1] & 0x08) | 0xF1,
        h[2],
        (h[3] & 0xC0) | (len >> 11) as u8,
        (len >> 3) as u8,
        // adts_buffer_fullness 0x7FF (variable rate), one raw_data_block.
        ((len & 0x07) as u8) << 5 | 0x1F,
        0xFC,
    ];
    frame.extend_from_slice(raw);
    Some(frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_silent_frame_parses_as_one_frame_of_the_same_rate() {
        // 48 kHz mono AAC-LC, with CRC (protection_absent 0).
        let header = [0xFF, 0xF0, 0x4C, 0x40, 0x20, 0x1F, 0xFC];
        let frame = silent_frame(&header).expect("LC mono");
        let (parsed, rate) = frames(&frame).expect("well-formed");
        assert_eq!(rate, 48_000);
        assert_eq!(
            parsed,
            vec![Frame {
                offset: 0,
                len: 13,
                samples: 1024
            }]
        );
        assert_eq!(ticks(1024, rate), 1920);
        let main_profile = [0xFF, 0xF1, 0x0C, 0x40, 0x20, 0x1F, 0xFC];
        assert_eq!(silent_frame(&main_profile), None);
    }

    #[test]
    fn bytes_after_the_last_frame_reject_the_buffer() {
        let header = [0xFF, 0xF1, 0x4C, 0x80, 0x20, 0x1F, 0xFC];
        let mut es = silent_frame(&header).expect("LC stereo");
        assert!(frames(&es).is_some());
        es.push(0);
        assert!(frames(&es).is_none());
        assert!(frames(&[]).is_none());
    }
}
