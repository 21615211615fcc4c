//! The server crate's error type.

use std::net::SocketAddr;

/// Everything that can go wrong while configuring or starting an Interlude process.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration could not be read or does not type-check.
    #[error("invalid configuration: {0}")]
    ConfigLoad(Box<figment::Error>),
    /// A configuration value is well-typed but not acceptable.
    #[error("invalid configuration: `{key}` {reason}")]
    ConfigValue {
        /// Dotted path of the offending key, e.g. `server.listen`.
        key: String,
        /// Why the value is rejected.
        reason: String,
    },
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address that was asked for.
        addr: SocketAddr,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// Logging or metrics could not be installed.
    #[error("cannot set up telemetry: {0}")]
    Telemetry(String),
    /// A part of the application could not be stopped cleanly (the event store's last commits, its close).
    #[error("{what}: {source}")]
    Shutdown {
        /// What was being stopped.
        what: String,
        /// Why it failed.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A part of the application could not be started (a store, a catalog, a connection).
    #[error("{what}: {source}")]
    Startup {
        /// What was being started, with where (a path, a URL).
        what: String,
        /// Why it failed.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl Error {
    /// A [`Error::Startup`] for `what`.
    pub fn startup(
        what: impl Into<String>,
    ) -> impl FnOnce(Box<dyn std::error::Error + Send + Sync>) -> Self {
        let what = what.into();
        move |source| Error::Startup { what, source }
    }
}

/// A configuration value that is well-typed but not acceptable: the dotted key and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: `{key}` {reason}")]
pub struct ConfigError {
    /// Dotted path of the offending key, e.g. `stitcher.channels[0].origin`.
    pub key: String,
    /// Why the value is rejected.
    pub reason: String,
}

impl ConfigError {
    /// The error for `key`.
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        Error::ConfigValue {
            key: e.key,
            reason: e.reason,
        }
    }
}

impl From<figment::Error> for Error {
    fn from(e: figment::Error) -> Self {
        Error::ConfigLoad(Box::new(e))
    }
}

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The one error type of every HTTP route: a status, and what the client may know.
///
/// Every error answers the same JSON body, `{"status": 404, "error": "unknown session \"x\""}`. Internal
/// failures (a store, a task) are logged with a fresh id and answered as `{"status": 500, "error": "internal
/// error", "id": "…"}`: their text can name hosts, tables or files, and never reaches a client. Domain errors
/// convert with `From`, so handlers use `?`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed (400); the detail names the part at fault.
    #[error("{detail}")]
    BadRequest {
        /// What is wrong.
        detail: String,
    },
    /// No or a wrong bearer token (401, with `WWW-Authenticate: Bearer`).
    #[error("a valid bearer token is required")]
    Unauthorized,
    /// The credentials do not allow this (403).
    #[error("{0}")]
    Forbidden(String),
    /// No such resource (404).
    #[error("{0}")]
    NotFound(String),
    /// The resource changed meanwhile (409).
    #[error("{0}")]
    Conflict(String),
    /// The body is too large (413).
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The body's media type is not one the route reads (415).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Well-formed but not acceptable (422).
    #[error("{0}")]
    Unprocessable(String),
    /// The client did not send its request in time (408).
    #[error("{0}")]
    RequestTimeout(String),
    /// The client is over its rate (429), with a `Retry-After` in seconds.
    #[error("{detail}")]
    TooManyRequests {
        /// What was limited.
        detail: String,
        /// Seconds before a retry can succeed.
        retry_after: u32,
    },
    /// An upstream (origin, ad server) failed (502).
    #[error("{0}")]
    BadGateway(String),
    /// Not now: overloaded, draining or starting (503), with a `Retry-After` in seconds when one helps.
    #[error("{detail}")]
    Unavailable {
        /// Why.
        detail: String,
        /// Seconds before a retry is useful.
        retry_after: Option<u32>,
    },
    /// Something on our side failed (500); logged, never shown.
    #[error("internal error: {0}")]
    Internal(Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    /// A 400 with `detail`.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        ApiError::BadRequest {
            detail: detail.into(),
        }
    }

    /// A 503 with `detail` and a `Retry-After`.
    pub fn unavailable(detail: impl Into<String>, retry_after: Option<u32>) -> Self {
        ApiError::Unavailable {
            detail: detail.into(),
            retry_after,
        }
    }

    /// The client error of `status` with `detail` (statuses without a variant of their own answer 400).
    pub fn client(status: axum::http::StatusCode, detail: impl Into<String>) -> Self {
        use axum::http::StatusCode;
        let detail = detail.into();
        match status {
            StatusCode::UNAUTHORIZED => ApiError::Unauthorized,
            StatusCode::FORBIDDEN => ApiError::Forbidden(detail),
            StatusCode::NOT_FOUND => ApiError::NotFound(detail),
            StatusCode::CONFLICT => ApiError::Conflict(detail),
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge(detail),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType(detail),
            StatusCode::UNPROCESSABLE_ENTITY => ApiError::Unprocessable(detail),
            StatusCode::REQUEST_TIMEOUT => ApiError::RequestTimeout(detail),
            StatusCode::BAD_GATEWAY => ApiError::BadGateway(detail),
            StatusCode::SERVICE_UNAVAILABLE => ApiError::unavailable(detail, None),
            _ => ApiError::bad_request(detail),
        }
    }

    /// A 500 for `error` (logged when answered).
    pub fn internal(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        ApiError::Internal(error.into())
    }

    /// The HTTP status.
    pub fn status(&self) -> axum::http::StatusCode {
        use axum::http::StatusCode;
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl axum::response::IntoResponse for ApiError {
    fn into_response(self) -> axum::response::Response {
        use axum::http::{HeaderValue, header};
        let status = self.status();
        let body = match &self {
            ApiError::Internal(error) => {
                let id = uuid::Uuid::new_v4().simple().to_string();
                tracing::error!(%id, %error, "Request failed.");
                serde_json::json!({ "status": status.as_u16(), "error": "internal error", "id": id })
            }
            other => serde_json::json!({ "status": status.as_u16(), "error": other.to_string() }),
        };
        let mut response = (status, axum::Json(body)).into_response();
        match &self {
            ApiError::Unauthorized => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::Unavailable {
                retry_after: Some(secs),
                ..
            }
            | ApiError::TooManyRequests {
                retry_after: secs, ..
            } => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(*secs));
            }
            _ => {}
        }
        response
    }
}

