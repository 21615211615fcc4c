//! What a distributed processor's batch changed, beyond the billing state it committed: the deltas the
//! shared pacing and frequency counters are then given.

use std::collections::BTreeMap;
use std::sync::Arc;

use interlude_events::{AdEvent, EventType, Outcome};

/// Told, after each commit, of the impressions it counted (billable, counted for the first time): the
/// embedded committer and the distributed processor call it, so what depends on a delivery (the decision
/// engine's reservations, confirmed) hears of it whichever pipeline counted it. Called on the committing
/// thread: it must be quick and must not block on I/O for long.
pub type OnCounted = Arc<dyn Fn(&[&AdEvent]) + Send + Sync>;

/// The impressions among `events` whose outcome (same order) is counted (corrections too: a late report booked
/// into a closed ledger hour is still a delivery).
pub(crate) fn counted_impressions<'a>(
    events: impl IntoIterator<Item = (&'a AdEvent, &'a Outcome)>,
) -> Vec<&'a AdEvent> {
    events
        .into_iter()
        .filter(|(e, o)| {
            e.event_type == EventType::Impression && matches!(o, Outcome::Counted { .. })
        })
        .map(|(e, _)| e)
        .collect()
}

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
