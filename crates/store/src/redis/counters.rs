//! Pacing and frequency-cap counters shared by every ad node, in Redis.
//!
//! Processors add what each committed batch counted ([`RedisCounters::apply`]); decision nodes read them
//! through the engine's [`Counters`] trait. Layout (one Redis, or one hash slot group with `{interlude}` in the
//! prefix on a cluster):
//!
//! - `{prefix}delivered` — hash, field `line_item|hour` → impressions (hour = Unix seconds at its start);
//! - `{prefix}freq:{viewer}` — hash, field `line_item|hour` → impressions, expiring after the frequency window;
//! - `{prefix}applied:{topic}:{partition}:{offset}` — marker of an applied batch (two days), so a batch is
//!   added once even if the processor retries the Redis step.
//!
//! Billing never reads these: the ledger in PostgreSQL is exact. They are exactly once all the same: each batch's
//! deltas are recorded in PostgreSQL with the batch (`crate::pg::outbox`), applied here under the batch's
//! marker, and deleted from PostgreSQL after; a processor killed between its database commit and this step
//! leaves the row, which the next processor re-drives on start (the marker makes a repeat a no-op, for as long
//! as the marker lives: two days).
//!
//! Reads are synchronous (the engine decides on a CPU thread): delivery per line item is a cache refreshed
//! every second by [`RedisCounters::start_refresh`]; a viewer's counts are fetched by [`Counters::prefetch`]
//! just before that viewer's decision and kept for a few seconds.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use interlude_events::{Counters, ViewerHour};
use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;

use crate::Applied;
use crate::Error as StoreError;
use interlude_events::BoxFuture;

/// How long a fetched viewer's counts are reused.
const VIEWER_CACHE: Duration = Duration::from_secs(5);

type Hours = BTreeMap<i64, u64>;
/// Per viewer: when fetched, and impressions per line item and hour.
type ViewerCache = HashMap<String, (Instant, HashMap<String, Hours>)>;

/// The shared counters.
pub struct RedisCounters {
    conn: MultiplexedConnection,
    prefix: String,
    frequency_ttl_secs: u64,
    delivered: RwLock<HashMap<String, Hours>>,
    viewers: RwLock<ViewerCache>,
}

impl std::fmt::Debug for RedisCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCounters")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

const APPLY: &str = r"
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
local i = 3
while i + 2 <= #ARGV do
  redis.call('HINCRBY', ARGV[i], ARGV[i + 1], ARGV[i + 2])
  if string.find(ARGV[i], ':freq:', 1, true) then redis.call('EXPIRE', ARGV[i], ARGV[2]) end
  i = i + 3
end
return 1
";

fn split_field(field: &str) -> Option<(&str, i64)> {
    let (li, hour) = field.rsplit_once('|')?;
    Some((li, hour.parse().ok()?))
}

fn sum_since(hours: Option<&Hours>, since: DateTime<Utc>) -> u64 {
    let from = since.timestamp().div_euclid(3600) * 3600;
    hours.map_or(0, |h| h.range(from..).map(|(_, n)| n).sum())
}

impl RedisCounters {
    /// Connects to `url` (`redis://host:port/db`); keys start with `prefix`; viewers' counts expire after
    /// `frequency_window_days`.
    pub async fn connect(
        url: &str,
        prefix: &str,
        frequency_window_days: i64,
    ) -> Result<Arc<Self>, StoreError> {
        let client = redis::Client::open(url)?;
        let conn = client.get_multiplexed_async_connection().await?;
        Ok(Arc::new(RedisCounters {
            conn,
            prefix: prefix.to_owned(),
            frequency_ttl_secs: u64::try_from(frequency_window_days.max(1)).unwrap_or(30) * 86_400,
            delivered: RwLock::default(),
            viewers: RwLock::default(),
        }))
    }

    /// Adds a committed batch's counts, once per batch.
    pub async fn apply(
        &self,
        topic: &str,
        partition: i32,
        applied: &Applied,
    ) -> Result<bool, StoreError> {
        let Some(first) = applied.first_offset() else {
            return Ok(false);
        };
        self.apply_deltas(topic, partition, first, applied).await
    }

    /// Adds the deltas of the batch of `partition` that started at `first_offset` (its `delivered` and
    /// `viewer_impressions`), unless that batch was added before; whether they were added now.
    pub async fn apply_deltas(
        &self,
        topic: &str,
        partition: i32,
        first: i64,
        applied: &Applied,
    ) -> Result<bool, StoreError> {
        if applied.delivered.is_empty() && applied.viewer_impressions.is_empty() {
            return Ok(false);
        }
        let marker = format!("{}applied:{topic}:{partition}:{first}", self.prefix);
        let lua = redis::Script::new(APPLY);
        let mut script = lua.key(marker);
        script.arg(172_800).arg(self.frequency_ttl_secs);
        let delivered_key = format!("{}delivered", self.prefix);
        for ((li, hour), n) in &applied.delivered {
            script
                .arg(&delivered_key)
                .arg(format!("{li}|{hour}"))
                .arg(*n);
        }
        for ((viewer, li, hour), n) in &applied.viewer_impressions {
            script
                .arg(format!("{}freq:{viewer}", self.prefix))
                .arg(format!("{li}|{hour}"))
                .arg(*n);
        }
        let mut conn = self.conn.clone();
        let done: i64 = script.invoke_async(&mut conn).await?;
        Ok(done == 1)
    }

