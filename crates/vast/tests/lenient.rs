//! Lenient reading: a bad ad is dropped with the VAST error code it earned and its Error URIs, the other
//! ads are kept, clear off-schema forms are read with a warning, and hostile documents are bounded.

mod common;

use std::path::{Path, PathBuf};

use interlude_vast::{
    Error, ParseLimits, Time, VastErrorCode, parse_vast, parse_vast_lenient,
    parse_vast_lenient_with,
};

fn inline(id: &str, duration: &str) -> String {
    format!(
        r#"<Ad id="{id}"><InLine><AdSystem>s</AdSystem><AdTitle>{id}</AdTitle>
        <Error><![CDATA[https://e.example/{id}?code=[ERRORCODE]]]></Error>
        <Impression>https://i.example/{id}</Impression>
        <Creatives><Creative><Linear><Duration>{duration}</Duration><MediaFiles>
        <MediaFile delivery="streaming" type="application/x-mpegURL" width="1280" height="720">https://m.example/{id}.m3u8</MediaFile>
        </MediaFiles></Linear></Creative></Creatives></InLine></Ad>"#
    )
}

fn vast(version: &str, ads: &[String]) -> String {
    format!(r#"<VAST version="{version}">{}</VAST>"#, ads.concat())
}

fn ids(vast: &interlude_vast::Vast) -> Vec<&str> {
    vast.ads.iter().filter_map(|a| a.id.as_deref()).collect()
}

fn duration(vast: &interlude_vast::Vast, ad: usize) -> Option<Time> {
    vast.ads[ad].inline()?.creatives[0]
        .linear
        .as_ref()?
        .duration
}

#[test]
fn an_unreadable_duration_drops_only_its_ad_with_101_and_its_error_uris() {
    for bad in ["undefined", "", "15 seconds", "-1"] {
        let xml = vast(
            "3.0",
            &[
                inline("a", "00:00:15"),
                inline("b", bad),
                inline("c", "00:00:30"),
            ],
        );
        assert!(parse_vast(&xml).is_err(), "strict reading refuses {bad:?}");
        let parsed = parse_vast_lenient(&xml).expect("the document is VAST");
        assert_eq!(ids(&parsed.vast), ["a", "c"], "Duration {bad:?}");
        let [dropped] = parsed.dropped.as_slice() else {
            panic!("one dropped ad expected: {:?}", parsed.dropped);
        };
        assert_eq!(
            (dropped.index, dropped.id.as_deref()),
            (1, Some("b")),
            "{bad:?}"
        );
        assert_eq!(dropped.error_code, VastErrorCode::SchemaValidation);
        assert!(
            dropped
                .reason
                .starts_with("VAST/Ad[2]/InLine/Creatives/Creative[1]/Linear/Duration"),
            "{}",
            dropped.reason
        );
        assert_eq!(dropped.error_uris, ["https://e.example/b?code=[ERRORCODE]"]);
        assert_eq!(dropped.pings(), ["https://e.example/b?code=101"]);
    }
}

#[test]
fn a_duration_in_plain_seconds_or_short_fields_is_read_with_a_warning() {
    for (text, millis) in [("30", 30_000), ("15.5", 15_500), ("0:0:15", 15_000)] {
        let parsed = parse_vast_lenient(&vast("2.0", &[inline("a", text)])).expect("VAST");
        assert_eq!(parsed.dropped, []);
        assert_eq!(duration(&parsed.vast, 0), Some(Time::from_millis(millis)));
        let [warning] = parsed.warnings.as_slice() else {
            panic!("one warning expected: {:?}", parsed.warnings);
        };
        assert_eq!(
            warning.path,
            "VAST/Ad[1]/InLine/Creatives/Creative[1]/Linear/Duration"
        );
        assert!(warning.message.contains("read as"), "{warning}");
    }
}

#[test]
fn a_vast_2_wrapper_with_vast_1s_tag_url_is_read_with_a_warning() {
    for tag in [
        "<VASTAdTagURL><URL><![CDATA[https://next.example/vast]]></URL></VASTAdTagURL>",
        "<VASTAdTagURL>https://next.example/vast</VASTAdTagURL>",
    ] {
        let xml = format!(
            r#"<VAST version="2.0"><Ad id="w"><Wrapper><AdSystem>s</AdSystem>{tag}
            <Impression>https://i.example/w</Impression></Wrapper></Ad></VAST>"#
        );
        let parsed = parse_vast_lenient(&xml).expect("VAST");
        let wrapper = parsed.vast.ads[0].wrapper().expect("a Wrapper");
        assert_eq!(wrapper.vast_ad_tag_uri, "https://next.example/vast");
        assert_eq!(parsed.warnings.len(), 1, "{:?}", parsed.warnings);
        assert!(parsed.warnings[0].message.contains("VASTAdTagURL"));
        // Strict reading takes it too (the meaning is the same), without a place to warn.
        let strict = parse_vast(&xml).expect("strict reads it");
        assert_eq!(strict.ads, parsed.vast.ads);
    }
}

#[test]
fn a_wrapper_without_a_tag_uri_is_dropped_with_101_and_the_others_kept() {
    let broken = r#"<Ad id="w"><Wrapper><AdSystem>s</AdSystem>
        <Error>https://e.example/w1?c=[ERRORCODE]</Error><Error>https://e.example/w2?c=[ERRORCODE]</Error>
        <Impression>https://i.example/w</Impression></Wrapper></Ad>"#;
    let empty = r#"<Ad id="e"><Wrapper><AdSystem>s</AdSystem><VASTAdTagURI> </VASTAdTagURI>
        <Impression>https://i.example/e</Impression></Wrapper></Ad>"#;
    let xml = vast(
        "4.2",
        &[
            broken.to_string(),
            empty.to_string(),
            inline("ok", "00:00:10"),
        ],
    );
    let parsed = parse_vast_lenient(&xml).expect("VAST");
    assert_eq!(ids(&parsed.vast), ["ok"]);
    let dropped: Vec<_> = parsed
        .dropped
        .iter()
        .map(|d| (d.index, d.id.as_deref(), d.error_code.code()))
        .collect();
    assert_eq!(dropped, [(0, Some("w"), 101), (1, Some("e"), 101)]);
    assert_eq!(
        parsed.dropped[0].pings(),
        ["https://e.example/w1?c=101", "https://e.example/w2?c=101"]
    );
}

#[test]
fn an_ad_without_inline_or_wrapper_is_dropped_with_101() {
    let xml = vast(
        "4.1",
        &[
            r#"<Ad id="nothing"><Foo/></Ad>"#.to_string(),
            inline("ok", "00:00:10"),
        ],
    );
    let parsed = parse_vast_lenient(&xml).expect("VAST");
    assert_eq!(ids(&parsed.vast), ["ok"]);
    assert_eq!(parsed.dropped[0].error_code.code(), 101);
    assert!(parsed.dropped[0].error_uris.is_empty());
}

#[test]
fn a_bad_optional_attribute_is_read_as_absent_with_a_warning() {
    let xml = vast("4.2", &[inline("a", "00:00:10")])
        .replace(r#"<Ad id="a">"#, r#"<Ad id="a" sequence="first">"#)
        .replace(r#"width="1280""#, r#"width="1280px""#)
        .replace("<Linear>", r#"<Linear skipoffset="soon">"#);
    assert!(parse_vast(&xml).is_err());
    let parsed = parse_vast_lenient(&xml).expect("VAST");
    assert_eq!(parsed.dropped, []);
    let ad = &parsed.vast.ads[0];
    assert_eq!(ad.sequence, None);
    let linear = ad.inline().expect("InLine").creatives[0]
        .linear
        .as_ref()
        .expect("Linear");
    assert_eq!(linear.skip_offset, None);
    assert_eq!(linear.media_files.media_files[0].width, 0);
    let mut fields: Vec<_> = parsed
        .warnings
        .iter()
        .map(|w| w.message.split(' ').next().unwrap_or(""))
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, ["@sequence", "@skipoffset", "@width"]);
}

#[test]
fn whole_document_failures_are_errors_with_their_vast_code() {
    let cases = [
        ("{ vast: null }", 100),
        ("<VAST version=\"4.2\"><Ad>", 100),
        ("<html><body/></html>", 101),
        ("<VAST version=\"5.0\"/>", 102),
        ("<VAST version=\"x\"/>", 102),
    ];
    for (xml, code) in cases {
        let err = parse_vast_lenient(xml).expect_err(xml);
        assert_eq!(err.vast_error_code().code(), code, "{xml}: {err}");
    }
    assert!(matches!(
        parse_vast_lenient("<VAST version=\"5.0\"/>"),
        Err(Error::UnsupportedVersion { .. })
    ));
    for ok in [
        "<VAST version=\"2.0\"/>",
        "<VAST version=\"4.3\"/>",
        "<VAST/>",
        "<VideoAdServingTemplate/>",
    ] {
        assert!(parse_vast_lenient(ok).is_ok(), "{ok}");
    }
}

#[test]
fn ads_past_the_limit_are_not_read_and_say_so() {
    let ads: Vec<String> = (0..150)
        .map(|i| inline(&format!("a{i}"), "00:00:05"))
        .collect();
    let parsed = parse_vast_lenient(&vast("4.2", &ads)).expect("VAST");
    assert_eq!(parsed.vast.ads.len(), 100);
    assert!(
        parsed
            .warnings
            .iter()
            .any(|w| w.message == "50 Ad elements past the limit of 100 not read"),
        "{:?}",
        parsed.warnings
    );
    let limits = ParseLimits {
        max_ads: 3,
        ..ParseLimits::default()
    };
    let parsed = parse_vast_lenient_with(&vast("4.2", &ads), &limits).expect("VAST");
    assert_eq!(ids(&parsed.vast), ["a0", "a1", "a2"]);
}

#[test]
fn error_uris_and_warnings_of_a_hostile_document_are_bounded() {
    let errors: String = (0..1000)
        .map(|i| format!("<Error>https://e.example/{i}</Error>"))
        .collect();
    let many_errors =
        format!(r#"<Ad id="x"><Wrapper><AdSystem>s</AdSystem>{errors}</Wrapper></Ad>"#);
    let bad_attrs: String = (0..1000)
        .map(|_| r#"<Tracking event="progress" offset="later">https://t</Tracking>"#)
        .collect();
    let many_warnings = inline("w", "00:00:05").replace(
        "<Duration>",
        &format!("<TrackingEvents>{bad_attrs}</TrackingEvents><Duration>"),
    );
    let parsed = parse_vast_lenient(&vast("4.2", &[many_errors, many_warnings])).expect("VAST");
    assert_eq!(parsed.dropped[0].error_uris.len(), 16);
    assert_eq!(parsed.warnings.len(), 101);
    assert_eq!(
        parsed.warnings[100].message,
        "900 more warnings not recorded"
    );
}

#[test]
fn a_second_body_in_one_ad_is_kept_unknown_with_a_warning() {
    let xml = vast("4.2", &[inline("a", "00:00:05")]).replace(
        "</InLine></Ad>",
        "</InLine><Wrapper><VASTAdTagURI>https://x</VASTAdTagURI></Wrapper></Ad>",
    );
    let parsed = parse_vast_lenient(&xml).expect("VAST");
    assert!(parsed.vast.ads[0].inline().is_some());
    assert_eq!(parsed.warnings.len(), 1);
    assert_eq!(parsed.warnings[0].path, "VAST/Ad[1]/Wrapper");
}

fn iab_samples() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("readable") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "xml") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&common::data_dir().join("samples"), &mut out);
    out
}

#[test]
fn on_the_iab_samples_lenient_and_strict_reading_agree() {
    let samples = iab_samples();
    assert_eq!(samples.len(), 75);
    for path in samples {
        let text = std::fs::read_to_string(&path).expect("UTF-8");
        let strict = parse_vast(&text).expect("every IAB sample reads strictly");
        let lenient = parse_vast_lenient(&text).expect("and leniently");
        assert_eq!(lenient.vast, strict, "{}", path.display());
        assert_eq!(lenient.dropped, [], "{}", path.display());
    }
}
