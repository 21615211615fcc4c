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

use super::state::RedbState;
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
        let db = self.db()?;
        let txn = db.begin_write()?;
        let mut retries = 0u64;
        let outcomes = {
            let mut state = RedbState::open(&txn)?;
            let mut outcomes = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
            let mut bytes = Vec::with_capacity(1024);
            for envelope in parts.iter().flat_map(|p| p.iter()) {
                // The same record a distributed log carries: replayable without the sender's address and agent.
                let edge = edge_check(envelope, &self.policy);
                let outcome =
                    process_with_edge(&mut state, &envelope.event, edge.clone(), &self.policy, now);
                if outcome == Outcome::Retry {
                    retries += 1;
                } else {
                    encode_log_record(&envelope.event, edge.as_ref(), &mut bytes);
                    state.log(&bytes, envelope.event.received_at);
                }
                outcomes.push(outcome);
            }
            state.finish()?;
            outcomes
        };
        txn.commit()?;
        metrics::counter!(m::RETRIES_NOT_LOGGED).increment(retries);
        Ok(outcomes)
    }

    /// Processes records read back from an event log (a replay, or a log shipped from elsewhere) with the
    /// edge verdicts they carry and their receipt time as the clock; logs them (retries excepted) and commits
    /// durably.
    pub fn ingest_logged(&self, records: &[log::LogRecord]) -> Result<Vec<Outcome>, StoreError> {
        let db = self.db()?;
        let txn = db.begin_write()?;
        let outcomes = {
            let mut state = RedbState::open(&txn)?;
            let mut outcomes = Vec::with_capacity(records.len());
            let mut bytes = Vec::with_capacity(1024);
            for record in records {
                let outcome = interlude_events::process_logged(
                    &mut state,
                    &record.event,
                    record.edge.clone(),
                    &self.policy,
                );
                if outcome != Outcome::Retry {
                    encode_log_record(&record.event, record.edge.as_ref(), &mut bytes);
                    state.log(&bytes, record.event.received_at);
                }
                outcomes.push(outcome);
            }
            state.finish()?;
            outcomes
        };
        txn.commit()?;
        Ok(outcomes)
    }
}
