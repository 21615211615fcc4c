//! Fetching a creative's source file for conditioning through the guarded outbound client: the same SSRF
//! policy, TLS roots and timeouts as every other call to a third party, with the body capped at
//! `condition.max_source_mb`.

use std::path::Path;
use std::time::Duration;

use interlude_condition::SourceFetcher;
use interlude_outbound::{GuardedClient, Kind, OutboundConfig};

/// A [`SourceFetcher`] over the guarded client.
#[derive(Debug, Clone)]
pub struct GuardedFetcher {
    client: GuardedClient,
    timeout: Duration,
}

impl GuardedFetcher {
    /// A fetcher with `outbound`'s policy, taking files up to `max_bytes` within `timeout` each.
    pub fn new(
        outbound: &OutboundConfig,
        max_bytes: u64,
        timeout: Duration,
    ) -> Result<GuardedFetcher, interlude_outbound::Error> {
        let mut outbound = outbound.clone();
        // MediaFiles are far larger than segments; the cap is conditioning's own.
        outbound.max_body.segment = max_bytes;
        Ok(GuardedFetcher {
            client: GuardedClient::new(&outbound)?,
            timeout,
        })
    }
}

#[async_trait::async_trait]
impl SourceFetcher for GuardedFetcher {
    async fn fetch(
        &self,
        uri: &str,
        dest: &Path,
        max_bytes: u64,
    ) -> interlude_condition::Result<u64> {
        let err = |reason: String| interlude_condition::Error::Fetch {
            uri: interlude_outbound::redact(uri),
            reason,
        };
        let body = self
            .client
            .get(uri, Kind::Segment)
            .timeout(self.timeout)
            .send()
            .await
            .and_then(|r| r.require_success())
            .map_err(|e| err(e.to_string()))?
            .into_body();
        let len = body.len() as u64;
        if len > max_bytes {
            return Err(err(format!("{len} bytes exceeds the cap of {max_bytes}")));
        }
        tokio::fs::write(dest, &body)
            .await
            .map_err(|source| interlude_condition::Error::Io {
                path: dest.to_path_buf(),
                source,
            })?;
        Ok(len)
    }
}
