//! Catalog loading: the example parses and validates; each kind of mistake is refused with its path.

use interlude_decision::catalog::{Catalog, CatalogError};

const EXAMPLE: &str = include_str!("data/catalog.toml");

#[test]
fn the_example_catalog_loads() {
    let catalog = Catalog::from_toml(EXAMPLE).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(catalog.line_items.len(), 4);
    let carco = &catalog.line_items[1];
    assert_eq!(
        Catalog::goal_impressions(carco),
        5_000_000,
        "120,000 at 24 CPM"
    );
}

fn refused(edit: impl Fn(&mut Catalog)) -> String {
    let mut catalog = Catalog::from_toml(EXAMPLE).unwrap_or_else(|e| panic!("{e}"));
    edit(&mut catalog);
    match catalog.validate() {
        Err(CatalogError::Invalid { path, reason }) => format!("{path}: {reason}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn mistakes_are_refused_with_their_path() {
    assert_eq!(
        refused(|c| c.line_items[2].campaign = "nope".into()),
        "line_items[2].campaign: no campaign \"nope\""
    );
    assert_eq!(
        refused(|c| c.line_items[0].end = c.line_items[0].start),
        "line_items[0].end: must be after start"
    );
    assert_eq!(
        refused(|c| c.line_items[3].cpm = -1.0),
        "line_items[3].cpm: must be a non-negative number"
    );
    assert_eq!(
        refused(|c| c.line_items[1].creatives.push("brewer-15".into())),
        "line_items[1].creatives[2]: creative \"brewer-15\" belongs to \"brewer\", the campaign to \"carco\""
    );
    assert_eq!(
        refused(|c| c.creatives[0].duration_secs = 0.0),
        "creatives[0].duration_secs: must be > 0"
    );
    assert_eq!(
        refused(|c| c.creatives[4].renditions.clear()),
        "creatives[4].renditions: needs renditions, or a vast_tag for third-party demand"
    );
    assert_eq!(
        refused(|c| c.advertisers[1].id = "brewer".into()),
        "advertisers[1].id: duplicates \"brewer\""
    );
    assert_eq!(
        refused(|c| c.campaigns[1].frequency_caps[0].window_hours = 0),
        "campaigns[1].frequency_caps[0].window_hours: must be > 0"
    );
}

#[test]
fn a_typo_in_a_key_is_refused_by_name() {
    let text = EXAMPLE.replace("first_in_pod = true", "first_in_pd = true");
    match Catalog::from_toml(&text) {
        Err(CatalogError::Parse(message)) => assert!(message.contains("first_in_pd"), "{message}"),
        other => panic!("expected a parse error, got {other:?}"),
    }
}