/// `Retry-After` while the embedded store is unavailable (unhealthy and being reopened, or closing): the
/// committer's reopen backoff tops out at 5 s, so a client retrying after that meets at least one new attempt.
pub const STORE_UNAVAILABLE_RETRY_AFTER_SECS: u32 = 5;

impl From<interlude_store::Error> for ApiError {
    fn from(e: interlude_store::Error) -> Self {
        match e {
            // Not a failure of the request: the store refused it whole (nothing was stored), so the client
            // keeps it and retries, and counts stay exact. The reason (which can name files) is not
            // answered (the store logged the failure itself).
            interlude_store::Error::Unavailable(reason) => {
                tracing::debug!(%reason, "Event store unavailable; answering 503.");
                ApiError::unavailable(
                    "event store unavailable, retry",
                    Some(STORE_UNAVAILABLE_RETRY_AFTER_SECS),
                )
            }
            e => ApiError::internal(e),
        }
    }
}

impl From<interlude_store::SubmitError> for ApiError {
    fn from(e: interlude_store::SubmitError) -> Self {
        use interlude_store::SubmitError;
        match e {
            SubmitError::Busy => {
                metrics::counter!(crate::telemetry::metrics::EVENTS_BUSY_REJECTIONS).increment(1);
                ApiError::unavailable("event store busy, retry", Some(1))
            }
            SubmitError::Stopped => ApiError::unavailable("event store stopped", Some(5)),
            SubmitError::Store(e @ interlude_store::Error::Unavailable(_)) => {
                metrics::counter!(crate::telemetry::metrics::EVENTS_UNAVAILABLE_REJECTIONS)
                    .increment(1);
                ApiError::from(e)
            }
            SubmitError::Store(e) => ApiError::from(e),
        }
    }
}

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(e: axum::extract::rejection::JsonRejection) -> Self {
        // A body over the route's limit is 413; every other rejection (syntax, types, content type) is the
        // client's malformed request.
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::PayloadTooLarge(e.body_text());
        }
        ApiError::bad_request(e.body_text())
    }
}

impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(e: axum::extract::rejection::QueryRejection) -> Self {
        ApiError::bad_request(e.body_text())
    }
}
