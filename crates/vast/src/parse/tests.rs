use super::*;
use crate::model::*;
use crate::time::{Offset, Percent, Time};
use crate::write::write_vast;

const POD: &str = r#"<?xml version="1.0"?>
<VAST version="4.1" xmlns="http://www.iab.com/VAST">
  <Ad id="a1" sequence="1"><InLine><AdSystem>s</AdSystem><AdTitle>one</AdTitle>
    <Creatives><Creative><Linear><Duration>00:00:15</Duration><MediaFiles>
      <MediaFile delivery="progressive" type="video/mp4" width="640" height="360">https://a/1.mp4</MediaFile>
    </MediaFiles></Linear></Creative></Creatives></InLine></Ad>
  <Ad id="a2" sequence="2"><InLine><AdSystem>s</AdSystem><AdTitle>two</AdTitle>
    <Creatives><Creative><Linear><Duration>15 seconds</Duration><MediaFiles>
      <MediaFile delivery="progressive" type="video/mp4" width="640" height="360">https://a/2.mp4</MediaFile>
    </MediaFiles></Linear></Creative></Creatives></InLine></Ad>
</VAST>"#;

#[test]
fn a_bad_duration_names_its_element_path_and_line() {
    let err = parse_vast(POD).expect_err("the second ad's Duration is not a time");
    let Error::InvalidValue {
        path,
        field,
        value,
        line,
        ..
    } = &err
    else {
        panic!("expected InvalidValue, got {err:?}");
    };
    assert_eq!(
        path,
        "VAST/Ad[2]/InLine/Creatives/Creative[1]/Linear/Duration"
    );
    assert_eq!(field, "text");
    assert_eq!(value, "15 seconds");
    assert_eq!(*line, 8);
    assert!(
        err.to_string()
            .starts_with("VAST/Ad[2]/InLine/Creatives/Creative[1]/Linear/Duration: invalid text")
    );
}

#[test]
fn a_bad_attribute_names_the_attribute() {
    let xml = POD.replace("15 seconds", "00:00:15").replace(
        r#"width="640" height="360">https://a/2"#,
        r#"width="wide" height="360">https://a/2"#,
    );
    let err = parse_vast(&xml).expect_err("width is not an integer");
    assert!(
        matches!(&err, Error::InvalidValue { path, field, .. }
            if path == "VAST/Ad[2]/InLine/Creatives/Creative[1]/Linear/MediaFiles/MediaFile[1]" && field == "@width"),
        "{err:?}"
    );
}

#[test]
fn a_wrapper_without_its_tag_uri_is_missing_that_element() {
    let xml = r#"<VAST version="3.0"><Ad><Wrapper><AdSystem>s</AdSystem></Wrapper></Ad></VAST>"#;
    let err = parse_vast(xml).expect_err("VASTAdTagURI is required");
    assert!(
        matches!(&err, Error::Missing { path, what: "VASTAdTagURI", .. } if path == "VAST/Ad[1]/Wrapper"),
        "{err:?}"
    );
}

#[test]
fn other_roots_are_refused() {
    let err = parse_vast("<VMAP/>").expect_err("not VAST");
    assert!(matches!(err, Error::WrongRoot { expected: "VAST", ref found, .. } if found == "VMAP"));
}

