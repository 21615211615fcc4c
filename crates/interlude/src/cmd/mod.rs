//! One module per subcommand; each parses its flags and calls into the library crates.

pub(crate) mod audience;
pub(crate) mod bench;
pub(crate) mod bench_break_start;
pub(crate) mod bench_edge;
pub(crate) mod bench_ingest;
pub(crate) mod bench_memory;
pub(crate) mod bench_pipeline;
pub(crate) mod bench_restart;
pub(crate) mod condition;
pub(crate) mod contract;
pub(crate) mod cpu_split;
pub(crate) mod demo;
pub(crate) mod demo_catalog;
pub(crate) mod demo_report;
pub(crate) mod loadgen;
pub(crate) mod origin;
pub(crate) mod process;
pub(crate) mod replay;
pub(crate) mod scte35;
pub(crate) mod serve;
pub(crate) mod store;
