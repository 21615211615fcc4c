//! The compatibility check of the event contract: the schema generated from the Rust types must not break
//! consumers of the published one (`docs/events.schema.json`). Breaking: a field removed or retyped, a field
//! newly required, an enum value removed. Additive changes pass; then regenerate the published file with
//! `UPDATE_EVENTS_SCHEMA=1 cargo test -p interlude-events --test contract_compat` and commit it.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

const PUBLISHED: &str = "../../docs/events.schema.json";

/// A schema node with its documentation stripped: what a consumer's parser depends on.
fn shape(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "description" | "title" | "default"))
                .map(|(k, v)| (k.clone(), shape(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(shape).collect()),
        other => other.clone(),
    }
}

/// `(type, property) -> shape` for the root and every definition.
fn properties(schema: &Value) -> BTreeMap<(String, String), Value> {
    let mut out = BTreeMap::new();
    let mut types = vec![("AdEvent".to_owned(), schema)];
    if let Some(defs) = schema["definitions"].as_object() {
        types.extend(defs.iter().map(|(k, v)| (k.clone(), v)));
    }
    for (name, t) in types {
        if let Some(props) = t["properties"].as_object() {
            for (p, s) in props {
                out.insert((name.clone(), p.clone()), shape(s));
            }
        }
    }
    out
}

fn required(schema: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    let mut types = vec![("AdEvent".to_owned(), schema)];
    if let Some(defs) = schema["definitions"].as_object() {
        types.extend(defs.iter().map(|(k, v)| (k.clone(), v)));
    }
    for (name, t) in types {
        for r in t["required"].as_array().into_iter().flatten() {
            out.insert((name.clone(), r.as_str().unwrap_or_default().to_owned()));
        }
    }
    out
}

fn enum_values(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "enum" {
                    for e in v.as_array().into_iter().flatten() {
                        out.insert(e.to_string());
                    }
                } else {
                    enum_values(v, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| enum_values(i, out)),
        _ => {}
    }
}

/// Every way `new` breaks consumers of `old`.
fn breaking_changes(old: &Value, new: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let new_props = properties(new);
    for (key, old_shape) in properties(old) {
        match new_props.get(&key) {
            None => problems.push(format!("{}.{} removed", key.0, key.1)),
            Some(s) if *s != old_shape => {
                problems.push(format!("{}.{} retyped: {old_shape} -> {s}", key.0, key.1))
            }
            Some(_) => {}
        }
    }
    // A field newly required of a type old producers already write breaks them; a new type's fields do not.
    let old_props = properties(old);
    let old_types: BTreeSet<&String> = old_props.keys().map(|(t, _)| t).collect();
    for key in required(new).difference(&required(old)) {
        if old_types.contains(&key.0) {
            problems.push(format!("{}.{} newly required", key.0, key.1));
        }
    }
    let (mut old_enums, mut new_enums) = (BTreeSet::new(), BTreeSet::new());
    enum_values(old, &mut old_enums);
    enum_values(new, &mut new_enums);
    for gone in old_enums.difference(&new_enums) {
        problems.push(format!("enum value {gone} removed"));
    }
    problems
}

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
