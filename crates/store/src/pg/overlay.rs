//! The in-memory overlay a batch is processed against: the dedup state the batch touches, prefetched in one
//! round trip per table, then the pure pipeline runs over it and [`Overlay::write`] sends the changes as
//! additive upserts in key order.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use interlude_events::contract::{AdEvent, EventType};
use interlude_events::{
    Counts, Delivered, DemandKey, PipelineState, Quarantine, WindowCell, WindowKey,
};

use crate::Error as StoreError;

/// The state a batch reads (prefetched) and the changes it makes, for one transaction.
#[derive(Default)]
pub(super) struct Overlay {
    pub(super) known_ids: HashSet<String>,
    pub(super) new_ids: BTreeMap<String, DateTime<Utc>>,
    pub(super) counted: HashMap<(String, EventType), DateTime<Utc>>,
    pub(super) new_counted: BTreeMap<(String, i16), DateTime<Utc>>,
    pub(super) session_base: HashMap<(String, i64), u64>,
    pub(super) session_delta: BTreeMap<(String, i64), u64>,
    pub(super) windows: BTreeMap<WindowKey, Counts>,
    pub(super) ledger: BTreeMap<(String, i64), (Counts, ())>,
    pub(super) corrections: Vec<((String, i64), Counts)>,
    pub(super) frequency: BTreeMap<(String, String, i64), u64>,
    pub(super) demand: BTreeMap<DemandKey, Delivered>,
    pub(super) quarantined: Vec<(AdEvent, Quarantine)>,
    pub(super) undecodable: Vec<(i64, String)>,
    pub(super) max_event_time: Option<DateTime<Utc>>,
}

