//! Impression reservations shared by every decision node, in Redis: the distributed implementation of the
//! decision engine's [`Reservations`] seam, whose pure model is
//! [`ReservationBook`](interlude_decision::reservation::ReservationBook).
//!
//! Each reserve is one Lua script, and so is a whole pod's (all or none, one round trip per decision), so it
//! is atomic across nodes: it releases what expired, then reserves only
//! if the line item's pending plus settling stays under the goal (the engine's goal less the live counters'
//! delivered count) and, for each of the viewer's caps, what the
//! decision saw plus the viewer's pending holds stays under the cap. Layout (one Redis, or one hash slot group
//! with `{interlude}` in the prefix on a cluster):
//!
//! - `{prefix}res:i:{ad_instance_id}` — string `p:{expiry ms}` while reserved, followed by the viewer's hold
//!   keys one per line (the key expires with the reservation; the expiry lets a caller's clock ahead of
//!   Redis's see it expired, the hold keys let a confirmation end the holds; erasing a viewer takes its
//!   keys out), `d` once confirmed (kept for [`CONFIRMED_MEMORY`], so a repeated confirmation counts once);
//! - `{prefix}res:p:{line_item}` — sorted set of the pending ad instances, scored by expiry (ms); the key
//!   expires a day after its latest member, which leaves a day to count the expired ones;
//! - `{prefix}res:s:{line_item}` — sorted set of the confirmed ad instances still settling, scored by the end
//!   of their settling (ms, [`CONFIRM_SETTLE`] after the confirmation or the reservation's expiry, whichever
//!   is sooner); the key expires with its latest member;
//! - `{prefix}res:l:{line_item}` — hash `delivered`, `expired`, expiring [`LINE_TTL_SECS`] after its last write;
//! - `{prefix}res:v:{viewer length}:{viewer}:{cap key}` — sorted set of the viewer's holds on one cap, scored
//!   by expiry; the key expires with its latest member. The length makes the viewer part unambiguous: erasing
//!   viewer `a` must not match the keys of viewer `a:b`. A confirmed instance's holds are re-scored to the
//!   end of its settling, when the viewer's counters show the impression (see
//!   [`interlude_decision::reservation`]).
//!
//! The engine decides synchronously on a CPU thread, so this adapter talks to Redis over blocking connections
//! from a small pool (inside [`tokio::task::block_in_place`] on a multi-threaded runtime, so the other tasks of
//! that worker move on meanwhile), with short timeouts. When Redis fails, a reservation is refused: the ad
//! slot gets slate rather than risk an overrun.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use interlude_decision::reservation::{
    CONFIRM_SETTLE, CONFIRMED_MEMORY, Consumption, Reservation, Reservations,
};
use redis::{Connection, RedisResult, Script};

use crate::Error as StoreError;

/// How long a line item's delivered and expired counts live after their last change: longer than any flight's
/// quiet spell.
pub const LINE_TTL_SECS: u64 = 40 * 86_400;

/// How long a line item's consumption read is reused by planning (the atomic reserve never reuses it).
const CONSUMPTION_CACHE: Duration = Duration::from_millis(500);

/// Blocking connections kept for reuse.
const POOL: usize = 16;

/// After a failure, how long reservations are refused without asking Redis: a decision walks candidates
/// one refusal at a time, and must not wait on a timeout for each.
const BACKOFF: Duration = Duration::from_secs(1);

/// Time to connect, and to wait for one answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const IO_TIMEOUT: Duration = Duration::from_millis(500);

const RESERVE: &str = r"
local now = tonumber(ARGV[1])
local exp = tonumber(ARGV[2])
local held = redis.call('GET', KEYS[1])
if held == 'd' then return 1 end
if held and tonumber(string.match(held, '^p:(%d+)')) > now then return 1 end
local gone = redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if gone > 0 then
  redis.call('HINCRBY', KEYS[3], 'expired', gone)
  redis.call('EXPIRE', KEYS[3], ARGV[4])
end
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
if redis.call('ZCARD', KEYS[2]) + redis.call('ZCARD', KEYS[4]) >= tonumber(ARGV[3]) then return 0 end
for k = 5, #KEYS do
  redis.call('ZREMRANGEBYSCORE', KEYS[k], '-inf', now)
  if redis.call('ZCARD', KEYS[k]) >= tonumber(ARGV[k + 1]) then return 0 end
