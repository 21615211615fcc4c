//! Shadow replay: recorded events reprocessed through a candidate pipeline (validation rules, dedup window,
//! schema version, prices) into a separate output, and the difference from a baseline run explained.
//!
//! The input is the event log itself — the embedded store's log (read from a copy of its file, so the
//! production store is never opened) or the Kafka event topic (read with a consumer that joins no group and
//! commits nothing). Both carry [`LogRecord`]s: the event as received and the edge verdict, so a replay needs
//! no addresses or user agents. Processing uses `received_at` as the clock, so a replay is deterministic: the
//! same log and configuration always give the same outcome per event.
//!
//! Each run writes a fresh embedded store (its reports are the candidate's reports) and `outcomes.jsonl`, one
//! line per record. [`diff`] compares two runs: per report dimension, the cells whose counts change, with the
//! events whose outcome changed in each.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use interlude_events::contract::AdEvent;
use interlude_events::{Counts, Outcome, Policy, Prices};
use serde::{Deserialize, Serialize};

use crate::Error as StoreError;
use crate::log::{LogReader, LogRecord};
use crate::{EventStore, GroupBy};

/// One record's outcome in a replay run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replayed {
    /// Position in the replayed log.
    pub seq: u64,
    /// The event id.
    pub event_id: String,
    /// The ad instance.
    pub ad_instance_id: String,
    /// The event type.
    pub event_type: String,
    /// Line item ("" when none).
    pub line_item_id: String,
    /// Campaign ("" when none).
    pub campaign_id: String,
    /// Creative.
    pub creative_id: String,
    /// Channel.
    pub channel: String,
    /// Live event ("" when none).
    pub live_event_id: String,
    /// `counted`, `correction`, `retry`, `duplicate` or `quarantined:<reason>`.
    pub outcome: String,
}

impl Replayed {
    fn counted(&self) -> bool {
        self.outcome == "counted" || self.outcome == "correction"
    }

    fn dimension(&self, by: GroupBy) -> Option<&str> {
        Some(match by {
            GroupBy::Campaign => &self.campaign_id,
            GroupBy::LineItem => &self.line_item_id,
            GroupBy::Creative => &self.creative_id,
            GroupBy::Channel => &self.channel,
            GroupBy::LiveEvent => &self.live_event_id,
            GroupBy::Minute | GroupBy::Hour | GroupBy::Day => return None,
        })
    }
}

fn outcome_name(o: &Outcome) -> String {
    match o {
        Outcome::Counted { correction: false } => "counted".into(),
        Outcome::Counted { correction: true } => "correction".into(),
        Outcome::Retry => "retry".into(),
        Outcome::Duplicate => "duplicate".into(),
        Outcome::Logged => "logged".into(),
        Outcome::Quarantined(q) => {
            let tag = serde_json::to_value(q)
                .ok()
                .and_then(|v| v["reason"].as_str().map(str::to_owned))
                .unwrap_or_else(|| "unknown".into());
            format!("quarantined:{tag}")
        }
    }
}

fn io_error(what: &str, source: std::io::Error) -> StoreError {
    StoreError::Io {
        what: what.to_owned(),
        source,
    }
}

pub use crate::log::decode_record;

fn in_range(e: &AdEvent, since: Option<DateTime<Utc>>, until: Option<DateTime<Utc>>) -> bool {
    since.is_none_or(|s| e.received_at >= s) && until.is_none_or(|u| e.received_at < u)
}

