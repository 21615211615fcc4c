//! Macros in written documents: kept literal for the party that fires the URI, expanded with percent-encoding.

mod common;

use interlude_vast::macros::{Macro, MacroValues, Unfilled, expand, expand_error_code};
use interlude_vast::{Vast, parse_vast, write_vast};

const WITH_MACROS: &str = r#"<VAST version="4.2"><Ad><InLine><AdSystem>s</AdSystem>
  <Error><![CDATA[https://e.example/err?code=[ERRORCODE]&ts=[TIMESTAMP]]]></Error>
  <Impression><![CDATA[https://t.example/imp?pos=[BREAKPOSITION]&ua=[DEVICEUA]&gdpr=[GDPRCONSENT]&lat=[LIMITADTRACKING]&reg=[REGULATIONS]]]></Impression>
  <AdServingId>interlude-1</AdServingId><AdTitle>t</AdTitle><Creatives><Creative><Linear><TrackingEvents>
  <Tracking event="progress" offset="00:00:05"><![CDATA[https://t.example/p?ch=[CONTENTPLAYHEAD]&ah=[ADPLAYHEAD]&a=[ASSETURI]&cb=[CACHEBUSTING]&x=[VENDORMACRO]]]></Tracking>
  </TrackingEvents><Duration>00:00:10</Duration><MediaFiles>
  <MediaFile delivery="progressive" type="video/mp4" width="640" height="360">https://m.example/a.mp4</MediaFile>
  </MediaFiles></Linear></Creative></Creatives></InLine></Ad></VAST>"#;

#[test]
fn macros_stay_literal_in_written_uris_and_the_document_validates_once_they_are_filled() {
    let vast = parse_vast(WITH_MACROS).expect("valid");
    let written = write_vast(&vast).expect("writable");
    assert!(written.contains("code=[ERRORCODE]&ts=[TIMESTAMP]"));
    assert_eq!(parse_vast(&written).expect("parses").ads, vast.ads);
    // libxml2 checks xs:anyURI by RFC 2396 as amended by RFC 2732 (XSD 1.0), where '[' and ']' may only
    // enclose an IPv6 host: a literal macro in a URI element fails `xmllint --schema`, although VAST requires
    // players to find `[ERRORCODE]` literally. Filled in (here with VAST's "-1", and the vendor's own macro
    // with a value), the same document validates.
    let filled =
        expand(&written, &MacroValues::new(), Unfilled::NotSupported).replace("[VENDORMACRO]", "v");
    common::assert_valid_vast_4_2(&filled);
}

#[test]
fn a_tracking_uri_gets_every_value_the_firing_party_knows() {
    let vast: Vast = parse_vast(WITH_MACROS).expect("valid");
    let inline = vast.ads[0].inline().expect("InLine");
    let progress = &inline.creatives[0]
        .linear
        .as_ref()
        .expect("Linear")
        .tracking[0]
        .url;
    let mut values = MacroValues::new();
    values
        .set_time(
            Macro::ContentPlayhead,
            interlude_vast::Time::from_millis(3_723_004),
        )
        .set_time(Macro::AdPlayhead, interlude_vast::Time::from_secs(5))
        .set(Macro::AssetUri, "https://m.example/a.mp4")
        .set_cachebusting(12_345_678);
    assert_eq!(
        expand(progress, &values, Unfilled::Keep),
        "https://t.example/p?ch=01%3A02%3A03.004&ah=00%3A00%3A05.000\
         &a=https%3A%2F%2Fm.example%2Fa.mp4&cb=12345678&x=[VENDORMACRO]"
    );
    let impression = &inline.common.impressions[0].url;
    values
        .set(Macro::BreakPosition, "2")
        .set(Macro::DeviceUa, "Roku/DVP-9.10 (519.10E04111A)")
        .set(Macro::GdprConsent, "BOLqFHuOLqFHuAABAENAAAAAAAAoAAA")
        .set(Macro::LimitAdTracking, "0")
        .set_list(Macro::Regulations, ["gdpr", "coppa"]);
    assert_eq!(
        expand(impression, &values, Unfilled::Keep),
        "https://t.example/imp?pos=2&ua=Roku%2FDVP-9.10%20%28519.10E04111A%29\
         &gdpr=BOLqFHuOLqFHuAABAENAAAAAAAAoAAA&lat=0&reg=gdpr,coppa"
    );
    assert_eq!(
        expand_error_code(&inline.common.errors[0], 402),
        "https://e.example/err?code=402&ts=[TIMESTAMP]"
    );
}
