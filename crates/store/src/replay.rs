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
use std::time::Duration;

use chrono::{DateTime, Utc};
use interlude_events::contract::AdEvent;
use interlude_events::{Counts, Outcome, Policy, Prices};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use crate::kafka::KafkaConfig;
use crate::log::LogRecord;
use crate::{EventStore, GroupBy, StoreError};

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

fn io_error(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Db(format!("{what}: {e}"))
}

/// Decodes one stored log value: a [`LogRecord`], or a bare event from logs written before log records.
pub fn decode_record(bytes: &[u8]) -> Result<LogRecord, String> {
    match serde_json::from_slice::<LogRecord>(bytes) {
        Ok(r) => Ok(r),
        Err(first) => serde_json::from_slice::<AdEvent>(bytes)
            .map(|event| LogRecord { event, edge: None })
            .map_err(|_| first.to_string()),
    }
}

fn in_range(e: &AdEvent, since: Option<DateTime<Utc>>, until: Option<DateTime<Utc>>) -> bool {
    since.is_none_or(|s| e.received_at >= s) && until.is_none_or(|u| e.received_at < u)
}

/// The log of the embedded store in `dir`, received in `[since, until)`. The store file is copied first and
/// the copy read, so a replay never opens (or locks) the production store.
pub fn read_embedded_log(
    dir: &Path,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> Result<Vec<LogRecord>, StoreError> {
    let source = dir.join("events.redb");
    let copy = tempfile_dir()?;
    std::fs::copy(&source, copy.join("events.redb"))
        .map_err(|e| io_error(&format!("copying {}", source.display()), e))?;
    let db = redb::Database::open(copy.join("events.redb"))?;
    let txn = db.begin_read()?;
    let mut out = Vec::new();
    for entry in txn.open_table(crate::state::LOG)?.iter()? {
        let (seq, value) = entry?;
        let record = decode_record(value.value()).map_err(|reason| StoreError::Corrupt {
            table: "log",
            reason: format!("record {}: {reason}", seq.value()),
        })?;
        if in_range(&record.event, since, until) {
            out.push(record);
        }
    }
    drop(txn);
    drop(db);
    let _ = std::fs::remove_dir_all(&copy);
    Ok(out)
}

fn tempfile_dir() -> Result<PathBuf, StoreError> {
    let dir = std::env::temp_dir().join(format!(
        "interlude-replay-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    std::fs::create_dir_all(&dir).map_err(|e| io_error("temporary directory", e))?;
    Ok(dir)
}

/// The Kafka event topic of `config`, from the beginning to the end it has now, received in `[since, until)`.
/// The consumer joins no group and commits nothing: production processors are unaffected.
pub fn read_kafka_log(
    config: &KafkaConfig,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> Result<Vec<LogRecord>, StoreError> {
    let kafka = |e: rdkafka::error::KafkaError| StoreError::Db(format!("kafka: {e}"));
    let mut client = rdkafka::ClientConfig::new();
    client
        .set("bootstrap.servers", &config.brokers)
        .set("group.id", "interlude-replay-never-commits")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false");
    for (k, v) in &config.properties {
        client.set(k, v);
    }
    let consumer: BaseConsumer = client.create().map_err(kafka)?;
    let timeout = Duration::from_secs(10);
    let metadata = consumer
        .fetch_metadata(Some(&config.topic), timeout)
        .map_err(kafka)?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    let mut ends = BTreeMap::new();
    let mut assignment = TopicPartitionList::new();
    for p in &partitions {
        let (low, high) = consumer
            .fetch_watermarks(&config.topic, *p, timeout)
            .map_err(kafka)?;
        if high > low {
            ends.insert(*p, high);
            assignment
                .add_partition_offset(&config.topic, *p, Offset::Offset(low))
                .map_err(kafka)?;
        }
    }
    consumer.assign(&assignment).map_err(kafka)?;
    let mut out = Vec::new();
    let mut idle = 0;
    while !ends.is_empty() {
        let Some(message) = consumer.poll(Duration::from_millis(500)) else {
            idle += 1;
            if idle > 60 {
                return Err(StoreError::Db(format!(
                    "kafka: partitions {:?} stopped short of their end",
                    ends.keys().collect::<Vec<_>>()
                )));
            }
            continue;
        };
        idle = 0;
        let m = message.map_err(kafka)?;
        let (p, offset) = (m.partition(), m.offset());
        if let Some(payload) = m.payload() {
            match decode_record(payload) {
                Ok(r) if in_range(&r.event, since, until) => out.push(r),
                Ok(_) => {}
                Err(reason) => {
                    tracing::warn!(partition = p, offset, %reason, "Undecodable log record skipped by the replay.");
                }
            }
        }
        if ends.get(&p).is_some_and(|end| offset + 1 >= *end) {
            ends.remove(&p);
        }
    }
    Ok(out)
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
        return Err(StoreError::Db(format!(
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
            serde_json::to_writer(&mut writer, &line)
                .map_err(|e| io_error("writing outcomes", e))?;
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
        return Err(StoreError::Db(
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
