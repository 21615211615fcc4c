//! `interlude contract diff`: the event contract's compatibility check from the command line — today's schema
//! (or `--new FILE`) against a published one, and optionally a file of recorded events (JSON lines) that must
//! still parse and validate. Exits non-zero on a breaking change or an invalid event.

use std::path::PathBuf;

use anyhow::Context;
use interlude_events::compat::compare;
use interlude_events::contract::{AdEvent, json_schema};
use interlude_events::contract_check;

/// `interlude contract …`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum ContractCommand {
    /// Breaking and additive changes against a published schema; old events checked against today's contract.
    Diff {
        /// The published schema (JSON Schema of `AdEvent`).
        #[arg(long, default_value = "docs/events.schema.json")]
        old: PathBuf,
        /// The schema to compare (default: the one this binary speaks).
        #[arg(long)]
        new: Option<PathBuf>,
        /// Recorded events, one JSON object per line, that must still validate.
        #[arg(long)]
        events: Option<PathBuf>,
    },
}

fn read_json(path: &PathBuf) -> anyhow::Result<serde_json::Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
}

pub(crate) fn run(command: ContractCommand) -> anyhow::Result<()> {
    let ContractCommand::Diff { old, new, events } = command;
    let old_schema = read_json(&old)?;
    let new_schema = match &new {
        Some(p) => read_json(p)?,
        None => json_schema(),
    };
    let changes = compare(&old_schema, &new_schema);
    for c in &changes.additive {
        println!("additive: {c}");
    }
    for c in &changes.breaking {
        println!("BREAKING: {c}");
    }
    let mut invalid = 0;
    if let Some(path) = events {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let mut checked = 0;
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            checked += 1;
            let verdict = serde_json::from_str::<AdEvent>(line)
                .map_err(|e| e.to_string())
                .and_then(|e| contract_check(&e).map_err(|q| q.to_string()));
            if let Err(why) = verdict {
                invalid += 1;
                println!("{}:{}: {why}", path.display(), i + 1);
            }
        }
        println!("{checked} events checked, {invalid} invalid");
    }
    anyhow::ensure!(
        changes.breaking.is_empty() && invalid == 0,
        "{} breaking change(s), {invalid} invalid event(s): a breaking change needs a new major version",
        changes.breaking.len()
    );
    println!("compatible");
    Ok(())
}
