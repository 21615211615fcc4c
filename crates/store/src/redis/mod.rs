//! The Redis backends (feature `redis`): pacing and frequency [`counters`], impression [`reservations`],
//! shared [`sessions`] and the operator [`controls`] bus. Every key starts with the deployment's prefix.

use std::collections::HashMap;

use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;

use crate::Result;

pub mod controls;
pub mod counters;
pub mod reservations;
pub mod sessions;

pub use controls::{OnControls, RedisControls};
pub use counters::RedisCounters;
pub use reservations::RedisReservations;
pub use sessions::RedisSessionShare;

/// Keys under `prefix` whose name, or whose string/hash/set contents, mention `needle`.
pub async fn mentioning(
    conn: &MultiplexedConnection,
    prefix: &str,
    needle: &str,
) -> Result<Vec<String>> {
    let mut conn = conn.clone();
    let keys: Vec<String> = conn.keys(format!("{prefix}*")).await?;
    let mut out = Vec::new();
    for key in keys {
        if key.contains(needle) {
            out.push(key);
            continue;
        }
        let kind: String = redis::cmd("TYPE").arg(&key).query_async(&mut conn).await?;
        let text = match kind.as_str() {
            "string" => conn
                .get::<_, Option<String>>(&key)
                .await?
                .unwrap_or_default(),
            "hash" => {
                let all: HashMap<String, String> = conn.hgetall(&key).await?;
                all.into_iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            }
            "set" => conn.smembers::<_, Vec<String>>(&key).await?.join(","),
            _ => String::new(),
        };
        if text.contains(needle) {
            out.push(key);
        }
    }
    Ok(out)
}
