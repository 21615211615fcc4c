//! The compatibility policy of the event contract, as code: within a major version only additive changes are
//! allowed (new optional fields, new enum values); a field removed or retyped, a field newly required of an
//! existing type, or an enum value removed breaks consumers and needs a new major version (`docs/events.md`).
//! [`compare`] is what `interlude contract diff` and the contract's test run.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// How one schema differs from another.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Changes {
    /// Changes that break consumers of the old schema.
    pub breaking: Vec<String>,
    /// Compatible additions.
    pub additive: Vec<String>,
}

/// Compares `new` against `old` (both JSON Schemas of the contract).
pub fn compare(old: &Value, new: &Value) -> Changes {
    let (old_props, new_props) = (properties(old), properties(new));
    let additive = new_props
        .keys()
        .filter(|k| !old_props.contains_key(*k))
        .map(|(t, p)| format!("{t}.{p} added"))
        .chain({
            let (mut o, mut n) = (BTreeSet::new(), BTreeSet::new());
            enum_values(old, &mut o);
            enum_values(new, &mut n);
            n.difference(&o)
                .map(|v| format!("enum value {v} added"))
                .collect::<Vec<_>>()
        })
        .collect();
    Changes {
        breaking: breaking_changes(old, new),
        additive,
    }
}

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
pub fn breaking_changes(old: &Value, new: &Value) -> Vec<String> {
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
