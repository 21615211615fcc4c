//! The embedded store as a [`ReportStore`]: reads are short read transactions answered inline; retention
//! sweeps run on a blocking thread (they delete in bounded batches).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use interlude_events::contract::EventType;
use interlude_events::{AuctionCounts, BoxFuture, DemandKey, Prices};

use super::EventStore;
use crate::reports::{DemandGroupBy, DemandRow, GroupBy, LedgerRow, ReportRow};
use crate::{ReportStore, Result};

impl ReportStore for EventStore {
    fn report(
        &self,
        group_by: GroupBy,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Vec<ReportRow>>> {
        Box::pin(std::future::ready(EventStore::report(
            self, group_by, from, to,
        )))
    }

    fn demand_report(
        &self,
        group_by: DemandGroupBy,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Vec<DemandRow>>> {
        Box::pin(std::future::ready(EventStore::demand_report(
            self, group_by, from, to,
        )))
    }

    fn add_auctions(
        self: Arc<Self>,
        cells: Vec<(DemandKey, AuctionCounts)>,
    ) -> BoxFuture<'static, Result<()>> {
        // A write transaction waits for the committer's: off the runtime's threads.
        Box::pin(async move {
            tokio::task::spawn_blocking(move || EventStore::add_auctions(&self, &cells)).await?
        })
    }

    fn ledger(&self) -> BoxFuture<'_, Result<Vec<LedgerRow>>> {
        Box::pin(std::future::ready(EventStore::ledger(self)))
    }

    fn quarantine_counts(&self) -> BoxFuture<'_, Result<BTreeMap<String, u64>>> {
        Box::pin(std::future::ready(EventStore::quarantine_counts(self)))
    }

    fn counted_events<'a>(
        &'a self,
        ad_instance_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<EventType>>> {
        Box::pin(std::future::ready(EventStore::counted_events(
            self,
            ad_instance_id,
        )))
    }

    fn set_prices(&self, prices: Arc<dyn Prices>) {
        EventStore::set_prices(self, prices);
    }

    fn forget_viewers<'a>(&'a self, ids: &'a [String]) -> BoxFuture<'a, Result<serde_json::Value>> {
        Box::pin(async move {
            let f = EventStore::forget_viewers(self, ids)?;
            Ok(serde_json::json!({
                "store": "embedded event store (log, quarantine, frequency)",
                "action": "viewer ids removed from logged and quarantined events; frequency rows deleted",
                "log_events_anonymised": f.log_events_anonymised,
                "quarantine_anonymised": f.quarantine_anonymised,
                "frequency_rows_deleted": f.frequency_rows_deleted,
            }))
        })
    }

    fn compact(
        self: Arc<Self>,
        log_before: DateTime<Utc>,
        quarantine_before: DateTime<Utc>,
        _now: DateTime<Utc>,
    ) -> BoxFuture<'static, Result<u64>> {
        Box::pin(async move {
            let c = tokio::task::spawn_blocking(move || {
                EventStore::compact_all(&self, log_before, quarantine_before)
            })
            .await??;
            Ok(c.0.log_events + c.0.quarantined)
        })
    }
}