end
local function hold(key, until_ms)
  redis.call('ZADD', key, exp, ARGV[5])
  if redis.call('PTTL', key) < until_ms - now then redis.call('PEXPIREAT', key, until_ms) end
end
hold(KEYS[2], exp + 86400000)
local names = {'p:' .. ARGV[2]}
for k = 5, #KEYS do
  hold(KEYS[k], exp)
  names[#names + 1] = KEYS[k]
end
redis.call('SET', KEYS[1], table.concat(names, '\n'), 'PXAT', exp)
return 1
";

/// A pod's reservations in one script, all or none. KEYS per ad: instance, pending, line, settling, then its
/// holds.
/// ARGV: now, line TTL; per ad: id, expiry, goal, number of holds, then each hold's room. Returns 0 when all
/// were reserved, else the 1-based index of the first refused, whatever this call reserved undone.
const RESERVE_POD: &str = r"
local now = tonumber(ARGV[1])
local k, a = 1, 3
local done = {}
local function undo()
  for _, d in ipairs(done) do
    redis.call('ZREM', d[2], d[1])
    for _, h in ipairs(d[3]) do redis.call('ZREM', h, d[1]) end
    redis.call('DEL', d[4])
  end
end
local n = 0
while a <= #ARGV do
  n = n + 1
  local inst, pending, line, settling = KEYS[k], KEYS[k + 1], KEYS[k + 2], KEYS[k + 3]
  local id, exp, goal, nh = ARGV[a], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local holds = {}
  for j = 1, nh do holds[j] = KEYS[k + 3 + j] end
  local held = redis.call('GET', inst)
  local known = held == 'd' or (held and tonumber(string.match(held, '^p:(%d+)')) > now)
  if not known then
    local gone = redis.call('ZREMRANGEBYSCORE', pending, '-inf', now)
    if gone > 0 then
      redis.call('HINCRBY', line, 'expired', gone)
      redis.call('EXPIRE', line, ARGV[2])
    end
    redis.call('ZREMRANGEBYSCORE', settling, '-inf', now)
    local over = redis.call('ZCARD', pending) + redis.call('ZCARD', settling) >= goal
    for j = 1, nh do
      if not over then
        redis.call('ZREMRANGEBYSCORE', holds[j], '-inf', now)
        over = redis.call('ZCARD', holds[j]) >= tonumber(ARGV[a + 3 + j])
      end
    end
    if over then
      undo()
      return n
    end
    local function hold(key, until_ms)
      redis.call('ZADD', key, exp, id)
      if redis.call('PTTL', key) < until_ms - now then redis.call('PEXPIREAT', key, until_ms) end
    end
    hold(pending, exp + 86400000)
    local names = {'p:' .. ARGV[a + 1]}
    for j = 1, nh do
      hold(holds[j], exp)
      names[#names + 1] = holds[j]
    end
    redis.call('SET', inst, table.concat(names, '\n'), 'PXAT', exp)
    done[#done + 1] = {id, pending, holds, inst}
  end
  k = k + 4 + nh
  a = a + 4 + nh
end
return 0
";

/// KEYS: instance, pending, line, settling, then the viewer's hold keys (read from the instance's value).
/// ARGV: now, confirmed memory, id, line TTL, settle (ms). A pending reservation moves to settling until
/// `now + settle` (or its expiry, if sooner), and its holds on the viewer's caps end then too.
const CONFIRM: &str = r"
if redis.call('GET', KEYS[1]) == 'd' then return 0 end
local now = tonumber(ARGV[1])
local gone = redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if gone > 0 then redis.call('HINCRBY', KEYS[3], 'expired', gone) end
local exp = redis.call('ZSCORE', KEYS[2], ARGV[3])
if exp then
  redis.call('ZREM', KEYS[2], ARGV[3])
  local until_ms = math.min(tonumber(exp), now + tonumber(ARGV[5]))
  redis.call('ZADD', KEYS[4], until_ms, ARGV[3])
  if redis.call('PTTL', KEYS[4]) < until_ms - now then redis.call('PEXPIREAT', KEYS[4], until_ms) end
  for k = 5, #KEYS do
    if redis.call('ZSCORE', KEYS[k], ARGV[3]) then redis.call('ZADD', KEYS[k], 'XX', until_ms, ARGV[3]) end
  end
end
redis.call('HINCRBY', KEYS[3], 'delivered', 1)
redis.call('EXPIRE', KEYS[3], ARGV[4])
redis.call('SET', KEYS[1], 'd', 'PX', ARGV[2])
return 1
";

const RELEASE: &str = r"
local held = redis.call('GET', KEYS[1])
if not held or held == 'd' then return 0 end
for k = 2, #KEYS do redis.call('ZREM', KEYS[k], ARGV[1]) end
redis.call('DEL', KEYS[1])
return 1
";

const CONSUMPTION: &str = r"
local gone = redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if gone > 0 then
  redis.call('HINCRBY', KEYS[2], 'expired', gone)
  redis.call('EXPIRE', KEYS[2], ARGV[2])
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[1])
return {tonumber(redis.call('HGET', KEYS[2], 'delivered') or '0'), redis.call('ZCARD', KEYS[1]),
  tonumber(redis.call('HGET', KEYS[2], 'expired') or '0'), redis.call('ZCARD', KEYS[3])}
";

/// A consumption read: when (real time and the caller's time), and what.
type Cached = (Instant, DateTime<Utc>, Consumption);

/// The shared reservations.
pub struct RedisReservations {
    client: redis::Client,
    idle: Mutex<Vec<Connection>>,
    prefix: String,
    reserve: Script,
    reserve_pod: Script,
    confirm: Script,
    release: Script,
    consumption: Script,
    /// Until when Redis is taken to be down (after a failure).
    down_until: Mutex<Option<Instant>>,
    /// Recent consumption reads, by line item.
    cache: Mutex<HashMap<String, Cached>>,
}

impl std::fmt::Debug for RedisReservations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisReservations")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// Runs blocking `f`, telling a multi-threaded runtime this worker is busy so its other tasks move on.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// The tightest room per cap key of `r`: one hold per key per reservation, as in the model. None without a
/// viewer.
fn rooms(r: &Reservation) -> BTreeMap<&str, i64> {
    let mut rooms: BTreeMap<&str, i64> = BTreeMap::new();
    if r.viewer_id.is_some() {
        for c in &r.caps {
            let room = i64::from(c.max) - i64::try_from(c.seen).unwrap_or(i64::MAX);
            let slot = rooms.entry(c.key.as_str()).or_insert(room);
            *slot = (*slot).min(room);
        }
    }
    rooms
}

fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

impl RedisReservations {
    /// Connects to `url` (`redis://host:port/db`), checking it answers; keys start with `prefix`. Blocks for
    /// at most the connect timeout.
    pub fn connect(url: &str, prefix: &str) -> Result<Arc<Self>, StoreError> {
        let client = redis::Client::open(url)?;
        let me = RedisReservations {
            client,
            idle: Mutex::new(Vec::new()),
            prefix: prefix.to_owned(),
            reserve: Script::new(RESERVE),
            reserve_pod: Script::new(RESERVE_POD),
            confirm: Script::new(CONFIRM),
            release: Script::new(RELEASE),
            consumption: Script::new(CONSUMPTION),
            cache: Mutex::default(),
            down_until: Mutex::new(None),
        };
        let conn = blocking(|| me.open())?;
        if let Ok(mut idle) = me.idle.lock() {
            idle.push(conn);
        }
        Ok(Arc::new(me))
    }

    fn open(&self) -> RedisResult<Connection> {
        let conn = self.client.get_connection_with_timeout(CONNECT_TIMEOUT)?;
        conn.set_read_timeout(Some(IO_TIMEOUT))?;
        conn.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok(conn)
    }

    /// Runs `f` on a pooled connection (a new one when none is idle); a connection that failed is dropped, and
    /// for [`BACKOFF`] after an I/O failure calls fail at once.
    fn with_conn<T>(&self, f: impl FnOnce(&mut Connection) -> RedisResult<T>) -> RedisResult<T> {
        if let Ok(down) = self.down_until.lock()
            && down.is_some_and(|until| Instant::now() < until)
        {
            return Err(redis::RedisError::from((
                redis::ErrorKind::Io,
                "Redis failed less than a second ago",
            )));
        }
        let out = blocking(|| {
            let idle = self.idle.lock().ok().and_then(|mut v| v.pop());
            let mut conn = match idle {
                Some(c) => c,
                None => self.open()?,
            };
            let out = f(&mut conn);
            if out.is_ok()
                && let Ok(mut idle) = self.idle.lock()
                && idle.len() < POOL
            {
                idle.push(conn);
            }
            out
        });
        if out
            .as_ref()
            .is_err_and(|e| e.is_io_error() || e.is_timeout() || e.is_connection_dropped())
            && let Ok(mut down) = self.down_until.lock()
        {
            *down = Some(Instant::now() + BACKOFF);
        }
        out
    }

    fn instance_key(&self, id: &str) -> String {
        format!("{}res:i:{id}", self.prefix)
    }

    fn pending_key(&self, line_item: &str) -> String {
        format!("{}res:p:{line_item}", self.prefix)
    }

    fn line_key(&self, line_item: &str) -> String {
        format!("{}res:l:{line_item}", self.prefix)
    }

    fn settling_key(&self, line_item: &str) -> String {
        format!("{}res:s:{line_item}", self.prefix)
    }

    fn hold_key(&self, viewer: &str, cap: &str) -> String {
        format!("{}res:v:{}:{viewer}:{cap}", self.prefix, viewer.len())
    }

    fn try_reserve(&self, r: &Reservation, goal: u64, now: DateTime<Utc>) -> RedisResult<bool> {
        let rooms = rooms(r);
        if rooms.values().any(|&room| room <= 0) {
            return Ok(false);
        }
        let mut call = self.reserve.key(self.instance_key(&r.ad_instance_id));
        call.key(self.pending_key(&r.line_item_id))
            .key(self.line_key(&r.line_item_id))
            .key(self.settling_key(&r.line_item_id));
        if let Some(viewer) = &r.viewer_id {
            for key in rooms.keys() {
                call.key(self.hold_key(viewer, key));
            }
        }
        call.arg(millis(now))
            .arg(millis(r.expires_at))
            .arg(goal)
            .arg(LINE_TTL_SECS)
            .arg(&r.ad_instance_id);
        for room in rooms.values() {
            call.arg(*room);
        }
        let done: i64 = self.with_conn(|c| call.invoke(c))?;
        if done == 1
            && let Ok(mut cache) = self.cache.lock()
        {
            // This node's own planning sees its reservation at once.
            cache.remove(&r.line_item_id);
        }
        Ok(done == 1)
    }

    fn try_reserve_pod(
        &self,
        pod: &[(Reservation, u64)],
        now: DateTime<Utc>,
    ) -> RedisResult<Option<usize>> {
        let mut call = self.reserve_pod.prepare_invoke();
        call.arg(millis(now)).arg(LINE_TTL_SECS);
        for (i, (r, goal)) in pod.iter().enumerate() {
            let rooms = rooms(r);
            if rooms.values().any(|&room| room <= 0) {
                // Refused before asking; nothing of the pod is reserved yet.
                return Ok(Some(i));
            }
            call.key(self.instance_key(&r.ad_instance_id))
                .key(self.pending_key(&r.line_item_id))
                .key(self.line_key(&r.line_item_id))
                .key(self.settling_key(&r.line_item_id));
            if let Some(viewer) = &r.viewer_id {
                for key in rooms.keys() {
                    call.key(self.hold_key(viewer, key));
                }
            }
            call.arg(&r.ad_instance_id)
                .arg(millis(r.expires_at))
                .arg(*goal)
                .arg(rooms.len());
            for room in rooms.values() {
                call.arg(*room);
            }
        }
        let refused: i64 = self.with_conn(|c| call.invoke(c))?;
        if let Ok(mut cache) = self.cache.lock() {
            for (r, _) in pod {
                cache.remove(&r.line_item_id);
            }
        }
        Ok(usize::try_from(refused).ok().and_then(|n| n.checked_sub(1)))
    }

    fn try_confirm(&self, id: &str, line_item: &str, now: DateTime<Utc>) -> RedisResult<bool> {
        let instance = self.instance_key(id);
        // The viewer's hold keys, as the reserve recorded them after the expiry (`p:{ms}\n{key}…`): read first
        // so the script names every key it touches (cluster-safe); they never change for an instance.
        let held: Option<String> = self.with_conn(|c| redis::cmd("GET").arg(&instance).query(c))?;
        let mut call = self.confirm.key(&instance);
        call.key(self.pending_key(line_item))
            .key(self.line_key(line_item))
            .key(self.settling_key(line_item));
        for key in held.iter().flat_map(|v| v.split('\n').skip(1)) {
            call.key(key);
        }
        call.arg(millis(now))
            .arg(CONFIRMED_MEMORY.num_milliseconds())
            .arg(id)
            .arg(LINE_TTL_SECS)
            .arg(CONFIRM_SETTLE.num_milliseconds());
        let done: i64 = self.with_conn(|c| call.invoke(c))?;
        if let Ok(mut cache) = self.cache.lock() {
            cache.remove(line_item);
        }
        Ok(done == 1)
    }

    /// [`Reservations::release_instance`]: the hold keys come from the instance's value, as in
    /// [`RedisReservations::try_confirm`].
    fn try_release_instance(&self, id: &str, line_item: &str) -> RedisResult<()> {
        let instance = self.instance_key(id);
        let held: Option<String> = self.with_conn(|c| redis::cmd("GET").arg(&instance).query(c))?;
        let Some(held) = held.filter(|v| v.starts_with("p:")) else {
            return Ok(());
        };
        let mut call = self.release.key(&instance);
        call.key(self.pending_key(line_item));
        for key in held.split('\n').skip(1) {
            call.key(key);
        }
        call.arg(id);
        let _: i64 = self.with_conn(|c| call.invoke(c))?;
        if let Ok(mut cache) = self.cache.lock() {
            cache.remove(line_item);
        }
        Ok(())
    }

    fn try_release(&self, r: &Reservation) -> RedisResult<()> {
        let mut call = self.release.key(self.instance_key(&r.ad_instance_id));
        call.key(self.pending_key(&r.line_item_id));
        if let Some(viewer) = &r.viewer_id {
            let keys: std::collections::BTreeSet<&str> =
                r.caps.iter().map(|c| c.key.as_str()).collect();
            for key in keys {
                call.key(self.hold_key(viewer, key));
            }
        }
        call.arg(&r.ad_instance_id);
        let _: i64 = self.with_conn(|c| call.invoke(c))?;
        if let Ok(mut cache) = self.cache.lock() {
            cache.remove(&r.line_item_id);
        }
        Ok(())
    }

    /// Deletes every hold key of the viewers `ids`; how many.
    fn try_forget(&self, ids: &[String]) -> RedisResult<u64> {
        let mut deleted = 0;
        for id in ids {
            // The id is matched literally: glob characters in it are escaped.
            let mut pattern = String::with_capacity(id.len());
            for ch in id.chars() {
                if matches!(ch, '*' | '?' | '[' | ']' | '\\') {
                    pattern.push('\\');
                }
                pattern.push(ch);
            }
            let pattern = format!("{}res:v:{}:{pattern}:*", self.prefix, id.len());
            let keys: Vec<String> = self.with_conn(|c| {
                let mut keys = Vec::new();
                let mut cursor: u64 = 0;
                loop {
                    let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(1000)
                        .query(c)?;
                    keys.extend(batch);
                    if next == 0 {
                        return Ok(keys);
                    }
                    cursor = next;
                }
            })?;
            if !keys.is_empty() {
                self.scrub_instances(&keys)?;
                let n: u64 = self.with_conn(|c| redis::cmd("DEL").arg(&keys).query(c))?;
                deleted += n;
            }
        }
        Ok(deleted)
    }

    /// Removes the hold keys `keys` (one erased viewer's) from the values of the instances they hold, which
    /// name them for confirmation: the members of a hold set are those instances. The rest of each value
    /// (its expiry, other keys) and its time to live stay.
    fn scrub_instances(&self, keys: &[String]) -> RedisResult<()> {
        let gone: std::collections::HashSet<&str> = keys.iter().map(String::as_str).collect();
        for key in keys {
            let members: Vec<String> =
                self.with_conn(|c| redis::cmd("ZRANGE").arg(key).arg(0).arg(-1).query(c))?;
            for id in members {
                let instance = self.instance_key(&id);
                let value: Option<String> =
                    self.with_conn(|c| redis::cmd("GET").arg(&instance).query(c))?;
                let Some(value) = value.filter(|v| v.starts_with("p:")) else {
                    continue;
                };
                let kept: Vec<&str> = value.split('\n').filter(|l| !gone.contains(l)).collect();
                let kept = kept.join("\n");
                if kept != value {
                    let _: () = self.with_conn(|c| {
                        redis::cmd("SET")
                            .arg(&instance)
                            .arg(&kept)
                            .arg("KEEPTTL")
                            .arg("XX")
                            .query(c)
                    })?;
                }
            }
        }
        Ok(())
    }

    fn try_consumption(&self, line_item: &str, now: DateTime<Utc>) -> RedisResult<Consumption> {
        let mut call = self.consumption.key(self.pending_key(line_item));
        call.key(self.line_key(line_item))
            .key(self.settling_key(line_item))
            .arg(millis(now))
            .arg(LINE_TTL_SECS);
        let (delivered, pending, expired, settling): (u64, u64, u64, u64) =
            self.with_conn(|c| call.invoke(c))?;
        Ok(Consumption {
            delivered,
            pending,
            settling,
            expired,
        })
    }
}

impl Reservations for RedisReservations {
    fn reserve(&self, reservation: Reservation, goal: u64, now: DateTime<Utc>) -> bool {
        match self.try_reserve(&reservation, goal, now) {
            Ok(done) => done,
            Err(e) => {
                tracing::warn!(error = %e, ad_instance_id = %reservation.ad_instance_id, "Reservation refused: Redis failed.");
                false
            }
        }
    }

    fn reserve_pod(&self, pod: &[(Reservation, u64)], now: DateTime<Utc>) -> Option<usize> {
        if pod.is_empty() {
            return None;
        }
        match self.try_reserve_pod(pod, now) {
            Ok(refused) => refused,
            Err(e) => {
                tracing::warn!(error = %e, ads = pod.len(), "Pod reservation refused: Redis failed.");
                Some(0)
            }
        }
    }

    fn confirm(&self, ad_instance_id: &str, line_item_id: &str, now: DateTime<Utc>) -> bool {
        match self.try_confirm(ad_instance_id, line_item_id, now) {
            Ok(done) => done,
            Err(e) => {
                tracing::warn!(error = %e, %ad_instance_id, "Delivery not confirmed: Redis failed.");
                false
            }
        }
    }

    fn release_instance(&self, ad_instance_id: &str, line_item_id: &str, _now: DateTime<Utc>) {
        if let Err(e) = self.try_release_instance(ad_instance_id, line_item_id) {
            tracing::warn!(error = %e, %ad_instance_id, "Reservation not released: Redis failed.");
        }
    }

    fn release(&self, reservation: &Reservation, _now: DateTime<Utc>) {
        if let Err(e) = self.try_release(reservation) {
            // Not given back now, it is at its expiry.
            tracing::warn!(error = %e, ad_instance_id = %reservation.ad_instance_id, "Reservation not released: Redis failed.");
        }
    }

    fn forget_viewers(&self, ids: &[String]) -> u64 {
        match self.try_forget(ids) {
            Ok(n) => n,
            Err(e) => {
                // Not deleted now, they expire with their reservations (minutes).
                tracing::warn!(error = %e, "Viewers' reservation holds not deleted: Redis failed.");
                0
            }
        }
    }

    fn consumption(&self, line_item_id: &str, now: DateTime<Utc>) -> Consumption {
        // Reused only for reads close in real time and in the caller's time (a simulation's clock jumps).
        if let Ok(cache) = self.cache.lock()
            && let Some((at, then, c)) = cache.get(line_item_id)
            && at.elapsed() < CONSUMPTION_CACHE
            && (now - *then).abs() < chrono::TimeDelta::milliseconds(500)
        {
            return *c;
        }
        match self.try_consumption(line_item_id, now) {
            Ok(c) => {
                if let Ok(mut cache) = self.cache.lock() {
                    if cache.len() > 100_000 {
                        cache.retain(|_, (at, _, _)| at.elapsed() < CONSUMPTION_CACHE);
                    }
                    cache.insert(line_item_id.to_owned(), (Instant::now(), now, c));
                }
                c
            }
            Err(e) => {
                tracing::warn!(error = %e, %line_item_id, "Reservations not read: Redis failed.");
                Consumption::default()
            }
        }
    }
}