impl Overlay {
    pub(super) async fn prefetch<'a>(
        &mut self,
        txn: &tokio_postgres::Transaction<'_>,
        events: impl Iterator<Item = &'a AdEvent>,
    ) -> Result<(), StoreError> {
        let (mut ids, mut instances, mut sessions) = (Vec::new(), Vec::new(), Vec::new());
        for e in events {
            ids.push(e.event_id.as_str());
            instances.push(e.ad_instance_id.as_str());
            sessions.push(e.session_id.as_str());
        }
        for r in txn
            .query(
                "SELECT event_id FROM event_ids WHERE event_id = ANY($1)",
                &[&ids],
            )
            .await?
        {
            self.known_ids.insert(r.get(0));
        }
        for r in txn
            .query(
                "SELECT ad_instance_id, event_type, occurred_at FROM counted WHERE ad_instance_id = ANY($1)",
                &[&instances],
            )
            .await?
        {
            let code: i16 = r.get(1);
            if let Some(t) = u8::try_from(code).ok().and_then(EventType::from_code) {
                self.counted.insert((r.get(0), t), r.get(2));
            }
        }
        for r in txn
            .query(
                "SELECT session_id, minute, impressions FROM session_rate WHERE session_id = ANY($1)",
                &[&sessions],
            )
            .await?
        {
            self.session_base
                .insert((r.get(0), r.get(1)), r.get::<_, i64>(2).max(0) as u64);
        }
        Ok(())
    }

    /// Writes the changes; every upsert's rows are in key order (consistent lock order across processors).
    pub(super) async fn write(
        &self,
        txn: &tokio_postgres::Transaction<'_>,
    ) -> Result<(), StoreError> {
        if !self.new_ids.is_empty() {
            let (ids, at): (Vec<&str>, Vec<DateTime<Utc>>) =
                self.new_ids.iter().map(|(k, v)| (k.as_str(), *v)).unzip();
            txn.execute(
                "INSERT INTO event_ids SELECT * FROM unnest($1::text[], $2::timestamptz[])",
                &[&ids, &at],
            )
            .await?;
        }
        if !self.new_counted.is_empty() {
            let mut instances = Vec::new();
            let mut types = Vec::new();
            let mut at = Vec::new();
            for ((i, t), o) in &self.new_counted {
                instances.push(i.as_str());
                types.push(*t);
                at.push(*o);
            }
            txn.execute(
                "INSERT INTO counted SELECT * FROM unnest($1::text[], $2::int2[], $3::timestamptz[])",
                &[&instances, &types, &at],
            )
            .await?;
        }
        if !self.session_delta.is_empty() {
            let (mut s, mut m, mut n) = (Vec::new(), Vec::new(), Vec::new());
            for ((session, minute), count) in &self.session_delta {
                s.push(session.as_str());
                m.push(*minute);
                n.push(*count as i64);
            }
            txn.execute(
                "INSERT INTO session_rate SELECT * FROM unnest($1::text[], $2::int8[], $3::int8[]) \
                 ON CONFLICT (session_id, minute) DO UPDATE SET impressions = session_rate.impressions + EXCLUDED.impressions",
                &[&s, &m, &n],
            )
            .await?;
        }
        if !self.windows.is_empty() {
            let mut cols: [Vec<&str>; 5] = Default::default();
            let mut minutes = Vec::new();
            let mut counts = CountColumns::default();
            for (k, c) in &self.windows {
                minutes.push(k.minute);
                for (col, v) in cols.iter_mut().zip([
                    &k.campaign_id,
                    &k.line_item_id,
                    &k.creative_id,
                    &k.channel,
                    &k.live_event_id,
                ]) {
                    col.push(v.as_str());
                }
                counts.push(c);
            }
            let [c0, c1, c2, c3, c4] = &cols;
            let [n0, n1, n2, n3, n4, n5, n6, n7] = &counts.0;
            txn.execute(
                "INSERT INTO windows SELECT * FROM unnest($1::int8[], $2::text[], $3::text[], $4::text[], $5::text[], \
                 $6::text[], $7::int8[], $8::int8[], $9::int8[], $10::int8[], $11::int8[], $12::int8[], $13::int8[], \
                 $14::int8[]) ON CONFLICT (minute, campaign_id, line_item_id, creative_id, channel, live_event_id) \
                 DO UPDATE SET impressions = windows.impressions + EXCLUDED.impressions, \
                 starts = windows.starts + EXCLUDED.starts, \
                 first_quartiles = windows.first_quartiles + EXCLUDED.first_quartiles, \
                 midpoints = windows.midpoints + EXCLUDED.midpoints, \
                 third_quartiles = windows.third_quartiles + EXCLUDED.third_quartiles, \
                 completes = windows.completes + EXCLUDED.completes, clicks = windows.clicks + EXCLUDED.clicks, \
                 errors = windows.errors + EXCLUDED.errors",
                &[&minutes, c0, c1, c2, c3, c4, n0, n1, n2, n3, n4, n5, n6, n7],
            )
            .await?;
        }
        if !self.ledger.is_empty() {
            let (mut li, mut hour, mut counts) = (Vec::new(), Vec::new(), CountColumns::default());
            for ((l, h), (c, ())) in &self.ledger {
                li.push(l.as_str());
                hour.push(*h);
                counts.push(c);
            }
            let [n0, n1, n2, n3, n4, n5, n6, n7] = &counts.0;
            txn.execute(
                "INSERT INTO ledger SELECT * FROM unnest($1::text[], $2::int8[], $3::int8[], $4::int8[], $5::int8[], \
                 $6::int8[], $7::int8[], $8::int8[], $9::int8[], $10::int8[]) ON CONFLICT (line_item_id, hour) \
                 DO UPDATE SET impressions = ledger.impressions + EXCLUDED.impressions, \
                 starts = ledger.starts + EXCLUDED.starts, \
                 first_quartiles = ledger.first_quartiles + EXCLUDED.first_quartiles, \
                 midpoints = ledger.midpoints + EXCLUDED.midpoints, \
                 third_quartiles = ledger.third_quartiles + EXCLUDED.third_quartiles, \
                 completes = ledger.completes + EXCLUDED.completes, clicks = ledger.clicks + EXCLUDED.clicks, \
                 errors = ledger.errors + EXCLUDED.errors",
                &[&li, &hour, n0, n1, n2, n3, n4, n5, n6, n7],
            )
            .await?;
        }
        for ((li, hour), c) in &self.corrections {
            let n = c.as_array().map(|v| v as i64);
            txn.execute(
                "INSERT INTO ledger_corrections (line_item_id, hour, impressions, starts, first_quartiles, midpoints, \
                 third_quartiles, completes, clicks, errors) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                &[li, hour, &n[0], &n[1], &n[2], &n[3], &n[4], &n[5], &n[6], &n[7]],
            )
            .await?;
        }
        if !self.frequency.is_empty() {
            let (mut v, mut li, mut h, mut n) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for ((viewer, line_item, hour), count) in &self.frequency {
                v.push(viewer.as_str());
                li.push(line_item.as_str());
                h.push(*hour);
                n.push(*count as i64);
            }
            txn.execute(
                "INSERT INTO viewer_frequency SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::int8[]) \
                 ON CONFLICT (viewer_id, line_item_id, hour) \
                 DO UPDATE SET impressions = viewer_frequency.impressions + EXCLUDED.impressions",
                &[&v, &li, &h, &n],
            )
            .await?;
        }
        // A few cells per batch (bidders × hours): one upsert each, in key order.
        for (k, d) in &self.demand {
            let n = d.counts.as_array().map(|v| v as i64);
            txn.execute(
                "INSERT INTO demand VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
                 ON CONFLICT (hour, bidder, seat, deal_id, currency) DO UPDATE SET \
                 impressions = demand.impressions + EXCLUDED.impressions, starts = demand.starts + EXCLUDED.starts, \
                 first_quartiles = demand.first_quartiles + EXCLUDED.first_quartiles, \
                 midpoints = demand.midpoints + EXCLUDED.midpoints, \
                 third_quartiles = demand.third_quartiles + EXCLUDED.third_quartiles, \
                 completes = demand.completes + EXCLUDED.completes, clicks = demand.clicks + EXCLUDED.clicks, \
                 errors = demand.errors + EXCLUDED.errors, \
                 price_cpm_micros_sum = demand.price_cpm_micros_sum + EXCLUDED.price_cpm_micros_sum",
                &[
                    &k.hour, &k.bidder, &k.seat, &k.deal_id, &k.currency, &n[0], &n[1], &n[2], &n[3], &n[4],
                    &n[5], &n[6], &n[7], &(d.price_cpm_micros_sum as i64),
                ],
            )
            .await?;
        }
        for (event, reason) in &self.quarantined {
            let kind = reason.kind();
            let event_json = serde_json::to_value(event).unwrap_or_default();
            txn.execute(
                "INSERT INTO quarantine (event_id, ad_instance_id, reason, detail, event) VALUES ($1, $2, $3, $4, $5)",
                &[&event.event_id, &event.ad_instance_id, &kind, &reason.to_string(), &event_json],
            )
            .await?;
        }
        for (offset, why) in &self.undecodable {
            txn.execute(
                "INSERT INTO quarantine (event_id, ad_instance_id, reason, detail, event) \
                 VALUES ('', '', 'undecodable', $1, $2)",
                &[why, &serde_json::json!({ "offset": offset })],
            )
            .await?;
        }
        Ok(())
    }
}

