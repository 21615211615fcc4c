//! Reads and maintenance of the PostgreSQL pipeline state: reports, the ledger, the quarantine, erasure
//! and retention, and the store as a [`ReportStore`].

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use interlude_events::contract::EventType;
use interlude_events::{AuctionCounts, BoxFuture, Delivered, DemandKey, Prices, WindowKey};

use super::{PgStore, counts_at};
use crate::Error as StoreError;
use crate::{
    DemandGroupBy, DemandRow, GroupBy, LedgerRow, ReportRow, ReportStore, Result,
    build_demand_report, build_ledger, build_report,
};

/// The demand key in columns 0–4 of `row` (hour, bidder, seat, deal, currency).
fn demand_key_at(row: &tokio_postgres::Row) -> DemandKey {
    DemandKey {
        hour: row.get(0),
        bidder: row.get(1),
        seat: row.get(2),
        deal_id: row.get(3),
        currency: row.get(4),
    }
}

impl PgStore {
    /// Counts per `group_by` value over event time `[from, to)`.
    pub async fn report(
        &self,
        group_by: GroupBy,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<ReportRow>, StoreError> {
        let rows = {
            let client = self.client.lock().await;
            client
                .query(
                    "SELECT minute, campaign_id, line_item_id, creative_id, channel, live_event_id, \
                     impressions, starts, first_quartiles, midpoints, third_quartiles, completes, clicks, errors \
                     FROM windows WHERE minute >= $1 AND minute < $2",
                    &[&from.timestamp(), &to.timestamp()],
                )
                .await?
        };
        let cells = rows.iter().map(|r| {
            (
                WindowKey {
                    minute: r.get(0),
                    campaign_id: r.get(1),
                    line_item_id: r.get(2),
                    creative_id: r.get(3),
                    channel: r.get(4),
                    live_event_id: r.get(5),
                },
                counts_at(r, 6),
            )
        });
        Ok(build_report(cells, group_by, self.prices().as_ref()))
    }

    /// The billing ledger with its corrections.
    pub async fn ledger(&self) -> Result<Vec<LedgerRow>, StoreError> {
        let client = self.client.lock().await;
        let originals = client
            .query(
                "SELECT line_item_id, hour, impressions, starts, first_quartiles, midpoints, third_quartiles, \
                 completes, clicks, errors FROM ledger",
                &[],
            )
            .await?;
        let corrections = client
            .query(
                "SELECT line_item_id, hour, impressions, starts, first_quartiles, midpoints, third_quartiles, \
                 completes, clicks, errors FROM ledger_corrections ORDER BY id",
                &[],
            )
            .await?;
        let read = |r: &tokio_postgres::Row| {
            ((r.get::<_, String>(0), r.get::<_, i64>(1)), counts_at(r, 2))
        };
        Ok(build_ledger(
            originals.iter().map(read),
            corrections.iter().map(read),
            self.prices().as_ref(),
        ))
    }

    /// Quarantined events by reason.
    pub async fn quarantine_counts(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        let client = self.client.lock().await;
        Ok(client
            .query(
                "SELECT reason, count(*) FROM quarantine GROUP BY reason",
                &[],
            )
            .await?
            .iter()
            .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1).max(0) as u64))
            .collect())
    }

    /// The event types counted for one ad instance.
    pub async fn counted_events(&self, ad_instance_id: &str) -> Result<Vec<EventType>, StoreError> {
        let client = self.client.lock().await;
        Ok(client
            .query(
                "SELECT event_type FROM counted WHERE ad_instance_id = $1 ORDER BY event_type",
                &[&ad_instance_id],
            )
            .await?
            .iter()
            .filter_map(|r| {
                u8::try_from(r.get::<_, i16>(0))
                    .ok()
                    .and_then(EventType::from_code)
            })
            .collect())
    }

    /// Forgets dedup keys of events older than the dedup window (they are quarantined as too old from then on,
    /// so forgetting cannot recount them) and session rates older than a day. Returns rows deleted.
    pub async fn expire(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let cutoff = now - chrono::TimeDelta::hours(self.policy.dedup_window_hours);
        let client = self.client.lock().await;
        let a = client
            .execute("DELETE FROM event_ids WHERE occurred_at < $1", &[&cutoff])
            .await?;
        let b = client
            .execute("DELETE FROM counted WHERE occurred_at < $1", &[&cutoff])
            .await?;
        let c = client
            .execute(
                "DELETE FROM session_rate WHERE minute < $1",
                &[&(now.timestamp() - 86_400)],
            )
            .await?;
        Ok(a + b + c)
    }

    /// Irreversibly removes the viewer ids `ids` (pseudonyms): frequency rows deleted, stripped from
    /// quarantined events. Aggregates hold no viewer ids. (The raw log is Kafka's: it ages out by retention.)
    pub async fn forget_viewers(&self, ids: &[String]) -> Result<crate::Forgotten, StoreError> {
        let mut client = self.client.lock().await;
        let txn = client.transaction().await?;
        let frequency = txn
            .execute(
                "DELETE FROM viewer_frequency WHERE viewer_id = ANY($1)",
                &[&ids],
            )
            .await?;
        let quarantine = txn
            .execute(
                "UPDATE quarantine SET event = event - 'viewer_id' WHERE event->>'viewer_id' = ANY($1)",
                &[&ids],
            )
            .await?;
        // Pending counter deltas keep their delivery counts; the viewers' frequency deltas go.
        txn.execute(
            "UPDATE counter_outbox SET viewer_impressions = (SELECT coalesce(jsonb_agg(e), '[]'::jsonb) \
             FROM jsonb_array_elements(viewer_impressions) e WHERE NOT (e->>0 = ANY($1))) \
             WHERE EXISTS (SELECT 1 FROM jsonb_array_elements(viewer_impressions) e WHERE e->>0 = ANY($1))",
            &[&ids],
        )
        .await?;
        txn.commit().await?;
        Ok(crate::Forgotten {
            log_events_anonymised: 0,
            quarantine_anonymised: quarantine,
            frequency_rows_deleted: frequency,
        })
    }

    /// Retention: deletes quarantined events older than `before` and frequency rows older than the frequency
    /// window. Returns rows deleted.
    pub async fn compact(
        &self,
        quarantine_before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let client = self.client.lock().await;
        let q = client
            .execute(
                "DELETE FROM quarantine WHERE quarantined_at < $1",
                &[&quarantine_before],
            )
            .await?;
        let horizon = now.timestamp() - self.policy.frequency_window_days * 86_400;
        let f = client
            .execute("DELETE FROM viewer_frequency WHERE hour < $1", &[&horizon])
            .await?;
        Ok(q + f)
    }

    /// The pipeline tables in which any row's text mentions `needle` (the deletion test's check).
    pub async fn tables_mentioning(&self, needle: &str) -> Result<Vec<String>, StoreError> {
        let client = self.client.lock().await;
        let mut out = Vec::new();
        for table in [
            "event_ids",
            "counted",
            "session_rate",
            "windows",
            "ledger",
            "ledger_corrections",
            "viewer_frequency",
            "quarantine",
            "log_offsets",
        ] {
            let sql =
                format!("SELECT EXISTS (SELECT 1 FROM {table} t WHERE strpos(t::text, $1) > 0)");
            if client.query_one(&sql, &[&needle]).await?.get::<_, bool>(0) {
                out.push(table.to_owned());
            }
        }
        Ok(out)
    }

    /// Demand per `group_by` value over the hours that start in `[from, to)`.
    pub async fn demand_report(
        &self,
        group_by: DemandGroupBy,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<DemandRow>, StoreError> {
        let range = [from.timestamp(), to.timestamp()];
        let (delivered, auctions) = {
            let client = self.client.lock().await;
            let delivered = client
                .query(
                    "SELECT hour, bidder, seat, deal_id, currency, impressions, starts, first_quartiles, midpoints, \
                     third_quartiles, completes, clicks, errors, price_cpm_micros_sum \
                     FROM demand WHERE hour >= $1 AND hour < $2",
                    &[&range[0], &range[1]],
                )
                .await?;
            let auctions = client
                .query(
                    "SELECT hour, bidder, seat, deal_id, currency, requests, no_bids, timeouts, errors, bids, wins, \
                     losses FROM auctions WHERE hour >= $1 AND hour < $2",
                    &[&range[0], &range[1]],
                )
                .await?;
            (delivered, auctions)
        };
        let count = |r: &tokio_postgres::Row, i: usize| r.get::<_, i64>(i).max(0) as u64;
        Ok(build_demand_report(
            delivered.iter().map(|r| {
                (
                    demand_key_at(r),
                    Delivered {
                        counts: counts_at(r, 5),
                        price_cpm_micros_sum: count(r, 13),
                    },
                )
            }),
            auctions.iter().map(|r| {
                (
                    demand_key_at(r),
                    AuctionCounts::from_array(std::array::from_fn(|i| count(r, 5 + i))),
                )
            }),
            group_by,
        ))
    }

    /// Adds auction outcomes (additive upserts, in key order so concurrent flushes cannot deadlock).
    pub async fn add_auctions(
        &self,
        mut cells: Vec<(DemandKey, AuctionCounts)>,
    ) -> Result<(), StoreError> {
        cells.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut client = self.client.lock().await;
        let txn = client.transaction().await?;
        for (k, a) in &cells {
            let n = a.as_array().map(|v| v as i64);
            txn.execute(
                "INSERT INTO auctions VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
                 ON CONFLICT (hour, bidder, seat, deal_id, currency) DO UPDATE SET \
                 requests = auctions.requests + EXCLUDED.requests, no_bids = auctions.no_bids + EXCLUDED.no_bids, \
                 timeouts = auctions.timeouts + EXCLUDED.timeouts, errors = auctions.errors + EXCLUDED.errors, \
                 bids = auctions.bids + EXCLUDED.bids, wins = auctions.wins + EXCLUDED.wins, \
                 losses = auctions.losses + EXCLUDED.losses",
                &[
                    &k.hour, &k.bidder, &k.seat, &k.deal_id, &k.currency, &n[0], &n[1], &n[2], &n[3], &n[4],
                    &n[5], &n[6],
                ],
            )
            .await?;
        }
        txn.commit().await?;
        Ok(())
    }

    /// Empties every pipeline table (tests and `interlude demo --fresh`); the catalog is kept.
    pub async fn truncate(&self) -> Result<(), StoreError> {
        let client = self.client.lock().await;
        client
            .batch_execute(
                "TRUNCATE log_offsets, event_ids, counted, session_rate, windows, ledger, ledger_corrections, \
                 viewer_frequency, quarantine, demand, auctions",
            )
            .await?;
        Ok(())
    }
}

