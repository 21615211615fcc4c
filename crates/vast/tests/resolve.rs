//! Wrapper resolution over an in-memory fetcher, on tokio's paused clock: chains merge their tracking,
//! limits and failures give the right VAST error code, pinged through every wrapper's Error URIs.

mod common;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use interlude_vast::macros::{MacroValues, Unfilled, expand};
use interlude_vast::resolve::WrapperErrorCode;
use interlude_vast::{
    Error, Fetcher, ResolveConfig, ResolveLimits, Result, TrackingEvent, parse_vast, resolve,
    resolve_tag, resolve_with, write_vast,
};

/// Documents by URI, each answered after a delay; records what was asked.
#[derive(Default)]
struct MapFetcher {
    docs: HashMap<String, (Duration, std::result::Result<String, String>)>,
    calls: Mutex<Vec<String>>,
}

impl MapFetcher {
    fn with(mut self, uri: &str, doc: String) -> Self {
        self.docs.insert(uri.to_string(), (Duration::ZERO, Ok(doc)));
        self
    }

    fn slow(mut self, uri: &str, delay: Duration, doc: String) -> Self {
        self.docs.insert(uri.to_string(), (delay, Ok(doc)));
        self
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().expect("not poisoned").clone()
    }
}

impl Fetcher for MapFetcher {
    fn fetch(&self, uri: &str) -> impl Future<Output = Result<String>> + Send {
        self.calls
            .lock()
            .expect("not poisoned")
            .push(uri.to_string());
        let entry = self.docs.get(uri).cloned();
        let uri = uri.to_string();
        async move {
            match entry {
                None => Err(Error::Fetch {
                    uri,
                    reason: "HTTP 404".into(),
                }),
                Some((delay, answer)) => {
                    tokio::time::sleep(delay).await;
                    answer.map_err(|reason| Error::Fetch { uri, reason })
                }
            }
        }
    }
}

