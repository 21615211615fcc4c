//! proptest strategies for valid playlists (RFC 8216bis §4): every field of the model, with the values real
//! packagers write plus the edges (huge integers, durations with no short decimal form, odd offsets, unknown
//! tags whose names extend known ones, every ad-marker dialect).
//!
//! "Valid" is the writer's domain, i.e. what the parser can produce: text fields trimmed and without line
//! breaks, URIs not starting with `#`, tag names starting with `EXT`, known tags only in their typed fields,
//! `EXT-X-START`-like header tags only in `header_tags` before the first segment, durations finite and
//! non-negative, program date times with a whole-minute offset in years 0001–9999.

use chrono::{DateTime, FixedOffset};
use interlude_hls::{
    AttributeList, ByteRange, MasterPlaylist, MediaPlaylist, MediaSegment, Tag, VariantStream,
};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

/// Tags the media parser gives a typed field (or rejects as master-only).
const MEDIA_KNOWN: &[&str] = &[
    "EXTINF",
    "EXT-X-TARGETDURATION",
    "EXT-X-MEDIA-SEQUENCE",
    "EXT-X-DISCONTINUITY-SEQUENCE",
    "EXT-X-VERSION",
    "EXT-X-PLAYLIST-TYPE",
    "EXT-X-ENDLIST",
    "EXT-X-I-FRAMES-ONLY",
    "EXT-X-INDEPENDENT-SEGMENTS",
    "EXT-X-DISCONTINUITY",
    "EXT-X-GAP",
    "EXT-X-KEY",
    "EXT-X-MAP",
    "EXT-X-DATERANGE",
    "EXT-X-BITRATE",
    "EXT-X-PROGRAM-DATE-TIME",
    "EXT-X-BYTERANGE",
    "EXT-X-STREAM-INF",
    "EXT-X-MEDIA",
    "EXT-X-I-FRAME-STREAM-INF",
];

/// Tags the master parser gives a typed field (or rejects as media-only).
const MASTER_KNOWN: &[&str] = &[
    "EXTINF",
    "EXT-X-STREAM-INF",
    "EXT-X-MEDIA",
    "EXT-X-I-FRAME-STREAM-INF",
    "EXT-X-SESSION-DATA",
    "EXT-X-SESSION-KEY",
    "EXT-X-VERSION",
    "EXT-X-INDEPENDENT-SEGMENTS",
];

/// Tags that belong to the media playlist's header when they come before the first segment.
const HEADER_TAGS: &[&str] = &[
    "EXT-X-START",
    "EXT-X-SERVER-CONTROL",
    "EXT-X-PART-INF",
    "EXT-X-DEFINE",
    "EXT-X-ALLOW-CACHE",
    "EXT-X-SKIP",
];

/// A trimmed, single-line text of up to ~30 characters (ASCII and a little beyond), possibly empty.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[!-~]([ -~]{0,30}[!-~])?",
        "[!-~é€😀]([ -~é€😀\u{a0}]{0,10}[!-~é€😀])?",
    ]
}

fn nonempty_text() -> impl Strategy<Value = String> {
    text().prop_filter("non-empty", |s| !s.is_empty())
}

/// A name for a tag the parser does not interpret: vendor-like names, and names extending a known one
/// (`EXT-X-MEDIA-SEQUENCE` extends `EXT-X-MEDIA`; parsers that match prefixes trip on these).
fn unknown_name(known: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![
        "EXT-X-[A-Z][A-Z0-9-]{0,16}",
        "EXT[A-Z0-9-]{0,8}",
        (
            proptest::sample::select(
                MEDIA_KNOWN
                    .iter()
                    .chain(MASTER_KNOWN)
                    .copied()
                    .collect::<Vec<_>>()
            ),
            "-[A-Z0-9]{1,6}"
        )
            .prop_map(|(k, s)| format!("{k}{s}")),
    ]
    .prop_filter("not a known tag", move |n| {
        !known.contains(&n.as_str()) && !HEADER_TAGS.contains(&n.as_str())
    })
}

fn unknown_tag(known: &'static [&'static str]) -> impl Strategy<Value = Tag> {
    (unknown_name(known), option::of(text())).prop_map(|(n, v)| Tag::new(n, v))
}

