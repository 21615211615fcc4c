//! Conditioning the catalog ahead of need.
//!
//! A direct-sold creative delivered as files (an MP4, a mezzanine; no HLS renditions) would otherwise be
//! conditioned only when a break first picks it, and skipped there as `NEW_CREATIVE`. So every approved such
//! creative of the live catalog is queued, at the lowest priority, for the variant set of every channel the
//! stitcher has read: when the catalog goes live, when it changes, and when a channel's set first appears or
//! changes (a channel is queued only once its master playlist is read). Submissions are idempotent in the
//! queue; this task also remembers what it queued, so an unchanged catalog costs nothing per pass.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use interlude_decision::catalog::Catalog;

use super::Conditioning;
use crate::decisioning::decider::Decider;
use crate::stitcher::Stitcher;

/// How often the live catalog and the channels' variant sets are looked at again.
pub const EVERY: Duration = Duration::from_secs(5);

/// What one pass queued, and what it could not.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pass {
    /// Jobs submitted (new to this task; the queue may have had them already).
    pub queued: usize,
    /// (creative, channel) pairs that could not be queued, with why; asked again next pass.
    pub failed: Vec<(String, String, String)>,
}

/// Remembers which (channel ladder, creative) pairs are queued, across passes.
#[derive(Debug, Default)]
pub struct CatalogConditioning {
    queued: HashSet<String>,
}

impl CatalogConditioning {
    /// Queues every approved creative of `catalog` offered as files for every channel of `stitcher` whose
    /// variant set is known, skipping what an earlier pass queued.
    pub async fn pass(
        &mut self,
        conditioning: &Conditioning,
        catalog: &Catalog,
        stitcher: &Stitcher,
    ) -> Pass {
        let mut pass = Pass::default();
        let sources: Vec<(&str, interlude_decision::ConditioningSource)> = catalog
            .creatives
            .iter()
            .filter(|c| c.approved)
            .filter_map(|c| Some((c.id.as_str(), c.conditioning_source()?)))
            .collect();
        if sources.is_empty() {
            return pass;
        }
        for id in stitcher.channel_ids() {
            let Ok(channel) = stitcher.channel(&id) else {
                continue;
            };
            // Not read yet (or unreadable): the next pass tries again; the stitcher's own path reports why.
            let Ok(set) = conditioning.variant_set(&id, &channel.snapshot()) else {
                continue;
            };
            let set_hash = set.hash();
            for (creative, source) in &sources {
                // The queue knows a job by creative and ladder (a new cut needs a new creative id, as ad
                // servers give it), so that is what is remembered here too.
                let key = format!("{set_hash}\n{creative}");
                if self.queued.contains(&key) {
                    continue;
                }
                match conditioning.precondition(source, &set, "catalog").await {
                    Ok(_) => {
                        self.queued.insert(key);
                        pass.queued += 1;
                    }
                    Err(e) => pass
                        .failed
                        .push(((*creative).to_owned(), id.clone(), e.to_string())),
                }
            }
        }
        pass
    }
}

/// Runs [`CatalogConditioning::pass`] over the decider's live catalog every `every`, until the runtime stops.
pub fn spawn(
    conditioning: Arc<Conditioning>,
    decider: Arc<Decider>,
    stitcher: Arc<Stitcher>,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut state = CatalogConditioning::default();
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Failures are logged once per (creative, channel, reason) until they change.
        let mut reported: HashSet<(String, String, String)> = HashSet::new();
        loop {
            tick.tick().await;
            let engine = decider.engine();
            let pass = state.pass(&conditioning, engine.catalog(), &stitcher).await;
            if pass.queued > 0 {
                tracing::info!(
                    jobs = pass.queued,
                    "Queued the catalog's creatives delivered as files for conditioning ahead of need."
                );
            }
            for failure in pass.failed {
                if reported.insert(failure.clone()) {
                    let (creative, channel, reason) = failure;
                    tracing::warn!(%creative, %channel, %reason, "Could not queue a catalog creative for conditioning; will retry.");
                }
            }
        }
    })
}
