//! The binary's configuration: the server's [`InterludeConfig`] plus the `[origin]` section of the simulated
//! origin, which only the binary's `origin`, `demo` and `bench` commands run (the server holds no simulator).
//! One file configures both; [`AppConfig`] dereferences to the server's part.

use std::ops::{Deref, DerefMut};
use std::path::Path;

use anyhow::Context;
use interlude_server::InterludeConfig;
use interlude_sim::origin::OriginConfig;

/// The server's configuration and the simulated origin's.
#[derive(Debug, Clone)]
pub(crate) struct AppConfig {
    /// Everything but `[origin]`.
    pub(crate) interlude: InterludeConfig,
    /// `[origin]`, typed and validated.
    pub(crate) origin: OriginConfig,
}

impl AppConfig {
    /// Loads `file` (defaults, file, `INTERLUDE_…` environment) and reads its `[origin]` section.
    pub(crate) fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        Self::from_server(InterludeConfig::load(file)?)
    }

    fn from_server(server: InterludeConfig) -> anyhow::Result<Self> {
        let origin: OriginConfig = server
            .origin
            .clone()
            .try_into()
            .context("invalid configuration: `origin`")?;
        if let Err(e) = origin.validate() {
            anyhow::bail!("invalid configuration: `origin.{}` {}", e.key, e.reason);
        }
        Ok(AppConfig {
            interlude: server,
            origin,
        })
    }

    /// The effective configuration as TOML, `[origin]` with its defaults filled in.
    /// The effective configuration as TOML, secrets redacted (it is printed, and printed things are pasted).
    pub(crate) fn to_toml(&self) -> anyhow::Result<String> {
        let mut server = self.interlude.redacted();
        server.origin = toml::Table::try_from(&self.origin).context("rendering [origin]")?;
        toml::to_string_pretty(&server).context("rendering configuration")
    }
}

impl Deref for AppConfig {
    type Target = InterludeConfig;

    fn deref(&self) -> &InterludeConfig {
        &self.interlude
    }
}

impl DerefMut for AppConfig {
    fn deref_mut(&mut self) -> &mut InterludeConfig {
        &mut self.interlude
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn example_origin_section_equals_the_simulator_defaults() {
        let text = include_str!("../../../config/interlude.example.toml");
        let config = AppConfig::from_server(InterludeConfig::from_toml_str(text).unwrap()).unwrap();
        assert_eq!(config.origin, OriginConfig::default());
    }

    #[test]
    fn an_invalid_origin_value_names_its_key() {
        let server = InterludeConfig::from_toml_str("[origin]\nsegment_secs = \"x\"\n").unwrap();
        let err = AppConfig::from_server(server).unwrap_err();
        assert!(format!("{err:#}").contains("segment_secs"), "{err:#}");
    }
}
