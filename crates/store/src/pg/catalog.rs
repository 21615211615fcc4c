//! The decision catalog in PostgreSQL ([`CatalogStore`]).

use interlude_events::BoxFuture;
use tokio_postgres::Client;

use super::{connect_client, migrate};
use crate::Error as StoreError;
use crate::{CatalogStore, Result};

/// The decision catalog in PostgreSQL: one versioned JSON document that the admin API writes and every node
/// polls. Writers compare and set on the version, so two admins editing at once cannot lose an edit.
pub struct PgCatalog {
    client: Client,
}

impl std::fmt::Debug for PgCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgCatalog").finish_non_exhaustive()
    }
}

impl PgCatalog {
    /// Connects and brings the schema up to date.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let mut client = connect_client(url).await?;
        migrate(&mut client).await?;
        Ok(PgCatalog { client })
    }

    /// The stored catalog and its version, if any was stored.
    pub async fn load(&self) -> Result<Option<(i64, serde_json::Value)>, StoreError> {
        Ok(self
            .client
            .query_opt("SELECT version, document FROM catalog WHERE id = 1", &[])
            .await?
            .map(|r| (r.get(0), r.get(1))))
    }

    /// The stored version (0 when none).
    pub async fn version(&self) -> Result<i64, StoreError> {
        Ok(self
            .client
            .query_opt("SELECT version FROM catalog WHERE id = 1", &[])
            .await?
            .map_or(0, |r| r.get(0)))
    }

    /// Stores `document` if the stored version is still `expected` (0: none stored yet); returns the new
    /// version, or `None` when someone else wrote first.
    pub async fn save(
        &self,
        expected: i64,
        document: &serde_json::Value,
    ) -> Result<Option<i64>, StoreError> {
        let row = self
            .client
            .query_opt(
                "INSERT INTO catalog (id, version, document) VALUES (1, 1, $2) \
                 ON CONFLICT (id) DO UPDATE SET version = catalog.version + 1, document = EXCLUDED.document, \
                 updated_at = now() WHERE catalog.version = $1 RETURNING version",
                &[&expected, document],
            )
            .await?;
        Ok(row.map(|r| r.get(0)))
    }
}

impl CatalogStore for PgCatalog {
    fn load(&self) -> BoxFuture<'_, Result<Option<(i64, serde_json::Value)>>> {
        Box::pin(PgCatalog::load(self))
    }

    fn version(&self) -> BoxFuture<'_, Result<i64>> {
        Box::pin(PgCatalog::version(self))
    }

    fn save<'a>(
        &'a self,
        expected: i64,
        document: &'a serde_json::Value,
    ) -> BoxFuture<'a, Result<Option<i64>>> {
        Box::pin(PgCatalog::save(self, expected, document))
    }
}