#[test]
fn prefixed_namespaces_cdata_and_whitespace_read_like_plain_text() {
    let xml = r#"<v:VAST xmlns:v="http://www.iab.com/VAST" version="4.2"><v:Ad><v:InLine>
        <v:AdSystem>  s  </v:AdSystem><v:Impression>
           <![CDATA[https://t/i?a=1&b=2]]>
        </v:Impression><v:AdTitle>t</v:AdTitle>
        <v:Creatives><v:Creative><v:Linear skipoffset="25%"><v:Duration>00:00:30.5</v:Duration>
        <v:MediaFiles><v:MediaFile delivery="STREAMING" type="application/x-mpegURL" width="1" height="1"
        scalable="TRUE">  https://m/x.m3u8 </v:MediaFile></v:MediaFiles></v:Linear></v:Creative></v:Creatives>
        </v:InLine></v:Ad></v:VAST>"#;
    let vast = parse_vast(xml).expect("valid");
    let inline = vast.ads[0].inline().expect("InLine");
    assert_eq!(
        inline.common.ad_system.as_ref().map(|s| s.name.as_str()),
        Some("s")
    );
    assert_eq!(inline.common.impressions[0].url, "https://t/i?a=1&b=2");
    let linear = inline.creatives[0].linear.as_ref().expect("Linear");
    assert_eq!(linear.duration, Some(Time::from_millis(30_500)));
    assert_eq!(
        linear.skip_offset,
        Some(Offset::Percent(Percent::from_whole(25).expect("≤ 100")))
    );
    let file = &linear.media_files.media_files[0];
    assert_eq!(
        (file.delivery, file.scalable, file.url.as_str()),
        (Delivery::Streaming, Some(true), "https://m/x.m3u8")
    );
}

#[test]
fn legacy_event_names_read_as_their_vast_4_successors() {
    let xml = r#"<VAST version="2.0"><Ad><InLine><AdSystem>s</AdSystem><AdTitle>t</AdTitle><Creatives>
        <Creative><Linear><Duration>00:00:05</Duration><TrackingEvents>
          <Tracking event="fullscreen">https://t/fs</Tracking><Tracking event="collapse">https://t/c</Tracking>
          <Tracking event="timeSpentViewing">https://t/x</Tracking>
        </TrackingEvents><MediaFiles><MediaFile delivery="progressive" type="video/mp4" width="1" height="1">
        https://m</MediaFile></MediaFiles></Linear></Creative>
        <Creative><NonLinearAds><TrackingEvents><Tracking event="expand">https://t/e</Tracking></TrackingEvents>
        </NonLinearAds></Creative></Creatives></InLine></Ad></VAST>"#;
    let vast = parse_vast(xml).expect("valid");
    let inline = vast.ads[0].inline().expect("InLine");
    let events: Vec<_> = inline.creatives[0]
        .linear
        .as_ref()
        .expect("Linear")
        .tracking
        .iter()
        .map(|t| t.event)
        .collect();
    assert_eq!(
        events,
        [TrackingEvent::PlayerExpand, TrackingEvent::PlayerCollapse]
    );
    let nl = inline.creatives[1]
        .non_linear_ads
        .as_ref()
        .expect("NonLinearAds");
    assert_eq!(nl.tracking[0].event, TrackingEvent::AdExpand);
    // The VAST 3 event 4.x dropped is kept whole, with where it was.
    assert_eq!(inline.common.unknown.len(), 1);
    assert_eq!(
        inline.common.unknown[0].parent,
        "Creatives/Creative[1]/Linear/TrackingEvents"
    );
    assert!(inline.common.unknown[0].xml.contains("timeSpentViewing"));
}

#[test]
fn unknown_elements_survive_repeated_round_trips() {
    let xml = r#"<VAST version="4.2"><Ad><InLine><AdSystem>s</AdSystem><AdTitle>t</AdTitle>
        <VendorThing a="1"><x>y &amp; z</x></VendorThing>
        <Creatives><Creative><Linear><Duration>00:00:05</Duration><MediaFiles>
        <MediaFile delivery="progressive" type="video/mp4" width="1" height="1">https://m</MediaFile>
        <Foo/></MediaFiles></Linear></Creative></Creatives></InLine></Ad></VAST>"#;
    let first = parse_vast(xml).expect("valid");
    let unknown = &first.ads[0].common().unknown;
    assert_eq!(unknown.len(), 2);
    assert_eq!(unknown[0].parent, "");
    assert_eq!(
        unknown[0].xml,
        r#"<VendorThing a="1"><x>y &amp; z</x></VendorThing>"#
    );
    assert_eq!(unknown[1].parent, "Creatives/Creative[1]/Linear/MediaFiles");
    let second = parse_vast(&write_vast(&first).expect("writable")).expect("written VAST parses");
    let third = parse_vast(&write_vast(&second).expect("writable")).expect("written VAST parses");
    assert_eq!(second.ads, first.ads);
    assert_eq!(third.ads, first.ads);
}

#[test]
fn placeholders_read_as_absent() {
    let xml = r#"<VAST version="4.1"><Ad><InLine><AdSystem/><Impression>about:blank</Impression>
        <AdServingId></AdServingId><AdTitle/><Creatives><Creative>
        <UniversalAdId idRegistry="unknown">unknown</UniversalAdId>
        <Linear><Duration>00:00:05</Duration><MediaFiles>
        <MediaFile delivery="progressive" type="video/mp4" width="1" height="1">https://m</MediaFile>
        </MediaFiles></Linear></Creative></Creatives></InLine></Ad></VAST>"#;
    let vast = parse_vast(xml).expect("valid");
    let inline = vast.ads[0].inline().expect("InLine");
    assert_eq!(inline.common.ad_system, None);
    assert!(inline.common.impressions.is_empty());
    assert_eq!(
        (inline.ad_serving_id.as_ref(), inline.ad_title.as_ref()),
        (None, None)
    );
    assert!(inline.creatives[0].universal_ad_ids.is_empty());
}

#[test]
fn vast_4_0_id_value_becomes_the_universal_ad_id() {
    let xml = r#"<VAST version="4.0"><Ad><InLine><AdSystem>s</AdSystem><AdTitle>t</AdTitle><Creatives>
        <Creative AdID="old"><UniversalAdId idRegistry="ad-id.org" idValue="CNPA0484000H"/></Creative>
        </Creatives></InLine></Ad></VAST>"#;
    let vast = parse_vast(xml).expect("valid");
    let c = &vast.ads[0].inline().expect("InLine").creatives[0];
    assert_eq!(c.ad_id.as_deref(), Some("old"));
    assert_eq!(
        c.universal_ad_ids,
        [UniversalAdId {
            id_registry: "ad-id.org".into(),
            value: "CNPA0484000H".into()
        }]
    );
}

#[test]
fn pricing_with_an_unexpanded_macro_is_kept_not_refused() {
    let xml = r#"<VAST version="4.2"><Ad><InLine><AdSystem>s</AdSystem>
        <Pricing model="CPM" currency="USD">${AUCTION_PRICE}</Pricing><AdTitle>t</AdTitle><Creatives>
        <Creative/></Creatives></InLine></Ad></VAST>"#;
    let vast = parse_vast(xml).expect("valid");
    let common = vast.ads[0].common();
    assert_eq!(common.pricing, None);
    assert!(common.unknown[0].xml.contains("AUCTION_PRICE"));
}

#[test]
fn utf8_bytes_with_a_byte_order_mark_parse() {
    let mut bytes = vec![0xEF, 0xBB, 0xBF];
    bytes.extend_from_slice(br#"<VAST version="4.2"/>"#);
    assert_eq!(parse_vast_bytes(&bytes).expect("valid").version, "4.2");
    assert!(matches!(
        parse_vast_bytes(&[b'<', 0xFF]),
        Err(Error::Xml { .. })
    ));
}
