//! The break-start herd: many viewers decided at once, each break planned once, the viewers split across
//! threads that share the plan.

use std::sync::Arc;

use crate::PodRequest;
use chrono::{DateTime, Utc};

use super::{BreakPlan, Decision, Engine};

impl Engine {
    /// Decides many viewers at once (the break-start herd): each break is planned once, then every viewer
    /// walks only what can still serve, the herd split across the machine's cores
    /// ([`Engine::decide_many_on`]). Pacing draws and caps stay per viewer.
    pub fn decide_many(&self, requests: &[PodRequest], now: DateTime<Utc>) -> Vec<Decision> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        self.decide_many_on(requests, now, threads)
    }

    /// [`Engine::decide_many`] on at most `threads` threads (one below a few hundred viewers: starting a
    /// thread costs more than deciding them). Results are in request order. A line item's break allowance
    /// is shared by all threads (an atomic count), so which viewer gets its last impressions may vary
    /// between runs; everything else is the same as deciding one by one.
    pub fn decide_many_on(
        &self,
        requests: &[PodRequest],
        now: DateTime<Utc>,
        threads: usize,
    ) -> Vec<Decision> {
        // Plan each break once, before the threads start.
        let mut plans: Vec<Arc<BreakPlan>> = Vec::new();
        let mut of: Vec<usize> = Vec::with_capacity(requests.len());
        for r in requests {
            let duration_ms = r.duration_secs.map_or(0, |s| (s * 1000.0).round() as u32);
            let k = match plans.iter().position(|p| {
                p.key.channel == r.channel
                    && p.key.break_id == r.break_id
                    && p.key.duration_ms == duration_ms
            }) {
                Some(k) => k,
                None => {
                    plans.push(self.plan_for(r, now));
                    plans.len() - 1
                }
            };
            of.push(k);
        }
        const PER_THREAD: usize = 256;
        let threads = threads.clamp(1, requests.len().div_ceil(PER_THREAD).max(1));
        if threads == 1 {
            return requests
                .iter()
                .zip(&of)
                .map(|(r, &k)| self.decide_in(&plans[k], r))
                .collect();
        }
        let chunk = requests.len().div_ceil(threads);
        let plans = &plans;
        std::thread::scope(|s| {
            let parts: Vec<_> = requests
                .chunks(chunk)
                .zip(of.chunks(chunk))
                .map(|(part, of)| {
                    s.spawn(move || {
                        part.iter()
                            .zip(of)
                            .map(|(r, &k)| self.decide_in(&plans[k], r))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            parts
                .into_iter()
                .flat_map(|h| match h.join() {
                    Ok(decisions) => decisions,
                    // A decision panicked (a bug): re-raise it on the caller's thread.
                    Err(panic) => std::panic::resume_unwind(panic),
                })
                .collect()
        })
    }
}
