//! `interlude scte35`: decode a cue to JSON, encode JSON to a cue, or list the cues of a transport stream.
//! The codec is `interlude_scte35` (ANSI/SCTE 35 §9-§10).

use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::{Context, bail};
use interlude_scte35::{SpliceInfoSection, TsExtractor};

/// The `scte35` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Scte35Command {
    /// Decode a cue (base64 or hex, auto-detected; `-` reads stdin, which may also be binary) and print JSON.
    Decode {
        /// The cue as base64 or hex, or `-` for stdin.
        input: String,
    },
    /// Encode a cue from its JSON form (as `decode` prints it).
    Encode {
        /// JSON file; stdin when absent.
        input: Option<PathBuf>,
        /// Output form.
        #[arg(long, value_enum, default_value = "base64")]
        format: OutputFormat,
    },
    /// Print one JSON line per SCTE-35 section found in an MPEG transport stream file.
    Ts {
        /// The transport stream file.
        file: PathBuf,
    },
}

/// Output form of `scte35 encode`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum OutputFormat {
    /// Standard base64.
    Base64,
    /// `0x`-prefixed uppercase hex.
    Hex,
    /// Raw bytes.
    Binary,
}

/// Runs one `scte35` subcommand.
pub(crate) fn run(cmd: Scte35Command) -> anyhow::Result<()> {
    match cmd {
        Scte35Command::Decode { input } => {
            let section = if input == "-" {
                let mut raw = Vec::new();
                std::io::stdin()
                    .read_to_end(&mut raw)
                    .context("reading the cue from stdin")?;
                decode_raw(&raw).context("decoding the cue read from stdin")?
            } else {
                SpliceInfoSection::parse_any(&input)
                    .with_context(|| format!("decoding cue {input:?}"))?
            };
            println!(
                "{}",
                serde_json::to_string_pretty(&section).context("rendering JSON")?
            );
        }
        Scte35Command::Encode { input, format } => {
            let (json, name) = match &input {
                Some(path) => (
                    std::fs::read_to_string(path)
                        .with_context(|| format!("reading {}", path.display()))?,
                    path.display().to_string(),
                ),
                None => {
                    let mut s = String::new();
                    std::io::stdin()
                        .read_to_string(&mut s)
                        .context("reading JSON from stdin")?;
                    (s, "stdin".to_owned())
                }
            };
            let section: SpliceInfoSection = serde_json::from_str(&json)
                .with_context(|| format!("parsing the JSON cue in {name}"))?;
            let bytes = section
                .encode()
                .with_context(|| format!("encoding the cue from {name}"))?;
            match format {
                OutputFormat::Base64 => println!("{}", section.to_base64()?),
                OutputFormat::Hex => println!("{}", section.to_hex()?),
                OutputFormat::Binary => std::io::stdout()
                    .write_all(&bytes)
                    .context("writing to stdout")?,
            }
        }
        Scte35Command::Ts { file } => {
            let data =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let mut out = std::io::stdout().lock();
            for cue in TsExtractor::new(&data) {
                let line = match &cue.section {
                    Ok(section) => serde_json::json!({
                        "pid": cue.pid,
                        "packet_offset": cue.packet_offset,
                        "section": section,
                    }),
                    Err(error) => serde_json::json!({
                        "pid": cue.pid,
                        "packet_offset": cue.packet_offset,
                        "error": error.to_string(),
                    }),
                };
                writeln!(out, "{line}").context("writing to stdout")?;
            }
        }
    }
    Ok(())
}

/// Stdin may hold binary (starting with table_id 0xFC) or text.
fn decode_raw(raw: &[u8]) -> anyhow::Result<SpliceInfoSection> {
    if raw.first() == Some(&0xFC) {
        return Ok(SpliceInfoSection::decode(raw)?);
    }
    let Ok(text) = std::str::from_utf8(raw) else {
        bail!("input is neither a binary section (first byte 0xFC) nor base64/hex text");
    };
    Ok(SpliceInfoSection::parse_any(text)?)
}
