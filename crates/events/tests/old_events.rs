//! Old events still validate: events written by producers of contract version 1.0
//! (`tests/data/events-1.0.jsonl`, written field by field against `docs/events.md` as published with 1.0: the
//! minimal form, every optional field, an error with its VAST code, a third-party report, a click and a mute)
//! must parse with today's types and pass the contract's checks, and today's schema must not break the
//! published one. Together with `contract_compat` this is the policy: additive changes only within a major.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use interlude_events::compat::compare;
use interlude_events::contract::{AdEvent, json_schema};
use interlude_events::contract_check;

#[test]
fn events_of_version_1_0_parse_and_validate_today() {
    let text = include_str!("data/events-1.0.jsonl");
    let mut n = 0;
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let event: AdEvent = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("line {}: no longer parses: {e}", i + 1));
        contract_check(&event).unwrap_or_else(|e| panic!("line {}: no longer valid: {e}", i + 1));
        n += 1;
    }
    assert_eq!(n, 6);
}

#[test]
fn todays_schema_only_adds_to_the_published_one() {
    let published: serde_json::Value =
        serde_json::from_str(include_str!("../../../docs/events.schema.json")).unwrap();
    let changes = compare(&published, &json_schema());
    assert_eq!(changes.breaking, Vec::<String>::new());
}