fn inline_ad(id: &str, sequence: Option<u32>) -> String {
    let seq = sequence
        .map(|s| format!(r#" sequence="{s}""#))
        .unwrap_or_default();
    format!(
        r#"<Ad id="{id}"{seq}><InLine><AdSystem>dsp</AdSystem><Error>https://e.example/{id}?code=[ERRORCODE]</Error>
        <Impression>https://i.example/{id}</Impression><AdServingId>dsp-{id}</AdServingId><AdTitle>{id}</AdTitle>
        <Creatives><Creative><Linear><TrackingEvents><Tracking event="start">https://t.example/{id}/start</Tracking>
        </TrackingEvents><Duration>00:00:15</Duration><MediaFiles>
        <MediaFile delivery="streaming" type="application/x-mpegURL" width="1280" height="720">https://m.example/{id}.m3u8</MediaFile>
        </MediaFiles><VideoClicks><ClickThrough>https://brand.example/</ClickThrough>
        <ClickTracking>https://c.example/{id}</ClickTracking></VideoClicks></Linear>
        <UniversalAdId idRegistry="ad-id.org">{id}</UniversalAdId></Creative></Creatives></InLine></Ad>"#
    )
}

fn wrapper_ad(id: &str, next: &str, attrs: &str) -> String {
    format!(
        r#"<Ad id="{id}"><Wrapper {attrs}><AdSystem>ssp</AdSystem><Error>https://e.example/{id}?code=[ERRORCODE]</Error>
        <Impression>https://i.example/{id}</Impression><Creatives><Creative><Linear><TrackingEvents>
        <Tracking event="start">https://t.example/{id}/start</Tracking></TrackingEvents><VideoClicks>
        <ClickTracking>https://c.example/{id}</ClickTracking></VideoClicks></Linear></Creative></Creatives>
        <VASTAdTagURI>{next}</VASTAdTagURI></Wrapper></Ad>"#
    )
}

fn vast(ads: &[String]) -> String {
    format!(r#"<VAST version="4.2">{}</VAST>"#, ads.concat())
}

/// A chain `w1 → … → wN → inline`, served from `https://x/wK`.
fn chain(n: usize) -> MapFetcher {
    let mut f = MapFetcher::default();
    for k in 2..=n {
        f = f.with(
            &format!("https://x/w{k}"),
            vast(&[wrapper_ad(
                &format!("w{k}"),
                &format!("https://x/w{}", k + 1),
                "",
            )]),
        );
    }
    f.with(
        &format!("https://x/w{}", n + 1),
        vast(&[inline_ad("final", None)]),
    )
}

#[tokio::test(start_paused = true)]
async fn a_chain_of_wrappers_merges_every_hops_tracking_into_the_inline_ad() {
    let fetcher = chain(3);
    let top = parse_vast(&vast(&[wrapper_ad("w1", "https://x/w2", "")])).expect("valid");
    let resolved = resolve(top, &fetcher, &ResolveConfig::default()).await;
    assert_eq!(resolved.failures, []);
    assert_eq!(
        fetcher.calls(),
        ["https://x/w2", "https://x/w3", "https://x/w4"]
    );
    let [ad] = resolved.vast.ads.as_slice() else {
        panic!("one ad expected, got {:?}", resolved.vast.ads);
    };
    let inline = ad.inline().expect("resolved to an InLine");
    let urls =
        |v: &[interlude_vast::Impression]| v.iter().map(|i| i.url.clone()).collect::<Vec<_>>();
    assert_eq!(
        urls(&inline.common.impressions),
        [
            "https://i.example/final",
            "https://i.example/w3",
            "https://i.example/w2",
            "https://i.example/w1"
        ]
    );
    assert_eq!(inline.common.errors.len(), 4);
    let linear = inline.creatives[0].linear.as_ref().expect("Linear");
    let starts: Vec<&str> = linear
        .tracking
        .iter()
        .filter(|t| t.event == TrackingEvent::Start)
        .map(|t| t.url.as_str())
        .collect();
    assert_eq!(
        starts,
        [
            "https://t.example/final/start",
            "https://t.example/w3/start",
            "https://t.example/w2/start",
            "https://t.example/w1/start"
        ]
    );
    assert_eq!(
        linear
            .video_clicks
            .as_ref()
            .expect("clicks")
            .click_tracking
            .len(),
        4
    );
    // What the ad API would send a player is valid VAST 4.2 (once the players' macros are filled).
    let written = write_vast(&resolved.vast).expect("writable");
    common::assert_valid_vast_4_2(&expand(
        &written,
        &MacroValues::new(),
        Unfilled::NotSupported,
    ));
}

#[tokio::test(start_paused = true)]
async fn a_chain_longer_than_the_limit_fails_with_302_through_every_wrappers_error_uri() {
    let fetcher = chain(9);
    let top = parse_vast(&vast(&[wrapper_ad("w1", "https://x/w2", "")])).expect("valid");
    let resolved = resolve(top, &fetcher, &ResolveConfig::default()).await;
    assert!(resolved.vast.ads.is_empty());
    let [failure] = resolved.failures.as_slice() else {
        panic!("one failure expected: {:?}", resolved.failures);
    };
    assert_eq!(failure.code, WrapperErrorCode::WrapperLimit);
    assert_eq!(failure.ad_id.as_deref(), Some("w1"));
    // The default depth is MediaTailor's 7: seven documents fetched (w2..w8); w8 is the eighth wrapper and
    // is not followed.
    assert_eq!(fetcher.calls().len(), 7);
    assert_eq!(failure.chain.len(), 8);
    let expected: Vec<String> = (1..=8)
        .map(|k| format!("https://e.example/w{k}?code=302"))
        .collect();
    assert_eq!(failure.pings, expected);
}

#[tokio::test(start_paused = true)]
async fn the_depth_is_configurable() {
    let fetcher = chain(2);
    let top = parse_vast(&vast(&[wrapper_ad("w1", "https://x/w2", "")])).expect("valid");
    let config = ResolveConfig {
        max_depth: 1,
        ..ResolveConfig::default()
    };
    let resolved = resolve(top, &fetcher, &config).await;
    assert_eq!(resolved.failures[0].code, WrapperErrorCode::WrapperLimit);
    assert_eq!(fetcher.calls(), ["https://x/w2"]);
}

#[tokio::test(start_paused = true)]
async fn a_slow_hop_times_out_with_301() {
    let fetcher = MapFetcher::default().slow(
        "https://x/slow",
        Duration::from_secs(10),
        vast(&[inline_ad("late", None)]),
    );
    let top = parse_vast(&vast(&[wrapper_ad("w1", "https://x/slow", "")])).expect("valid");
    let started = tokio::time::Instant::now();
    let resolved = resolve(top, &fetcher, &ResolveConfig::default()).await;
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(3),
        "the hop timeout bounds the wait"
    );
    assert_eq!(resolved.failures[0].code, WrapperErrorCode::Timeout);
    assert_eq!(
        resolved.failures[0].pings,
        ["https://e.example/w1?code=301"]
    );
}

#[tokio::test(start_paused = true)]
async fn the_total_timeout_bounds_a_chain_of_hops_each_within_its_own_limit() {
    let mut fetcher = MapFetcher::default();
    for k in 2..=4 {
        let doc = vast(&[wrapper_ad(
            &format!("w{k}"),
            &format!("https://x/w{}", k + 1),
            "",
        )]);
        fetcher = fetcher.slow(&format!("https://x/w{k}"), Duration::from_secs(2), doc);
    }
    let top = parse_vast(&vast(&[wrapper_ad("w1", "https://x/w2", "")])).expect("valid");
    let started = tokio::time::Instant::now();
    let resolved = resolve(top, &fetcher, &ResolveConfig::default()).await;
    assert_eq!(started.elapsed(), Duration::from_secs(5));
    assert_eq!(resolved.failures[0].code, WrapperErrorCode::Timeout);
    assert_eq!(resolved.failures[0].chain.len(), 3);
    assert_eq!(resolved.failures[0].pings.len(), 3);
}

#[tokio::test(start_paused = true)]
async fn an_empty_answer_is_303_and_pings_its_root_errors_too() {
    let empty =
        r#"<VAST version="4.2"><Error>https://e.example/none?code=[ERRORCODE]</Error></VAST>"#;
    let fetcher = MapFetcher::default().with("https://x/empty", empty.to_string());
    let top = parse_vast(&vast(&[wrapper_ad("w1", "https://x/empty", "")])).expect("valid");
    let resolved = resolve(top, &fetcher, &ResolveConfig::default()).await;
    assert_eq!(resolved.failures[0].code, WrapperErrorCode::NoAds);
    assert_eq!(
        resolved.failures[0].pings,
        [
            "https://e.example/w1?code=303",
            "https://e.example/none?code=303"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn unreachable_and_unparsable_answers_are_301_and_100() {
    let fetcher = MapFetcher::default().with("https://x/garbage", "<html><body>oops".to_string());
    let top = parse_vast(&vast(&[
        wrapper_ad("w1", "https://x/missing", ""),
        wrapper_ad("w2", "https://x/garbage", ""),
    ]))
    .expect("valid");
    let resolved = resolve(top, &fetcher, &ResolveConfig::default()).await;
    let codes: Vec<_> = resolved.failures.iter().map(|f| f.code).collect();
    assert_eq!(
        codes,
        [WrapperErrorCode::Timeout, WrapperErrorCode::XmlParse]
    );
    assert!(resolved.failures[0].detail.contains("HTTP 404"));
}

#[tokio::test(start_paused = true)]
async fn a_pod_resolves_concurrently_and_keeps_its_order_and_sequences() {
    let fetcher = MapFetcher::default()
        .slow(
            "https://x/a",
            Duration::from_secs(2),
            vast(&[inline_ad("a", None)]),
        )
        .slow(
            "https://x/c",
            Duration::from_secs(1),
            vast(&[inline_ad("c", None)]),
        );
    let mut first = wrapper_ad("wa", "https://x/a", "");
    first = first.replacen(r#"<Ad id="wa">"#, r#"<Ad id="wa" sequence="1">"#, 1);
    let mut third = wrapper_ad("wc", "https://x/c", "");
    third = third.replacen(r#"<Ad id="wc">"#, r#"<Ad id="wc" sequence="3">"#, 1);
    let top = parse_vast(&vast(&[first, inline_ad("b", Some(2)), third])).expect("valid");
    let started = tokio::time::Instant::now();
    let resolved = resolve(top, &fetcher, &ResolveConfig::default()).await;
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(2),
        "hops run side by side"
    );
    let ids: Vec<_> = resolved
        .vast
        .ads
        .iter()
        .map(|a| (a.id.clone().unwrap_or_default(), a.sequence))
        .collect();
    assert_eq!(
        ids,
        [
            ("a".into(), Some(1)),
            ("b".into(), Some(2)),
            ("c".into(), Some(3))
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn without_allow_multiple_ads_a_pod_answer_gives_its_first_standalone_ad() {
    let pod = vast(&[
        inline_ad("p1", Some(1)),
        inline_ad("p2", Some(2)),
        inline_ad("solo", None),
    ]);
    let fetcher = MapFetcher::default().with("https://x/pod", pod);
    let single = parse_vast(&vast(&[wrapper_ad("w1", "https://x/pod", "")])).expect("valid");
    let resolved = resolve(single, &fetcher, &ResolveConfig::default()).await;
    let ids: Vec<_> = resolved
        .vast
        .ads
        .iter()
        .filter_map(|a| a.id.clone())
        .collect();
    assert_eq!(ids, ["solo"]);
    let multiple = parse_vast(&vast(&[wrapper_ad(
        "w1",
        "https://x/pod",
        r#"allowMultipleAds="true""#,
    )]))
    .expect("valid");
    let resolved = resolve(multiple, &fetcher, &ResolveConfig::default()).await;
    assert_eq!(resolved.vast.ads.len(), 3);
}

#[tokio::test(start_paused = true)]
async fn follow_additional_wrappers_false_stops_at_the_next_wrapper() {
    let fetcher = chain(2);
    let top = parse_vast(&vast(&[wrapper_ad(
        "w1",
        "https://x/w2",
        r#"followAdditionalWrappers="0""#,
    )]))
    .expect("valid");
    let resolved = resolve(top, &fetcher, &ResolveConfig::default()).await;
    assert_eq!(resolved.failures[0].code, WrapperErrorCode::WrapperLimit);
    assert_eq!(fetcher.calls(), ["https://x/w2"]);
}

#[tokio::test(start_paused = true)]
async fn a_third_party_tag_is_fetched_then_resolved() {
    let fetcher = chain(2).with(
        "https://dsp.example/tag",
        vast(&[wrapper_ad("w1", "https://x/w2", "")]),
    );
    let resolved = resolve_tag(
        "https://dsp.example/tag",
        &fetcher,
        &ResolveConfig::default(),
    )
    .await;
    assert_eq!(resolved.failures, []);
    assert_eq!(resolved.vast.ads[0].id.as_deref(), Some("final"));
    let failed = resolve_tag(
        "https://dsp.example/none",
        &fetcher,
        &ResolveConfig::default(),
    )
    .await;
    assert_eq!(failed.failures[0].code, WrapperErrorCode::Timeout);
    assert!(failed.failures[0].pings.is_empty());
}

fn with_duration(ad: String, duration: &str) -> String {
    ad.replace(
        "<Duration>00:00:15</Duration>",
        &format!("<Duration>{duration}</Duration>"),
    )
}

#[tokio::test(start_paused = true)]
async fn one_bad_ad_in_a_wrapper_answer_is_its_own_failure_and_the_others_are_used() {
    let answer = vast(&[
        with_duration(inline_ad("bad", None), "undefined"),
        inline_ad("good", None),
    ]);
    let fetcher = MapFetcher::default().with("https://x/pod", answer);
    let top = parse_vast(&vast(&[wrapper_ad(
        "w1",
        "https://x/pod",
        r#"allowMultipleAds="true""#,
    )]))
    .expect("valid");
    let resolved = resolve(top, &fetcher, &ResolveConfig::default()).await;
    let ids: Vec<_> = resolved
        .vast
        .ads
        .iter()
        .filter_map(|a| a.id.clone())
        .collect();
    assert_eq!(ids, ["good"]);
    let [failure] = resolved.failures.as_slice() else {
        panic!("one failure expected: {:?}", resolved.failures);
    };
    assert_eq!(failure.code, WrapperErrorCode::SchemaValidation);
    assert_eq!(failure.chain, ["https://x/pod"]);
    assert!(
        failure
            .detail
            .starts_with(r#"ad "bad" dropped: VAST/Ad[1]/InLine"#),
        "{}",
        failure.detail
    );
    // The broken ad's own server is told; the wrapper's chain succeeded, so its server is not.
    assert_eq!(failure.pings, ["https://e.example/bad?code=101"]);
}

#[tokio::test(start_paused = true)]
async fn an_answer_whose_every_ad_is_dropped_fails_the_chain_with_that_code() {
    let answer = vast(&[with_duration(inline_ad("bad", None), "")]);
    let fetcher = MapFetcher::default().with("https://x/bad", answer);
    let top = parse_vast(&vast(&[wrapper_ad("w1", "https://x/bad", "")])).expect("valid");
    let resolved = resolve(top, &fetcher, &ResolveConfig::default()).await;
    assert!(resolved.vast.ads.is_empty());
    let pings: Vec<_> = resolved
        .failures
        .iter()
        .map(|f| (f.code.code(), f.pings.clone()))
        .collect();
    assert_eq!(
        pings,
        [
            (101, vec!["https://e.example/bad?code=101".to_string()]),
            (101, vec!["https://e.example/w1?code=101".to_string()]),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn wrong_roots_and_unsupported_versions_are_101_and_102() {
    let fetcher = MapFetcher::default()
        .with("https://x/html", "<html><body>ad</body></html>".to_string())
        .with("https://x/v5", r#"<VAST version="5.0"/>"#.to_string());
    let top = parse_vast(&vast(&[
        wrapper_ad("w1", "https://x/html", ""),
        wrapper_ad("w2", "https://x/v5", ""),
    ]))
    .expect("valid");
    let resolved = resolve(top, &fetcher, &ResolveConfig::default()).await;
    let pings: Vec<_> = resolved.failures.iter().map(|f| f.pings.clone()).collect();
    assert_eq!(
        pings,
        [
            ["https://e.example/w1?code=101"],
            ["https://e.example/w2?code=102"]
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_tag_answer_reports_each_bad_ad_and_resolves_the_others_including_a_legacy_wrapper() {
    let legacy = r#"<Ad id="legacy"><Wrapper><AdSystem>old</AdSystem>
        <VASTAdTagURL><URL><![CDATA[https://x/w2]]></URL></VASTAdTagURL>
        <Error>https://e.example/legacy?code=[ERRORCODE]</Error>
        <Impression>https://i.example/legacy</Impression></Wrapper></Ad>"#;
    let tag = format!(
        r#"<VAST version="2.0">{}{legacy}</VAST>"#,
        with_duration(inline_ad("bad", None), "n/a")
    );
    let fetcher = chain(1).with("https://dsp.example/tag", tag);
    let resolved = resolve_tag(
        "https://dsp.example/tag",
        &fetcher,
        &ResolveConfig::default(),
    )
    .await;
    let ids: Vec<_> = resolved
        .vast
        .ads
        .iter()
        .filter_map(|a| a.id.clone())
        .collect();
    assert_eq!(ids, ["final"]);
    let impressions: Vec<_> = resolved.vast.ads[0]
        .common()
        .impressions
        .iter()
        .map(|i| i.url.as_str())
        .collect();
    assert_eq!(
        impressions,
        ["https://i.example/final", "https://i.example/legacy"]
    );
    let [failure] = resolved.failures.as_slice() else {
        panic!("one failure expected: {:?}", resolved.failures);
    };
    assert_eq!(
        (failure.code.code(), failure.ad_id.as_deref()),
        (101, Some("bad"))
    );
    assert_eq!(failure.chain, ["https://dsp.example/tag"]);
    assert_eq!(failure.pings, ["https://e.example/bad?code=101"]);
    let [warning] = resolved.warnings.as_slice() else {
        panic!("one warning expected: {:?}", resolved.warnings);
    };
    assert_eq!(warning.uri, "https://dsp.example/tag");
    assert_eq!(warning.warning.path, "VAST/Ad[2]/Wrapper/VASTAdTagURL");
}

#[tokio::test(start_paused = true)]
async fn the_fetch_budget_bounds_a_fan_out_of_wrapper_pods() {
    // Every answer is a pod of three wrappers pointing back at the same document: without a budget, 3^7
    // fetches.
    let fan = vast(&[
        wrapper_ad("f1", "https://x/fan", r#"allowMultipleAds="true""#),
        wrapper_ad("f2", "https://x/fan", r#"allowMultipleAds="true""#),
        wrapper_ad("f3", "https://x/fan", r#"allowMultipleAds="true""#),
    ]);
    let fetcher = MapFetcher::default().with("https://x/fan", fan.clone());
    let top = parse_vast(&fan).expect("valid");
    let limits = ResolveLimits {
        max_fetches: 20,
        ..ResolveLimits::default()
    };
    let resolved = resolve_with(top, &fetcher, &ResolveConfig::default(), &limits).await;
    assert_eq!(fetcher.calls().len(), 20);
    assert!(resolved.vast.ads.is_empty());
    assert!(
        resolved
            .failures
            .iter()
            .all(|f| f.code == WrapperErrorCode::WrapperLimit),
        "{:?}",
        resolved.failures
    );
    let default_budget = resolve(
        parse_vast(&fan).expect("valid"),
        &fetcher,
        &ResolveConfig::default(),
    )
    .await;
    assert!(default_budget.failures.len() > 100);
    assert_eq!(
        fetcher.calls().len(),
        20 + ResolveLimits::default().max_fetches
    );
}

#[tokio::test(start_paused = true)]
async fn pings_per_failure_are_bounded() {
    let errors: String = (0..100)
        .map(|i| format!("<Error>https://e.example/many/{i}?code=[ERRORCODE]</Error>"))
        .collect();
    let top = vast(&[wrapper_ad("w1", "https://x/missing", "")]).replace(
        "<AdSystem>ssp</AdSystem>",
        &format!("<AdSystem>ssp</AdSystem>{errors}"),
    );
    let top = parse_vast(&top).expect("valid");
    let resolved = resolve(top, &MapFetcher::default(), &ResolveConfig::default()).await;
    assert_eq!(resolved.failures[0].code, WrapperErrorCode::Timeout);
    assert_eq!(resolved.failures[0].pings.len(), 32);
    assert_eq!(
        resolved.failures[0].pings[31],
        "https://e.example/many/31?code=301"
    );
}