/// Every record `reader` holds that was received in `[since, until)`. An undecodable record of a log this
/// node wrote is an error (the store is damaged); one from a shared topic is skipped with a warning (another
/// producer's bytes must not stop a replay).
pub fn read_log(
    reader: &mut dyn LogReader,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> Result<Vec<LogRecord>, StoreError> {
    let mut out = Vec::new();
    loop {
        let batch = reader.read(10_000)?;
        if batch.is_empty() {
            return Ok(out);
        }
        for (offset, record) in batch {
            match record {
                Ok(r) if in_range(&r.event, since, until) => out.push(r),
                Ok(_) => {}
                Err(reason) => {
                    tracing::warn!(offset, %reason, "Undecodable log record skipped by the replay.");
                }
            }
        }
    }
}

/// The log of the embedded store in `dir`, received in `[since, until)`, read from a copy of the store file
/// (see [`crate::embedded::LogSnapshot`]).
pub fn read_embedded_log(
    dir: &Path,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> Result<Vec<LogRecord>, StoreError> {
    read_log(&mut crate::embedded::LogSnapshot::open(dir)?, since, until)
}

/// The Kafka event topic of `config`, from the beginning to the end it has now, received in `[since, until)`
/// (see [`crate::kafka::TopicSnapshot`]).
#[cfg(feature = "kafka")]
pub fn read_kafka_log(
    config: &crate::KafkaConfig,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> Result<Vec<LogRecord>, StoreError> {
    read_log(
        &mut crate::kafka::TopicSnapshot::open(config)?,
        since,
        until,
    )
}

/// What a run produced.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSummary {
    /// Records replayed.
    pub records: usize,
    /// Outcomes by name.
    pub outcomes: BTreeMap<String, u64>,
    /// The output directory.
    pub out: PathBuf,
}

/// Replays `records` through `policy` into a new store in `out` (which must not hold a store yet), writing
/// `outcomes.jsonl` beside it.
pub fn run(
    records: &[LogRecord],
    policy: &Policy,
    prices: std::sync::Arc<dyn Prices>,
    out: &Path,
) -> Result<RunSummary, StoreError> {
    if out.join("events.redb").exists() {
        return Err(StoreError::Refused(format!(
            "{} already holds a store: a replay writes to a new directory only",
            out.display()
        )));
    }
    let store = EventStore::open(out, policy.clone())?;
    store.set_prices(prices);
    let file = std::fs::File::create(out.join("outcomes.jsonl"))
        .map_err(|e| io_error("creating outcomes.jsonl", e))?;
    let mut writer = std::io::BufWriter::new(file);
    let mut summary = RunSummary {
        records: records.len(),
        outcomes: BTreeMap::new(),
        out: out.to_owned(),
    };
    let mut seq = 0u64;
    for chunk in records.chunks(5_000) {
        for (record, outcome) in chunk.iter().zip(store.ingest_logged(chunk)?) {
            let e = &record.event;
            let line = Replayed {
                seq,
                event_id: e.event_id.clone(),
                ad_instance_id: e.ad_instance_id.clone(),
                event_type: e.event_type.as_str().to_owned(),
                line_item_id: e.line_item_id.clone().unwrap_or_default(),
                campaign_id: e.campaign_id.clone().unwrap_or_default(),
                creative_id: e.creative_id.clone(),
                channel: e.channel.clone(),
                live_event_id: e.live_event_id.clone().unwrap_or_default(),
                outcome: outcome_name(&outcome),
            };
            seq += 1;
            *summary.outcomes.entry(line.outcome.clone()).or_default() += 1;
            serde_json::to_writer(&mut writer, &line).map_err(|source| StoreError::Encode {
                what: "replay outcome",
                source,
            })?;
            writer
                .write_all(b"\n")
                .map_err(|e| io_error("writing outcomes", e))?;
        }
    }
    writer
        .flush()
        .map_err(|e| io_error("writing outcomes", e))?;
    Ok(summary)
}

fn read_outcomes(dir: &Path) -> Result<Vec<Replayed>, StoreError> {
    let path = dir.join("outcomes.jsonl");
    let file = std::fs::File::open(&path)
        .map_err(|e| io_error(&format!("opening {}", path.display()), e))?;
    std::io::BufReader::new(file)
        .lines()
        .enumerate()
        .map(|(n, line)| {
            let line = line.map_err(|e| io_error("reading outcomes", e))?;
            serde_json::from_str(&line).map_err(|e| StoreError::Corrupt {
                table: "outcomes.jsonl",
                reason: format!("line {}: {e}", n + 1),
            })
        })
        .collect()
}

/// An event whose outcome differs between the runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Changed {
    /// Event id.
    pub event_id: String,
    /// Ad instance.
    pub ad_instance_id: String,
    /// Event type.
    pub event_type: String,
    /// Outcome in the baseline.
    pub baseline: String,
    /// Outcome in the candidate.
    pub candidate: String,
}

/// One report cell whose counts change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CellDiff {
    /// Dimension value.
    pub key: String,
    /// Baseline counts.
    pub baseline: Counts,
    /// Candidate counts.
    pub candidate: Counts,
    /// The events whose outcome changed in this cell (all of them: they are what explains the difference).
    pub events: Vec<Changed>,
}

