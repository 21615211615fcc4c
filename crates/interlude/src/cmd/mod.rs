//! One module per subcommand; each parses its flags and calls into the library crates.

pub(crate) mod serve;
