//! [`ControlsBus`] on Redis: operator controls shared by every node, so a kill switch pulled on one node
//! holds on all of them within a second.
//!
//! The whole controls document (the caller's JSON) is one key, `{prefix}:controls`; a publish writes it and
//! publishes it on the channel of the same name. Every node subscribes and hands what it hears to its
//! callback, reads the key when it starts (a joining node gets the state in force) and re-reads it every
//! second, which also repairs anything missed while its subscription was reconnecting.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use redis::AsyncCommands;

use crate::{ControlsBus, Result};

/// What a node does with a controls document it hears of.
pub type OnControls = Arc<dyn Fn(&str) + Send + Sync>;

/// The controls bus on Redis.
#[derive(Clone)]
pub struct RedisControls {
    client: redis::Client,
    key: String,
}

impl std::fmt::Debug for RedisControls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisControls")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl RedisControls {
    /// Starts listening on the Redis at `url` under `prefix`, calling `on_controls` with every document
    /// heard (and the one in force, every second). Returns at once; connections are made (and remade) in
    /// the background.
    pub fn start(url: &str, prefix: &str, on_controls: OnControls) -> Result<Self> {
        let bus = RedisControls {
            client: redis::Client::open(url)?,
            key: format!("{prefix}:controls"),
        };
        let (poller, apply) = (bus.clone(), on_controls.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let read: redis::RedisResult<Option<String>> = async {
                    let mut conn = poller.client.get_multiplexed_async_connection().await?;
                    conn.get(&poller.key).await
                }
                .await;
                match read {
                    Ok(Some(json)) => apply(&json),
                    Ok(None) => {}
                    Err(e) => tracing::debug!(error = %e, "Reading the shared controls failed."),
                }
            }
        });
        let listener = bus.clone();
        tokio::spawn(async move {
            loop {
                let listened: redis::RedisResult<()> = async {
                    let mut pubsub = listener.client.get_async_pubsub().await?;
                    pubsub.subscribe(&listener.key).await?;
                    let mut messages = pubsub.on_message();
                    while let Some(message) = messages.next().await {
                        if let Ok(json) = message.get_payload::<String>() {
                            on_controls(&json);
                        }
                    }
                    Ok(())
                }
                .await;
                if let Err(e) = listened {
                    tracing::debug!(error = %e, "Controls subscription lost; reconnecting.");
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
        Ok(bus)
    }
}

impl ControlsBus for RedisControls {
    fn publish(&self, document: String) {
        let bus = self.clone();
        tokio::spawn(async move {
            let result: redis::RedisResult<()> = async {
                let mut conn = bus.client.get_multiplexed_async_connection().await?;
                let () = conn.set(&bus.key, &document).await?;
                let _: i64 = conn.publish(&bus.key, &document).await?;
                Ok(())
            }
            .await;
            if let Err(e) = result {
                tracing::warn!(error = %e, "Could not share the operator controls.");
            }
        });
    }
}
