//! The known stream through the durable store in batches, with the store closed and reopened halfway (a
//! restart) and the batch in flight at the restart sent again: every count equals the ground truth, and the log
//! holds each report once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use interlude_events::testing::known_stream;
use interlude_events::{Counts, Policy};
use interlude_store::{EventStore, GroupBy};

#[test]
fn counts_survive_a_restart_and_a_resent_batch_exactly() {
    let stream = known_stream(7, 1_000);
    let dir = tempfile::tempdir().unwrap();
    let batches: Vec<_> = stream.reports.chunks(500).collect();
    let half = batches.len() / 2;
    {
        let store = EventStore::open(dir.path(), Policy::default()).unwrap();
        for batch in &batches[..half] {
            store.ingest(batch, stream.now).unwrap();
        }
    }
    let store = EventStore::open(dir.path(), Policy::default()).unwrap();
    // The client never saw the acknowledgement of the last batch before the restart: it sends it again.
    store.ingest(batches[half - 1], stream.now).unwrap();
    for batch in &batches[half..] {
        store.ingest(batch, stream.now).unwrap();
    }

    let from = stream.now - chrono::TimeDelta::days(3);
    let by_line_item: BTreeMap<String, Counts> = store
        .report(GroupBy::LineItem, from, stream.now)
        .unwrap()
        .into_iter()
        .map(|r| (r.key, r.counts))
        .collect();
    assert_eq!(by_line_item, stream.truth, "reports");

    let mut billed: BTreeMap<String, Counts> = BTreeMap::new();
    let mut corrections = 0;
    for row in store.ledger().unwrap() {
        let total = billed.entry(row.line_item_id).or_default();
        total.add(&row.original);
        corrections += row.corrections.len();
        row.corrections.iter().for_each(|f| total.add(f));
    }
    assert_eq!(billed, stream.truth, "billing ledger");
    assert!(corrections > 0);

    // The resent batch's invalid reports are recognised as retries: each is quarantined once.
    let expected: BTreeMap<String, u64> = stream
        .quarantine
        .iter()
        .map(|(k, v)| ((*k).to_owned(), *v))
        .collect();
    assert_eq!(
        store.quarantine_counts().unwrap(),
        expected,
        "quarantine by reason"
    );
    // Retries (the stream's resent reports and the resent batch) are answered, not logged again.
    let distinct: std::collections::HashSet<&str> = stream
        .reports
        .iter()
        .map(|r| r.event.event_id.as_str())
        .collect();
    let stats = store.stats().unwrap();
    assert!(distinct.len() < stream.reports.len());
    assert_eq!(stats.logged as usize, distinct.len());
}

#[test]
fn the_store_decides_every_report_as_the_pure_pipeline_does() {
    use interlude_events::{MemoryState, Outcome, process};
    let stream = known_stream(11, 1_000);
    let dir = tempfile::tempdir().unwrap();
    let policy = Policy::default();
    let store = EventStore::open(dir.path(), policy.clone()).unwrap();
    let mut memory = MemoryState::default();
    // Batches of uneven sizes, so retries and duplicates fall both within and across commits.
    for batch in stream.reports.chunks(733) {
        let stored = store.ingest(batch, stream.now).unwrap();
        let pure: Vec<Outcome> = batch
            .iter()
            .map(|r| process(&mut memory, r, &policy, stream.now))
            .collect();
        assert_eq!(stored, pure);
    }
}
