//! The catalog's admin REST API and hot reload.
//!
//! `GET`/`PUT /v1/admin/catalog` reads or replaces the whole catalog; `GET`/`PUT`/`DELETE
//! /v1/admin/{advertisers,campaigns,line_items,creatives}/{id}` reads, upserts or removes one entity (JSON, the
//! catalog file's shape). Every request needs `Authorization: Bearer <decision.admin_token>`; without a token
//! configured the API is not mounted. A change is validated as a whole catalog (a dangling reference is
//! refused with its path, 422), written to the catalog file (atomically: temporary file, then rename) and
//! swapped into the decider; decisions in flight finish on the engine they started with, none is dropped.
//!
//! The file is also watched (polled: it may be on any filesystem, edited by hand or by configuration
//! management): a valid new version is swapped in, an invalid one is logged with its error and the serving
//! catalog stays.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::{Path as UrlPath, State};
use axum::http::{StatusCode, header};
use axum::routing::get;
use axum::{Json, Router};
use interlude_decision::catalog::{
    Advertiser, Campaign, Catalog, CatalogError, Creative, LineItem,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use interlude_store::CatalogStore;

use crate::error::ApiError;
use std::sync::atomic::Ordering;

use crate::decisioning::decider::Decider;

/// Why an admin request failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// No or a wrong bearer token.
    #[error("a valid bearer token is required")]
    Unauthorized,
    /// No such entity.
    #[error("no {kind} {id:?}")]
    NotFound {
        /// Entity kind.
        kind: &'static str,
        /// Id asked for.
        id: String,
    },
    /// The body's id is not the URL's.
    #[error("the body's id {body:?} is not the URL's {url:?}")]
    IdMismatch {
        /// Id in the body.
        body: String,
        /// Id in the URL.
        url: String,
    },
    /// The change would leave an invalid catalog.
    #[error(transparent)]
    Invalid(#[from] CatalogError),
    /// Another admin changed the catalog since this node loaded it (distributed mode).
    #[error("the catalog changed meanwhile (now version {version}); read it again and retry")]
    Conflict {
        /// The stored version.
        version: i64,
    },
    /// The catalog file could not be written.
    #[error("writing the catalog file {path}: {reason}")]
    Persist {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        let detail = e.to_string();
        match e {
            AdminError::Unauthorized => ApiError::Unauthorized,
            AdminError::NotFound { .. } => ApiError::NotFound(detail),
            AdminError::IdMismatch { .. } => ApiError::bad_request(detail),
            AdminError::Invalid(_) => ApiError::Unprocessable(detail),
            AdminError::Conflict { .. } => ApiError::Conflict(detail),
            // The path and the OS error stay in the log.
            AdminError::Persist { .. } => ApiError::internal(e),
        }
    }
}

/// Called with each catalog that goes live (e.g. to update the event store's prices).
pub type OnChange = Arc<dyn Fn(&Catalog) + Send + Sync>;

/// The live catalog: its file (or PostgreSQL in distributed mode), the decider serving it, and one writer at a
/// time.
pub struct LiveCatalog {
    decider: Arc<Decider>,
    path: Option<PathBuf>,
    on_change: OnChange,
    write: tokio::sync::Mutex<()>,
    postgres: std::sync::OnceLock<Arc<dyn CatalogStore>>,
    version: std::sync::atomic::AtomicI64,
}

impl LiveCatalog {
    /// A store over `decider`'s catalog, persisted to `path` when given.
    pub fn new(decider: Arc<Decider>, path: Option<PathBuf>, on_change: OnChange) -> Arc<Self> {
        Arc::new(LiveCatalog {
            decider,
            path,
            on_change,
            write: tokio::sync::Mutex::new(()),
            postgres: std::sync::OnceLock::new(),
            version: std::sync::atomic::AtomicI64::new(0),
        })
    }

    /// Keeps the catalog in PostgreSQL (distributed mode): the stored catalog goes live, or, when none is
    /// stored yet, the serving one is stored as version 1. From then on admin writes go to PostgreSQL and
    /// [`LiveCatalog::watch`] polls its version, so every node serves the same catalog.
    pub async fn attach_shared(&self, pg: Arc<dyn CatalogStore>) -> Result<(), AdminError> {
        let _writer = self.write.lock().await;
        let stored = pg.load().await.map_err(persist_error)?;
        match stored {
            Some((version, document)) => {
                let catalog: Catalog =
                    serde_json::from_value(document).map_err(|e| AdminError::Persist {
                        path: "postgres catalog".into(),
                        reason: format!("stored catalog version {version} unreadable: {e}"),
                    })?;
                self.apply(catalog, false).await?;
                self.version.store(version, Ordering::Release);
            }
            None => {
                let document =
                    serde_json::to_value(self.catalog()).map_err(|e| AdminError::Persist {
                        path: "postgres catalog".into(),
                        reason: e.to_string(),
                    })?;
                // Losing this race to another node is fine: the watcher adopts the winner's catalog.
                if let Some(v) = pg.save(0, &document).await.map_err(persist_error)? {
                    self.version.store(v, Ordering::Release);
                }
            }
        }
        let _ = self.postgres.set(pg);
        Ok(())
    }

    /// The serving catalog.
    pub fn catalog(&self) -> Catalog {
        self.decider.engine().catalog().clone()
    }

    /// Validates `catalog`, writes it (to PostgreSQL, else the file) when `persist`, and puts it live.
    async fn apply(&self, catalog: Catalog, persist: bool) -> Result<(), AdminError> {
        catalog.validate()?;
        if let (true, Some(pg)) = (persist, self.postgres.get()) {
            let document = serde_json::to_value(&catalog).map_err(|e| AdminError::Persist {
                path: "postgres catalog".into(),
                reason: e.to_string(),
            })?;
            let expected = self.version.load(Ordering::Acquire);
            match pg.save(expected, &document).await.map_err(persist_error)? {
                Some(v) => self.version.store(v, Ordering::Release),
                None => {
                    let version = pg.version().await.map_err(persist_error)?;
                    return Err(AdminError::Conflict { version });
                }
            }
        } else if let (true, Some(path)) = (persist, &self.path) {
            write_atomically(path, &catalog)?;
        }
        let engine = Arc::new(self.decider.engine().with_catalog(catalog));
        // Live first, then told: whoever hears of the change (prices, a test) finds it serving.
        self.decider.swap(engine.clone());
        (self.on_change)(engine.catalog());
        tracing::info!(
            line_items = engine.catalog().line_items.len(),
            "Catalog live."
        );
        metrics::counter!(crate::telemetry::metrics::DECISION_CATALOG_RELOADS).increment(1);
        Ok(())
    }

    /// Edits a copy of the catalog with `edit` and applies it, one writer at a time.
    async fn update<T>(
        &self,
        edit: impl FnOnce(&mut Catalog) -> Result<T, AdminError>,
    ) -> Result<T, AdminError> {
        let _writer = self.write.lock().await;
        let mut catalog = self.catalog();
        let out = edit(&mut catalog)?;
        self.apply(catalog, true).await?;
        Ok(out)
    }

    /// Polls the catalog every `every` (its version in PostgreSQL, else the file); a changed, valid catalog
    /// goes live.
    pub fn watch(self: &Arc<Self>, every: Duration) {
        if let Some(pg) = self.postgres.get().cloned() {
            let store = self.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                loop {
                    tick.tick().await;
                    if let Err(e) = store.poll_shared(pg.as_ref()).await {
                        metrics::counter!(
                            crate::telemetry::metrics::DECISION_CATALOG_RELOAD_ERRORS
                        )
                        .increment(1);
                        tracing::warn!(error = %e, "Catalog not reloaded from PostgreSQL; the previous one keeps serving.");
                    }
                }
            });
            return;
        }
        let Some(path) = self.path.clone() else {
            return;
        };
        let store = self.clone();
        tokio::spawn(async move {
            let mut seen = stamp(&path);
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let now = stamp(&path);
                if now == seen {
                    continue;
                }
                seen = now;
                let _writer = store.write.lock().await;
                let loaded = std::fs::read_to_string(&path)
                    .map_err(|e| e.to_string())
                    .and_then(|t| Catalog::from_toml(&t).map_err(|e| e.to_string()));
                match loaded {
                    Ok(c) if c == store.catalog() => {}
                    Ok(c) => {
                        if let Err(e) = store.apply(c, false).await {
                            tracing::warn!(path = %path.display(), error = %e, "Catalog not reloaded.");
                        }
                    }
                    Err(e) => {
                        metrics::counter!(
                            crate::telemetry::metrics::DECISION_CATALOG_RELOAD_ERRORS
                        )
                        .increment(1);
                        tracing::warn!(path = %path.display(), error = %e,
                            "Catalog file invalid; the previous catalog keeps serving.");
                    }
                }
            }
        });
    }
}

