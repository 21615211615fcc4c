//! The compatibility check of the event contract: the schema generated from the Rust types must not break
//! consumers of the published one (`docs/events.schema.json`). Breaking: a field removed or retyped, a field
//! newly required, an enum value removed. Additive changes pass; then regenerate the published file with
//! `UPDATE_EVENTS_SCHEMA=1 cargo test -p interlude-events --test contract_compat` and commit it.

use interlude_events::compat::breaking_changes;
use serde_json::Value;

const PUBLISHED: &str = "../../docs/events.schema.json";

#[test]
fn the_contract_stays_compatible_with_the_published_schema() {
    let generated = interlude_events::contract::json_schema();
    let published: Value = serde_json::from_str(
        &std::fs::read_to_string(PUBLISHED).expect("docs/events.schema.json is published"),
    )
    .expect("the published schema is JSON");
    // `{}` is the state before the first publication: nothing to be compatible with yet.
    let problems = if published == serde_json::json!({}) {
        Vec::new()
    } else {
        breaking_changes(&published, &generated)
    };
    assert!(
        problems.is_empty(),
        "breaking changes to the event contract:\n{}",
        problems.join("\n")
    );
    if std::env::var_os("UPDATE_EVENTS_SCHEMA").is_some() {
        let text = serde_json::to_string_pretty(&generated).unwrap_or_default() + "\n";
        std::fs::write(PUBLISHED, text).expect("writing the schema");
    } else {
        assert!(
            published == generated,
            "the contract changed compatibly: regenerate docs/events.schema.json (see this file's docs)"
        );
    }
}

#[test]
fn the_check_catches_each_kind_of_break() {
    let base = interlude_events::contract::json_schema();
    let mut removed = base.clone();
    removed["properties"]
        .as_object_mut()
        .unwrap()
        .remove("creative_id");
    assert!(
        breaking_changes(&base, &removed)
            .iter()
            .any(|p| p.contains("creative_id removed"))
    );

    let mut retyped = base.clone();
    retyped["properties"]["session_id"] = serde_json::json!({ "type": "integer" });
    assert!(
        breaking_changes(&base, &retyped)
            .iter()
            .any(|p| p.contains("session_id retyped"))
    );

    let mut required_more = base.clone();
    required_more["required"]
        .as_array_mut()
        .unwrap()
        .push("country".into());
    assert!(
        breaking_changes(&base, &required_more)
            .iter()
            .any(|p| p.contains("country newly required"))
    );

    let text = serde_json::to_string(&base)
        .unwrap()
        .replace("\"thirdQuartile\"", "\"q3\"");
    let renamed: Value = serde_json::from_str(&text).unwrap();
    assert!(
        breaking_changes(&base, &renamed)
            .iter()
            .any(|p| p.contains("thirdQuartile"))
    );

    let mut added = base.clone();
    added["properties"]["new_optional"] = serde_json::json!({ "type": ["string", "null"] });
    assert_eq!(
        breaking_changes(&base, &added),
        Vec::<String>::new(),
        "additions are compatible"
    );
}
