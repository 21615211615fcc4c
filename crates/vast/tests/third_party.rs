//! What a third party put in its ad survives into the VAST we serve: an SSP's Wrapper around a DSP's
//! InLine ad with Open Measurement verification is resolved (the Wrapper's Error, Impression, ClickTracking,
//! CustomClick, tracking, ViewableImpression and AdVerifications merged into the InLine ad, VAST 4.2
//! §2.4.4), written as VAST 4.2 (valid against the IAB's `vast_4.2.xsd`) and read back: the DSP's
//! ClickThrough, ClickTracking, Error, AdServingId and OMID `Verification` (JavaScriptResource,
//! ExecutableResource, TrackingEvents, VerificationParameters) are all there, byte for byte.

mod common;

use std::future::Future;

use interlude_vast::macros::{MacroValues, Unfilled, expand};
use interlude_vast::{
    Error, ExecutableResource, Fetcher, JavaScriptResource, Offset, ResolveConfig, Result, Time,
    TrackingEvent, Verification, VerificationTracking, parse_vast, resolve, write_vast,
};

const DSP_INLINE: &str = r#"<VAST version="4.1"><Ad id="dsp-ad"><InLine>
  <AdSystem version="2.1">dsp</AdSystem>
  <Error><![CDATA[https://dsp.example/error?code=[ERRORCODE]&ts=[TIMESTAMP]]]></Error>
  <Impression id="dsp-imp"><![CDATA[https://dsp.example/imp?a=1&b=2]]></Impression>
  <AdServingId>dsp-8f9a2c40-6c1e-4e54-a1b0-3f1d0c7a9e11</AdServingId>
  <AdTitle>Brand spot</AdTitle>
  <AdVerifications>
    <Verification vendor="iabtechlab.com-omid">
      <JavaScriptResource apiFramework="omid" browserOptional="true"><![CDATA[https://verify.example/omid-validation.js]]></JavaScriptResource>
      <ExecutableResource apiFramework="omid" type="application/javascript"><![CDATA[https://verify.example/exec.js]]></ExecutableResource>
      <TrackingEvents>
        <Tracking event="verificationNotExecuted"><![CDATA[https://verify.example/vne?reason=[REASON]]]></Tracking>
      </TrackingEvents>
      <VerificationParameters><![CDATA[{"campaign":"c&d","beacon":"<x>"}]]></VerificationParameters>
    </Verification>
  </AdVerifications>
  <Creatives><Creative id="cr-1" adId="dsp-creative">
    <UniversalAdId idRegistry="ad-id.org">ABCD0001000H</UniversalAdId>
    <Linear>
      <Duration>00:00:15</Duration>
      <TrackingEvents><Tracking event="start">https://dsp.example/start</Tracking></TrackingEvents>
      <VideoClicks>
        <ClickThrough id="brand"><![CDATA[https://brand.example/landing?utm=a&x=[CLICKPOS]]]></ClickThrough>
        <ClickTracking id="dsp-click">https://dsp.example/click</ClickTracking>
      </VideoClicks>
      <MediaFiles>
        <MediaFile delivery="streaming" type="application/x-mpegURL" width="1920" height="1080">https://cdn.example/spot.m3u8</MediaFile>
      </MediaFiles>
    </Linear>
  </Creative></Creatives>
</InLine></Ad></VAST>"#;

const SSP_WRAPPER: &str = r#"<VAST version="4.2"><Ad id="ssp-ad" sequence="1"><Wrapper>
  <AdSystem>ssp</AdSystem>
  <Error>https://ssp.example/error?code=[ERRORCODE]</Error>
  <Impression>https://ssp.example/imp</Impression>
  <ViewableImpression><Viewable>https://ssp.example/viewable</Viewable></ViewableImpression>
  <VASTAdTagURI><![CDATA[https://dsp.example/vast?id=1]]></VASTAdTagURI>
  <AdVerifications>
    <Verification vendor="ssp-verifier.com-omid">
      <JavaScriptResource apiFramework="omid"><![CDATA[https://ssp-verifier.example/v.js]]></JavaScriptResource>
      <VerificationParameters>ssp=1</VerificationParameters>
    </Verification>
  </AdVerifications>
  <Creatives><Creative><Linear>
    <TrackingEvents>
      <Tracking event="start">https://ssp.example/start</Tracking>
      <Tracking event="progress" offset="00:00:05">https://ssp.example/5s</Tracking>
    </TrackingEvents>
    <VideoClicks>
      <ClickTracking>https://ssp.example/click</ClickTracking>
      <CustomClick id="cc">https://ssp.example/custom</CustomClick>
    </VideoClicks>
  </Linear></Creative></Creatives>
</Wrapper></Ad></VAST>"#;

struct Dsp;

impl Fetcher for Dsp {
    fn fetch(&self, uri: &str) -> impl Future<Output = Result<String>> + Send {
        let answer = match uri {
            "https://dsp.example/vast?id=1" => Ok(DSP_INLINE.to_string()),
            _ => Err(Error::Fetch {
                uri: uri.to_string(),
                reason: "HTTP 404".into(),
            }),
        };
        async move { answer }
    }
}

#[tokio::test(start_paused = true)]
async fn a_wrapped_third_party_ad_keeps_clicks_errors_serving_id_and_verification_when_served() {
    let top = parse_vast(SSP_WRAPPER).expect("valid");
    let resolved = resolve(top, &Dsp, &ResolveConfig::default()).await;
    assert_eq!(resolved.failures, []);
    assert_eq!(resolved.warnings, []);

    let written = write_vast(&resolved.vast).expect("writable");
    // Valid VAST 4.2 once the player's macros are filled.
    common::assert_valid_vast_4_2(&expand(
        &written,
        &MacroValues::new(),
        Unfilled::NotSupported,
    ));
    let served = parse_vast(&written).expect("what we write reads back");
    assert_eq!(served.ads, resolved.vast.ads, "the round trip is exact");

    let [ad] = served.ads.as_slice() else {
        panic!("one ad expected: {:?}", served.ads);
    };
    assert_eq!(
        (ad.id.as_deref(), ad.sequence),
        (Some("dsp-ad"), Some(1)),
        "the InLine keeps its id and takes the wrapper's place in the pod"
    );
    let inline = ad.inline().expect("InLine");
    assert_eq!(
        inline.ad_serving_id.as_deref(),
        Some("dsp-8f9a2c40-6c1e-4e54-a1b0-3f1d0c7a9e11")
    );
    assert_eq!(
        inline.common.errors,
        [
            "https://dsp.example/error?code=[ERRORCODE]&ts=[TIMESTAMP]",
            "https://ssp.example/error?code=[ERRORCODE]"
        ]
    );
    let impressions: Vec<_> = inline
        .common
        .impressions
        .iter()
        .map(|i| (i.id.as_deref(), i.url.as_str()))
        .collect();
    assert_eq!(
        impressions,
        [
            (Some("dsp-imp"), "https://dsp.example/imp?a=1&b=2"),
            (None, "https://ssp.example/imp")
        ]
    );
    let viewable = inline
        .common
        .viewable_impression
        .as_ref()
        .expect("the wrapper's ViewableImpression");
    assert_eq!(viewable.viewable, ["https://ssp.example/viewable"]);

    assert_eq!(
        inline.common.ad_verifications,
        [
            Verification {
                vendor: Some("iabtechlab.com-omid".into()),
                javascript_resources: vec![JavaScriptResource {
                    api_framework: Some("omid".into()),
                    browser_optional: Some(true),
                    url: "https://verify.example/omid-validation.js".into(),
                }],
                executable_resources: vec![ExecutableResource {
                    api_framework: Some("omid".into()),
                    resource_type: Some("application/javascript".into()),
                    url: "https://verify.example/exec.js".into(),
                }],
                tracking: vec![VerificationTracking {
                    event: "verificationNotExecuted".into(),
                    url: "https://verify.example/vne?reason=[REASON]".into(),
                }],
                verification_parameters: Some(r#"{"campaign":"c&d","beacon":"<x>"}"#.into()),
            },
            Verification {
                vendor: Some("ssp-verifier.com-omid".into()),
                javascript_resources: vec![JavaScriptResource {
                    api_framework: Some("omid".into()),
                    browser_optional: None,
                    url: "https://ssp-verifier.example/v.js".into(),
                }],
                verification_parameters: Some("ssp=1".into()),
                ..Verification::default()
            },
        ]
    );

    let linear = inline.creatives[0].linear.as_ref().expect("Linear");
    assert_eq!(linear.duration, Some(Time::from_secs(15)));
    let clicks = linear.video_clicks.as_ref().expect("VideoClicks");
    let click_through = clicks
        .click_through
        .as_ref()
        .expect("the DSP's ClickThrough");
    assert_eq!(
        (click_through.id.as_deref(), click_through.url.as_str()),
        (
            Some("brand"),
            "https://brand.example/landing?utm=a&x=[CLICKPOS]"
        )
    );
    let click_tracking: Vec<_> = clicks
        .click_tracking
        .iter()
        .map(|c| c.url.as_str())
        .collect();
    assert_eq!(
        click_tracking,
        ["https://dsp.example/click", "https://ssp.example/click"]
    );
    assert_eq!(clicks.custom_clicks[0].url, "https://ssp.example/custom");
    let tracking: Vec<_> = linear
        .tracking
        .iter()
        .map(|t| (t.event, t.offset, t.url.as_str()))
        .collect();
    assert_eq!(
        tracking,
        [
            (TrackingEvent::Start, None, "https://dsp.example/start"),
            (TrackingEvent::Start, None, "https://ssp.example/start"),
            (
                TrackingEvent::Progress,
                Some(Offset::Time(Time::from_secs(5))),
                "https://ssp.example/5s"
            ),
        ]
    );
}