    /// Re-reads every line item's delivery now.
    pub async fn refresh(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let all: HashMap<String, u64> = conn.hgetall(format!("{}delivered", self.prefix)).await?;
        let mut fresh: HashMap<String, Hours> = HashMap::new();
        for (field, n) in &all {
            if let Some((li, hour)) = split_field(field) {
                fresh.entry(li.to_owned()).or_default().insert(hour, *n);
            }
        }
        if let Ok(mut d) = self.delivered.write() {
            *d = fresh;
        }
        Ok(())
    }

    /// Refreshes delivery every `every` until the returned handle is dropped or aborted.
    pub fn start_refresh(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let Some(me) = me.upgrade() else { return };
                if let Err(e) = me.refresh().await {
                    tracing::warn!(error = %e, "Pacing counters not refreshed.");
                }
            }
        })
    }

    /// Loads a viewer's counts now.
    pub async fn load_viewer(&self, viewer_id: &str) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let all: HashMap<String, u64> = conn
            .hgetall(format!("{}freq:{viewer_id}", self.prefix))
            .await?;
        let mut per_li: HashMap<String, Hours> = HashMap::new();
        for (field, n) in &all {
            if let Some((li, hour)) = split_field(field) {
                per_li.entry(li.to_owned()).or_default().insert(hour, *n);
            }
        }
        if let Ok(mut v) = self.viewers.write() {
            if v.len() > 100_000 {
                v.retain(|_, (at, _)| at.elapsed() < VIEWER_CACHE);
            }
            v.insert(viewer_id.to_owned(), (Instant::now(), per_li));
        }
        Ok(())
    }

    /// Deletes the frequency counts of the viewer ids `ids`; returns how many viewers had any.
    pub async fn forget_viewers(&self, ids: &[String]) -> Result<u64, StoreError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let keys: Vec<String> = ids
            .iter()
            .map(|id| format!("{}freq:{id}", self.prefix))
            .collect();
        let mut conn = self.conn.clone();
        let deleted: u64 = conn.del(keys).await?;
        if let Ok(mut v) = self.viewers.write() {
            for id in ids {
                v.remove(id);
            }
        }
        Ok(deleted)
    }

    /// Keys under this prefix whose name or value mentions `needle` (the deletion test's check).
    pub async fn keys_mentioning(&self, needle: &str) -> Result<Vec<String>, StoreError> {
        super::mentioning(&self.conn, &self.prefix, needle).await
    }

    /// Deletes every key with this prefix (tests).
    pub async fn clear(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let keys: Vec<String> = conn.keys(format!("{}*", self.prefix)).await?;
        if !keys.is_empty() {
            let _: () = conn.del(keys).await?;
        }
        if let Ok(mut d) = self.delivered.write() {
            d.clear();
        }
        if let Ok(mut v) = self.viewers.write() {
            v.clear();
        }
        Ok(())
    }
}

impl Counters for RedisCounters {
    fn delivered(&self, line_item_id: &str, since: DateTime<Utc>) -> u64 {
        self.delivered
            .read()
            .map(|d| sum_since(d.get(line_item_id), since))
            .unwrap_or(0)
    }

    fn viewer_impressions(&self, viewer_id: &str, line_item_id: &str, since: DateTime<Utc>) -> u64 {
        self.viewers
            .read()
            .ok()
            .and_then(|v| {
                v.get(viewer_id)
                    .map(|(_, m)| sum_since(m.get(line_item_id), since))
            })
            .unwrap_or(0)
    }

    /// From the viewer's counts loaded by [`Counters::prefetch`] (empty when they were not).
    fn viewer_hours(&self, viewer_id: &str, since: DateTime<Utc>) -> Option<Vec<ViewerHour>> {
        let from = since.timestamp().div_euclid(3600) * 3600;
        let viewers = self.viewers.read().ok()?;
        let Some((_, line_items)) = viewers.get(viewer_id) else {
            return Some(Vec::new());
        };
        Some(
            line_items
                .iter()
                .flat_map(|(line_item, hours)| {
                    hours.range(from..).map(|(&hour, &n)| ViewerHour {
                        line_item_id: line_item.clone(),
                        hour,
                        impressions: n,
                    })
                })
                .collect(),
        )
    }

    fn prefetch<'a>(&'a self, viewer_id: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let fresh = self
                .viewers
                .read()
                .ok()
                .and_then(|v| v.get(viewer_id).map(|(at, _)| at.elapsed() < VIEWER_CACHE))
                .unwrap_or(false);
            if !fresh {
                if let Err(e) = self.load_viewer(viewer_id).await {
                    tracing::debug!(error = %e, "Viewer counts not loaded; caps read zero.");
                }
            }
        })
    }
}