#[derive(Default)]
struct CountColumns([Vec<i64>; 8]);

impl CountColumns {
    fn push(&mut self, c: &Counts) {
        for (col, v) in self.0.iter_mut().zip(c.as_array()) {
            col.push(v as i64);
        }
    }
}

impl PipelineState for Overlay {
    fn record_event_id(&mut self, event_id: &str, occurred_at: DateTime<Utc>) -> bool {
        if self.known_ids.contains(event_id) || self.new_ids.contains_key(event_id) {
            return false;
        }
        self.new_ids.insert(event_id.to_owned(), occurred_at);
        true
    }

    fn bump_session_minute(&mut self, session_id: &str, minute: i64) -> u64 {
        let key = (session_id.to_owned(), minute);
        let base = self.session_base.get(&key).copied().unwrap_or(0);
        let delta = self.session_delta.entry(key).or_default();
        *delta += 1;
        base + *delta
    }

    fn counted_at(&self, ad_instance_id: &str, event_type: EventType) -> Option<DateTime<Utc>> {
        self.counted
            .get(&(ad_instance_id.to_owned(), event_type))
            .copied()
    }

    fn mark_counted(
        &mut self,
        ad_instance_id: &str,
        event_type: EventType,
        occurred_at: DateTime<Utc>,
    ) -> bool {
        let key = (ad_instance_id.to_owned(), event_type);
        if self.counted.contains_key(&key) {
            return false;
        }
        self.counted.insert(key, occurred_at);
        self.new_counted.insert(
            (ad_instance_id.to_owned(), i16::from(event_type.code())),
            occurred_at,
        );
        true
    }

    fn add_window(&mut self, cell: WindowCell<'_>, counts: Counts) {
        self.windows.entry(cell.to_key()).or_default().add(&counts);
    }

    fn add_ledger(&mut self, line_item_id: &str, hour: i64, counts: Counts, correction: bool) {
        let key = (line_item_id.to_owned(), hour);
        if correction {
            self.corrections.push((key, counts));
        } else {
            self.ledger.entry(key).or_default().0.add(&counts);
        }
    }

    fn add_demand(&mut self, key: DemandKey, delivered: Delivered) {
        self.demand.entry(key).or_default().add(&delivered);
    }

    fn add_viewer_impression(&mut self, viewer_id: &str, line_item_id: &str, hour: i64) {
        *self
            .frequency
            .entry((viewer_id.to_owned(), line_item_id.to_owned(), hour))
            .or_default() += 1;
    }

    fn quarantine(&mut self, event: &AdEvent, reason: &Quarantine) {
        self.quarantined.push((event.clone(), reason.clone()));
    }

    fn max_event_time(&self) -> Option<DateTime<Utc>> {
        self.max_event_time
    }

    fn set_max_event_time(&mut self, t: DateTime<Utc>) {
        self.max_event_time = Some(t);
    }
}