impl LiveCatalog {
    async fn poll_shared(&self, pg: &dyn CatalogStore) -> Result<(), AdminError> {
        let version = pg.version().await.map_err(persist_error)?;
        if version <= self.version.load(Ordering::Acquire) {
            return Ok(());
        }
        let _writer = self.write.lock().await;
        let Some((version, document)) = pg.load().await.map_err(persist_error)? else {
            return Ok(());
        };
        let catalog: Catalog =
            serde_json::from_value(document).map_err(|e| AdminError::Persist {
                path: "postgres catalog".into(),
                reason: format!("stored catalog version {version} unreadable: {e}"),
            })?;
        // Recorded first: an invalid version is reported once, not on every poll.
        self.version.store(version, Ordering::Release);
        self.apply(catalog, false).await
    }
}

fn persist_error(e: interlude_store::Error) -> AdminError {
    AdminError::Persist {
        path: "postgres catalog".into(),
        reason: e.to_string(),
    }
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

fn write_atomically(path: &Path, catalog: &Catalog) -> Result<(), AdminError> {
    let failed = |reason: String| AdminError::Persist {
        path: path.display().to_string(),
        reason,
    };
    let text = toml::to_string(catalog).map_err(|e| failed(e.to_string()))?;
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, text).map_err(|e| failed(e.to_string()))?;
    std::fs::rename(&tmp, path).map_err(|e| failed(e.to_string()))
}