/// An attribute value as written: quoted string (may hold commas, `=` and spaces), decimal, float, hex,
/// resolution, enumerated string, or empty.
fn attribute_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[^\"\r\n]{0,24}".prop_map(|s| format!("\"{s}\"")),
        any::<u64>().prop_map(|n| n.to_string()),
        (0u32..100_000, 0u32..1000).prop_map(|(a, b)| format!("{a}.{b:03}")),
        "0x[0-9A-F]{1,40}",
        (1u32..8000, 1u32..8000).prop_map(|(w, h)| format!("{w}x{h}")),
        "[A-Za-z0-9._:/+=-]{0,16}",
    ]
}

fn attribute_name() -> impl Strategy<Value = String> {
    "[A-Za-z][A-Za-z0-9-]{0,14}"
}

/// `fixed` attributes first (each present or not), then up to three random ones.
fn attributes(
    fixed: Vec<(&'static str, BoxedStrategy<String>)>,
) -> impl Strategy<Value = AttributeList> {
    let fixed: Vec<_> = fixed
        .into_iter()
        .map(|(n, s)| option::weighted(0.8, s).prop_map(move |v| v.map(|v| (n, v))))
        .collect();
    (fixed, vec((attribute_name(), attribute_value()), 0..3)).prop_map(|(fixed, extra)| {
        let mut a = AttributeList::new();
        for (n, v) in fixed.into_iter().flatten() {
            a.set_raw(n, v);
        }
        for (n, v) in extra {
            a.set_raw(&n, v);
        }
        a
    })
}

fn quoted(re: &'static str) -> BoxedStrategy<String> {
    re.prop_map(|s| format!("\"{s}\"")).boxed()
}

fn raw(re: &'static str) -> BoxedStrategy<String> {
    re.prop_map(String::from).boxed()
}

fn date_time() -> impl Strategy<Value = DateTime<FixedOffset>> {
    // A day inside years 0001..9999 either side, so the local time stays four-digit in any offset.
    (
        -62_135_596_800i64 + 86_400..253_402_300_799 - 86_400,
        prop_oneof![
            Just(0u32),
            (0u32..1000).prop_map(|ms| ms * 1_000_000),
            0u32..1_000_000_000
        ],
        prop_oneof![Just(0i32), -1439i32..=1439],
    )
        .prop_map(|(secs, nanos, offset_min)| {
            let offset = FixedOffset::east_opt(offset_min * 60).expect("under a day");
            DateTime::from_timestamp(secs, nanos)
                .expect("in chrono's range")
                .with_timezone(&offset)
        })
}

fn date_time_text() -> BoxedStrategy<String> {
    date_time()
        .prop_map(|t| format!("\"{}\"", t.to_rfc3339()))
        .boxed()
}

/// A segment duration: packager-style milliseconds, integers, and any finite non-negative `f64`.
fn duration() -> impl Strategy<Value = f64> {
    prop_oneof![
        (0u64..100_000).prop_map(|ms| ms as f64 / 1000.0),
        (0u32..20).prop_map(f64::from),
        0.0..20.0f64,
        any::<f64>().prop_filter("finite, non-negative", |d| d.is_finite() && *d >= 0.0),
    ]
}

fn uri() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9_-]{1,12}\\.(ts|m4s|aac|m3u8)",
        "https://[a-z]{1,10}\\.example/[A-Za-z0-9_/.-]{0,30}(\\?[a-z]=[0-9]{1,4}(&[a-z]=[^\\s#]{0,6})?)?",
        "[A-Za-z0-9._~/?=&%:-]([ A-Za-z0-9._~/?=&%:#-]{0,30}[A-Za-z0-9._~/?=&%:#-])?",
    ]
}

/// SCTE-35 cues in the forms the marker dialects carry: base64 and hex of real sections, and garbage.
fn scte35_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("/DAlAAAAAAAAAP/wFAUAAAABf+/+ANgNkv4AFJlwAAEBAQAA5xULLA==".to_owned()),
        Just("/DAqAAAAAAAAAP/wDwUEAAcRf0/+J32QcAAAAAAACgAIQ1VFSQAAAAEWZfDA".to_owned()),
        Just("0xFC302F00000000000000FFF0140504000C767FEFFF26096E70FE005265C000000000000A0008435545490000000142C1E8B9".to_owned()),
        "0x[0-9A-F]{0,40}",
        "[A-Za-z0-9+/]{0,40}={0,2}",
    ]
}