/// The difference between two runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diff {
    /// Records compared.
    pub records: usize,
    /// Events whose outcome changed (any outcome, counted or not).
    pub changed_outcomes: usize,
    /// Per dimension (`line_item`, `campaign`, `creative`, `channel`, `live_event`), the cells that change.
    pub dimensions: BTreeMap<String, Vec<CellDiff>>,
}

/// Compares two runs of the same log (`baseline` and `candidate` output directories).
pub fn diff(baseline: &Path, candidate: &Path) -> Result<Diff, StoreError> {
    let (a, b) = (read_outcomes(baseline)?, read_outcomes(candidate)?);
    if a.len() != b.len() || a.iter().zip(&b).any(|(x, y)| x.event_id != y.event_id) {
        return Err(StoreError::Refused(
            "the two runs did not replay the same records (different --from, --since or --until)"
                .into(),
        ));
    }
    let open = |dir: &Path| EventStore::open(dir, Policy::default());
    let (store_a, store_b) = (open(baseline)?, open(candidate)?);
    let wide = (
        DateTime::<Utc>::UNIX_EPOCH,
        DateTime::from_timestamp(4_102_444_800, 0).unwrap_or(DateTime::<Utc>::MAX_UTC),
    );
    let changed: Vec<(&Replayed, &Replayed)> = a
        .iter()
        .zip(&b)
        .filter(|(x, y)| x.outcome != y.outcome)
        .collect();
    let mut dimensions = BTreeMap::new();
    for (name, by) in [
        ("line_item", GroupBy::LineItem),
        ("campaign", GroupBy::Campaign),
        ("creative", GroupBy::Creative),
        ("channel", GroupBy::Channel),
        ("live_event", GroupBy::LiveEvent),
    ] {
        let cells = |s: &EventStore| -> Result<BTreeMap<String, Counts>, StoreError> {
            Ok(s.report(by, wide.0, wide.1)?
                .into_iter()
                .map(|r| (r.key, r.counts))
                .collect())
        };
        let (ca, cb) = (cells(&store_a)?, cells(&store_b)?);
        let keys: std::collections::BTreeSet<&String> = ca.keys().chain(cb.keys()).collect();
        let mut diffs = Vec::new();
        for key in keys {
            let (x, y) = (
                ca.get(key).copied().unwrap_or_default(),
                cb.get(key).copied().unwrap_or_default(),
            );
            if x == y {
                continue;
            }
            let events = changed
                .iter()
                .filter(|(p, q)| {
                    p.dimension(by) == Some(key.as_str()) && p.counted() != q.counted()
                })
                .map(|(p, q)| Changed {
                    event_id: p.event_id.clone(),
                    ad_instance_id: p.ad_instance_id.clone(),
                    event_type: p.event_type.clone(),
                    baseline: p.outcome.clone(),
                    candidate: q.outcome.clone(),
                })
                .collect();
            diffs.push(CellDiff {
                key: key.clone(),
                baseline: x,
                candidate: y,
                events,
            });
        }
        dimensions.insert(name.to_owned(), diffs);
    }
    Ok(Diff {
        records: a.len(),
        changed_outcomes: changed.len(),
        dimensions,
    })
}
