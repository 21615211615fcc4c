//! What a distributed processor's batch changed, beyond the billing state it committed: the deltas the
//! shared pacing and frequency counters are then given.

use std::collections::BTreeMap;

use interlude_events::Outcome;

/// What applying a batch did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Applied {
    /// Records already applied before (below the stored offset): skipped.
    pub skipped: usize,
    /// The outcome of each applied record, with its offset.
    pub outcomes: Vec<(i64, Outcome)>,
    /// Impressions counted per (line item, hour): for the shared pacing counters.
    pub delivered: BTreeMap<(String, i64), u64>,
    /// Impressions counted per (viewer, line item, hour): for the shared frequency counters.
    pub viewer_impressions: BTreeMap<(String, String, i64), u64>,
}

impl Applied {
    /// The first offset the batch applied: with the partition, the key of its counter deltas (the Redis
    /// marker, the PostgreSQL outbox row).
    pub fn first_offset(&self) -> Option<i64> {
        self.outcomes.iter().map(|(o, _)| *o).min()
    }
}
