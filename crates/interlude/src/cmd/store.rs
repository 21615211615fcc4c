//! `interlude store`: offline tools for the embedded event store (see `docs/store-operations.md`). Both work on
//! a copy of the file, so they are safe on a store a running server holds, and on a damaged one.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context;

/// `interlude store …`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum StoreCommand {
    /// Check a store: redb's integrity, then every entry of every table decoded. Prints a JSON report naming
    /// each damaged entry; exits 1 when anything is damaged.
    Verify {
        /// The store's directory (default: `events.data_dir` of the configuration).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Write what still decodes as JSON lines (counted billing keys, ledger rows), for reconciliation after
    /// damage or before a restore. Prints what was written to stderr.
    Export {
        /// The store's directory (default: `events.data_dir` of the configuration).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Where to write (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// Runs `command` against the store in `data_dir` unless the command names another.
pub(crate) fn run(command: StoreCommand, data_dir: PathBuf) -> anyhow::Result<bool> {
    match command {
        StoreCommand::Verify { dir } => {
            let dir = dir.unwrap_or(data_dir);
            let report = interlude_store::embedded::verify(&dir)
                .with_context(|| format!("verifying the store in {}", dir.display()))?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(report.is_clean())
        }
        StoreCommand::Export { dir, out } => {
            let dir = dir.unwrap_or(data_dir);
            let mut writer: Box<dyn std::io::Write> = match &out {
                Some(path) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(path)
                        .with_context(|| format!("creating {}", path.display()))?,
                )),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            let exported = interlude_store::embedded::export(&dir, &mut writer)
                .with_context(|| format!("exporting the store in {}", dir.display()))?;
            writer.flush().context("writing the export")?;
            eprintln!("{}", serde_json::to_string(&exported)?);
            Ok(exported.skipped == 0)
        }
    }
}
