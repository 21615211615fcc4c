//! A known stream through the pipeline core (see `interlude_events::testing`): every report count must
//! equal the ground truth, exactly.

use std::collections::{BTreeMap, HashMap};

use interlude_events::testing::known_stream;
use interlude_events::{Counts, MemoryState, Outcome, Policy, process};

#[test]
fn every_count_matches_the_ground_truth() {
    let stream = known_stream(0x1D7E_4C0D_E5EE_D001, 3_000);
    let (reports, truth, expected_quarantine, now) = (
        &stream.reports,
        &stream.truth,
        &stream.quarantine,
        stream.now,
    );
    let policy = Policy::default();
    let mut state = MemoryState::default();
    let (mut counted, mut corrections) = (0u64, 0u64);
    for r in reports {
        if let Outcome::Counted { correction } = process(&mut state, r, &policy, now) {
            counted += 1;
            corrections += u64::from(correction);
        }
    }

    // Per line item, from the windows (reporting) and from the ledger (billing: originals + corrections).
    let mut by_window: BTreeMap<String, Counts> = BTreeMap::new();
    for (key, c) in &state.windows() {
        by_window
            .entry(key.line_item_id.clone())
            .or_default()
            .add(c);
    }
    let mut by_ledger: BTreeMap<String, Counts> = BTreeMap::new();
    for (key, (original, fixes)) in &state.ledger() {
        let total = by_ledger.entry(key.line_item_id.clone()).or_default();
        total.add(original);
        fixes.iter().for_each(|f| total.add(f));
    }
    assert_eq!(&by_window, truth, "reporting windows");
    assert_eq!(&by_ledger, truth, "billing ledger");
    let truth_total: u64 = truth
        .values()
        .map(|c| {
            c.impressions
                + c.starts
                + c.first_quartiles
                + c.midpoints
                + c.third_quartiles
                + c.completes
        })
        .sum();
    assert_eq!(counted, truth_total);
    assert!(
        corrections > 0,
        "the late tail must be booked as corrections of final hours"
    );
    let quarantined: HashMap<&str, u64> = state
        .quarantined
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    assert_eq!(
        &quarantined, expected_quarantine,
        "every invalid event quarantined with its reason"
    );
}

/// Every outcome of the known stream, in order, hashed: the digest was recorded with the pipeline as it was
/// before its allocation-free rewrite, so any change of behaviour (an outcome, a quarantine reason or its
/// detail) fails here.
#[test]
fn outcomes_are_those_of_the_reference_pipeline() {
    use sha2::{Digest, Sha256};
    let stream = known_stream(0x1D7E_4C0D_E5EE_D001, 3_000);
    let mut policy = Policy::default();
    policy.bot_user_agents.push("Googlebot".into());
    let mut state = MemoryState::default();
    let mut digest = Sha256::new();
    for r in &stream.reports {
        let outcome = process(&mut state, r, &policy, stream.now);
        digest.update(serde_json::to_vec(&outcome).unwrap_or_default());
        digest.update(b"\n");
    }
    let hex: String = digest
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(hex, REFERENCE_DIGEST);
}

/// See [`outcomes_are_those_of_the_reference_pipeline`].
const REFERENCE_DIGEST: &str = "95d5e77a62ae138b6aa0216d0e6734f8e2feb4087e6159cfefcd806049a7771a";