fn seconds_text() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u32..600).prop_map(|s| s.to_string()),
        (0u32..600_000).prop_map(|ms| format!("{}.{:03}", ms / 1000, ms % 1000)),
        Just("-5".to_owned()),
        Just("NaN".to_owned()),
        Just("inf".to_owned()),
        Just("1e400".to_owned()),
    ]
}

/// An ad marker in any dialect (`markers.rs`), as a tag kept in the segment's `tags`.
pub(crate) fn cue_tag() -> impl Strategy<Value = Tag> {
    let id = option::of("[a-z0-9-]{1,8}");
    prop_oneof![
        option::of(prop_oneof![
            seconds_text(),
            seconds_text().prop_map(|s| format!("DURATION={s}")),
            (seconds_text(), "[a-z0-9]{1,6}").prop_map(|(s, i)| format!("DURATION={s},ID=\"{i}\"")),
            // Adobe SSAI / Elemental: a duration before attributes.
            (seconds_text(), "[a-z0-9]{0,6}").prop_map(|(s, i)| format!("{s},SignalID={i}")),
        ])
        .prop_map(|v| Tag::new("EXT-X-CUE-OUT", v)),
        // Adobe Primetime `EXT-X-CUE` (SpliceOut / SpliceIn / scte35, ELAPSED, CUE=) and `EXT-X-CUE-CONT`.
        (
            prop_oneof![
                Just("SpliceOut"),
                Just("SpliceIn"),
                Just("scte35"),
                Just("SpliceInsert")
            ],
            option::of(seconds_text()),
            option::of(seconds_text()),
            option::of(scte35_text()),
            id.clone(),
        )
            .prop_map(|(kind, dur, elapsed, cue, id)| {
                let parts: Vec<String> = [
                    Some(format!("TYPE=\"{kind}\"")),
                    id.map(|i| format!("ID=\"{i}\"")),
                    dur.map(|d| format!("DURATION={d}")),
                    elapsed.map(|e| format!("ELAPSED={e}")),
                    cue.map(|c| format!("CUE=\"{c}\"")),
                ]
                .into_iter()
                .flatten()
                .collect();
                Tag::new("EXT-X-CUE", Some(parts.join(",")))
            }),
        (seconds_text(), id.clone()).prop_map(|(e, id)| {
            let id = id.map(|i| format!("ID={i},")).unwrap_or_default();
            Tag::new("EXT-X-CUE-CONT", Some(format!("{id}AVAIL-DUR-ELAPSED={e}")))
        }),
        (seconds_text(), seconds_text(), option::of(scte35_text())).prop_map(|(e, d, c)| {
            let v = match c {
                Some(c) => format!("ElapsedTime={e},Duration={d},SCTE35={c}"),
                None => format!("{e}/{d}"),
            };
            Tag::new("EXT-X-CUE-OUT-CONT", Some(v))
        }),
        (
            "PT([0-9]{1,3}H)?([0-9]{1,3}M)?[0-9]{1,3}(\\.[0-9]{1,3})?S",
            id.clone()
        )
            .prop_map(|(t, id)| {
                let id = id.map(|i| format!(",ID=\"{i}\"")).unwrap_or_default();
                Tag::new("EXT-X-CUE-SPAN", Some(format!("TIMEFROMSIGNAL={t}{id}")))
            }),
        id.clone()
            .prop_map(|id| Tag::new("EXT-X-CUE-IN", id.map(|i| format!("ID=\"{i}\"")))),
        scte35_text().prop_map(|c| Tag::new("EXT-OATCLS-SCTE35", Some(c))),
        scte35_text().prop_map(|c| Tag::new("EXT-X-SPLICEPOINT-SCTE35", Some(c))),
        (
            prop_oneof![Just("EXT-X-SCTE35"), Just("EXT-SCTE35")],
            option::of(scte35_text()),
            option::of(prop_oneof![
                Just("CUE-OUT=YES"),
                Just("CUE-OUT=CONT"),
                Just("CUE-IN=YES")
            ]),
            option::of(seconds_text()),
            id,
        )
            .prop_map(|(name, cue, flag, dur, id)| {
                let parts: Vec<String> = [
                    cue.map(|c| format!("CUE=\"{c}\"")),
                    flag.map(str::to_owned),
                    dur.map(|d| format!("DURATION={d}")),
                    id.map(|i| format!("ID=\"{i}\"")),
                ]
                .into_iter()
                .flatten()
                .collect();
                Tag::new(name, Some(parts.join(",")))
            }),
    ]
}

