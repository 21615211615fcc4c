//! One conformance suite for every adapter of the pipeline's storage traits, on real servers (started by
//! `scripts/services.sh`): the same known stream (duplicates, retries, out-of-order and late reports, 5 %
//! invalid traffic; `interlude_events::testing`) must give the ground truth through
//!
//! - the event state: the embedded redb store and PostgreSQL ([`PgStore::apply`]), including a re-applied
//!   batch and two processors racing on one partition (a rebalance's zombie);
//! - the event log (`EventLog`): the embedded group committer and Kafka with two processors in one consumer
//!   group;
//! - the live counters (`Counters`): the embedded store and Redis, for delivery and per-viewer frequency.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use interlude_events::contract::{ConsentFlags, EventSource, EventType};
use interlude_events::testing::{KnownStream, event, known_stream};
use interlude_events::{Counters, Counts, Envelope, Policy, edge_check};
use interlude_store::Committer;
use interlude_store::kafka::{KafkaLog, Processor};
use interlude_store::pg::PgStore;
use interlude_store::redis::RedisCounters;
use interlude_store::{EventLog, LogRecord, Logged};
use interlude_store::{EventStore, GroupBy, LedgerRow, ReportRow, ReportStore, testing};

/// What every adapter must end with.
#[derive(Debug, PartialEq)]
struct Totals {
    by_line_item: BTreeMap<String, Counts>,
    billed: BTreeMap<String, Counts>,
    quarantine: BTreeMap<String, u64>,
}

fn totals(
    report: Vec<ReportRow>,
    ledger: Vec<LedgerRow>,
    quarantine: BTreeMap<String, u64>,
) -> Totals {
    let mut billed: BTreeMap<String, Counts> = BTreeMap::new();
    for row in ledger {
        let t = billed.entry(row.line_item_id).or_default();
        t.add(&row.original);
        row.corrections.iter().for_each(|c| t.add(c));
    }
    Totals {
        by_line_item: report.into_iter().map(|r| (r.key, r.counts)).collect(),
        billed,
        quarantine,
    }
}

/// The stream as a collector hands it on: every report stamped with the receipt time, plus three consented
/// and unconsented impressions with viewer ids (frequency counts).
fn stream() -> (KnownStream, Vec<Envelope>, Totals) {
    let mut stream = known_stream(11, 600);
    let at = stream.now - TimeDelta::minutes(30);
    let mut reports = stream.reports.clone();
    for (n, (viewer, consent)) in [("v1", true), ("v1", true), ("v2", false)]
        .into_iter()
        .enumerate()
    {
        let mut e = event(
            format!("fq{n}"),
            &format!("fq-ai{n}"),
            EventType::Impression,
            EventSource::ServerSide,
            at,
            1,
        );
        e.viewer_id = Some(viewer.into());
        e.consent = ConsentFlags {
            store_viewer_id: consent,
            ..ConsentFlags::default()
        };
        reports.push(Envelope {
            event: e,
            user_agent: None,
            ip: None,
        });
        stream.truth.entry("li1".into()).or_default().impressions += 1;
    }
    for r in &mut reports {
        r.event.received_at = stream.now;
    }
    let expected = Totals {
        by_line_item: stream.truth.clone(),
        billed: stream.truth.clone(),
        quarantine: stream
            .quarantine
            .iter()
            .map(|(k, v)| ((*k).to_owned(), *v))
            .collect(),
    };
    (stream, reports, expected)
}

/// The totals a [`ReportStore`] answers: every backend is read through the one trait the server uses.
/// Impressions per line item a pipeline says it counted ([`interlude_store::OnCounted`]), and the hook
/// that collects them.
type Told = Arc<std::sync::Mutex<BTreeMap<String, u64>>>;

fn telling() -> (Told, interlude_store::OnCounted) {
    let told = Told::default();
    let into = told.clone();
    let hook: interlude_store::OnCounted = Arc::new(move |counted| {
        let mut told = into.lock().unwrap();
        for e in counted {
            assert_eq!(e.event_type, EventType::Impression);
            *told
                .entry(e.line_item_id.clone().unwrap_or_default())
                .or_default() += 1;
        }
    });
    (told, hook)
}

