//! Regression tests for the decision features beyond the basic engine: creative rotation (even, weighted,
//! sequential across breaks), caps per advertiser, creative and session, separation across a viewer's
//! breaks, one ad per advertiser as a setting, position-in-pod and break-length targeting, codes compared
//! without case, and time zones checked at catalog load.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use interlude_decision::catalog::{Catalog, CatalogError};
use interlude_decision::engine::{Engine, EngineConfig, Verdict};
use interlude_decision::history::{MemoryHistory, PastImpression, ViewerHistory};
use interlude_decision::{PodRequest, ViewerContext};

fn now() -> DateTime<Utc> {
    "2026-11-23T20:00:00Z".parse().unwrap_or_default()
}

/// One line item: id (also its advertiser's and campaign's), tier, CPM, creatives (id, seconds), extra TOML.
type Item<'a> = (&'a str, &'a str, f64, &'a [(&'a str, u32)], &'a str);

/// A catalog of one advertiser per line item.
fn catalog(items: &[Item<'_>]) -> String {
    let mut t = String::new();
    for (id, tier, cpm, creatives, extra) in items {
        let refs: Vec<String> = creatives.iter().map(|(c, _)| format!("\"{c}\"")).collect();
        let refs = if extra.contains("creatives =") {
            String::new()
        } else {
            format!("creatives = [{}]", refs.join(", "))
        };
        t += &format!(
            r#"
[[advertisers]]
id = "{id}"
[[campaigns]]
id = "{id}"
advertiser = "{id}"
[[line_items]]
id = "{id}"
campaign = "{id}"
tier = "{tier}"
start = "2026-11-01T00:00:00Z"
end = "2026-12-01T00:00:00Z"
goal = {{ impressions = 1000000 }}
cpm = {cpm}
{refs}
{extra}
"#
        );
        for (c, secs) in creatives.iter() {
            t += &format!(
                r#"
[[creatives]]
id = "{c}"
advertiser = "{id}"
duration_secs = {secs}.0
approved = true
renditions = [{{ bandwidth = 1, playlist = "https://cdn.example/{c}.m3u8" }}]
"#
            );
        }
    }
    t
}

fn load(text: &str) -> Catalog {
    Catalog::from_toml(text).unwrap_or_else(|e| panic!("{e}"))
}

fn engine(text: &str, history: MemoryHistory, config: EngineConfig) -> Engine {
    let history = Arc::new(history);
    let counters = Arc::new(interlude_decision::testing::HourCounters::default());
    Engine::with_config(load(text), counters, Some(history), config)
}

fn request(viewer: &str, session: &str, break_id: &str, secs: f64) -> PodRequest {
    PodRequest {
        channel: "live1".into(),
        session_id: session.into(),
        break_id: break_id.into(),
        duration_secs: Some(secs),
        viewer: ViewerContext {
            viewer_id: Some(viewer.into()),
            country: Some("FR".into()),
            device: Some("tv".into()),
            consent: Some(true),
            ..ViewerContext::default()
        },
    }
}

fn seen(
    line_item: &str,
    creative: &str,
    session: &str,
    break_id: &str,
    ago_min: i64,
) -> PastImpression {
    PastImpression {
        line_item_id: line_item.into(),
        creative_id: Some(creative.into()),
        session_id: Some(session.into()),
        break_id: Some(break_id.into()),
        at: now() - TimeDelta::minutes(ago_min),
        count: 1,
        pending: false,
    }
}

fn history(viewer: &str, impressions: Vec<PastImpression>) -> MemoryHistory {
    let mut h = MemoryHistory::default();
    h.viewers
        .insert(viewer.into(), Arc::new(ViewerHistory { impressions }));
    h
}

fn creatives(e: &Engine, r: &PodRequest) -> Vec<String> {
    e.decide(r, now(), false)
        .pod
        .ads
        .iter()
        .map(|a| a.creative_id.clone())
        .collect()
}

#[test]
fn a_storyboard_plays_in_order_across_breaks() {
    let text = catalog(&[(
        "story",
        "standard",
        10.0,
        &[("part-1", 15), ("part-2", 15), ("part-3", 15)],
        r#"creatives = [{ id = "part-2", sequence = 2 }, { id = "part-1", sequence = 1 }, { id = "part-3", sequence = 3 }]"#,
    )]);
    let r = request("v1", "s1", "b3", 30.0);
    assert_eq!(
        creatives(
            &engine(&text, history("v1", vec![]), EngineConfig::default()),
            &r
        ),
        ["part-1"]
    );
    let after_one = history("v1", vec![seen("story", "part-1", "s1", "b1", 30)]);
    assert_eq!(
        creatives(&engine(&text, after_one, EngineConfig::default()), &r),
        ["part-2"]
    );
    let after_three = history(
        "v1",
        vec![
            seen("story", "part-1", "s1", "b1", 50),
            seen("story", "part-2", "s1", "b2", 40),
            seen("story", "part-3", "s1", "b2", 30),
        ],
    );
    assert_eq!(
        creatives(&engine(&text, after_three, EngineConfig::default()), &r),
        ["part-1"],
        "starts over"
    );
}

#[test]
fn weighted_rotation_follows_the_weights_and_even_rotation_shares() {
    let text = catalog(&[(
        "w",
        "standard",
        10.0,
        &[("heavy", 15), ("light", 15)],
        r#"creatives = [{ id = "heavy", weight = 3 }, { id = "light", weight = 1 }]"#,
    )]);
    let e = engine(&text, MemoryHistory::default(), EngineConfig::default());
    let heavy = (0..2000)
        .filter(|v| {
            creatives(&e, &request(&format!("v{v}"), &format!("s{v}"), "b1", 15.0)) == ["heavy"]
        })
        .count();
    assert!(
        (1350..1650).contains(&heavy),
        "{heavy} of 2000, expected ~1500"
    );
    let even = catalog(&[("e", "standard", 10.0, &[("a", 15), ("b", 15)], "")]);
    let e = engine(&even, MemoryHistory::default(), EngineConfig::default());
    let a = (0..2000)
        .filter(|v| {
            creatives(&e, &request(&format!("v{v}"), &format!("s{v}"), "b1", 15.0)) == ["a"]
        })
        .count();
    assert!((850..1150).contains(&a), "{a} of 2000, expected ~1000");
}

#[test]
fn with_ten_seconds_left_a_ten_second_creative_of_the_line_item_plays() {
    let text = catalog(&[
        ("sponsor", "sponsorship", 50.0, &[("s-20", 20)], ""),
        ("multi", "standard", 10.0, &[("m-30", 30), ("m-10", 10)], ""),
    ]);
    let e = engine(&text, MemoryHistory::default(), EngineConfig::default());
    // 20 s sponsor + the line item's 10 s creative fill 30 s; its 30 s creative would not fit.
    let mut picked = creatives(&e, &request("v1", "s1", "b1", 30.0));
    picked.sort();
    assert_eq!(picked, ["m-10", "s-20"]);
}

#[test]
fn creative_advertiser_and_session_caps_apply() {
    let text = catalog(&[
        (
            "li",
            "standard",
            10.0,
            &[("c-1", 15), ("c-2", 15)],
            "frequency_caps = [{ max = 1, window_hours = 24, scope = \"creative\" }]",
        ),
        ("house", "house", 0.0, &[("h", 15)], ""),
    ]);
    // c-1 seen: the line item rotates to c-2 whatever the draw; both seen: capped.
    let one = history("v1", vec![seen("li", "c-1", "old", "b0", 60)]);
    let e = engine(&text, one, EngineConfig::default());
    assert_eq!(creatives(&e, &request("v1", "s1", "b1", 15.0)), ["c-2"]);
    let both = history(
        "v1",
        vec![
            seen("li", "c-1", "old", "b0", 60),
            seen("li", "c-2", "old", "b0", 60),
        ],
    );
    let e = engine(&text, both, EngineConfig::default());
    let d = e.decide(&request("v1", "s1", "b1", 15.0), now(), true);
    assert_eq!(
        d.explanation
            .iter()
            .find(|(id, _)| id == "li")
            .map(|v| &v.1),
        Some(&Verdict::Capped)
    );

    let session = catalog(&[(
        "li",
        "standard",
        10.0,
        &[("c-1", 15)],
        "frequency_caps = [{ max = 1, window_hours = 24, scope = \"session\" }]",
    )]);
    let seen_elsewhere = history("v1", vec![seen("li", "c-1", "yesterday", "b0", 60)]);
    let e = engine(&session, seen_elsewhere, EngineConfig::default());
    assert_eq!(
        creatives(&e, &request("v1", "s1", "b1", 15.0)),
        ["c-1"],
        "another session does not count"
    );
    let seen_here = history("v1", vec![seen("li", "c-1", "s1", "b0", 10)]);
    let e = engine(&session, seen_here, EngineConfig::default());
    assert!(creatives(&e, &request("v1", "s1", "b1", 15.0)).is_empty());

    let mut advertiser = catalog(&[(
        "a1",
        "standard",
        10.0,
        &[("x", 15)],
        "frequency_caps = [{ max = 1, window_hours = 24, scope = \"advertiser\" }]",
    )]);
    // A second line item of the same advertiser, seen once: the first is capped through the advertiser.
    advertiser += r#"
[[campaigns]]
id = "a1-other"
advertiser = "a1"
[[line_items]]
id = "a1-b"
campaign = "a1-other"
tier = "standard"
start = "2026-11-01T00:00:00Z"
end = "2026-12-01T00:00:00Z"
goal = { impressions = 1000 }
cpm = 1.0
creatives = ["x"]
"#;
    let e = engine(
        &advertiser,
        history("v1", vec![seen("a1-b", "x", "old", "b0", 60)]),
        EngineConfig::default(),
    );
    let d = e.decide(&request("v1", "s1", "b1", 15.0), now(), true);
    assert_eq!(
        d.explanation
            .iter()
            .find(|(id, _)| id == "a1")
            .map(|v| &v.1),
        Some(&Verdict::Capped)
    );
}

#[test]
fn separation_across_breaks_and_one_ad_per_advertiser_are_settings() {
    let mut text = catalog(&[
        ("brand", "standard", 20.0, &[("b-15", 15)], ""),
        ("other", "standard", 5.0, &[("o-15", 15)], ""),
    ]);
    let last_break = history("v1", vec![seen("brand", "b-15", "s1", "b1", 3)]);
    let separated = EngineConfig {
        separate_breaks: true,
        ..EngineConfig::default()
    };
    let e = engine(&text, last_break, separated);
    assert_eq!(
        creatives(&e, &request("v1", "s1", "b2", 15.0)),
        ["o-15"],
        "brand sat in the previous break"
    );
    let e = engine(
        &text,
        history("v1", vec![seen("brand", "b-15", "s1", "b1", 3)]),
        EngineConfig::default(),
    );
    assert_eq!(
        creatives(&e, &request("v1", "s1", "b2", 15.0)),
        ["b-15"],
        "off by default"
    );

    // Two line items of one advertiser: one ad per pod unless the setting allows more.
    text += r#"
[[campaigns]]
id = "brand-2"
advertiser = "brand"
[[line_items]]
id = "brand-2"
campaign = "brand-2"
tier = "standard"
start = "2026-11-01T00:00:00Z"
end = "2026-12-01T00:00:00Z"
goal = { impressions = 1000 }
cpm = 15.0
creatives = ["b-15"]
"#;
    let e = engine(&text, MemoryHistory::default(), EngineConfig::default());
    assert_eq!(
        creatives(&e, &request("v1", "s1", "b2", 30.0)),
        ["b-15", "o-15"]
    );
    let many = EngineConfig {
        one_ad_per_advertiser: false,
        ..EngineConfig::default()
    };
    let e = engine(&text, MemoryHistory::default(), many);
    assert_eq!(
        creatives(&e, &request("v1", "s1", "b2", 30.0)),
        ["b-15", "b-15"]
    );
}

#[test]
fn position_and_break_length_targeting() {
    let text = catalog(&[
        (
            "closer",
            "sponsorship",
            50.0,
            &[("close", 10)],
            r#"targeting = { is = { field = "pod_position", values = ["LAST"] } }"#,
        ),
        ("a", "standard", 20.0, &[("a-10", 10)], ""),
        (
            "long-breaks",
            "standard",
            30.0,
            &[("l-10", 10)],
            r#"targeting = { between = { field = "break_duration", min = 60.0, max = 240.0 } }"#,
        ),
    ]);
    let e = engine(&text, MemoryHistory::default(), EngineConfig::default());
    // A 20 s break: too short for the long-break line item; the closer plays last.
    assert_eq!(
        creatives(&e, &request("v1", "s1", "b1", 20.0)),
        ["a-10", "close"]
    );
    let long = creatives(&e, &request("v1", "s1", "b2", 60.0));
    assert!(long.contains(&"l-10".to_owned()), "{long:?}");
    assert_eq!(long.last().map(String::as_str), Some("close"));
}

#[test]
fn codes_match_without_case_and_are_normalised_at_load() {
    let text = catalog(&[(
        "fr",
        "standard",
        10.0,
        &[("f", 15)],
        r#"targeting = { all = [{ is = { field = "country", values = ["fr"] } }, { is = { field = "device", values = ["TV"] } }] }"#,
    )]);
    let c = load(&text);
    assert_eq!(
        serde_json::to_value(&c.line_items[0].targeting).unwrap_or_default()["all"][0]["is"]["values"]
            [0],
        "FR"
    );
    let e = engine(&text, MemoryHistory::default(), EngineConfig::default());
    let mut r = request("v1", "s1", "b1", 15.0);
    r.viewer.country = Some("Fr".into());
    r.viewer.device = Some("tv".into());
    assert_eq!(creatives(&e, &r), ["f"]);
}

#[test]
fn an_unknown_time_zone_is_refused_at_load_with_its_path() {
    let text = catalog(&[(
        "evening",
        "standard",
        10.0,
        &[("e", 15)],
        r#"targeting = { all = [{ is = { field = "country", values = ["FR"] } }, { daypart = { timezone = "Europe/Pariss", hours = [20, 21] } }] }"#,
    )]);
    match Catalog::from_toml(&text) {
        Err(CatalogError::Invalid { path, reason }) => {
            assert_eq!(path, "line_items[0].targeting.all[1].daypart.timezone");
            assert_eq!(reason, "unknown time zone \"Europe/Pariss\"");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // In a known zone the daypart is the broadcaster's clock: 20:00Z is 21:00 in Paris.
    let ok = text.replace("Europe/Pariss", "Europe/Paris");
    let e = engine(&ok, MemoryHistory::default(), EngineConfig::default());
    assert_eq!(creatives(&e, &request("v1", "s1", "b1", 15.0)), ["e"]);
}