/// `EXT-X-DATERANGE`: plain, SCTE-35 (OUT / IN / CMD) and interstitial.
fn daterange() -> impl Strategy<Value = AttributeList> {
    attributes(vec![
        ("ID", quoted("[a-z0-9-]{1,10}")),
        (
            "CLASS",
            prop_oneof![
                quoted("[a-z.]{1,20}"),
                Just("\"com.apple.hls.interstitial\"".to_owned())
            ]
            .boxed(),
        ),
        ("START-DATE", date_time_text()),
        ("END-DATE", date_time_text()),
        ("DURATION", seconds_text().boxed()),
        ("PLANNED-DURATION", seconds_text().boxed()),
        ("SCTE35-OUT", scte35_text().boxed()),
        ("SCTE35-IN", scte35_text().boxed()),
        ("SCTE35-CMD", scte35_text().boxed()),
    ])
}

fn key() -> impl Strategy<Value = AttributeList> {
    attributes(vec![
        ("METHOD", raw("NONE|AES-128|SAMPLE-AES")),
        ("URI", quoted("(skd|https)://[a-z0-9./?=]{1,20}")),
        ("IV", raw("0x[0-9A-F]{32}")),
        (
            "KEYFORMAT",
            quoted("identity|com\\.apple\\.streamingkeydelivery"),
        ),
    ])
}

fn map() -> impl Strategy<Value = AttributeList> {
    attributes(vec![
        ("URI", quoted("[a-z0-9_/.-]{1,20}")),
        ("BYTERANGE", quoted("[0-9]{1,6}(@[0-9]{1,6})?")),
    ])
}

fn segment(known_extra: bool) -> impl Strategy<Value = MediaSegment> {
    // The first segment's tags may not use a header tag's name: the parser reads those as the playlist's.
    let tag = if known_extra {
        prop_oneof![
            3 => unknown_tag(MEDIA_KNOWN),
            3 => cue_tag(),
            1 => proptest::sample::select(HEADER_TAGS).prop_flat_map(|n| {
                option::of(text()).prop_map(move |v| Tag::new(n, v))
            }),
        ]
        .boxed()
    } else {
        prop_oneof![unknown_tag(MEDIA_KNOWN), cue_tag()].boxed()
    };
    (
        (uri(), duration(), option::of(nonempty_text())),
        (
            option::of((any::<u64>(), option::of(any::<u64>()))),
            any::<bool>(),
            vec(key(), 0..2),
            option::weighted(0.2, map()),
            option::weighted(0.3, date_time()),
            any::<bool>(),
            option::weighted(0.2, any::<u64>()),
        ),
        vec(daterange(), 0..2),
        vec(tag, 0..3),
    )
        .prop_map(
            |((uri, duration, title), (br, disc, keys, map, pdt, gap, bitrate), drs, tags)| {
                let mut s = MediaSegment::new(uri, duration);
                s.title = title;
                s.byte_range = br.map(|(length, offset)| ByteRange { length, offset });
                s.discontinuity = disc;
                s.keys = keys;
                s.map = map;
                s.program_date_time = pdt;
                s.gap = gap;
                s.bitrate = bitrate;
                s.dateranges = drs;
                s.tags = tags;
                s
            },
        )
}

/// A valid media playlist of up to `max_segments` segments.
pub(crate) fn media_playlist(max_segments: usize) -> impl Strategy<Value = MediaPlaylist> {
    (
        (
            option::of(any::<u64>()),
            prop_oneof![1 => any::<u64>(), 3 => 1u64..12],
            any::<u64>(),
            prop_oneof![3 => Just(0u64), 1 => any::<u64>()],
            option::of(prop_oneof![
                Just("VOD".to_owned()),
                Just("EVENT".to_owned())
            ]),
            (any::<bool>(), any::<bool>(), any::<bool>()),
        ),
        vec(
            (proptest::sample::select(HEADER_TAGS), option::of(text()))
                .prop_map(|(n, v)| Tag::new(n, v)),
            0..3,
        ),
        option::weighted(0.9, segment(false)),
        vec(segment(true), 0..max_segments.saturating_sub(1)),
        vec(prop_oneof![unknown_tag(MEDIA_KNOWN), cue_tag()], 0..3),
        vec(daterange(), 0..2),
    )
        .prop_map(
            |(
                (version, target, seq, dseq, ptype, (end, iframes, indep)),
                header_tags,
                first,
                rest,
                trailing_tags,
                trailing_dateranges,
            )| {
                // Only a first segment keeps header tag names out of its tags.
                let segments: Vec<_> = first
                    .map(|f| std::iter::once(f).chain(rest).collect())
                    .unwrap_or_default();
                MediaPlaylist {
                    version,
                    target_duration: target,
                    media_sequence: seq,
                    discontinuity_sequence: dseq,
                    playlist_type: ptype,
                    end_list: end,
                    i_frames_only: iframes,
                    independent_segments: indep,
                    header_tags,
                    segments,
                    trailing_tags,
                    trailing_dateranges,
                }
            },
        )
}

