//! Operator controls shared by every node through Redis, so a kill switch pulled on one node holds on all of
//! them within a second.
//!
//! The whole [`Controls`] value is one JSON document under `{prefix}:controls`; a local change writes it and
//! publishes it on the channel of the same name. Every node subscribes and applies what it hears, reads the key
//! when it starts (joining nodes get the state in force) and re-reads it every second, which also repairs
//! anything missed while its subscription was reconnecting. Concurrent changes on two nodes are last-writer-
//! wins on the whole document: operator toggles are rare and human-paced.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use redis::AsyncCommands;

use crate::demand::{Controls, Decider};

/// Shares `decider`'s controls through the Redis at `url` under `prefix`. Returns at once; connections are
/// made (and remade) in the background.
pub fn spawn(decider: Arc<Decider>, url: &str, prefix: &str) -> Result<(), redis::RedisError> {
    let client = redis::Client::open(url)?;
    let key = format!("{prefix}:controls");
    let (publisher, publish_key) = (client.clone(), key.clone());
    decider.on_control(Arc::new(move |controls: &Controls| {
        let Ok(json) = serde_json::to_string(controls) else {
            return;
        };
        let (client, key) = (publisher.clone(), publish_key.clone());
        tokio::spawn(async move {
            let result: redis::RedisResult<()> = async {
                let mut conn = client.get_multiplexed_async_connection().await?;
                let () = conn.set(&key, &json).await?;
                let _: i64 = conn.publish(&key, &json).await?;
                Ok(())
            }
            .await;
            if let Err(e) = result {
                tracing::warn!(error = %e, "Could not share the operator controls.");
            }
        });
    }));
    let (poller, poll_key, poll_decider) = (client.clone(), key.clone(), decider.clone());
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let read: redis::RedisResult<Option<String>> = async {
                let mut conn = poller.get_multiplexed_async_connection().await?;
                conn.get(&poll_key).await
            }
            .await;
            match read {
                Ok(Some(json)) => apply(&poll_decider, &json),
                Ok(None) => {}
                Err(e) => tracing::debug!(error = %e, "Reading the shared controls failed."),
            }
        }
    });
    tokio::spawn(async move {
        loop {
            let listened: redis::RedisResult<()> = async {
                let mut pubsub = client.get_async_pubsub().await?;
                pubsub.subscribe(&key).await?;
                let mut messages = pubsub.on_message();
                while let Some(message) = messages.next().await {
                    if let Ok(json) = message.get_payload::<String>() {
                        apply(&decider, &json);
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
    Ok(())
}

fn apply(decider: &Decider, json: &str) {
    match serde_json::from_str::<Controls>(json) {
        Ok(controls) => decider.apply_controls(controls),
        Err(e) => tracing::warn!(error = %e, "Ignoring malformed shared controls."),
    }
}