/// One kind of catalog entity.
trait Entity: Serialize + DeserializeOwned + Send + 'static {
    const KIND: &'static str;
    fn id(&self) -> &str;
    fn list(catalog: &mut Catalog) -> &mut Vec<Self>;
}

macro_rules! entity {
    ($t:ty, $kind:literal, $field:ident) => {
        impl Entity for $t {
            const KIND: &'static str = $kind;
            fn id(&self) -> &str {
                &self.id
            }
            fn list(catalog: &mut Catalog) -> &mut Vec<Self> {
                &mut catalog.$field
            }
        }
    };
}

entity!(Advertiser, "advertiser", advertisers);
entity!(Campaign, "campaign", campaigns);
entity!(LineItem, "line item", line_items);
entity!(Creative, "creative", creatives);

async fn get_one<T: Entity + Clone>(
    State(store): State<Arc<LiveCatalog>>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<T>, ApiError> {
    let mut catalog = store.catalog();
    T::list(&mut catalog)
        .iter()
        .find(|e| e.id() == id)
        .cloned()
        .map(Json)
        .ok_or(AdminError::NotFound { kind: T::KIND, id }.into())
}

async fn put_one<T: Entity>(
    State(store): State<Arc<LiveCatalog>>,
    UrlPath(id): UrlPath<String>,
    Json(entity): Json<T>,
) -> Result<StatusCode, ApiError> {
    if entity.id() != id {
        return Err(AdminError::IdMismatch {
            body: entity.id().to_owned(),
            url: id,
        }
        .into());
    }
    store
        .update(|c| {
            let list = T::list(c);
            Ok(match list.iter_mut().find(|e| e.id() == id) {
                Some(slot) => {
                    *slot = entity;
                    StatusCode::OK
                }
                None => {
                    list.push(entity);
                    StatusCode::CREATED
                }
            })
        })
        .await
        .map_err(ApiError::from)
}

async fn delete_one<T: Entity>(
    State(store): State<Arc<LiveCatalog>>,
    UrlPath(id): UrlPath<String>,
) -> Result<StatusCode, ApiError> {
    store
        .update(|c| {
            let list = T::list(c);
            let before = list.len();
            list.retain(|e| e.id() != id);
            if list.len() == before {
                return Err(AdminError::NotFound { kind: T::KIND, id });
            }
            Ok(StatusCode::NO_CONTENT)
        })
        .await
        .map_err(ApiError::from)
}

async fn get_catalog(State(store): State<Arc<LiveCatalog>>) -> Json<Catalog> {
    Json(store.catalog())
}

async fn put_catalog(
    State(store): State<Arc<LiveCatalog>>,
    Json(catalog): Json<Catalog>,
) -> Result<StatusCode, ApiError> {
    store
        .update(|c| {
            *c = catalog;
            Ok(StatusCode::OK)
        })
        .await
        .map_err(ApiError::from)
}

/// The admin routes over `store`, guarded by `token`.
pub fn router(store: Arc<LiveCatalog>, token: &str) -> Router {
    let api = Router::new()
        .route("/v1/admin/catalog", get(get_catalog).put(put_catalog))
        .route(
            "/v1/admin/advertisers/{id}",
            get(get_one::<Advertiser>)
                .put(put_one::<Advertiser>)
                .delete(delete_one::<Advertiser>),
        )
        .route(
            "/v1/admin/campaigns/{id}",
            get(get_one::<Campaign>)
                .put(put_one::<Campaign>)
                .delete(delete_one::<Campaign>),
        )
        .route(
            "/v1/admin/line_items/{id}",
            get(get_one::<LineItem>)
                .put(put_one::<LineItem>)
                .delete(delete_one::<LineItem>),
        )
        .route(
            "/v1/admin/creatives/{id}",
            get(get_one::<Creative>)
                .put(put_one::<Creative>)
                .delete(delete_one::<Creative>),
        )
        .with_state(store);
    crate::edge::auth::bearer(api, token)
}

/// The OpenAPI 3.1 document of the HTTP API.
pub const OPENAPI: &str = include_str!("openapi.json");

/// `GET /v1/openapi.json`.
pub fn openapi_router() -> Router {
    Router::new().route(
        "/v1/openapi.json",
        get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) }),
    )
}