fn media_rendition() -> impl Strategy<Value = AttributeList> {
    attributes(vec![
        ("TYPE", raw("AUDIO|VIDEO|SUBTITLES|CLOSED-CAPTIONS")),
        ("GROUP-ID", quoted("(aud|sub|cc)[0-9]{0,2}")),
        ("NAME", quoted("[A-Za-z ,]{1,12}")),
        ("LANGUAGE", quoted("[a-z]{2}(-[A-Z]{2})?")),
        ("DEFAULT", raw("YES|NO")),
        ("AUTOSELECT", raw("YES|NO")),
        ("URI", quoted("[a-z0-9_/.-]{1,20}\\.m3u8")),
    ])
}

fn stream_inf() -> Vec<(&'static str, BoxedStrategy<String>)> {
    vec![
        (
            "BANDWIDTH",
            any::<u64>().prop_map(|b| b.to_string()).boxed(),
        ),
        (
            "AVERAGE-BANDWIDTH",
            (1u64..50_000_000).prop_map(|b| b.to_string()).boxed(),
        ),
        (
            "CODECS",
            quoted("(avc1\\.64001f|hvc1\\.1\\.6\\.L93\\.90)(,mp4a\\.40\\.2)?(,ec-3)?"),
        ),
        (
            "RESOLUTION",
            (1u32..8000, 1u32..5000)
                .prop_map(|(w, h)| format!("{w}x{h}"))
                .boxed(),
        ),
        ("FRAME-RATE", raw("(23\\.976|25\\.000|29\\.970|50|60)")),
        ("AUDIO", quoted("aud[0-9]{0,2}")),
        ("SUBTITLES", quoted("sub[0-9]{0,2}")),
    ]
}

fn variant() -> impl Strategy<Value = VariantStream> {
    (
        attributes(stream_inf()),
        vec(unknown_tag(MASTER_KNOWN), 0..2),
        uri(),
    )
        .prop_map(|(attributes, tags, uri)| VariantStream {
            uri,
            attributes,
            tags,
        })
}

/// A valid master playlist with at least one variant (so it is recognised as a master playlist).
pub(crate) fn master_playlist() -> impl Strategy<Value = MasterPlaylist> {
    let mut iframe = stream_inf();
    iframe.push(("URI", quoted("[a-z0-9_/.-]{1,20}\\.m3u8")));
    (
        (option::of(any::<u64>()), any::<bool>()),
        vec(
            prop_oneof![
                3 => unknown_tag(MASTER_KNOWN),
                1 => (proptest::sample::select(HEADER_TAGS), option::of(text()))
                    .prop_map(|(n, v)| Tag::new(n, v)),
            ],
            0..3,
        ),
        vec(media_rendition(), 0..4),
        vec(variant(), 1..6),
        vec(attributes(iframe), 0..3),
        vec(
            attributes(vec![
                ("DATA-ID", quoted("com\\.[a-z]{1,8}")),
                ("VALUE", quoted("[^\"\r\n]{0,10}")),
                ("LANGUAGE", quoted("[a-z]{2}")),
            ]),
            0..2,
        ),
        vec(key(), 0..2),
    )
        .prop_map(
            |(
                (version, indep),
                tags,
                media,
                variants,
                i_frame_variants,
                session_data,
                session_keys,
            )| {
                MasterPlaylist {
                    version,
                    independent_segments: indep,
                    media,
                    variants,
                    i_frame_variants,
                    session_data,
                    session_keys,
                    tags,
                }
            },
        )
}
