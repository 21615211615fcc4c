//! Ingestion: one write transaction per batch, every event processed against the redb state and logged, one
//! fsync at the commit.
//!
//! A retry (an event id already recorded: [`Outcome::Retry`]) changes nothing and is not logged again — the
//! first report is in the log, and a retry storm must not fill the disk. Retries are counted instead
//! ([`crate::metrics::RETRIES_NOT_LOGGED`]).

use chrono::{DateTime, Utc};
use interlude_events::contract::AdEvent;
use interlude_events::{Envelope, Outcome, Quarantine, edge_check, process_with_edge};
use serde::Serialize;

use super::batch::{Batch, Tables};
use super::{EventStore, StoreError};
use crate::log;
use crate::metrics as m;

/// A [`log::LogRecord`] by reference: the same JSON without cloning the event.
#[derive(Serialize)]
struct LogRecordRef<'a> {
    event: &'a AdEvent,
    #[serde(skip_serializing_if = "Option::is_none")]
    edge: Option<&'a Quarantine>,
}

/// The log value of an event and its edge verdict.
pub(crate) fn encode_log_record(event: &AdEvent, edge: Option<&Quarantine>, out: &mut Vec<u8>) {
    out.clear();
    // Serialising plain data into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, &LogRecordRef { event, edge });
}

impl EventStore {
    /// Processes `batch` and commits it durably (one fsync); the outcomes are valid only if this returns `Ok`.
    pub fn ingest(
        &self,
        batch: &[Envelope],
        now: DateTime<Utc>,
    ) -> Result<Vec<Outcome>, StoreError> {
        self.ingest_parts(&[batch], now)
    }

    /// [`Self::ingest`] of several batches in one transaction (a group commit), outcomes in order.
    pub fn ingest_parts(
        &self,
        parts: &[&[Envelope]],
        now: DateTime<Utc>,
    ) -> Result<Vec<Outcome>, StoreError> {
        // The same record a distributed log carries: replayable without the sender's address and agent. The
        // edge verdicts need no state: computed before the write transaction.
        let envelopes: Vec<&Envelope> = parts.iter().flat_map(|p| p.iter()).collect();
        let edges: Vec<Option<Quarantine>> = envelopes
            .iter()
            .map(|e| edge_check(e, &self.policy))
            .collect();
        let events: Vec<&AdEvent> = envelopes.iter().map(|e| &e.event).collect();
        let policy = &self.policy;
        self.commit_batch(
            &events,
            |batch, i| process_with_edge(batch, events[i], edges[i].clone(), policy, now),
            |i| edges[i].as_ref(),
        )
    }

    /// Processes records read back from an event log (a replay, or a log shipped from elsewhere) with the
    /// edge verdicts they carry and their receipt time as the clock; logs them (retries excepted) and commits
    /// durably.
    pub fn ingest_logged(&self, records: &[log::LogRecord]) -> Result<Vec<Outcome>, StoreError> {
        let events: Vec<&AdEvent> = records.iter().map(|r| &r.event).collect();
        let policy = &self.policy;
        self.commit_batch(
            &events,
            |batch, i| {
                interlude_events::process_logged(batch, events[i], records[i].edge.clone(), policy)
            },
            |i| records[i].edge.as_ref(),
        )
    }

    /// One write transaction over `events`: the state they touch read in key order, each processed by
    /// `process` (by index), logged unless a retry, the changes written in key order, one commit.
    fn commit_batch<'e>(
        &self,
        events: &[&'e AdEvent],
        mut process: impl FnMut(&mut Batch<'e>, usize) -> Outcome,
        edge: impl Fn(usize) -> Option<&'e Quarantine>,
    ) -> Result<Vec<Outcome>, StoreError> {
        let db = self.db()?;
        let txn = db.begin_write()?;
        let mut retries = 0u64;
        let outcomes = {
            let mut tables = Tables::open(&txn)?;
            let mut batch = Batch::prefetch(&tables, events)?;
            let mut outcomes = Vec::with_capacity(events.len());
            let mut bytes = Vec::with_capacity(1024);
            for (i, event) in events.iter().enumerate() {
                let outcome = process(&mut batch, i);
                if outcome == Outcome::Retry {
                    retries += 1;
                } else {
                    encode_log_record(event, edge(i), &mut bytes);
                    tables.log(&bytes, event.received_at)?;
                }
                outcomes.push(outcome);
            }
            batch.write(&mut tables)?;
            outcomes
        };
        txn.commit()?;
        metrics::counter!(m::RETRIES_NOT_LOGGED).increment(retries);
        Ok(outcomes)
    }
}
