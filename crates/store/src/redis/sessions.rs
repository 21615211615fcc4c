//! [`SessionShare`] on Redis. Layout (`{prefix}` from `distributed.key_prefix`), every key expiring after the
//! session TTL of idleness:
//! - `{prefix}session:{id}`: the session record (the caller's JSON);
//! - `{prefix}decisions:{id}`: hash, field break id → the decision (the caller's JSON); `HSETNX` arbitrates,
//!   so the first node to store a break's decision wins and every other node adopts it;
//! - `{prefix}viewer:{viewer}`: set of the viewer's session ids (erasure finds them without a scan).

use interlude_events::BoxFuture;
use redis::AsyncCommands;

use crate::{Result, SessionShare};

/// Shared sessions in Redis.
pub struct RedisSessionShare {
    conn: redis::aio::MultiplexedConnection,
    prefix: String,
    ttl_secs: u64,
}

impl std::fmt::Debug for RedisSessionShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSessionShare")
            .field("prefix", &self.prefix)
            .field("ttl_secs", &self.ttl_secs)
            .finish_non_exhaustive()
    }
}

const SAVE_DECISION: &str = r"
redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return redis.call('HGET', KEYS[1], ARGV[1])
";

impl RedisSessionShare {
    /// Connects; keys start with `prefix` and expire after `ttl_secs` without use.
    pub async fn connect(url: &str, prefix: &str, ttl_secs: u64) -> Result<Self> {
        let client = redis::Client::open(url)?;
        Ok(RedisSessionShare {
            conn: client.get_multiplexed_async_connection().await?,
            prefix: prefix.to_owned(),
            ttl_secs: ttl_secs.max(1),
        })
    }

    fn session_key(&self, id: &str) -> String {
        format!("{}session:{id}", self.prefix)
    }

    fn decisions_key(&self, id: &str) -> String {
        format!("{}decisions:{id}", self.prefix)
    }

    fn viewer_key(&self, viewer: &str) -> String {
        format!("{}viewer:{viewer}", self.prefix)
    }

    fn ttl(&self) -> i64 {
        i64::try_from(self.ttl_secs).unwrap_or(i64::MAX)
    }
}

impl SessionShare for RedisSessionShare {
    fn save_session<'a>(
        &'a self,
        id: &'a str,
        viewer_id: Option<&'a str>,
        record: &'a str,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let mut pipe = redis::pipe();
            pipe.set_ex(self.session_key(id), record, self.ttl_secs)
                .ignore();
            if let Some(viewer) = viewer_id {
                let key = self.viewer_key(viewer);
                pipe.sadd(&key, id)
                    .ignore()
                    .expire(&key, self.ttl())
                    .ignore();
            }
            let () = pipe.query_async(&mut conn).await?;
            Ok(())
        })
    }

    fn load_session<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<String>>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            Ok(conn.get(self.session_key(id)).await?)
        })
    }

    fn save_decision<'a>(
        &'a self,
        session_id: &'a str,
        break_id: &'a str,
        decision: &'a str,
    ) -> BoxFuture<'a, Result<String>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let winner: String = redis::Script::new(SAVE_DECISION)
                .key(self.decisions_key(session_id))
                .arg(break_id)
                .arg(decision)
                .arg(self.ttl_secs)
                .invoke_async(&mut conn)
                .await?;
            Ok(winner)
        })
    }

    fn load_decision<'a>(
        &'a self,
        session_id: &'a str,
        break_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            Ok(conn.hget(self.decisions_key(session_id), break_id).await?)
        })
    }

    fn touch<'a>(&'a self, session_id: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let () = redis::pipe()
                .expire(self.session_key(session_id), self.ttl())
                .ignore()
                .expire(self.decisions_key(session_id), self.ttl())
                .ignore()
                .query_async(&mut conn)
                .await?;
            Ok(())
        })
    }

    fn forget_viewers<'a>(&'a self, ids: &'a [String]) -> BoxFuture<'a, Result<u64>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let mut sessions = 0;
            for viewer in ids {
                let index = self.viewer_key(viewer);
                let members: Vec<String> = conn.smembers(&index).await?;
                let mut keys = vec![index];
                for id in &members {
                    keys.push(self.session_key(id));
                    keys.push(self.decisions_key(id));
                }
                let () = conn.del(keys).await?;
                sessions += members.len() as u64;
            }
            Ok(sessions)
        })
    }

    fn mentioning<'a>(&'a self, needle: &'a str) -> BoxFuture<'a, Result<Vec<String>>> {
        Box::pin(super::mentioning(&self.conn, &self.prefix, needle))
    }
}