impl ReportStore for PgStore {
    fn report(
        &self,
        group_by: GroupBy,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Vec<ReportRow>>> {
        Box::pin(PgStore::report(self, group_by, from, to))
    }

    fn demand_report(
        &self,
        group_by: DemandGroupBy,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Vec<DemandRow>>> {
        Box::pin(PgStore::demand_report(self, group_by, from, to))
    }

    fn add_auctions(
        self: Arc<Self>,
        cells: Vec<(DemandKey, AuctionCounts)>,
    ) -> BoxFuture<'static, Result<()>> {
        Box::pin(async move { PgStore::add_auctions(&self, cells).await })
    }

    fn ledger(&self) -> BoxFuture<'_, Result<Vec<LedgerRow>>> {
        Box::pin(PgStore::ledger(self))
    }

    fn quarantine_counts(&self) -> BoxFuture<'_, Result<BTreeMap<String, u64>>> {
        Box::pin(PgStore::quarantine_counts(self))
    }

    fn counted_events<'a>(
        &'a self,
        ad_instance_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<EventType>>> {
        Box::pin(PgStore::counted_events(self, ad_instance_id))
    }

    fn set_prices(&self, prices: Arc<dyn Prices>) {
        PgStore::set_prices(self, prices);
    }

    fn forget_viewers<'a>(&'a self, ids: &'a [String]) -> BoxFuture<'a, Result<serde_json::Value>> {
        Box::pin(async move {
            let f = PgStore::forget_viewers(self, ids).await?;
            Ok(serde_json::json!({
                "store": "postgresql (quarantine, viewer_frequency)",
                "action": "viewer ids removed from quarantined events; frequency rows deleted",
                "quarantine_anonymised": f.quarantine_anonymised,
                "frequency_rows_deleted": f.frequency_rows_deleted,
            }))
        })
    }

    fn compact(
        self: Arc<Self>,
        _log_before: DateTime<Utc>,
        quarantine_before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> BoxFuture<'static, Result<u64>> {
        // The raw log is Kafka's: it ages out by the topic's retention, not here.
        Box::pin(async move { PgStore::compact(&self, quarantine_before, now).await })
    }
}