/// What the pipeline told of its counted impressions agrees with what it reports delivered.
fn check_told(told: &Told, expected: &Totals) {
    let delivered: BTreeMap<String, u64> = expected
        .by_line_item
        .iter()
        .filter(|(_, c)| c.impressions > 0)
        .map(|(li, c)| (li.clone(), c.impressions))
        .collect();
    assert_eq!(*told.lock().unwrap(), delivered, "counted impressions told");
}

async fn reported(store: &dyn ReportStore, from: DateTime<Utc>, to: DateTime<Utc>) -> Totals {
    totals(
        store.report(GroupBy::LineItem, from, to).await.unwrap(),
        store.ledger().await.unwrap(),
        store.quarantine_counts().await.unwrap(),
    )
}

fn window(now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    (now - TimeDelta::days(3), now + TimeDelta::hours(1))
}

fn check_counters(counters: &dyn Counters, expected: &Totals, since: DateTime<Utc>) {
    for (li, counts) in &expected.by_line_item {
        assert_eq!(
            counters.delivered(li, since),
            counts.impressions,
            "delivered {li}"
        );
    }
    assert_eq!(
        counters.viewer_impressions("v1", "li1", since),
        2,
        "consented viewer"
    );
    assert_eq!(
        counters.viewer_impressions("v2", "li1", since),
        0,
        "viewer without consent"
    );
    // The one-read seam the engine prefers answers the same as the per-line-item reads, line item by line item.
    for viewer in ["v1", "v2"] {
        let hours = counters
            .viewer_hours(viewer, since)
            .expect("this store reads a viewer's hours in one go");
        let mut by_line_item: BTreeMap<&str, u64> = BTreeMap::new();
        for h in &hours {
            assert!(h.hour >= since.timestamp().div_euclid(3600) * 3600, "{h:?}");
            *by_line_item.entry(h.line_item_id.as_str()).or_default() += h.impressions;
        }
        for li in expected.by_line_item.keys() {
            assert_eq!(
                by_line_item.get(li.as_str()).copied().unwrap_or(0),
                counters.viewer_impressions(viewer, li, since),
                "{viewer} {li}: viewer_hours vs viewer_impressions"
            );
        }
    }
}

fn record(e: &Envelope) -> LogRecord {
    LogRecord {
        event: e.event.clone(),
        edge: edge_check(e, &Policy::default()),
    }
}

fn partition_of(e: &Envelope, partitions: u64) -> i32 {
    // Any stable hash: what matters is that one instance's reports share a partition.
    let h = e
        .event
        .ad_instance_id
        .bytes()
        .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    (h % partitions) as i32
}

