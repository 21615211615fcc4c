//! The traits other crates program against (re-exported at the crate root). Each is small, object-safe and
//! async through [`BoxFuture`]; what travels through the node-shared seams is opaque JSON, so the store knows
//! nothing of the server's session or decision types.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use interlude_events::contract::EventType;
use interlude_events::{AuctionCounts, BoxFuture, DemandKey, Prices};

use crate::Result;
use crate::reports::{DemandGroupBy, DemandRow, GroupBy, LedgerRow, ReportRow};

/// Where reports, the billing ledger and the quarantine are read, and where erasure and retention act on
/// the pipeline's stored events. The embedded store and PostgreSQL implement it.
pub trait ReportStore: Send + Sync + std::fmt::Debug {
    /// Counts per `group_by` value over event time `[from, to)`.
    fn report(
        &self,
        group_by: GroupBy,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Vec<ReportRow>>>;
    /// Demand (bidders, seats, deals) per `group_by` value over the hours that start in `[from, to)`.
    fn demand_report(
        &self,
        group_by: DemandGroupBy,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Vec<DemandRow>>>;
    /// Adds a decider's auction outcomes (its periodic flush). Owns the store (the embedded one writes on a
    /// blocking thread).
    fn add_auctions(
        self: Arc<Self>,
        cells: Vec<(DemandKey, AuctionCounts)>,
    ) -> BoxFuture<'static, Result<()>>;
    /// The billing ledger, priced.
    fn ledger(&self) -> BoxFuture<'_, Result<Vec<LedgerRow>>>;
    /// Quarantined events by reason.
    fn quarantine_counts(&self) -> BoxFuture<'_, Result<BTreeMap<String, u64>>>;
    /// The event types counted for one ad instance.
    fn counted_events<'a>(
        &'a self,
        ad_instance_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<EventType>>>;
    /// Sets the line-item prices spend is computed with (the catalog replaces them on reload).
    fn set_prices(&self, prices: Arc<dyn Prices>);
    /// Removes the viewer ids `ids` from what this store keeps; the deletion receipt's line for it.
    fn forget_viewers<'a>(&'a self, ids: &'a [String]) -> BoxFuture<'a, Result<serde_json::Value>>;
    /// Enforces retention: raw events received before `log_before` and quarantined events before
    /// `quarantine_before` are removed (where this store keeps them); how many. Owns the store (a sweep may
    /// run on a blocking thread).
    fn compact(
        self: Arc<Self>,
        log_before: DateTime<Utc>,
        quarantine_before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> BoxFuture<'static, Result<u64>>;
}

/// Sessions and their break decisions shared by every stitcher node, so any node can render any session's
/// playlist. Values are the caller's JSON; a break's decision is arbitrated (the first stored wins).
pub trait SessionShare: Send + Sync {
    /// Publishes a new session (`viewer_id` indexes it for erasure).
    fn save_session<'a>(
        &'a self,
        id: &'a str,
        viewer_id: Option<&'a str>,
        record: &'a str,
    ) -> BoxFuture<'a, Result<()>>;
    /// A session another node created.
    fn load_session<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<String>>>;
    /// Stores `decision` for the break unless one exists; returns the decision in force (the winner).
    fn save_decision<'a>(
        &'a self,
        session_id: &'a str,
        break_id: &'a str,
        decision: &'a str,
    ) -> BoxFuture<'a, Result<String>>;
    /// The decision for a break, if some node made it.
    fn load_decision<'a>(
        &'a self,
        session_id: &'a str,
        break_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>>>;
    /// Keeps an active session (and its decisions) from expiring.
    fn touch<'a>(&'a self, session_id: &'a str) -> BoxFuture<'a, Result<()>>;
    /// Deletes the sessions (and their decisions) of the viewers `ids`; how many sessions.
    fn forget_viewers<'a>(&'a self, ids: &'a [String]) -> BoxFuture<'a, Result<u64>>;
    /// Stored entries that mention `needle` (the erasure test's check).
    fn mentioning<'a>(&'a self, needle: &'a str) -> BoxFuture<'a, Result<Vec<String>>>;
}

/// The decision catalog as one versioned JSON document that admins write and every node polls. Writers
/// compare and set on the version, so two admins editing at once cannot lose an edit.
pub trait CatalogStore: Send + Sync + std::fmt::Debug {
    /// The stored catalog and its version, if any was stored.
    fn load(&self) -> BoxFuture<'_, Result<Option<(i64, serde_json::Value)>>>;
    /// The stored version (0 when none).
    fn version(&self) -> BoxFuture<'_, Result<i64>>;
    /// Stores `document` if the stored version is still `expected` (0: none stored yet); the new version, or
    /// `None` when someone else wrote first.
    fn save<'a>(
        &'a self,
        expected: i64,
        document: &'a serde_json::Value,
    ) -> BoxFuture<'a, Result<Option<i64>>>;
}

/// Operator controls (kill switches, slate-only channels) published to every node. The whole controls
/// document travels each time: changes are rare and human-paced, last writer wins. Subscribers are given
/// to the backend's constructor, which also delivers the document in force when it starts.
pub trait ControlsBus: Send + Sync {
    /// Publishes the whole controls document (JSON) to every node, this one included.
    fn publish(&self, document: String);
}
