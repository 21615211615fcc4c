//! Ingestion: one write transaction per batch, every event processed against the stored state and logged, one
//! fsync at the commit (the dedup changes ride in it as a redo record: see [`super::dedup`]).
//!
//! A retry (an event id already recorded: [`Outcome::Retry`]) changes nothing and is not logged again — the
//! first report is in the log, and a retry storm must not fill the disk. Retries are counted instead
//! ([`crate::metrics::RETRIES_NOT_LOGGED`]).

use chrono::{DateTime, Utc};
use interlude_events::contract::AdEvent;
use interlude_events::{Envelope, Outcome, Policy, Quarantine, edge_check, process_with_edge};

use super::batch::{Batch, Tables};
use super::{EventStore, StoreError};
use crate::log;
use crate::metrics as m;

/// The log value of an event and its edge verdict, in the compact form ([`crate::compact`]).
pub(crate) fn encode_log_record(event: &AdEvent, edge: Option<&Quarantine>, out: &mut Vec<u8>) {
    out.clear();
    crate::compact::encode(event, edge, out);
}

/// A batch made ready for the write transaction before it reaches the committer, on the producer's thread:
/// the edge verdicts (they need no state) and, for a store, the log records encoded. The single writer then
/// only reads, processes and writes; the producers serialise in parallel (what a pipelined commit can move
/// off the writer).
#[derive(Debug)]
pub(crate) struct Prepared {
    envelopes: Vec<Envelope>,
    edges: Vec<Option<Quarantine>>,
    /// The encoded log records back to back (empty when not encoded); record `i` ends at `ends[i]`.
    records: Vec<u8>,
    ends: Vec<usize>,
}

impl Prepared {
    /// Runs the edge checks of `envelopes` and, with `encode`, encodes their log records.
    pub(crate) fn new(envelopes: Vec<Envelope>, policy: &Policy, encode: bool) -> Self {
        let edges: Vec<Option<Quarantine>> =
            envelopes.iter().map(|e| edge_check(e, policy)).collect();
        let (mut records, mut ends) = (Vec::new(), Vec::new());
        if encode {
            records.reserve(envelopes.len() * 256);
            ends.reserve(envelopes.len());
            for (e, edge) in envelopes.iter().zip(&edges) {
                crate::compact::encode(&e.event, edge.as_ref(), &mut records);
                ends.push(records.len());
            }
        }
        Prepared {
            envelopes,
            edges,
            records,
            ends,
        }
    }

    /// Events in the batch.
    pub(crate) fn len(&self) -> usize {
        self.envelopes.len()
    }

    /// The batch.
    pub(crate) fn envelopes(&self) -> &[Envelope] {
        &self.envelopes
    }

    /// The edge verdicts, one per event.
    pub(crate) fn edges(&self) -> &[Option<Quarantine>] {
        &self.edges
    }

    /// The encoded log record of event `i`, if records were encoded.
    fn record(&self, i: usize) -> Option<&[u8]> {
        let end = *self.ends.get(i)?;
        let start = match i.checked_sub(1) {
            Some(p) => self.ends[p],
            None => 0,
        };
        self.records.get(start..end)
    }
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
            |_| None,
        )
    }

    /// [`Self::ingest_parts`] of batches whose edge verdicts and log records were prepared outside the write
    /// transaction ([`Prepared`]).
    pub(crate) fn ingest_prepared(
        &self,
        parts: &[&Prepared],
        now: DateTime<Utc>,
    ) -> Result<Vec<Outcome>, StoreError> {
        let index: Vec<(&Prepared, usize)> = parts
            .iter()
            .flat_map(|p| (0..p.len()).map(move |i| (*p, i)))
            .collect();
        let events: Vec<&AdEvent> = index.iter().map(|(p, i)| &p.envelopes[*i].event).collect();
        let policy = &self.policy;
        self.commit_batch(
            &events,
            |batch, k| {
                let (p, i) = index[k];
                process_with_edge(batch, events[k], p.edges[i].clone(), policy, now)
            },
            |k| index[k].0.edges[index[k].1].as_ref(),
            |k| index[k].0.record(index[k].1),
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
            |_| None,
        )
    }

    /// One write transaction over `events`: the state they touch read in key order, each processed by
    /// `process` (by index), logged unless a retry (its record as `encoded` has it, or encoded here with
    /// its `edge` verdict), the changes written in key order, one commit.
    fn commit_batch<'e>(
        &self,
        events: &[&'e AdEvent],
        mut process: impl FnMut(&mut Batch<'e>, usize) -> Outcome,
        edge: impl Fn(usize) -> Option<&'e Quarantine>,
        encoded: impl Fn(usize) -> Option<&'e [u8]>,
    ) -> Result<Vec<Outcome>, StoreError> {
        let db = self.db()?;
        let dedup = db.dedup();
        let _writer = dedup.writer();
        let txn = db.begin_write()?;
        let mut retries = 0u64;
        let (outcomes, after) = {
            let mut tables = Tables::open(&txn, dedup)?;
            // Each record and its length; a record encoded here takes about 256 bytes.
            tables.expect_log_bytes(
                (0..events.len())
                    .map(|i| 4 + encoded(i).map_or(256, <[u8]>::len))
                    .sum(),
            );
            let mut batch = Batch::prefetch(&tables, events)?;
            let mut outcomes = Vec::with_capacity(events.len());
            let mut bytes = Vec::with_capacity(1024);
            for (i, event) in events.iter().enumerate() {
                let outcome = process(&mut batch, i);
                if outcome == Outcome::Retry {
                    retries += 1;
                } else {
                    let record = match encoded(i) {
                        Some(record) => record,
                        None => {
                            encode_log_record(event, edge(i), &mut bytes);
                            &bytes
                        }
                    };
                    tables.log(record, event.received_at)?;
                }
                outcomes.push(outcome);
            }
            batch.write(&mut tables)?;
            (outcomes, tables.after_commit())
        };
        txn.commit()?;
        after.finish(dedup)?;
        metrics::counter!(m::RETRIES_NOT_LOGGED).increment(retries);
        Ok(outcomes)
    }
}