#[test]
fn embedded_state_gives_the_truth() {
    let (stream, reports, expected) = stream();
    let dir = tempfile::tempdir().unwrap();
    let store = EventStore::open(dir.path(), Policy::default()).unwrap();
    for batch in reports.chunks(500) {
        store.ingest(batch, stream.now).unwrap();
    }
    // A batch sent again (its acknowledgement was lost): nothing changes.
    store.ingest(&reports[..500], stream.now).unwrap();
    let (from, to) = window(stream.now);
    let got = totals(
        store.report(GroupBy::LineItem, from, to).unwrap(),
        store.ledger().unwrap(),
        store.quarantine_counts().unwrap(),
    );
    assert_eq!(got, expected);
    check_counters(&store, &expected, from);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_state_gives_the_truth_once_despite_reapplied_and_racing_batches() {
    let (stream, reports, expected) = stream();
    let url = testing::pg_fresh_schema().await.unwrap();
    let store = Arc::new(PgStore::connect(&url, Policy::default()).await.unwrap());
    let zombie = Arc::new(PgStore::connect(&url, Policy::default()).await.unwrap());
    let mut partitions: BTreeMap<i32, Vec<Logged>> = BTreeMap::new();
    for r in &reports {
        let p = partitions.entry(partition_of(r, 4)).or_default();
        p.push((p.len() as i64, Ok(record(r))));
    }
    let mut skipped = 0;
    for (partition, records) in &partitions {
        for chunk in records.chunks(300) {
            // The owner and a zombie (which lost the partition in a rebalance but still has the batch)
            // apply the same records at the same time: the row lock lets one in, the other finds them done.
            let (a, b) = tokio::join!(
                store.apply("g", "events", *partition, chunk),
                zombie.apply("g", "events", *partition, chunk)
            );
            let (a, b) = (a.unwrap(), b.unwrap());
            assert_eq!(
                a.skipped + b.skipped,
                chunk.len(),
                "each record applied exactly once"
            );
            skipped += a.skipped + b.skipped;
        }
        // A restart re-reads the partition from an older offset: everything is skipped.
        let again = store
            .apply("g", "events", *partition, records)
            .await
            .unwrap();
        assert_eq!(again.skipped, records.len());
        assert!(again.outcomes.is_empty());
    }
    assert_eq!(skipped, reports.len());
    let offsets = store.offsets("g", "events").await.unwrap();
    for (partition, records) in &partitions {
        assert_eq!(
            offsets[partition],
            records.len() as i64,
            "offset committed with the state"
        );
    }
    let (from, to) = window(stream.now);
    let got = reported(store.as_ref(), from, to).await;
    assert_eq!(got, expected);
    for (li, counts) in &expected.by_line_item {
        assert_eq!(
            store.delivered(li, from).await.unwrap(),
            counts.impressions,
            "delivered {li}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_quarantines_undecodable_records_and_moves_on() {
    let url = testing::pg_fresh_schema().await.unwrap();
    let store = PgStore::connect(&url, Policy::default()).await.unwrap();
    let records = vec![(
        0,
        Err("expected value at line 1 column 1: <html>".to_owned()),
    )];
    let applied = store.apply("g", "events", 0, &records).await.unwrap();
    assert!(applied.outcomes.is_empty());
    assert_eq!(store.offsets("g", "events").await.unwrap()[&0], 1);
    assert_eq!(store.quarantine_counts().await.unwrap()["undecodable"], 1);
}

/// Appends the stream through `log` in collector-sized batches, twice for one batch (a client retry).
async fn append_all(log: &dyn EventLog, reports: &[Envelope]) {
    for batch in reports.chunks(200) {
        log.append(batch.to_vec()).await.unwrap();
    }
    log.append(reports[..200].to_vec()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_log_gives_the_truth() {
    let (stream, reports, expected) = stream();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EventStore::open(dir.path(), Policy::default()).unwrap());
    let now = stream.now;
    let committer = Committer::start(store.clone(), Arc::new(move || now));
    let (told, hook) = telling();
    committer.on_counted(hook);
    let log: Arc<dyn EventLog> = Arc::new(committer);
    append_all(log.as_ref(), &reports).await;
    let (from, to) = window(stream.now);
    let got = reported(store.as_ref(), from, to).await;
    assert_eq!(got, expected);
    check_told(&told, &expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_log_with_two_processors_gives_the_truth_and_the_shared_counters() {
    let (stream, reports, expected) = stream();
    let config = testing::kafka_config(4);
    config.ensure_topics().await.unwrap();
    let url = testing::pg_fresh_schema().await.unwrap();
    let counters = RedisCounters::connect(&testing::redis_url(), &testing::redis_prefix(), 30)
        .await
        .unwrap();
    let log: Arc<dyn EventLog> = Arc::new(KafkaLog::new(&config, Policy::default()).unwrap());
    append_all(log.as_ref(), &reports).await;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut processors = Vec::new();
    let (told, hook) = telling();
    for _ in 0..2 {
        let store = Arc::new(PgStore::connect(&url, Policy::default()).await.unwrap());
        let processor = Processor::new(&config, store, Some(counters.clone()))
            .unwrap()
            .with_on_counted(hook.clone());
        let mut stop = stop_rx.clone();
        processors.push(tokio::spawn(async move {
            processor
                .run(
                    async move { while stop.changed().await.is_ok() && !*stop.borrow() {} },
                    |_| {},
                )
                .await
        }));
    }
    let reader = PgStore::connect(&url, Policy::default()).await.unwrap();
    let (from, to) = window(stream.now);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let got = loop {
        let got = reported(&reader, from, to).await;
        if got == expected || tokio::time::Instant::now() > deadline {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    stop_tx.send(true).unwrap();
    for p in processors {
        p.await.unwrap().unwrap();
    }
    assert_eq!(got, expected);
    check_told(&told, &expected);
    // Nothing was left to do: the committed offsets cover the whole log.
    let offsets = reader.offsets(&config.group, &config.topic).await.unwrap();
    let logged: i64 = offsets.values().sum();
    assert_eq!(
        logged as usize,
        reports.len() + 200,
        "every appended record consumed once"
    );

    counters.refresh().await.unwrap();
    for viewer in ["v1", "v2"] {
        counters.prefetch(viewer).await;
    }
    check_counters(counters.as_ref(), &expected, from);
    counters.clear().await.unwrap();
}

/// Per bidder: impressions, completes, spend per currency.
type DemandTruth = BTreeMap<String, (u64, u64, BTreeMap<String, u64>)>;
/// Per (bidder, seat, deal, currency): impressions, completes, Σ price.
type DemandCells = BTreeMap<(String, String, String, String), (u64, u64, u64)>;

/// Programmatic ads' events (two bidders, two seats, a deal, two currencies): each impression reported twice
/// with one id (a retry) and once with another (a second report of it); with the truth a demand report by
/// bidder must give, computed here cell by cell (spend is whole micros per cell).
fn demand_stream(now: DateTime<Utc>) -> (Vec<Envelope>, DemandTruth) {
    let at = now - TimeDelta::minutes(20);
    let mut reports = Vec::new();
    let mut cells: DemandCells = BTreeMap::new();
    for n in 0..40u64 {
        let (bidder, currency) = if n % 3 == 0 {
            ("dsp-b", "EUR")
        } else {
            ("dsp-a", "USD")
        };
        let demand = interlude_events::Demand {
            bidder: bidder.into(),
            seat: format!("s{}", n % 2),
            deal_id: (n % 5 == 0).then(|| "deal-1".to_owned()),
            price_cpm_micros: 1_500_123 + n * 7_777,
            currency: currency.into(),
        };
        let instance = format!("ai-d{n}");
        for (id, t) in [
            (format!("d{n}-imp"), EventType::Impression),
            (format!("d{n}-imp"), EventType::Impression),
            (format!("d{n}-imp-player"), EventType::Impression),
            (format!("d{n}-complete"), EventType::Complete),
        ] {
            let mut e = event(id, &instance, t, EventSource::ServerSide, at, 1);
            e.demand = Some(demand.clone());
            e.received_at = now;
            reports.push(Envelope {
                event: e,
                user_agent: None,
                ip: None,
            });
        }
        let cell = cells
            .entry((
                bidder.to_owned(),
                demand.seat.clone(),
                demand.deal_id.clone().unwrap_or_default(),
                currency.to_owned(),
            ))
            .or_default();
        cell.0 += 1;
        cell.1 += 1;
        cell.2 += demand.price_cpm_micros;
    }
    let mut truth: DemandTruth = BTreeMap::new();
    for ((bidder, _, _, currency), (impressions, completes, price_sum)) in cells {
        let row = truth.entry(bidder).or_default();
        row.0 += impressions;
        row.1 += completes;
        *row.2.entry(currency).or_default() += price_sum / 1000;
    }
    (reports, truth)
}

/// A decider's flush, twice (two intervals): outcomes of the bidder as a whole and of its seats.
async fn flush_auctions(store: Arc<dyn ReportStore>, now: DateTime<Utc>) {
    let key = |seat: &str, deal: &str| interlude_events::DemandKey {
        hour: now.timestamp().div_euclid(3600) * 3600,
        bidder: "dsp-a".into(),
        seat: seat.into(),
        deal_id: deal.into(),
        currency: String::new(),
    };
    let cells = vec![
        (
            key("", ""),
            interlude_events::AuctionCounts {
                requests: 10,
                no_bids: 3,
                timeouts: 2,
                errors: 1,
                ..Default::default()
            },
        ),
        (
            key("s0", "deal-1"),
            interlude_events::AuctionCounts {
                bids: 3,
                wins: 1,
                losses: 2,
                ..Default::default()
            },
        ),
    ];
    for _ in 0..2 {
        store.clone().add_auctions(cells.clone()).await.unwrap();
    }
}

/// Both stores, read through the trait: the same rows, and by bidder the truth.
async fn check_demand(
    store: &dyn ReportStore,
    now: DateTime<Utc>,
    truth: &DemandTruth,
) -> Vec<Vec<interlude_store::DemandRow>> {
    use interlude_store::DemandGroupBy;
    let (from, to) = window(now);
    let mut all = Vec::new();
    for by in [
        DemandGroupBy::Bidder,
        DemandGroupBy::Seat,
        DemandGroupBy::Deal,
    ] {
        all.push(store.demand_report(by, from, to).await.unwrap());
    }
    let by_bidder: DemandTruth = all[0]
        .iter()
        .map(|r| {
            (
                r.key.clone(),
                (
                    r.delivered.impressions,
                    r.delivered.completes,
                    r.spend_micros.clone(),
                ),
            )
        })
        .collect();
    assert_eq!(
        &by_bidder, truth,
        "delivery by bidder: one impression per ad"
    );
    let a = &all[0].iter().find(|r| r.key == "dsp-a").unwrap().auctions;
    assert_eq!(
        (
            a.requests, a.no_bids, a.timeouts, a.errors, a.bids, a.wins, a.losses
        ),
        (20, 6, 4, 2, 6, 2, 4),
        "both flushes added"
    );
    let seats: Vec<&str> = all[1].iter().map(|r| r.key.as_str()).collect();
    assert_eq!(
        seats,
        ["dsp-a/s0", "dsp-a/s1", "dsp-b/s0", "dsp-b/s1"],
        "the bidder as a whole has no seat"
    );
    let deals: Vec<&str> = all[2].iter().map(|r| r.key.as_str()).collect();
    assert_eq!(
        deals,
        ["dsp-a/deal-1", "dsp-a/open", "dsp-b/deal-1", "dsp-b/open"]
    );
    assert_eq!(all[2][0].auctions.wins, 2, "the deal's wins");
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demand_reports_agree_between_the_embedded_store_and_postgres() {
    let now = Utc::now();
    let (reports, truth) = demand_stream(now);

    let dir = tempfile::tempdir().unwrap();
    let embedded = Arc::new(EventStore::open(dir.path(), Policy::default()).unwrap());
    for batch in reports.chunks(7) {
        embedded.ingest(batch, now).unwrap();
    }
    flush_auctions(embedded.clone(), now).await;
    let from_embedded = check_demand(embedded.as_ref(), now, &truth).await;

    let url = testing::pg_fresh_schema().await.unwrap();
    let pg = Arc::new(PgStore::connect(&url, Policy::default()).await.unwrap());
    let records: Vec<Logged> = reports
        .iter()
        .enumerate()
        .map(|(i, r)| (i as i64, Ok(record(r))))
        .collect();
    for chunk in records.chunks(7) {
        pg.apply("g", "events", 0, chunk).await.unwrap();
    }
    // A restart re-reads the partition: nothing is counted twice.
    pg.apply("g", "events", 0, &records).await.unwrap();
    flush_auctions(pg.clone(), now).await;
    let from_pg = check_demand(pg.as_ref(), now, &truth).await;
    assert_eq!(from_embedded, from_pg);
}
