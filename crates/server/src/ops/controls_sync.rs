//! Operator controls shared by every node, so a kill switch pulled on one node holds on all of them within a
//! second: the decider's controls travel as one JSON document over the store's [`ControlsBus`] (Redis).

use std::sync::Arc;

use interlude_store::ControlsBus;
use interlude_store::redis::RedisControls;

use crate::decisioning::decider::{Controls, Decider};

/// Shares `decider`'s controls through the Redis at `url` under `prefix`. Returns at once; connections are
/// made (and remade) in the background.
pub fn spawn(decider: Arc<Decider>, url: &str, prefix: &str) -> Result<(), interlude_store::Error> {
    let listener = decider.clone();
    let bus = RedisControls::start(
        url,
        prefix,
        Arc::new(move |json: &str| apply(&listener, json)),
    )?;
    decider.on_control(Arc::new(
        move |controls: &Controls| match serde_json::to_string(controls) {
            Ok(json) => bus.publish(json),
            Err(e) => tracing::warn!(error = %e, "Could not encode the operator controls."),
        },
    ));
    Ok(())
}

fn apply(decider: &Decider, json: &str) {
    match serde_json::from_str::<Controls>(json) {
        Ok(controls) => decider.apply_controls(controls),
        Err(e) => tracing::warn!(error = %e, "Ignoring malformed shared controls."),
    }
}
